/* Unit tests of provision/release.c (GitHub release JSON, asset choice by
 * pinned name and declared pattern) and of the pure parts of
 * provision/github.c (the API base, the repository of a download URL).
 * Asset names are llama.cpp's and Lemonade's real ones. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "provision/provision-private.h"
#include "util/str.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int parse(const char *text, struct provision_release *r,
		 struct lemon_err *err)
{
	lemon_err_clear(err);
	return provision_release_parse(text, strlen(text), "b1", "release b1", r, err);
}

static const char *const bad_assets[] = {
	"{\"name\":\"../x\",\"size\":1,\"browser_download_url\":\"https://h/x\"}",
	"{\"name\":\"a/b\",\"size\":1,\"browser_download_url\":\"https://h/x\"}",
	"{\"name\":\"..\",\"size\":1,\"browser_download_url\":\"https://h/x\"}",
	"{\"name\":\"a\\u001b[31m\",\"size\":1,\"browser_download_url\":\"https://h/x\"}",
	"{\"name\":\"\",\"size\":1,\"browser_download_url\":\"https://h/x\"}",
	"{\"name\":\"a\",\"size\":-1,\"browser_download_url\":\"https://h/x\"}",
	"{\"name\":\"a\",\"size\":1.5,\"browser_download_url\":\"https://h/x\"}",
	"{\"name\":\"a\",\"size\":1e300,\"browser_download_url\":\"https://h/x\"}",
	"{\"name\":\"a\",\"size\":\"1\",\"browser_download_url\":\"https://h/x\"}",
	"{\"name\":\"a\",\"size\":1,\"browser_download_url\":\"file:///etc/passwd\"}",
	"{\"name\":\"a\",\"size\":1,\"browser_download_url\":\"https://h/ x\"}",
	"{\"name\":\"a\",\"size\":1,\"browser_download_url\":\"https://h/x\","
	"\"digest\":\"sha256:ABC\"}",
	"{\"name\":\"a\",\"size\":1,\"browser_download_url\":\"https://h/x\","
	"\"digest\":\"sha256:" H64 "0\"}",
	"{\"name\":\"a\",\"size\":1,\"browser_download_url\":\"https://h/x\","
	"\"digest\":\"nocolon\"}",
	"{\"name\":\"a\",\"size\":1,\"browser_download_url\":\"https://h/x\","
	"\"digest\":7}",
	"{\"name\":\"a\",\"size\":1,\"browser_download_url\":\"https://h/x\","
	"\"state\":1}",
	"{\"name\":\"a\",\"size\":1}",
	"\"a\"",
};

static void test_parse(void **state)
{
	struct provision_release r;
	struct lemon_err err = { 0 };
	char doc[512];
	size_t i;

	(void)state;
	assert_int_equal(parse("{\"tag_name\":\"b1\",\"assets\":["
			       "{\"name\":\"a.tar.gz\",\"size\":10,\"state\":\"uploaded\","
			       "\"browser_download_url\":\"https://h/a.tar.gz\","
			       "\"digest\":\"sha256:" H64 "\"},"
			       "{\"name\":\"b.zip\",\"size\":0,\"browser_download_url\":"
			       "\"https://h/b.zip\",\"digest\":null},"
			       "{\"name\":\"c.zip\",\"size\":3,\"browser_download_url\":"
			       "\"https://h/c.zip\",\"digest\":\"sha512:abc\"},"
			       "{\"name\":\"d.zip\",\"size\":3,\"state\":\"starter\","
			       "\"browser_download_url\":\"https://h/d.zip\"}]}",
			       &r, &err), 0);
	assert_int_equal(r.n, 3); /* the unfinished upload is left out */
	assert_string_equal(r.assets[0].name, "a.tar.gz");
	assert_string_equal(r.assets[0].sha256, H64);
	assert_true(r.assets[0].size == 10);
	assert_string_equal(r.assets[0].url, "https://h/a.tar.gz");
	assert_string_equal(r.assets[1].sha256, "");
	assert_string_equal(r.assets[2].sha256, ""); /* unusable algorithm */
	provision_release_free(&r);

	/* not a release, another tag, malformed assets: INVALID_DATA */
	assert_int_equal(parse("[]", &r, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "not a release"));
	assert_int_equal(parse("{\"tag_name\":\"b2\",\"assets\":[]}", &r, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "the release listed is not tag b1"));
	for (i = 0; i < sizeof(bad_assets) / sizeof(bad_assets[0]); i++) {
		snprintf(doc, sizeof(doc), "{\"tag_name\":\"b1\",\"assets\":[%s]}",
			 bad_assets[i]);
		assert_int_equal(parse(doc, &r, &err), -1);
		assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
		assert_non_null(strstr(err.msg, "release b1: asset 0 is malformed"));
	}
	assert_int_equal(parse("{\"tag_name\":\"b1\",\"assets\":["
			       "{\"name\":\"a\",\"size\":1,\"browser_download_url\":\"https://h/a\"},"
			       "{\"name\":\"a\",\"size\":1,\"browser_download_url\":\"https://h/b\"}]}",
			       &r, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "asset a listed twice"));
	/* the byte bound comes before any parsing */
	lemon_err_clear(&err);
	assert_int_equal(provision_release_parse("{}", PROVISION_RELEASE_MAX_BYTES + 1,
						 "b1", "x", &r, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
}

static void target(struct compat_backend_asset *a, const char *kind,
		   const char *family, const char *format)
{
	memset(a, 0, sizeof(*a));
	lemon_str_copy(a->kind, sizeof(a->kind), kind);
	lemon_str_copy(a->family, sizeof(a->family), family);
	lemon_str_copy(a->format, sizeof(a->format), format);
	lemon_str_copy(a->match_os, sizeof(a->match_os), "ubuntu");
	lemon_str_copy(a->match_arch, sizeof(a->match_arch), "x64");
	if (strcmp(kind, "cpu") != 0)
		lemon_str_copy(a->match_accel, sizeof(a->match_accel), kind);
}

static void test_matches(void **state)
{
	struct compat_backend_asset cpu, vk, rocm, cuda;

	(void)state;
	target(&cpu, "cpu", "", "tar.gz");
	target(&vk, "vulkan", "", "tar.gz");
	target(&rocm, "rocm", "gfx110X", "zip");
	target(&cuda, "cuda", "sm_89", "tar.xz");
	assert_true(provision_release_matches(&cpu, "llama-b1-bin-ubuntu-x64.tar.gz"));
	assert_true(provision_release_matches(&cpu, "llama-b1-bin-ubuntu-22.04-x64.tar.gz"));
	assert_true(provision_release_matches(&cpu, "llama-b1-bin-ubuntu-cpu-x64.tar.gz"));
	assert_false(provision_release_matches(&cpu, "llama-b1-bin-ubuntu-vulkan-x64.tar.gz"));
	assert_false(provision_release_matches(&cpu, "llama-b1-bin-ubuntu-x64.zip"));
	assert_false(provision_release_matches(&cpu, "llama-b1-bin-ubuntu-arm64.tar.gz"));
	assert_false(provision_release_matches(&cpu, "llama-b1-bin-win-cpu-x64.zip"));
	assert_false(provision_release_matches(&cpu,
					       "cudart-llama-bin-ubuntu-cuda-12.4-x64.tar.gz"));
	assert_false(provision_release_matches(&cpu, "ubuntu-x64.tar.gz.sig"));
	assert_false(provision_release_matches(&cpu, "tar.gz"));
	assert_false(provision_release_matches(&cpu, "ubuntu-x64tar.gz"));
	assert_true(provision_release_matches(&vk, "llama-b1-bin-ubuntu-vulkan-x64.tar.gz"));
	assert_false(provision_release_matches(&vk, "llama-b1-bin-ubuntu-x64.tar.gz"));
	assert_true(provision_release_matches(&rocm, "llama-b1-ubuntu-rocm-gfx110X-x64.zip"));
	assert_true(provision_release_matches(&rocm, "llama-b1-ubuntu-rocm6.4-gfx110X-x64.zip"));
	assert_false(provision_release_matches(&rocm, "llama-b1-ubuntu-rocm-gfx1151-x64.zip"));
	assert_false(provision_release_matches(&rocm,
					       "llama-b1-ubuntu-rocm-gfx110X-vulkan-x64.zip"));
	assert_true(provision_release_matches(&cuda, "llama-b1-ubuntu-cuda-sm_89-x64.tar.xz"));
	assert_true(provision_release_matches(&cuda, "llama-b1-ubuntu-cuda12-sm_89-x64.tar.xz"));
	assert_false(provision_release_matches(&cuda, "llama-b1-ubuntu-cuda-sm_90-x64.tar.xz"));
	cpu.match_os[0] = 0; /* no pattern: nothing matches */
	assert_false(provision_release_matches(&cpu, "llama-b1-bin-ubuntu-x64.tar.gz"));
}

static void test_pick(void **state)
{
	struct provision_release_asset as[3];
	struct provision_release r = { .n = 3, .assets = as };
	struct compat_backend_asset cpu;
	struct lemon_err err = { 0 };
	int idx;

	(void)state;
	memset(as, 0, sizeof(as));
	target(&cpu, "cpu", "", "tar.gz");
	lemon_str_copy(as[0].name, sizeof(as[0].name), "llama-b1-bin-ubuntu-vulkan-x64.tar.gz");
	lemon_str_copy(as[1].name, sizeof(as[1].name), "llama-b1-bin-ubuntu-22.04-x64.tar.gz");
	lemon_str_copy(as[2].name, sizeof(as[2].name), "llama-b1-bin-ubuntu-x64.tar.gz");
	/* the pinned name wins over the pattern */
	assert_int_equal(provision_release_pick(&r, &cpu, "llama-b1-bin-ubuntu-x64.tar.gz",
						"rel", &idx, &err), 0);
	assert_int_equal(idx, 2);
	/* two match: refused, naming them */
	assert_int_equal(provision_release_pick(&r, &cpu, "llama-b1-pinned.tar.gz", "rel",
						&idx, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_string_equal(err.msg, "rel has no asset llama-b1-pinned.tar.gz and 2 match "
			    "os=ubuntu arch=x64 accel=none format=tar.gz: "
			    "llama-b1-bin-ubuntu-22.04-x64.tar.gz, llama-b1-bin-ubuntu-x64.tar.gz");
	lemon_err_clear(&err);
	r.n = 2;
	assert_int_equal(provision_release_pick(&r, &cpu, "llama-b1-pinned.tar.gz", "rel",
						&idx, &err), 0);
	assert_int_equal(idx, 1);
	r.n = 1;
	assert_int_equal(provision_release_pick(&r, &cpu, "llama-b1-pinned.tar.gz", "rel",
						&idx, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_string_equal(err.msg, "rel has no asset llama-b1-pinned.tar.gz and none matches "
			    "os=ubuntu arch=x64 accel=none format=tar.gz; it has: "
			    "llama-b1-bin-ubuntu-vulkan-x64.tar.gz");
}

static void test_repo_and_api(void **state)
{
	char out[128];

	(void)state;
	assert_true(provision_github_repo("https://github.com/ggml-org/llama.cpp/releases/"
					  "download/{version}/{asset}", out, sizeof(out)));
	assert_string_equal(out, "ggml-org/llama.cpp");
	assert_false(provision_github_repo("https://example.com/a/b/releases/download/x",
					   out, sizeof(out)));
	assert_false(provision_github_repo("https://github.com/a/b/c/releases/download/x",
					   out, sizeof(out)));
	assert_false(provision_github_repo("https://github.com/a/../releases/download/x",
					   out, sizeof(out)));
	assert_false(provision_github_repo("https://github.com//b/releases/download/x",
					   out, sizeof(out)));
	assert_false(provision_github_repo("https://github.com/a?b/c/releases/download/x",
					   out, sizeof(out)));
	unsetenv("LEMON_GITHUB_API");
	assert_true(provision_github_api(out, sizeof(out)));
	assert_string_equal(out, "https://api.github.com");
	setenv("LEMON_GITHUB_API", "http://127.0.0.1:9//", 1);
	assert_true(provision_github_api(out, sizeof(out)));
	assert_string_equal(out, "http://127.0.0.1:9");
	setenv("LEMON_GITHUB_API", "none", 1);
	assert_false(provision_github_api(out, sizeof(out)));
	unsetenv("LEMON_GITHUB_API");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_matches),
		cmocka_unit_test(test_pick),
		cmocka_unit_test(test_repo_and_api),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
