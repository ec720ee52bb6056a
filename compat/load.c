/* loads and validates the compat JSON tables.
 *
 * Every file declares its allowed keys here and is checked by the one
 * schema checker (schema.c); an unknown key, a duplicate entry or a
 * malformed value makes the whole load fail with INVALID_DATA naming the
 * file and the entry, so a bad data edit is caught by the unit test that
 * loads every shipped file instead of surfacing as a wrong verdict on a
 * user's machine. The per-section parsers for NPU and kernel-log data
 * live in load-npu.c. */
#include "compat/compat-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/str.h"

#define COMPAT_FILE_MAX (1024 * 1024)

#ifndef LEMON_DATADIR
#define LEMON_DATADIR "compat"
#endif

const char *const compat_confidences[] = { "high", "medium", "low", NULL };

int compat_parse_hex_id(const char *s, size_t len, int digits, uint32_t *out)
{
	uint64_t v;
	size_t i;

	if (len != (size_t)digits)
		return -1;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return -1;
	if (lemon_parse_u64(s, len, 16, 0xffffffffu, &v, NULL))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* "gfx" then 3 or 4 lower-case hex digits with a decimal major ("gfx90a",
 * "gfx1151") */
bool compat_gfx_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 6 || n > 7 || strncmp(s, "gfx", 3) != 0)
		return false;
	if (s[3] < '1' || s[3] > '9')
		return false;
	for (i = 4; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* "a.b.c" with 1-3 digit parts */
bool compat_version3_valid(const char *s)
{
	uint32_t parts[3];

	return lemon_parse_version(s, strlen(s), parts, 3, NULL) == 3 &&
	       strspn(s, "0123456789.") == strlen(s);
}

/* ---- the gpus section (gpus.json and gpus-local.json) ----------------- */

static const char *const gpu_kinds[] = { "igpu", "dgpu", "accelerator", NULL };

static const struct compat_field gpu_fields[] = {
	{ "gfx", CF_STR, true },	 { "family", CF_STR, true },
	{ "kind", CF_STR, true },	 { "name", CF_STR, false },
	{ "codename", CF_STR, false },	 { "gc_ip", CF_STR, false },
	{ "names", CF_OBJ, false },	 { "confidence", CF_STR, true },
	{ "note", CF_STR, false },	 { "source", CF_STR, true },
};

static int gpu_key(const struct compat_ctx *ctx, const char *key,
		   struct compat_gpu_rec *g, struct lemon_err *err)
{
	uint32_t v, d, r = 0;
	size_t n = strlen(key);

	if ((n != 9 && n != 12) || key[4] != ':' ||
	    compat_parse_hex_id(key, 4, 4, &v) ||
	    compat_parse_hex_id(key + 5, 4, 4, &d) ||
	    (n == 12 && (key[9] != ':' ||
			 compat_parse_hex_id(key + 10, 2, 2, &r))))
		return compat_bad(ctx, err,
				  "malformed id (want vvvv:dddd or vvvv:dddd:rr in lower-case hex)");
	g->vendor = (uint16_t)v;
	g->device = (uint16_t)d;
	g->has_rev = n == 12;
	g->rev = (uint8_t)r;
	lemon_str_copy(g->key, sizeof(g->key), key);
	return 0;
}

static int gpu_names(const struct compat_ctx *ctx, const cJSON *names,
		     struct compat_gpu_rec *g, struct lemon_err *err)
{
	const cJSON *c, *d;
	int n = cJSON_GetArraySize(names), i = 0;
	uint32_t r;

	g->names = calloc((size_t)(n ? n : 1), sizeof(*g->names));
	if (!g->names)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	for (c = names->child; c; c = c->next, i++) {
		for (d = names->child; d != c; d = d->next)
			if (strcmp(d->string, c->string) == 0)
				return compat_bad(ctx, err,
						  "duplicate revision '%s' in names",
						  c->string);
		if (compat_parse_hex_id(c->string, strlen(c->string), 2, &r))
			return compat_bad(ctx, err,
					  "malformed revision '%s' in names",
					  c->string);
		if (!cJSON_IsString(c) || !c->valuestring[0] ||
		    !lemon_str_copy(g->names[i].name, sizeof(g->names[i].name),
				    c->valuestring))
			return compat_bad(ctx, err, "bad name for revision '%s'",
					  c->string);
		g->names[i].rev = (uint8_t)r;
		g->n_names = i + 1;
	}
	return 0;
}

static int gpu_parse(const struct compat_ctx *ctx, const cJSON *o,
		     struct compat_gpu_rec *g, struct lemon_err *err)
{
	struct compat_gpu_entry *e = &g->e;
	const cJSON *names;

	if (gpu_key(ctx, ctx->entry, g, err) ||
	    compat_check_keys(ctx, o, gpu_fields,
			      sizeof(gpu_fields) / sizeof(gpu_fields[0]), err) ||
	    compat_get_str(ctx, o, "gfx", e->gfx, sizeof(e->gfx), err) ||
	    compat_get_str(ctx, o, "family", e->family, sizeof(e->family), err) ||
	    compat_get_enum(ctx, o, "kind", gpu_kinds, e->kind, sizeof(e->kind),
			    err) ||
	    compat_get_str(ctx, o, "name", e->name, sizeof(e->name), err) ||
	    compat_get_str(ctx, o, "codename", e->codename, sizeof(e->codename),
			   err) ||
	    compat_get_str(ctx, o, "gc_ip", e->gc_ip, sizeof(e->gc_ip), err) ||
	    compat_get_enum(ctx, o, "confidence", compat_confidences,
			    e->confidence, sizeof(e->confidence), err))
		return -1;
	if (!compat_gfx_valid(e->gfx))
		return compat_bad(ctx, err, "malformed gfx '%s'", e->gfx);
	if (e->gc_ip[0] && !compat_version3_valid(e->gc_ip))
		return compat_bad(ctx, err, "malformed gc_ip '%s'", e->gc_ip);
	names = cJSON_GetObjectItemCaseSensitive(o, "names");
	if (names && g->has_rev)
		return compat_bad(ctx, err,
				  "names belongs on the entry without a revision");
	if (names)
		return gpu_names(ctx, names, g, err);
	return 0;
}

static int load_gpus(struct compat_db *db, const struct compat_ctx *fctx,
		     const cJSON *sec, struct lemon_err *err)
{
	int n = cJSON_GetArraySize(sec), base = db->n_gpus, i;
	struct compat_gpu_rec *grown;
	struct compat_ctx ctx = *fctx;
	const cJSON *c;

	grown = realloc(db->gpus, (size_t)(base + n + 1) * sizeof(*grown));
	if (!grown)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	db->gpus = grown;
	memset(db->gpus + base, 0, (size_t)(n + 1) * sizeof(*grown));
	for (c = sec->child; c; c = c->next) {
		struct compat_gpu_rec *g = &db->gpus[db->n_gpus];

		ctx.entry = c->string;
		db->n_gpus++; /* owned names are freed even on failure */
		if (gpu_parse(&ctx, c, g, err))
			return -1;
		for (i = 0; i < db->n_gpus - 1; i++)
			if (strcmp(db->gpus[i].key, g->key) == 0)
				return compat_bad(&ctx, err,
						  "duplicate id (also defined earlier)");
	}
	return 0;
}

/* ---- gc-ip.json ---------------------------------------------------------- */

static const struct compat_field gc_fields[] = {
	{ "gfx", CF_STR, true },	{ "gfx_target_version", CF_NUM, true },
	{ "chips", CF_STR, false },	{ "confidence", CF_STR, true },
	{ "note", CF_STR, false },	{ "source", CF_STR, true },
};

static int load_gc(struct compat_db *db, const struct compat_ctx *fctx,
		   const cJSON *sec, struct lemon_err *err)
{
	struct compat_ctx ctx = *fctx;
	char conf[8], gfx[16];
	const cJSON *c, *tv;
	int i;

	db->gc = calloc((size_t)cJSON_GetArraySize(sec) + 1, sizeof(*db->gc));
	if (!db->gc)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	for (c = sec->child; c; c = c->next) {
		struct compat_gc_rec *g = &db->gc[db->n_gc];

		ctx.entry = c->string;
		if (!compat_version3_valid(c->string) ||
		    !lemon_str_copy(g->gc_ip, sizeof(g->gc_ip), c->string))
			return compat_bad(&ctx, err,
					  "malformed GC IP version (want major.minor.revision)");
		if (compat_check_keys(&ctx, c, gc_fields,
				      sizeof(gc_fields) / sizeof(gc_fields[0]),
				      err) ||
		    compat_get_str(&ctx, c, "gfx", g->gfx, sizeof(g->gfx), err) ||
		    compat_get_enum(&ctx, c, "confidence", compat_confidences,
				    conf, sizeof(conf), err))
			return -1;
		tv = cJSON_GetObjectItemCaseSensitive(c, "gfx_target_version");
		if (tv->valuedouble < 1 || tv->valuedouble > 999999 ||
		    tv->valuedouble != (double)(uint32_t)tv->valuedouble)
			return compat_bad(&ctx, err,
					  "malformed gfx_target_version");
		g->gfx_target_version = (uint32_t)tv->valuedouble;
		if (compat_gfx_from_kfd(g->gfx_target_version, gfx, sizeof(gfx),
					NULL) ||
		    strcmp(gfx, g->gfx) != 0)
			return compat_bad(&ctx, err,
					  "gfx '%s' disagrees with gfx_target_version %u",
					  g->gfx, g->gfx_target_version);
		for (i = 0; i < db->n_gc; i++)
			if (strcmp(db->gc[i].gc_ip, g->gc_ip) == 0)
				return compat_bad(&ctx, err, "duplicate GC IP");
		db->n_gc++;
	}
	return 0;
}

/* ---- rocm.json ----------------------------------------------------------- */

static const struct compat_field rocm_fields[] = {
	{ "family", CF_STR, true },
	{ "prebuilt", CF_BOOL, true },
	{ "stable_build", CF_BOOL, false },
	{ "nightly_build", CF_BOOL, false },
	{ "upstream_build", CF_BOOL, false },
	{ "therock_linux", CF_STR, false },
	{ "therock_family", CF_STR, false },
	{ "kfd_cwsr_kernel", CF_STR, false },
	{ "hsa_override", CF_STR, false },
	{ "override_family", CF_STR, false },
	{ "override_confidence", CF_STR, false },
	{ "override_source", CF_STR, false },
	{ "note", CF_STR, false },
	{ "source", CF_STR, true },
};

static int rocm_parse(const struct compat_ctx *ctx, const cJSON *o,
		      struct compat_rocm_rec *r, struct lemon_err *err)
{
	char conf[8];

	if (!compat_gfx_valid(ctx->entry) ||
	    !lemon_str_copy(r->gfx, sizeof(r->gfx), ctx->entry))
		return compat_bad(ctx, err, "malformed gfx target");
	if (compat_check_keys(ctx, o, rocm_fields,
			      sizeof(rocm_fields) / sizeof(rocm_fields[0]),
			      err) ||
	    compat_get_str(ctx, o, "family", r->r.family, sizeof(r->r.family),
			   err) ||
	    compat_get_str(ctx, o, "hsa_override", r->r.hsa_override,
			   sizeof(r->r.hsa_override), err) ||
	    compat_get_str(ctx, o, "override_family", r->r.override_family,
			   sizeof(r->r.override_family), err) ||
	    compat_get_str(ctx, o, "therock_family", r->r.therock_family,
			   sizeof(r->r.therock_family), err) ||
	    compat_get_str(ctx, o, "therock_linux", r->r.therock_linux,
			   sizeof(r->r.therock_linux), err) ||
	    compat_get_str(ctx, o, "kfd_cwsr_kernel", r->r.kfd_cwsr_kernel,
			   sizeof(r->r.kfd_cwsr_kernel), err) ||
	    compat_get_enum(ctx, o, "override_confidence", compat_confidences,
			    conf, sizeof(conf), err))
		return -1;
	r->r.prebuilt = cJSON_IsTrue(
		cJSON_GetObjectItemCaseSensitive(o, "prebuilt"));
	/* the note is informative; a long one is cut, not rejected */
	if (cJSON_GetObjectItemCaseSensitive(o, "note"))
		lemon_str_copy(r->r.note, sizeof(r->r.note),
			       cJSON_GetObjectItemCaseSensitive(o, "note")
				       ->valuestring);
	if (r->r.kfd_cwsr_kernel[0] &&
	    !compat_version3_valid(r->r.kfd_cwsr_kernel))
		return compat_bad(ctx, err, "malformed kfd_cwsr_kernel '%s'",
				  r->r.kfd_cwsr_kernel);
	if (r->r.hsa_override[0] && !compat_version3_valid(r->r.hsa_override))
		return compat_bad(ctx, err, "malformed hsa_override '%s'",
				  r->r.hsa_override);
	if (!r->r.hsa_override[0] != !r->r.override_family[0])
		return compat_bad(ctx, err,
				  "hsa_override and override_family go together");
	return 0;
}

static int load_rocm(struct compat_db *db, const struct compat_ctx *fctx,
		     const cJSON *sec, struct lemon_err *err)
{
	struct compat_ctx ctx = *fctx;
	const cJSON *c;
	int i;

	db->rocm = calloc((size_t)cJSON_GetArraySize(sec) + 1,
			  sizeof(*db->rocm));
	if (!db->rocm)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	for (c = sec->child; c; c = c->next) {
		ctx.entry = c->string;
		if (rocm_parse(&ctx, c, &db->rocm[db->n_rocm], err))
			return -1;
		for (i = 0; i < db->n_rocm; i++)
			if (strcmp(db->rocm[i].gfx, c->string) == 0)
				return compat_bad(&ctx, err,
						  "duplicate gfx target");
		db->n_rocm++;
	}
	return 0;
}

/* ---- files --------------------------------------------------------------- */

#define COMPAT_MAX_SECTIONS 5

struct compat_file {
	const char *name;
	const char *sections[COMPAT_MAX_SECTIONS];
	int (*load[COMPAT_MAX_SECTIONS])(struct compat_db *db, const struct compat_ctx *ctx,
		       const cJSON *sec, struct lemon_err *err);
	unsigned topic;
};

/* every shipped file, in load order (gpus-local after gpus so a local
 * entry that repeats a generated id is reported as the duplicate) */
static const struct compat_file compat_files[] = {
	{ "gpus.json", { "gpus" }, { load_gpus }, COMPAT_TOPIC_GPU },
	{ "gpus-local.json", { "gpus" }, { load_gpus }, COMPAT_TOPIC_GPU },
	{ "gc-ip.json", { "gc_ip" }, { load_gc }, COMPAT_TOPIC_GPU },
	{ "rocm.json", { "targets" }, { load_rocm }, COMPAT_TOPIC_GPU },
	{ "npus.json",
	  { "devices", "driver_protocols", "firmware_names",
	    "firmware_versions", "iommu_rules" },
	  { compat_load_npu_devices, compat_load_driver_protocols,
	    compat_load_firmware_names, compat_load_firmware_versions,
	    compat_load_iommu_rules },
	  COMPAT_TOPIC_NPU },
	{ "flm.json", { "runtimes" }, { compat_load_flm }, COMPAT_TOPIC_NPU },
	{ "kmsg.json", { "patterns" }, { compat_load_kmsg }, COMPAT_TOPIC_KMSG },
	{ "kmsg-local.json", { "patterns" }, { compat_load_kmsg },
	  COMPAT_TOPIC_KMSG },
	{ "nvidia.json", { "gpus", "cuda_runtimes" },
	  { compat_load_nvidia_gpus, compat_load_cuda_runtimes },
	  COMPAT_TOPIC_NVIDIA },
};

static int load_one(struct compat_db *db, const char *dir,
		    const struct compat_file *file, struct lemon_err *err)
{
	struct compat_field fields[COMPAT_MAX_SECTIONS + 1] = {
		{ "about", CF_STR, true, false }
	};
	struct compat_ctx ctx = { 0 };
	const cJSON *sec;
	size_t n = 1, i;
	cJSON *doc;
	int rc = 0;

	for (i = 0; i < COMPAT_MAX_SECTIONS && file->sections[i]; i++)
		fields[n++] = (struct compat_field){ file->sections[i], CF_OBJ,
						     true, false };
	if (compat_doc_load(&ctx, dir, file->name, COMPAT_FILE_MAX, fields, n,
			    &doc, err) < 0)
		return -1;
	for (i = 0; rc == 0 && i < COMPAT_MAX_SECTIONS && file->sections[i];
	     i++) {
		sec = cJSON_GetObjectItemCaseSensitive(doc, file->sections[i]);
		rc = file->load[i](db, &ctx, sec, err);
	}
	cJSON_Delete(doc);
	return rc;
}

int compat_db_load(const char *dir, struct compat_db **out,
		   struct lemon_err *err)
{
	return compat_db_load_topics(dir, COMPAT_TOPIC_ALL, out, err);
}

unsigned compat_topics_for(const struct detect_report *report)
{
	unsigned topics = 0;
	int i;

	for (i = 0; i < report->n_gpus; i++) {
		if (report->gpus[i].pci.vendor == 0x1002)
			topics |= COMPAT_TOPIC_GPU;
		if (report->gpus[i].pci.vendor == 0x10de)
			topics |= COMPAT_TOPIC_NVIDIA;
	}
	if (report->n_npus > 0)
		topics |= COMPAT_TOPIC_NPU;
	if (report->kmsg.n_lines > 0)
		topics |= COMPAT_TOPIC_KMSG;
	return topics;
}

int compat_db_load_topics(const char *dir, unsigned topics,
			  struct compat_db **out, struct lemon_err *err)
{
	struct compat_db *db;
	size_t i;

	if (!dir || !dir[0])
		dir = getenv("LEMON_COMPAT_DIR");
	if (!dir || !dir[0])
		dir = LEMON_DATADIR;
	db = calloc(1, sizeof(*db));
	if (!db)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	lemon_str_copy(db->dir, sizeof(db->dir), dir);
	for (i = 0; i < sizeof(compat_files) / sizeof(compat_files[0]); i++) {
		if (!(compat_files[i].topic & topics))
			continue;
		if (load_one(db, dir, &compat_files[i], err)) {
			lemon_err_prefix(err, "loading compat data");
			compat_db_free(db);
			return -1;
		}
	}
	*out = db;
	return 0;
}

void compat_db_free(struct compat_db *db)
{
	int i;

	if (!db)
		return;
	for (i = 0; i < db->n_gpus; i++)
		free(db->gpus[i].names);
	free(db->gpus);
	free(db->gc);
	free(db->rocm);
	free(db->npus);
	free(db->flm);
	free(db->drv);
	free(db->fwn);
	free(db->fwv);
	free(db->iommu);
	free(db->kmsg);
	free(db->nvidia);
	free(db->cuda);
	free(db);
}
