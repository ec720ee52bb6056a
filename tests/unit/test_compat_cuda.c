/* Unit tests of compat/nvidia.c and compat/pick-cuda.c: the shipped
 * nvidia.json, crafted bad ones, driver version comparison, and the CUDA
 * candidate of hand-made reports (ids of real parts) with its exact
 * reasons: usable, nouveau, nvidia-uvm missing, an old driver, no bundle
 * for the compute capability, the CUDA driver's own answer winning over
 * the table, and a hybrid AMD iGPU + NVIDIA dGPU machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "compat/compat.h"
#include "tree.h"
#include "util/str.h"

struct fx {
	struct compat_db *db;
	struct detect_report r;
	struct compat_view view;
	struct compat_choice ch;
};

static int setup(void **state)
{
	struct lemon_err err = {0};
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || compat_db_load(LEMON_DATADIR, &f->db, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		free(f);
		return -1;
	}
	lemon_str_copy(f->r.cpu.model, sizeof(f->r.cpu.model), "test CPU");
	lemon_str_copy(f->r.vulkan.skipped_why, sizeof(f->r.vulkan.skipped_why),
		       "--no-vulkan");
	lemon_str_copy(f->r.cuda.skipped_why, sizeof(f->r.cuda.skipped_why),
		       "sysroot");
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

static void add_node(struct detect_report *r, const char *rel, bool exists,
		     bool ok)
{
	struct detect_node *n = &r->nodes[r->n_nodes++];

	memset(n, 0, sizeof(*n));
	lemon_str_copy(n->rel, sizeof(n->rel), rel);
	snprintf(n->path, sizeof(n->path), "/dev/%s", rel);
	n->exists = exists;
	n->has_mode = exists;
	n->mode = 0666;
	n->readable = n->writable = ok;
}

/* an NVIDIA GPU bound to drv; with nodes, the driver's nodes as recorded */
static struct detect_gpu *add_nv(struct fx *f, const char *bdf, uint16_t device,
				 const char *drv, bool nodes)
{
	struct detect_gpu *g = &f->r.gpus[f->r.n_gpus++];

	memset(g, 0, sizeof(*g));
	lemon_str_copy(g->pci.bdf, sizeof(g->pci.bdf), bdf);
	g->pci.vendor = 0x10de;
	g->pci.device = device;
	g->pci.class_code = 0x030000;
	g->cuda_index = -1;
	lemon_str_copy(g->pci.driver, sizeof(g->pci.driver), drv);
	if (nodes) {
		f->r.nodes_recorded = true;
		add_node(&f->r, "nvidiactl", true, true);
		add_node(&f->r, "nvidia-uvm", true, true);
		add_node(&f->r, "nvidia0", true, true);
	}
	return g;
}

static void run(struct fx *f)
{
	struct lemon_err err = {0};

	assert_int_equal(compat_resolve(f->db, NULL, &f->r, &f->view, &err), 0);
	assert_int_equal(
		compat_pick_backend(f->db, &f->r, &f->view, &f->ch, &err), 0);
}

static void assert_cand(const struct compat_candidate *c, const char *backend,
			const char *target, bool usable)
{
	assert_string_equal(c->backend, backend);
	assert_string_equal(c->target, target);
	assert_int_equal(c->usable, usable);
}

static void test_shipped_data(void **state)
{
	struct fx *f = *state;
	struct compat_nvidia_entry e;
	struct compat_cuda_runtime rt;
	struct compat_cuda_need need;
	struct lemon_err err = {0};

	assert_int_equal(compat_nvidia_lookup(f->db, 0x2330, &e, &err), 0);
	assert_string_equal(e.arch, "Hopper");
	assert_string_equal(e.cc, "9.0");
	assert_string_equal(e.kind, "accelerator");
	assert_int_equal(compat_nvidia_lookup(f->db, 0x2335, &e, &err), 0);
	assert_string_equal(e.name, "H200 SXM 141GB");
	assert_int_equal(compat_nvidia_lookup(f->db, 0x2b85, &e, &err), 0);
	assert_string_equal(e.cc, "12.0");
	assert_int_equal(compat_nvidia_lookup(f->db, 0x1234, &e, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	lemon_err_clear(&err);
	assert_int_equal(compat_cuda_runtime_lookup(f->db, 12, &rt, &err), 0);
	assert_string_equal(rt.min_driver, "525.60.13");
	assert_int_equal(compat_cuda_runtime_lookup(f->db, 13, &rt, &err), 0);
	assert_string_equal(rt.min_driver, "580");
	assert_string_equal(rt.min_cc, "7.5");
	assert_int_equal(compat_cuda_runtime_lookup(f->db, 11, &rt, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	lemon_err_clear(&err);

	/* the pinned bundle for sm_90 carries CUDA 12.9 */
	assert_int_equal(compat_cuda_need(f->db, "sm_90", &need, &err), 0);
	assert_string_equal(need.bundle, "llamacpp:cuda:sm_90");
	assert_string_equal(need.runtime, "12.9");
	assert_string_equal(need.min_driver, "525.60.13");
	assert_int_equal(compat_cuda_need(f->db, "sm_61", &need, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_string_equal(
		need.targets,
		"sm_75, sm_80, sm_86, sm_89, sm_90, sm_100, sm_120, sm_121");
	assert_string_equal(compat_nvidia_arch_of_cc(8, 9), "Ada Lovelace");
	assert_string_equal(compat_nvidia_arch_of_cc(8, 6), "Ampere");
	assert_null(compat_nvidia_arch_of_cc(6, 1));
}

static void test_driver_version_cmp(void **state)
{
	struct lemon_err err = {0};
	int cmp;

	(void)state;
	assert_int_equal(
		compat_driver_version_cmp("580.95.05", "525.60.13", &cmp, &err),
		0);
	assert_true(cmp > 0);
	assert_int_equal(
		compat_driver_version_cmp("525.60.13", "525.60.13", &cmp, &err),
		0);
	assert_int_equal(cmp, 0);
	assert_int_equal(
		compat_driver_version_cmp("525.60.9", "525.60.13", &cmp, &err),
		0);
	assert_true(cmp < 0);
	/* "580" means 580.0.0 */
	assert_int_equal(
		compat_driver_version_cmp("580", "580.0.1", &cmp, &err), 0);
	assert_true(cmp < 0);
	assert_int_equal(compat_driver_version_cmp("580.x", "580", &cmp, &err),
			 -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	assert_int_equal(compat_driver_version_cmp("", "580", &cmp, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
}

/* a data directory holding only nvidia.json with text */
static int load_nvidia(const char *text, struct lemon_err *err)
{
	char tmpl[] = "/tmp/lemon-nv-XXXXXX", path[256];
	char *dir = mkdtemp(tmpl);
	struct compat_db *db = NULL;
	int rc;

	assert_non_null(dir);
	tree_write(dir, "nvidia.json", text);
	rc = compat_db_load_topics(dir, COMPAT_TOPIC_NVIDIA, &db, err);
	compat_db_free(db);
	snprintf(path, sizeof(path), "%s/nvidia.json", dir);
	unlink(path);
	rmdir(dir);
	return rc;
}

#define RT                                                                        \
	"\"cuda_runtimes\":{\"12\":{\"min_driver\":\"525.60.13\",\"min_cc\":\"5." \
	"0\",\"confidence\":\"high\",\"source\":\"s\"}}"
#define GPU(k, body) \
	"{\"schema\":1,\"about\":\"t\",\"gpus\":{\"" k "\":{" body "}}," RT "}"
#define OK_BODY                                                        \
	"\"arch\":\"Hopper\",\"cc\":\"9.0\",\"kind\":\"accelerator\"," \
	"\"confidence\":\"high\",\"source\":\"s\""

static void test_bad_data(void **state)
{
	struct lemon_err err = {0};

	(void)state;
	assert_int_equal(load_nvidia(GPU("10de:2330", OK_BODY), &err), 0);
	assert_int_equal(
		load_nvidia(GPU("10de:2330", OK_BODY ",\"colour\":\"x\""),
			    &err),
		-1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(
		strstr(err.msg,
		       "nvidia.json: entry '10de:2330': unknown key 'colour'"));
	lemon_err_clear(&err);
	assert_int_equal(load_nvidia(GPU("1002:2330", OK_BODY), &err), -1);
	assert_non_null(strstr(err.msg, "entry '1002:2330': malformed id"));
	lemon_err_clear(&err);
	assert_int_equal(
		load_nvidia(
			GPU("10de:2330",
			    "\"arch\":\"Hopper\",\"cc\":\"9\",\"kind\":\"dgpu\","
			    "\"confidence\":\"high\",\"source\":\"s\""),
			&err),
		-1);
	assert_non_null(strstr(err.msg, "malformed cc '9'"));
	lemon_err_clear(&err);
	assert_int_equal(
		load_nvidia(
			GPU("10de:2330",
			    "\"arch\":\"Hopper\",\"cc\":\"9.0\",\"kind\":"
			    "\"tpu\",\"confidence\":\"high\",\"source\":\"s\""),
			&err),
		-1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	/* source is required */
	assert_int_equal(
		load_nvidia(GPU("10de:2330",
				"\"arch\":\"Hopper\",\"cc\":\"9.0\","
				"\"kind\":\"dgpu\",\"confidence\":\"high\""),
			    &err),
		-1);
	assert_non_null(strstr(err.msg, "source"));
	lemon_err_clear(&err);
	assert_int_equal(
		load_nvidia(
			"{\"schema\":1,\"about\":\"t\",\"gpus\":{},"
			"\"cuda_runtimes\":{\"12\":{\"min_driver\":\"525.x\",\"min_"
			"cc\":\"5.0\",\"confidence\":\"high\",\"source\":\"s\"}}}",
			&err),
		-1);
	assert_non_null(
		strstr(err.msg, "entry '12': malformed min_driver '525.x'"));
	lemon_err_clear(&err);
	assert_int_equal(
		load_nvidia(
			"{\"schema\":1,\"about\":\"t\",\"gpus\":{},"
			"\"cuda_runtimes\":{\"twelve\":{\"min_driver\":\"525\",\"min_"
			"cc\":\"5.0\",\"confidence\":\"high\",\"source\":\"s\"}}}",
			&err),
		-1);
	assert_non_null(strstr(err.msg, "malformed CUDA major version"));
}

static void test_usable(void **state)
{
	struct fx *f = *state;

	add_nv(f, "0000:01:00.0", 0x2684, "nvidia", true);
	lemon_str_copy(f->r.kmod_nvidia.version,
		       sizeof(f->r.kmod_nvidia.version), "580.95.05");
	run(f);
	assert_string_equal(f->view.gpus[0].arch, "Ada Lovelace");
	assert_string_equal(f->view.gpus[0].cc, "8.9");
	assert_string_equal(f->view.gpus[0].cc_source, "pci_table");
	assert_string_equal(f->view.gpus[0].name_source, "pci_table");
	assert_cand(&f->ch.c[0], "cuda", "sm_89", true);
	assert_string_equal(
		f->ch.c[0].reason,
		"CUDA sm_89 build for GeForce RTX 4090 (compute capability 8.9 from "
		"lemon's PCI table, driver 580.95.05)");
	assert_int_equal(f->ch.c[0].gpu_index, 0);
	assert_int_equal(f->ch.recommended, 0);
}

static void test_nouveau_and_unbound(void **state)
{
	struct fx *f = *state;
	struct detect_gpu *g =
		add_nv(f, "0000:01:00.0", 0x2204, "nouveau", false);

	f->r.nodes_recorded = true;
	run(f);
	assert_cand(&f->ch.c[0], "cuda", "sm_86", false);
	assert_string_equal(
		f->ch.c[0].reason,
		"CUDA skipped: nouveau is bound to 0000:01:00.0, CUDA "
		"needs the NVIDIA driver; blacklist nouveau and install "
		"it (lemon doctor prints the commands)");
	/* Vulkan: lemon knows no Vulkan driver on nouveau */
	assert_cand(&f->ch.c[1], "vulkan", "", false);
	assert_int_equal(f->ch.recommended, 2);
	g->pci.driver[0] = '\0';
	run(f);
	assert_non_null(strstr(
		f->ch.c[0].reason,
		"CUDA skipped: no driver is bound to 0000:01:00.0; install the "
		"NVIDIA driver: sudo ubuntu-drivers install"));
	lemon_str_copy(g->pci.driver, sizeof(g->pci.driver), "vfio-pci");
	run(f);
	assert_string_equal(f->ch.c[0].reason,
			    "CUDA skipped: 0000:01:00.0 is bound to vfio-pci "
			    "(reserved for a virtual machine)");
}

static void test_uvm_missing_and_nodes(void **state)
{
	struct fx *f = *state;

	add_nv(f, "0000:01:00.0", 0x2684, "nvidia", true);
	f->r.nodes[1].exists = false; /* nvidia-uvm */
	f->r.nodes[1].readable = f->r.nodes[1].writable = false;
	run(f);
	assert_cand(&f->ch.c[0], "cuda", "sm_89", false);
	assert_string_equal(
		f->ch.c[0].reason,
		"CUDA skipped: /dev/nvidia-uvm missing (nvidia_uvm not loaded); sudo "
		"nvidia-modprobe -u -c=0 (or sudo modprobe nvidia-uvm)");
	/* NVIDIA's Vulkan driver needs no uvm: Vulkan is next */
	assert_cand(&f->ch.c[1], "vulkan", "", true);
	assert_int_equal(f->ch.recommended, 1);

	/* present but closed (a site that set NVreg_DeviceFileMode=0660) */
	f->r.nodes[1].exists = true;
	f->r.nodes[1].readable = f->r.nodes[1].writable = true;
	f->r.nodes[2].readable = false;
	lemon_str_copy(f->r.nodes[2].group, sizeof(f->r.nodes[2].group),
		       "video");
	run(f);
	assert_string_equal(
		f->ch.c[0].reason,
		"CUDA skipped: /dev/nvidia0 not accessible; add your "
		"user to the video group: sudo usermod -aG video $USER");

	/* nodes not recorded (an older recording): unknown, not missing */
	f->r.nodes_recorded = false;
	run(f);
	assert_cand(&f->ch.c[0], "cuda", "sm_89", true);
	assert_non_null(
		strstr(f->ch.c[0].reason, "; device nodes not recorded"));
}

static void test_old_driver(void **state)
{
	struct fx *f = *state;

	add_nv(f, "0000:01:00.0", 0x2684, "nvidia", true);
	lemon_str_copy(f->r.kmod_nvidia.version,
		       sizeof(f->r.kmod_nvidia.version), "520.61.05");
	run(f);
	assert_cand(&f->ch.c[0], "cuda", "sm_89", false);
	assert_string_equal(
		f->ch.c[0].reason,
		"CUDA skipped: NVIDIA driver 520.61.05 is older than 525.60.13, which "
		"the CUDA 12.9 runtime of llamacpp:cuda:sm_89 needs; install a newer "
		"driver: sudo ubuntu-drivers install");
}

static struct detect_cuda_device *live(struct fx *f, struct detect_gpu *g,
				       int major, int minor)
{
	struct detect_cuda_device *d = &f->r.cuda.devices[f->r.cuda.n_devices];

	f->r.cuda.probed = true;
	f->r.cuda.library = true;
	f->r.cuda.has_driver_version = true;
	f->r.cuda.driver_version = 13000;
	memset(d, 0, sizeof(*d));
	lemon_str_copy(d->bdf, sizeof(d->bdf), g->pci.bdf);
	d->cc_major = major;
	d->cc_minor = minor;
	g->cuda_index = f->r.cuda.n_devices++;
	return d;
}

/* the CUDA driver's answer wins over the table, and names the GPU */
static void test_live_answer(void **state)
{
	struct fx *f = *state;
	struct detect_gpu *g =
		add_nv(f, "0000:00:06.0", 0x2330, "nvidia", true);
	struct detect_cuda_device *d = live(f, g, 9, 0);

	lemon_str_copy(d->name, sizeof(d->name), "NVIDIA H100 80GB HBM3");
	run(f);
	assert_string_equal(f->view.gpus[0].name, "NVIDIA H100 80GB HBM3");
	assert_string_equal(f->view.gpus[0].name_source, "cuda");
	assert_string_equal(f->view.gpus[0].cc_source, "cuda");
	assert_string_equal(f->view.gpus[0].arch, "Hopper");
	assert_string_equal(f->view.gpus[0].cc_disagreement, "");
	assert_string_equal(
		f->ch.c[0].reason,
		"CUDA sm_90 build for NVIDIA H100 80GB HBM3 (compute "
		"capability 9.0 from the CUDA driver)");

	/* the driver and the table disagree: the driver wins, both shown */
	d->cc_major = 8;
	d->cc_minor = 6;
	run(f);
	assert_string_equal(f->view.gpus[0].cc, "8.6");
	assert_string_equal(f->view.gpus[0].sm, "sm_86");
	assert_string_equal(f->view.gpus[0].arch, "Ampere");
	assert_string_equal(f->view.gpus[0].cc_disagreement,
			    "cuda says 8.6, pci_table says 9.0");

	/* a Pascal card the driver knows: no bundle for sm_61 */
	d->cc_major = 6;
	d->cc_minor = 1;
	g->pci.device = 0x1b80;
	run(f);
	assert_cand(&f->ch.c[0], "cuda", "sm_61", false);
	assert_string_equal(
		f->ch.c[0].reason,
		"CUDA skipped: no prebuilt CUDA llama.cpp for sm_61 (NVIDIA H100 80GB "
		"HBM3, compute capability 6.1); builds exist for sm_75, sm_80, sm_86, "
		"sm_89, sm_90, sm_100, sm_120, sm_121");

	/* the library is missing: a reported fact */
	f->r.cuda.library = false;
	f->r.cuda.n_devices = 0;
	g->cuda_index = -1;
	g->pci.device = 0x2330;
	run(f);
	assert_cand(&f->ch.c[0], "cuda", "sm_90", false);
	assert_non_null(strstr(f->ch.c[0].reason,
			       "CUDA skipped: libcuda.so.1 (the NVIDIA "
			       "driver's CUDA library) not found"));

	/* the library is there, the driver lists another device only */
	f->r.cuda.library = true;
	lemon_str_copy(f->r.cuda.devices[0].bdf,
		       sizeof(f->r.cuda.devices[0].bdf), "0000:00:07.0");
	f->r.cuda.n_devices = 1;
	run(f);
	assert_string_equal(f->ch.c[0].reason,
			    "CUDA skipped: the CUDA driver does not list "
			    "0000:00:06.0 (CUDA_VISIBLE_DEVICES hides it?)");
}

static void test_hybrid(void **state)
{
	struct fx *f = *state;
	struct detect_gpu *a = &f->r.gpus[f->r.n_gpus++];
	struct detect_node *n;

	/* Radeon 780M (Phoenix) first on the bus, with KFD and render node */
	memset(a, 0, sizeof(*a));
	lemon_str_copy(a->pci.bdf, sizeof(a->pci.bdf), "0000:c6:00.0");
	a->pci.vendor = 0x1002;
	a->pci.device = 0x15bf;
	a->pci.revision = 0xd3;
	a->pci.class_code = 0x030000;
	a->cuda_index = -1;
	lemon_str_copy(a->pci.driver, sizeof(a->pci.driver), "amdgpu");
	a->has_kfd = true;
	a->kfd_gfx_target_version = 110003;
	lemon_str_copy(a->render_node, sizeof(a->render_node), "renderD128");
	f->r.kfd_present = true;
	add_node(&f->r, "kfd", true, true);
	add_node(&f->r, "dri/renderD128", true, true);
	add_nv(f, "0000:01:00.0", 0x28e0, "nvidia", true);
	n = &f->r.nodes[0];
	assert_string_equal(n->rel, "kfd");
	run(f);
	assert_int_equal(f->ch.n, 4);
	assert_cand(&f->ch.c[0], "cuda", "sm_89", true);
	assert_int_equal(f->ch.c[0].gpu_index, 1);
	assert_string_equal(
		f->ch.c[0].reason,
		"CUDA sm_89 build for GeForce RTX 4060 Max-Q / Mobile (compute "
		"capability 8.9 from lemon's PCI table); the discrete GPU is preferred "
		"over the integrated AMD Radeon 780M Graphics");
	assert_cand(&f->ch.c[1], "rocm", "gfx110X", true);
	assert_int_equal(f->ch.c[1].gpu_index, 0);
	assert_cand(&f->ch.c[2], "vulkan", "", true);
	assert_int_equal(f->ch.c[2].gpu_index, 1); /* the dGPU, not the iGPU */
	assert_int_equal(f->ch.recommended, 0);

	/* the dGPU's CUDA refused (driver too old for the bundle's runtime)
	 * while its Vulkan driver works: Vulkan on the dGPU goes before ROCm
	 * on the 780M, and says why */
	lemon_str_copy(f->r.kmod_nvidia.version, sizeof(f->r.kmod_nvidia.version),
		       "520.61.05");
	run(f);
	assert_int_equal(f->ch.n, 4);
	assert_cand(&f->ch.c[0], "cuda", "sm_89", false);
	assert_cand(&f->ch.c[1], "vulkan", "", true);
	assert_int_equal(f->ch.c[1].gpu_index, 1);
	assert_non_null(strstr(f->ch.c[1].reason,
			       "; the discrete GPU is preferred over rocm on the "
			       "integrated AMD Radeon 780M Graphics"));
	assert_cand(&f->ch.c[2], "rocm", "gfx110X", true);
	assert_int_equal(f->ch.recommended, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shipped_data, setup,
						teardown),
		cmocka_unit_test(test_driver_version_cmp),
		cmocka_unit_test(test_bad_data),
		cmocka_unit_test_setup_teardown(test_usable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nouveau_and_unbound, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_uvm_missing_and_nodes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_driver, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_live_answer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hybrid, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
