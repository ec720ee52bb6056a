/* compat/flm.json (FastFlowLM's requirements) and the FastFlowLM candidate
 * for a machine's NPU. The candidate's reason is lemon's own NPU verdict
 * (compat/verdict.c) when that verdict fails, so the user sees the
 * firmware/driver fix rather than flm's "No NPU device found". The
 * firmware and kernel floors are the ones `flm validate` enforces. */
#include "compat/compat-private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/str.h"

static const struct compat_field flm_fields[] = {
	{ "min_version", CF_STR, true, false },
	{ "version_source", CF_STR, true, false },
	{ "generations", CF_ARR, true, false },
	{ "generations_source", CF_STR, true, false },
	{ "firmware_min", CF_STR, true, false },
	{ "firmware_fix", CF_STR, true, false },
	{ "kernel_min", CF_STR, true, false },
	{ "source", CF_STR, true, false },
	{ "install", CF_STR, true, false },
	{ "install_source", CF_STR, true, false },
	{ "memlock_fix", CF_STR, true, false },
	{ "memlock_source", CF_STR, true, false },
	{ "confidence", CF_STR, true, false },
	{ "note", CF_STR, false, false },
};

static int version_ok(const struct compat_ctx *ctx, const char *key,
		      const char *v, int min_parts, struct lemon_err *err)
{
	uint32_t parts[4];

	if (lemon_parse_version(v, strlen(v), parts, 4, NULL) < min_parts)
		return compat_bad(ctx, err, "malformed %s '%s'", key, v);
	return 0;
}

static int flm_parse(const struct compat_ctx *ctx, const cJSON *o,
		     struct compat_flm_rec *r, struct lemon_err *err)
{
	char conf[8];
	const cJSON *g;

	memset(r, 0, sizeof(*r));
	if (compat_check_keys(ctx, o, flm_fields,
			      sizeof(flm_fields) / sizeof(flm_fields[0]),
			      err) ||
	    compat_get_str(ctx, o, "min_version", r->min_version,
			   sizeof(r->min_version), err) ||
	    compat_get_str(ctx, o, "firmware_min", r->firmware_min,
			   sizeof(r->firmware_min), err) ||
	    compat_get_str(ctx, o, "kernel_min", r->kernel_min,
			   sizeof(r->kernel_min), err) ||
	    compat_get_str(ctx, o, "install", r->install, sizeof(r->install),
			   err) ||
	    compat_get_str(ctx, o, "firmware_fix", r->firmware_fix,
			   sizeof(r->firmware_fix), err) ||
	    compat_get_str(ctx, o, "memlock_fix", r->memlock_fix,
			   sizeof(r->memlock_fix), err) ||
	    compat_get_enum(ctx, o, "confidence", compat_confidences, conf,
			    sizeof(conf), err))
		return -1;
	if (version_ok(ctx, "min_version", r->min_version, 3, err) ||
	    version_ok(ctx, "firmware_min", r->firmware_min, 2, err))
		return -1;
	if (compat_kernel_parse(r->kernel_min, r->kernel, NULL))
		return compat_bad(ctx, err, "malformed kernel_min '%s'",
				  r->kernel_min);
	cJSON_ArrayForEach (
		g, cJSON_GetObjectItemCaseSensitive(o, "generations")) {
		if (!cJSON_IsString(g) || g->valuestring[0] == '\0' ||
		    strlen(g->valuestring) >= sizeof(r->generations[0]))
			return compat_bad(ctx, err,
					  "generations holds a non-name");
		if (r->n_generations >= COMPAT_FLM_MAX_GENERATIONS)
			return compat_bad(ctx, err, "too many generations");
		lemon_str_copy(r->generations[r->n_generations++],
			       sizeof(r->generations[0]), g->valuestring);
	}
	if (r->n_generations == 0)
		return compat_bad(ctx, err, "generations is empty");
	return 0;
}

int compat_load_flm(struct compat_db *db, const struct compat_ctx *fctx,
		    const cJSON *sec, struct lemon_err *err)
{
	struct compat_ctx ctx = *fctx;
	const cJSON *c;

	for (c = sec->child; c; c = c->next) {
		ctx.entry = c->string;
		if (strcmp(c->string, "fastflowlm") != 0)
			return compat_bad(&ctx, err, "unknown runtime");
		if (db->flm != NULL)
			return compat_bad(&ctx, err, "duplicate runtime");
		db->flm = calloc(1, sizeof(*db->flm));
		if (db->flm == NULL)
			return lemon_err_set(err, LEMON_ERR_INTERNAL,
					     "out of memory");
		if (!cJSON_IsObject(c))
			return compat_bad(&ctx, err, "not an object");
		if (flm_parse(&ctx, c, db->flm, err))
			return -1;
	}
	return 0;
}

/* -1, 0, 1 as a is below, equal to or above b (missing parts are 0) */
static int version_cmp(const char *a, const char *b)
{
	uint32_t pa[4] = { 0 }, pb[4] = { 0 };
	int i;

	lemon_parse_version(a, strlen(a), pa, 4, NULL);
	lemon_parse_version(b, strlen(b), pb, 4, NULL);
	for (i = 0; i < 4; i++)
		if (pa[i] != pb[i])
			return pa[i] < pb[i] ? -1 : 1;
	return 0;
}

static bool generation_listed(const struct compat_flm_rec *r, const char *g)
{
	int i;

	for (i = 0; i < r->n_generations; i++)
		if (strcmp(r->generations[i], g) == 0)
			return true;
	return false;
}

static void refuse(struct compat_candidate *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void refuse(struct compat_candidate *out, const char *fmt, ...)
{
	va_list ap;

	out->usable = false;
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}

/* the NPU side: generation, lemon's verdict, then flm validate's floors;
 * true when FastFlowLM's requirements on the NPU are met */
static bool npu_ready(const struct compat_flm_rec *r,
		      const struct detect_report *report,
		      const struct compat_npu *n, struct compat_candidate *out)
{
	const struct detect_npu *npu = &report->npus[n->index];
	const char *fw =
		npu->fw_version[0] ? npu->fw_version : n->firmware.version;
	uint32_t k[2];

	if (!n->known || !generation_listed(r, n->entry.generation)) {
		refuse(out,
		       "FastFlowLM serves XDNA2 NPUs only; this NPU (%s) is %s",
		       npu->pci.bdf,
		       n->known ? n->entry.generation : "not in compat data");
		return false;
	}
	if (n->status == COMPAT_FAIL) {
		refuse(out, "FastFlowLM cannot run until the NPU works: %.200s",
		       n->fix[0] ? n->fix : n->message);
		return false;
	}
	if (fw[0] && version_cmp(fw, r->firmware_min) < 0) {
		refuse(out,
		       "FastFlowLM needs NPU firmware %s or newer (flm validate); this NPU "
		       "runs %s: %.150s",
		       r->firmware_min, fw, r->firmware_fix);
		return false;
	}
	if (compat_kernel_parse(report->host.kernel, k, NULL) == 0 &&
	    (k[0] < r->kernel[0] ||
	     (k[0] == r->kernel[0] && k[1] < r->kernel[1]))) {
		refuse(out,
		       "FastFlowLM needs kernel %s or newer (flm validate); this machine "
		       "runs %s",
		       r->kernel_min, report->host.kernel);
		return false;
	}
	return true;
}

int compat_flm_candidate(const struct compat_db *db,
			 const struct detect_report *report,
			 const struct compat_view *view,
			 const struct detect_flm *flm,
			 struct compat_candidate *out, struct lemon_err *err)
{
	const struct compat_flm_rec *r = db->flm;
	const struct compat_npu *n;

	memset(out, 0, sizeof(*out));
	if (r == NULL || view->n_npus == 0)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     r ? "no NPU" : "no FastFlowLM data");
	n = &view->npus[0];
	lemon_str_copy(out->backend, sizeof(out->backend), "flm");
	lemon_str_copy(out->target, sizeof(out->target),
		       n->known ? n->entry.generation : "");
	out->gpu_index = -1;
	if (!npu_ready(r, report, n, out))
		return 0;
	if (!flm->found)
		refuse(out, "FastFlowLM (flm) is not installed: %.200s",
		       r->install);
	else if (flm->version[0] == '\0')
		refuse(out, "%.120s; %.120s", flm->error, r->install);
	else if (version_cmp(flm->version, r->min_version) < 0)
		refuse(out, "FastFlowLM %s (%.80s) is older than %s: %.150s",
		       flm->version, flm->path, r->min_version, r->install);
	else if (report->user.has_memlock && !report->user.memlock_unlimited) {
		/* usable, as the system section's memlock check only warns:
		 * flm raises its own soft limit up to the hard one, which
		 * lemon does not read, and a child that then fails to load
		 * falls back to the GGUF; the reason says what to set */
		size_t used;

		out->usable = true;
		snprintf(out->reason, sizeof(out->reason),
			 "FastFlowLM %s can serve on this NPU (%s); locked-memory limit %llu MiB: ",
			 flm->version, n->entry.generation,
			 (unsigned long long)(report->user.memlock_bytes >> 20));
		used = strlen(out->reason);
		lemon_str_copy(out->reason + used, sizeof(out->reason) - used,
			       r->memlock_fix);
	} else {
		out->usable = true;
		snprintf(out->reason, sizeof(out->reason),
			 "FastFlowLM %s can serve on this NPU (%s, %.120s)",
			 flm->version, n->entry.generation, flm->path);
	}
	return 0;
}
