/* resolves each detected GPU and NPU against the compat tables.
 *
 * GPUs: the gfx target comes from what the kernel reports first (KFD
 * gfx_target_version, then the ip_discovery GC IP), the PCI table second, and
 * a labelled guess last; sources that disagree are written down, never
 * silently overruled. NPUs: generation, firmware file, the firmware protocol
 * (from the kernel log or a known firmware version) against the protocols
 * the installed amdxdna accepts, and one verdict with a message and a fix. */
#include "compat/compat-private.h"

#include <stdio.h>
#include <string.h>

#include "util/str.h"

#define FW_NAMES_MAX 4

/* ---- GPUs ---------------------------------------------------------------- */

struct gfx_answers {
	char kfd[16];
	char ip[16];
	bool ip_guess;
	char table[16];
	bool in_table;
	struct compat_gpu_entry entry;
};

/* naive GC IP rule, only for GC versions the table does not know: the real
 * mapping has exceptions (GC 10.3.4 is gfx1032), hence "guess" */
static void gc_guess(const char *gc_ip, char *gfx, size_t cap)
{
	uint32_t p[3];

	gfx[0] = '\0';
	if (lemon_parse_version(gc_ip, strlen(gc_ip), p, 3, NULL) == 3 &&
	    p[1] < 16 && p[2] < 16)
		snprintf(gfx, cap, "gfx%u%x%x", p[0], p[1], p[2]);
}

static void collect_answers(const struct compat_db *db,
			    const struct detect_gpu *gpu, struct gfx_answers *a)
{
	memset(a, 0, sizeof(*a));
	if (gpu->has_kfd && gpu->kfd_gfx_target_version)
		compat_gfx_from_kfd(gpu->kfd_gfx_target_version, a->kfd,
				    sizeof(a->kfd), NULL);
	if (gpu->gc_ip[0] &&
	    compat_gfx_from_gc_ip(db, gpu->gc_ip, a->ip, sizeof(a->ip), NULL)) {
		gc_guess(gpu->gc_ip, a->ip, sizeof(a->ip));
		a->ip_guess = a->ip[0] != '\0';
	}
	if (compat_gpu_lookup(db, gpu->pci.device, gpu->pci.revision,
			      &a->entry, NULL) == 0) {
		a->in_table = true;
		lemon_str_copy(a->table, sizeof(a->table), a->entry.gfx);
	}
}

static void note_disagreement(const struct gfx_answers *a, struct compat_gpu *g)
{
	const char *vals[3] = { a->kfd, a->ip_guess ? "" : a->ip, a->table };
	const char *names[3] = { "kfd", "ip_discovery", "pci_table" };
	size_t len = 0;
	bool differ = false;
	int i;

	for (i = 0; i < 3; i++)
		if (vals[i][0] && strcmp(vals[i], g->gfx) != 0)
			differ = true;
	if (!differ)
		return;
	for (i = 0; i < 3 && len < sizeof(g->disagreement); i++) {
		int w;

		if (!vals[i][0])
			continue;
		w = snprintf(g->disagreement + len,
			     sizeof(g->disagreement) - len, "%s%s says %s",
			     len ? ", " : "", names[i], vals[i]);
		if (w < 0)
			break;
		len += (size_t)w;
	}
}

/* kind of another table entry with the same gfx target (an unknown id of a
 * known chip is most likely the same kind of part) */
static void kind_from_gfx(const struct compat_db *db, const char *gfx,
			  char *kind, size_t cap)
{
	int i;

	for (i = 0; i < db->n_gpus; i++)
		if (strcmp(db->gpus[i].e.gfx, gfx) == 0) {
			lemon_str_copy(kind, cap, db->gpus[i].e.kind);
			return;
		}
}

static void pick_gfx(const struct gfx_answers *a, struct compat_gpu *g)
{
	if (a->kfd[0]) {
		lemon_str_copy(g->gfx, sizeof(g->gfx), a->kfd);
		lemon_str_copy(g->gfx_source, sizeof(g->gfx_source), "kfd");
	} else if (a->ip[0] && !a->ip_guess) {
		lemon_str_copy(g->gfx, sizeof(g->gfx), a->ip);
		lemon_str_copy(g->gfx_source, sizeof(g->gfx_source),
			       "ip_discovery");
	} else if (a->table[0]) {
		lemon_str_copy(g->gfx, sizeof(g->gfx), a->table);
		lemon_str_copy(g->gfx_source, sizeof(g->gfx_source),
			       "pci_table");
	} else if (a->ip[0]) {
		lemon_str_copy(g->gfx, sizeof(g->gfx), a->ip);
		lemon_str_copy(g->gfx_source, sizeof(g->gfx_source),
			       "ip_discovery");
		g->gfx_guess = true;
	}
}

/* the product libdrm's table gives this id and revision, else the chip and
 * family: a revision the table does not list is never given the name of
 * another revision's product */
static void name_from_table(const struct compat_gpu_entry *e,
			    struct compat_gpu *g)
{
	if (e->name[0]) {
		lemon_str_copy(g->name, sizeof(g->name), e->name);
		lemon_str_copy(g->name_source, sizeof(g->name_source),
			       "pci_table");
		return;
	}
	if (e->codename[0] && strncmp(e->codename, "unknown", 7) != 0)
		snprintf(g->name, sizeof(g->name), "AMD %s, %s family",
			 e->codename, e->family);
	else
		snprintf(g->name, sizeof(g->name), "AMD %s family", e->family);
	lemon_str_copy(g->name_source, sizeof(g->name_source), "family");
}

/* libdrm (asked live) against sysfs and amdgpu.ids: the VRAM heap libdrm
 * reports is what buffers may use, a little below mem_info_vram_total
 * (firmware and kernel reservations), never above it and never far below;
 * the marketing names come from two copies of amdgpu.ids */
static void libdrm_check(const struct detect_gpu *gpu, struct compat_gpu *g)
{
	const struct detect_libdrm_gpu *l = &gpu->libdrm;
	size_t len = 0;
	int w;

	if (!l->queried)
		return;
	if (l->has_vram && gpu->has_vram &&
	    (l->vram_heap > gpu->vram_bytes ||
	     l->vram_heap < gpu->vram_bytes / 10 * 9)) {
		w = snprintf(g->libdrm_disagreement,
			     sizeof(g->libdrm_disagreement),
			     "libdrm's VRAM heap is %llu bytes, sysfs mem_info_vram_total %llu",
			     (unsigned long long)l->vram_heap,
			     (unsigned long long)gpu->vram_bytes);
		if (w > 0)
			len = (size_t)w;
	}
	if (l->marketing_name[0] && gpu->marketing_name[0] &&
	    strcmp(l->marketing_name, gpu->marketing_name) != 0 &&
	    len < sizeof(g->libdrm_disagreement))
		snprintf(g->libdrm_disagreement + len,
			 sizeof(g->libdrm_disagreement) - len,
			 "%slibdrm names it '%.60s', amdgpu.ids '%.60s'",
			 len ? "; " : "", l->marketing_name,
			 gpu->marketing_name);
}

static void resolve_amd_gpu(const struct compat_db *db,
			    const struct detect_gpu *gpu, struct compat_gpu *g)
{
	struct compat_rocm rocm;
	struct gfx_answers a;

	collect_answers(db, gpu, &a);
	pick_gfx(&a, g);
	note_disagreement(&a, g);
	libdrm_check(gpu, g);
	if (gpu->marketing_name[0])
		lemon_str_copy(g->name_source, sizeof(g->name_source), "libdrm");
	if (a.in_table) {
		lemon_str_copy(g->kind, sizeof(g->kind), a.entry.kind);
		lemon_str_copy(g->family, sizeof(g->family), a.entry.family);
		lemon_str_copy(g->codename, sizeof(g->codename),
			       a.entry.codename);
		if (!gpu->marketing_name[0])
			name_from_table(&a.entry, g);
	} else if (g->gfx[0]) {
		kind_from_gfx(db, g->gfx, g->kind, sizeof(g->kind));
	}
	if (!a.in_table && g->gfx_guess)
		snprintf(g->note, sizeof(g->note),
			 "1002:%04x is not in lemon's table and KFD reports nothing; %s is a guess from GC IP %s",
			 gpu->pci.device, g->gfx, gpu->gc_ip);
	else if (!a.in_table && g->gfx[0])
		snprintf(g->note, sizeof(g->note),
			 "1002:%04x is not in lemon's table; %s comes from %s",
			 gpu->pci.device, g->gfx, g->gfx_source);
	else if (!a.in_table)
		snprintf(g->note, sizeof(g->note),
			 "1002:%04x is not in lemon's table and the kernel reports no gfx target (amdgpu not bound?); gfx unknown",
			 gpu->pci.device);
	if (g->gfx[0] && compat_rocm_lookup(db, g->gfx, &rocm, NULL) == 0) {
		lemon_str_copy(g->rocm_family, sizeof(g->rocm_family),
			       rocm.family);
		g->rocm_prebuilt = rocm.prebuilt;
		lemon_str_copy(g->therock_family, sizeof(g->therock_family),
			       rocm.therock_family);
		lemon_str_copy(g->therock_linux, sizeof(g->therock_linux),
			       rocm.therock_linux);
		lemon_str_copy(g->kfd_cwsr_kernel, sizeof(g->kfd_cwsr_kernel),
			       rocm.kfd_cwsr_kernel);
		lemon_str_copy(g->hsa_override, sizeof(g->hsa_override),
			       rocm.hsa_override);
	}
}

/* the name the Vulkan driver gives the same PCI device, if it was probed:
 * matched by vendor and device id and, where the driver reports its PCI
 * address (VK_EXT_pci_bus_info), by that address too, so two cards of one
 * model each get their own device */
static const char *vulkan_name(const struct detect_vulkan *vk,
			       const struct detect_pci *pci)
{
	int i;

	for (i = 0; i < vk->n_devices; i++) {
		const struct detect_vk_device *d = &vk->devices[i];

		if (d->type != DETECT_VK_CPU && d->vendor_id == pci->vendor &&
		    d->device_id == pci->device && d->name[0] &&
		    (!d->pci_bdf[0] || strcmp(d->pci_bdf, pci->bdf) == 0))
			return d->name;
	}
	return NULL;
}

static void resolve_gpu(const struct compat_db *db,
			const struct detect_report *report,
			const struct detect_gpu *gpu, int index,
			struct compat_gpu *g)
{
	const struct detect_pci *pci = &gpu->pci;
	const char *vk_name = vulkan_name(&report->vulkan, pci);

	memset(g, 0, sizeof(*g));
	g->index = index;
	g->vendor = detect_vendor_name(pci->vendor);
	if (gpu->marketing_name[0])
		lemon_str_copy(g->name, sizeof(g->name), gpu->marketing_name);
	else if (pci->name[0])
		lemon_str_copy(g->name, sizeof(g->name), pci->name);
	if (pci->vendor == 0x1002) {
		resolve_amd_gpu(db, gpu, g);
	} else if (pci->vendor == 0x10de) {
		compat_resolve_nvidia(db, report, gpu, g);
		/* the Vulkan driver's name is the driver's word too: it wins
		 * over pci.ids and lemon's table, not over the CUDA driver */
		if (vk_name != NULL && strcmp(g->name_source, "cuda") != 0) {
			lemon_str_copy(g->name, sizeof(g->name), vk_name);
			lemon_str_copy(g->name_source, sizeof(g->name_source),
				       "vulkan");
		}
	} else if (pci->vendor == 0x8086) {
		/* Intel's integrated GPU sits at 00:02.0 on every platform */
		lemon_str_copy(g->kind, sizeof(g->kind),
			       strstr(pci->bdf, ":00:02.0") ? "igpu" : "dgpu");
	}
	if (pci->vendor != 0x1002 && pci->vendor != 0x10de) {
		/* the Vulkan driver's name is the driver's word; pci.ids
		 * (libpci's pci_lookup_name) where no driver answered */
		if (vk_name != NULL)
			lemon_str_copy(g->name, sizeof(g->name), vk_name);
		lemon_str_copy(g->name_source, sizeof(g->name_source),
			       vk_name ? "vulkan" : pci->name[0] ? "pci.ids" : "");
	}
	if (!g->name[0] && vk_name != NULL)
		lemon_str_copy(g->name, sizeof(g->name), vk_name);
	if (!g->name[0])
		snprintf(g->name, sizeof(g->name), "%s GPU",
			 g->vendor ? g->vendor : "unknown");
}

/* ---- NPUs ----------------------------------------------------------------- */

/* whether a kernel-log line is about this NPU: its own BDF, or no BDF at
 * all (a line naming another amdxdna device is not ours) */
static bool line_is_ours(const char *line, const char *bdf)
{
	return strstr(line, bdf) || !strstr(line, "amdxdna 0000:");
}

bool compat_kmsg_find(const struct compat_db *db,
		      const struct detect_report *report, const char *bdf,
		      const char *prefix, bool want_proto,
		      struct compat_kmsg_hit *hit)
{
	int i;

	for (i = 0; i < report->kmsg.n_lines; i++) {
		const char *line = report->kmsg.lines[i];

		if (!line || !line_is_ours(line, bdf) ||
		    !compat_kmsg_match(db, line, hit))
			continue;
		if (prefix && strncmp(hit->id, prefix, strlen(prefix)) != 0)
			continue;
		if (want_proto && hit->proto_major < 0)
			continue;
		if (!want_proto && hit->fix[0] == '\0')
			continue; /* informational lines are not failures */
		return true;
	}
	return false;
}

static void find_firmware(const struct compat_db *db,
			  const struct lemon_root *root,
			  const struct detect_report *report,
			  struct compat_npu *n, char *tried, size_t cap)
{
	char names[FW_NAMES_MAX][24];
	int count = 0, i;
	size_t len = 0;

	tried[0] = '\0';
	if (compat_npu_firmware_names(db, report->host.kernel,
				      report->kmod_amdxdna.version, names,
				      FW_NAMES_MAX, &count, NULL))
		return;
	for (i = 0; i < count; i++) {
		int w = snprintf(tried + len, cap > len ? cap - len : 0,
				 "%s%s/%s", i ? ", " : "",
				 n->entry.firmware_dir, names[i]);

		if (w > 0)
			len += (size_t)w;
		if (root && !n->firmware.file[0] &&
		    detect_firmware_find(root, n->entry.firmware_dir, names[i],
					 &n->firmware, NULL) != 0)
			memset(&n->firmware, 0, sizeof(n->firmware));
	}
}

/* firmware protocol: a kernel-log line that states it wins (that is what the
 * running driver saw), else the protocol of the loaded (sysfs) or installed
 * firmware version when the data knows it */
static void firmware_protocol(const struct compat_db *db,
			      const struct detect_report *report,
			      const struct detect_npu *npu, struct compat_npu *n)
{
	struct compat_kmsg_hit hit;

	if (compat_kmsg_find(db, report, npu->pci.bdf, "npu-", true, &hit)) {
		snprintf(n->firmware_protocol, sizeof(n->firmware_protocol),
			 "%d.%d", hit.proto_major, hit.proto_minor);
		return;
	}
	if (npu->fw_version[0] &&
	    compat_npu_firmware_protocol(db, n->entry.firmware_dir,
					 npu->fw_version, n->firmware_protocol,
					 sizeof(n->firmware_protocol),
					 NULL) == 0)
		return;
	if (n->firmware.version[0])
		compat_npu_firmware_protocol(db, n->entry.firmware_dir,
					     n->firmware.version,
					     n->firmware_protocol,
					     sizeof(n->firmware_protocol), NULL);
}

static void resolve_npu(const struct compat_db *db,
			const struct lemon_root *root,
			const struct detect_report *report, int index,
			struct compat_npu *n)
{
	const struct detect_npu *npu = &report->npus[index];
	struct compat_protocol acc[COMPAT_MAX_ACCEPTS];
	char tried[256];
	int n_acc = 0;

	memset(n, 0, sizeof(*n));
	n->index = index;
	n->known = compat_npu_lookup(db, npu->pci.vendor, npu->pci.device,
				     npu->pci.revision, &n->entry, NULL) == 0;
	tried[0] = '\0';
	if (n->known) {
		find_firmware(db, root, report, n, tried, sizeof(tried));
		if (!root)
			tried[0] = '\0'; /* nothing was looked at */
		firmware_protocol(db, report, npu, n);
		if (compat_npu_driver_protocols(
			    db, n->entry.generation, report->host.kernel,
			    report->kmod_amdxdna.version, acc,
			    COMPAT_MAX_ACCEPTS, &n_acc, NULL) == 0)
			compat_protocol_format(acc, n_acc, n->driver_protocol,
					       sizeof(n->driver_protocol));
	}
	compat_npu_verdict(db, report, npu, tried, acc, n_acc, n);
}

int compat_resolve(const struct compat_db *db, const struct lemon_root *root,
		   const struct detect_report *report, struct compat_view *out,
		   struct lemon_err *err)
{
	int i;

	if (!db || !report || !out)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "compat_resolve needs a database, a report and an output");
	memset(out, 0, sizeof(*out));
	for (i = 0; i < report->n_gpus && i < DETECT_MAX_GPUS; i++)
		resolve_gpu(db, report, &report->gpus[i], i, &out->gpus[i]);
	out->n_gpus = i;
	for (i = 0; i < report->n_npus && i < DETECT_MAX_NPUS; i++)
		resolve_npu(db, root, report, i, &out->npus[i]);
	out->n_npus = i;
	return 0;
}
