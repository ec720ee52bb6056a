/* backends/models.c: model names, the store paths, import and listing */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/backends.h"

static void test_names(void **state)
{
	char long_name[80];

	(void)state;
	assert_true(backends_model_name_valid("tiny"));
	assert_true(backends_model_name_valid("Qwen3-0.6B:Q4_K_M"));
	assert_true(backends_model_name_valid("a.b_c-d"));
	assert_false(backends_model_name_valid(NULL));
	assert_false(backends_model_name_valid(""));
	/* NAME.mmproj.gguf is the projector of NAME, never a model */
	assert_false(backends_model_name_valid("tiny.mmproj"));
	assert_true(backends_model_name_valid("tiny.mmprojx"));
	assert_false(backends_model_name_valid("../../etc/passwd"));
	assert_false(backends_model_name_valid("a/b"));
	assert_false(backends_model_name_valid("a..b"));
	assert_false(backends_model_name_valid(".hidden"));
	/* read as options where a name meets a command line */
	assert_false(backends_model_name_valid("-rf"));
	assert_false(backends_model_name_valid("--help"));
	assert_false(backends_model_name_valid("-"));
	assert_true(backends_model_name_valid("a-"));
	assert_false(backends_model_name_valid("sp ace"));
	assert_false(backends_model_name_valid("nul\x01"));
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;
	assert_false(backends_model_name_valid(long_name));
	long_name[BACKENDS_NAME_MAX - 1] = 0;
	assert_true(backends_model_name_valid(long_name));
}

static void test_data_dir(void **state)
{
	struct lemon_err err = { 0 };
	char out[64];

	(void)state;
	assert_int_equal(backends_data_dir("/x/y", out, sizeof(out), &err), 0);
	assert_string_equal(out, "/x/y");
	setenv("XDG_DATA_HOME", "/xdg", 1);
	assert_int_equal(backends_data_dir(NULL, out, sizeof(out), &err), 0);
	assert_string_equal(out, "/xdg/lemon");
	setenv("XDG_DATA_HOME", "relative", 1);
	setenv("HOME", "/home/u", 1);
	assert_int_equal(backends_data_dir(NULL, out, sizeof(out), &err), 0);
	assert_string_equal(out, "/home/u/.local/share/lemon");
	unsetenv("XDG_DATA_HOME");
	unsetenv("HOME");
	assert_int_equal(backends_data_dir(NULL, out, sizeof(out), &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	lemon_err_clear(&err);
	assert_int_equal(backends_data_dir("/a-very-long-directory-name-that-does-not-fit-in-sixty-four-bytes",
					   out, sizeof(out), &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static void test_pull_path_list(void **state)
{
	static const unsigned char gguf[] = {
		'G', 'G', 'U', 'F', 3, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, /* tensors */
		0, 0, 0, 0, 0, 0, 0, 0, /* keys */
	};
	struct backends_model m[4];
	struct backends_gguf_info info;
	struct lemon_err err = { 0 };
	char dir[] = "/tmp/lemon-models-XXXXXX", src[128], bad[128], path[256];
	int n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(src, sizeof(src), "%s/m.gguf", dir);
	snprintf(bad, sizeof(bad), "%s/bad.gguf", dir);
	write_file(src, gguf, sizeof(gguf));
	write_file(bad, "not a model", 11);

	assert_int_equal(backends_model_path(dir, "m1", path, sizeof(path), &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	lemon_err_clear(&err);
	assert_int_equal(backends_pull_file(dir, src, "m1", &info, &err), 0);
	assert_int_equal(info.version, 3);
	assert_int_equal(backends_pull_file(dir, src, "a0", NULL, &err), 0);
	assert_int_equal(backends_model_path(dir, "m1", path, sizeof(path), &err), 0);
	assert_non_null(strstr(path, "/models/m1.gguf"));

	assert_int_equal(backends_pull_file(dir, bad, "bad", NULL, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	assert_int_equal(backends_pull_file(dir, src, "../evil", NULL, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	lemon_err_clear(&err);
	assert_int_equal(backends_model_path(dir, "../m1", path, sizeof(path), &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	lemon_err_clear(&err);
	assert_int_equal(backends_pull_file(dir, "/nonexistent/x.gguf", "x", NULL, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	lemon_err_clear(&err);

	assert_int_equal(backends_list_models(dir, m, 4, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(m[0].name, "a0");
	assert_string_equal(m[1].name, "m1");
	assert_int_equal(m[1].size, sizeof(gguf));

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_data_dir),
		cmocka_unit_test(test_pull_path_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
