/* provision/manifest.c: a mirror's manifest.json is the mirror's word,
 * not lemon's: a version that would reach file names (a '/', '..', a
 * control character, empty) and a size that is not a whole number of
 * bytes in range are refused with INVALID_DATA. */
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "compat/compat.h"
#include "provision/provision-private.h"

#define SHA "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\""
#define MIRROR "http://127.0.0.1:9/m/"

static const struct compat_backend_asset *cpu_asset(struct compat_backends **bm)
{
	const struct compat_backend_asset *a;
	struct lemon_err err = { 0 };
	bool needs = false;

	assert_int_equal(compat_backends_load(LEMON_DATADIR, bm, &err), 0);
	assert_int_equal(provision_find(*bm, "llamacpp:cpu", &a, &needs, &err), 0);
	return a;
}

/* plans from text with the given user --version; returns rc, err kept */
static int plan(const char *text, const char *version, struct provision_plan *p,
		struct lemon_err *err)
{
	struct compat_backends *bm;
	const struct compat_backend_asset *a = cpu_asset(&bm);
	struct provision_opts o = { 0 };
	bool unavailable = false;
	int rc;

	o.version = version;
	lemon_err_clear(err);
	rc = provision_plan_from_manifest(a, &o, MIRROR, text, strlen(text), p,
					  &unavailable, err);
	compat_backends_free(bm);
	return rc;
}

static void test_good_manifest(void **state)
{
	struct lemon_err err = { 0 };
	struct provision_plan p;

	(void)state;
	assert_int_equal(plan("{\"version\": \"b100\", \"assets\": {"
			      "\"llama-b100-bin-ubuntu-x64.tar.gz\": {\"sha256\": " SHA
			      ", \"size\": 123456789012}}}", NULL, &p, &err), 0);
	assert_string_equal(p.version, "b100");
	assert_string_equal(p.asset, "llama-b100-bin-ubuntu-x64.tar.gz");
	assert_string_equal(p.url, "http://127.0.0.1:9/m/llama-b100-bin-ubuntu-x64.tar.gz");
	assert_true(p.size == 123456789012ull);
	assert_true(p.from_mirror);
	/* no size: unknown, not an error */
	assert_int_equal(plan("{\"assets\": {\"llama-b7-bin-ubuntu-x64.tar.gz\": "
			      "{\"sha256\": " SHA "}}}", NULL, &p, &err), 0);
	assert_string_equal(p.version, "b7");
	assert_true(p.size == 0);
}

static void expect_bad(const char *text, const char *version,
		       enum lemon_err_code code, const char *words)
{
	struct lemon_err err = { 0 };
	struct provision_plan p;

	assert_int_equal(plan(text, version, &p, &err), -1);
	if (err.code != code || strstr(err.msg, words) == NULL)
		fail_msg("%s: got %s '%s'", text, lemon_err_code_name(err.code), err.msg);
}

static void test_bad_versions(void **state)
{
	(void)state;
	/* the manifest's own version with an escape sequence */
	expect_bad("{\"version\": \"b1\\u001b[2J\", \"assets\": {"
		   "\"llama-b1\\u001b[2J-bin-ubuntu-x64.tar.gz\": {\"sha256\": " SHA "}}}",
		   NULL, LEMON_ERR_INVALID_DATA, "version");
	/* a newline taken from an asset name */
	expect_bad("{\"assets\": {\"llama-b1\\n-bin-ubuntu-x64.tar.gz\": "
		   "{\"sha256\": " SHA "}}}",
		   NULL, LEMON_ERR_INVALID_DATA, "version");
	/* '..' taken from an asset name */
	expect_bad("{\"assets\": {\"llama-..-bin-ubuntu-x64.tar.gz\": "
		   "{\"sha256\": " SHA "}}}",
		   NULL, LEMON_ERR_INVALID_DATA, "version");
	/* an empty version in the manifest */
	expect_bad("{\"version\": \"\", \"assets\": {"
		   "\"llama--bin-ubuntu-x64.tar.gz\": {\"sha256\": " SHA "}}}",
		   NULL, LEMON_ERR_INVALID_DATA, "version");
	/* a version that is not a string */
	expect_bad("{\"version\": 7, \"assets\": {}}", NULL, LEMON_ERR_INVALID_DATA,
		   "version");
	/* the user's --version: their argument, INVALID_ARG */
	expect_bad("{\"assets\": {}}", "b1/../../x", LEMON_ERR_INVALID_ARG, "version");
	expect_bad("{\"assets\": {}}", "b1\t", LEMON_ERR_INVALID_ARG, "version");
}

static void test_bad_sizes(void **state)
{
	static const char *const sizes[] = { "1e30", "1.5", "-1", "0", "\"12\"",
					     "18446744073709551616", "true" };
	char text[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(text, sizeof(text),
			 "{\"assets\": {\"llama-b7-bin-ubuntu-x64.tar.gz\": "
			 "{\"sha256\": " SHA ", \"size\": %s}}}", sizes[i]);
		expect_bad(text, NULL, LEMON_ERR_INVALID_DATA, "size");
	}
}

static void test_not_a_manifest(void **state)
{
	(void)state;
	expect_bad("[1, 2]", NULL, LEMON_ERR_INVALID_DATA, "not a mirror manifest");
	expect_bad("{\"assets\": {\"x\": 1}", NULL, LEMON_ERR_INVALID_DATA,
		   "not a mirror manifest");
	expect_bad("{\"assets\": {\"llama-b7-bin-ubuntu-x64.tar.gz\": "
		   "{\"sha256\": 5}}}", NULL, LEMON_ERR_INVALID_DATA, "sha256");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_manifest),
		cmocka_unit_test(test_bad_versions),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_not_a_manifest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
