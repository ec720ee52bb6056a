/* detect/root.c: directory listing bounds. A directory of more than
 * DETECT_LIST_MAX (65,536) entries once freed the grown array through a
 * stale pointer (use-after-free, then double free); it is refused. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "detect/detect.h"
#include "tree.h"
#include "util/fs.h"

/* creates names f0000000 .. under dir; openat+close is quick enough for
 * tens of thousands of entries */
static void add_files(int dfd, unsigned from, unsigned to)
{
	char name[32];
	unsigned i;
	int fd;

	for (i = from; i < to; i++) {
		snprintf(name, sizeof(name), "f%07u", i);
		fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			perror(name);
			abort();
		}
		close(fd);
	}
}

static void test_list_limit(void **state)
{
	char dir[64], big[128];
	struct lemon_err err = { 0 };
	struct detect_names names;
	struct lemon_root *root;
	int dfd;

	(void)state;
	tree_new(dir);
	snprintf(big, sizeof(big), "%s/sys/big", dir);
	tree_mkdirs(big);
	dfd = open(big, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(detect_root_new(dir, &root, &err), 0);
	/* exactly the maximum: listed, sorted */
	add_files(dfd, 0, 65536);
	assert_int_equal(detect_root_list(root, DETECT_BASE_SYS, "big", &names, &err), 0);
	assert_int_equal(names.count, 65536);
	assert_string_equal(names.names[0], "f0000000");
	assert_string_equal(names.names[65535], "f0065535");
	detect_names_free(&names);
	/* one more: refused with TOO_LARGE naming the directory, nothing
	 * left to free */
	add_files(dfd, 65536, 65537);
	assert_int_equal(detect_root_list(root, DETECT_BASE_SYS, "big", &names, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
	assert_non_null(strstr(err.msg, "sys/big"));
	assert_null(names.names);
	assert_int_equal(names.count, 0);
	detect_names_free(&names);
	close(dfd);
	detect_root_free(root);
	assert_int_equal(lemon_rm_tree(dir, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
