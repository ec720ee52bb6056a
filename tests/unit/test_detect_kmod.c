/* detect/kmod.c: amdgpu and amdxdna module facts over recorded trees.
 *
 * /sys/module follows the kernel's layout: a loaded module has initstate
 * "live", a built-in one only a directory (its parameters), an out-of-tree
 * one (DKMS) also a version file. The module indexes are depmod output kept
 * in tests/fixtures/kmod-index (see its README); the tree links its
 * lib/modules there, as a recorded tree would carry a copy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cmocka.h>

#include "detect/detect.h"
#include "tree.h"
#include "run_tree.h"

#define AMDGPU_KO "kernel/drivers/gpu/drm/amd/amdgpu/amdgpu.ko"

/* a tree for kernel `release` whose lib/modules is the fixture index */
static void tree_with_index(char *dir, const char *release)
{
	char cwd[512], target[768];

	tree_new(dir);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(target, sizeof(target), "%s/tests/fixtures/kmod-index/lib/modules",
		 cwd);
	/* the tests run from the repository root */
	assert_int_equal(access(target, R_OK), 0);
	tree_link(dir, "lib/modules", target);
	tree_write(dir, "proc/cmdline", "BOOT_IMAGE=/vmlinuz ro quiet splash\n");
	if (release != NULL) {
		char line[96];

		snprintf(line, sizeof(line), "%s\n", release);
		tree_write(dir, "proc/sys/kernel/osrelease", line);
	}
}

static void test_loaded_module_and_builtin(void **state)
{
	static struct detect_report r;
	char dir[64];

	(void)state;
	tree_with_index(dir, "6.14.0-29-generic");
	tree_write(dir, "sys/module/amdgpu/initstate", "live\n");
	tree_write(dir, "sys/module/amdgpu/refcnt", "31\n");
	tree_write(dir, "sys/module/amdxdna/parameters/autosuspend_ms", "5000\n");
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "kmod"), -1);

	assert_string_equal(r.kmod_amdgpu.name, "amdgpu");
	assert_true(r.kmod_amdgpu.loaded);
	assert_false(r.kmod_amdgpu.builtin);
	assert_true(r.kmod_amdgpu.has_available);
	assert_true(r.kmod_amdgpu.available);
	assert_string_equal(r.kmod_amdgpu.version, "");
	/* the path as the recorded machine sees it, without the sysroot */
	assert_string_equal(r.kmod_amdgpu.path,
			    "/lib/modules/6.14.0-29-generic/" AMDGPU_KO);

	assert_string_equal(r.kmod_amdxdna.name, "amdxdna");
	assert_true(r.kmod_amdxdna.loaded);
	assert_true(r.kmod_amdxdna.builtin);
	assert_true(r.kmod_amdxdna.has_available);
	assert_true(r.kmod_amdxdna.available);
	assert_string_equal(r.kmod_amdxdna.path, "");
	detect_report_free(&r);
	tree_remove(dir);
}

static void test_index_says_builtin_without_sysfs(void **state)
{
	static struct detect_report r;
	char dir[64];

	(void)state;
	/* nothing under sys/module: the index alone knows amdxdna is built
	 * in, and a built-in module is not "loaded" unless sysfs shows it */
	tree_with_index(dir, "6.14.0-29-generic");
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "kmod"), -1);
	assert_false(r.kmod_amdgpu.loaded);
	assert_true(r.kmod_amdgpu.available);
	assert_false(r.kmod_amdxdna.loaded);
	assert_true(r.kmod_amdxdna.builtin);
	assert_true(r.kmod_amdxdna.available);
	detect_report_free(&r);
	tree_remove(dir);
}

static void test_dkms_amdgpu_no_amdxdna(void **state)
{
	static struct detect_report r;
	char dir[64];

	(void)state;
	/* 6.8 predates the in-tree amdxdna; amdgpu comes from DKMS, which
	 * gives the module a version file */
	tree_with_index(dir, "6.8.0-48-generic");
	tree_write(dir, "sys/module/amdgpu/initstate", "live\n");
	tree_write(dir, "sys/module/amdgpu/version", "6.10.5\n");
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "kmod"), -1);
	assert_true(r.kmod_amdgpu.loaded);
	assert_string_equal(r.kmod_amdgpu.version, "6.10.5");
	assert_string_equal(r.kmod_amdgpu.path,
			    "/lib/modules/6.8.0-48-generic/" AMDGPU_KO);
	assert_false(r.kmod_amdxdna.loaded);
	assert_true(r.kmod_amdxdna.has_available);
	assert_false(r.kmod_amdxdna.available);
	assert_false(r.kmod_amdxdna.builtin);
	assert_string_equal(r.kmod_amdxdna.path, "");
	detect_report_free(&r);
	tree_remove(dir);
}

static void test_no_index_is_unknown(void **state)
{
	static struct detect_report r;
	char dir[64];

	(void)state;
	/* a release the index does not have */
	tree_with_index(dir, "6.11.0-1-amd64");
	tree_write(dir, "sys/module/amdgpu/initstate", "live\n");
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "kmod"), -1);
	assert_true(r.kmod_amdgpu.loaded);
	assert_false(r.kmod_amdgpu.has_available);
	assert_false(r.kmod_amdxdna.has_available);
	detect_report_free(&r);
	tree_remove(dir);

	/* no kernel release at all */
	tree_with_index(dir, NULL);
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "kmod"), -1);
	assert_false(r.kmod_amdgpu.has_available);
	detect_report_free(&r);
	tree_remove(dir);

	/* a directory without modules.dep.bin is not an index */
	tree_new(dir);
	tree_write(dir, "proc/sys/kernel/osrelease", "6.14.0-29-generic\n");
	tree_write(dir, "lib/modules/6.14.0-29-generic/modules.dep", "\n");
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "kmod"), -1);
	assert_false(r.kmod_amdgpu.has_available);
	detect_report_free(&r);
	tree_remove(dir);
}

static void test_transitional_initstate(void **state)
{
	static struct detect_report r;
	char dir[64];

	(void)state;
	tree_with_index(dir, "6.14.0-29-generic");
	tree_write(dir, "sys/module/amdgpu/initstate", "coming\n");
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "kmod"), -1);
	assert_false(r.kmod_amdgpu.loaded);
	assert_false(r.kmod_amdgpu.builtin);
	assert_true(r.kmod_amdgpu.available);
	detect_report_free(&r);
	tree_remove(dir);
}

static void test_errors(void **state)
{
	static struct detect_report r;
	char dir[64], longver[128];

	(void)state;
	/* an over-long version is an error; the other facts still stand */
	tree_with_index(dir, "6.14.0-29-generic");
	tree_write(dir, "sys/module/amdgpu/initstate", "live\n");
	memset(longver, 'v', 100);
	longver[100] = '\n';
	longver[101] = '\0';
	tree_write(dir, "sys/module/amdgpu/version", longver);
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "kmod"), LEMON_ERR_TOO_LARGE);
	assert_true(r.kmod_amdgpu.loaded);
	assert_string_equal(r.kmod_amdgpu.version, "");
	assert_true(r.kmod_amdgpu.available);
	assert_true(r.kmod_amdxdna.available);
	detect_report_free(&r);
	tree_remove(dir);

	/* an initstate that cannot be read (a directory: EISDIR) */
	tree_with_index(dir, "6.14.0-29-generic");
	tree_write(dir, "sys/module/amdxdna/initstate/x", "");
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "kmod"), LEMON_ERR_IO);
	assert_false(r.kmod_amdxdna.loaded);
	detect_report_free(&r);
	tree_remove(dir);
}

static void test_live(void **state)
{
	static struct detect_report r;
	struct lemon_err err = { 0 };
	struct lemon_root *root;
	struct utsname u;
	char index[128];
	bool has_index;

	(void)state;
	assert_int_equal(uname(&u), 0);
	snprintf(index, sizeof(index), "%s/modules.dep.bin", u.release);
	assert_int_equal(detect_root_new(NULL, &root, &err), 0);
	has_index = detect_root_exists(root, DETECT_BASE_MODULES, index);
	run_tree(NULL, &r);
	assert_int_equal(probe_error(&r, "kmod"), -1);
	assert_string_equal(r.host.kernel, u.release);
	assert_int_equal(r.kmod_amdgpu.loaded,
			 detect_root_exists(root, DETECT_BASE_SYS, "module/amdgpu"));
	assert_int_equal(r.kmod_amdxdna.loaded,
			 detect_root_exists(root, DETECT_BASE_SYS, "module/amdxdna"));
	/* "available" is known exactly when the index is there (or the
	 * module is built in, which sysfs shows) */
	if (!r.kmod_amdgpu.builtin)
		assert_int_equal(r.kmod_amdgpu.has_available, has_index);
	if (!r.kmod_amdxdna.builtin)
		assert_int_equal(r.kmod_amdxdna.has_available, has_index);
	detect_report_free(&r);
	detect_root_free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loaded_module_and_builtin),
		cmocka_unit_test(test_index_says_builtin_without_sysfs),
		cmocka_unit_test(test_dkms_amdgpu_no_amdxdna),
		cmocka_unit_test(test_no_index_is_unknown),
		cmocka_unit_test(test_transitional_initstate),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_live),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
