/* the CUDA candidate of one NVIDIA GPU: usable when the NVIDIA driver is
 * bound, a llama.cpp CUDA bundle is built for the GPU's compute capability,
 * the driver is new enough for the CUDA runtime that bundle carries, the
 * CUDA driver library answers (live) and the driver's device nodes can be
 * opened. Each "skipped" reason names the fact and the fix, in the words
 * `lemon doctor` prints. */
#include "compat/compat-private.h"

#include <stdio.h>
#include <string.h>

#include "util/str.h"

/* the driver binding; false with the reason when it is not nvidia */
static bool bound_ok(const struct detect_gpu *gpu, struct compat_candidate *c)
{
	const char *drv = gpu->pci.driver;

	if (strcmp(drv, "nvidia") == 0)
		return true;
	if (strcmp(drv, "nouveau") == 0)
		snprintf(
			c->reason, sizeof(c->reason),
			"CUDA skipped: nouveau is bound to %s, CUDA needs the NVIDIA driver; "
			"blacklist nouveau and install it (lemon doctor prints the commands)",
			gpu->pci.bdf);
	else if (strcmp(drv, "vfio-pci") == 0)
		snprintf(
			c->reason, sizeof(c->reason),
			"CUDA skipped: %s is bound to vfio-pci (reserved for a virtual "
			"machine)",
			gpu->pci.bdf);
	else if (drv[0] == '\0')
		snprintf(
			c->reason, sizeof(c->reason),
			"CUDA skipped: no driver is bound to %s; install the NVIDIA driver: "
			"sudo ubuntu-drivers install (Debian: sudo apt install nvidia-driver)",
			gpu->pci.bdf);
	else
		snprintf(c->reason, sizeof(c->reason),
			 "CUDA skipped: %s is bound to %s, not nvidia",
			 gpu->pci.bdf, drv);
	return false;
}

/* what the live CUDA driver said; true when it was not asked (replay) */
static bool driver_ok(const struct detect_report *report,
		      const struct detect_gpu *gpu, struct compat_candidate *c)
{
	const struct detect_cuda *cu = &report->cuda;

	if (!cu->probed)
		return true;
	if (!cu->library) {
		snprintf(
			c->reason, sizeof(c->reason),
			"CUDA skipped: libcuda.so.1 (the NVIDIA driver's CUDA library) "
			"not found; install the driver's user-space part (Ubuntu: "
			"libnvidia-compute-<branch>, Debian: libcuda1)");
		return false;
	}
	if (cu->n_devices == 0) {
		snprintf(c->reason, sizeof(c->reason), "CUDA skipped: %.200s",
			 cu->error[0] ? cu->error
				      : "the CUDA driver lists no device");
		return false;
	}
	if (gpu->cuda_index < 0) {
		snprintf(c->reason, sizeof(c->reason),
			 "CUDA skipped: the CUDA driver does not list %s "
			 "(CUDA_VISIBLE_DEVICES hides it?)",
			 gpu->pci.bdf);
		return false;
	}
	return true;
}

/* the driver version against the bundle's CUDA runtime; an unknown
 * version (a replayed tree without it) is not held against the GPU */
static bool version_ok(const struct detect_report *report,
		       const struct compat_cuda_need *need,
		       struct compat_candidate *c)
{
	const char *have = report->kmod_nvidia.version;
	int cmp;

	if (!need->min_driver[0] || !have[0] ||
	    compat_driver_version_cmp(have, need->min_driver, &cmp, NULL) < 0 ||
	    cmp >= 0)
		return true;
	snprintf(
		c->reason, sizeof(c->reason),
		"CUDA skipped: NVIDIA driver %.24s is older than %.24s, which the "
		"CUDA %.8s runtime of %.32s needs; install a newer driver: sudo "
		"ubuntu-drivers install",
		have, need->min_driver, need->runtime, need->bundle);
	return false;
}

/* nvidiactl, nvidia-uvm and every nvidia<N>; in a recording without node
 * data they are unknown, not missing */
static bool nodes_ok(const struct detect_report *report,
		     struct compat_candidate *c)
{
	const struct detect_node *uvm = detect_find_node(report, "nvidia-uvm");
	int i;

	if (!report->nodes_recorded)
		return true;
	if (!compat_node_ok(report, "nvidiactl", "CUDA", c->reason,
			    sizeof(c->reason)))
		return false;
	if (!compat_node_ok(report, "nvidia-uvm", "CUDA", c->reason,
			    sizeof(c->reason))) {
		char path[48];

		detect_root_display(DETECT_BASE_DEV, "nvidia-uvm", path,
				    sizeof(path));
		if (uvm == NULL || !uvm->exists)
			snprintf(
				c->reason, sizeof(c->reason),
				"CUDA skipped: %s missing (nvidia_uvm not loaded); sudo "
				"nvidia-modprobe -u -c=0 (or sudo modprobe nvidia-uvm)",
				path);
		return false;
	}
	for (i = 0; i < report->n_nodes; i++)
		if (strncmp(report->nodes[i].rel, "nvidia", 6) == 0 &&
		    !compat_node_ok(report, report->nodes[i].rel, "CUDA",
				    c->reason, sizeof(c->reason)))
			return false;
	return true;
}

void compat_add_cuda(const struct compat_db *db,
		     const struct detect_report *report,
		     const struct compat_gpu *g, struct compat_choice *out)
{
	const struct detect_gpu *gpu = &report->gpus[g->index];
	struct compat_candidate *c = &out->c[out->n++];
	struct compat_cuda_need need;

	memset(c, 0, sizeof(*c));
	lemon_str_copy(c->backend, sizeof(c->backend), "cuda");
	lemon_str_copy(c->target, sizeof(c->target), g->sm);
	c->gpu_index = g->index;
	if (!bound_ok(gpu, c))
		return;
	if (!g->sm[0]) {
		snprintf(
			c->reason, sizeof(c->reason),
			"CUDA skipped: compute capability of %.60s unknown (%.140s)",
			g->name, g->note[0] ? g->note : "no source answered");
		return;
	}
	if (compat_cuda_need(db, g->sm, &need, NULL) < 0) {
		snprintf(
			c->reason, sizeof(c->reason),
			"CUDA skipped: no prebuilt CUDA llama.cpp for %.8s (%.60s, "
			"compute capability %.6s); builds exist for %.90s",
			g->sm, g->name, g->cc,
			need.targets[0] ? need.targets : "no target");
		return;
	}
	if (!driver_ok(report, gpu, c) || !version_ok(report, &need, c) ||
	    !nodes_ok(report, c))
		return;
	c->usable = true;
	snprintf(
		c->reason, sizeof(c->reason),
		"CUDA %.8s build for %.80s (compute capability %.6s from %s%s%.24s)%s",
		g->sm, g->name, g->cc,
		strcmp(g->cc_source, "cuda") == 0 ? "the CUDA driver"
						  : "lemon's PCI table",
		report->kmod_nvidia.version[0] ? ", driver " : "",
		report->kmod_nvidia.version,
		report->nodes_recorded ? "" : "; device nodes not recorded");
}
