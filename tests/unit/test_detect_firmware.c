/* detect/firmware.c: firmware lookup and version extraction */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "detect/detect.h"
#include "tree.h"

static void test_version_from_name(void **state)
{
	char v[48];

	(void)state;
	assert_true(detect_firmware_version_from_name("npu.sbin.1.0.0.63", v, sizeof(v)));
	assert_string_equal(v, "1.0.0.63");
	assert_true(detect_firmware_version_from_name("1.7_npu.sbin.1.1.2.64.zst", v, sizeof(v)));
	assert_string_equal(v, "1.1.2.64");
	assert_false(detect_firmware_version_from_name("npu.sbin", v, sizeof(v)));
	assert_false(detect_firmware_version_from_name("npu.sbin.latest", v, sizeof(v)));
}

static void test_version_from_blob(void **state)
{
	const char blob[] = "\x01\x02junk\0Release 1.0.20.31\0more";
	const char none[] = "no version here Release x";
	char v[48];

	(void)state;
	assert_true(detect_firmware_version_from_blob(blob, sizeof(blob), v, sizeof(v)));
	assert_string_equal(v, "1.0.20.31");
	assert_false(detect_firmware_version_from_blob(none, sizeof(none), v, sizeof(v)));
}

static void test_find(void **state)
{
	struct detect_firmware fw;
	struct lemon_err err = { 0 };
	struct lemon_root *root;
	char dir[64];

	(void)state;
	tree_new(dir);
	tree_write(dir, "lib/firmware/amdnpu/17f0_10/npu.sbin.1.1.2.64.zst", "x");
	tree_link(dir, "lib/firmware/amdnpu/17f0_10/npu.sbin.zst", "npu.sbin.1.1.2.64.zst");
	tree_write(dir, "lib/firmware/amdnpu/17f0_11/npu.sbin", "hdr Release 1.0.20.31 end");
	assert_int_equal(detect_root_new(dir, &root, &err), 0);
	assert_int_equal(detect_firmware_find(root, "amdnpu/17f0_10", "npu.sbin", &fw, &err), 0);
	assert_string_equal(fw.file, "amdnpu/17f0_10/npu.sbin.zst");
	assert_true(fw.compressed);
	assert_string_equal(fw.version, "1.1.2.64");
	assert_int_equal(detect_firmware_find(root, "amdnpu/17f0_11", "npu.sbin", &fw, &err), 0);
	assert_string_equal(fw.version, "1.0.20.31");
	assert_int_equal(detect_firmware_find(root, "amdnpu/17f0_11", "npu_7.sbin", &fw, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	detect_root_free(root);
	tree_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_from_name),
		cmocka_unit_test(test_version_from_blob),
		cmocka_unit_test(test_find),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
