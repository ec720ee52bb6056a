/* detect/libdrm.c: the dlopen'ed libdrm_amdgpu probe, against the real
 * library of this machine: its entry points resolve; a path that is not a
 * DRM node, and a file that is not an amdgpu device (/dev/null, which
 * amdgpu_device_initialize itself refuses), are reported as errors, not
 * crashes; under a sysroot the probe is skipped (sysfs is the replay
 * path). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dlfcn.h>

#include "detect/detect.h"

static void test_library_and_errors(void **state)
{
	struct detect_libdrm_fns f;
	struct detect_libdrm_gpu out;
	void *lib;

	(void)state;
	lib = dlopen("libdrm_amdgpu.so.1", RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		print_message("libdrm_amdgpu.so.1 not installed: %s\n",
			      dlerror());
		skip();
	}
	assert_int_equal(detect_libdrm_load(lib, &f), 0);
	assert_non_null(f.init);
	assert_non_null(f.marketing_name);
	assert_int_equal(detect_libdrm_query_node(&f, "/nonexistent/renderD128",
						  &out),
			 -1);
	assert_false(out.queried);
	assert_non_null(strstr(out.error, "cannot open /nonexistent/renderD128"));
	/* a real file descriptor that is no amdgpu device: the library's own
	 * amdgpu_device_initialize says no */
	assert_int_equal(detect_libdrm_query_node(&f, "/dev/null", &out), -1);
	assert_false(out.queried);
	assert_non_null(strstr(out.error, "amdgpu_device_initialize on /dev/null failed"));
	dlclose(lib);
}

static void test_skipped_under_sysroot(void **state)
{
	struct detect_options opts = { .vulkan = false };
	struct lemon_err err = { 0 };
	struct lemon_root *root;
	struct detect_report *r = calloc(1, sizeof(*r));
	int i;

	(void)state;
	assert_non_null(r);
	assert_int_equal(detect_root_new("tests/fixtures/rx6700xt", &root, &err), 0);
	assert_int_equal(detect_run(root, &opts, r, &err), 0);
	assert_false(r->libdrm.probed);
	assert_string_equal(r->libdrm.skipped_why, "sysroot");
	assert_true(r->n_gpus > 0);
	for (i = 0; i < r->n_gpus; i++)
		assert_false(r->gpus[i].libdrm.queried);
	detect_report_free(r);
	detect_root_free(root);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_library_and_errors),
		cmocka_unit_test(test_skipped_under_sysroot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
