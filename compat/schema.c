/* The one schema checker every compat file goes through (the hardware
 * tables, backends.json, the shipped and the user's models.json): a file
 * is one JSON object with `schema` 1 and the keys its loader declares;
 * each entry's keys are declared the same way. Unknown keys (a typo such
 * as `sha265` would otherwise silently mean "no digest"), a key given
 * twice, a missing required key and a value of the wrong JSON type are
 * INVALID_DATA naming the file, the entry and the key. */
#include "compat/compat-private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/fs.h"
#include "util/str.h"

static const char *type_name(enum compat_ftype t)
{
	switch (t) {
	case CF_STR:
		return "a string";
	case CF_BOOL:
		return "true or false";
	case CF_NUM:
		return "a number";
	case CF_OBJ:
		return "an object";
	case CF_ARR:
		return "an array";
	}
	return "?";
}

static bool type_ok(const cJSON *v, const struct compat_field *f)
{
	if (f->nullable && cJSON_IsNull(v))
		return true;
	switch (f->type) {
	case CF_STR:
		return cJSON_IsString(v);
	case CF_BOOL:
		return cJSON_IsBool(v);
	case CF_NUM:
		return cJSON_IsNumber(v);
	case CF_OBJ:
		return cJSON_IsObject(v);
	case CF_ARR:
		return cJSON_IsArray(v);
	}
	return false;
}

int compat_bad(const struct compat_ctx *ctx, struct lemon_err *err,
	       const char *fmt, ...)
{
	char msg[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ctx->entry && ctx->entry[0])
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: entry '%s': %s", ctx->path,
				     ctx->entry, msg);
	return lemon_err_set(err, LEMON_ERR_INVALID_DATA, "%s: %s", ctx->path,
			     msg);
}

int compat_check_keys(const struct compat_ctx *ctx, const cJSON *obj,
		      const struct compat_field *fields, size_t n,
		      struct lemon_err *err)
{
	const cJSON *c, *d;
	size_t i;

	if (!cJSON_IsObject(obj))
		return compat_bad(ctx, err, "not an object");
	for (c = obj->child; c; c = c->next) {
		for (d = obj->child; d != c; d = d->next)
			if (strcmp(d->string, c->string) == 0)
				return compat_bad(ctx, err, "duplicate key '%s'",
						  c->string);
		for (i = 0; i < n; i++)
			if (strcmp(fields[i].key, c->string) == 0)
				break;
		if (i == n)
			return compat_bad(ctx, err, "unknown key '%s'",
					  c->string);
		if (!type_ok(c, &fields[i]))
			return compat_bad(ctx, err, "'%s' must be %s%s",
					  c->string, type_name(fields[i].type),
					  fields[i].nullable ? " or null" : "");
	}
	for (i = 0; i < n; i++)
		if (fields[i].required &&
		    !cJSON_GetObjectItemCaseSensitive(obj, fields[i].key))
			return compat_bad(ctx, err, "missing key '%s'",
					  fields[i].key);
	return 0;
}

#define DOC_MAX_FIELDS 8

int compat_doc_parse(const struct compat_ctx *ctx, const char *text,
		     size_t len, const struct compat_field *fields, size_t n,
		     cJSON **out, struct lemon_err *err)
{
	struct compat_field all[DOC_MAX_FIELDS + 1] = {
		{ "schema", CF_NUM, true, false },
	};
	struct compat_ctx top = *ctx;
	const cJSON *schema;
	cJSON *doc;

	*out = NULL;
	top.entry = NULL;
	if (n > DOC_MAX_FIELDS)
		return lemon_err_set(err, LEMON_ERR_INTERNAL,
				     "%s: too many top-level keys declared",
				     ctx->path);
	memcpy(all + 1, fields, n * sizeof(*fields));
	if (strlen(text) != len)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: holds a NUL byte", ctx->path);
	/* len + 1: cJSON wants the terminating NUL inside the length */
	doc = cJSON_ParseWithLengthOpts(text, len + 1, NULL, 1);
	if (doc == NULL) {
		const char *at = cJSON_GetErrorPtr();
		size_t off = at && at >= text ? (size_t)(at - text) : 0;

		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: invalid JSON near byte %zu",
				     ctx->path, off);
	}
	if (compat_check_keys(&top, doc, all, n + 1, err) < 0)
		goto bad;
	schema = cJSON_GetObjectItemCaseSensitive(doc, "schema");
	if (schema->valuedouble != 1) {
		compat_bad(&top, err, "unsupported schema %g (want 1)",
			   schema->valuedouble);
		goto bad;
	}
	*out = doc;
	return 0;
bad:
	cJSON_Delete(doc);
	return -1;
}

int compat_doc_load(struct compat_ctx *ctx, const char *dir, const char *name,
		    size_t max, const struct compat_field *fields, size_t n,
		    cJSON **out, struct lemon_err *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	ctx->entry = NULL;
	if (snprintf(ctx->path, sizeof(ctx->path), "%s%s%s", dir,
		     name ? "/" : "", name ? name : "") >= (int)sizeof(ctx->path))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "compat path too long: %s/%s", dir,
				     name ? name : "");
	if (lemon_read_file(ctx->path, max, false, &text, &len, err) < 0)
		return -1;
	rc = compat_doc_parse(ctx, text, len, fields, n, out, err);
	free(text);
	return rc;
}

int compat_get_str(const struct compat_ctx *ctx, const cJSON *obj,
		   const char *key, char *out, size_t cap,
		   struct lemon_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	out[0] = '\0';
	if (!v || cJSON_IsNull(v))
		return 0;
	if (v->valuestring[0] == '\0')
		return compat_bad(ctx, err, "'%s' is empty", key);
	if (!lemon_str_copy(out, cap, v->valuestring))
		return compat_bad(ctx, err, "'%s' longer than %zu bytes", key,
				  cap - 1);
	return 0;
}

int compat_get_enum(const struct compat_ctx *ctx, const cJSON *obj,
		    const char *key, const char *const *allowed, char *out,
		    size_t cap, struct lemon_err *err)
{
	size_t i;

	if (compat_get_str(ctx, obj, key, out, cap, err))
		return -1;
	if (!out[0])
		return 0;
	for (i = 0; allowed[i]; i++)
		if (strcmp(allowed[i], out) == 0)
			return 0;
	return compat_bad(ctx, err, "'%s' has unknown value '%s'", key, out);
}
