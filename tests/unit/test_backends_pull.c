/* backends/pull.c: the store side of pulls without a network: split model
 * directories found, listed and resolved to their first part, deletion of
 * file and split models, and the refusals (bad names, models missing from
 * the store or the registry) with their exact codes */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/backends-private.h"

static char root[64];
static char models[128];

static void put(const char *rel, size_t size)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", models, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	while (size--)
		fputc('x', f);
	fclose(f);
}

static int setup(void **state)
{
	char d[160];

	(void)state;
	snprintf(root, sizeof(root), "/tmp/lemon-pull-XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(models, sizeof(models), "%s/models", root);
	assert_int_equal(mkdir(models, 0755), 0);
	snprintf(d, sizeof(d), "%s/big", models);
	assert_int_equal(mkdir(d, 0755), 0);
	put("big/m-00002-of-00002.gguf", 20);
	put("big/m-00001-of-00002.gguf", 10);
	put("one.gguf", 5);
	/* a split model whose name ends in .gguf is still one entry */
	snprintf(d, sizeof(d), "%s/s.gguf", models);
	assert_int_equal(mkdir(d, 0755), 0);
	put("s.gguf/p-00001-of-00001.gguf", 7);
	/* a directory without a first part is no model */
	snprintf(d, sizeof(d), "%s/junk", models);
	assert_int_equal(mkdir(d, 0755), 0);
	put("junk/m-00002-of-00002.gguf", 1);
	/* an unfinished pull is hidden */
	snprintf(d, sizeof(d), "%s/.pull-other", models);
	assert_int_equal(mkdir(d, 0755), 0);
	put(".pull-other/o-00001-of-00001.gguf", 1);
	return 0;
}

static int teardown(void **state)
{
	char cmd[160];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_split_store(void **state)
{
	struct lemon_err err = { 0 };
	struct backends_model m[8];
	char path[512], want[512];
	uint64_t total = 0;
	int n = 0;

	(void)state;
	snprintf(want, sizeof(want), "%s/big", models);
	assert_int_equal(backends_split_first(want, path, sizeof(path), &total), 0);
	assert_int_equal(total, 30);
	snprintf(want, sizeof(want), "%s/big/m-00001-of-00002.gguf", models);
	assert_string_equal(path, want);

	assert_int_equal(backends_model_path(root, "big", path, sizeof(path), &err), 0);
	assert_string_equal(path, want);
	assert_int_equal(backends_model_path(root, "one", path, sizeof(path), &err), 0);
	assert_int_equal(backends_model_path(root, "junk", path, sizeof(path), &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);

	assert_int_equal(backends_list_models(root, m, 8, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(m[0].name, "big");
	assert_int_equal(m[0].size, 30);
	assert_string_equal(m[1].name, "one");
	assert_int_equal(m[1].size, 5);
	assert_string_equal(m[2].name, "s.gguf");
	assert_int_equal(m[2].size, 7);
}

static void test_delete(void **state)
{
	struct lemon_err err = { 0 };
	struct backends_model m[8];
	char path[512];
	struct stat st;
	int n = 0;

	(void)state;
	assert_int_equal(backends_delete_model(root, "big", &err), 0);
	snprintf(path, sizeof(path), "%s/big", models);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(backends_delete_model(root, "one", &err), 0);
	assert_int_equal(backends_delete_model(root, "s.gguf", &err), 0);
	assert_int_equal(backends_list_models(root, m, 8, &n, &err), 0);
	assert_int_equal(n, 0);

	assert_int_equal(backends_delete_model(root, "one", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, "model 'one' not found"));
	lemon_err_clear(&err);
	assert_int_equal(backends_delete_model(root, "../../etc/passwd", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	lemon_err_clear(&err);
	assert_int_equal(backends_delete_model(root, ".pull-other", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	snprintf(path, sizeof(path), "%s/.pull-other", models);
	assert_int_equal(lstat(path, &st), 0);
}

static void test_pull_refusals(void **state)
{
	struct lemon_err err = { 0 };

	(void)state;
	assert_int_equal(backends_pull_model(root, "../x", NULL, NULL, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "invalid model name '../x'"));
	lemon_err_clear(&err);
	/* only the shipped registry: no user file */
	setenv("LEMON_MODELS_JSON", "/nonexistent-lemon/models.json", 1);
	assert_int_equal(backends_pull_model(root, "not-a-registry-model", NULL,
					     NULL, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, "'not-a-registry-model' is not in the registry"));
	unsetenv("LEMON_MODELS_JSON");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_store),
		cmocka_unit_test(test_delete),
		cmocka_unit_test(test_pull_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
