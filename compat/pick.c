/* orders the llama.cpp backend candidates for this machine: one ROCm
 * candidate per AMD GPU (discrete before integrated), then Vulkan, then the
 * CPU, which is always usable. Every candidate carries the reason it is
 * usable or exactly why not and the command that fixes it, so `lemon
 * doctor` can print the reason verbatim. */
#include "compat/compat-private.h"

#include <stdio.h>
#include <string.h>

#include "util/str.h"

bool compat_node_ok(const struct detect_report *report, const char *rel,
		    const char *what, char *reason, size_t cap)
{
	const struct detect_node *node = detect_find_node(report, rel);
	const char *group;

	if (!node || !node->exists) {
		snprintf(reason, cap, "%s skipped: device node %s missing", what,
			 node ? node->path : rel);
		return false;
	}
	/* permissions not recorded: unknown, which is no reason to reject
	 * (the doctor reports the node as unknown) */
	if (!node->has_mode || (node->readable && node->writable))
		return true;
	group = node->group[0] ? node->group : "render";
	snprintf(reason, cap,
		 "%s skipped: %s not accessible; add your user to the %s group: sudo usermod -aG %s $USER",
		 what, node->path, group, group);
	return false;
}

static int kind_rank(const char *kind)
{
	if (strcmp(kind, "dgpu") == 0 || strcmp(kind, "accelerator") == 0)
		return 0;
	if (strcmp(kind, "igpu") == 0)
		return 1;
	return 2;
}

static bool rocm_usable(const struct detect_report *report,
			const struct compat_gpu *g, struct compat_candidate *c)
{
	const struct detect_gpu *gpu = &report->gpus[g->index];
	char rel[40];

	if (!g->rocm_prebuilt && g->therock_linux[0]) {
		snprintf(c->reason, sizeof(c->reason),
			 "ROCm skipped: no ROCm bundle for %s (%.60s): TheRock builds a ROCm runtime for it (%s%s%s) but no llama.cpp ROCm build is published; use Vulkan",
			 g->gfx, g->name, g->therock_family[0] ? g->therock_family : "",
			 g->therock_family[0] ? ", " : "", g->therock_linux);
		return false;
	}
	if (!g->rocm_prebuilt) {
		snprintf(c->reason, sizeof(c->reason),
			 "ROCm skipped: no ROCm bundle for %s (%.80s): current ROCm releases build nothing for it; use Vulkan",
			 g->gfx, g->name);
		return false;
	}
	if (strcmp(gpu->pci.driver, "amdgpu") != 0) {
		snprintf(c->reason, sizeof(c->reason),
			 "ROCm skipped: amdgpu not bound to %s; load it: sudo modprobe amdgpu",
			 gpu->pci.bdf);
		return false;
	}
	if (!report->kfd_present) {
		snprintf(c->reason, sizeof(c->reason),
			 "ROCm skipped: KFD topology missing; use a kernel built with CONFIG_HSA_AMD (every distribution kernel has it)");
		return false;
	}
	if (!gpu->has_kfd) {
		snprintf(c->reason, sizeof(c->reason),
			 "ROCm skipped: KFD has no node for %s; check sudo dmesg | grep kfd (PCIe atomics, unsupported GC IP)",
			 gpu->pci.bdf);
		return false;
	}
	if (g->kfd_cwsr_kernel[0] && !gpu->kfd_cwsr) {
		snprintf(c->reason, sizeof(c->reason),
			 "ROCm skipped: the KFD node of %s lacks cwsr_size and ctl_stack_size: this kernel has no CWSR fix for %s; install kernel %s or newer (or one with the fix backported)",
			 gpu->pci.bdf, g->gfx, g->kfd_cwsr_kernel);
		return false;
	}
	if (!compat_node_ok(report, "kfd", "ROCm", c->reason, sizeof(c->reason)))
		return false;
	if (gpu->render_node[0]) {
		snprintf(rel, sizeof(rel), "dri/%s", gpu->render_node);
		if (!compat_node_ok(report, rel, "ROCm", c->reason, sizeof(c->reason)))
			return false;
	}
	return true;
}

static void add_rocm(const struct detect_report *report,
		     const struct compat_gpu *g, struct compat_choice *out)
{
	struct compat_candidate *c = &out->c[out->n++];
	const char *target = g->rocm_family[0] ? g->rocm_family : g->gfx;

	memset(c, 0, sizeof(*c));
	lemon_str_copy(c->backend, sizeof(c->backend), "rocm");
	lemon_str_copy(c->target, sizeof(c->target), target);
	lemon_str_copy(c->gfx, sizeof(c->gfx), g->gfx);
	c->gpu_index = g->index;
	if (!g->gfx[0]) {
		snprintf(c->reason, sizeof(c->reason),
			 "ROCm skipped: gfx target of %.60s unknown (%.150s)", g->name,
			 g->note[0] ? g->note : "no source answered");
		return;
	}
	if (!rocm_usable(report, g, c))
		return;
	c->usable = true;
	if (g->hsa_override[0]) {
		snprintf(c->env, sizeof(c->env), "HSA_OVERRIDE_GFX_VERSION=%s",
			 g->hsa_override);
		snprintf(c->reason, sizeof(c->reason),
			 "no ROCm bundle carries %s code (%.80s); workaround, not an AMD-supported setup: HSA_OVERRIDE_GFX_VERSION=%s runs the ROCm %s build; Vulkan is the alternative",
			 g->gfx, g->name, g->hsa_override, target);
	} else {
		snprintf(c->reason, sizeof(c->reason),
			 "ROCm %s build for %s (%.100s)%s", target, g->gfx,
			 g->name, g->gfx_guess ? "; gfx target is a guess" : "");
	}
}

/* ---- Vulkan ---------------------------------------------------------------- */

static int vk_rank(enum detect_vk_type t)
{
	switch (t) {
	case DETECT_VK_DISCRETE:
		return 0;
	case DETECT_VK_INTEGRATED:
		return 1;
	case DETECT_VK_VIRTUAL:
		return 2;
	case DETECT_VK_OTHER:
		return 3;
	case DETECT_VK_CPU:
		return 9;
	}
	return 9;
}

/* the report's GPU a Vulkan device runs on: by PCI address where the
 * driver gives one, else the first GPU of the same vendor and device id;
 * -1 when none (the device then has no memory to plan with) */
static int vk_gpu(const struct detect_report *report,
		  const struct compat_view *view,
		  const struct detect_vk_device *d)
{
	int i;

	for (i = 0; d->pci_bdf[0] && i < view->n_gpus; i++)
		if (strcmp(report->gpus[view->gpus[i].index].pci.bdf,
			   d->pci_bdf) == 0)
			return view->gpus[i].index;
	for (i = 0; i < view->n_gpus; i++) {
		const struct detect_pci *p = &report->gpus[view->gpus[i].index].pci;

		if (p->vendor == d->vendor_id && p->device == d->device_id)
			return view->gpus[i].index;
	}
	return -1;
}

static void vulkan_probed(const struct detect_report *report,
			  const struct compat_view *view,
			  struct compat_candidate *c)
{
	const struct detect_vulkan *vk = &report->vulkan;
	const struct detect_vk_device *best = NULL;
	int i;

	for (i = 0; i < vk->n_devices; i++) {
		const struct detect_vk_device *d = &vk->devices[i];

		/* CPU implementations (lavapipe) never count as a GPU */
		if (d->type == DETECT_VK_CPU)
			continue;
		if (!best || vk_rank(d->type) < vk_rank(best->type))
			best = d;
	}
	if (best) {
		c->usable = true;
		/* without its GPU the child would get no memory to plan with
		 * and run with --n-gpu-layers 0: Vulkan on the CPU */
		c->gpu_index = vk_gpu(report, view, best);
		snprintf(c->reason, sizeof(c->reason), "Vulkan on %.160s (%s)",
			 best->name, best->driver[0] ? best->driver : "driver unknown");
	} else if (!vk->loader) {
		snprintf(c->reason, sizeof(c->reason),
			 "Vulkan skipped: no Vulkan loader (%s); install it: sudo apt install libvulkan1 mesa-vulkan-drivers",
			 vk->error[0] ? vk->error : "libvulkan not found");
	} else if (vk->n_devices == 0) {
		snprintf(c->reason, sizeof(c->reason),
			 "Vulkan skipped: the loader found no driver (%.120s); install the GPU's Vulkan driver (mesa-vulkan-drivers, or the NVIDIA driver's ICD)",
			 vk->error[0] ? vk->error : "no physical device");
	} else {
		snprintf(c->reason, sizeof(c->reason),
			 "Vulkan skipped: no GPU Vulkan device (only CPU implementations such as lavapipe)");
	}
}

/* kernel drivers with a Vulkan driver on top (RADV needs amdgpu, not radeon) */
static bool vk_capable_driver(const char *drv)
{
	static const char *const ok[] = { "amdgpu", "nvidia", "i915", "xe" };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(drv, ok[i]) == 0)
			return true;
	return false;
}

/* an AMD GPU driven by radeon (GCN 1/2 by default): radeon has no Vulkan
 * driver, RADV needs amdgpu; the reason names the kernel parameters */
static bool radeon_gpu(const struct detect_report *report,
		       const struct compat_view *view, char *reason,
		       size_t cap)
{
	int i;

	for (i = 0; i < view->n_gpus; i++) {
		const struct compat_gpu *g = &view->gpus[i];
		bool si = strcmp(g->family, "GCN1") == 0;

		if (strcmp(report->gpus[g->index].pci.driver, "radeon") != 0)
			continue;
		snprintf(reason, cap,
			 "Vulkan skipped: %.60s is driven by radeon, which has no Vulkan driver; RADV needs amdgpu%s",
			 g->name,
			 si ? " (radeon.si_support=0 amdgpu.si_support=1)" :
			 strcmp(g->family, "GCN2") == 0 ?
			      " (radeon.cik_support=0 amdgpu.cik_support=1)" :
			      "");
		return true;
	}
	return false;
}

static void vulkan_unprobed(const struct detect_report *report,
			    const struct compat_view *view,
			    struct compat_candidate *c)
{
	const char *why = report->vulkan.skipped_why[0] ?
				  report->vulkan.skipped_why :
				  "probe skipped";
	char denied[256] = "";
	int n;

	/* discrete GPUs first, as the probed path and ggml rank them */
	for (n = 0; n < 3 * view->n_gpus; n++) {
		const struct compat_gpu *g = &view->gpus[n % view->n_gpus];
		const struct detect_gpu *gpu = &report->gpus[g->index];
		const struct detect_node *node;
		char rel[40];

		if (kind_rank(g->kind) != n / view->n_gpus ||
		    !vk_capable_driver(gpu->pci.driver))
			continue;
		/* NVIDIA's proprietary Vulkan driver talks to /dev/nvidia*, so a
		 * missing DRM render node (nvidia-drm not loaded) is no obstacle */
		if (!gpu->render_node[0] && strcmp(gpu->pci.driver, "nvidia") == 0) {
			c->usable = true;
			c->gpu_index = g->index;
			snprintf(c->reason, sizeof(c->reason),
				 "Vulkan on %.100s (nvidia bound; not probed: %.40s)",
				 g->name, why);
			return;
		}
		if (!gpu->render_node[0])
			continue;
		snprintf(rel, sizeof(rel), "dri/%s", gpu->render_node);
		if (!compat_node_ok(report, rel, "Vulkan", denied, sizeof(denied)))
			continue;
		node = detect_find_node(report, rel);
		c->usable = true;
		c->gpu_index = g->index;
		snprintf(c->reason, sizeof(c->reason),
			 "Vulkan on %.100s (%s bound, %s %s; not probed: %.40s)",
			 g->name, gpu->pci.driver, gpu->render_node,
			 node && !node->has_mode ? "access not recorded" :
						   "accessible",
			 why);
		return;
	}
	if (denied[0])
		snprintf(c->reason, sizeof(c->reason), "%.200s (not probed: %.40s)",
			 denied, why);
	else if (radeon_gpu(report, view, denied, sizeof(denied)))
		snprintf(c->reason, sizeof(c->reason), "%.200s (not probed: %.40s)",
			 denied, why);
	else
		snprintf(c->reason, sizeof(c->reason),
			 "Vulkan skipped: no GPU with a Vulkan-capable driver bound (not probed: %s)",
			 why);
}

static const struct compat_gpu *gpu_of(const struct compat_view *view,
				       int report_index)
{
	int i;

	for (i = 0; report_index >= 0 && i < view->n_gpus; i++)
		if (view->gpus[i].index == report_index)
			return &view->gpus[i];
	return NULL;
}

/* a hybrid machine whose discrete GPU cannot run its vendor's backend
 * (CUDA refused for an old driver, ROCm for a target no bundle carries)
 * but runs Vulkan: Vulkan on the discrete GPU goes before ROCm or CUDA on
 * the integrated one, which has a fraction of its memory bandwidth */
static void prefer_dgpu_vulkan(const struct compat_view *view,
			       struct compat_choice *out)
{
	const struct compat_gpu *rg, *vg;
	struct compat_candidate v;
	size_t len;
	int r, k;

	for (r = 0; r < out->n && !out->c[r].usable; r++)
		;
	for (k = r + 1; k < out->n; k++)
		if (strcmp(out->c[k].backend, "vulkan") == 0)
			break;
	if (r >= out->n || k >= out->n || !out->c[k].usable)
		return;
	rg = gpu_of(view, out->c[r].gpu_index);
	vg = gpu_of(view, out->c[k].gpu_index);
	if (rg == NULL || vg == NULL || strcmp(rg->kind, "igpu") != 0 ||
	    kind_rank(vg->kind) != 0)
		return;
	v = out->c[k];
	len = strlen(v.reason);
	snprintf(v.reason + len, sizeof(v.reason) - len,
		 "; the discrete GPU is preferred over %s on the integrated %.60s",
		 out->c[r].backend, rg->name);
	memmove(&out->c[r + 1], &out->c[r], (size_t)(k - r) * sizeof(out->c[0]));
	out->c[r] = v;
}

/* a hybrid machine (a discrete GPU and an integrated one): the reason of
 * the recommended discrete candidate says which integrated GPU it won over */
static void note_preferred(const struct compat_view *view,
			   struct compat_choice *out)
{
	struct compat_candidate *rec = &out->c[out->recommended];
	const struct compat_gpu *mine = gpu_of(view, rec->gpu_index);
	size_t len;
	int i;

	if (mine == NULL || kind_rank(mine->kind) != 0)
		return;
	for (i = 0; i < view->n_gpus; i++) {
		if (strcmp(view->gpus[i].kind, "igpu") != 0)
			continue;
		len = strlen(rec->reason);
		snprintf(rec->reason + len, sizeof(rec->reason) - len,
			 "; the discrete GPU is preferred over the integrated %.60s",
			 view->gpus[i].name);
		return;
	}
}

int compat_pick_backend(const struct compat_db *db,
			const struct detect_report *report,
			const struct compat_view *view,
			struct compat_choice *out, struct lemon_err *err)
{
	struct compat_candidate *c;
	int rank, i;

	if (!report || !view || !out)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "compat_pick_backend needs a report, a view and an output");
	memset(out, 0, sizeof(*out));
	/* per GPU, discrete first, then integrated, then unknown kinds: CUDA
	 * for NVIDIA, ROCm for AMD; two slots stay free for vulkan and cpu */
	for (rank = 0; rank < 3; rank++)
		for (i = 0; i < view->n_gpus; i++) {
			const struct compat_gpu *g = &view->gpus[i];
			uint16_t vendor = report->gpus[g->index].pci.vendor;

			if (kind_rank(g->kind) != rank ||
			    out->n >= COMPAT_MAX_CANDIDATES - 2)
				continue;
			if (vendor == 0x10de)
				compat_add_cuda(db, report, g, out);
			else if (vendor == 0x1002 &&
				 strcmp(g->vendor ? g->vendor : "", "AMD") == 0)
				add_rocm(report, g, out);
		}
	c = &out->c[out->n++];
	lemon_str_copy(c->backend, sizeof(c->backend), "vulkan");
	c->gpu_index = -1;
	if (report->vulkan.probed)
		vulkan_probed(report, view, c);
	else
		vulkan_unprobed(report, view, c);

	c = &out->c[out->n++];
	lemon_str_copy(c->backend, sizeof(c->backend), "cpu");
	c->gpu_index = -1;
	c->usable = true;
	if (report->cpu.has_cores)
		snprintf(c->reason, sizeof(c->reason), "CPU: %s, %d threads",
			 report->cpu.model[0] ? report->cpu.model : "model unknown",
			 report->cpu.cores);
	else
		snprintf(c->reason, sizeof(c->reason), "CPU: %s",
			 report->cpu.model[0] ? report->cpu.model : "model unknown");
	prefer_dgpu_vulkan(view, out);
	out->recommended = out->n - 1;
	for (i = 0; i < out->n; i++)
		if (out->c[i].usable) {
			out->recommended = i;
			break;
		}
	note_preferred(view, out);
	return 0;
}
