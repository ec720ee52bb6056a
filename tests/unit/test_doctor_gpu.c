/* Unit tests of doctor/checks_gpu.c on hand-made reports (ids of real
 * parts) resolved with the shipped data: a GCN 1 or GCN 2 part driven by
 * radeon gets the si_support / cik_support parameters as its fix (and, when
 * the command line already has them, the kernel option to look for); the
 * Vulkan candidate says radeon has no Vulkan driver; a virtual display
 * adapter is listed, skipped and never counted as a GPU. */
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
	struct lemon_err err = { 0 };
	struct doctor_result *res = calloc(1, sizeof(*res));

	if (!res || compat_db_load(LEMON_DATADIR, &res->owned_db, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		free(res);
		return -1;
	}
	res->db = res->owned_db;
	lemon_str_copy(res->report.vulkan.skipped_why,
		       sizeof(res->report.vulkan.skipped_why), "sysroot");
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

static void gpu(struct doctor_result *res, uint16_t device, const char *drv)
{
	struct detect_gpu *g = &res->report.gpus[res->report.n_gpus++];

	lemon_str_copy(g->pci.bdf, sizeof(g->pci.bdf), "0000:01:00.0");
	g->pci.vendor = 0x1002;
	g->pci.device = device;
	g->pci.class_code = 0x030000;
	g->cuda_index = -1;
	lemon_str_copy(g->pci.driver, sizeof(g->pci.driver), drv);
	lemon_str_copy(g->render_node, sizeof(g->render_node), "renderD128");
}

static void judge(struct doctor_result *res)
{
	struct lemon_err err = { 0 };

	res->n_checks = 0;
	assert_int_equal(
		compat_resolve(res->db, NULL, &res->report, &res->view, &err), 0);
	assert_int_equal(compat_pick_backend(res->db, &res->report, &res->view,
					     &res->choice, &err),
			 0);
	doctor_check_gpu(res);
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

static const struct compat_candidate *cand(const struct doctor_result *res,
					   const char *backend)
{
	int i;

	for (i = 0; i < res->choice.n; i++)
		if (strcmp(res->choice.c[i].backend, backend) == 0)
			return &res->choice.c[i];
	return NULL;
}

static void test_gcn1_on_radeon(void **state)
{
	struct doctor_result *res = *state;
	const struct doctor_check *c;

	gpu(res, 0x6798, "radeon"); /* HD 7970, Tahiti */
	judge(res);
	c = find(res, "gpu:0000:01:00.0");
	assert_non_null(c);
	assert_int_equal(c->status, DOCTOR_FAIL);
	assert_non_null(strstr(c->message, "gfx600, GCN 1, Southern Islands) is driven by radeon, not amdgpu: Vulkan (Mesa's RADV) and ROCm need amdgpu"));
	assert_string_equal(c->fix,
			    "add 'radeon.si_support=0 amdgpu.si_support=1' to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then sudo update-grub) and reboot");
	assert_non_null(strstr(cand(res, "vulkan")->reason,
			       "driven by radeon, which has no Vulkan driver; RADV needs amdgpu (radeon.si_support=0 amdgpu.si_support=1)"));
	assert_false(cand(res, "vulkan")->usable);
}

static void test_gcn2_parameters_already_given(void **state)
{
	struct doctor_result *res = *state;
	const struct doctor_check *c;

	gpu(res, 0x67b1, "radeon"); /* R9 290, Hawaii */
	lemon_str_copy(res->report.host.cmdline,
		       sizeof(res->report.host.cmdline),
		       "BOOT_IMAGE=/vmlinuz ro quiet radeon.cik_support=0 amdgpu.cik_support=1");
	judge(res);
	c = find(res, "gpu:0000:01:00.0");
	assert_non_null(c);
	assert_int_equal(c->status, DOCTOR_FAIL);
	assert_non_null(strstr(c->message, "gfx701, GCN 2, Sea Islands)"));
	assert_string_equal(c->fix,
			    "the command line already has radeon.cik_support=0 amdgpu.cik_support=1: use a kernel whose amdgpu is built with CONFIG_DRM_AMDGPU_CIK=y, or read 'sudo dmesg | grep amdgpu'");
	/* a parameter only as part of another word does not count */
	lemon_str_copy(res->report.host.cmdline,
		       sizeof(res->report.host.cmdline),
		       "xradeon.cik_support=0 amdgpu.cik_support=1");
	judge(res);
	assert_non_null(strstr(find(res, "gpu:0000:01:00.0")->fix,
			       "add 'radeon.cik_support=0 amdgpu.cik_support=1'"));
}

static void test_gcn2_on_amdgpu(void **state)
{
	struct doctor_result *res = *state;
	const struct doctor_check *c;

	/* booted with cik_support: amdgpu drives it; no ROCm bundle for
	 * gfx701, Vulkan through RADV */
	gpu(res, 0x67b1, "amdgpu");
	judge(res);
	c = find(res, "gpu:0000:01:00.0");
	assert_non_null(c);
	assert_int_equal(c->status, DOCTOR_OK);
	assert_non_null(strstr(c->message, "gfx701"));
	assert_non_null(strstr(c->message, "no ROCm bundle for it"));
	assert_false(cand(res, "rocm")->usable);
	assert_non_null(strstr(cand(res, "rocm")->reason,
			       "no ROCm bundle for gfx701"));
}

static void test_virtual_display(void **state)
{
	struct doctor_result *res = *state;
	struct detect_pci *p = &res->report.virtual_displays[0];
	const struct doctor_check *c;

	res->report.n_virtual_displays = 1;
	lemon_str_copy(p->bdf, sizeof(p->bdf), "0000:00:02.0");
	p->vendor = 0x1234;
	p->device = 0x1111;
	lemon_str_copy(p->driver, sizeof(p->driver), "bochs-drm");
	judge(res);
	c = find(res, "display:0000:00:02.0");
	assert_non_null(c);
	assert_int_equal(c->status, DOCTOR_SKIP);
	assert_string_equal(c->message,
			    "1234:1111 (driver bochs-drm): a virtual display adapter, not a GPU for inference");
	c = find(res, "gpu");
	assert_non_null(c);
	assert_string_equal(c->message, "no GPU found");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gcn1_on_radeon, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gcn2_parameters_already_given,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gcn2_on_amdgpu, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_virtual_display, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
