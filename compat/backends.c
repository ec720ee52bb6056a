/* The backend manifest: compat/backends.json names, for every llama.cpp
 * bundle (and the FastFlowLM runtime) lemon can install, the pinned release, the asset name and URL as
 * the publisher spells them, the archive format, the executable inside and
 * the SHA-256 where one is known. This file loads and validates it (every
 * key known, every entry sourced; schema.c's checker) and answers "which
 * bundle serves this backend choice"; the provisioner does the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "compat/compat-private.h"
#include "util/str.h"

#define BACKENDS_FILE "backends.json"
#define BACKENDS_MAX_BYTES (1024 * 1024)

static bool is_sha256_hex(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 64;
}

static const struct compat_field target_fields[] = {
	{ "kind", CF_STR, true, false },    { "family", CF_STR, false, true },
	{ "gfx_targets", CF_ARR, false, false },
	{ "version", CF_STR, true, false }, { "asset", CF_STR, true, false },
	{ "url", CF_STR, true, false },     { "format", CF_STR, true, false },
	{ "exe", CF_STR, true, false },     { "sha256", CF_STR, false, true },
	{ "size", CF_NUM, false, true },    { "pin_source", CF_STR, false, true },
	{ "match", CF_OBJ, false, false },
	{ "cuda_runtime", CF_STR, false, false },
	{ "tag", CF_STR, false, false },    { "smoke", CF_STR, false, false },
	{ "source", CF_STR, true, false },
};

static const struct compat_field backend_fields[] = {
	{ "targets", CF_OBJ, true, false },
};

static const struct compat_field match_fields[] = {
	{ "os", CF_STR, true, false },
	{ "arch", CF_STR, true, false },
	{ "accel", CF_STR, false, false },
};

static const char *const kinds[] = { "cpu", "vulkan", "rocm", "cuda", "npu",
				     NULL };
static const char *const formats[] = { "tar.gz", "tar.xz", "zip", NULL };

/* a CUDA bundle is built for one compute capability, "sm_" + digits as
 * NVIDIA's -arch names it, and says which CUDA runtime it carries (the
 * oldest driver that runs it follows from that, nvidia.json) */
static int check_cuda(const struct compat_ctx *ctx,
		      const struct compat_backend_asset *a,
		      struct lemon_err *err)
{
	uint32_t v[2];
	size_t i, n = strlen(a->family);

	if (strcmp(a->kind, "cuda") != 0)
		return a->cuda_runtime[0] == 0 ? 0 :
			compat_bad(ctx, err, "'cuda_runtime' is for cuda only");
	if (n < 5 || n > 7 || strncmp(a->family, "sm_", 3) != 0)
		return compat_bad(ctx, err, "cuda needs 'family' sm_NN (got '%s')",
				  a->family);
	for (i = 3; i < n; i++)
		if (a->family[i] < '0' || a->family[i] > '9')
			return compat_bad(ctx, err, "malformed family '%s'",
					  a->family);
	if (lemon_parse_version(a->cuda_runtime, strlen(a->cuda_runtime), v, 2,
				NULL) < 1 ||
	    strspn(a->cuda_runtime, "0123456789.") != strlen(a->cuda_runtime))
		return compat_bad(ctx, err,
				  "cuda needs 'cuda_runtime' major.minor (got '%s')",
				  a->cuda_runtime);
	return 0;
}

static int parse_gfx_list(const struct compat_ctx *ctx, const cJSON *t,
			  struct compat_backend_asset *a, struct lemon_err *err)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(t, "gfx_targets");
	const cJSON *g;

	if (strcmp(a->kind, "rocm") != 0)
		return list == NULL ? 0 :
			compat_bad(ctx, err, "'gfx_targets' is for rocm only");
	if (a->family[0] == 0 || list == NULL)
		return compat_bad(ctx, err, "rocm needs 'family' and 'gfx_targets'");
	cJSON_ArrayForEach(g, list) {
		if (a->n_gfx >= COMPAT_MAX_FAMILY_TARGETS || !cJSON_IsString(g) ||
		    !lemon_str_copy(a->gfx_targets[a->n_gfx],
				    sizeof(a->gfx_targets[0]), g->valuestring))
			return compat_bad(ctx, err, "bad 'gfx_targets'");
		a->n_gfx++;
	}
	return 0;
}

/* a pattern word is compared with the '-'-separated words of an asset
 * name: lower-case letters, digits, '_' and '.' only */
static bool match_word_ok(const char *w)
{
	size_t i;

	for (i = 0; w[i]; i++)
		if (!((w[i] >= 'a' && w[i] <= 'z') || (w[i] >= '0' && w[i] <= '9') ||
		      w[i] == '_' || w[i] == '.'))
			return false;
	return true;
}

/* "match": the pattern that finds the asset when its name drifts; the
 * accelerator word must be the kind's own (a CPU build has none) */
static int parse_match(const struct compat_ctx *ctx, const cJSON *t,
		       struct compat_backend_asset *a, struct lemon_err *err)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(t, "match");

	if (m == NULL)
		return 0;
	if (compat_check_keys(ctx, m, match_fields,
			      sizeof(match_fields) / sizeof(match_fields[0]),
			      err) < 0 ||
	    compat_get_str(ctx, m, "os", a->match_os, sizeof(a->match_os), err) ||
	    compat_get_str(ctx, m, "arch", a->match_arch, sizeof(a->match_arch),
			   err) ||
	    compat_get_str(ctx, m, "accel", a->match_accel,
			   sizeof(a->match_accel), err))
		return -1;
	if (!match_word_ok(a->match_os) || !match_word_ok(a->match_arch) ||
	    !match_word_ok(a->match_accel))
		return compat_bad(ctx, err, "'match' words are lower-case letters, "
				  "digits, '_' and '.'");
	if (strcmp(a->kind, "cpu") == 0 ? a->match_accel[0] != 0 :
	    strcmp(a->match_accel, a->kind) != 0)
		return compat_bad(ctx, err, "'match.accel' must be the kind (%s), "
				  "absent for cpu", a->kind);
	return 0;
}

/* "size": the pinned asset's byte count, a whole number up to 2^53 */
static int parse_size(const struct compat_ctx *ctx, const cJSON *t,
		      struct compat_backend_asset *a, struct lemon_err *err)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(t, "size");
	double d;

	if (s == NULL || cJSON_IsNull(s))
		return 0;
	d = s->valuedouble;
	if (!(d >= 1 && d <= 9007199254740992.0) || (double)(uint64_t)d != d)
		return compat_bad(ctx, err, "'size' is not a whole number of bytes "
				  "from 1 to 2^53");
	a->size = (uint64_t)d;
	return 0;
}

/* the llama.cpp defaults of tag and smoke; an "npu" target is FastFlowLM's
 * (backend "flm") and the only one named after its backend alone. The
 * smoke argument is one word: it is run, so it is not free text. */
static int parse_run(const struct compat_ctx *ctx, const char *backend,
		     struct compat_backend_asset *a, struct lemon_err *err)
{
	size_t i;

	if (a->tag[0] == 0)
		lemon_str_copy(a->tag, sizeof(a->tag), "{version}");
	if (a->smoke[0] == 0)
		lemon_str_copy(a->smoke, sizeof(a->smoke), "--version");
	if (strstr(a->tag, "{version}") == NULL || strchr(a->tag, '/') != NULL)
		return compat_bad(ctx, err, "'tag' must hold {version} and no '/'");
	for (i = 0; a->smoke[i]; i++)
		if (!((a->smoke[i] >= 'a' && a->smoke[i] <= 'z') ||
		      a->smoke[i] == '-'))
			return compat_bad(ctx, err, "'smoke' is one word of "
					  "lower-case letters and '-'");
	if ((strcmp(a->kind, "npu") == 0) != (strcmp(backend, "flm") == 0))
		return compat_bad(ctx, err, "kind 'npu' is backend 'flm' and "
				  "only it");
	return 0;
}

/* the strings every target has, then the ones it may have */
static int target_strings(const struct compat_ctx *ctx, const cJSON *t,
			  struct compat_backend_asset *a, struct lemon_err *err)
{
	if (compat_get_enum(ctx, t, "kind", kinds, a->kind, sizeof(a->kind),
			    err) ||
	    compat_get_str(ctx, t, "family", a->family, sizeof(a->family), err) ||
	    compat_get_str(ctx, t, "version", a->version, sizeof(a->version),
			   err) ||
	    compat_get_str(ctx, t, "asset", a->asset, sizeof(a->asset), err) ||
	    compat_get_str(ctx, t, "url", a->url, sizeof(a->url), err) ||
	    compat_get_enum(ctx, t, "format", formats, a->format,
			    sizeof(a->format), err) ||
	    compat_get_str(ctx, t, "exe", a->exe, sizeof(a->exe), err) ||
	    compat_get_str(ctx, t, "sha256", a->sha256, sizeof(a->sha256), err) ||
	    compat_get_str(ctx, t, "pin_source", a->pin_source,
			   sizeof(a->pin_source), err) ||
	    compat_get_str(ctx, t, "cuda_runtime", a->cuda_runtime,
			   sizeof(a->cuda_runtime), err) ||
	    compat_get_str(ctx, t, "tag", a->tag, sizeof(a->tag), err) ||
	    compat_get_str(ctx, t, "smoke", a->smoke, sizeof(a->smoke), err) ||
	    compat_get_str(ctx, t, "source", a->source, sizeof(a->source), err))
		return -1;
	return 0;
}

static int parse_target(const struct compat_ctx *ctx, const char *backend,
			const cJSON *t, struct compat_backend_asset *a,
			struct lemon_err *err)
{
	char name[sizeof(a->name)];

	if (compat_check_keys(ctx, t, target_fields,
			      sizeof(target_fields) / sizeof(target_fields[0]),
			      err) < 0 ||
	    target_strings(ctx, t, a, err) < 0)
		return -1;
	if (!lemon_str_copy(a->backend, sizeof(a->backend), backend) ||
	    !lemon_str_copy(a->target, sizeof(a->target), t->string))
		return compat_bad(ctx, err, "name too long");
	if (a->sha256[0] && !is_sha256_hex(a->sha256))
		return compat_bad(ctx, err,
				  "sha256 is not 64 lower-case hex digits");
	if (parse_size(ctx, t, a, err) < 0)
		return -1;
	/* a pinned digest says where it was read */
	if ((a->sha256[0] || a->size) && a->pin_source[0] == 0)
		return compat_bad(ctx, err, "'sha256' and 'size' need 'pin_source'");
	if (strstr(a->asset, "/") != NULL)
		return compat_bad(ctx, err, "asset name holds a '/'");
	if (parse_run(ctx, backend, a, err) < 0)
		return -1;
	if (!compat_version_ok(a->version))
		return compat_bad(ctx, err, "unusable version (" COMPAT_VERSION_RULE ")");
	/* built in a separate buffer: gcc cannot tell that name, kind and
	 * family are distinct members and warns (-Wrestrict) */
	if (strcmp(a->kind, "npu") == 0)
		snprintf(name, sizeof(name), "%s", backend);
	else if (a->family[0])
		snprintf(name, sizeof(name), "%s:%s:%s", backend, a->kind,
			 a->family);
	else
		snprintf(name, sizeof(name), "%s:%s", backend, a->kind);
	memcpy(a->name, name, sizeof(name));
	if (check_cuda(ctx, a, err) < 0 || parse_match(ctx, t, a, err) < 0)
		return -1;
	return parse_gfx_list(ctx, t, a, err);
}

static int parse_backend(struct compat_ctx *ctx, const cJSON *b,
			 struct compat_backends *bm, struct lemon_err *err)
{
	const cJSON *t;
	char entry[64];
	int i;

	ctx->entry = b->string;
	if (compat_check_keys(ctx, b, backend_fields, 1, err) < 0)
		return -1;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(b, "targets")) {
		snprintf(entry, sizeof(entry), "%s/%s", b->string, t->string);
		ctx->entry = entry;
		if (bm->n >= COMPAT_MAX_BACKEND_ASSETS)
			return compat_bad(ctx, err, "more than %d targets",
					  COMPAT_MAX_BACKEND_ASSETS);
		if (parse_target(ctx, b->string, t, &bm->a[bm->n], err) < 0)
			return -1;
		for (i = 0; i < bm->n; i++)
			if (strcmp(bm->a[i].name, bm->a[bm->n].name) == 0)
				return compat_bad(ctx, err, "duplicate entry %s",
						  bm->a[i].name);
		bm->n++;
	}
	return 0;
}

int compat_backends_load(const char *dir, struct compat_backends **out,
			 struct lemon_err *err)
{
	static const struct compat_field top[] = {
		{ "about", CF_STR, true, false },
		{ "backends", CF_OBJ, true, false },
	};
	struct compat_ctx ctx = { 0 };
	struct compat_backends *bm;
	const cJSON *b;
	cJSON *root;
	int rc = 0;

	*out = NULL;
	if (dir == NULL)
		dir = getenv("LEMON_COMPAT_DIR");
	if (dir == NULL || dir[0] == 0)
		dir = LEMON_DATADIR;
	if (compat_doc_load(&ctx, dir, BACKENDS_FILE, BACKENDS_MAX_BYTES, top,
			    2, &root, err) < 0)
		return -1;
	bm = calloc(1, sizeof(*bm));
	if (bm == NULL) {
		cJSON_Delete(root);
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	}
	cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(root, "backends"))
		if (rc == 0)
			rc = parse_backend(&ctx, b, bm, err);
	cJSON_Delete(root);
	if (rc < 0) {
		free(bm);
		return -1;
	}
	*out = bm;
	return 0;
}

void compat_backends_free(struct compat_backends *bm)
{
	free(bm);
}

static bool covers(const struct compat_backend_asset *a, const char *target)
{
	int i;

	if (strcmp(a->family, target) == 0)
		return true;
	for (i = 0; i < a->n_gfx; i++)
		if (strcmp(a->gfx_targets[i], target) == 0)
			return true;
	return false;
}

int compat_backend_find(const struct compat_backends *bm, const char *kind,
			const char *target,
			const struct compat_backend_asset **out,
			struct lemon_err *err)
{
	bool want_target = target != NULL && target[0] != 0;
	int i;

	*out = NULL;
	for (i = 0; i < bm->n; i++) {
		if (strcmp(bm->a[i].kind, kind) != 0)
			continue;
		if (strcmp(kind, "rocm") == 0 || strcmp(kind, "cuda") == 0) {
			if (!want_target || !covers(&bm->a[i], target))
				continue;
		} else if (want_target) {
			continue;
		}
		*out = &bm->a[i];
		return 0;
	}
	if (strcmp(kind, "rocm") == 0 && want_target)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "no ROCm llama.cpp build covers %s", target);
	if (strcmp(kind, "rocm") == 0)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "a ROCm backend needs a gfx target or family");
	if (strcmp(kind, "cuda") == 0 && want_target)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "no CUDA llama.cpp build for %s", target);
	if (strcmp(kind, "cuda") == 0)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "a CUDA backend needs a compute capability target (sm_NN)");
	return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			     "unknown backend name '%s%s%s'", kind,
			     want_target ? ":" : "", want_target ? target : "");
}

bool compat_version_ok(const char *v)
{
	size_t i;

	for (i = 0; v[i]; i++)
		if (v[i] <= ' ' || v[i] > '~' || v[i] == '/' || v[i] == '\\')
			return false;
	return i > 0 && i < 32 && strstr(v, "..") == NULL;
}

/* replaces {version} and {asset} in tmpl; overflow is TOO_LARGE */
static int expand(const char *tmpl, const char *version, const char *asset,
		  char *dst, size_t cap, struct lemon_err *err)
{
	size_t o = 0, n;
	const char *p = tmpl, *val;

	while (*p) {
		val = NULL;
		if (strncmp(p, "{version}", 9) == 0) {
			val = version;
			p += 9;
		} else if (asset != NULL && strncmp(p, "{asset}", 7) == 0) {
			val = asset;
			p += 7;
		}
		n = val ? strlen(val) : 1;
		if (o + n >= cap)
			return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
					     "expanded \"%s\" longer than %zu bytes",
					     tmpl, cap - 1);
		if (val)
			memcpy(dst + o, val, n);
		else
			dst[o] = *p++;
		o += n;
	}
	dst[o] = 0;
	return 0;
}

int compat_backend_expand(const struct compat_backend_asset *a,
			  const char *version, char *asset, size_t asset_cap,
			  char *url, size_t url_cap, char *exe, size_t exe_cap,
			  struct lemon_err *err)
{
	if (version == NULL || version[0] == 0)
		version = a->version;
	if (!compat_version_ok(version))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "unusable version (" COMPAT_VERSION_RULE ")");
	if (expand(a->asset, version, NULL, asset, asset_cap, err) < 0 ||
	    expand(a->url, version, asset, url, url_cap, err) < 0 ||
	    expand(a->exe, version, NULL, exe, exe_cap, err) < 0)
		return -1;
	return 0;
}

int compat_backend_tag(const struct compat_backend_asset *a,
		       const char *version, char *out, size_t cap,
		       struct lemon_err *err)
{
	if (!compat_version_ok(version))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "unusable version (" COMPAT_VERSION_RULE ")");
	return expand(a->tag[0] ? a->tag : "{version}", version, NULL, out, cap,
		      err);
}
