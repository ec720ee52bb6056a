/* section loaders for npus.json (devices, driver protocol rules, firmware
 * names, known firmware versions) and kmsg*.json (kernel-log patterns); the
 * generic key checking lives in load.c */
#include "compat/compat-private.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/str.h"

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* makes room for `more` zeroed records after `have` (plus one spare) */
static int grow(void **p, int have, int more, size_t size,
		struct lemon_err *err)
{
	char *n = realloc(*p, (size_t)(have + more + 1) * size);

	if (!n)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	memset(n + (size_t)have * size, 0, (size_t)(more + 1) * size);
	*p = n;
	return 0;
}

/* ---- devices --------------------------------------------------------- */

static const struct compat_field npu_fields[] = {
	{ "generation", CF_STR, true }, { "xdna", CF_STR, true },
	{ "product", CF_STR, false },	{ "firmware_dir", CF_STR, true },
	{ "fastflowlm", CF_BOOL, true }, { "confidence", CF_STR, true },
	{ "note", CF_STR, false },	{ "source", CF_STR, true },
};

static bool generation_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 3 && strncmp(s, "npu", 3) == 0 &&
	       strspn(s + 3, "0123456789") == n - 3;
}

/* "amdnpu/17f0_10" */
static bool fw_dir_valid(const char *s)
{
	uint32_t v;

	return strlen(s) == 14 && strncmp(s, "amdnpu/", 7) == 0 &&
	       compat_parse_hex_id(s + 7, 4, 4, &v) == 0 && s[11] == '_' &&
	       compat_parse_hex_id(s + 12, 2, 2, &v) == 0;
}

static int npu_parse(const struct compat_ctx *ctx, const cJSON *o,
		     struct compat_npu_rec *r, struct lemon_err *err)
{
	struct compat_npu_entry *e = &r->e;
	const char *k = ctx->entry;
	uint32_t v, d, rev;

	if (strlen(k) != 12 || k[4] != ':' || k[9] != ':' ||
	    compat_parse_hex_id(k, 4, 4, &v) ||
	    compat_parse_hex_id(k + 5, 4, 4, &d) ||
	    compat_parse_hex_id(k + 10, 2, 2, &rev))
		return compat_bad(ctx, err,
				  "malformed id (want vvvv:dddd:rr in lower-case hex)");
	r->vendor = (uint16_t)v;
	r->device = (uint16_t)d;
	r->rev = (uint8_t)rev;
	if (compat_check_keys(ctx, o, npu_fields, NFIELDS(npu_fields), err) ||
	    compat_get_str(ctx, o, "generation", e->generation,
			   sizeof(e->generation), err) ||
	    compat_get_str(ctx, o, "xdna", e->xdna, sizeof(e->xdna), err) ||
	    /* a name that does not fit is refused, never cut mid-sentence */
	    compat_get_str(ctx, o, "product", e->product, sizeof(e->product),
			   err) ||
	    compat_get_str(ctx, o, "firmware_dir", e->firmware_dir,
			   sizeof(e->firmware_dir), err) ||
	    compat_get_enum(ctx, o, "confidence", compat_confidences,
			    e->confidence, sizeof(e->confidence), err))
		return -1;
	if (!generation_valid(e->generation))
		return compat_bad(ctx, err, "malformed generation '%s'",
				  e->generation);
	if (!fw_dir_valid(e->firmware_dir))
		return compat_bad(ctx, err,
				  "malformed firmware_dir '%s' (want amdnpu/dddd_rr)",
				  e->firmware_dir);
	e->fastflowlm =
		cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "fastflowlm"));
	return 0;
}

int compat_load_npu_devices(struct compat_db *db, const struct compat_ctx *fctx,
			    const cJSON *sec, struct lemon_err *err)
{
	struct compat_ctx ctx = *fctx;
	const cJSON *c;
	int i;

	if (grow((void **)&db->npus, db->n_npus, cJSON_GetArraySize(sec),
		 sizeof(*db->npus), err))
		return -1;
	for (c = sec->child; c; c = c->next) {
		struct compat_npu_rec *r = &db->npus[db->n_npus];

		ctx.entry = c->string;
		if (npu_parse(&ctx, c, r, err))
			return -1;
		for (i = 0; i < db->n_npus; i++)
			if (db->npus[i].vendor == r->vendor &&
			    db->npus[i].device == r->device &&
			    db->npus[i].rev == r->rev)
				return compat_bad(&ctx, err, "duplicate id");
		db->n_npus++;
	}
	return 0;
}

/* ---- driver rules and firmware names ------------------------------------ */

static const char *const drivers[] = { "in-tree", "out-of-tree", NULL };

static int parse_window(const struct compat_ctx *ctx, const cJSON *o,
			bool out_of_tree, struct compat_kwin *w,
			struct lemon_err *err)
{
	char buf[16];

	if (compat_get_str(ctx, o, "kernel_min", buf, sizeof(buf), err))
		return -1;
	if (buf[0]) {
		if (compat_kernel_parse(buf, w->min, NULL))
			return compat_bad(ctx, err, "malformed kernel_min '%s'",
					  buf);
		w->has_min = true;
	}
	if (compat_get_str(ctx, o, "kernel_below", buf, sizeof(buf), err))
		return -1;
	if (buf[0]) {
		if (compat_kernel_parse(buf, w->below, NULL))
			return compat_bad(ctx, err,
					  "malformed kernel_below '%s'", buf);
		w->has_below = true;
	}
	if (out_of_tree && (w->has_min || w->has_below))
		return compat_bad(ctx, err,
				  "out-of-tree rules take no kernel window");
	if (!out_of_tree && !w->has_min)
		return compat_bad(ctx, err, "in-tree rules need kernel_min");
	return 0;
}

static bool key_valid(const char *k, size_t cap)
{
	return k[0] && strlen(k) < cap &&
	       strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789.-/_") ==
		       strlen(k);
}

static const struct compat_field drv_fields[] = {
	{ "generation", CF_STR, true },	 { "driver", CF_STR, true },
	{ "kernel_min", CF_STR, false }, { "kernel_below", CF_STR, false },
	{ "accepts", CF_ARR, true },	 { "confidence", CF_STR, true },
	{ "source", CF_STR, true },
};

static int drv_parse(const struct compat_db *db, const struct compat_ctx *ctx,
		     const cJSON *o, struct compat_drv_rule *r,
		     struct lemon_err *err)
{
	char drv[16], conf[8];
	const cJSON *a;
	int i, minor;

	if (!key_valid(ctx->entry, sizeof(r->key)))
		return compat_bad(ctx, err, "malformed rule key");
	lemon_str_copy(r->key, sizeof(r->key), ctx->entry);
	if (compat_check_keys(ctx, o, drv_fields, NFIELDS(drv_fields), err) ||
	    compat_get_str(ctx, o, "generation", r->generation,
			   sizeof(r->generation), err) ||
	    compat_get_enum(ctx, o, "driver", drivers, drv, sizeof(drv), err) ||
	    compat_get_enum(ctx, o, "confidence", compat_confidences, conf,
			    sizeof(conf), err))
		return -1;
	for (i = 0; i < db->n_npus; i++)
		if (strcmp(db->npus[i].e.generation, r->generation) == 0)
			break;
	if (i == db->n_npus)
		return compat_bad(ctx, err, "unknown generation '%s'",
				  r->generation);
	r->out_of_tree = strcmp(drv, "out-of-tree") == 0;
	if (parse_window(ctx, o, r->out_of_tree, &r->win, err))
		return -1;
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(o, "accepts"))
	{
		if (r->n == COMPAT_MAX_ACCEPTS || !cJSON_IsString(a) ||
		    compat_protocol_parse(a->valuestring, &r->accepts[r->n].major,
					  &minor, NULL) ||
		    minor < 0)
			return compat_bad(ctx, err,
					  "accepts holds at most %d \"major.minor\" strings",
					  COMPAT_MAX_ACCEPTS);
		r->accepts[r->n++].min_minor = minor;
	}
	if (r->n == 0)
		return compat_bad(ctx, err, "accepts is empty");
	return 0;
}

int compat_load_driver_protocols(struct compat_db *db,
				 const struct compat_ctx *fctx,
				 const cJSON *sec, struct lemon_err *err)
{
	struct compat_ctx ctx = *fctx;
	const cJSON *c;
	int i;

	if (grow((void **)&db->drv, db->n_drv, cJSON_GetArraySize(sec),
		 sizeof(*db->drv), err))
		return -1;
	for (c = sec->child; c; c = c->next) {
		ctx.entry = c->string;
		if (drv_parse(db, &ctx, c, &db->drv[db->n_drv], err))
			return -1;
		for (i = 0; i < db->n_drv; i++)
			if (strcmp(db->drv[i].key, c->string) == 0)
				return compat_bad(&ctx, err, "duplicate rule");
		db->n_drv++;
	}
	return 0;
}

static const struct compat_field fwn_fields[] = {
	{ "driver", CF_STR, true },	    { "kernel_min", CF_STR, false },
	{ "kernel_below", CF_STR, false }, { "names", CF_ARR, true },
	{ "confidence", CF_STR, true },    { "source", CF_STR, true },
};

static int fwn_parse(const struct compat_ctx *ctx, const cJSON *o,
		     struct compat_fw_rule *r, struct lemon_err *err)
{
	char drv[16], conf[8];
	const cJSON *a;

	if (!key_valid(ctx->entry, sizeof(r->key)))
		return compat_bad(ctx, err, "malformed rule key");
	lemon_str_copy(r->key, sizeof(r->key), ctx->entry);
	if (compat_check_keys(ctx, o, fwn_fields, NFIELDS(fwn_fields), err) ||
	    compat_get_enum(ctx, o, "driver", drivers, drv, sizeof(drv), err) ||
	    compat_get_enum(ctx, o, "confidence", compat_confidences, conf,
			    sizeof(conf), err))
		return -1;
	r->out_of_tree = strcmp(drv, "out-of-tree") == 0;
	if (parse_window(ctx, o, r->out_of_tree, &r->win, err))
		return -1;
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(o, "names"))
	{
		if (r->n == COMPAT_MAX_FW_NAMES || !cJSON_IsString(a) ||
		    !a->valuestring[0] || strchr(a->valuestring, '/') ||
		    !lemon_str_copy(r->names[r->n], sizeof(r->names[0]),
				    a->valuestring))
			return compat_bad(ctx, err,
					  "names holds at most %d plain file names",
					  COMPAT_MAX_FW_NAMES);
		r->n++;
	}
	if (r->n == 0)
		return compat_bad(ctx, err, "names is empty");
	return 0;
}

int compat_load_firmware_names(struct compat_db *db,
			       const struct compat_ctx *fctx, const cJSON *sec,
			       struct lemon_err *err)
{
	struct compat_ctx ctx = *fctx;
	const cJSON *c;
	int i;

	if (grow((void **)&db->fwn, db->n_fwn, cJSON_GetArraySize(sec),
		 sizeof(*db->fwn), err))
		return -1;
	for (c = sec->child; c; c = c->next) {
		ctx.entry = c->string;
		if (fwn_parse(&ctx, c, &db->fwn[db->n_fwn], err))
			return -1;
		for (i = 0; i < db->n_fwn; i++)
			if (strcmp(db->fwn[i].key, c->string) == 0)
				return compat_bad(&ctx, err, "duplicate rule");
		db->n_fwn++;
	}
	return 0;
}

/* ---- firmware versions -------------------------------------------------- */

static const struct compat_field fwv_fields[] = {
	{ "protocol", CF_STR, true }, { "confidence", CF_STR, true },
	{ "note", CF_STR, false },    { "source", CF_STR, true },
};

static int fwv_parse(const struct compat_ctx *ctx, const cJSON *o,
		     struct compat_fw_version *v, struct lemon_err *err)
{
	const char *k = ctx->entry;
	uint32_t parts[4];
	char conf[8];
	int major, minor;

	/* "amdnpu/17f0_10/1.0.0.63" */
	if (strlen(k) < 16 || k[14] != '/' ||
	    !lemon_str_copy_n(v->dir, sizeof(v->dir), k, 14) ||
	    !fw_dir_valid(v->dir) ||
	    !lemon_str_copy(v->version, sizeof(v->version), k + 15) ||
	    strspn(v->version, "0123456789.") != strlen(v->version) ||
	    lemon_parse_version(v->version, strlen(v->version), parts, 4,
				NULL) != 4)
		return compat_bad(ctx, err,
				  "malformed key (want amdnpu/dddd_rr/a.b.c.d)");
	if (compat_check_keys(ctx, o, fwv_fields, NFIELDS(fwv_fields), err) ||
	    compat_get_str(ctx, o, "protocol", v->protocol,
			   sizeof(v->protocol), err) ||
	    compat_get_enum(ctx, o, "confidence", compat_confidences, conf,
			    sizeof(conf), err))
		return -1;
	if (compat_protocol_parse(v->protocol, &major, &minor, NULL))
		return compat_bad(ctx, err, "malformed protocol '%s'",
				  v->protocol);
	return 0;
}

int compat_load_firmware_versions(struct compat_db *db,
				  const struct compat_ctx *fctx,
				  const cJSON *sec, struct lemon_err *err)
{
	struct compat_ctx ctx = *fctx;
	const cJSON *c;
	int i;

	if (grow((void **)&db->fwv, db->n_fwv, cJSON_GetArraySize(sec),
		 sizeof(*db->fwv), err))
		return -1;
	for (c = sec->child; c; c = c->next) {
		struct compat_fw_version *v = &db->fwv[db->n_fwv];

		ctx.entry = c->string;
		if (fwv_parse(&ctx, c, v, err))
			return -1;
		for (i = 0; i < db->n_fwv; i++)
			if (strcmp(db->fwv[i].dir, v->dir) == 0 &&
			    strcmp(db->fwv[i].version, v->version) == 0)
				return compat_bad(&ctx, err,
						  "duplicate firmware version");
		db->n_fwv++;
	}
	return 0;
}

/* ---- kernel-log patterns -------------------------------------------------- */

static const char *const severities[] = { "error", "warn", "info", NULL };

static const struct compat_field kmsg_fields[] = {
	{ "match", CF_ARR, true },	{ "meaning", CF_STR, true },
	{ "severity", CF_STR, true },	{ "fix", CF_STR, false },
	{ "confidence", CF_STR, true }, { "source", CF_STR, true },
};

/* a template's braces must name a known placeholder */
static bool template_valid(const char *t)
{
	static const char *const ph[] = { "{major}", "{minor}", "{int}",
					  "{hex}", "{any}" };
	size_t i;

	if (!t[0])
		return false;
	while ((t = strchr(t, '{')) != NULL) {
		for (i = 0; i < sizeof(ph) / sizeof(ph[0]); i++)
			if (strncmp(t, ph[i], strlen(ph[i])) == 0)
				break;
		if (i == sizeof(ph) / sizeof(ph[0]))
			return false;
		t++;
	}
	return true;
}

static int kmsg_parse(const struct compat_ctx *ctx, const cJSON *o,
		      struct compat_kmsg_rec *r, struct lemon_err *err)
{
	char conf[8];
	const cJSON *a;

	if (!key_valid(ctx->entry, sizeof(r->id)) ||
	    strpbrk(ctx->entry, "./_"))
		return compat_bad(ctx, err,
				  "malformed id (lower-case letters, digits and '-')");
	lemon_str_copy(r->id, sizeof(r->id), ctx->entry);
	if (compat_check_keys(ctx, o, kmsg_fields, NFIELDS(kmsg_fields), err) ||
	    compat_get_str(ctx, o, "meaning", r->meaning, sizeof(r->meaning),
			   err) ||
	    compat_get_str(ctx, o, "fix", r->fix, sizeof(r->fix), err) ||
	    compat_get_enum(ctx, o, "severity", severities, r->severity,
			    sizeof(r->severity), err) ||
	    compat_get_enum(ctx, o, "confidence", compat_confidences, conf,
			    sizeof(conf), err))
		return -1;
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(o, "match"))
	{
		if (r->n == COMPAT_MAX_MATCH || !cJSON_IsString(a) ||
		    !a->valuestring[0] ||
		    !lemon_str_copy(r->match[r->n], sizeof(r->match[0]),
				    a->valuestring))
			return compat_bad(ctx, err,
					  "match holds 1 to %d templates of under %zu bytes",
					  COMPAT_MAX_MATCH, sizeof(r->match[0]));
		if (!template_valid(r->match[r->n]) ||
		    strncmp(r->match[r->n], "{any}", 5) == 0)
			return compat_bad(ctx, err, "malformed template '%s'",
					  r->match[r->n]);
		r->n++;
	}
	if (r->n == 0)
		return compat_bad(ctx, err, "match is empty");
	return 0;
}

int compat_load_kmsg(struct compat_db *db, const struct compat_ctx *fctx,
		     const cJSON *sec, struct lemon_err *err)
{
	struct compat_ctx ctx = *fctx;
	const cJSON *c;
	int i;

	if (grow((void **)&db->kmsg, db->n_kmsg, cJSON_GetArraySize(sec),
		 sizeof(*db->kmsg), err))
		return -1;
	for (c = sec->child; c; c = c->next) {
		ctx.entry = c->string;
		if (kmsg_parse(&ctx, c, &db->kmsg[db->n_kmsg], err))
			return -1;
		for (i = 0; i < db->n_kmsg; i++)
			if (strcmp(db->kmsg[i].id, c->string) == 0)
				return compat_bad(&ctx, err, "duplicate id");
		db->n_kmsg++;
	}
	return 0;
}

/* ---- IOMMU rules: what each amdxdna era does without an IOMMU ------------ */

static const char *const withouts[] = { "fails", "needs-carveout", NULL };

static const struct compat_field iommu_fields[] = {
	{ "driver", CF_STR, true },	    { "kernel_min", CF_STR, false },
	{ "kernel_below", CF_STR, false }, { "without_iommu", CF_STR, true },
	{ "message", CF_STR, true },	    { "fix", CF_STR, true },
	{ "confidence", CF_STR, true },    { "source", CF_STR, true },
};

static int iommu_parse(const struct compat_ctx *ctx, const cJSON *o,
		       struct compat_iommu_rule *r, struct lemon_err *err)
{
	char drv[16];

	if (!key_valid(ctx->entry, sizeof(r->key)))
		return compat_bad(ctx, err, "malformed rule key");
	lemon_str_copy(r->key, sizeof(r->key), ctx->entry);
	if (compat_check_keys(ctx, o, iommu_fields, NFIELDS(iommu_fields),
			      err) ||
	    compat_get_enum(ctx, o, "driver", drivers, drv, sizeof(drv), err) ||
	    compat_get_enum(ctx, o, "without_iommu", withouts, r->r.without,
			    sizeof(r->r.without), err) ||
	    compat_get_str(ctx, o, "message", r->r.message,
			   sizeof(r->r.message), err) ||
	    compat_get_str(ctx, o, "fix", r->r.fix, sizeof(r->r.fix), err) ||
	    compat_get_enum(ctx, o, "confidence", compat_confidences,
			    r->r.confidence, sizeof(r->r.confidence), err))
		return -1;
	r->out_of_tree = strcmp(drv, "out-of-tree") == 0;
	return parse_window(ctx, o, r->out_of_tree, &r->win, err);
}

int compat_load_iommu_rules(struct compat_db *db,
			    const struct compat_ctx *fctx, const cJSON *sec,
			    struct lemon_err *err)
{
	struct compat_ctx ctx = *fctx;
	const cJSON *c;
	int i;

	if (grow((void **)&db->iommu, db->n_iommu, cJSON_GetArraySize(sec),
		 sizeof(*db->iommu), err))
		return -1;
	for (c = sec->child; c; c = c->next) {
		ctx.entry = c->string;
		if (iommu_parse(&ctx, c, &db->iommu[db->n_iommu], err))
			return -1;
		for (i = 0; i < db->n_iommu; i++)
			if (strcmp(db->iommu[i].key, c->string) == 0)
				return compat_bad(&ctx, err, "duplicate rule");
		db->n_iommu++;
	}
	return 0;
}
