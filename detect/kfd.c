/* KFD topology: the gfx target the kernel's compute driver reports.
 *
 * Each /sys/class/kfd/kfd/topology/nodes/<N>/properties is a list of
 * "key value" lines; GPU nodes carry gfx_target_version (e.g. 110501) and
 * location_id (bus << 8 | devfn), which ties the node to a PCI device. */
#include <stdio.h>
#include <string.h>

#include "detect/detect-private.h"
#include "util/str.h"

int detect_kfd_parse_props(const char *buf, size_t len,
			   struct detect_kfd_props *out, struct lemon_err *err)
{
	const char *line, *key, *val;
	size_t pos = 0, line_len, key_len, val_len;
	bool has_domain = false, has_loc = false;

	memset(out, 0, sizeof(*out));
	while (lemon_next_line(buf, len, &pos, &line, &line_len)) {
		uint64_t v;
		uint32_t *dst = NULL;

		if (!lemon_split_kv(line, line_len, ' ', &key, &key_len, &val,
				    &val_len))
			continue;
		if (lemon_slice_eq(key, key_len, "gfx_target_version"))
			dst = &out->gfx_target_version;
		else if (lemon_slice_eq(key, key_len, "location_id"))
			dst = &out->location_id;
		else if (lemon_slice_eq(key, key_len, "domain"))
			dst = &out->domain;
		else if (lemon_slice_eq(key, key_len, "vendor_id"))
			dst = &out->vendor_id;
		else if (lemon_slice_eq(key, key_len, "device_id"))
			dst = &out->device_id;
		else if (lemon_slice_eq(key, key_len, "simd_count"))
			dst = &out->simd_count;
		else if (lemon_slice_eq(key, key_len, "cwsr_size"))
			dst = &out->cwsr_size;
		else if (lemon_slice_eq(key, key_len, "ctl_stack_size"))
			dst = &out->ctl_stack_size;
		if (dst == NULL)
			continue;
		if (lemon_parse_u64(val, val_len, 10, 0xffffffffu, &v, err) < 0) {
			lemon_err_prefix(err, "kfd property %.*s", (int)key_len,
					 key);
			return -1;
		}
		*dst = (uint32_t)v;
		if (dst == &out->gfx_target_version)
			out->has_gfx_target_version = true;
		if (dst == &out->location_id)
			has_loc = true;
		if (dst == &out->domain)
			has_domain = true;
		if (dst == &out->cwsr_size)
			out->has_cwsr_size = true;
		if (dst == &out->ctl_stack_size)
			out->has_ctl_stack_size = true;
	}
	/* kernels before 4.x lack "domain": such nodes sit in domain 0 */
	(void)has_domain;
	out->has_location = has_loc;
	return 0;
}

static struct detect_gpu *gpu_at(struct detect_report *rep, uint32_t domain,
				 uint32_t location)
{
	char bdf[16];
	int i;

	snprintf(bdf, sizeof(bdf), "%04x:%02x:%02x.%u", domain & 0xffff,
		 (location >> 8) & 0xff, (location >> 3) & 0x1f, location & 7);
	for (i = 0; i < rep->n_gpus; i++)
		if (strcmp(rep->gpus[i].pci.bdf, bdf) == 0)
			return &rep->gpus[i];
	return NULL;
}

static int read_node(struct detect_ctx *ctx, const char *node,
		     struct lemon_err *err)
{
	struct detect_kfd_props props;
	struct detect_gpu *gpu;
	char rel[128], buf[8192];
	uint64_t num;
	size_t len;

	snprintf(rel, sizeof(rel), "class/kfd/kfd/topology/nodes/%s/properties",
		 node);
	if (detect_root_read(ctx->root, DETECT_BASE_SYS, rel, buf, sizeof(buf),
			     &len, err) < 0)
		return -1;
	if (detect_kfd_parse_props(buf, len, &props, err) < 0) {
		lemon_err_prefix(err, "%s", rel);
		return -1;
	}
	/* CPU nodes report gfx_target_version 0 and no SIMDs */
	if (!props.has_gfx_target_version || props.gfx_target_version == 0 ||
	    !props.has_location)
		return 0;
	gpu = gpu_at(ctx->report, props.domain, props.location_id);
	if (gpu == NULL)
		return 0;
	gpu->has_kfd = true;
	gpu->kfd_gfx_target_version = props.gfx_target_version;
	gpu->kfd_cwsr = props.has_cwsr_size && props.has_ctl_stack_size;
	if (lemon_parse_u64(node, strlen(node), 10, 4096, &num, NULL) == 0)
		gpu->kfd_node = (int)num;
	return 0;
}

int detect_kfd_probe(struct detect_ctx *ctx, struct lemon_err *err)
{
	struct detect_names nodes;
	struct lemon_err nerr = { 0 };
	size_t i;
	int rc = 0;

	if (detect_root_list(ctx->root, DETECT_BASE_SYS,
			     "class/kfd/kfd/topology/nodes", &nodes, &nerr) < 0)
		return 0; /* no KFD: amdgpu not loaded or built without HSA */
	ctx->report->kfd_present = true;
	for (i = 0; i < nodes.count; i++) {
		if (read_node(ctx, nodes.names[i], err) < 0)
			rc = -1;
	}
	detect_names_free(&nodes);
	return rc;
}
