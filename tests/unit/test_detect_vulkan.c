/* detect/vulkan.c: the dlopen'ed Vulkan probe on this machine.
 *
 * The live run is checked against `vulkaninfo --summary` (vulkan-tools), an
 * independent reader of the same loader: same device count, same names,
 * same driver ids. Mesa's lavapipe must come out as a CPU device. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "detect/detect.h"
#include "util/str.h"
#include "tree.h"

/* VK_MAKE_API_VERSION(0, 1, 1, 0) */
#define API_1_1 ((1u << 22) | (1u << 12))

static void run(const char *dir, bool vulkan, struct detect_report *r)
{
	struct detect_options opts = { .vulkan = vulkan };
	struct lemon_err err = { 0 };
	struct lemon_root *root;
	int i;

	assert_int_equal(detect_root_new(dir, &root, &err), 0);
	assert_int_equal(detect_run(root, &opts, r, &err), 0);
	/* the probe never fails: problems are facts in r->vulkan */
	for (i = 0; i < r->n_probe_errors; i++)
		assert_string_not_equal(r->probe_errors[i].probe, "vulkan");
	detect_root_free(root);
}

/* "deviceName = x" and "driverID = DRIVER_ID_X" of vulkaninfo --summary */
struct vi_device {
	char name[256];
	char driver_id[64];
};

static int vulkaninfo(struct vi_device *out, int cap)
{
	char line[512];
	int n = 0;
	FILE *p;

	p = popen("vulkaninfo --summary 2>/dev/null", "r");
	if (p == NULL)
		return -1;
	while (fgets(line, sizeof(line), p) != NULL) {
		const char *key, *val;
		size_t klen, vlen;

		if (!lemon_split_kv(line, strlen(line), '=', &key, &klen, &val, &vlen))
			continue;
		if (lemon_slice_eq(key, klen, "deviceName") && n < cap)
			lemon_str_copy_n(out[n++].name, sizeof(out[0].name), val, vlen);
		else if (lemon_slice_eq(key, klen, "driverID") && n > 0)
			lemon_str_copy_n(out[n - 1].driver_id,
					 sizeof(out[0].driver_id), val, vlen);
	}
	return pclose(p) == 0 ? n : -1;
}

static void test_live_matches_vulkaninfo(void **state)
{
	static struct detect_report r;
	struct vi_device vi[DETECT_MAX_VK];
	int n, i, lavapipe = 0;

	(void)state;
	n = vulkaninfo(vi, DETECT_MAX_VK);
	if (n < 0)
		skip(); /* vulkan-tools missing: nothing to compare against */
	run(NULL, true, &r);
	assert_true(r.vulkan.probed);
	assert_string_equal(r.vulkan.skipped_why, "");
	assert_true(r.vulkan.loader);
	assert_string_equal(r.vulkan.error, "");
	assert_int_equal(r.vulkan.n_devices, n);
	for (i = 0; i < n; i++) {
		const struct detect_vk_device *d = &r.vulkan.devices[i];

		assert_string_equal(d->name, vi[i].name);
		assert_true(d->api_version >= API_1_1);
		if (strcmp(vi[i].driver_id, "DRIVER_ID_MESA_LLVMPIPE") == 0) {
			lavapipe++;
			assert_string_equal(d->driver, "lavapipe");
			/* a CPU rasteriser never counts as a GPU */
			assert_int_equal(d->type, DETECT_VK_CPU);
			assert_string_equal(detect_vk_type_name(d->type), "cpu");
			assert_int_equal(d->vendor_id, 0x10005); /* VK_VENDOR_ID_MESA */
			assert_true(strstr(d->driver_info, "Mesa") != NULL);
		} else if (strcmp(vi[i].driver_id, "DRIVER_ID_MESA_RADV") == 0) {
			assert_string_equal(d->driver, "radv");
		}
	}
	/* mesa-vulkan-drivers is a dependency of this project */
	assert_true(lavapipe >= 1);
	detect_report_free(&r);
}

static void test_no_vulkan_option(void **state)
{
	static struct detect_report r;

	(void)state;
	run(NULL, false, &r);
	assert_false(r.vulkan.probed);
	assert_string_equal(r.vulkan.skipped_why, "--no-vulkan");
	assert_false(r.vulkan.loader);
	assert_int_equal(r.vulkan.n_devices, 0);
	detect_report_free(&r);
}

static void test_sysroot_skips(void **state)
{
	static struct detect_report r;
	char dir[64];

	(void)state;
	tree_new(dir);
	tree_write(dir, "proc/cmdline", "ro\n");
	run(dir, true, &r);
	assert_false(r.vulkan.probed);
	assert_string_equal(r.vulkan.skipped_why, "sysroot");
	assert_int_equal(r.vulkan.n_devices, 0);
	detect_report_free(&r);
	tree_remove(dir);
}

static void test_no_driver_is_a_fact(void **state)
{
	static struct detect_report r;

	(void)state;
	/* point the loader at no ICD: the loader opens, the instance fails,
	 * and that is reported, not fatal */
	setenv("VK_DRIVER_FILES", "/nonexistent/lemon_icd.json", 1);
	setenv("VK_ICD_FILENAMES", "/nonexistent/lemon_icd.json", 1);
	run(NULL, true, &r);
	unsetenv("VK_DRIVER_FILES");
	unsetenv("VK_ICD_FILENAMES");
	assert_true(r.vulkan.probed);
	assert_true(r.vulkan.loader);
	assert_int_equal(r.vulkan.n_devices, 0);
	assert_string_equal(r.vulkan.error,
			    "vkCreateInstance failed: VK_ERROR_INCOMPATIBLE_DRIVER "
			    "(no Vulkan driver installed)");
	detect_report_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_matches_vulkaninfo),
		cmocka_unit_test(test_no_vulkan_option),
		cmocka_unit_test(test_sysroot_skips),
		cmocka_unit_test(test_no_driver_is_a_fact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
