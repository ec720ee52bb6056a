/* util/fs.c and util/buf.c: directory creation, tree removal, directory
 * fsync, atomic write, directory swap, bounded file read and read-all */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <dirent.h>
#include <stdbool.h>

#include <cmocka.h>

#include "tree.h"
#include "util/buf.h"
#include "util/fs.h"

static void test_mkdirs(void **state)
{
	char dir[64], path[256], failed[256], huge[5000];
	struct stat st;

	(void)state;
	tree_new(dir);
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	assert_int_equal(lemon_mkdirs(path, failed, sizeof(failed)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* existing directories are fine */
	assert_int_equal(lemon_mkdirs(path, failed, sizeof(failed)), 0);
	/* a file in the way names that component */
	tree_write(dir, "file", "x");
	snprintf(path, sizeof(path), "%s/file/sub", dir);
	assert_int_equal(lemon_mkdirs(path, failed, sizeof(failed)), ENOTDIR);
	snprintf(path, sizeof(path), "%s/file/sub", dir);
	assert_string_equal(failed, path);
	memset(huge, 'a', sizeof(huge) - 1);
	huge[0] = '/';
	huge[sizeof(huge) - 1] = '\0';
	assert_int_equal(lemon_mkdirs(huge, failed, sizeof(failed)), ENAMETOOLONG);
	tree_remove(dir);
}

static bool exists(const char *dir, const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return lstat(path, &st) == 0;
}

static void test_rm_tree(void **state)
{
	char dir[64], outside[64], path[256], target[256];
	struct lemon_err err = { 0 };

	(void)state;
	tree_new(dir);
	tree_new(outside);
	tree_write(outside, "keep/precious", "x");
	tree_write(dir, "t/a/b/c/file", "1");
	tree_write(dir, "t/a/other", "2");
	/* links to a directory and a file outside: removed, never followed */
	snprintf(target, sizeof(target), "%s/keep", outside);
	tree_link(dir, "t/a/b/dirlink", target);
	snprintf(target, sizeof(target), "%s/keep/precious", outside);
	tree_link(dir, "t/filelink", target);
	tree_link(dir, "t/dangling", "/nonexistent-lemon-target");
	snprintf(path, sizeof(path), "%s/t", dir);
	assert_int_equal(lemon_rm_tree(path, &err), 0);
	assert_false(exists(dir, "t"));
	assert_true(exists(outside, "keep/precious"));
	/* a missing path is success */
	assert_int_equal(lemon_rm_tree(path, &err), 0);
	assert_int_equal(err.code, LEMON_OK);
	/* a symlink given as the path itself: the link goes, the target stays */
	snprintf(target, sizeof(target), "%s/keep", outside);
	tree_link(dir, "top", target);
	snprintf(path, sizeof(path), "%s/top", dir);
	assert_int_equal(lemon_rm_tree(path, &err), 0);
	assert_false(exists(dir, "top"));
	assert_true(exists(outside, "keep/precious"));
	/* a plain file */
	tree_write(dir, "f", "x");
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(lemon_rm_tree(path, &err), 0);
	assert_false(exists(dir, "f"));
	/* a component that is a file: named in the error */
	tree_write(dir, "g", "x");
	snprintf(path, sizeof(path), "%s/g/sub", dir);
	assert_int_equal(lemon_rm_tree(path, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, path));
	tree_remove(dir);
	tree_remove(outside);
}

static void test_fsync_dir(void **state)
{
	char dir[64];
	struct lemon_err err = { 0 };

	(void)state;
	tree_new(dir);
	assert_int_equal(lemon_fsync_dir(dir, &err), 0);
	assert_int_equal(lemon_fsync_dir("/nonexistent-lemon/dir", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, "/nonexistent-lemon/dir"));
	tree_remove(dir);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.' || (de->d_name[1] && de->d_name[1] != '.');
	closedir(d);
	return n;
}

static void test_write_atomic(void **state)
{
	char dir[64], path[256], *text = NULL;
	struct lemon_err err = { 0 };
	struct stat st;
	size_t len;

	(void)state;
	tree_new(dir);
	assert_int_equal(lemon_write_atomic(dir, "a.json", "old", 3, &err), 0);
	assert_int_equal(lemon_write_atomic(dir, "a.json", "newer", 5, &err), 0);
	snprintf(path, sizeof(path), "%s/a.json", dir);
	assert_int_equal(lemon_read_file(path, 100, false, &text, &len, &err), 0);
	assert_string_equal(text, "newer");
	assert_int_equal(len, 5);
	free(text);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	/* no temp file is left beside it */
	assert_int_equal(count_entries(dir), 1);
	/* a missing directory: NOT_FOUND, nothing created */
	assert_int_equal(lemon_write_atomic("/nonexistent-lemon", "a", "x", 1, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	/* the target is a directory: the rename fails, the temp file goes */
	lemon_err_clear(&err);
	tree_write(dir, "d/inner", "x");
	assert_int_equal(lemon_write_atomic(dir, "d", "x", 1, &err), -1);
	assert_int_not_equal(err.code, LEMON_OK);
	assert_int_equal(count_entries(dir), 2);
	tree_remove(dir);
}

static void test_swap_into_place(void **state)
{
	char dir[64], staging[256], final[256], *text = NULL, path[512];
	struct lemon_err err = { 0 };
	bool swapped = true;

	(void)state;
	tree_new(dir);
	snprintf(staging, sizeof(staging), "%s/staging", dir);
	snprintf(final, sizeof(final), "%s/final", dir);
	/* no final yet: a plain rename */
	tree_write(dir, "staging/v", "1");
	assert_int_equal(lemon_swap_into_place(staging, final, &swapped, &err), 0);
	assert_false(swapped);
	assert_false(exists(dir, "staging"));
	/* a final exists: exchanged, the old tree now at staging */
	tree_write(dir, "staging/v", "2");
	assert_int_equal(lemon_swap_into_place(staging, final, &swapped, &err), 0);
	assert_true(swapped);
	snprintf(path, sizeof(path), "%s/v", final);
	assert_int_equal(lemon_read_file(path, 10, false, &text, NULL, &err), 0);
	assert_string_equal(text, "2");
	free(text);
	snprintf(path, sizeof(path), "%s/v", staging);
	assert_int_equal(lemon_read_file(path, 10, false, &text, NULL, &err), 0);
	assert_string_equal(text, "1");
	free(text);
	/* a missing staging: NOT_FOUND naming the target */
	assert_int_equal(lemon_rm_tree(staging, &err), 0);
	assert_int_equal(lemon_swap_into_place(staging, final, &swapped, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, final));
	tree_remove(dir);
}

static void test_read_file(void **state)
{
	char dir[64], path[256], *text = (char *)"unset";
	struct lemon_err err = { 0 };
	size_t len = 99;

	(void)state;
	tree_new(dir);
	tree_write(dir, "ten", "0123456789");
	snprintf(path, sizeof(path), "%s/ten", dir);
	assert_int_equal(lemon_read_file(path, 10, false, &text, &len, &err), 0);
	assert_string_equal(text, "0123456789");
	assert_int_equal(len, 10);
	free(text);
	/* one byte over the maximum */
	assert_int_equal(lemon_read_file(path, 9, false, &text, &len, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
	assert_null(text);
	/* missing: NOT_FOUND, or nothing with missing_ok */
	lemon_err_clear(&err);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(lemon_read_file(path, 9, false, &text, &len, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	lemon_err_clear(&err);
	assert_int_equal(lemon_read_file(path, 9, true, &text, &len, &err), 0);
	assert_null(text);
	assert_int_equal(err.code, LEMON_OK);
	/* a FIFO with no writer: refused at once, never a blocking read */
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(lemon_read_file(path, 100, false, &text, &len, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	/* a directory */
	lemon_err_clear(&err);
	assert_int_equal(lemon_read_file(dir, 100, false, &text, &len, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	tree_remove(dir);
}

struct src {
	const char *p;
	size_t left;
	int fail_at_end;
};

static ssize_t read_src(void *ctx, char *out, size_t cap)
{
	struct src *s = ctx;
	size_t n = s->left < cap ? s->left : cap;

	if (n > 3)
		n = 3; /* short reads, as sockets give */
	if (n == 0)
		return s->fail_at_end ? -1 : 0;
	memcpy(out, s->p, n);
	s->p += n;
	s->left -= n;
	return (ssize_t)n;
}

static void test_read_all(void **state)
{
	const char text[] = "0123456789abcdefghij";
	struct src s = { text, sizeof(text) - 1, 0 };
	char *b;

	(void)state;
	/* grows from a 4-byte start to hold all 20 bytes */
	b = lemon_read_all(read_src, &s, 4, 100);
	assert_non_null(b);
	assert_string_equal(b, text);
	free(b);
	/* over the maximum: refused */
	s = (struct src){ text, sizeof(text) - 1, 0 };
	assert_null(lemon_read_all(read_src, &s, 4, 10));
	/* a failed read: refused */
	s = (struct src){ text, sizeof(text) - 1, 1 };
	assert_null(lemon_read_all(read_src, &s, 4, 100));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mkdirs),
		cmocka_unit_test(test_read_all),
		cmocka_unit_test(test_rm_tree),
		cmocka_unit_test(test_fsync_dir),
		cmocka_unit_test(test_write_atomic),
		cmocka_unit_test(test_swap_into_place),
		cmocka_unit_test(test_read_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
