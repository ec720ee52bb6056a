/* Unit tests of compat/lookup.c over the shipped data: PCI id -> gfx, GC IP
 * and KFD -> gfx, gfx -> ROCm family and override, NPU id -> generation,
 * driver protocols and firmware names per kernel era, and kernel-log lines
 * in the formats real kernels print. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "compat/compat.h"

static int setup(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_db *db = NULL;

	if (compat_db_load(LEMON_DATADIR, &db, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	*state = db;
	return 0;
}

static int teardown(void **state)
{
	compat_db_free(*state);
	return 0;
}

static void test_gpu_ids(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_gpu_entry e;
	struct compat_rocm r;

	assert_int_equal(compat_gpu_lookup(*state, 0x1586, 0xc1, &e, &err), 0);
	assert_string_equal(e.gfx, "gfx1151");
	assert_string_equal(e.family, "RDNA3.5");
	assert_string_equal(e.kind, "igpu");
	assert_string_equal(e.gc_ip, "11.5.1");
	assert_string_equal(e.name, "AMD Radeon 8060S Graphics");

	assert_int_equal(compat_gpu_lookup(*state, 0x744c, 0xc8, &e, &err), 0);
	assert_string_equal(e.gfx, "gfx1100");
	assert_string_equal(e.name, "AMD Radeon RX 7900 XTX");
	assert_int_equal(compat_rocm_lookup(*state, e.gfx, &r, &err), 0);
	assert_string_equal(r.family, "gfx110X");
	assert_true(r.prebuilt);
	assert_string_equal(r.hsa_override, "");

	assert_int_equal(compat_gpu_lookup(*state, 0x73df, 0xc1, &e, &err), 0);
	assert_string_equal(e.gfx, "gfx1031");
	assert_int_equal(compat_rocm_lookup(*state, e.gfx, &r, &err), 0);
	assert_string_equal(r.family, "gfx103X");
	/* the gfx103X bundle carries gfx1031 code: no workaround */
	assert_string_equal(r.hsa_override, "");
	assert_string_equal(r.therock_family, "gfx103X-all");
	/* no bundle carries gfx1035 (Rembrandt): the override remains */
	assert_int_equal(compat_rocm_lookup(*state, "gfx1035", &r, &err), 0);
	assert_string_equal(r.hsa_override, "10.3.0");
	assert_string_equal(r.override_family, "gfx103X");
	/* legacy targets: known, without a bundle */
	assert_int_equal(compat_rocm_lookup(*state, "gfx803", &r, &err), 0);
	assert_false(r.prebuilt);
	assert_string_equal(r.therock_linux, "");
	assert_int_equal(compat_rocm_lookup(*state, "gfx1010", &r, &err), 0);
	assert_false(r.prebuilt);
	assert_string_equal(r.therock_family, "gfx101X-dgpu");
	assert_string_equal(r.hsa_override, "");

	/* a revision-specific entry wins over the id-wide one */
	assert_int_equal(compat_gpu_lookup(*state, 0x73ff, 0xdf, &e, &err), 0);
	assert_string_equal(e.gfx, "gfx1031");
	assert_int_equal(compat_gpu_lookup(*state, 0x73ff, 0xc1, &e, &err), 0);
	assert_string_equal(e.gfx, "gfx1032");
	assert_string_equal(e.name, "AMD Radeon RX 6600 XT");

	/* hand-edited entry (kernel pciidlist: Sienna Cichlid) */
	assert_int_equal(compat_gpu_lookup(*state, 0x73a8, 0x00, &e, &err), 0);
	assert_string_equal(e.gfx, "gfx1030");

	/* CDNA */
	assert_int_equal(compat_gpu_lookup(*state, 0x740f, 0x02, &e, &err), 0);
	assert_string_equal(e.gfx, "gfx90a");
	assert_string_equal(e.kind, "accelerator");

	assert_int_equal(compat_gpu_lookup(*state, 0xffff, 0x00, &e, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, "1002:ffff"));
}

static void test_rocm(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_rocm r;

	assert_int_equal(compat_rocm_lookup(*state, "gfx1151", &r, &err), 0);
	assert_string_equal(r.family, "gfx1151");
	assert_true(r.prebuilt);
	assert_int_equal(compat_rocm_lookup(*state, "gfx1201", &r, &err), 0);
	assert_string_equal(r.family, "gfx120X");
	assert_int_equal(compat_rocm_lookup(*state, "gfx1153", &r, &err), 0);
	assert_false(r.prebuilt);
	/* the nightly gfx110X bundle carries gfx1103 code: no override */
	assert_int_equal(compat_rocm_lookup(*state, "gfx1103", &r, &err), 0);
	assert_string_equal(r.hsa_override, "");
	assert_string_equal(r.family, "gfx110X");
	assert_int_equal(compat_rocm_lookup(*state, "gfx1250", &r, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
}

static void test_gc_ip_and_kfd(void **state)
{
	struct lemon_err err = { 0 };
	char gfx[16], tiny[6];

	assert_int_equal(compat_gfx_from_gc_ip(*state, "11.5.1", gfx,
					       sizeof(gfx), &err), 0);
	assert_string_equal(gfx, "gfx1151");
	/* GC 10.3.4 is gfx1032, not the naive gfx1034 */
	assert_int_equal(compat_gfx_from_gc_ip(*state, "10.3.4", gfx,
					       sizeof(gfx), &err), 0);
	assert_string_equal(gfx, "gfx1032");
	assert_int_equal(compat_gfx_from_gc_ip(*state, "11.0.3", gfx,
					       sizeof(gfx), &err), 0);
	assert_string_equal(gfx, "gfx1101");
	assert_int_equal(compat_gfx_from_gc_ip(*state, "99.0.0", gfx,
					       sizeof(gfx), &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);

	assert_int_equal(compat_gfx_from_kfd(110501, gfx, sizeof(gfx), NULL), 0);
	assert_string_equal(gfx, "gfx1151");
	assert_int_equal(compat_gfx_from_kfd(90010, gfx, sizeof(gfx), NULL), 0);
	assert_string_equal(gfx, "gfx90a");
	assert_int_equal(compat_gfx_from_kfd(100300, gfx, sizeof(gfx), NULL), 0);
	assert_string_equal(gfx, "gfx1030");
	assert_int_equal(compat_gfx_from_kfd(90402, gfx, sizeof(gfx), NULL), 0);
	assert_string_equal(gfx, "gfx942");
	lemon_err_clear(&err);
	assert_int_equal(compat_gfx_from_kfd(0, gfx, sizeof(gfx), &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	assert_int_equal(compat_gfx_from_kfd(101600, gfx, sizeof(gfx), &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	assert_int_equal(compat_gfx_from_kfd(110501, tiny, sizeof(tiny), &err),
			 -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
}

static void test_npu_ids(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_npu_entry e;

	assert_int_equal(compat_npu_lookup(*state, 0x1022, 0x17f0, 0x10, &e,
					   &err), 0);
	assert_string_equal(e.generation, "npu4");
	assert_string_equal(e.firmware_dir, "amdnpu/17f0_10");
	assert_true(e.fastflowlm);
	assert_int_equal(compat_npu_lookup(*state, 0x1022, 0x17f0, 0x11, &e,
					   &err), 0);
	assert_string_equal(e.generation, "npu5");
	assert_string_equal(e.firmware_dir, "amdnpu/17f0_11");
	/* Krackan loads the Strix firmware directory */
	assert_int_equal(compat_npu_lookup(*state, 0x1022, 0x17f0, 0x20, &e,
					   &err), 0);
	assert_string_equal(e.generation, "npu6");
	assert_string_equal(e.firmware_dir, "amdnpu/17f0_10");
	assert_int_equal(compat_npu_lookup(*state, 0x1022, 0x1502, 0x00, &e,
					   &err), 0);
	assert_string_equal(e.generation, "npu1");
	assert_false(e.fastflowlm);
	assert_int_equal(compat_npu_lookup(*state, 0x1022, 0x17f0, 0x30, &e,
					   &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
}

static void test_driver_protocols(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_protocol p[4];
	int n = -1;

	assert_int_equal(compat_npu_driver_protocols(*state, "npu4",
						     "6.17.0-5-generic", "", p,
						     4, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].major, 6);
	assert_int_equal(p[0].min_minor, 12);

	assert_int_equal(compat_npu_driver_protocols(*state, "npu5", "7.0.0",
						     "", p, 4, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(p[0].major, 6);
	assert_int_equal(p[0].min_minor, 12);
	assert_int_equal(p[1].major, 7);
	assert_int_equal(p[1].min_minor, 0);

	/* the out-of-tree module ignores the kernel release */
	assert_int_equal(compat_npu_driver_protocols(*state, "npu4",
						     "6.8.0-45-generic",
						     "2.19.0_20250101", p, 4,
						     &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(p[1].major, 7);

	assert_int_equal(compat_npu_driver_protocols(*state, "npu1", "6.17.1",
						     "", p, 4, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].major, 5);
	assert_int_equal(p[0].min_minor, 7);

	/* the cap bounds the output */
	assert_int_equal(compat_npu_driver_protocols(*state, "npu4", "7.1.0",
						     "", p, 1, &n, &err), 0);
	assert_int_equal(n, 1);

	assert_int_equal(compat_npu_driver_protocols(*state, "npu4",
						     "6.8.0-45-generic", "", p,
						     4, &n, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_int_equal(n, 0);
	lemon_err_clear(&err);
	assert_int_equal(compat_npu_driver_protocols(*state, "npu4", "", "", p,
						     4, &n, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
}

static void test_firmware_names_and_versions(void **state)
{
	struct lemon_err err = { 0 };
	char names[4][24], proto[16];
	int n = -1;

	assert_int_equal(compat_npu_firmware_names(*state, "6.17.0", "", names,
						   4, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "npu.sbin");
	assert_int_equal(compat_npu_firmware_names(*state, "7.0.0-rc2", "",
						   names, 4, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "npu_7.sbin");
	assert_string_equal(names[1], "npu.sbin");
	assert_int_equal(compat_npu_firmware_names(*state, "6.17.0", "2.19.0",
						   names, 4, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(names[0], "npu.dev.sbin");
	assert_int_equal(compat_npu_firmware_names(*state, "6.13.0", "", names,
						   4, &n, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);

	assert_int_equal(compat_npu_firmware_protocol(*state, "amdnpu/17f0_10",
						      "1.1.2.64", proto,
						      sizeof(proto), &err), 0);
	assert_string_equal(proto, "7");
	assert_int_equal(compat_npu_firmware_protocol(*state, "17f0_11",
						      "1.0.20.31", proto,
						      sizeof(proto), &err), 0);
	assert_string_equal(proto, "6.12");
	assert_int_equal(compat_npu_firmware_protocol(*state, "amdnpu/17f0_10/",
						      "1.0.0.63", proto,
						      sizeof(proto), &err), 0);
	assert_string_equal(proto, "6");
	lemon_err_clear(&err);
	assert_int_equal(compat_npu_firmware_protocol(*state, "amdnpu/17f0_11",
						      "1.0.0.63", proto,
						      sizeof(proto), &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
}

static void test_kmsg_lines(void **state)
{
	struct compat_kmsg_hit h;

	assert_true(compat_kmsg_match(
		*state,
		"[    5.123456] amdxdna 0000:c7:00.1: [drm] *ERROR* aie2_check_protocol: Incompatible firmware protocol major 7 minor 2",
		&h));
	assert_string_equal(h.id, "npu-protocol-mismatch");
	assert_int_equal(h.proto_major, 7);
	assert_int_equal(h.proto_minor, 2);
	assert_non_null(strstr(h.fix, "kernel 7.0+"));

	assert_true(compat_kmsg_match(
		*state,
		"amdxdna 0000:c5:00.1: [drm] *ERROR* amdxdna_drm_open: SVA bind device failed, ret -95",
		&h));
	assert_string_equal(h.id, "npu-sva");
	assert_int_equal(h.proto_major, -1);
	assert_int_equal(h.proto_minor, -1);

	assert_true(compat_kmsg_match(
		*state,
		"amdxdna 0000:c7:00.1: [drm] *ERROR* aie2_init: failed to request_firmware amdnpu/17f0_10/npu.sbin, ret -2",
		&h));
	assert_string_equal(h.id, "npu-fw-missing");
	assert_true(compat_kmsg_match(
		*state,
		"amdxdna 0000:c7:00.1: [drm] *ERROR* aie2_get_mgmt_chann_info: Invalid mbox magic 0x0",
		&h));
	assert_string_equal(h.id, "npu-mbox-magic");
	assert_true(compat_kmsg_match(
		*state,
		"amdxdna 0000:c7:00.1: probe with driver amdxdna failed with error -22",
		&h));
	assert_string_equal(h.id, "npu-probe-failed");
	assert_true(compat_kmsg_match(
		*state,
		"[drm] Initialized amdxdna_accel_driver 0.6.0 for 0000:c5:00.1 on minor 0",
		&h));
	assert_string_equal(h.id, "npu-initialized");
	assert_string_equal(h.fix, "");

	assert_true(compat_kmsg_match(
		*state,
		"[    1.537401] kfd kfd: amdgpu: skipped device 1002:67e3, PCI rejects atomics 730<0",
		&h));
	assert_string_equal(h.id, "kfd-pci-atomics");
	assert_true(compat_kmsg_match(
		*state, "kfd kfd: amdgpu: GC IP 0b0504  not supported in kfd",
		&h));
	assert_string_equal(h.id, "kfd-gc-unsupported");
	assert_true(compat_kmsg_match(
		*state,
		"AMD-Vi: AMD IOMMUv2 functionality not available on this system - This is not a bug.",
		&h));
	assert_string_equal(h.id, "iommu-v2-unavailable");

	/* near misses stay unmatched */
	assert_false(compat_kmsg_match(
		*state,
		"amdxdna 0000:c7:00.1: [drm] *ERROR* aie2_check_protocol: Incompatible firmware protocol major x minor 2",
		&h));
	assert_false(compat_kmsg_match(
		*state, "amdgpu 0000:03:00.0: amdgpu: SE 6, SH per SE 2, CU per SH 8",
		&h));
	assert_false(compat_kmsg_match(*state, "", &h));
}

/* kernel lines of other drivers and of healthy devices never match a
 * failure pattern by accident (the fuzz target fuzz_compat_kmsg checks
 * that every match carries its pattern's own words) */
static void test_kmsg_unrelated_lines(void **state)
{
	static const char *const lines[] = {
		"[    2.803400] amdgpu 0000:0a:00.0: amdgpu: SI support provided by radeon.",
		"[    2.803402] amdgpu 0000:0a:00.0: amdgpu: Use radeon.si_support=0 amdgpu.si_support=1 to override.",
		"[    3.730500] [drm] Initialized radeon 2.50.0 20080528 for 0000:0a:00.0 on minor 0",
		"[    3.730500] [drm] Initialized amdgpu 3.59.0 for 0000:0a:00.0 on minor 0",
		"[    2.530500] [drm] Initialized i915 1.6.0 20230929 for 0000:00:02.0 on minor 1",
		"[    3.702113] kfd kfd: amdgpu: added device 1002:73df",
		"[    2.914301] amdgpu 0000:0a:00.0: amdgpu: initializing kernel modesetting (NAVY_FLOUNDER 0x1002:0x73DF 0x1002:0x0E36 0xC1).",
		"[    0.523000] AMD-Vi: Extended features (0x246577efa2254afa, 0x10): PPR NX GT [5] IA GA PC GA_vAPIC",
		"[    0.524000] AMD-Vi: Interrupt remapping enabled",
		"[    4.101000] nvidia: loading out-of-tree module taints kernel.",
		"[    4.200000] NVRM: loading NVIDIA UNIX x86_64 Kernel Module  580.95.05",
		"[    5.000000] amdgpu 0000:c5:00.0: amdgpu: Fetched VBIOS from VFCT",
		"[    5.100000] amdxdna 0000:c6:00.1: enabling device (0000 -> 0002)",
		"[    5.200000] [drm] Load firmware amdgpu/psp_14_0_0_toc.bin",
		"[    6.000000] i915 0000:00:02.0: [drm] Finished loading DMC firmware i915/adls_dmc_ver2_01.bin (v2.1)",
		"[    6.100000] Direct firmware load for i915/dg2_guc_70.bin failed with error -2",
	};
	struct compat_kmsg_hit h;
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		if (compat_kmsg_match(*state, lines[i], &h))
			fail_msg("'%s' matched %s", lines[i], h.id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpu_ids),
		cmocka_unit_test(test_rocm),
		cmocka_unit_test(test_gc_ip_and_kfd),
		cmocka_unit_test(test_npu_ids),
		cmocka_unit_test(test_driver_protocols),
		cmocka_unit_test(test_firmware_names_and_versions),
		cmocka_unit_test(test_kmsg_lines),
		cmocka_unit_test(test_kmsg_unrelated_lines),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
