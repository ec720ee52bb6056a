/* util/str.c: bounded parsers */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "util/str.h"

static void test_parse_u64(void **state)
{
	struct lemon_err err = { 0 };
	uint64_t v;

	(void)state;
	assert_int_equal(lemon_parse_u64(" 110501\n", 8, 10, 0xffffffff, &v, &err), 0);
	assert_int_equal(v, 110501);
	assert_int_equal(lemon_parse_u64("0x1002", 6, 16, 0xffff, &v, &err), 0);
	assert_int_equal(v, 0x1002);
	assert_int_equal(lemon_parse_u64("c1", 2, 16, 0xff, &v, &err), 0);
	assert_int_equal(v, 0xc1);
	assert_int_equal(lemon_parse_u64("18446744073709551615", 20, 10, UINT64_MAX, &v, &err), 0);
	assert_true(v == UINT64_MAX);
}

static void test_parse_u64_errors(void **state)
{
	struct lemon_err err = { 0 };
	uint64_t v;

	(void)state;
	assert_int_equal(lemon_parse_u64("0x10000", 7, 16, 0xffff, &v, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	assert_int_equal(lemon_parse_u64("12a", 3, 10, 1000, &v, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	assert_int_equal(lemon_parse_u64("  ", 2, 10, 1000, &v, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	assert_int_equal(lemon_parse_u64("18446744073709551616", 20, 10, UINT64_MAX, &v, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
}

/* a digit larger than the maximum once wrapped (max - d) around, so every
 * bound below 9 (or 15 in hex) let any number through: --max-loaded 99 */
static void test_parse_u64_small_max(void **state)
{
	struct lemon_err err = { 0 };
	uint64_t v = 0;

	(void)state;
	assert_int_equal(lemon_parse_u64("99", 2, 10, 8, &v, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "exceeds maximum 8"));
	lemon_err_clear(&err);
	assert_int_equal(lemon_parse_u64("9", 1, 10, 8, &v, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	assert_int_equal(lemon_parse_u64("f", 1, 16, 9, &v, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	assert_int_equal(lemon_parse_u64("1", 1, 10, 0, &v, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	/* the bounds themselves still pass */
	assert_int_equal(lemon_parse_u64("8", 1, 10, 8, &v, &err), 0);
	assert_int_equal(v, 8);
	assert_int_equal(lemon_parse_u64("0", 1, 10, 0, &v, &err), 0);
	assert_int_equal(v, 0);
	assert_int_equal(lemon_parse_u64("08", 2, 10, 8, &v, &err), 0);
	assert_int_equal(v, 8);
	assert_int_equal(lemon_parse_u64("10", 2, 10, 10, &v, &err), 0);
	assert_int_equal(v, 10);
	assert_int_equal(lemon_parse_u64("11", 2, 10, 10, &v, &err), -1);
}

static void test_parse_version(void **state)
{
	struct lemon_err err = { 0 };
	uint32_t p[4];

	(void)state;
	assert_int_equal(lemon_parse_version("1.0.0.63", 8, p, 4, &err), 4);
	assert_int_equal(p[3], 63);
	assert_int_equal(lemon_parse_version("1.2.3.4.5", 9, p, 4, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	assert_int_equal(lemon_parse_version("1..2", 4, p, 4, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
}

static void test_lines_and_kv(void **state)
{
	const char buf[] = "a 1\nkey  value with space \n\nlast";
	const char *line, *k, *v;
	size_t pos = 0, len, kl, vl;
	int n = 0;

	(void)state;
	while (lemon_next_line(buf, strlen(buf), &pos, &line, &len))
		n++;
	assert_int_equal(n, 4);
	pos = 0;
	lemon_next_line(buf, strlen(buf), &pos, &line, &len);
	lemon_next_line(buf, strlen(buf), &pos, &line, &len);
	assert_true(lemon_split_kv(line, len, ' ', &k, &kl, &v, &vl));
	assert_true(lemon_slice_eq(k, kl, "key"));
	assert_true(lemon_slice_eq(v, vl, "value with space"));
}

static void test_copy_truncates(void **state)
{
	char small[4];

	(void)state;
	assert_false(lemon_str_copy(small, sizeof(small), "abcdef"));
	assert_string_equal(small, "abc");
	assert_true(lemon_str_copy(small, sizeof(small), "ab"));
}

static void test_err_first_wins_and_prefix(void **state)
{
	struct lemon_err err = { 0 };

	(void)state;
	lemon_err_set(&err, LEMON_ERR_NOT_FOUND, "inner %d", 1);
	lemon_err_set(&err, LEMON_ERR_IO, "outer");
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	lemon_err_prefix(&err, "ctx");
	assert_string_equal(err.msg, "ctx: inner 1");
	assert_string_equal(lemon_err_code_name(LEMON_ERR_CHECKSUM), "checksum");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_parse_u64_errors),
		cmocka_unit_test(test_parse_u64_small_max),
		cmocka_unit_test(test_parse_version),
		cmocka_unit_test(test_lines_and_kv),
		cmocka_unit_test(test_copy_truncates),
		cmocka_unit_test(test_err_first_wins_and_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
