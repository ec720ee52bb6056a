/* Unit tests of compat/models.c: the shipped registry loads with a source
 * on every entry, a user file is merged over it, suggestions pick the
 * smaller model for small VRAM, and every malformed entry fails with
 * INVALID_DATA naming what is wrong. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "compat/compat.h"

static void test_shipped(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_models *reg;
	const struct compat_model *m;
	char labels[64];
	int i;

	(void)state;
	/* "" as the user file: the shipped registry alone */
	assert_int_equal(compat_models_load(LEMON_DATADIR, "", &reg, &err), 0);
	assert_true(reg->n >= 4);
	for (i = 0; i < reg->n; i++) {
		assert_true(reg->m[i].source[0] != 0);
		assert_true(reg->m[i].n_files >= 1);
		assert_false(reg->m[i].user);
	}
	assert_int_equal(compat_model_find(reg, "qwen2.5-7b-instruct", &m, &err), 0);
	assert_string_equal(m->repo, "Qwen/Qwen2.5-7B-Instruct-GGUF");
	assert_int_equal(m->n_files, 2);
	assert_string_equal(m->files[1].file,
			    "qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf");
	/* small VRAM: the suggestion; enough or unknown: the model itself */
	assert_string_equal(compat_model_suggest_for(m, 4096), "qwen2.5-0.5b-instruct");
	assert_string_equal(compat_model_suggest_for(m, 16384), "qwen2.5-7b-instruct");
	assert_string_equal(compat_model_suggest_for(m, 0), "qwen2.5-7b-instruct");
	/* every suggestion names a model of the registry */
	for (i = 0; i < reg->n; i++) {
		int k;

		for (k = 0; k < reg->m[i].n_suggest; k++)
			assert_int_equal(compat_model_find(reg, reg->m[i].suggest[k].model,
							   &m, &err), 0);
	}
	assert_int_equal(compat_model_find(reg, "nomic-embed-text-v1.5", &m, &err), 0);
	compat_model_labels_str(m->labels, labels, sizeof(labels));
	assert_string_equal(labels, "embedding");
	assert_int_equal(compat_model_find(reg, "qwen3-0.6b", &m, &err), 0);
	compat_model_labels_str(m->labels, labels, sizeof(labels));
	assert_string_equal(labels, "llm,reasoning");

	assert_int_equal(compat_model_find(reg, "nope", &m, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, "model 'nope' is not in the registry"));
	assert_null(m);
	compat_models_free(reg);
}

static void test_user_merge(void **state)
{
	char dir[] = "/tmp/lemon-models-XXXXXX", path[128];
	struct lemon_err err = { 0 };
	struct compat_models *reg;
	const struct compat_model *m;
	FILE *f;
	int shipped;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/models.json", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"schema\":1,\"models\":[{\"name\":\"qwen3-0.6b\",\"recipe\":\"llamacpp\","
	      "\"repo\":\"me/other-GGUF\",\"files\":[{\"file\":\"x.gguf\","
	      "\"size\":123,\"sha256\":\"" 
	      "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}],"
	      "\"labels\":[\"llm\"],\"source\":\"mine\"},"
	      "{\"name\":\"mine\",\"recipe\":\"llamacpp\",\"repo\":\"me/m\","
	      "\"files\":[{\"file\":\"sub/m.gguf\"}],\"labels\":[\"vision\"],"
	      "\"source\":\"mine\"}]}", f);
	fclose(f);

	assert_int_equal(compat_models_load(LEMON_DATADIR, "", &reg, &err), 0);
	shipped = reg->n;
	compat_models_free(reg);

	assert_int_equal(compat_models_load(LEMON_DATADIR, path, &reg, &err), 0);
	assert_int_equal(reg->n, shipped + 1);
	assert_int_equal(compat_model_find(reg, "qwen3-0.6b", &m, &err), 0);
	assert_true(m->user);
	assert_string_equal(m->repo, "me/other-GGUF");
	assert_int_equal(m->files[0].size, 123);
	assert_string_equal(m->files[0].sha256,
			    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	assert_int_equal(compat_model_find(reg, "mine", &m, &err), 0);
	assert_int_equal(m->labels, COMPAT_MODEL_VISION);
	assert_string_equal(m->files[0].file, "sub/m.gguf");
	compat_models_free(reg);

	/* the environment names the user file when the caller does not */
	setenv("LEMON_MODELS_JSON", path, 1);
	assert_int_equal(compat_models_load(LEMON_DATADIR, NULL, &reg, &err), 0);
	assert_int_equal(compat_model_find(reg, "mine", &m, &err), 0);
	compat_models_free(reg);
	unsetenv("LEMON_MODELS_JSON");

	/* a missing user file is no error; a broken one is */
	unlink(path);
	assert_int_equal(compat_models_load(LEMON_DATADIR, path, &reg, &err), 0);
	assert_int_equal(reg->n, shipped);
	compat_models_free(reg);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"models\": [", f);
	fclose(f);
	assert_int_equal(compat_models_load(LEMON_DATADIR, path, &reg, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "invalid JSON"));
	assert_null(reg);
	unlink(path);
	rmdir(dir);

	/* no shipped registry at all */
	lemon_err_clear(&err);
	assert_int_equal(compat_models_load("/nonexistent-lemon", "", &reg, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
}

/* one entry with field (a JSON fragment) in place of the defaults */
static void expect_bad(const char *entry, const char *needle)
{
	struct lemon_err err = { 0 };
	struct compat_models *reg = calloc(1, sizeof(*reg));
	char doc[2048];

	assert_non_null(reg);
	snprintf(doc, sizeof(doc), "{\"schema\":1,\"about\":\"t\",\"models\":[%s]}", entry);
	assert_int_equal(compat_models_parse(reg, doc, "t.json", false, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	if (strstr(err.msg, needle) == NULL)
		fail_msg("'%s' not in '%s'", needle, err.msg);
	assert_non_null(strstr(err.msg, "t.json"));
	free(reg);
}

#define E(name, repo, files, labels) \
	"{\"name\":" name ",\"recipe\":\"llamacpp\",\"repo\":" repo \
	",\"files\":" files ",\"labels\":" labels ",\"source\":\"s\"}"
#define F1 "[{\"file\":\"a.gguf\"}]"
#define L1 "[\"llm\"]"

static void test_malformed(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_models *reg = calloc(1, sizeof(*reg));

	(void)state;
	assert_non_null(reg);
	/* the template itself is valid */
	assert_int_equal(compat_models_parse(reg, "{\"schema\":1,\"about\":\"t\",\"models\":[" E("\"ok\"", "\"a/b\"", F1, L1) "]}",
					     "t.json", false, &err), 0);
	assert_int_equal(reg->n, 1);
	free(reg);

	expect_bad("{}", "needs a 'name'");
	expect_bad(E("\"../../etc/passwd\"", "\"a/b\"", F1, L1), "needs a 'name'");
	expect_bad(E("\".hidden\"", "\"a/b\"", F1, L1), "needs a 'name'");
	/* names that read as options, shipped or the user's own */
	expect_bad(E("\"-rf\"", "\"a/b\"", F1, L1), "not starting with '-' or '.'");
	expect_bad(E("\"--help\"", "\"a/b\"", F1, L1), "(got '--help')");
	expect_bad(E("\"a/b\"", "\"a/b\"", F1, L1), "needs a 'name'");
	expect_bad(E("\"x\"", "\"a\"", F1, L1), "repo 'a'");
	expect_bad(E("\"x\"", "\"a/../b\"", F1, L1), "repo 'a/../b'");
	expect_bad(E("\"x\"", "\"a/b/c\"", F1, L1), "repo 'a/b/c'");
	expect_bad(E("\"x\"", "\"a/b?c\"", F1, L1), "repo 'a/b?c'");
	expect_bad(E("\"x\"", "\"a/b\"", "[]", L1), "'files' must be a non-empty array");
	expect_bad(E("\"x\"", "\"a/b\"", "[{\"file\":\"../a.gguf\"}]", L1), "bad file '../a.gguf'");
	expect_bad(E("\"x\"", "\"a/b\"", "[{\"file\":\"/a.gguf\"}]", L1), "bad file '/a.gguf'");
	expect_bad(E("\"x\"", "\"a/b\"", "[{\"file\":\"a.bin\"}]", L1), "bad file 'a.bin'");
	expect_bad(E("\"x\"", "\"a/b\"", "[{\"file\":\"a b.gguf\"}]", L1), "bad file 'a b.gguf'");
	expect_bad(E("\"x\"", "\"a/b\"", "[{\"file\":\"a.gguf\",\"sha256\":\"ABC\"}]", L1),
		   "not 64 lower-case hex");
	expect_bad(E("\"x\"", "\"a/b\"", "[{\"file\":\"a.gguf\",\"size\":-1}]", L1),
		   "'size' must be a non-negative integer");
	expect_bad(E("\"x\"", "\"a/b\"", "[{\"file\":\"a.gguf\",\"size\":1.5}]", L1),
		   "'size' must be a non-negative integer");
	/* split parts: numbered in order, of the right count */
	expect_bad(E("\"x\"", "\"a/b\"",
		     "[{\"file\":\"m-00001-of-00002.gguf\"},{\"file\":\"m-00003-of-00002.gguf\"}]",
		     L1), "split part 2 'm-00003-of-00002.gguf' must end in -00002-of-00002.gguf");
	expect_bad(E("\"x\"", "\"a/b\"",
		     "[{\"file\":\"m-00001-of-00003.gguf\"},{\"file\":\"m-00002-of-00003.gguf\"}]",
		     L1), "split part 1");
	expect_bad(E("\"x\"", "\"a/b\"", F1, "[]"), "'labels' must be a non-empty array");
	expect_bad(E("\"x\"", "\"a/b\"", F1, "[\"chat\"]"), "unknown label 'chat'");
	expect_bad("{\"name\":\"x\",\"recipe\":\"vllm\",\"repo\":\"a/b\",\"files\":" F1
		   ",\"labels\":" L1 ",\"source\":\"s\"}", "unknown recipe 'vllm'");
	expect_bad("{\"name\":\"x\",\"recipe\":\"llamacpp\",\"repo\":\"a/b\",\"files\":" F1
		   ",\"labels\":" L1 "}", "entry 'x': missing key 'source'");
	expect_bad("{\"name\":\"x\",\"recipe\":\"llamacpp\",\"repo\":\"a/b\",\"files\":" F1
		   ",\"labels\":" L1 ",\"source\":\"s\",\"suggest\":[{\"model\":\"y\"}]}",
		   "entry 'x': missing key 'vram_below_mb'");
	expect_bad("{\"name\":\"x\",\"recipe\":\"llamacpp\",\"repo\":\"a/b\",\"files\":" F1
		   ",\"labels\":" L1 ",\"source\":\"s\",\"suggest\":[{\"model\":\"y\","
		   "\"vram_below_mb\":0}]}",
		   "'suggest' needs a valid model and vram_below_mb > 0");
	expect_bad("{\"name\":\"x\",\"recipe\":\"llamacpp\",\"repo\":\"a/b\",\"files\":" F1
		   ",\"labels\":" L1 ",\"source\":\"s\",\"suggest\":[{\"model\":\"../y\","
		   "\"vram_below_mb\":10}]}", "'suggest' needs a valid model");
}

static void test_split_and_limits(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_models *reg = calloc(1, sizeof(*reg));
	char *doc;
	size_t cap = 1 << 20, used;
	int i;

	(void)state;
	assert_non_null(reg);
	assert_int_equal(compat_models_parse(reg, "{\"schema\":1,\"about\":\"t\",\"models\":[" E("\"s\"", "\"a/b\"",
		"[{\"file\":\"q/m-00001-of-00002.gguf\",\"size\":10},"
		"{\"file\":\"q/m-00002-of-00002.gguf\",\"size\":20}]", L1) "]}",
		"t.json", false, &err), 0);
	assert_int_equal(reg->m[0].n_files, 2);
	assert_int_equal(reg->m[0].files[1].size, 20);
	free(reg);

	/* more than COMPAT_MAX_MODELS distinct names is TOO_LARGE */
	reg = calloc(1, sizeof(*reg));
	doc = malloc(cap);
	assert_non_null(reg);
	assert_non_null(doc);
	used = (size_t)snprintf(doc, cap, "{\"schema\":1,\"about\":\"t\",\"models\":[");
	for (i = 0; i <= COMPAT_MAX_MODELS; i++)
		used += (size_t)snprintf(doc + used, cap - used, "%s" E("\"m%d\"", "\"a/b\"", F1, L1),
					 i ? "," : "", i);
	snprintf(doc + used, cap - used, "]}");
	assert_int_equal(compat_models_parse(reg, doc, "t.json", false, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
	free(doc);
	free(reg);

	reg = calloc(1, sizeof(*reg));
	lemon_err_clear(&err);
	assert_int_equal(compat_models_parse(reg, "{\"schema\":1,\"about\":\"a\"}", "t.json",
					     false, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "t.json: missing key 'models'"));
	lemon_err_clear(&err);
	assert_int_equal(compat_models_parse(reg, "{\"schema\":2,\"about\":\"t\",\"models\":[]}",
					     "t.json", false, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "t.json: unsupported schema 2 (want 1)"));
	lemon_err_clear(&err);
	assert_int_equal(compat_models_parse(reg, "{\"schema\":1,\"about\":\"t\",\"models\":[]}",
					     "t.json", false, &err), 0);
	/* the shipped registry must say what it is; a user's need not */
	assert_int_equal(compat_models_parse(reg, "{\"schema\":1,\"models\":[]}", "t.json",
					     false, &err), -1);
	assert_non_null(strstr(err.msg, "t.json: missing key 'about'"));
	lemon_err_clear(&err);
	assert_int_equal(compat_models_parse(reg, "{\"schema\":1,\"models\":[]}", "t.json",
					     true, &err), 0);
	free(reg);
}

/* writes text as the user's models.json and loads the registry with it */
static int load_user(const char *text, char *path, size_t cap,
		     struct lemon_err *err)
{
	char dir[] = "/tmp/lemon-models-XXXXXX";
	struct compat_models *reg = NULL;
	FILE *f;
	int rc;

	assert_non_null(mkdtemp(dir));
	snprintf(path, cap, "%s/models.json", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	lemon_err_clear(err);
	rc = compat_models_load(LEMON_DATADIR, path, &reg, err);
	compat_models_free(reg);
	unlink(path);
	rmdir(dir);
	return rc;
}

#define USER(files, extra)                                                   \
	"{\"schema\":1,\"models\":[{\"name\":\"mine\",\"recipe\":\"llamacpp\"," \
	"\"repo\":\"me/m\",\"files\":" files ",\"labels\":[\"llm\"],"           \
	"\"source\":\"mine\"" extra "}]}"
#define SHA "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\""

static void expect_user_bad(const char *text, const char *entry_and_key)
{
	struct lemon_err err = { 0 };
	char path[128];

	assert_int_equal(load_user(text, path, sizeof(path), &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	if (strstr(err.msg, path) == NULL || strstr(err.msg, entry_and_key) == NULL)
		fail_msg("'%s' and '%s' not in '%s'", path, entry_and_key, err.msg);
}

/* a typo in a user's registry once meant an unverified pull: sha265 was
 * ignored, so the file had no digest. Every key is now declared. */
static void test_user_keys_checked(void **state)
{
	struct lemon_err err = { 0 };
	char path[128];

	(void)state;
	/* the well-formed document loads */
	assert_int_equal(load_user(USER("[{\"file\":\"m.gguf\",\"sha256\":" SHA "}]", ""),
				   path, sizeof(path), &err), 0);
	/* a user's name that reads as an option */
	expect_user_bad("{\"schema\":1,\"models\":[{\"name\":\"-rf\",\"recipe\":\"llamacpp\","
			"\"repo\":\"me/m\",\"files\":[{\"file\":\"m.gguf\"}],\"labels\":[\"llm\"],"
			"\"source\":\"mine\"}]}",
			"(got '-rf')");
	expect_user_bad(USER("[{\"file\":\"m.gguf\",\"sha265\":" SHA "}]", ""),
			"entry 'mine': unknown key 'sha265'");
	expect_user_bad(USER("[{\"file\":\"m.gguf\"}]", ",\"lables\":[\"llm\"]"),
			"entry 'mine': unknown key 'lables'");
	expect_user_bad(USER("[{\"file\":\"m.gguf\"}]",
			     ",\"suggest\":[{\"model\":\"a\",\"vram_below_mb\":1,\"vram\":2}]"),
			"entry 'mine': unknown key 'vram'");
	expect_user_bad(USER("[{\"file\":\"m.gguf\",\"size\":\"12\"}]", ""),
			"entry 'mine': 'size' must be a number");
	expect_user_bad(USER("[{\"file\":\"m.gguf\"}]", ",\"repo\":\"me/n\""),
			"entry 'mine': duplicate key 'repo'");
	/* a name given twice in one file: the later would have won silently */
	expect_user_bad("{\"schema\":1,\"models\":["
			"{\"name\":\"mine\",\"recipe\":\"llamacpp\",\"repo\":\"me/m\","
			"\"files\":[{\"file\":\"m.gguf\"}],\"labels\":[\"llm\"],\"source\":\"s\"},"
			"{\"name\":\"mine\",\"recipe\":\"llamacpp\",\"repo\":\"me/x\","
			"\"files\":[{\"file\":\"x.gguf\"}],\"labels\":[\"llm\"],\"source\":\"s\"}]}",
			"entry 'mine': duplicate name");
	/* the top level: schema required, nothing undeclared */
	expect_user_bad("{\"models\":[]}", "missing key 'schema'");
	expect_user_bad("{\"schema\":1,\"models\":[],\"extra\":1}", "unknown key 'extra'");
	expect_user_bad("{\"schema\":1,\"modles\":[]}", "unknown key 'modles'");
	/* an entry without a usable name is named by its position */
	expect_user_bad("{\"schema\":1,\"models\":[{\"nam\":\"x\"}]}", "entry '#1'");
}

/* a vision projector in an entry: parsed with its digest, the model's
 * repo unless it names its own; no digest, a bad file or repo, an
 * undeclared key and a projector for an flm model are refused */
static void test_mmproj(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_models *reg;
	const struct compat_model *m;

	(void)state;
	reg = calloc(1, sizeof(*reg));
	assert_non_null(reg);
	assert_int_equal(compat_models_parse(reg, USER("[{\"file\":\"m.gguf\"}]",
						       ",\"mmproj\":{\"file\":\"p/mmproj-f16.gguf\","
						       "\"sha256\":" SHA ",\"size\":123}"),
					     "u.json", true, &err), 0);
	assert_int_equal(compat_model_find(reg, "mine", &m, &err), 0);
	assert_string_equal(m->mmproj.file, "p/mmproj-f16.gguf");
	assert_int_equal(m->mmproj.size, 123);
	assert_string_equal(m->mmproj_repo, "me/m");
	assert_int_equal(strlen(m->mmproj.sha256), 64);
	assert_int_equal(compat_models_parse(reg, USER("[{\"file\":\"m.gguf\"}]",
						       ",\"mmproj\":{\"file\":\"x.gguf\",\"repo\":\"o/v\","
						       "\"sha256\":" SHA "}"),
					     "v.json", true, &err), 0);
	assert_int_equal(compat_model_find(reg, "mine", &m, &err), 0);
	assert_string_equal(m->mmproj_repo, "o/v");
	free(reg);
	/* a model without one has none */
	assert_int_equal(compat_models_load(LEMON_DATADIR, "", &reg, &err), 0);
	assert_int_equal(compat_model_find(reg, "tiny", &m, &err), 0);
	assert_string_equal(m->mmproj.file, "");
	compat_models_free(reg);

	expect_user_bad(USER("[{\"file\":\"m.gguf\"}]", ",\"mmproj\":{\"file\":\"x.gguf\"}"),
			"entry 'mine': missing key 'sha256'");
	expect_user_bad(USER("[{\"file\":\"m.gguf\"}]",
			     ",\"mmproj\":{\"file\":\"x.gguf\",\"sha256\":\"abc\"}"),
			"entry 'mine': sha256 of mmproj 'x.gguf' is not 64");
	expect_user_bad(USER("[{\"file\":\"m.gguf\"}]",
			     ",\"mmproj\":{\"file\":\"../x.gguf\",\"sha256\":" SHA "}"),
			"entry 'mine': bad mmproj file '../x.gguf'");
	expect_user_bad(USER("[{\"file\":\"m.gguf\"}]",
			     ",\"mmproj\":{\"file\":\"x.gguf\",\"repo\":\"a\",\"sha256\":" SHA "}"),
			"entry 'mine': mmproj repo 'a'");
	expect_user_bad(USER("[{\"file\":\"m.gguf\"}]",
			     ",\"mmproj\":{\"file\":\"x.gguf\",\"sha265\":" SHA "}"),
			"entry 'mine': unknown key 'sha265'");
	expect_user_bad(USER("[{\"file\":\"m.gguf\"}]", ",\"mmproj\":\"x.gguf\""),
			"entry 'mine': 'mmproj' must be an object");
	expect_user_bad("{\"schema\":1,\"models\":[{\"name\":\"f\",\"recipe\":\"flm\","
			"\"labels\":[\"llm\"],\"source\":\"s\",\"mmproj\":{\"file\":\"x.gguf\","
			"\"sha256\":" SHA "}}]}",
			"entry 'f': an flm model has no repo, files, mmproj");
}

/* the registry's name rule is the store's (compat_model_name_valid, which
 * backends_model_name_valid calls): an entry the store would refuse to
 * pull, like "foo.mmproj" (NAME.mmproj.gguf is NAME's projector), is
 * refused when the registry loads, not listed and then failed on pull */
static void test_name_rule(void **state)
{
	static const struct {
		const char *name;
		bool ok;
	} names[] = {
		{ "tiny", true },         { "qwen2.5:7b", true },  { "a-b_c.d", true },
		{ "tiny.mmprojx", true }, { "x.mmproj.q4", true }, { "x.MMPROJ", true },
		{ "", false },            { ".hidden", false },    { "-rf", false },
		{ "a..b", false },        { "a/b", false },        { "a b", false },
		{ "foo.mmproj", false },  { ".mmproj", false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (compat_model_name_valid(names[i].name) != names[i].ok)
			fail_msg("'%s': want %s", names[i].name,
				 names[i].ok ? "valid" : "invalid");
	/* 63 characters, then 64 */
	assert_true(compat_model_name_valid(
		"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"));
	assert_false(compat_model_name_valid(
		"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"));
	assert_false(compat_model_name_valid(NULL));
	expect_user_bad("{\"schema\":1,\"models\":[{\"name\":\"foo.mmproj\",\"recipe\":\"llamacpp\","
			"\"repo\":\"me/m\",\"files\":[{\"file\":\"m.gguf\"}],\"labels\":[\"llm\"],"
			"\"source\":\"mine\"}]}",
			"(got 'foo.mmproj')");
	/* a suggestion names a model too */
	expect_user_bad(USER("[{\"file\":\"m.gguf\"}]",
			     ",\"suggest\":[{\"model\":\"s.mmproj\",\"vram_below_mb\":1}]"),
			"entry 'mine': 'suggest' needs a valid model");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shipped),
		cmocka_unit_test(test_user_merge),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_split_and_limits),
		cmocka_unit_test(test_user_keys_checked),
		cmocka_unit_test(test_mmproj),
		cmocka_unit_test(test_name_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
