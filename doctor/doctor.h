/* doctor: turns detection facts and compat verdicts into checks, each with
 * a status, a specific message and the exact fix, and renders the report as
 * text or as the JSON contract of `lemon doctor --json` / system-info. */
#ifndef LEMON_DOCTOR_H
#define LEMON_DOCTOR_H

#include <stdbool.h>
#include <stdio.h>

#include "compat/compat.h"
#include "detect/detect.h"
#include "util/err.h"

enum doctor_status {
	DOCTOR_OK = 0,
	DOCTOR_WARN,
	DOCTOR_FAIL,
	DOCTOR_SKIP,
	/* the fact could not be established (a recording without node
	 * permissions): neither a pass nor a problem */
	DOCTOR_UNKNOWN,
};

#define DOCTOR_MAX_CHECKS 48

struct doctor_check {
	char id[32];       /* "iommu", "kfd-access", "npu:0000:c6:00.1" */
	char section[16];  /* "system", "gpu", "npu", "backend" */
	enum doctor_status status;
	char message[320];
	char fix[256];     /* "" when there is nothing to do */
};

struct doctor_result {
	const struct compat_db *db; /* not owned, unless owned_db is set */
	struct compat_db *owned_db;
	struct detect_report report;
	struct compat_view view;
	struct compat_choice choice;
	/* FastFlowLM on the NPU: probed only when the machine has an NPU */
	struct detect_flm flm;
	bool has_flm_candidate;
	struct compat_candidate flm_candidate;
	int n_checks;
	struct doctor_check checks[DOCTOR_MAX_CHECKS];
};

/* detects, resolves and checks; the caller owns *out (free with
 * doctor_result_free). Fails only when nothing could be produced. */
int doctor_run(const struct lemon_root *root, const struct compat_db *db,
	       const struct detect_options *opts, struct doctor_result *out,
	       struct lemon_err *err);
void doctor_result_free(struct doctor_result *res);

/* like doctor_run, but loads only the compat data the detected hardware
 * needs from compat_dir (NULL: the default); the result owns that data */
int doctor_run_detect_first(const struct lemon_root *root,
			    const char *compat_dir,
			    const struct detect_options *opts,
			    struct doctor_result *out, struct lemon_err *err);

/* true when a problem degrades the recommended path (any failed check) */
bool doctor_degraded(const struct doctor_result *res);

const char *doctor_status_name(enum doctor_status st);

/* the JSON contract (schema 1) as a string owned by the caller (free()) */
char *doctor_to_json(const struct doctor_result *res, bool pretty);

/* readable sections with ok/warn/fail marks; color when use_color */
void doctor_print_text(const struct doctor_result *res, FILE *out,
		       bool use_color);

#endif
