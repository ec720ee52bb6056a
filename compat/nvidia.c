/* NVIDIA data and resolution: compat/nvidia.json (PCI id -> architecture
 * and compute capability; CUDA runtime major -> oldest driver and oldest
 * compute capability), and what they say about one detected GPU. The CUDA
 * driver's own answer (detect/cuda.c) wins over the table, as KFD wins
 * over the AMD table; when both answer and differ, both are reported. */
#include "compat/compat-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/str.h"

static const char *const nv_kinds[] = {"igpu", "dgpu", "accelerator", NULL};

static const struct compat_field nv_fields[] = {
	{"arch", CF_STR, true},	 {"cc", CF_STR, true},
	{"kind", CF_STR, true},	 {"name", CF_STR, false},
	{"chip", CF_STR, false}, {"confidence", CF_STR, true},
	{"note", CF_STR, false}, {"source", CF_STR, true},
};

/* "M.m": a compute capability as NVIDIA writes it (1-2 digit parts) */
static bool cc_parse(const char *s, int *major, int *minor)
{
	uint64_t a, b;
	const char *dot = strchr(s, '.');

	if (dot == NULL || dot == s || dot - s > 2 || strlen(dot + 1) == 0 ||
	    strlen(dot + 1) > 2 ||
	    lemon_parse_u64(s, (size_t)(dot - s), 10, 99, &a, NULL) ||
	    lemon_parse_u64(dot + 1, strlen(dot + 1), 10, 99, &b, NULL))
		return false;
	*major = (int)a;
	*minor = (int)b;
	return true;
}

static int nv_parse(const struct compat_ctx *ctx, const cJSON *o,
		    struct compat_nvidia_rec *r, struct lemon_err *err)
{
	struct compat_nvidia_entry *e = &r->e;
	uint32_t v, d;
	int ma, mi;

	if (strlen(ctx->entry) != 9 || ctx->entry[4] != ':' ||
	    compat_parse_hex_id(ctx->entry, 4, 4, &v) ||
	    compat_parse_hex_id(ctx->entry + 5, 4, 4, &d) || v != 0x10de)
		return compat_bad(
			ctx, err,
			"malformed id (want 10de:dddd in lower-case hex)");
	r->device = (uint16_t)d;
	if (compat_check_keys(ctx, o, nv_fields,
			      sizeof(nv_fields) / sizeof(nv_fields[0]), err) ||
	    compat_get_str(ctx, o, "arch", e->arch, sizeof(e->arch), err) ||
	    compat_get_str(ctx, o, "cc", e->cc, sizeof(e->cc), err) ||
	    compat_get_enum(ctx, o, "kind", nv_kinds, e->kind, sizeof(e->kind),
			    err) ||
	    compat_get_str(ctx, o, "name", e->name, sizeof(e->name), err) ||
	    compat_get_str(ctx, o, "chip", e->chip, sizeof(e->chip), err) ||
	    compat_get_enum(ctx, o, "confidence", compat_confidences,
			    e->confidence, sizeof(e->confidence), err))
		return -1;
	if (!cc_parse(e->cc, &ma, &mi))
		return compat_bad(ctx, err, "malformed cc '%s' (want M.m)",
				  e->cc);
	return 0;
}

int compat_load_nvidia_gpus(struct compat_db *db, const struct compat_ctx *fctx,
			    const cJSON *sec, struct lemon_err *err)
{
	struct compat_ctx ctx = *fctx;
	const cJSON *c;
	int i;

	db->nvidia = calloc((size_t)cJSON_GetArraySize(sec) + 1,
			    sizeof(*db->nvidia));
	if (!db->nvidia)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	for (c = sec->child; c; c = c->next) {
		ctx.entry = c->string;
		if (nv_parse(&ctx, c, &db->nvidia[db->n_nvidia], err))
			return -1;
		for (i = 0; i < db->n_nvidia; i++)
			if (db->nvidia[i].device ==
			    db->nvidia[db->n_nvidia].device)
				return compat_bad(&ctx, err, "duplicate id");
		db->n_nvidia++;
	}
	return 0;
}

static const struct compat_field rt_fields[] = {
	{"min_driver", CF_STR, true}, {"min_cc", CF_STR, true},
	{"confidence", CF_STR, true}, {"note", CF_STR, false},
	{"source", CF_STR, true},
};

int compat_load_cuda_runtimes(struct compat_db *db,
			      const struct compat_ctx *fctx, const cJSON *sec,
			      struct lemon_err *err)
{
	struct compat_ctx ctx = *fctx;
	const cJSON *c;
	char conf[8];
	uint64_t major;
	int i, cmp, ma, mi;

	db->cuda =
		calloc((size_t)cJSON_GetArraySize(sec) + 1, sizeof(*db->cuda));
	if (!db->cuda)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	for (c = sec->child; c; c = c->next) {
		struct compat_cuda_runtime *r = &db->cuda[db->n_cuda];

		ctx.entry = c->string;
		if (lemon_parse_u64(c->string, strlen(c->string), 10, 99,
				    &major, NULL) ||
		    major == 0)
			return compat_bad(
				&ctx, err,
				"malformed CUDA major version (want 1-99)");
		r->major = (int)major;
		if (compat_check_keys(&ctx, c, rt_fields,
				      sizeof(rt_fields) / sizeof(rt_fields[0]),
				      err) ||
		    compat_get_str(&ctx, c, "min_driver", r->min_driver,
				   sizeof(r->min_driver), err) ||
		    compat_get_str(&ctx, c, "min_cc", r->min_cc,
				   sizeof(r->min_cc), err) ||
		    compat_get_enum(&ctx, c, "confidence", compat_confidences,
				    conf, sizeof(conf), err))
			return -1;
		if (compat_driver_version_cmp(r->min_driver, r->min_driver,
					      &cmp, NULL) < 0)
			return compat_bad(&ctx, err,
					  "malformed min_driver '%s'",
					  r->min_driver);
		if (!cc_parse(r->min_cc, &ma, &mi))
			return compat_bad(&ctx, err, "malformed min_cc '%s'",
					  r->min_cc);
		for (i = 0; i < db->n_cuda; i++)
			if (db->cuda[i].major == r->major)
				return compat_bad(&ctx, err,
						  "duplicate CUDA major");
		db->n_cuda++;
	}
	return 0;
}

int compat_nvidia_lookup(const struct compat_db *db, uint16_t device,
			 struct compat_nvidia_entry *out, struct lemon_err *err)
{
	int i;

	for (i = 0; i < db->n_nvidia; i++)
		if (db->nvidia[i].device == device) {
			*out = db->nvidia[i].e;
			return 0;
		}
	return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			     "10de:%04x not in lemon's NVIDIA table", device);
}

int compat_cuda_runtime_lookup(const struct compat_db *db, int major,
			       struct compat_cuda_runtime *out,
			       struct lemon_err *err)
{
	int i;

	for (i = 0; i < db->n_cuda; i++)
		if (db->cuda[i].major == major) {
			*out = db->cuda[i];
			return 0;
		}
	return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			     "CUDA %d is not in lemon's CUDA runtime table",
			     major);
}

int compat_driver_version_cmp(const char *a, const char *b, int *cmp,
			      struct lemon_err *err)
{
	uint32_t pa[4] = {0}, pb[4] = {0};
	int na, nb, i;

	na = lemon_parse_version(a, strlen(a), pa, 4, NULL);
	nb = lemon_parse_version(b, strlen(b), pb, 4, NULL);
	if (na < 1 || nb < 1 || strspn(a, "0123456789.") != strlen(a) ||
	    strspn(b, "0123456789.") != strlen(b))
		return lemon_err_set(
			err, LEMON_ERR_INVALID_DATA,
			"driver version '%.32s' or '%.32s' is not dotted decimal",
			a, b);
	*cmp = 0;
	for (i = 0; i < 4 && *cmp == 0; i++)
		*cmp = pa[i] < pb[i] ? -1 : pa[i] > pb[i] ? 1 : 0;
	return 0;
}

const char *compat_nvidia_arch_of_cc(int major, int minor)
{
	/* NVIDIA's own naming per compute capability major (CUDA C++
	 * Programming Guide, "Compute Capability"); 8.9 is Ada, not Ampere */
	switch (major) {
	case 7:
		return minor >= 5 ? "Turing" : "Volta";
	case 8:
		return minor == 9 ? "Ada Lovelace" : "Ampere";
	case 9:
		return "Hopper";
	case 10:
	case 11:
	case 12:
		return "Blackwell";
	default:
		return NULL;
	}
}

/* the live CUDA device of this GPU, NULL when the driver did not answer */
static const struct detect_cuda_device *
cuda_dev(const struct detect_report *report, const struct detect_gpu *gpu)
{
	if (gpu->cuda_index < 0 || gpu->cuda_index >= report->cuda.n_devices)
		return NULL;
	return &report->cuda.devices[gpu->cuda_index];
}

void compat_resolve_nvidia(const struct compat_db *db,
			   const struct detect_report *report,
			   const struct detect_gpu *gpu, struct compat_gpu *g)
{
	const struct detect_cuda_device *d = cuda_dev(report, gpu);
	struct compat_nvidia_entry e;
	bool in_table;
	const char *arch;
	int ma = -1, mi = -1;

	in_table = compat_nvidia_lookup(db, gpu->pci.device, &e, NULL) == 0;
	lemon_str_copy(g->kind, sizeof(g->kind), in_table ? e.kind : "dgpu");
	if (g->name[0])
		lemon_str_copy(g->name_source, sizeof(g->name_source),
			       "pci.ids");
	if (d != NULL && d->name[0]) {
		lemon_str_copy(g->name, sizeof(g->name), d->name);
		lemon_str_copy(g->name_source, sizeof(g->name_source), "cuda");
	} else if (in_table && e.name[0] && !g->name[0]) {
		lemon_str_copy(g->name, sizeof(g->name), e.name);
		lemon_str_copy(g->name_source, sizeof(g->name_source),
			       "pci_table");
	}
	if (d != NULL && d->cc_major >= 0) {
		ma = d->cc_major;
		mi = d->cc_minor;
		lemon_str_copy(g->cc_source, sizeof(g->cc_source), "cuda");
		/* attributes are small numbers; 99.99 fits g->cc */
		snprintf(g->cc, sizeof(g->cc), "%d.%d", ma % 100, mi % 100);
		if (in_table && strcmp(e.cc, g->cc) != 0)
			snprintf(g->cc_disagreement, sizeof(g->cc_disagreement),
				 "cuda says %s, pci_table says %s", g->cc,
				 e.cc);
	} else if (in_table && cc_parse(e.cc, &ma, &mi)) {
		lemon_str_copy(g->cc_source, sizeof(g->cc_source), "pci_table");
		lemon_str_copy(g->cc, sizeof(g->cc), e.cc);
	}
	if (ma < 0) {
		snprintf(
			g->note, sizeof(g->note),
			"10de:%04x is not in lemon's table and the CUDA driver did not "
			"answer; compute capability unknown",
			gpu->pci.device);
		return;
	}
	snprintf(g->sm, sizeof(g->sm), "sm_%d%d", ma % 100, mi % 100);
	/* the table's name when it agrees with the answer, else the name
	 * of the compute capability's family */
	arch = in_table && strcmp(e.cc, g->cc) == 0
		       ? e.arch
		       : compat_nvidia_arch_of_cc(ma, mi);
	lemon_str_copy(g->arch, sizeof(g->arch), arch ? arch : "");
}

/* the sm list of every CUDA bundle, for messages */
static void list_targets(const struct compat_backends *bm, char *out,
			 size_t cap)
{
	size_t len = 0;
	int i, w;

	out[0] = '\0';
	for (i = 0; i < bm->n; i++) {
		if (strcmp(bm->a[i].kind, "cuda") != 0)
			continue;
		w = snprintf(out + len, cap - len, "%s%s", len ? ", " : "",
			     bm->a[i].family);
		if (w < 0 || (size_t)w >= cap - len)
			return;
		len += (size_t)w;
	}
}

int compat_cuda_need(const struct compat_db *db, const char *sm,
		     struct compat_cuda_need *out, struct lemon_err *err)
{
	const struct compat_backend_asset *a;
	struct compat_backends *bm = NULL;
	struct compat_cuda_runtime rt;
	uint32_t v[2];
	int rc;

	memset(out, 0, sizeof(*out));
	if (db == NULL || sm == NULL)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "compat_cuda_need needs a database and a target");
	if (compat_backends_load(db->dir[0] ? db->dir : NULL, &bm, err) < 0)
		return -1;
	list_targets(bm, out->targets, sizeof(out->targets));
	rc = compat_backend_find(bm, "cuda", sm, &a, err);
	if (rc == 0) {
		lemon_str_copy(out->bundle, sizeof(out->bundle), a->name);
		lemon_str_copy(out->runtime, sizeof(out->runtime),
			       a->cuda_runtime);
		if (lemon_parse_version(a->cuda_runtime,
					strlen(a->cuda_runtime), v, 2,
					NULL) >= 1 &&
		    compat_cuda_runtime_lookup(db, (int)v[0], &rt, NULL) == 0)
			lemon_str_copy(out->min_driver, sizeof(out->min_driver),
				       rt.min_driver);
	}
	compat_backends_free(bm);
	return rc;
}
