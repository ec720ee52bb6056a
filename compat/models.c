/* The model registry: models.json names the models `lemon pull NAME` can
 * fetch (Hugging Face repo and GGUF file or split parts, sizes and digests
 * where known, labels, smaller choices for small VRAM). The shipped file is
 * read first and the user's own models.json is merged over it, so a user
 * can add models or repoint a shipped name. Every string that later becomes
 * part of a URL or a path is checked here, once. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "compat/compat-private.h"
#include "util/fs.h"
#include "util/str.h"

#define MODELS_FILE "models.json"
#define MODELS_MAX_BYTES (4u << 20)

static const struct {
	const char *name;
	unsigned bit;
} label_names[] = {
	{ "llm", COMPAT_MODEL_LLM },
	{ "embedding", COMPAT_MODEL_EMBEDDING },
	{ "reasoning", COMPAT_MODEL_REASONING },
	{ "vision", COMPAT_MODEL_VISION },
};

/* the one rule for model names (backends_model_name_valid calls it: compat
 * is below backends): a registry name is what `lemon pull NAME` takes, so
 * an entry the store would refuse is refused when the registry loads */
bool compat_model_name_valid(const char *s)
{
	size_t i, n;

	if (s == NULL)
		return false;
	n = strnlen(s, 64);
	/* a leading '-' reads as an option wherever a name meets argv or a
	 * shell (`rm -rf`, `--help`); a leading '.' hides the file */
	if (n == 0 || n >= 64 || s[0] == '.' || s[0] == '-' || strstr(s, "..") != NULL)
		return false;
	/* NAME.mmproj.gguf is NAME's vision projector, never a model */
	if (n >= 7 && strcmp(s + n - 7, ".mmproj") == 0)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == ':' || c == '-'))
			return false;
	}
	return true;
}

/* [A-Za-z0-9._-] segments joined by '/', none empty, "." or "..";
 * exactly slashes '/' when slashes >= 0, any number otherwise */
static bool segments_ok(const char *s, int slashes)
{
	int seen = 0;
	size_t seg = 0;
	const char *start = s;

	for (;; s++) {
		char c = *s;

		if (c == '/' || c == 0) {
			if (seg == 0 || (seg == 1 && start[0] == '.') ||
			    (seg == 2 && start[0] == '.' && start[1] == '.'))
				return false;
			if (c == 0)
				break;
			seen++;
			seg = 0;
			start = s + 1;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
		seg++;
	}
	return slashes < 0 || seen == slashes;
}

static bool hex64_ok(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == 0;
}

/* the basename of part i of n must end in "-<i>-of-<n>.gguf", 5 digits */
static bool split_name_ok(const char *file, int i, int n)
{
	char tail[32];
	size_t fl = strlen(file), tl;

	snprintf(tail, sizeof(tail), "-%05d-of-%05d.gguf", i, n);
	tl = strlen(tail);
	return fl > tl && strcmp(file + fl - tl, tail) == 0;
}

static bool ends_gguf(const char *file)
{
	size_t n = strlen(file);

	return n > 5 && strcmp(file + n - 5, ".gguf") == 0;
}

/* the declared keys of an entry, a file of an entry and a suggestion:
 * anything else (a typo like "sha265") is refused, never ignored */
static const struct compat_field model_fields[] = {
	{ "name", CF_STR, true, false },   { "recipe", CF_STR, true, false },
	{ "repo", CF_STR, false, false },  { "files", CF_ARR, false, false },
	{ "labels", CF_ARR, true, false }, { "suggest", CF_ARR, false, false },
	{ "source", CF_STR, true, false }, { "gguf", CF_STR, false, false },
	{ "mmproj", CF_OBJ, false, false },
};
static const struct compat_field file_fields[] = {
	{ "file", CF_STR, true, false },
	{ "sha256", CF_STR, false, false },
	{ "size", CF_NUM, false, false },
};
/* a projector is fetched by digest only: a registry that names one must
 * say which bytes it is (no X-Linked-Etag fallback for a second file) */
static const struct compat_field mmproj_fields[] = {
	{ "file", CF_STR, true, false },
	{ "sha256", CF_STR, true, false },
	{ "size", CF_NUM, false, false },
	{ "repo", CF_STR, false, false },
};
static const struct compat_field suggest_fields[] = {
	{ "model", CF_STR, true, false },
	{ "vram_below_mb", CF_NUM, true, false },
};
#define NFIELDS(f) (sizeof(f) / sizeof((f)[0]))

static int get_u64(const struct compat_ctx *ctx, const cJSON *o,
		   const char *key, uint64_t *out, struct lemon_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	*out = 0;
	if (v == NULL)
		return 0;
	/* sizes above 2^53 would lose precision in a double: refuse them */
	if (v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
	    v->valuedouble != (double)(uint64_t)v->valuedouble)
		return compat_bad(ctx, err, "'%s' must be a non-negative integer",
				  key);
	*out = (uint64_t)v->valuedouble;
	return 0;
}

static int parse_file(const struct compat_ctx *ctx, const cJSON *o,
		      struct compat_model_file *f, struct lemon_err *err)
{
	if (compat_check_keys(ctx, o, file_fields, NFIELDS(file_fields), err) ||
	    compat_get_str(ctx, o, "file", f->file, sizeof(f->file), err) ||
	    compat_get_str(ctx, o, "sha256", f->sha256, sizeof(f->sha256), err) ||
	    get_u64(ctx, o, "size", &f->size, err))
		return -1;
	if (!segments_ok(f->file, -1) || !ends_gguf(f->file))
		return compat_bad(ctx, err,
				  "bad file '%s' (want a relative .gguf path of [A-Za-z0-9._-])",
				  f->file);
	if (f->sha256[0] && !hex64_ok(f->sha256))
		return compat_bad(ctx, err,
				  "sha256 of '%s' is not 64 lower-case hex digits",
				  f->file);
	return 0;
}

static int parse_files(const struct compat_ctx *ctx, const cJSON *o,
		       struct compat_model *m, struct lemon_err *err)
{
	const cJSON *files = cJSON_GetObjectItemCaseSensitive(o, "files"), *f;
	int n = cJSON_GetArraySize(files);

	if (n == 0)
		return compat_bad(ctx, err, "'files' must be a non-empty array");
	if (n > COMPAT_MODEL_MAX_PARTS)
		return compat_bad(ctx, err, "%d files, at most %d", n,
				  COMPAT_MODEL_MAX_PARTS);
	m->n_files = 0;
	cJSON_ArrayForEach(f, files) {
		struct compat_model_file *mf = &m->files[m->n_files];

		if (parse_file(ctx, f, mf, err) < 0)
			return -1;
		m->n_files++;
		if (n > 1 && !split_name_ok(mf->file, m->n_files, n))
			return compat_bad(ctx, err,
					  "split part %d '%s' must end in -%05d-of-%05d.gguf",
					  m->n_files, mf->file, m->n_files, n);
	}
	return 0;
}

/* "mmproj": {"file", "sha256", "size"?, "repo"?}: the vision projector,
 * a file of the model's repo (or of repo) like the model's own files */
static int parse_mmproj(const struct compat_ctx *ctx, const cJSON *o,
			struct compat_model *m, struct lemon_err *err)
{
	const cJSON *mm = cJSON_GetObjectItemCaseSensitive(o, "mmproj");
	struct compat_model_file *f = &m->mmproj;

	if (mm == NULL)
		return 0;
	if (compat_check_keys(ctx, mm, mmproj_fields, NFIELDS(mmproj_fields),
			      err) ||
	    compat_get_str(ctx, mm, "file", f->file, sizeof(f->file), err) ||
	    compat_get_str(ctx, mm, "sha256", f->sha256, sizeof(f->sha256),
			   err) ||
	    compat_get_str(ctx, mm, "repo", m->mmproj_repo,
			   sizeof(m->mmproj_repo), err) ||
	    get_u64(ctx, mm, "size", &f->size, err))
		return -1;
	if (!segments_ok(f->file, -1) || !ends_gguf(f->file))
		return compat_bad(ctx, err,
				  "bad mmproj file '%s' (want a relative .gguf path of [A-Za-z0-9._-])",
				  f->file);
	if (!hex64_ok(f->sha256))
		return compat_bad(ctx, err,
				  "sha256 of mmproj '%s' is not 64 lower-case hex digits",
				  f->file);
	if (m->mmproj_repo[0] == 0)
		memcpy(m->mmproj_repo, m->repo, sizeof(m->mmproj_repo));
	else if (!segments_ok(m->mmproj_repo, 1))
		return compat_bad(ctx, err,
				  "mmproj repo '%s' is not owner/name of [A-Za-z0-9._-]",
				  m->mmproj_repo);
	return 0;
}

static int parse_labels(const struct compat_ctx *ctx, const cJSON *o,
			struct compat_model *m, struct lemon_err *err)
{
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(o, "labels"), *l;
	size_t k;

	if (cJSON_GetArraySize(labels) == 0)
		return compat_bad(ctx, err, "'labels' must be a non-empty array");
	cJSON_ArrayForEach(l, labels) {
		for (k = 0; k < NFIELDS(label_names); k++)
			if (cJSON_IsString(l) &&
			    strcmp(l->valuestring, label_names[k].name) == 0)
				break;
		if (k == NFIELDS(label_names))
			return compat_bad(ctx, err,
					  "unknown label '%s' (llm, embedding, reasoning, vision)",
					  cJSON_IsString(l) ? l->valuestring : "?");
		m->labels |= label_names[k].bit;
	}
	return 0;
}

static int parse_suggest(const struct compat_ctx *ctx, const cJSON *o,
			 struct compat_model *m, struct lemon_err *err)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "suggest"), *s;
	uint64_t mb;

	if (arr == NULL)
		return 0;
	if (cJSON_GetArraySize(arr) > COMPAT_MODEL_MAX_SUGGEST)
		return compat_bad(ctx, err, "'suggest' must be an array of at most %d",
				  COMPAT_MODEL_MAX_SUGGEST);
	cJSON_ArrayForEach(s, arr) {
		struct compat_model_suggest *g = &m->suggest[m->n_suggest];

		if (compat_check_keys(ctx, s, suggest_fields,
				      NFIELDS(suggest_fields), err) ||
		    compat_get_str(ctx, s, "model", g->model, sizeof(g->model),
				   err) ||
		    get_u64(ctx, s, "vram_below_mb", &mb, err))
			return -1;
		if (!compat_model_name_valid(g->model) || mb == 0 || mb > UINT32_MAX)
			return compat_bad(ctx, err,
					  "'suggest' needs a valid model and vram_below_mb > 0");
		g->vram_below_mb = (uint32_t)mb;
		m->n_suggest++;
	}
	return 0;
}

/* a FastFlowLM model: its name is FastFlowLM's own ("llama3.2:1b"), which
 * flm downloads itself, so it has no repo or files; gguf optionally names
 * the registry's GGUF of the same model, served when the NPU cannot be */
static int parse_flm(const struct compat_ctx *ctx, const cJSON *o,
		     struct compat_model *m, struct lemon_err *err)
{
	if (cJSON_GetObjectItemCaseSensitive(o, "repo") != NULL ||
	    cJSON_GetObjectItemCaseSensitive(o, "files") != NULL ||
	    cJSON_GetObjectItemCaseSensitive(o, "suggest") != NULL ||
	    cJSON_GetObjectItemCaseSensitive(o, "mmproj") != NULL)
		return compat_bad(ctx, err,
				  "an flm model has no repo, files, mmproj or suggest: FastFlowLM fetches it");
	if (compat_get_str(ctx, o, "gguf", m->gguf, sizeof(m->gguf), err))
		return -1;
	if (m->gguf[0] && !compat_model_name_valid(m->gguf))
		return compat_bad(ctx, err, "gguf '%.64s' is not a model name",
				  m->gguf);
	return parse_labels(ctx, o, m, err);
}

/* ctx->entry names the entry in messages: its name when it has a usable
 * one, else its position ("#3") */
static int parse_entry(struct compat_ctx *ctx, const cJSON *o, int pos,
		       struct compat_model *m, char *label, size_t label_cap,
		       struct lemon_err *err)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");

	memset(m, 0, sizeof(*m));
	snprintf(label, label_cap, "#%d", pos);
	ctx->entry = label;
	if (!cJSON_IsObject(o) || !cJSON_IsString(name) ||
	    !lemon_str_copy(m->name, sizeof(m->name), name->valuestring) ||
	    !compat_model_name_valid(m->name))
		return compat_bad(ctx, err,
				  "every model needs a 'name' of 1-63 of A-Z a-z 0-9 . _ : - not starting with '-' or '.', without '..', not ending in '.mmproj' (got '%.64s')",
				  cJSON_IsString(name) ? name->valuestring : "");
	ctx->entry = m->name;
	if (compat_check_keys(ctx, o, model_fields, NFIELDS(model_fields), err) ||
	    compat_get_str(ctx, o, "recipe", m->recipe, sizeof(m->recipe), err) ||
	    compat_get_str(ctx, o, "repo", m->repo, sizeof(m->repo), err) ||
	    compat_get_str(ctx, o, "source", m->source, sizeof(m->source), err))
		return -1;
	if (strcmp(m->recipe, "flm") == 0)
		return parse_flm(ctx, o, m, err);
	if (strcmp(m->recipe, "llamacpp") != 0)
		return compat_bad(ctx, err, "unknown recipe '%s' (llamacpp, flm)",
				  m->recipe);
	if (cJSON_GetObjectItemCaseSensitive(o, "gguf") != NULL)
		return compat_bad(ctx, err, "'gguf' is for flm entries only");
	/* required for llama.cpp models (the field table cannot say so) */
	if (cJSON_GetObjectItemCaseSensitive(o, "repo") == NULL)
		return compat_bad(ctx, err, "missing key 'repo'");
	if (cJSON_GetObjectItemCaseSensitive(o, "files") == NULL)
		return compat_bad(ctx, err, "missing key 'files'");
	if (!segments_ok(m->repo, 1))
		return compat_bad(ctx, err,
				  "repo '%s' is not owner/name of [A-Za-z0-9._-]",
				  m->repo);
	if (parse_files(ctx, o, m, err) < 0 || parse_mmproj(ctx, o, m, err) < 0 ||
	    parse_labels(ctx, o, m, err) < 0)
		return -1;
	return parse_suggest(ctx, o, m, err);
}

/* merges entry tmp into reg (a user entry replaces a shipped one of its
 * name); seen marks the slots this file has filled, so a name given twice
 * in one file is refused rather than the later silently winning */
static int merge(struct compat_models *reg, const struct compat_model *tmp,
		 bool *seen, const struct compat_ctx *ctx, struct lemon_err *err)
{
	int i;

	for (i = 0; i < reg->n; i++)
		if (strcmp(reg->m[i].name, tmp->name) == 0)
			break;
	if (i < reg->n && seen[i])
		return compat_bad(ctx, err, "duplicate name (given twice)");
	if (i == reg->n && reg->n == COMPAT_MAX_MODELS)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "%s: more than %d models", ctx->path,
				     COMPAT_MAX_MODELS);
	reg->m[i] = *tmp;
	seen[i] = true;
	if (i == reg->n)
		reg->n++;
	return 0;
}

int compat_models_parse(struct compat_models *reg, const char *text,
			const char *what, bool user, struct lemon_err *err)
{
	/* a user file need not say what it is about; the shipped one must */
	const struct compat_field top[] = {
		{ "about", CF_STR, !user, false },
		{ "models", CF_ARR, true, false },
	};
	struct compat_ctx ctx = { 0 };
	bool seen[COMPAT_MAX_MODELS] = { false };
	struct compat_model *tmp;
	const cJSON *e;
	char label[16];
	cJSON *root;
	int pos = 0, rc = 0;

	lemon_str_copy(ctx.path, sizeof(ctx.path), what);
	if (compat_doc_parse(&ctx, text, strlen(text), top, NFIELDS(top), &root,
			     err) < 0)
		return -1;
	tmp = malloc(sizeof(*tmp));
	if (tmp == NULL) {
		cJSON_Delete(root);
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	}
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "models")) {
		rc = parse_entry(&ctx, e, ++pos, tmp, label, sizeof(label), err);
		if (rc < 0)
			break;
		tmp->user = user;
		rc = merge(reg, tmp, seen, &ctx, err);
		if (rc < 0)
			break;
	}
	free(tmp);
	cJSON_Delete(root);
	return rc;
}

static int user_path(char *out, size_t cap, struct lemon_err *err)
{
	const char *env = getenv("LEMON_MODELS_JSON");
	const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;

	if (env && env[0])
		n = snprintf(out, cap, "%s", env);
	else if (x && x[0] == '/')
		n = snprintf(out, cap, "%s/lemon/models.json", x);
	else if (home && home[0] == '/')
		n = snprintf(out, cap, "%s/.config/lemon/models.json", home);
	else
		n = snprintf(out, cap, "%s", "");
	if (n < 0 || (size_t)n >= cap)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "user models.json path too long");
	return 0;
}

static int load_one(struct compat_models *reg, const char *path,
		    bool missing_ok, bool user, struct lemon_err *err)
{
	char *text;
	int rc;

	if (lemon_read_file(path, MODELS_MAX_BYTES, missing_ok, &text, NULL, err) < 0)
		return -1;
	if (text == NULL)
		return 0;
	rc = compat_models_parse(reg, text, path, user, err);
	free(text);
	return rc;
}

int compat_models_load(const char *dir, const char *user_file,
		       struct compat_models **out, struct lemon_err *err)
{
	struct compat_models *reg;
	char path[4096], upath[4096];

	*out = NULL;
	if (dir == NULL)
		dir = getenv("LEMON_COMPAT_DIR");
	if (dir == NULL || dir[0] == 0)
		dir = LEMON_DATADIR;
	if (snprintf(path, sizeof(path), "%s/%s", dir, MODELS_FILE) >=
	    (int)sizeof(path))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "compat directory path too long: %s", dir);
	if (user_file == NULL) {
		if (user_path(upath, sizeof(upath), err) < 0)
			return -1;
		user_file = upath;
	}
	reg = calloc(1, sizeof(*reg));
	if (reg == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	if (load_one(reg, path, false, false, err) < 0 ||
	    (user_file[0] && load_one(reg, user_file, true, true, err) < 0)) {
		free(reg);
		return -1;
	}
	*out = reg;
	return 0;
}

void compat_models_free(struct compat_models *reg)
{
	free(reg);
}

int compat_model_find(const struct compat_models *reg, const char *name,
		      const struct compat_model **out, struct lemon_err *err)
{
	int i;

	*out = NULL;
	for (i = 0; i < reg->n; i++)
		if (strcmp(reg->m[i].name, name) == 0) {
			*out = &reg->m[i];
			return 0;
		}
	return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			     "model '%.64s' is not in the registry (add it to $XDG_CONFIG_HOME/lemon/models.json)",
			     name);
}

const char *compat_model_suggest_for(const struct compat_model *m,
				     uint32_t vram_mb)
{
	const char *best = m->name;
	uint32_t best_mb = UINT32_MAX;
	int i;

	if (vram_mb == 0)
		return best;
	for (i = 0; i < m->n_suggest; i++)
		if (vram_mb < m->suggest[i].vram_below_mb &&
		    m->suggest[i].vram_below_mb <= best_mb) {
			best_mb = m->suggest[i].vram_below_mb;
			best = m->suggest[i].model;
		}
	return best;
}

void compat_model_labels_str(unsigned labels, char *out, size_t cap)
{
	size_t k, used = 0;
	int n;

	if (cap == 0)
		return;
	out[0] = 0;
	for (k = 0; k < sizeof(label_names) / sizeof(label_names[0]); k++) {
		if (!(labels & label_names[k].bit))
			continue;
		n = snprintf(out + used, cap - used, "%s%s", used ? "," : "",
			     label_names[k].name);
		if (n < 0 || (size_t)n >= cap - used)
			return;
		used += (size_t)n;
	}
}
