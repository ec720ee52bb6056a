/* GPUs: every PCI display device, with what amdgpu exposes about it.
 *
 * From the device's sysfs directory: DRM nodes (card/render), VRAM and GTT
 * totals (amdgpu's mem_info_*), the GC IP version from ip_discovery, and
 * the marketing name from libdrm's amdgpu.ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/detect-private.h"
#include "util/str.h"

/* libdrm amdgpu.ids: "DEVICE,\tREVISION,\tNAME" in hex, '#' comments, a
 * bare format-version line first; some lines use spaces, not a tab */
int detect_amdgpu_ids_lookup(const char *buf, size_t len, uint16_t device,
			     uint8_t revision, char *name, size_t cap,
			     struct lemon_err *err)
{
	const char *line;
	size_t pos = 0, line_len;

	while (lemon_next_line(buf, len, &pos, &line, &line_len)) {
		const char *c1, *c2, *n;
		uint64_t dev, rev;
		size_t n_len;

		if (line_len == 0 || line[0] == '#')
			continue;
		c1 = memchr(line, ',', line_len);
		if (c1 == NULL)
			continue;
		c2 = memchr(c1 + 1, ',', line_len - (size_t)(c1 + 1 - line));
		if (c2 == NULL)
			continue;
		if (lemon_parse_u64(line, (size_t)(c1 - line), 16, 0xffff, &dev,
				    NULL) < 0 ||
		    lemon_parse_u64(c1 + 1, (size_t)(c2 - c1 - 1), 16, 0xff,
				    &rev, NULL) < 0)
			continue;
		if (dev != device || rev != revision)
			continue;
		n = c2 + 1;
		n_len = line_len - (size_t)(n - line);
		lemon_str_trim(&n, &n_len);
		lemon_str_copy_n(name, cap, n, n_len);
		return 0;
	}
	return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			     "%04x:%02x not in amdgpu.ids", device, revision);
}

static void read_drm_nodes(struct detect_ctx *ctx, struct detect_gpu *gpu)
{
	struct detect_names names;
	char rel[96];
	size_t i;

	snprintf(rel, sizeof(rel), "bus/pci/devices/%s/drm", gpu->pci.bdf);
	if (detect_root_list(ctx->root, DETECT_BASE_SYS, rel, &names, NULL) < 0)
		return;
	for (i = 0; i < names.count; i++) {
		const char *n = names.names[i];

		if (strncmp(n, "renderD", 7) == 0 && gpu->render_node[0] == '\0')
			lemon_str_copy(gpu->render_node,
				       sizeof(gpu->render_node), n);
		else if (strncmp(n, "card", 4) == 0 && gpu->card_node[0] == '\0')
			lemon_str_copy(gpu->card_node, sizeof(gpu->card_node),
				       n);
	}
	detect_names_free(&names);
}

static void read_gc_ip(struct detect_ctx *ctx, struct detect_gpu *gpu)
{
	static const char *const parts[] = { "major", "minor", "revision" };
	uint64_t v[3];
	char rel[160];
	int i;

	for (i = 0; i < 3; i++) {
		snprintf(rel, sizeof(rel),
			 "bus/pci/devices/%s/ip_discovery/die/0/GC/0/%s",
			 gpu->pci.bdf, parts[i]);
		if (detect_read_u64(ctx->root, DETECT_BASE_SYS, rel, 10, 255,
				    &v[i], NULL) < 0)
			return;
	}
	snprintf(gpu->gc_ip, sizeof(gpu->gc_ip), "%u.%u.%u", (unsigned)v[0],
		 (unsigned)v[1], (unsigned)v[2]);
}

static void read_mem(struct detect_ctx *ctx, struct detect_gpu *gpu)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "bus/pci/devices/%s/mem_info_vram_total",
		 gpu->pci.bdf);
	gpu->has_vram = detect_read_u64(ctx->root, DETECT_BASE_SYS, rel, 10,
					UINT64_MAX, &gpu->vram_bytes, NULL) == 0;
	snprintf(rel, sizeof(rel), "bus/pci/devices/%s/mem_info_gtt_total",
		 gpu->pci.bdf);
	gpu->has_gtt = detect_read_u64(ctx->root, DETECT_BASE_SYS, rel, 10,
				       UINT64_MAX, &gpu->gtt_bytes, NULL) == 0;
	if (gpu->has_vram)
		lemon_str_copy(gpu->vram_source, sizeof(gpu->vram_source),
			       "amdgpu");
}

/* Intel: xe publishes each tile's VRAM (tile<N>/physical_vram_size_bytes,
 * physical size incl. reserved pages); mainline i915 publishes none, the
 * out-of-tree/backport i915 has cardN/lmem_total_bytes. An iGPU has none:
 * its memory is the system's. */
static void read_intel_mem(struct detect_ctx *ctx, struct detect_gpu *gpu)
{
	uint64_t v, sum = 0;
	char rel[160];
	int t;

	if (strcmp(gpu->pci.driver, "xe") == 0) {
		for (t = 0; t < 8; t++) {
			snprintf(rel, sizeof(rel),
				 "bus/pci/devices/%s/tile%d/physical_vram_size_bytes",
				 gpu->pci.bdf, t);
			if (detect_read_u64(ctx->root, DETECT_BASE_SYS, rel, 10,
					    UINT64_MAX / 16, &v, NULL) < 0)
				break;
			sum += v;
		}
		if (t > 0) {
			gpu->has_vram = true;
			gpu->vram_bytes = sum;
			lemon_str_copy(gpu->vram_source,
				       sizeof(gpu->vram_source), "xe");
		}
		return;
	}
	if (strcmp(gpu->pci.driver, "i915") != 0 || !gpu->card_node[0])
		return;
	snprintf(rel, sizeof(rel), "bus/pci/devices/%s/drm/%s/lmem_total_bytes",
		 gpu->pci.bdf, gpu->card_node);
	if (detect_read_u64(ctx->root, DETECT_BASE_SYS, rel, 10, UINT64_MAX,
			    &v, NULL) == 0) {
		gpu->has_vram = true;
		gpu->vram_bytes = v;
		lemon_str_copy(gpu->vram_source, sizeof(gpu->vram_source),
			       "i915");
	}
}

int detect_gpu_probe(struct detect_ctx *ctx, struct lemon_err *err)
{
	struct detect_report *rep = ctx->report;
	char *ids = NULL;
	size_t ids_len = 0;
	int i;

	(void)err;
	for (i = 0; i < rep->n_pci && rep->n_gpus < DETECT_MAX_GPUS; i++) {
		struct detect_gpu *gpu;

		if (!detect_pci_is_gpu(&rep->pci[i]))
			continue;
		if (detect_pci_is_virtual_display(&rep->pci[i])) {
			if (rep->n_virtual_displays < DETECT_MAX_VIRTUAL_DISPLAYS)
				rep->virtual_displays[rep->n_virtual_displays++] =
					rep->pci[i];
			continue;
		}
		gpu = &rep->gpus[rep->n_gpus++];
		memset(gpu, 0, sizeof(*gpu));
		gpu->pci = rep->pci[i];
		gpu->kfd_node = -1;
		read_drm_nodes(ctx, gpu);
		if (gpu->pci.vendor == 0x8086)
			read_intel_mem(ctx, gpu);
		if (gpu->pci.vendor != 0x1002)
			continue;
		read_mem(ctx, gpu);
		read_gc_ip(ctx, gpu);
		if (ids == NULL) {
			ids = malloc(1 << 20);
			if (ids == NULL ||
			    detect_root_read(ctx->root, DETECT_BASE_LIBDRM,
					     "amdgpu.ids", ids, 1 << 20,
					     &ids_len, NULL) < 0)
				ids_len = 0;
		}
		if (ids_len > 0)
			detect_amdgpu_ids_lookup(ids, ids_len, gpu->pci.device,
						 gpu->pci.revision,
						 gpu->marketing_name,
						 sizeof(gpu->marketing_name),
						 NULL);
	}
	free(ids);
	return 0;
}
