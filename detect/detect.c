/* the probe table: runs every detection source in a fixed order.
 *
 * Order matters: host first (kernel release is needed by kmod), pci before
 * the gpu/npu probes that refine PCI devices, gpu before kfd so each KFD
 * node can be matched to a GPU, cuda after gpu (it matches PCI addresses),
 * nodes after gpu/npu/cuda (it checks their nodes). */
#include <stdlib.h>
#include <string.h>

#include "detect/detect-private.h"
#include "util/str.h"

static const struct detect_probe probes[] = {
	{ "host", detect_host_probe },     /* osrelease, cmdline */
	{ "cpu", detect_cpu_probe },       /* cpuinfo, meminfo */
	{ "user", detect_user_probe },     /* uid, groups, memlock */
	{ "pci", detect_pci_probe },       /* libpci over <root>/sys/bus/pci */
	{ "gpu", detect_gpu_probe },       /* drm nodes, vram, ip_discovery, name */
	{ "kfd", detect_kfd_probe },       /* KFD topology -> gfx_target_version */
	{ "libdrm", detect_libdrm_probe }, /* dlopen'ed libdrm_amdgpu, live only */
	{ "npu", detect_npu_probe },       /* amdxdna accel node, fw_version */
	/* before kmod and nodes: cuInit may load nvidia_uvm and have
	 * nvidia-modprobe create /dev/nvidia-uvm, which those then see */
	{ "cuda", detect_cuda_probe },     /* dlopen'ed libcuda, live only */
	{ "kmod", detect_kmod_probe },     /* amdgpu, amdxdna, nvidia modules */
	{ "iommu", detect_iommu_probe },   /* cmdline flags, units, groups */
	{ "nodes", detect_nodes_probe },   /* kfd, render, accel, nvidia access */
	{ "kmsg", detect_kmsg_probe },     /* driver lines of the kernel log */
	{ "vulkan", detect_vulkan_probe }, /* dlopen'ed loader, last: slowest */
};

static void record_probe_error(struct detect_report *report, const char *name,
			       const struct lemon_err *perr)
{
	struct detect_probe_error *pe;

	if (report->n_probe_errors >= DETECT_MAX_PROBE_ERRORS)
		return;
	pe = &report->probe_errors[report->n_probe_errors++];
	lemon_str_copy(pe->probe, sizeof(pe->probe), name);
	pe->err = *perr;
}

int detect_run(const struct lemon_root *root, const struct detect_options *opts,
	       struct detect_report *report, struct lemon_err *err)
{
	struct detect_ctx ctx = { root, opts, report };
	size_t i;

	(void)err;
	memset(report, 0, sizeof(*report));
	report->live = detect_root_is_live(root);
	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		struct lemon_err perr = { 0 };

		if (probes[i].run(&ctx, &perr) < 0)
			record_probe_error(report, probes[i].name, &perr);
	}
	return 0;
}

void detect_report_free(struct detect_report *report)
{
	int i;

	for (i = 0; i < report->kmsg.n_lines; i++)
		free(report->kmsg.lines[i]);
	report->kmsg.n_lines = 0;
}

const struct detect_node *detect_find_node(const struct detect_report *report,
					   const char *rel)
{
	int i;

	for (i = 0; i < report->n_nodes; i++)
		if (strcmp(report->nodes[i].rel, rel) == 0)
			return &report->nodes[i];
	return NULL;
}

bool detect_pci_is_gpu(const struct detect_pci *pci)
{
	uint32_t cls = pci->class_code >> 16;

	/* display controllers of any vendor; AMD compute accelerators (CDNA)
	 * also show as processing accelerators (class 0x12) */
	if (cls == 0x03)
		return true;
	return pci->vendor == 0x1002 && cls == 0x12;
}

bool detect_pci_is_virtual_display(const struct detect_pci *pci)
{
	/* vendor:device of the display adapters hypervisors emulate (pci.ids:
	 * QEMU bochs stdvga, Cirrus CL-GD5446 as QEMU emulates it, Red Hat
	 * QXL, virtio 1.0 GPU, VMware SVGA II and SVGA3, Microsoft Hyper-V
	 * synthetic video) */
	static const uint16_t ids[][2] = {
		{ 0x1234, 0x1111 }, { 0x1013, 0x00b8 }, { 0x1b36, 0x0100 },
		{ 0x1af4, 0x1050 }, { 0x15ad, 0x0405 }, { 0x15ad, 0x0406 },
		{ 0x1414, 0x5353 },
	};
	size_t i;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (pci->vendor == ids[i][0] && pci->device == ids[i][1])
			return true;
	return false;
}

bool detect_pci_is_npu(const struct detect_pci *pci)
{
	/* XDNA NPUs are AMD (1022) signal processing controllers, 0x1180xx */
	return pci->vendor == 0x1022 && (pci->class_code >> 8) == 0x1180;
}

const char *detect_vendor_name(uint16_t vendor)
{
	switch (vendor) {
	case 0x1002:
	case 0x1022:
		return "AMD";
	case 0x10de:
		return "NVIDIA";
	case 0x8086:
		return "Intel";
	case 0x1af4:
		return "Red Hat (virtio)";
	case 0x1234:
		return "QEMU";
	case 0x15ad:
		return "VMware";
	default:
		return "unknown";
	}
}

const char *detect_vk_type_name(enum detect_vk_type type)
{
	switch (type) {
	case DETECT_VK_INTEGRATED:
		return "integrated";
	case DETECT_VK_DISCRETE:
		return "discrete";
	case DETECT_VK_VIRTUAL:
		return "virtual";
	case DETECT_VK_CPU:
		return "cpu";
	case DETECT_VK_OTHER:
		return "other";
	}
	return "other";
}
