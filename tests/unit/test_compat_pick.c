/* Unit tests of compat/pick.c: detect reports built by hand for a few
 * machines (ids and KFD values of real parts), resolved with the shipped
 * data, and the ordered backend candidates with their exact reasons. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "compat/compat.h"
#include "util/str.h"

struct fx {
	struct compat_db *db;
	struct detect_report r;
	struct compat_view view;
	struct compat_choice ch;
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
	lemon_str_copy(f->r.cpu.model, sizeof(f->r.cpu.model),
		       "AMD RYZEN AI MAX+ 395 w/ Radeon 8060S");
	f->r.cpu.has_cores = true;
	f->r.cpu.cores = 32;
	lemon_str_copy(f->r.host.kernel, sizeof(f->r.host.kernel),
		       "6.17.0-5-generic");
	lemon_str_copy(f->r.vulkan.skipped_why, sizeof(f->r.vulkan.skipped_why),
		       "--no-vulkan");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	compat_db_free(f->db);
	free(f);
	return 0;
}

static void add_node(struct detect_report *r, const char *rel, bool ok,
		     const char *group)
{
	struct detect_node *n = &r->nodes[r->n_nodes++];

	memset(n, 0, sizeof(*n));
	lemon_str_copy(n->rel, sizeof(n->rel), rel);
	snprintf(n->path, sizeof(n->path), "/dev/%s", rel);
	n->exists = true;
	n->has_mode = true; /* recorded: a node without a mode is unknown */
	n->readable = ok;
	n->writable = ok;
	lemon_str_copy(n->group, sizeof(n->group), group);
}

/* an AMD GPU bound to amdgpu with a KFD node and an accessible render node */
static struct detect_gpu *add_amd(struct detect_report *r, const char *bdf,
				  uint16_t device, uint8_t rev, uint32_t kfd,
				  const char *render)
{
	struct detect_gpu *g = &r->gpus[r->n_gpus++];
	char rel[40];

	memset(g, 0, sizeof(*g));
	lemon_str_copy(g->pci.bdf, sizeof(g->pci.bdf), bdf);
	g->pci.vendor = 0x1002;
	g->pci.device = device;
	g->pci.revision = rev;
	g->pci.class_code = 0x030000;
	lemon_str_copy(g->pci.driver, sizeof(g->pci.driver), "amdgpu");
	g->has_kfd = kfd != 0;
	g->kfd_gfx_target_version = kfd;
	g->kfd_cwsr = kfd != 0; /* a current kernel: the CWSR fix is in */
	lemon_str_copy(g->render_node, sizeof(g->render_node), render);
	snprintf(rel, sizeof(rel), "dri/%s", render);
	add_node(r, rel, true, "render");
	r->kfd_present = true;
	return g;
}

static void run(struct fx *f)
{
	struct lemon_err err = { 0 };

	assert_int_equal(compat_resolve(f->db, NULL, &f->r, &f->view, &err), 0);
	assert_int_equal(compat_pick_backend(f->db, &f->r, &f->view, &f->ch,
					     &err), 0);
}

static void assert_cand(const struct compat_candidate *c, const char *backend,
			const char *target, bool usable)
{
	assert_string_equal(c->backend, backend);
	assert_string_equal(c->target, target);
	assert_int_equal(c->usable, usable);
}

static void test_strix_halo_healthy(void **state)
{
	struct fx *f = *state;

	add_amd(&f->r, "0000:c5:00.0", 0x1586, 0xc1, 110501, "renderD128");
	add_node(&f->r, "kfd", true, "render");
	run(f);
	assert_string_equal(f->view.gpus[0].gfx, "gfx1151");
	assert_string_equal(f->view.gpus[0].gfx_source, "kfd");
	assert_int_equal(f->ch.n, 3);
	assert_cand(&f->ch.c[0], "rocm", "gfx1151", true);
	assert_string_equal(f->ch.c[0].gfx, "gfx1151");
	assert_string_equal(f->ch.c[0].env, "");
	assert_string_equal(f->ch.c[0].reason,
			    "ROCm gfx1151 build for gfx1151 (AMD Radeon 8060S Graphics)");
	assert_cand(&f->ch.c[1], "vulkan", "", true);
	assert_string_equal(f->ch.c[1].reason,
			    "Vulkan on AMD Radeon 8060S Graphics (amdgpu bound, renderD128 accessible; not probed: --no-vulkan)");
	assert_cand(&f->ch.c[2], "cpu", "", true);
	assert_int_equal(f->ch.c[2].gpu_index, -1);
	assert_int_equal(f->ch.recommended, 0);
}

static void test_kfd_not_accessible(void **state)
{
	struct fx *f = *state;

	add_amd(&f->r, "0000:03:00.0", 0x744c, 0xc8, 110000, "renderD128");
	add_node(&f->r, "kfd", false, "render");
	run(f);
	assert_cand(&f->ch.c[0], "rocm", "gfx110X", false);
	assert_string_equal(f->ch.c[0].reason,
			    "ROCm skipped: /dev/kfd not accessible; add your user to the render group: sudo usermod -aG render $USER");
	assert_cand(&f->ch.c[1], "vulkan", "", true);
	assert_int_equal(f->ch.recommended, 1);
}

static void test_strix_halo_without_cwsr(void **state)
{
	struct fx *f = *state;
	struct detect_gpu *g;

	/* a kernel without the CWSR fix: ROCm is refused on gfx1151 with
	 * the kernel that has it */
	g = add_amd(&f->r, "0000:c5:00.0", 0x1586, 0xc1, 110501, "renderD128");
	g->kfd_cwsr = false;
	add_node(&f->r, "kfd", true, "render");
	run(f);
	assert_cand(&f->ch.c[0], "rocm", "gfx1151", false);
	assert_string_equal(f->ch.c[0].reason,
			    "ROCm skipped: the KFD node of 0000:c5:00.0 lacks cwsr_size and ctl_stack_size: this kernel has no CWSR fix for gfx1151; install kernel 6.18.4 or newer (or one with the fix backported)");
	assert_cand(&f->ch.c[1], "vulkan", "", true);
	assert_int_equal(f->ch.recommended, 1);
	/* other targets do not need it */
	f->r.n_gpus = 0;
	f->r.n_nodes = 0;
	g = add_amd(&f->r, "0000:03:00.0", 0x744c, 0xc8, 110000, "renderD128");
	g->kfd_cwsr = false;
	add_node(&f->r, "kfd", true, "render");
	run(f);
	assert_cand(&f->ch.c[0], "rocm", "gfx110X", true);
}

static void test_rx6700xt_override(void **state)
{
	struct fx *f = *state;

	/* the gfx103X bundle carries gfx1031 code: it runs as is, no
	 * HSA_OVERRIDE_GFX_VERSION */
	add_amd(&f->r, "0000:03:00.0", 0x73df, 0xc1, 100301, "renderD128");
	add_node(&f->r, "kfd", true, "render");
	run(f);
	assert_string_equal(f->view.gpus[0].gfx, "gfx1031");
	assert_cand(&f->ch.c[0], "rocm", "gfx103X", true);
	assert_string_equal(f->ch.c[0].env, "");
	assert_string_equal(f->ch.c[0].reason,
			    "ROCm gfx103X build for gfx1031 (AMD Radeon RX 6700 XT)");
	assert_cand(&f->ch.c[1], "vulkan", "", true);
}

static void test_rembrandt_workaround(void **state)
{
	struct fx *f = *state;

	/* no bundle carries gfx1035: the override is given, as a workaround */
	add_amd(&f->r, "0000:c5:00.0", 0x1681, 0xc1, 100305, "renderD128");
	add_node(&f->r, "kfd", true, "render");
	run(f);
	assert_string_equal(f->view.gpus[0].gfx, "gfx1035");
	assert_cand(&f->ch.c[0], "rocm", "gfx103X", true);
	assert_string_equal(f->ch.c[0].env, "HSA_OVERRIDE_GFX_VERSION=10.3.0");
	assert_non_null(strstr(f->ch.c[0].reason,
			       "no ROCm bundle carries gfx1035 code"));
	assert_non_null(strstr(f->ch.c[0].reason, "workaround"));
}

static void test_legacy_polaris(void **state)
{
	struct fx *f = *state;

	/* RX 580: amdgpu and KFD run it, no ROCm bundle has gfx803 */
	add_amd(&f->r, "0000:03:00.0", 0x67df, 0xc1, 80003, "renderD128");
	add_node(&f->r, "kfd", true, "render");
	run(f);
	assert_string_equal(f->view.gpus[0].gfx, "gfx803");
	assert_string_equal(f->view.gpus[0].family, "GCN4");
	assert_cand(&f->ch.c[0], "rocm", "gfx803", false);
	assert_string_equal(f->ch.c[0].reason,
			    "ROCm skipped: no ROCm bundle for gfx803 (AMD Radeon RX 580 Series): current ROCm releases build nothing for it; use Vulkan");
	assert_string_equal(f->ch.c[0].env, "");
	assert_cand(&f->ch.c[1], "vulkan", "", true);
	assert_int_equal(f->ch.recommended, 1);
}

static void test_dgpu_before_igpu(void **state)
{
	struct fx *f = *state;

	add_amd(&f->r, "0000:c5:00.0", 0x15bf, 0xc1, 110003, "renderD129");
	add_amd(&f->r, "0000:03:00.0", 0x744c, 0xc8, 110000, "renderD128");
	add_node(&f->r, "kfd", true, "render");
	run(f);
	assert_int_equal(f->ch.n, 4);
	assert_cand(&f->ch.c[0], "rocm", "gfx110X", true);
	assert_int_equal(f->ch.c[0].gpu_index, 1);
	assert_string_equal(f->ch.c[0].gfx, "gfx1100");
	assert_cand(&f->ch.c[1], "rocm", "gfx110X", true);
	assert_int_equal(f->ch.c[1].gpu_index, 0);
	assert_string_equal(f->ch.c[1].gfx, "gfx1103");
	/* the nightly gfx110X bundle carries gfx1103: no workaround */
	assert_string_equal(f->ch.c[1].env, "");
	assert_string_equal(f->ch.c[0].env, "");
	assert_int_equal(f->ch.recommended, 0);
}

static void test_amdgpu_not_bound(void **state)
{
	struct fx *f = *state;
	struct detect_gpu *g;

	g = add_amd(&f->r, "0000:03:00.0", 0x744c, 0xc8, 0, "");
	g->pci.driver[0] = '\0';
	f->r.kfd_present = false;
	run(f);
	assert_string_equal(f->view.gpus[0].gfx_source, "pci_table");
	assert_cand(&f->ch.c[0], "rocm", "gfx110X", false);
	assert_string_equal(f->ch.c[0].reason,
			    "ROCm skipped: amdgpu not bound to 0000:03:00.0; load it: sudo modprobe amdgpu");
	assert_cand(&f->ch.c[1], "vulkan", "", false);
	assert_string_equal(f->ch.c[1].reason,
			    "Vulkan skipped: no GPU with a Vulkan-capable driver bound (not probed: --no-vulkan)");
	assert_int_equal(f->ch.recommended, 2);
	assert_string_equal(f->ch.c[2].reason,
			    "CPU: AMD RYZEN AI MAX+ 395 w/ Radeon 8060S, 32 threads");
}

static void test_kfd_missing_and_no_node(void **state)
{
	struct fx *f = *state;
	struct detect_gpu *g;

	g = add_amd(&f->r, "0000:03:00.0", 0x744c, 0xc8, 0, "renderD128");
	lemon_str_copy(g->gc_ip, sizeof(g->gc_ip), "11.0.0");
	f->r.kfd_present = false;
	run(f);
	assert_string_equal(f->view.gpus[0].gfx_source, "ip_discovery");
	assert_non_null(strstr(f->ch.c[0].reason,
			       "ROCm skipped: KFD topology missing"));
	/* KFD present but no node for this GPU */
	f->r.kfd_present = true;
	run(f);
	assert_string_equal(f->ch.c[0].reason,
			    "ROCm skipped: KFD has no node for 0000:03:00.0; check sudo dmesg | grep kfd (PCIe atomics, unsupported GC IP)");
}

static void test_no_prebuilt(void **state)
{
	struct fx *f = *state;

	add_amd(&f->r, "0000:c5:00.0", 0x1902, 0xc1, 110503, "renderD128");
	add_node(&f->r, "kfd", true, "render");
	run(f);
	assert_cand(&f->ch.c[0], "rocm", "gfx1153", false);
	assert_string_equal(f->ch.c[0].reason,
			    "ROCm skipped: no ROCm bundle for gfx1153 (AMD Radeon 840M Graphics): TheRock builds a ROCm runtime for it (gfx1153, build passing only) but no llama.cpp ROCm build is published; use Vulkan");
	assert_int_equal(f->ch.recommended, 1);
}

static void add_vk(struct detect_report *r, const char *name,
		   enum detect_vk_type type, const char *driver)
{
	struct detect_vk_device *d = &r->vulkan.devices[r->vulkan.n_devices++];

	lemon_str_copy(d->name, sizeof(d->name), name);
	lemon_str_copy(d->driver, sizeof(d->driver), driver);
	d->type = type;
}

static void test_vulkan_probed(void **state)
{
	struct fx *f = *state;

	/* a CPU-only VM: lavapipe is there but never counts */
	f->r.vulkan.probed = true;
	f->r.vulkan.loader = true;
	add_vk(&f->r, "llvmpipe (LLVM 15.0.6, 256 bits)", DETECT_VK_CPU,
	       "lavapipe");
	run(f);
	assert_int_equal(f->ch.n, 2);
	assert_cand(&f->ch.c[0], "vulkan", "", false);
	assert_string_equal(f->ch.c[0].reason,
			    "Vulkan skipped: no GPU Vulkan device (only CPU implementations such as lavapipe)");
	assert_int_equal(f->ch.recommended, 1);
	assert_string_equal(f->ch.c[1].backend, "cpu");

	/* a discrete RADV device is preferred over the integrated one */
	add_vk(&f->r, "AMD Radeon 780M (RADV GFX1103_R1)",
	       DETECT_VK_INTEGRATED, "radv");
	add_vk(&f->r, "AMD Radeon RX 7900 XTX (RADV NAVI31)",
	       DETECT_VK_DISCRETE, "radv");
	run(f);
	assert_cand(&f->ch.c[0], "vulkan", "", true);
	assert_string_equal(f->ch.c[0].reason,
			    "Vulkan on AMD Radeon RX 7900 XTX (RADV NAVI31) (radv)");

	/* no loader at all */
	f->r.vulkan.loader = false;
	f->r.vulkan.n_devices = 0;
	lemon_str_copy(f->r.vulkan.error, sizeof(f->r.vulkan.error),
		       "libvulkan.so.1: cannot open shared object file");
	run(f);
	assert_cand(&f->ch.c[0], "vulkan", "", false);
	assert_non_null(strstr(f->ch.c[0].reason,
			       "sudo apt install libvulkan1 mesa-vulkan-drivers"));
}

/* nvidia without nvidia-drm: no render node, yet its Vulkan driver works
 * (the recorded H100 machine); a probed Vulkan device names the GPU */
static void test_nvidia_without_render_node(void **state)
{
	struct fx *f = *state;
	struct detect_gpu *g = &f->r.gpus[f->r.n_gpus++];
	struct detect_vk_device *d;

	lemon_str_copy(g->pci.bdf, sizeof(g->pci.bdf), "0000:00:06.0");
	g->pci.vendor = 0x10de;
	g->pci.device = 0x2330;
	lemon_str_copy(g->pci.driver, sizeof(g->pci.driver), "nvidia");
	run(f);
	/* CUDA first (sm_90 from the PCI table; this hand-made report, like
	 * an old recording, has no node data), then Vulkan */
	assert_cand(&f->ch.c[0], "cuda", "sm_90", true);
	assert_cand(&f->ch.c[1], "vulkan", "", true);
	assert_non_null(strstr(f->ch.c[1].reason, "nvidia bound"));

	/* probed: the loader found no driver at all */
	f->r.vulkan.probed = true;
	f->r.vulkan.loader = true;
	lemon_str_copy(f->r.vulkan.error, sizeof(f->r.vulkan.error),
		       "vkCreateInstance failed: VK_ERROR_INCOMPATIBLE_DRIVER");
	run(f);
	assert_cand(&f->ch.c[1], "vulkan", "", false);
	assert_non_null(strstr(f->ch.c[1].reason, "the loader found no driver (vkCreateInstance failed"));

	/* probed with the NVIDIA ICD (as seen on that machine) */
	f->r.vulkan.error[0] = '\0';
	f->r.vulkan.n_devices = 1;
	d = &f->r.vulkan.devices[0];
	lemon_str_copy(d->name, sizeof(d->name), "NVIDIA H100 80GB HBM3");
	lemon_str_copy(d->driver, sizeof(d->driver), "nvidia");
	d->vendor_id = 0x10de;
	d->device_id = 0x2330;
	d->type = DETECT_VK_DISCRETE;
	run(f);
	/* the Vulkan driver's name wins over the table's */
	assert_string_equal(f->view.gpus[0].name, "NVIDIA H100 80GB HBM3");
	assert_string_equal(f->view.gpus[0].name_source, "vulkan");
	assert_cand(&f->ch.c[1], "vulkan", "", true);
	assert_string_equal(f->ch.c[1].reason, "Vulkan on NVIDIA H100 80GB HBM3 (nvidia)");
	/* the probed device is tied to its GPU, so serve plans with the
	 * GPU's memory (without it the H200 run got --n-gpu-layers 0) */
	assert_int_equal(f->ch.c[1].gpu_index, 0);

	/* two GPUs of one model: the driver's PCI address decides */
	g = &f->r.gpus[f->r.n_gpus++];
	*g = f->r.gpus[0];
	lemon_str_copy(g->pci.bdf, sizeof(g->pci.bdf), "0000:00:07.0");
	lemon_str_copy(d->pci_bdf, sizeof(d->pci_bdf), "0000:00:07.0");
	run(f);
	assert_string_equal(f->ch.c[2].backend, "vulkan");
	assert_int_equal(f->ch.c[2].gpu_index, 1);
}

static void test_nvidia_only(void **state)
{
	struct fx *f = *state;
	struct detect_gpu *g = &f->r.gpus[f->r.n_gpus++];

	lemon_str_copy(g->pci.bdf, sizeof(g->pci.bdf), "0000:01:00.0");
	g->pci.vendor = 0x10de;
	g->pci.device = 0x2684;
	lemon_str_copy(g->pci.driver, sizeof(g->pci.driver), "nvidia");
	lemon_str_copy(g->render_node, sizeof(g->render_node), "renderD128");
	add_node(&f->r, "dri/renderD128", true, "render");
	run(f);
	assert_string_equal(f->view.gpus[0].vendor, "NVIDIA");
	assert_string_equal(f->view.gpus[0].name, "GeForce RTX 4090");
	assert_string_equal(f->view.gpus[0].kind, "dgpu");
	assert_int_equal(f->ch.n, 3);
	assert_cand(&f->ch.c[0], "cuda", "sm_89", true);
	assert_cand(&f->ch.c[1], "vulkan", "", true);
	assert_int_equal(f->ch.c[1].gpu_index, 0);
	assert_int_equal(f->ch.recommended, 0);

	/* an unknown NVIDIA id without a CUDA answer: no name, no target */
	g->pci.device = 0x1234;
	run(f);
	assert_string_equal(f->view.gpus[0].name, "NVIDIA GPU");
	assert_cand(&f->ch.c[0], "cuda", "", false);
	assert_string_equal(f->ch.c[0].reason,
			    "CUDA skipped: compute capability of NVIDIA GPU unknown (10de:1234 is not in lemon's table and the CUDA driver did not answer; compute capability unknown)");
	assert_int_equal(f->ch.recommended, 1);

	/* the render node is closed to this user */
	f->r.nodes[0].readable = false;
	lemon_str_copy(f->r.nodes[0].group, sizeof(f->r.nodes[0].group),
		       "video");
	run(f);
	assert_cand(&f->ch.c[1], "vulkan", "", false);
	assert_string_equal(f->ch.c[1].reason,
			    "Vulkan skipped: /dev/dri/renderD128 not accessible; add your user to the video group: sudo usermod -aG video $USER (not probed: --no-vulkan)");
}

static void test_cpu_only(void **state)
{
	struct fx *f = *state;

	f->r.cpu.has_cores = false;
	run(f);
	assert_int_equal(f->ch.n, 2);
	assert_cand(&f->ch.c[0], "vulkan", "", false);
	assert_cand(&f->ch.c[1], "cpu", "", true);
	assert_string_equal(f->ch.c[1].reason,
			    "CPU: AMD RYZEN AI MAX+ 395 w/ Radeon 8060S");
	assert_int_equal(f->ch.recommended, 1);
}

static void test_bad_args(void **state)
{
	struct fx *f = *state;
	struct lemon_err err = { 0 };

	assert_int_equal(compat_pick_backend(f->db, NULL, &f->view, &f->ch,
					     &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_strix_halo_healthy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kfd_not_accessible, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_strix_halo_without_cwsr,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx6700xt_override, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rembrandt_workaround, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_legacy_polaris, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_dgpu_before_igpu, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_amdgpu_not_bound, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kfd_missing_and_no_node,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_prebuilt, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_vulkan_probed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_nvidia_without_render_node,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_nvidia_only, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cpu_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
