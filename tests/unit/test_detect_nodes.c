/* detect/nodes.c and detect/root.c: recorded node permissions judged
 * against the recorded user, root path handling */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "detect/detect.h"
#include "tree.h"

static void write_machine(const char *dir, const char *groups_line)
{
	char status[512];

	tree_write(dir, "dev/kfd", "");
	tree_write(dir, "sys/class/kfd/kfd/topology/nodes/0/properties", "gfx_target_version 0\n");
	tree_write(dir, "dev/.lemon-stat", "/dev/kfd 660 0 992\n");
	tree_write(dir, "etc/group", "root:x:0:\nvideo:x:44:\nrender:x:992:\nuser:x:1000:\n");
	snprintf(status, sizeof(status),
		 "Name:\tlemon\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t%s\n",
		 groups_line);
	tree_write(dir, "proc/self/status", status);
}

static void run(const char *dir, struct detect_report *rep)
{
	struct detect_options opts = { .vulkan = false };
	struct lemon_err err = { 0 };
	struct lemon_root *root;

	assert_int_equal(detect_root_new(dir, &root, &err), 0);
	assert_int_equal(detect_run(root, &opts, rep, &err), 0);
	detect_root_free(root);
}

static void test_kfd_denied_without_render(void **state)
{
	struct detect_report *rep = calloc(1, sizeof(*rep));
	const struct detect_node *n;
	char dir[64];

	(void)state;
	tree_new(dir);
	write_machine(dir, "27 1000");
	run(dir, rep);
	n = detect_find_node(rep, "kfd");
	assert_non_null(n);
	assert_true(n->exists);
	assert_true(n->has_mode);
	assert_int_equal(n->mode, 0660);
	assert_int_equal(n->gid, 992);
	assert_string_equal(n->group, "render");
	assert_false(n->readable);
	assert_false(n->writable);
	detect_report_free(rep);
	free(rep);
	tree_remove(dir);
}

static void test_kfd_allowed_in_render(void **state)
{
	struct detect_report *rep = calloc(1, sizeof(*rep));
	const struct detect_node *n;
	char dir[64];

	(void)state;
	tree_new(dir);
	write_machine(dir, "27 992 1000");
	run(dir, rep);
	n = detect_find_node(rep, "kfd");
	assert_non_null(n);
	assert_true(n->readable);
	assert_true(n->writable);
	detect_report_free(rep);
	free(rep);
	tree_remove(dir);
}

static void test_root_errors(void **state)
{
	struct lemon_err err = { 0 };
	struct lemon_root *root;
	char dir[64], buf[8];
	size_t len;

	(void)state;
	assert_int_equal(detect_root_new("/nonexistent/lemon", &root, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	lemon_err_clear(&err);
	tree_new(dir);
	tree_write(dir, "proc/cmdline", "0123456789abcdef\n");
	assert_int_equal(detect_root_new(dir, &root, &err), 0);
	assert_false(detect_root_is_live(root));
	assert_int_equal(detect_root_read(root, DETECT_BASE_PROC, "cmdline", buf, sizeof(buf), &len, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
	lemon_err_clear(&err);
	assert_int_equal(detect_root_read(root, DETECT_BASE_PROC, "missing", buf, sizeof(buf), &len, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	detect_root_free(root);
	tree_remove(dir);
}

static void test_amdgpu_ids(void **state)
{
	const char ids[] = "# comment\n1.0.0\n1586,\tC1,\tAMD Radeon 8060S Graphics\n"
			   "7481 ,  C7,   AMD Radeon Spaced\n744C,\tC8,\tAMD Radeon RX 7900 XTX\n";
	struct lemon_err err = { 0 };
	char name[64];

	(void)state;
	assert_int_equal(detect_amdgpu_ids_lookup(ids, strlen(ids), 0x1586, 0xc1, name, sizeof(name), &err), 0);
	assert_string_equal(name, "AMD Radeon 8060S Graphics");
	assert_int_equal(detect_amdgpu_ids_lookup(ids, strlen(ids), 0x7481, 0xc7, name, sizeof(name), &err), 0);
	assert_string_equal(name, "AMD Radeon Spaced");
	assert_int_equal(detect_amdgpu_ids_lookup(ids, strlen(ids), 0x744c, 0xc0, name, sizeof(name), &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
}

static void test_cmdline_iommu(void **state)
{
	const char cmd[] = "BOOT_IMAGE=/vmlinuz root=UUID=x ro quiet amd_iommu=off iommu=pt\n";
	struct detect_iommu io = { 0 };

	(void)state;
	detect_cmdline_parse_iommu(cmd, strlen(cmd), &io);
	assert_true(io.cmdline_amd_iommu_off);
	assert_false(io.cmdline_iommu_off);
	assert_true(io.cmdline_iommu_pt);
}

static void test_kmsg_relevant(void **state)
{
	const char a[] = "[    5.1] amdxdna 0000:c6:00.1: [drm] *ERROR* aie2_check_protocol: Incompatible firmware protocol major 7 minor 2";
	const char b[] = "[    0.1] Linux version 6.17.0";

	(void)state;
	assert_true(detect_kmsg_relevant(a, strlen(a)));
	assert_false(detect_kmsg_relevant(b, strlen(b)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kfd_denied_without_render),
		cmocka_unit_test(test_kfd_allowed_in_render),
		cmocka_unit_test(test_root_errors),
		cmocka_unit_test(test_amdgpu_ids),
		cmocka_unit_test(test_cmdline_iommu),
		cmocka_unit_test(test_kmsg_relevant),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
