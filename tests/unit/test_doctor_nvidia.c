/* Unit tests of doctor/checks_nvidia.c: hand-made reports (ids of real
 * parts) resolved with the shipped data, and each NVIDIA check's status,
 * message and exact fix: nouveau bound, nvidia-uvm missing, a node closed
 * to the user, a driver older than the bundle's CUDA runtime needs, the
 * CUDA library missing (live), and NVIDIA's Vulkan ICD not loading. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "doctor/doctor-private.h"
#include "util/str.h"

static int setup(void **state)
{
	struct lemon_err err = {0};
	struct doctor_result *res = calloc(1, sizeof(*res));

	if (!res || compat_db_load(LEMON_DATADIR, &res->owned_db, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		free(res);
		return -1;
	}
	res->db = res->owned_db;
	lemon_str_copy(res->report.vulkan.skipped_why,
		       sizeof(res->report.vulkan.skipped_why), "sysroot");
	lemon_str_copy(res->report.cuda.skipped_why,
		       sizeof(res->report.cuda.skipped_why), "sysroot");
	*state = res;
	return 0;
}

static int teardown(void **state)
{
	struct doctor_result *res = *state;

	compat_db_free(res->owned_db);
	free(res);
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
	n->mode = ok ? 0666 : 0660;
	n->gid = ok ? 0 : 44;
	lemon_str_copy(n->group, sizeof(n->group), ok ? "root" : "video");
	n->readable = n->writable = ok;
}

/* an RTX 4090 bound to drv, driver 580.95.05 with its nodes */
static void machine(struct doctor_result *res, const char *drv)
{
	struct detect_report *r = &res->report;
	struct detect_gpu *g = &r->gpus[r->n_gpus++];

	lemon_str_copy(g->pci.bdf, sizeof(g->pci.bdf), "0000:01:00.0");
	g->pci.vendor = 0x10de;
	g->pci.device = 0x2684;
	g->pci.class_code = 0x030000;
	g->cuda_index = -1;
	lemon_str_copy(g->pci.driver, sizeof(g->pci.driver), drv);
	if (strcmp(drv, "nvidia") == 0) {
		r->kmod_nvidia.loaded = true;
		lemon_str_copy(r->kmod_nvidia.version,
			       sizeof(r->kmod_nvidia.version), "580.95.05");
		r->nodes_recorded = true;
		add_node(r, "nvidiactl", true, true);
		add_node(r, "nvidia-uvm", true, true);
		add_node(r, "nvidia0", true, true);
	}
}

static void judge(struct doctor_result *res)
{
	struct lemon_err err = {0};

	res->n_checks = 0;
	assert_int_equal(
		compat_resolve(res->db, NULL, &res->report, &res->view, &err),
		0);
	assert_int_equal(compat_pick_backend(res->db, &res->report, &res->view,
					     &res->choice, &err),
			 0);
	doctor_check_nvidia(res);
}

static const struct doctor_check *find(const struct doctor_result *res,
				       const char *id)
{
	int i;

	for (i = 0; i < res->n_checks; i++)
		if (strcmp(res->checks[i].id, id) == 0)
			return &res->checks[i];
	return NULL;
}

static void test_healthy(void **state)
{
	struct doctor_result *res = *state;
	const struct doctor_check *c;

	machine(res, "nvidia");
	judge(res);
	c = find(res, "gpu:0000:01:00.0");
	assert_non_null(c);
	assert_int_equal(c->status, DOCTOR_OK);
	assert_string_equal(
		c->message,
		"GeForce RTX 4090: Ada Lovelace, compute capability 8.9 (from pci_table), driver 580.95.05, VRAM unknown, unknown free");
	assert_int_equal(find(res, "nvidia-uvm")->status, DOCTOR_OK);
	assert_int_equal(find(res, "node:nvidiactl")->status, DOCTOR_OK);
	assert_int_equal(find(res, "node:nvidia0")->status, DOCTOR_OK);
	c = find(res, "nvidia-driver-version");
	assert_int_equal(c->status, DOCTOR_OK);
	assert_string_equal(
		c->message,
		"NVIDIA driver 580.95.05 runs the CUDA 12.9 runtime of llamacpp:cuda:sm_89 (needs 525.60.13)");
	assert_int_equal(find(res, "cuda-driver")->status, DOCTOR_SKIP);
	assert_null(find(res, "vulkan-nvidia"));
	assert_false(doctor_degraded(res));
}

static void test_nouveau(void **state)
{
	struct doctor_result *res = *state;
	const struct doctor_check *c;

	machine(res, "nouveau");
	res->report.kmod_nouveau.loaded = true;
	judge(res);
	c = find(res, "gpu:0000:01:00.0");
	assert_int_equal(c->status, DOCTOR_FAIL);
	assert_string_equal(
		c->message,
		"GeForce RTX 4090 (10de:2684) is bound to nouveau; CUDA and NVIDIA's Vulkan driver need the NVIDIA driver");
	assert_string_equal(
		c->fix,
		"printf 'blacklist nouveau\\noptions nouveau modeset=0\\n' | sudo tee /etc/modprobe.d/blacklist-nouveau.conf && sudo update-initramfs -u && sudo ubuntu-drivers install (Debian: sudo apt install nvidia-driver), then reboot");
	/* nothing about the NVIDIA driver's nodes while it is not bound */
	assert_null(find(res, "nvidia-uvm"));
	assert_true(doctor_degraded(res));
}

static void test_uvm_and_access(void **state)
{
	struct doctor_result *res = *state;
	const struct doctor_check *c;

	machine(res, "nvidia");
	res->report.nodes[1].exists = false;
	res->report.nodes[2].readable = res->report.nodes[2].writable = false;
	res->report.nodes[2].mode = 0660;
	res->report.nodes[2].gid = 44;
	lemon_str_copy(res->report.nodes[2].group,
		       sizeof(res->report.nodes[2].group), "video");
	judge(res);
	c = find(res, "nvidia-uvm");
	assert_int_equal(c->status, DOCTOR_FAIL);
	assert_string_equal(
		c->message,
		"the NVIDIA driver is loaded but /dev/nvidia-uvm is missing (nvidia_uvm not loaded), so CUDA cannot start");
	assert_string_equal(
		c->fix,
		"sudo nvidia-modprobe -u -c=0 (or sudo modprobe nvidia-uvm)");
	c = find(res, "node:nvidia0");
	assert_int_equal(c->status, DOCTOR_FAIL);
	assert_string_equal(
		c->fix,
		"sudo usermod -aG video $USER, then log out and back in");
}

static void test_old_driver(void **state)
{
	struct doctor_result *res = *state;
	const struct doctor_check *c;

	machine(res, "nvidia");
	lemon_str_copy(res->report.kmod_nvidia.version,
		       sizeof(res->report.kmod_nvidia.version), "520.61.05");
	judge(res);
	c = find(res, "nvidia-driver-version");
	assert_int_equal(c->status, DOCTOR_FAIL);
	assert_string_equal(
		c->message,
		"NVIDIA driver 520.61.05 is older than 525.60.13, which the CUDA 12.9 runtime of llamacpp:cuda:sm_89 needs");
	assert_string_equal(
		c->fix,
		"install NVIDIA driver 525.60.13 or newer: sudo ubuntu-drivers install (Debian: sudo apt install nvidia-driver), then reboot");
}

/* live facts: no libcuda, and a Vulkan loader without NVIDIA's ICD */
static void test_live_library_and_icd(void **state)
{
	struct doctor_result *res = *state;
	struct detect_report *r = &res->report;
	const struct doctor_check *c;

	machine(res, "nvidia");
	r->cuda.probed = true;
	lemon_str_copy(
		r->cuda.error, sizeof(r->cuda.error),
		"CUDA driver library libcuda.so.1 not found: libcuda.so.1: cannot open shared object file");
	r->vulkan.probed = true;
	r->vulkan.loader = true;
	lemon_str_copy(
		r->vulkan.error, sizeof(r->vulkan.error),
		"vkCreateInstance failed: VK_ERROR_INCOMPATIBLE_DRIVER (no Vulkan driver installed)");
	judge(res);
	c = find(res, "cuda-driver");
	assert_int_equal(c->status, DOCTOR_FAIL);
	assert_non_null(strstr(c->fix, "libnvidia-compute-<branch>"));
	c = find(res, "vulkan-nvidia");
	assert_non_null(c);
	assert_int_equal(c->status, DOCTOR_FAIL);
	assert_string_equal(c->section, "vulkan");
	assert_string_equal(
		c->message,
		"the NVIDIA driver is loaded but the Vulkan loader lists no NVIDIA device (vkCreateInstance failed: VK_ERROR_INCOMPATIBLE_DRIVER (no Vulkan driver installed))");
	assert_non_null(strstr(c->fix, "libglvnd0 libegl1"));

	/* with the ICD loaded: the check is not raised */
	r->vulkan.error[0] = '\0';
	r->vulkan.n_devices = 1;
	r->vulkan.devices[0].vendor_id = 0x10de;
	r->vulkan.devices[0].type = DETECT_VK_DISCRETE;
	judge(res);
	assert_null(find(res, "vulkan-nvidia"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_healthy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nouveau, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uvm_and_access, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_old_driver, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_live_library_and_icd,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
