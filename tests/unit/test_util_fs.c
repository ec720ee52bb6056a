/* util/fs.c and util/buf.c: directory creation and bounded read-all */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
