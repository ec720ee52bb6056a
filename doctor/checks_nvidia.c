/* NVIDIA checks: which driver is bound (nouveau and vfio-pci keep CUDA
 * away), the unified-memory node CUDA opens, the driver's device nodes,
 * the driver version against the CUDA runtime of the bundle lemon would
 * install, the CUDA driver library (live), and NVIDIA's Vulkan driver
 * (whose ICD needs the glvnd EGL libraries: without them the loader sees
 * no NVIDIA device, as on the H100 machine,
 * tests/fixtures/nvidia-h100-recorded) */
#include <stdio.h>
#include <string.h>

#include "doctor/doctor-private.h"

/* nouveau must not claim the GPU at boot, then the NVIDIA driver goes in */
#define NOUVEAU_FIX                                                              \
	"printf 'blacklist nouveau\\noptions nouveau modeset=0\\n' | sudo tee "  \
	"/etc/modprobe.d/blacklist-nouveau.conf && sudo update-initramfs -u && " \
	"sudo ubuntu-drivers install (Debian: sudo apt install nvidia-driver), " \
	"then reboot"
#define DRIVER_INSTALL_FIX                                                       \
	"sudo ubuntu-drivers install (Debian: sudo apt install nvidia-driver), " \
	"then reboot"
#define UVM_FIX "sudo nvidia-modprobe -u -c=0 (or sudo modprobe nvidia-uvm)"
#define ICD_FIX                                                                    \
	"sudo apt install libvulkan1 libglvnd0 libegl1 (NVIDIA's Vulkan ICD "      \
	"needs the glvnd EGL libraries); the ICD file nvidia_icd.json comes with " \
	"the driver's GL package (Ubuntu: libnvidia-gl-<branch>)"

static bool any_bound(const struct detect_report *r)
{
	int i;

	for (i = 0; i < r->n_gpus; i++)
		if (r->gpus[i].pci.vendor == 0x10de &&
		    strcmp(r->gpus[i].pci.driver, "nvidia") == 0)
			return true;
	return false;
}

static void check_binding(struct doctor_result *res,
			  const struct compat_gpu *cg, const char *id)
{
	const struct detect_gpu *g = &res->report.gpus[cg->index];
	const char *drv = g->pci.driver;

	if (strcmp(drv, "nouveau") == 0)
		doctor_add(
			res, "gpu", id, DOCTOR_FAIL, NOUVEAU_FIX,
			"%s (10de:%04x) is bound to nouveau; CUDA and NVIDIA's Vulkan "
			"driver need the NVIDIA driver",
			cg->name, g->pci.device);
	else if (strcmp(drv, "vfio-pci") == 0)
		doctor_add(
			res, "gpu", id, DOCTOR_WARN,
			"to use it here, take its id out of vfio-pci.ids (kernel command line "
			"or /etc/modprobe.d) and reboot",
			"%s (10de:%04x) is bound to vfio-pci: reserved for a virtual machine",
			cg->name, g->pci.device);
	else if (drv[0] == '\0' && res->report.kmod_nvidia.loaded)
		doctor_add(
			res, "gpu", id, DOCTOR_FAIL,
			"the nvidia module is loaded but did not bind: read 'sudo dmesg "
			"| grep -i NVRM' for the probe error",
			"%s (10de:%04x) has no driver bound", cg->name,
			g->pci.device);
	else if (drv[0] == '\0')
		doctor_add(
			res, "gpu", id, DOCTOR_FAIL, DRIVER_INSTALL_FIX,
			"%s (10de:%04x) has no driver bound; the NVIDIA driver is not "
			"installed or not loaded",
			cg->name, g->pci.device);
	else
		doctor_add(res, "gpu", id, DOCTOR_WARN, NULL,
			   "%s (10de:%04x) is bound to %s, not nvidia",
			   cg->name, g->pci.device, drv);
}

static void check_facts(struct doctor_result *res, const struct compat_gpu *cg,
			const char *id)
{
	const struct detect_report *r = &res->report;
	const struct detect_gpu *g = &r->gpus[cg->index];
	const struct detect_cuda_device *d = NULL;
	char total[24] = "unknown", free_b[24] = "unknown";

	if (g->cuda_index >= 0 && g->cuda_index < r->cuda.n_devices)
		d = &r->cuda.devices[g->cuda_index];
	if (d && d->has_total)
		doctor_format_bytes(d->total_bytes, total, sizeof(total));
	if (d && d->has_free)
		doctor_format_bytes(d->free_bytes, free_b, sizeof(free_b));
	if (!cg->cc[0])
		doctor_add(
			res, "gpu", id, DOCTOR_WARN,
			"report the device: lemon doctor --json output and lspci -nn",
			"%s (10de:%04x): compute capability unknown", cg->name,
			g->pci.device);
	else if (cg->cc_disagreement[0])
		doctor_add(res, "gpu", id, DOCTOR_WARN, NULL,
			   "%s: compute capability %s (%s); %s", cg->name,
			   cg->cc, cg->cc_source, cg->cc_disagreement);
	else
		doctor_add(
			res, "gpu", id, DOCTOR_OK, NULL,
			"%s: %s, compute capability %s (from %s), driver %s, VRAM %s, %s free",
			cg->name,
			cg->arch[0] ? cg->arch : "architecture unknown", cg->cc,
			cg->cc_source,
			r->kmod_nvidia.version[0] ? r->kmod_nvidia.version
						  : "version unknown",
			total, free_b);
}

static void check_nodes(struct doctor_result *res)
{
	const struct detect_report *r = &res->report;
	const struct detect_node *uvm = detect_find_node(r, "nvidia-uvm");
	char id[32], path[48];
	int i;

	detect_root_display(DETECT_BASE_DEV, "nvidia-uvm", path, sizeof(path));
	if (!r->nodes_recorded) {
		doctor_add(
			res, "gpu", "nvidia-nodes", DOCTOR_WARN,
			"record the tree again with scripts/record-sysroot.sh",
			"the NVIDIA device nodes were not recorded in this tree");
		return;
	}
	if (uvm == NULL || !uvm->exists)
		doctor_add(
			res, "gpu", "nvidia-uvm", DOCTOR_FAIL, UVM_FIX,
			"the NVIDIA driver is loaded but %s is missing (nvidia_uvm %s), "
			"so CUDA cannot start",
			path,
			r->kmod_nvidia_uvm.loaded ? "loaded, node not created"
						  : "not loaded");
	else
		doctor_check_node(res, "gpu", "nvidia-uvm", "nvidia-uvm");
	doctor_check_node(res, "gpu", "node:nvidiactl", "nvidiactl");
	for (i = 0; i < r->n_nodes; i++) {
		const char *rel = r->nodes[i].rel;

		if (strncmp(rel, "nvidia", 6) != 0 || rel[6] < '0' ||
		    rel[6] > '9')
			continue;
		/* nvidia<N>: at most "nvidia" and 5 digits (nodes.c) */
		snprintf(id, sizeof(id), "node:%.26s", rel);
		doctor_check_node(res, "gpu", id, rel);
	}
}

/* the bundle lemon would install for the first NVIDIA GPU with a known
 * compute capability, and the driver that bundle's CUDA runtime needs */
static void check_driver_version(struct doctor_result *res)
{
	const char *have = res->report.kmod_nvidia.version;
	struct compat_cuda_need need;
	int i, cmp;

	for (i = 0; i < res->view.n_gpus; i++)
		if (res->view.gpus[i].sm[0] &&
		    compat_cuda_need(res->db, res->view.gpus[i].sm, &need,
				     NULL) == 0 &&
		    need.min_driver[0])
			break;
	if (i == res->view.n_gpus)
		return;
	if (!have[0] ||
	    compat_driver_version_cmp(have, need.min_driver, &cmp, NULL) < 0) {
		doctor_add(
			res, "gpu", "nvidia-driver-version", DOCTOR_WARN, NULL,
			"NVIDIA driver version unknown (%s needs %s or newer for its "
			"CUDA %s runtime)",
			need.bundle, need.min_driver, need.runtime);
		return;
	}
	if (cmp < 0) {
		char fix[160];

		snprintf(
			fix, sizeof(fix),
			"install NVIDIA driver %s or newer: " DRIVER_INSTALL_FIX,
			need.min_driver);
		doctor_add(
			res, "gpu", "nvidia-driver-version", DOCTOR_FAIL, fix,
			"NVIDIA driver %s is older than %s, which the CUDA %s runtime "
			"of %s needs",
			have, need.min_driver, need.runtime, need.bundle);
		return;
	}
	doctor_add(res, "gpu", "nvidia-driver-version", DOCTOR_OK, NULL,
		   "NVIDIA driver %s runs the CUDA %s runtime of %s (needs %s)",
		   have, need.runtime, need.bundle, need.min_driver);
}

static void check_cuda(struct doctor_result *res)
{
	const struct detect_cuda *cu = &res->report.cuda;

	if (!cu->probed)
		doctor_add(res, "gpu", "cuda-driver", DOCTOR_SKIP, NULL,
			   "CUDA driver probe skipped (%s)", cu->skipped_why);
	else if (!cu->library)
		doctor_add(
			res, "gpu", "cuda-driver", DOCTOR_FAIL,
			"install the NVIDIA driver's CUDA library (Ubuntu: sudo apt install "
			"libnvidia-compute-<branch>; Debian: sudo apt install libcuda1)",
			"%s", cu->error);
	else if (cu->n_devices == 0)
		doctor_add(
			res, "gpu", "cuda-driver", DOCTOR_FAIL,
			"read 'sudo dmesg | grep -i NVRM'; check CUDA_VISIBLE_DEVICES",
			"the CUDA driver lists no device: %s",
			cu->error[0] ? cu->error : "no error given");
	else
		doctor_add(res, "gpu", "cuda-driver", DOCTOR_OK, NULL,
			   "CUDA driver %d.%d: %d device%s",
			   cu->driver_version / 1000,
			   (cu->driver_version % 1000) / 10, cu->n_devices,
			   cu->n_devices == 1 ? "" : "s");
}

/* the driver is there but the Vulkan loader does not list an NVIDIA GPU */
static void check_icd(struct doctor_result *res)
{
	const struct detect_vulkan *vk = &res->report.vulkan;
	int i;

	if (!vk->probed || !vk->loader)
		return;
	for (i = 0; i < vk->n_devices; i++)
		if (vk->devices[i].vendor_id == 0x10de)
			return;
	doctor_add(res, "vulkan", "vulkan-nvidia", DOCTOR_FAIL, ICD_FIX,
		   "the NVIDIA driver is loaded but the Vulkan loader lists no "
		   "NVIDIA device (%.120s)",
		   vk->error[0] ? vk->error : "its ICD did not load");
}

void doctor_check_nvidia(struct doctor_result *res)
{
	bool any = false;
	char id[32];
	int i;

	for (i = 0; i < res->view.n_gpus; i++) {
		const struct compat_gpu *cg = &res->view.gpus[i];
		const struct detect_gpu *g = &res->report.gpus[cg->index];

		if (g->pci.vendor != 0x10de)
			continue;
		any = true;
		snprintf(id, sizeof(id), "gpu:%s", g->pci.bdf);
		if (strcmp(g->pci.driver, "nvidia") == 0)
			check_facts(res, cg, id);
		else
			check_binding(res, cg, id);
	}
	if (!any || !any_bound(&res->report))
		return;
	check_nodes(res);
	check_driver_version(res);
	check_cuda(res);
	check_icd(res);
}
