/* runs detection, compat resolution, backend choice and the check table */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "doctor/doctor-private.h"
#include "util/str.h"

/* checks in the order their sections print */
static const struct doctor_checker checkers[] = {
	{ "system", doctor_check_system },   /* kernel log, iommu, memlock */
	{ "gpu", doctor_check_gpu },         /* driver, kfd, nodes, gfx sources */
	{ "nvidia", doctor_check_nvidia },   /* binding, uvm, nodes, driver, ICD */
	{ "npu", doctor_check_npu },         /* driver, firmware protocol, node */
	{ "vulkan", doctor_check_vulkan },   /* loader and devices */
	{ "backend", doctor_check_backend }, /* the recommended path */
};

struct doctor_check *doctor_add(struct doctor_result *res, const char *section,
				const char *id, enum doctor_status status,
				const char *fix, const char *fmt, ...)
{
	struct doctor_check *c;
	va_list ap;

	if (res->n_checks >= DOCTOR_MAX_CHECKS)
		return NULL;
	c = &res->checks[res->n_checks++];
	memset(c, 0, sizeof(*c));
	lemon_str_copy(c->section, sizeof(c->section), section);
	lemon_str_copy(c->id, sizeof(c->id), id);
	c->status = status;
	if (fix != NULL)
		lemon_str_copy(c->fix, sizeof(c->fix), fix);
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
	return c;
}

/* resolution, choice and checks over a finished detect report */
static int doctor_judge(const struct lemon_root *root,
			const struct compat_db *db,
			const struct detect_options *opts,
			struct doctor_result *out, struct lemon_err *err)
{
	size_t i;

	out->db = db;
	if (compat_resolve(db, root, &out->report, &out->view, err) < 0) {
		lemon_err_prefix(err, "resolving devices");
		doctor_result_free(out);
		return -1;
	}
	if (compat_pick_backend(db, &out->report, &out->view, &out->choice,
				err) < 0) {
		lemon_err_prefix(err, "choosing a backend");
		doctor_result_free(out);
		return -1;
	}
	/* flm is a host program: asked only where there is an NPU for it */
	if (out->report.n_npus > 0) {
		detect_flm_probe(&out->flm, opts ? opts->flm_installed : NULL);
		out->has_flm_candidate =
			compat_flm_candidate(db, &out->report, &out->view,
					     &out->flm, &out->flm_candidate,
					     NULL) == 0;
	}
	for (i = 0; i < sizeof(checkers) / sizeof(checkers[0]); i++)
		checkers[i].run(out);
	return 0;
}

int doctor_run(const struct lemon_root *root, const struct compat_db *db,
	       const struct detect_options *opts, struct doctor_result *out,
	       struct lemon_err *err)
{
	memset(out, 0, sizeof(*out));
	if (detect_run(root, opts, &out->report, err) < 0) {
		lemon_err_prefix(err, "detecting hardware");
		return -1;
	}
	return doctor_judge(root, db, opts, out, err);
}

int doctor_run_detect_first(const struct lemon_root *root,
			    const char *compat_dir,
			    const struct detect_options *opts,
			    struct doctor_result *out, struct lemon_err *err)
{
	memset(out, 0, sizeof(*out));
	if (detect_run(root, opts, &out->report, err) < 0) {
		lemon_err_prefix(err, "detecting hardware");
		return -1;
	}
	if (compat_db_load_topics(compat_dir, compat_topics_for(&out->report),
				  &out->owned_db, err) < 0) {
		doctor_result_free(out);
		return -1;
	}
	return doctor_judge(root, out->owned_db, opts, out, err);
}

void doctor_result_free(struct doctor_result *res)
{
	detect_report_free(&res->report);
	compat_db_free(res->owned_db);
	res->owned_db = NULL;
}

bool doctor_degraded(const struct doctor_result *res)
{
	int i;

	for (i = 0; i < res->n_checks; i++)
		if (res->checks[i].status == DOCTOR_FAIL)
			return true;
	return false;
}

const char *doctor_status_name(enum doctor_status st)
{
	switch (st) {
	case DOCTOR_OK:
		return "ok";
	case DOCTOR_WARN:
		return "warn";
	case DOCTOR_FAIL:
		return "fail";
	case DOCTOR_SKIP:
		return "skip";
	case DOCTOR_UNKNOWN:
		return "unknown";
	}
	return "skip";
}

void doctor_format_bytes(uint64_t bytes, char *out, size_t cap)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024.0 && u < 4) {
		v /= 1024.0;
		u++;
	}
	snprintf(out, cap, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}
