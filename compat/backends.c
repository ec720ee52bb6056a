/* The backend manifest: compat/backends.json names, for every llama.cpp
 * bundle lemon can install, the pinned release, the asset name and URL as
 * the publisher spells them, the archive format, the executable inside and
 * the SHA-256 where one is known. This file loads and validates it (every
 * key known, every entry sourced) and answers "which bundle serves this
 * backend choice"; the provisioner does the rest. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "compat/compat.h"
#include "util/fs.h"
#include "util/str.h"

#define BACKENDS_FILE "backends.json"
#define BACKENDS_MAX_BYTES (1024 * 1024)

/* copies a required (or optional) string member; non-strings and overlong
 * values are INVALID_DATA naming the entry and key */
static int get_str(const cJSON *obj, const char *key, bool required,
		   char *dst, size_t cap, const char *entry,
		   struct lemon_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	dst[0] = 0;
	if (v == NULL || cJSON_IsNull(v)) {
		if (!required)
			return 0;
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: entry %s: missing \"%s\"",
				     BACKENDS_FILE, entry, key);
	}
	if (!cJSON_IsString(v) || v->valuestring[0] == 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: entry %s: \"%s\" must be a non-empty string",
				     BACKENDS_FILE, entry, key);
	if (!lemon_str_copy(dst, cap, v->valuestring))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: entry %s: \"%s\" longer than %zu bytes",
				     BACKENDS_FILE, entry, key, cap - 1);
	return 0;
}

static bool is_sha256_hex(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 64;
}

static const char *const target_keys[] = {
	"kind", "family", "gfx_targets", "version", "asset", "url", "format",
	"exe", "sha256", "source", NULL
};

static int check_keys(const cJSON *obj, const char *const *known,
		      const char *entry, struct lemon_err *err)
{
	const cJSON *it;
	int i;

	cJSON_ArrayForEach(it, obj) {
		for (i = 0; known[i]; i++)
			if (strcmp(it->string, known[i]) == 0)
				break;
		if (known[i] == NULL)
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "%s: entry %s: unknown key \"%s\"",
					     BACKENDS_FILE, entry, it->string);
	}
	return 0;
}

static int parse_gfx_list(const cJSON *t, struct compat_backend_asset *a,
			  struct lemon_err *err)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(t, "gfx_targets");
	const cJSON *g;

	if (strcmp(a->kind, "rocm") != 0)
		return 0;
	if (a->family[0] == 0 || !cJSON_IsArray(list))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: entry %s: rocm needs \"family\" and \"gfx_targets\"",
				     BACKENDS_FILE, a->name);
	cJSON_ArrayForEach(g, list) {
		if (a->n_gfx >= COMPAT_MAX_FAMILY_TARGETS || !cJSON_IsString(g) ||
		    !lemon_str_copy(a->gfx_targets[a->n_gfx],
				    sizeof(a->gfx_targets[0]), g->valuestring))
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "%s: entry %s: bad \"gfx_targets\"",
					     BACKENDS_FILE, a->name);
		a->n_gfx++;
	}
	return 0;
}

static int parse_target(const char *backend, const cJSON *t,
			struct compat_backend_asset *a, struct lemon_err *err)
{
	char entry[64];

	snprintf(entry, sizeof(entry), "%s/%s", backend, t->string);
	if (!cJSON_IsObject(t))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: entry %s: not an object", BACKENDS_FILE, entry);
	if (check_keys(t, target_keys, entry, err) < 0)
		return -1;
	if (!lemon_str_copy(a->backend, sizeof(a->backend), backend) ||
	    !lemon_str_copy(a->target, sizeof(a->target), t->string))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: entry %s: name too long", BACKENDS_FILE, entry);
	if (get_str(t, "kind", true, a->kind, sizeof(a->kind), entry, err) < 0 ||
	    get_str(t, "family", false, a->family, sizeof(a->family), entry, err) < 0 ||
	    get_str(t, "version", true, a->version, sizeof(a->version), entry, err) < 0 ||
	    get_str(t, "asset", true, a->asset, sizeof(a->asset), entry, err) < 0 ||
	    get_str(t, "url", true, a->url, sizeof(a->url), entry, err) < 0 ||
	    get_str(t, "format", true, a->format, sizeof(a->format), entry, err) < 0 ||
	    get_str(t, "exe", true, a->exe, sizeof(a->exe), entry, err) < 0 ||
	    get_str(t, "sha256", false, a->sha256, sizeof(a->sha256), entry, err) < 0 ||
	    get_str(t, "source", true, a->source, sizeof(a->source), entry, err) < 0)
		return -1;
	if (strcmp(a->kind, "cpu") != 0 && strcmp(a->kind, "vulkan") != 0 &&
	    strcmp(a->kind, "rocm") != 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: entry %s: unknown kind \"%s\"",
				     BACKENDS_FILE, entry, a->kind);
	if (strcmp(a->format, "tar.gz") != 0 && strcmp(a->format, "zip") != 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: entry %s: unknown format \"%s\"",
				     BACKENDS_FILE, entry, a->format);
	if (a->sha256[0] && !is_sha256_hex(a->sha256))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: entry %s: sha256 is not 64 lower-case hex digits",
				     BACKENDS_FILE, entry);
	if (strstr(a->asset, "/") != NULL)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: entry %s: asset name holds a '/'",
				     BACKENDS_FILE, entry);
	/* build the name in a separate buffer: gcc cannot tell that name,
	 * kind and family are distinct members and warns (-Wrestrict) */
	{
		char name[sizeof(a->name)];

		if (a->family[0])
			snprintf(name, sizeof(name), "%s:%s:%s", backend,
				 a->kind, a->family);
		else
			snprintf(name, sizeof(name), "%s:%s", backend, a->kind);
		memcpy(a->name, name, sizeof(name));
	}
	return parse_gfx_list(t, a, err);
}

static int parse_doc(const cJSON *root, struct compat_backends *bm,
		     struct lemon_err *err)
{
	static const char *const top_keys[] = { "schema", "about", "backends", NULL };
	const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
	const cJSON *backends = cJSON_GetObjectItemCaseSensitive(root, "backends");
	const cJSON *b, *targets, *t;
	int i;

	if (!cJSON_IsObject(root) || check_keys(root, top_keys, "(top)", err) < 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: not a JSON object", BACKENDS_FILE);
	if (!cJSON_IsNumber(schema) || schema->valueint != 1)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: unsupported schema (want 1)", BACKENDS_FILE);
	if (!cJSON_IsObject(backends))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: missing \"backends\" object", BACKENDS_FILE);
	cJSON_ArrayForEach(b, backends) {
		targets = cJSON_GetObjectItemCaseSensitive(b, "targets");
		if (!cJSON_IsObject(targets) || cJSON_GetArraySize(b) != 1)
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "%s: backend %s: want exactly a \"targets\" object",
					     BACKENDS_FILE, b->string);
		cJSON_ArrayForEach(t, targets) {
			if (bm->n >= COMPAT_MAX_BACKEND_ASSETS)
				return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
						     "%s: more than %d targets",
						     BACKENDS_FILE, COMPAT_MAX_BACKEND_ASSETS);
			if (parse_target(b->string, t, &bm->a[bm->n], err) < 0)
				return -1;
			for (i = 0; i < bm->n; i++)
				if (strcmp(bm->a[i].name, bm->a[bm->n].name) == 0)
					return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
							     "%s: duplicate entry %s",
							     BACKENDS_FILE, bm->a[i].name);
			bm->n++;
		}
	}
	return 0;
}

int compat_backends_load(const char *dir, struct compat_backends **out,
			 struct lemon_err *err)
{
	struct compat_backends *bm;
	char path[4096];
	char *text = NULL;
	cJSON *root;
	int rc;

	*out = NULL;
	if (dir == NULL)
		dir = getenv("LEMON_COMPAT_DIR");
	if (dir == NULL || dir[0] == 0)
		dir = LEMON_DATADIR;
	if (snprintf(path, sizeof(path), "%s/%s", dir, BACKENDS_FILE) >=
	    (int)sizeof(path))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "compat directory path too long: %s", dir);
	if (lemon_read_file(path, BACKENDS_MAX_BYTES, false, &text, NULL, err) < 0)
		return -1;
	root = cJSON_Parse(text);
	free(text);
	if (root == NULL)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: not valid JSON", path);
	bm = calloc(1, sizeof(*bm));
	if (bm == NULL) {
		cJSON_Delete(root);
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	}
	rc = parse_doc(root, bm, err);
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
		if (strcmp(kind, "rocm") == 0) {
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
