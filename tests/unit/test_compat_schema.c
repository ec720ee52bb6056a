/* compat/schema.c: the one checker every compat file goes through. Each
 * refusal is INVALID_DATA naming the file (and the entry where there is
 * one) and the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "compat/compat-private.h"
#include "tree.h"

static const struct compat_field top[] = {
	{ "about", CF_STR, true, false },
	{ "items", CF_OBJ, true, false },
};

static const struct compat_field item[] = {
	{ "size", CF_NUM, true, false },
	{ "sha256", CF_STR, false, true },
	{ "tags", CF_ARR, false, false },
	{ "on", CF_BOOL, false, false },
};

static void parse_bad(const char *text, size_t len, const char *words)
{
	struct compat_ctx ctx = { .path = "/d/x.json" };
	struct lemon_err err = { 0 };
	cJSON *doc = (cJSON *)1;

	assert_int_equal(compat_doc_parse(&ctx, text, len, top, 2, &doc, &err), -1);
	assert_null(doc);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	if (strstr(err.msg, "/d/x.json: ") != err.msg || strstr(err.msg, words) == NULL)
		fail_msg("'%s' not in '%s'", words, err.msg);
}

static void test_doc(void **state)
{
	static const char nul[] = "{\"schema\":1,\"about\":\"a\",\"items\":{}}\0junk";
	struct compat_ctx ctx = { .path = "/d/x.json" };
	struct lemon_err err = { 0 };
	const char *good = "{\"schema\":1,\"about\":\"a\",\"items\":{}}";
	cJSON *doc = NULL;

	(void)state;
	assert_int_equal(compat_doc_parse(&ctx, good, strlen(good), top, 2, &doc, &err), 0);
	assert_non_null(doc);
	cJSON_Delete(doc);
#define BAD(t, w) parse_bad(t, strlen(t), w)
	BAD("{\"about\":\"a\",\"items\":{}}", "missing key 'schema'");
	BAD("{\"schema\":2,\"about\":\"a\",\"items\":{}}", "unsupported schema 2 (want 1)");
	BAD("{\"schema\":\"1\",\"about\":\"a\",\"items\":{}}", "'schema' must be a number");
	BAD("{\"schema\":1,\"items\":{}}", "missing key 'about'");
	BAD("{\"schema\":1,\"about\":\"a\",\"items\":{},\"iterns\":{}}", "unknown key 'iterns'");
	BAD("{\"schema\":1,\"about\":\"a\",\"about\":\"b\",\"items\":{}}", "duplicate key 'about'");
	BAD("{\"schema\":1,\"about\":\"a\",\"items\":[]}", "'items' must be an object");
	BAD("[1]", "not an object");
	BAD("{\"schema\":1,", "invalid JSON near byte");
	BAD("{\"schema\":1,\"about\":\"a\",\"items\":{}} trailing", "invalid JSON");
#undef BAD
	/* a NUL inside the file would hide what follows it from the parser */
	parse_bad(nul, sizeof(nul) - 1, "holds a NUL byte");
}

static void test_entry_keys(void **state)
{
	struct compat_ctx ctx = { .path = "/d/x.json", .entry = "e1" };
	struct lemon_err err = { 0 };
	cJSON *o;

	(void)state;
	o = cJSON_Parse("{\"size\":1,\"sha256\":null,\"tags\":[],\"on\":true}");
	assert_int_equal(compat_check_keys(&ctx, o, item, 4, &err), 0);
	cJSON_Delete(o);
	o = cJSON_Parse("{\"size\":1,\"sha265\":\"x\"}");
	assert_int_equal(compat_check_keys(&ctx, o, item, 4, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_string_equal(err.msg, "/d/x.json: entry 'e1': unknown key 'sha265'");
	cJSON_Delete(o);
	lemon_err_clear(&err);
	o = cJSON_Parse("{\"size\":1,\"tags\":null}");
	assert_int_equal(compat_check_keys(&ctx, o, item, 4, &err), -1);
	assert_string_equal(err.msg, "/d/x.json: entry 'e1': 'tags' must be an array");
	cJSON_Delete(o);
	lemon_err_clear(&err);
	o = cJSON_Parse("{\"sha256\":5}");
	assert_int_equal(compat_check_keys(&ctx, o, item, 4, &err), -1);
	assert_string_equal(err.msg,
			    "/d/x.json: entry 'e1': 'sha256' must be a string or null");
	cJSON_Delete(o);
	lemon_err_clear(&err);
	o = cJSON_Parse("{\"on\":false}");
	assert_int_equal(compat_check_keys(&ctx, o, item, 4, &err), -1);
	assert_string_equal(err.msg, "/d/x.json: entry 'e1': missing key 'size'");
	cJSON_Delete(o);
}

static void test_doc_load(void **state)
{
	struct compat_ctx ctx = { 0 };
	struct lemon_err err = { 0 };
	char dir[64], want[128];
	cJSON *doc;

	(void)state;
	tree_new(dir);
	tree_write(dir, "x.json", "{\"schema\":1,\"about\":\"a\",\"items\":{\"k\":{}}}");
	assert_int_equal(compat_doc_load(&ctx, dir, "x.json", 1024, top, 2, &doc, &err), 0);
	snprintf(want, sizeof(want), "%s/x.json", dir);
	assert_string_equal(ctx.path, want);
	assert_non_null(cJSON_GetObjectItemCaseSensitive(doc, "items"));
	cJSON_Delete(doc);
	/* over the size bound, and missing */
	assert_int_equal(compat_doc_load(&ctx, dir, "x.json", 10, top, 2, &doc, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
	lemon_err_clear(&err);
	assert_int_equal(compat_doc_load(&ctx, dir, "y.json", 1024, top, 2, &doc, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	tree_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doc),
		cmocka_unit_test(test_entry_keys),
		cmocka_unit_test(test_doc_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
