/* Unit tests of compat/backends.c: the shipped backends.json loads and
 * answers lookups, and malformed manifests fail with the exact code. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "compat/compat.h"

static void test_shipped_manifest(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_backends *bm;
	const struct compat_backend_asset *a;
	char asset[128], url[256], exe[128];
	int i;

	(void)state;
	assert_int_equal(compat_backends_load(LEMON_DATADIR, &bm, &err), 0);
	assert_true(bm->n >= 3);
	for (i = 0; i < bm->n; i++)
		assert_true(bm->a[i].source[0] != 0);

	assert_int_equal(compat_backend_find(bm, "cpu", NULL, &a, &err), 0);
	assert_string_equal(a->name, "llamacpp:cpu");
	assert_int_equal(compat_backend_expand(a, "b10375", asset, sizeof(asset),
					       url, sizeof(url), exe, sizeof(exe),
					       &err), 0);
	assert_string_equal(asset, "llama-b10375-bin-ubuntu-x64.tar.gz");
	assert_string_equal(url, "https://github.com/ggml-org/llama.cpp/releases/"
			    "download/b10375/llama-b10375-bin-ubuntu-x64.tar.gz");
	assert_string_equal(exe, "llama-b10375/llama-server");

	assert_int_equal(compat_backend_find(bm, "rocm", "gfx1101", &a, &err), 0);
	assert_string_equal(a->name, "llamacpp:rocm:gfx110X");
	assert_string_equal(a->format, "zip");
	assert_int_equal(compat_backend_find(bm, "rocm", "gfx110X", &a, &err), 0);
	assert_string_equal(a->family, "gfx110X");

	assert_int_equal(compat_backend_find(bm, "rocm", "gfx9999", &a, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	lemon_err_clear(&err);
	/* cuda bundles: one per compute capability (lemonade-sdk/llama.cpp),
	 * found by sm_NN only */
	assert_int_equal(compat_backend_find(bm, "cuda", NULL, &a, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, "a CUDA backend needs a compute capability target (sm_NN)"));
	lemon_err_clear(&err);
	assert_int_equal(compat_backend_find(bm, "cuda", "sm_61", &a, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, "no CUDA llama.cpp build for sm_61"));
	lemon_err_clear(&err);
	assert_int_equal(compat_backend_find(bm, "cuda", "sm_90", &a, &err), 0);
	assert_string_equal(a->name, "llamacpp:cuda:sm_90");
	assert_string_equal(a->target, "cuda-sm_90");
	assert_string_equal(a->format, "tar.xz");
	assert_string_equal(a->cuda_runtime, "12.9");
	assert_int_equal(compat_backend_expand(a, NULL, asset, sizeof(asset),
					       url, sizeof(url), exe, sizeof(exe),
					       &err), 0);
	assert_string_equal(asset, "llama-b10397-ubuntu-cuda-sm_90-x64.tar.xz");
	assert_string_equal(url, "https://github.com/lemonade-sdk/llama.cpp/releases/"
			    "download/b10397/llama-b10397-ubuntu-cuda-sm_90-x64.tar.xz");
	assert_string_equal(exe, "llama-b10397/llama-server");
	assert_int_equal(compat_backend_find(bm, "vulkan", "sm_90", &a, &err), -1);
	lemon_err_clear(&err);
	assert_int_equal(compat_backend_expand(bm->a, "../x", asset, sizeof(asset),
					       url, sizeof(url), exe, sizeof(exe),
					       &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	lemon_err_clear(&err);
	assert_int_equal(compat_backend_expand(bm->a, "b1", asset, 8, url,
					       sizeof(url), exe, sizeof(exe),
					       &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
	compat_backends_free(bm);
}

static const char good_target[] =
	"\"kind\":\"cpu\",\"version\":\"b1\",\"asset\":\"a-{version}.tar.gz\","
	"\"url\":\"https://x/{asset}\",\"format\":\"tar.gz\",\"exe\":\"s\","
	"\"sha256\":null,\"source\":\"test\"";

static int load_text(const char *text, struct lemon_err *err)
{
	char dir[] = "/tmp/lemon-test-backends-XXXXXX";
	char path[256];
	struct compat_backends *bm = NULL;
	FILE *f;
	int rc;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/backends.json", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	rc = compat_backends_load(dir, &bm, err);
	compat_backends_free(bm);
	unlink(path);
	rmdir(dir);
	return rc;
}

static void test_malformed(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_backends *bm;
	char doc[1024];

	(void)state;
	snprintf(doc, sizeof(doc), "{\"schema\":1,\"about\":\"t\",\"backends\":{\"llamacpp\":"
		 "{\"targets\":{\"cpu\":{%s}}}}}", good_target);
	assert_int_equal(load_text(doc, &err), 0);

	snprintf(doc, sizeof(doc), "{\"schema\":1,\"about\":\"t\",\"backends\":{\"llamacpp\":"
		 "{\"targets\":{\"cpu\":{%s,\"colour\":\"red\"}}}}}", good_target);
	assert_int_equal(load_text(doc, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "entry 'llamacpp/cpu': unknown key 'colour'"));
	lemon_err_clear(&err);

	snprintf(doc, sizeof(doc), "{\"schema\":1,\"about\":\"t\",\"backends\":{\"llamacpp\":"
		 "{\"targets\":{\"cpu\":{%s},\"cpu2\":{%s}}}}}", good_target,
		 good_target);
	assert_int_equal(load_text(doc, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "duplicate entry llamacpp:cpu"));
	lemon_err_clear(&err);

	assert_int_equal(load_text("{\"schema\":2,\"about\":\"t\",\"backends\":{}}", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "backends.json: unsupported schema 2 (want 1)"));
	lemon_err_clear(&err);
	/* schema and about are required */
	assert_int_equal(load_text("{\"about\":\"t\",\"backends\":{}}", &err), -1);
	assert_non_null(strstr(err.msg, "missing key 'schema'"));
	lemon_err_clear(&err);
	assert_int_equal(load_text("{\"schema\":1,", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);

	snprintf(doc, sizeof(doc), "{\"schema\":1,\"about\":\"t\",\"backends\":{\"llamacpp\":"
		 "{\"targets\":{\"cpu\":{%s}}}}}", good_target);
	memcpy(strstr(doc, "null"), "\"ab\"", 4);
	assert_int_equal(load_text(doc, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "sha256"));
	lemon_err_clear(&err);

	/* cuda targets need their sm_NN family and CUDA runtime */
	snprintf(doc, sizeof(doc), "{\"schema\":1,\"about\":\"t\",\"backends\":{\"llamacpp\":"
		 "{\"targets\":{\"cpu\":{%s,\"cuda_runtime\":\"12.9\"}}}}}", good_target);
	assert_int_equal(load_text(doc, &err), -1);
	assert_non_null(strstr(err.msg, "'cuda_runtime' is for cuda only"));
	lemon_err_clear(&err);
	snprintf(doc, sizeof(doc), "{\"schema\":1,\"about\":\"t\",\"backends\":{\"llamacpp\":"
		 "{\"targets\":{\"c\":{%s}}}}}", good_target);
	memcpy(strstr(doc, "\"cpu\""), "\"xpu\"", 5); /* same length */
	assert_int_equal(load_text(doc, &err), -1);
	assert_non_null(strstr(err.msg, "kind"));
	lemon_err_clear(&err);
	assert_int_equal(load_text("{\"schema\":1,\"about\":\"t\",\"backends\":{\"llamacpp\":"
				   "{\"targets\":{\"c\":{\"kind\":\"cuda\",\"family\":\"sm_9x\","
				   "\"cuda_runtime\":\"12.9\",\"version\":\"b1\",\"asset\":\"a\","
				   "\"url\":\"u\",\"format\":\"tar.xz\",\"exe\":\"s\",\"source\":\"t\"}}}}}",
				   &err), -1);
	assert_non_null(strstr(err.msg, "malformed family 'sm_9x'"));
	lemon_err_clear(&err);
	assert_int_equal(load_text("{\"schema\":1,\"about\":\"t\",\"backends\":{\"llamacpp\":"
				   "{\"targets\":{\"c\":{\"kind\":\"cuda\",\"family\":\"sm_90\","
				   "\"version\":\"b1\",\"asset\":\"a\","
				   "\"url\":\"u\",\"format\":\"tar.xz\",\"exe\":\"s\",\"source\":\"t\"}}}}}",
				   &err), -1);
	assert_non_null(strstr(err.msg, "cuda needs 'cuda_runtime' major.minor (got '')"));
	lemon_err_clear(&err);
	assert_int_equal(load_text("{\"schema\":1,\"about\":\"t\",\"backends\":{\"llamacpp\":"
				   "{\"targets\":{\"c\":{\"kind\":\"cuda\",\"family\":\"sm_90\","
				   "\"cuda_runtime\":\"12.9\",\"version\":\"b1\",\"asset\":\"a\","
				   "\"url\":\"u\",\"format\":\"tar.xz\",\"exe\":\"s\",\"source\":\"t\"}}}}}",
				   &err), 0);

	assert_int_equal(compat_backends_load("/nonexistent-lemon", &bm, &err), -1);
	assert_null(bm);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
}

static int load_cpu(const char *extra, struct lemon_err *err)
{
	char doc[1024];

	snprintf(doc, sizeof(doc), "{\"schema\":1,\"about\":\"t\",\"backends\":{\"llamacpp\":"
		 "{\"targets\":{\"cpu\":{%s%s}}}}}", good_target, extra);
	lemon_err_clear(err);
	return load_text(doc, err);
}

/* the drift pattern ("match"), the pinned size and where a pin came from */
static void test_match_size_pin(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_backends *bm;
	int i;

	(void)state;
	assert_int_equal(load_cpu(",\"match\":{\"os\":\"ubuntu\",\"arch\":\"x64\"},"
				  "\"size\":12,\"pin_source\":\"p\"", &err), 0);
	assert_int_equal(load_cpu(",\"size\":null,\"pin_source\":null", &err), 0);
	assert_int_equal(load_cpu(",\"match\":{\"os\":\"ubuntu\"}", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "missing key 'arch'"));
	assert_int_equal(load_cpu(",\"match\":{\"os\":\"u\",\"arch\":\"x\",\"gpu\":\"y\"}",
				  &err), -1);
	assert_non_null(strstr(err.msg, "unknown key 'gpu'"));
	/* a CPU build names no accelerator; a word is one word */
	assert_int_equal(load_cpu(",\"match\":{\"os\":\"u\",\"arch\":\"x\",\"accel\":\"cuda\"}",
				  &err), -1);
	assert_non_null(strstr(err.msg, "'match.accel' must be the kind (cpu), absent for cpu"));
	assert_int_equal(load_cpu(",\"match\":{\"os\":\"Ubuntu-22\",\"arch\":\"x\"}", &err), -1);
	assert_non_null(strstr(err.msg, "'match' words are lower-case"));
	assert_int_equal(load_cpu(",\"size\":1.5,\"pin_source\":\"p\"", &err), -1);
	assert_non_null(strstr(err.msg, "'size' is not a whole number"));
	assert_int_equal(load_cpu(",\"size\":0,\"pin_source\":\"p\"", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_int_equal(load_cpu(",\"size\":\"12\",\"pin_source\":\"p\"", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	/* a pinned size or digest says where it was read */
	assert_int_equal(load_cpu(",\"size\":12", &err), -1);
	assert_non_null(strstr(err.msg, "'sha256' and 'size' need 'pin_source'"));

	/* every shipped target declares its pattern, the accelerator its kind */
	assert_int_equal(compat_backends_load(LEMON_DATADIR, &bm, &err), 0);
	for (i = 0; i < bm->n; i++) {
		/* FastFlowLM publishes one Linux asset, '_'-separated: no
		 * pattern to find a drifted name with */
		if (strcmp(bm->a[i].backend, "flm") == 0) {
			assert_string_equal(bm->a[i].match_os, "");
			continue;
		}
		assert_string_equal(bm->a[i].backend, "llamacpp");
		assert_string_equal(bm->a[i].match_os, "ubuntu");
		assert_string_equal(bm->a[i].match_arch, "x64");
		assert_string_equal(bm->a[i].match_accel,
				    strcmp(bm->a[i].kind, "cpu") == 0 ? "" : bm->a[i].kind);
	}
	compat_backends_free(bm);
}

static int load_backend(const char *backend, const char *target,
			struct lemon_err *err)
{
	char doc[1024];

	snprintf(doc, sizeof(doc), "{\"schema\":1,\"about\":\"t\",\"backends\":"
		 "{\"%s\":{\"targets\":{\"x\":{%s}}}}}", backend, target);
	lemon_err_clear(err);
	return load_text(doc, err);
}

/* FastFlowLM (backend flm): its own tag form and smoke argument */
static void test_flm_target(void **state)
{
	static const char npu[] =
		"\"kind\":\"npu\",\"version\":\"0.9.44\",\"asset\":\"f_{version}.tar.gz\","
		"\"url\":\"https://x/{asset}\",\"format\":\"tar.gz\",\"exe\":\"flm\","
		"\"source\":\"test\"";
	struct lemon_err err = { 0 };
	struct compat_backends *bm;
	const struct compat_backend_asset *a;
	char asset[128], url[256], exe[128], tag[64], t[512];

	(void)state;
	assert_int_equal(compat_backends_load(LEMON_DATADIR, &bm, &err), 0);
	assert_int_equal(compat_backend_find(bm, "npu", NULL, &a, &err), 0);
	assert_string_equal(a->name, "flm");
	assert_string_equal(a->target, "npu");
	assert_string_equal(a->version, "0.9.44");
	assert_string_equal(a->smoke, "version");
	assert_int_equal(compat_backend_expand(a, NULL, asset, sizeof(asset), url,
					       sizeof(url), exe, sizeof(exe), &err), 0);
	assert_string_equal(asset, "fastflowlm_0.9.44_linux.tar.gz");
	assert_string_equal(url, "https://github.com/FastFlowLM/FastFlowLM/releases/"
			    "download/v0.9.44/fastflowlm_0.9.44_linux.tar.gz");
	assert_string_equal(exe, "flm");
	assert_int_equal(compat_backend_tag(a, "0.9.50", tag, sizeof(tag), &err), 0);
	assert_string_equal(tag, "v0.9.50");
	assert_int_equal(compat_backend_tag(a, "../x", tag, sizeof(tag), &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	/* llama.cpp's defaults: the tag is the version, --version the smoke */
	assert_int_equal(compat_backend_find(bm, "cpu", NULL, &a, &err), 0);
	assert_string_equal(a->tag, "{version}");
	assert_string_equal(a->smoke, "--version");
	compat_backends_free(bm);

	assert_int_equal(load_backend("flm", npu, &err), 0);
	/* npu is flm's kind and flm has no other */
	assert_int_equal(load_backend("llamacpp", npu, &err), -1);
	assert_non_null(strstr(err.msg, "kind 'npu' is backend 'flm'"));
	assert_int_equal(load_backend("flm", good_target, &err), -1);
	assert_non_null(strstr(err.msg, "kind 'npu' is backend 'flm'"));
	/* the smoke argument is run: one word */
	snprintf(t, sizeof(t), "%s,\"smoke\":\"version; rm\"", npu);
	assert_int_equal(load_backend("flm", t, &err), -1);
	assert_non_null(strstr(err.msg, "'smoke' is one word"));
	snprintf(t, sizeof(t), "%s,\"tag\":\"latest\"", npu);
	assert_int_equal(load_backend("flm", t, &err), -1);
	assert_non_null(strstr(err.msg, "'tag' must hold {version}"));
	snprintf(t, sizeof(t), "%s,\"tag\":\"a/{version}\"", npu);
	assert_int_equal(load_backend("flm", t, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shipped_manifest),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_match_size_pin),
		cmocka_unit_test(test_flm_target),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
