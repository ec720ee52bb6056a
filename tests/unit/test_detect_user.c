/* detect/user.c: /proc/self/status, /proc/self/limits and /etc/group parsers
 * and the user probe. The status and limits texts are the kernel's layout
 * for a desktop user (uid 1000 in adm, cdrom, sudo, dip, plugdev, render,
 * video...); the live tests parse this process's own files and check them
 * against getuid(2), getgroups(2) and getrlimit(2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "detect/detect.h"
#include "tree.h"
#include "run_tree.h"

static const char desktop_status[] =
	"Name:\tlemon\n"
	"Umask:\t0002\n"
	"State:\tR (running)\n"
	"Tgid:\t48211\n"
	"Ngid:\t0\n"
	"Pid:\t48211\n"
	"PPid:\t3390\n"
	"TracerPid:\t0\n"
	"Uid:\t1000\t1000\t1000\t1000\n"
	"Gid:\t1000\t1000\t1000\t1000\n"
	"FDSize:\t256\n"
	"Groups:\t4 24 27 30 44 46 100 105 992 1000 \n"
	"NStgid:\t48211\n"
	"NSpid:\t48211\n"
	"VmPeak:\t    9172 kB\n"
	"Threads:\t1\n"
	"Cpus_allowed_list:\t0-31\n";

static const char desktop_limits[] =
	"Limit                     Soft Limit           Hard Limit           Units     \n"
	"Max cpu time              unlimited            unlimited            seconds   \n"
	"Max file size             unlimited            unlimited            bytes     \n"
	"Max stack size            8388608              unlimited            bytes     \n"
	"Max open files            1024                 1048576              files     \n"
	"Max locked memory         8388608              8388608              bytes     \n"
	"Max address space         unlimited            unlimited            bytes     \n"
	"Max realtime timeout      unlimited            unlimited            us        \n";

static const char group_file[] =
	"root:x:0:\n"
	"adm:x:4:syslog,alice\n"
	"# a comment line\n"
	"broken-line-without-fields\n"
	"video:x:44:alice\n"
	"render:x:992:alice\n"
	"bad:x:99x:\n"
	"alice:x:1000:";

static void test_status_desktop(void **state)
{
	static const unsigned want[] = { 4, 24, 27, 30, 44, 46, 100, 105, 992, 1000 };
	struct lemon_err err = { 0 };
	struct detect_user u;
	int i;

	(void)state;
	memset(&u, 0, sizeof(u));
	u.has_memlock = true; /* status must not touch the memlock facts */
	assert_int_equal(detect_status_parse(desktop_status,
					     sizeof(desktop_status) - 1, &u, &err), 0);
	assert_true(u.known);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 1000);
	assert_int_equal(u.n_groups, 10);
	for (i = 0; i < 10; i++)
		assert_int_equal(u.groups[i], want[i]);
	assert_true(u.has_memlock);
}

static void test_status_real_effective_differ(void **state)
{
	/* a setuid process: the real ids are the ones access is judged on */
	static const char s[] = "Uid:\t1000\t0\t0\t0\nGid:\t1000\t0\t0\t0\nGroups:\t \n";
	struct lemon_err err = { 0 };
	struct detect_user u;

	(void)state;
	assert_int_equal(detect_status_parse(s, sizeof(s) - 1, &u, &err), 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 1000);
	assert_int_equal(u.n_groups, 0);
}

static void test_status_64_groups(void **state)
{
	struct lemon_err err = { 0 };
	struct detect_user u;
	char buf[1024];
	size_t len;
	int i;

	(void)state;
	len = (size_t)snprintf(buf, sizeof(buf), "Uid:\t5\t5\t5\t5\nGid:\t6\t6\t6\t6\nGroups:\t");
	for (i = 0; i < 64; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%d ", 2000 + i);
	assert_int_equal(detect_status_parse(buf, len, &u, &err), 0);
	assert_int_equal(u.n_groups, 64);
	assert_int_equal(u.groups[63], 2063);

	/* one more does not fit the report */
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "3000\n");
	assert_int_equal(detect_status_parse(buf, len, &u, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
	assert_false(u.known);
	assert_int_equal(u.n_groups, 0);
}

static void expect_status_error(const char *text, enum lemon_err_code code)
{
	struct lemon_err err = { 0 };
	struct detect_user u;

	assert_int_equal(detect_status_parse(text, strlen(text), &u, &err), -1);
	assert_int_equal(err.code, code);
	assert_false(u.known);
}

static void test_status_errors(void **state)
{
	(void)state;
	expect_status_error("", LEMON_ERR_INVALID_DATA);
	expect_status_error("Gid:\t0\t0\t0\t0\n", LEMON_ERR_INVALID_DATA);
	expect_status_error("Uid:\t0\t0\t0\t0\n", LEMON_ERR_INVALID_DATA);
	expect_status_error("Uid:\tabc\t0\t0\t0\nGid:\t0\n", LEMON_ERR_INVALID_DATA);
	expect_status_error("Uid:\t\nGid:\t0\n", LEMON_ERR_INVALID_DATA);
	expect_status_error("Uid:\t4294967296\t0\t0\t0\nGid:\t0\n", LEMON_ERR_INVALID_DATA);
	expect_status_error("Uid:\t1\nGid:\t-1\n", LEMON_ERR_INVALID_DATA);
	expect_status_error("Uid:\t1\nGid:\t1\nGroups:\t4 x24 27\n", LEMON_ERR_INVALID_DATA);
	expect_status_error("Uid:\t1\nGid:\t1\nGroups:\t1234567890123456789012345678901234\n",
			    LEMON_ERR_INVALID_DATA);
}

static void test_limits(void **state)
{
	struct lemon_err err = { 0 };
	struct detect_user u;
	static const char unl[] =
		"Limit                     Soft Limit           Hard Limit           Units     \n"
		"Max locked memory         unlimited            unlimited            bytes     \n";
	static const char soft_only[] =
		"Max locked memory         65536                unlimited            bytes     \n";

	(void)state;
	memset(&u, 0, sizeof(u));
	assert_int_equal(detect_limits_parse_memlock(desktop_limits,
						     sizeof(desktop_limits) - 1, &u, &err), 0);
	assert_true(u.has_memlock);
	assert_false(u.memlock_unlimited);
	assert_true(u.memlock_bytes == 8388608);
	assert_int_equal(detect_limits_parse_memlock(unl, sizeof(unl) - 1, &u, &err), 0);
	assert_true(u.has_memlock);
	assert_true(u.memlock_unlimited);
	/* the soft limit is the one that applies */
	assert_int_equal(detect_limits_parse_memlock(soft_only, sizeof(soft_only) - 1,
						     &u, &err), 0);
	assert_false(u.memlock_unlimited);
	assert_true(u.memlock_bytes == 65536);
}

static void expect_limits_error(const char *text, enum lemon_err_code code)
{
	struct lemon_err err = { 0 };
	struct detect_user u;

	assert_int_equal(detect_limits_parse_memlock(text, strlen(text), &u, &err), -1);
	assert_int_equal(err.code, code);
	assert_false(u.has_memlock);
}

static void test_limits_errors(void **state)
{
	(void)state;
	expect_limits_error("", LEMON_ERR_INVALID_DATA);
	expect_limits_error("Max open files 1024 1024 files\n", LEMON_ERR_INVALID_DATA);
	expect_limits_error("Max locked memory\n", LEMON_ERR_INVALID_DATA);
	expect_limits_error("Max locked memory         8M    8M   bytes\n",
			    LEMON_ERR_INVALID_DATA);
	expect_limits_error("Max locked memory         18446744073709551616  1  bytes\n",
			    LEMON_ERR_INVALID_DATA);
}

static void test_group_name(void **state)
{
	char name[32];

	(void)state;
	assert_true(detect_group_name(group_file, sizeof(group_file) - 1, 992, name,
				      sizeof(name)));
	assert_string_equal(name, "render");
	assert_true(detect_group_name(group_file, sizeof(group_file) - 1, 44, name,
				      sizeof(name)));
	assert_string_equal(name, "video");
	/* last line without newline or members */
	assert_true(detect_group_name(group_file, sizeof(group_file) - 1, 1000, name,
				      sizeof(name)));
	assert_string_equal(name, "alice");
	assert_false(detect_group_name(group_file, sizeof(group_file) - 1, 993, name,
				       sizeof(name)));
	assert_false(detect_group_name(group_file, sizeof(group_file) - 1, 99, name,
				       sizeof(name)));
	/* a name that does not fit is not returned truncated */
	assert_false(detect_group_name(group_file, sizeof(group_file) - 1, 992, name, 4));
	assert_false(detect_group_name("", 0, 0, name, sizeof(name)));
}

static void test_probe_sysroot(void **state)
{
	static struct detect_report r;
	char dir[64];

	(void)state;
	tree_new(dir);
	tree_write(dir, "proc/self/status", desktop_status);
	tree_write(dir, "proc/self/limits", desktop_limits);
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "user"), -1);
	/* the recorded user, not the one running the test */
	assert_true(r.user.known);
	assert_int_equal(r.user.uid, 1000);
	assert_int_equal(r.user.n_groups, 10);
	assert_int_equal(r.user.groups[8], 992);
	assert_true(r.user.has_memlock);
	assert_true(r.user.memlock_bytes == 8388608);
	detect_report_free(&r);

	/* a broken status is recorded; limits are still read */
	tree_write(dir, "proc/self/status", "Uid:\tnobody\nGid:\t0\n");
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "user"), LEMON_ERR_INVALID_DATA);
	assert_false(r.user.known);
	assert_true(r.user.has_memlock);
	detect_report_free(&r);
	tree_remove(dir);

	/* missing files: unknown, no error */
	tree_new(dir);
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "user"), -1);
	assert_false(r.user.known);
	assert_false(r.user.has_memlock);
	detect_report_free(&r);
	tree_remove(dir);
}

static void test_live_files_match_syscalls(void **state)
{
	struct lemon_err err = { 0 };
	struct lemon_root *root;
	struct detect_user u;
	struct rlimit rl;
	gid_t groups[64];
	char buf[16384];
	size_t len;
	int n, i;

	(void)state;
	memset(&u, 0, sizeof(u));
	assert_int_equal(detect_root_new(NULL, &root, &err), 0);
	assert_int_equal(detect_root_read(root, DETECT_BASE_PROC, "self/status", buf,
					  sizeof(buf), &len, &err), 0);
	assert_int_equal(detect_status_parse(buf, len, &u, &err), 0);
	assert_int_equal(u.uid, getuid());
	assert_int_equal(u.gid, getgid());
	n = getgroups(64, groups);
	assert_int_equal(u.n_groups, n);
	for (i = 0; i < n; i++)
		assert_int_equal(u.groups[i], groups[i]);
	assert_int_equal(detect_root_read(root, DETECT_BASE_PROC, "self/limits", buf,
					  sizeof(buf), &len, &err), 0);
	assert_int_equal(detect_limits_parse_memlock(buf, len, &u, &err), 0);
	assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
	assert_int_equal(u.memlock_unlimited, rl.rlim_cur == RLIM_INFINITY);
	if (!u.memlock_unlimited)
		assert_true(u.memlock_bytes == (uint64_t)rl.rlim_cur);
	detect_root_free(root);
}

static void test_probe_live(void **state)
{
	static struct detect_report r;
	struct rlimit rl;

	(void)state;
	run_tree(NULL, &r);
	assert_int_equal(probe_error(&r, "user"), -1);
	assert_true(r.user.known);
	assert_int_equal(r.user.uid, getuid());
	assert_int_equal(r.user.gid, getgid());
	assert_int_equal(r.user.n_groups, getgroups(0, NULL));
	assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
	assert_true(r.user.has_memlock);
	assert_int_equal(r.user.memlock_unlimited, rl.rlim_cur == RLIM_INFINITY);
	detect_report_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_desktop),
		cmocka_unit_test(test_status_real_effective_differ),
		cmocka_unit_test(test_status_64_groups),
		cmocka_unit_test(test_status_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_limits_errors),
		cmocka_unit_test(test_group_name),
		cmocka_unit_test(test_probe_sysroot),
		cmocka_unit_test(test_live_files_match_syscalls),
		cmocka_unit_test(test_probe_live),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
