/* system-wide checks: IOMMU, locked-memory limit, kernel log, Vulkan */
#include <stdio.h>
#include <string.h>

#include "doctor/doctor-private.h"

static void check_iommu(struct doctor_result *res)
{
	const struct detect_iommu *io = &res->report.iommu;
	bool npu = res->report.n_npus > 0;
	const char *param = io->cmdline_amd_iommu_off ? "amd_iommu=off" :
			    io->cmdline_iommu_off     ? "iommu=off" :
							"";

	if (param[0] != '\0') {
		char fix[160];

		snprintf(fix, sizeof(fix),
			 "remove %s from the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub), run sudo update-grub and reboot",
			 param);
		if (npu)
			doctor_add(res, "system", "iommu", DOCTOR_FAIL, fix,
				   "IOMMU disabled by %s: the NPU needs the AMD IOMMU (SVA/PASID) and stays unusable",
				   param);
		else
			doctor_add(res, "system", "iommu", DOCTOR_OK, NULL,
				   "IOMMU disabled by %s; no NPU needs it",
				   param);
		return;
	}
	if (npu && io->has_units && io->units == 0) {
		doctor_add(res, "system", "iommu", DOCTOR_FAIL,
			   "enable the IOMMU (AMD-Vi / IOMMU) in the firmware setup and reboot",
			   "no IOMMU unit is active, but the NPU needs the AMD IOMMU (SVA/PASID)");
		return;
	}
	if (io->has_units && io->units == 0) {
		doctor_add(res, "system", "iommu", DOCTOR_OK, NULL,
			   "no IOMMU unit active; nothing found here needs one");
		return;
	}
	if (!io->has_units) {
		doctor_add(res, "system", "iommu", npu ? DOCTOR_WARN : DOCTOR_OK,
			   NULL, "IOMMU state unknown (no iommu class in sysfs)");
		return;
	}
	doctor_add(res, "system", "iommu", DOCTOR_OK, NULL,
		   "IOMMU enabled (%d unit%s%s)", io->units,
		   io->units == 1 ? "" : "s",
		   io->cmdline_iommu_pt ? ", passthrough" : "");
}

static void check_memlock(struct doctor_result *res)
{
	const struct detect_user *u = &res->report.user;
	/* FastFlowLM asks for at least 100 MiB of locked memory on the NPU */
	const uint64_t npu_min = 100ull << 20;
	char have[32];

	if (!u->has_memlock) {
		doctor_add(res, "system", "memlock", DOCTOR_SKIP, NULL,
			   "locked-memory limit unknown");
		return;
	}
	if (u->memlock_unlimited) {
		doctor_add(res, "system", "memlock", DOCTOR_OK, NULL,
			   "locked-memory limit: unlimited");
		return;
	}
	doctor_format_bytes(u->memlock_bytes, have, sizeof(have));
	if (res->report.n_npus > 0 && u->memlock_bytes < npu_min) {
		doctor_add(res, "system", "memlock", DOCTOR_WARN,
			   "raise it: add '* - memlock unlimited' to /etc/security/limits.conf (or LimitMEMLOCK=infinity in the service unit) and log in again",
			   "locked-memory limit %s is below the 100 MiB NPU runtimes need",
			   have);
		return;
	}
	doctor_add(res, "system", "memlock", DOCTOR_OK, NULL,
		   "locked-memory limit: %s", have);
}

static void check_kernel_log(struct doctor_result *res)
{
	const struct detect_kmsg *km = &res->report.kmsg;
	int i, hits = 0;

	if (!km->readable) {
		doctor_add(res, "system", "kernel-log", DOCTOR_SKIP,
			   "run 'sudo lemon doctor' to include the kernel log",
			   "kernel log not readable: %s", km->error);
		return;
	}
	for (i = 0; i < km->n_lines; i++) {
		struct compat_kmsg_hit hit;

		/* NPU lines are explained by the NPU check itself */
		if (!compat_kmsg_match(res->db, km->lines[i], &hit) ||
		    strncmp(hit.id, "npu", 3) == 0)
			continue;
		hits++;
		doctor_add(res, "system", "kernel-log", DOCTOR_WARN, hit.fix,
			   "kernel log: %s (%s)", hit.meaning, km->lines[i]);
	}
	if (hits == 0)
		doctor_add(res, "system", "kernel-log", DOCTOR_OK, NULL,
			   "no known driver failures in the kernel log (%d driver lines read)",
			   km->n_lines);
}

void doctor_check_system(struct doctor_result *res)
{
	check_kernel_log(res);
	check_iommu(res);
	check_memlock(res);
}

void doctor_check_vulkan(struct doctor_result *res)
{
	const struct detect_vulkan *vk = &res->report.vulkan;
	int i, gpus = 0;

	if (!vk->probed) {
		doctor_add(res, "vulkan", "vulkan", DOCTOR_SKIP, NULL,
			   "Vulkan probe skipped (%s)", vk->skipped_why);
		return;
	}
	if (!vk->loader) {
		doctor_add(res, "vulkan", "vulkan",
			   res->report.n_gpus > 0 ? DOCTOR_WARN : DOCTOR_OK,
			   "sudo apt install libvulkan1 mesa-vulkan-drivers",
			   "Vulkan loader not available: %s", vk->error);
		return;
	}
	for (i = 0; i < vk->n_devices; i++)
		if (vk->devices[i].type != DETECT_VK_CPU)
			gpus++;
	if (gpus == 0 && res->report.n_gpus > 0) {
		doctor_add(res, "vulkan", "vulkan", DOCTOR_WARN,
			   "install the GPU's Vulkan driver: sudo apt install mesa-vulkan-drivers (AMD/Intel) or the NVIDIA driver's Vulkan ICD",
			   "the Vulkan loader lists no GPU (%d CPU device%s) although %d GPU%s present",
			   vk->n_devices, vk->n_devices == 1 ? "" : "s",
			   res->report.n_gpus,
			   res->report.n_gpus == 1 ? " is" : "s are");
		return;
	}
	doctor_add(res, "vulkan", "vulkan", DOCTOR_OK, NULL,
		   "Vulkan: %d GPU device%s, %d CPU device%s", gpus,
		   gpus == 1 ? "" : "s", vk->n_devices - gpus,
		   vk->n_devices - gpus == 1 ? "" : "s");
}
