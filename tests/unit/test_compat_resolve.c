/* Unit tests of compat/resolve.c and compat/verdict.c: the gfx source order
 * and disagreement reports for GPUs, labelled guesses for unknown ids, and
 * the NPU verdicts (protocol mismatch on a 6.x kernel, healthy 7.0, IOMMU
 * off, driver not bound, no driver for the kernel, missing firmware in a
 * sysroot, SVA failure, closed accel node). Reports are built by hand. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "compat/compat.h"
#include "tree.h"
#include "util/str.h"

struct fx {
	struct compat_db *db;
	struct detect_report r;
	struct compat_view view;
	char *lines[8];
};

static int setup(void **state)
{
	struct lemon_err err = { 0 };
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || compat_db_load(LEMON_DATADIR, &f->db, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		free(f);
		return -1;
	}
	lemon_str_copy(f->r.host.kernel, sizeof(f->r.host.kernel),
		       "6.17.0-5-generic");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int i;

	for (i = 0; i < f->r.kmsg.n_lines; i++)
		free(f->r.kmsg.lines[i]);
	compat_db_free(f->db);
	free(f);
	return 0;
}

static void kmsg(struct detect_report *r, const char *line)
{
	r->kmsg.lines[r->kmsg.n_lines++] = strdup(line);
}

static struct detect_gpu *amd(struct detect_report *r, uint16_t device,
			      uint8_t rev, uint32_t kfd, const char *gc)
{
	struct detect_gpu *g = &r->gpus[r->n_gpus++];

	snprintf(g->pci.bdf, sizeof(g->pci.bdf), "0000:%02x:00.0", r->n_gpus);
	g->pci.vendor = 0x1002;
	g->pci.device = device;
	g->pci.revision = rev;
	lemon_str_copy(g->pci.driver, sizeof(g->pci.driver), "amdgpu");
	g->has_kfd = kfd != 0;
	g->kfd_gfx_target_version = kfd;
	lemon_str_copy(g->gc_ip, sizeof(g->gc_ip), gc);
	return g;
}

static struct detect_npu *npu(struct detect_report *r, uint8_t rev,
			      const char *driver)
{
	struct detect_npu *n = &r->npus[r->n_npus++];

	lemon_str_copy(n->pci.bdf, sizeof(n->pci.bdf), "0000:c5:00.1");
	n->pci.vendor = 0x1022;
	n->pci.device = 0x17f0;
	n->pci.revision = rev;
	n->pci.class_code = 0x118000;
	lemon_str_copy(n->pci.driver, sizeof(n->pci.driver), driver);
	return n;
}

static void resolve(struct fx *f, const struct lemon_root *root)
{
	struct lemon_err err = { 0 };

	assert_int_equal(compat_resolve(f->db, root, &f->r, &f->view, &err), 0);
}

static void test_gfx_sources(void **state)
{
	struct fx *f = *state;

	amd(&f->r, 0x744c, 0xc8, 110000, "11.0.0");
	amd(&f->r, 0x744c, 0xc8, 0, "11.0.0");
	amd(&f->r, 0x744c, 0xc8, 0, "");
	resolve(f, NULL);
	assert_int_equal(f->view.n_gpus, 3);
	assert_string_equal(f->view.gpus[0].gfx_source, "kfd");
	assert_string_equal(f->view.gpus[1].gfx_source, "ip_discovery");
	assert_string_equal(f->view.gpus[2].gfx_source, "pci_table");
	assert_string_equal(f->view.gpus[2].gfx, "gfx1100");
	assert_string_equal(f->view.gpus[0].disagreement, "");
	assert_string_equal(f->view.gpus[0].rocm_family, "gfx110X");
	assert_true(f->view.gpus[0].rocm_prebuilt);
	assert_string_equal(f->view.gpus[0].kind, "dgpu");
	assert_string_equal(f->view.gpus[0].vendor, "AMD");
	assert_string_equal(f->view.gpus[0].name, "AMD Radeon RX 7900 XTX");
	assert_false(f->view.gpus[0].gfx_guess);
}

static void test_disagreement_and_names(void **state)
{
	struct fx *f = *state;
	struct detect_gpu *g;

	/* KFD wins over the table and the difference is reported */
	g = amd(&f->r, 0x150e, 0xc1, 110501, "");
	lemon_str_copy(g->marketing_name, sizeof(g->marketing_name),
		       "AMD Radeon 890M Graphics (from libdrm)");
	resolve(f, NULL);
	assert_string_equal(f->view.gpus[0].gfx, "gfx1151");
	assert_string_equal(f->view.gpus[0].disagreement,
			    "kfd says gfx1151, pci_table says gfx1150");
	assert_string_equal(f->view.gpus[0].name,
			    "AMD Radeon 890M Graphics (from libdrm)");
}

static void test_unknown_ids(void **state)
{
	struct fx *f = *state;

	/* unknown id, unknown GC IP: a labelled guess */
	amd(&f->r, 0x7600, 0x00, 0, "12.5.0");
	/* unknown id, KFD answers: a fact, said to be outside the table */
	amd(&f->r, 0x7601, 0x00, 110501, "");
	/* unknown id, nothing answers */
	amd(&f->r, 0x7602, 0x00, 0, "");
	resolve(f, NULL);
	assert_string_equal(f->view.gpus[0].gfx, "gfx1250");
	assert_true(f->view.gpus[0].gfx_guess);
	assert_string_equal(f->view.gpus[0].gfx_source, "ip_discovery");
	assert_string_equal(f->view.gpus[0].name, "AMD GPU");
	assert_string_equal(f->view.gpus[0].note,
			    "1002:7600 is not in lemon's table and KFD reports nothing; gfx1250 is a guess from GC IP 12.5.0");
	assert_string_equal(f->view.gpus[0].rocm_family, "");

	assert_string_equal(f->view.gpus[1].gfx, "gfx1151");
	assert_false(f->view.gpus[1].gfx_guess);
	assert_string_equal(f->view.gpus[1].kind, "igpu");
	assert_non_null(strstr(f->view.gpus[1].note, "not in lemon's table"));

	assert_string_equal(f->view.gpus[2].gfx, "");
	assert_false(f->view.gpus[2].gfx_guess);
	assert_string_equal(f->view.gpus[2].gfx_source, "");
	assert_non_null(strstr(f->view.gpus[2].note, "gfx unknown"));
}

static void test_intel_igpu(void **state)
{
	struct fx *f = *state;
	struct detect_gpu *g = &f->r.gpus[f->r.n_gpus++];

	lemon_str_copy(g->pci.bdf, sizeof(g->pci.bdf), "0000:00:02.0");
	g->pci.vendor = 0x8086;
	g->pci.device = 0x46a6;
	lemon_str_copy(g->pci.driver, sizeof(g->pci.driver), "i915");
	resolve(f, NULL);
	assert_string_equal(f->view.gpus[0].vendor, "Intel");
	assert_string_equal(f->view.gpus[0].kind, "igpu");
	assert_string_equal(f->view.gpus[0].name, "Intel GPU");
	assert_string_equal(f->view.gpus[0].gfx, "");
}

/* libdrm's live answer against sysfs: a VRAM heap a little below
 * mem_info_vram_total agrees, one above it (or far below) is reported */
static void test_libdrm_disagreement(void **state)
{
	struct fx *f = *state;
	struct detect_gpu *g = amd(&f->r, 0x1586, 0xc1, 110501, "11.5.1");

	g->has_vram = true;
	g->vram_bytes = 2147483648u;
	g->libdrm.queried = true;
	g->libdrm.has_vram = true;
	g->libdrm.vram_heap = 2113929216u; /* minus 32 MiB reserved */
	resolve(f, NULL);
	assert_string_equal(f->view.gpus[0].libdrm_disagreement, "");
	g->libdrm.vram_heap = 4294967296u;
	resolve(f, NULL);
	assert_string_equal(f->view.gpus[0].libdrm_disagreement,
			    "libdrm's VRAM heap is 4294967296 bytes, sysfs mem_info_vram_total 2147483648");
	g->libdrm.vram_heap = 2113929216u;
	lemon_str_copy(g->libdrm.marketing_name,
		       sizeof(g->libdrm.marketing_name), "AMD Radeon 8060S Graphics");
	lemon_str_copy(g->marketing_name, sizeof(g->marketing_name),
		       "AMD Radeon 8050S Graphics");
	resolve(f, NULL);
	assert_non_null(strstr(f->view.gpus[0].libdrm_disagreement,
			       "libdrm names it 'AMD Radeon 8060S Graphics'"));
	/* not asked: nothing to compare */
	g->libdrm.queried = false;
	resolve(f, NULL);
	assert_string_equal(f->view.gpus[0].libdrm_disagreement, "");
}

/* two Arc A770 cards: each takes the name of the Vulkan device at its own
 * PCI address (VK_EXT_pci_bus_info), not the first with the same ids */
static void test_vulkan_matched_by_bus(void **state)
{
	struct fx *f = *state;
	static const char *const bdf[2] = { "0000:03:00.0", "0000:07:00.0" };
	static const char *const vk_bdf[2] = { "0000:07:00.0", "0000:03:00.0" };
	static const char *const vk_name[2] = { "Arc at 07", "Arc at 03" };
	int i;

	for (i = 0; i < 2; i++) {
		struct detect_gpu *g = &f->r.gpus[f->r.n_gpus++];
		struct detect_vk_device *d =
			&f->r.vulkan.devices[f->r.vulkan.n_devices++];

		lemon_str_copy(g->pci.bdf, sizeof(g->pci.bdf), bdf[i]);
		g->pci.vendor = 0x8086;
		g->pci.device = 0x56a0;
		lemon_str_copy(g->pci.driver, sizeof(g->pci.driver), "i915");
		lemon_str_copy(g->pci.name, sizeof(g->pci.name),
			       "DG2 [Arc A770]");
		d->vendor_id = 0x8086;
		d->device_id = 0x56a0;
		d->type = DETECT_VK_DISCRETE;
		lemon_str_copy(d->name, sizeof(d->name), vk_name[i]);
		lemon_str_copy(d->pci_bdf, sizeof(d->pci_bdf), vk_bdf[i]);
	}
	f->r.vulkan.probed = true;
	resolve(f, NULL);
	assert_string_equal(f->view.gpus[0].name, "Arc at 03");
	assert_string_equal(f->view.gpus[1].name, "Arc at 07");
	assert_string_equal(f->view.gpus[0].name_source, "vulkan");
	assert_string_equal(f->view.gpus[0].kind, "dgpu");
	/* a driver that reports no address: matched by ids, pci.ids
	 * otherwise */
	f->r.vulkan.devices[0].pci_bdf[0] = '\0';
	f->r.vulkan.n_devices = 1;
	resolve(f, NULL);
	assert_string_equal(f->view.gpus[0].name, "Arc at 07");
	f->r.vulkan.n_devices = 0;
	resolve(f, NULL);
	assert_string_equal(f->view.gpus[0].name, "DG2 [Arc A770]");
	assert_string_equal(f->view.gpus[0].name_source, "pci.ids");
}

static void test_npu_protocol_mismatch(void **state)
{
	struct fx *f = *state;

	npu(&f->r, 0x10, "");
	kmsg(&f->r, "[    4.2] amdxdna 0000:c5:00.1: [drm] *ERROR* aie2_check_protocol: Incompatible firmware protocol major 7 minor 2");
	kmsg(&f->r, "[    4.2] amdxdna 0000:c5:00.1: [drm] *ERROR* aie2_hw_start: firmware is not alive");
	resolve(f, NULL);
	assert_true(f->view.npus[0].known);
	assert_string_equal(f->view.npus[0].entry.generation, "npu4");
	assert_string_equal(f->view.npus[0].firmware_protocol, "7.2");
	assert_string_equal(f->view.npus[0].driver_protocol, "6.12+");
	assert_int_equal(f->view.npus[0].status, COMPAT_FAIL);
	assert_string_equal(f->view.npus[0].message,
			    "driver did not bind: firmware protocol 7.2 is newer than what amdxdna in kernel 6.17 accepts (6.12+)");
	assert_string_equal(f->view.npus[0].fix,
			    "install kernel 7.0+ (or amdxdna-dkms), or pin linux-firmware's protocol-6 npu.sbin (amdnpu/17f0_10/npu.sbin -> npu.sbin.1.0.0.63)");
}

static void test_npu_healthy_7_0(void **state)
{
	struct fx *f = *state;
	struct detect_npu *n;

	lemon_str_copy(f->r.host.kernel, sizeof(f->r.host.kernel), "7.0.0-rc2");
	n = npu(&f->r, 0x11, "amdxdna");
	lemon_str_copy(n->accel_node, sizeof(n->accel_node), "accel0");
	lemon_str_copy(n->fw_version, sizeof(n->fw_version), "1.1.2.65");
	f->r.nodes[0].exists = true;
	f->r.nodes[0].readable = true;
	f->r.nodes[0].writable = true;
	lemon_str_copy(f->r.nodes[0].rel, sizeof(f->r.nodes[0].rel),
		       "accel/accel0");
	f->r.n_nodes = 1;
	kmsg(&f->r, "[drm] Initialized amdxdna_accel_driver 0.6.0 for 0000:c5:00.1 on minor 0");
	resolve(f, NULL);
	assert_string_equal(f->view.npus[0].firmware_protocol, "7");
	assert_string_equal(f->view.npus[0].driver_protocol, "6.12+ or 7.x");
	assert_int_equal(f->view.npus[0].status, COMPAT_OK);
	assert_string_equal(f->view.npus[0].message,
			    "npu5, XDNA 2: amdxdna bound, firmware 1.1.2.65, protocol 7");
	assert_string_equal(f->view.npus[0].fix, "");

	/* the same node closed to this user: the NPU verdict stays about
	 * driver and firmware; the node's access is judged once, by the
	 * doctor's accel check (test_doctor_verdicts.sh) */
	f->r.nodes[0].readable = false;
	lemon_str_copy(f->r.nodes[0].path, sizeof(f->r.nodes[0].path),
		       "/dev/accel/accel0");
	lemon_str_copy(f->r.nodes[0].group, sizeof(f->r.nodes[0].group),
		       "render");
	resolve(f, NULL);
	assert_int_equal(f->view.npus[0].status, COMPAT_OK);
	assert_null(strstr(f->view.npus[0].message, "/dev/accel"));
}

static void test_npu_iommu_off(void **state)
{
	struct fx *f = *state;

	npu(&f->r, 0x11, "");
	f->r.iommu.cmdline_amd_iommu_off = true;
	/* 6.17: every open needs SVA, so the NPU cannot work */
	resolve(f, NULL);
	assert_int_equal(f->view.npus[0].status, COMPAT_FAIL);
	assert_string_equal(f->view.npus[0].fix,
			    "remove amd_iommu=off / iommu=off from the kernel command line and enable the IOMMU in the firmware setup");
	assert_non_null(strstr(f->view.npus[0].message, "amd_iommu=off"));
	assert_non_null(strstr(f->view.npus[0].message, "SVA"));
	/* 7.2: a configured carveout stands in for SVA; the boundary is
	 * uncertain and said to be */
	lemon_str_copy(f->r.host.kernel, sizeof(f->r.host.kernel), "7.2.0");
	resolve(f, NULL);
	assert_int_equal(f->view.npus[0].status, COMPAT_WARN);
	assert_non_null(strstr(f->view.npus[0].message, "carveout"));
	assert_non_null(strstr(f->view.npus[0].message, "(uncertain)"));
	assert_non_null(strstr(f->view.npus[0].fix, "carveout"));
	/* the out-of-tree driver: physical-address mode with carveout/CMA */
	lemon_str_copy(f->r.kmod_amdxdna.version,
		       sizeof(f->r.kmod_amdxdna.version), "2.19.0");
	resolve(f, NULL);
	assert_int_equal(f->view.npus[0].status, COMPAT_WARN);
	assert_non_null(strstr(f->view.npus[0].message, "out-of-tree"));
	/* a kernel no rule covers keeps the plain answer */
	f->r.kmod_amdxdna.version[0] = '\0';
	lemon_str_copy(f->r.host.kernel, sizeof(f->r.host.kernel), "6.10.0");
	f->r.iommu.cmdline_amd_iommu_off = false;
	f->r.iommu.cmdline_iommu_off = true;
	resolve(f, NULL);
	assert_int_equal(f->view.npus[0].status, COMPAT_FAIL);
	assert_string_equal(f->view.npus[0].fix,
			    "remove iommu=off from the kernel command line");
}

static void test_npu_not_bound(void **state)
{
	struct fx *f = *state;

	npu(&f->r, 0x11, "");
	resolve(f, NULL);
	assert_int_equal(f->view.npus[0].status, COMPAT_FAIL);
	assert_string_equal(f->view.npus[0].message,
			    "NPU 0000:c5:00.1 present but amdxdna is not bound");
	assert_non_null(strstr(f->view.npus[0].fix, "sudo modprobe amdxdna"));

	/* a kernel-log failure line names the reason instead */
	kmsg(&f->r, "amdxdna 0000:c5:00.1: [drm] *ERROR* aie2_init: Running under hypervisor not supported");
	resolve(f, NULL);
	assert_string_equal(f->view.npus[0].fix,
			    "run on bare metal: amdxdna refuses to start inside a virtual machine");
	assert_non_null(strstr(f->view.npus[0].message,
			       "driver did not bind: "));
}

static void test_npu_old_kernel(void **state)
{
	struct fx *f = *state;

	lemon_str_copy(f->r.host.kernel, sizeof(f->r.host.kernel),
		       "6.8.0-45-generic");
	npu(&f->r, 0x11, "");
	resolve(f, NULL);
	assert_string_equal(f->view.npus[0].driver_protocol, "");
	assert_int_equal(f->view.npus[0].status, COMPAT_FAIL);
	assert_string_equal(f->view.npus[0].message,
			    "driver did not bind: kernel 6.8.0-45-generic has no amdxdna for npu5 (mainline since 6.14)");
	assert_string_equal(f->view.npus[0].fix,
			    "install kernel 6.14+ or amdxdna-dkms");
}

static void test_npu_firmware_in_sysroot(void **state)
{
	struct fx *f = *state;
	struct lemon_err err = { 0 };
	struct lemon_root *root = NULL;
	char tmpl[] = "/tmp/lemon-resolve-XXXXXX", path[512];
	char *dir = mkdtemp(tmpl);

	assert_non_null(dir);
	tree_mkdirs(dir);
	assert_int_equal(detect_root_new(dir, &root, &err), 0);
	npu(&f->r, 0x11, "");
	resolve(f, root);
	assert_int_equal(f->view.npus[0].status, COMPAT_FAIL);
	assert_string_equal(f->view.npus[0].message,
			    "driver did not bind: no NPU firmware found (tried amdnpu/17f0_11/npu.sbin)");

	/* linux-firmware's layout: npu.sbin links to the versioned blob */
	tree_write(dir, "lib/firmware/amdnpu/17f0_11/npu.sbin.1.0.20.31", "x");
	tree_link(dir, "lib/firmware/amdnpu/17f0_11/npu.sbin",
		  "npu.sbin.1.0.20.31");
	resolve(f, root);
	assert_string_equal(f->view.npus[0].firmware.version, "1.0.20.31");
	assert_string_equal(f->view.npus[0].firmware_protocol, "6.12");
	assert_string_equal(f->view.npus[0].message,
			    "NPU 0000:c5:00.1 present but amdxdna is not bound");

	detect_root_free(root);
	snprintf(path, sizeof(path), "%s/lib/firmware/amdnpu/17f0_11/npu.sbin",
		 dir);
	unlink(path);
	snprintf(path, sizeof(path),
		 "%s/lib/firmware/amdnpu/17f0_11/npu.sbin.1.0.20.31", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lib/firmware/amdnpu/17f0_11", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/lib/firmware/amdnpu", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/lib/firmware", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/lib", dir);
	rmdir(path);
	rmdir(dir);
}

static void test_npu_sva_and_unknown(void **state)
{
	struct fx *f = *state;
	struct detect_npu *n;

	n = npu(&f->r, 0x10, "amdxdna");
	lemon_str_copy(n->accel_node, sizeof(n->accel_node), "accel0");
	/* a line of another NPU is not ours; our own SVA failure is */
	kmsg(&f->r, "amdxdna 0000:c6:00.1: [drm] *ERROR* aie2_init: Running under hypervisor not supported");
	kmsg(&f->r, "amdxdna 0000:c5:00.1: [drm] *ERROR* amdxdna_drm_open: SVA bind device failed, ret -95");
	resolve(f, NULL);
	assert_int_equal(f->view.npus[0].status, COMPAT_FAIL);
	assert_non_null(strstr(f->view.npus[0].message,
			       "amdxdna is bound but opening the NPU fails: "));
	assert_non_null(strstr(f->view.npus[0].fix, "amd_iommu=off"));

	f->r.npus[0].pci.revision = 0x30;
	resolve(f, NULL);
	assert_false(f->view.npus[0].known);
	assert_int_equal(f->view.npus[0].status, COMPAT_WARN);
	assert_string_equal(f->view.npus[0].message,
			    "unknown NPU 1022:17f0 rev 30: lemon's data does not know its generation");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gfx_sources, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_disagreement_and_names,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_ids, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_intel_igpu, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_libdrm_disagreement, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_vulkan_matched_by_bus, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_npu_protocol_mismatch,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_npu_healthy_7_0, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_npu_iommu_off, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_npu_not_bound, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_npu_old_kernel, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_npu_firmware_in_sysroot,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_npu_sva_and_unknown, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
