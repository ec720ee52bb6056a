/* NPU checks: the verdict compat reached (generation, driver binding,
 * firmware protocol) and access to the accel node */
#include <stdio.h>
#include <string.h>

#include "doctor/doctor-private.h"

static enum doctor_status from_compat(enum compat_status st)
{
	switch (st) {
	case COMPAT_OK:
		return DOCTOR_OK;
	case COMPAT_WARN:
		return DOCTOR_WARN;
	case COMPAT_FAIL:
		return DOCTOR_FAIL;
	}
	return DOCTOR_FAIL;
}

/* FastFlowLM opens the first NPU's node: a node this user cannot open
 * refuses the candidate with that check's fix */
static void flm_needs_node(struct doctor_result *res, int check)
{
	struct compat_candidate *f = &res->flm_candidate;
	const struct doctor_check *c;

	if (!res->has_flm_candidate || !f->usable || check < 0)
		return;
	c = &res->checks[check];
	if (c->status != DOCTOR_FAIL)
		return;
	f->usable = false;
	snprintf(f->reason, sizeof(f->reason),
		 "FastFlowLM cannot run: %.110s%s%.120s", c->message,
		 c->fix[0] ? "; " : "", c->fix);
}

void doctor_check_npu(struct doctor_result *res)
{
	int i, node_check = -1;

	for (i = 0; i < res->view.n_npus; i++) {
		const struct compat_npu *cn = &res->view.npus[i];
		const struct detect_npu *n = &res->report.npus[cn->index];
		const struct detect_node *node;
		char id[32], rel[48], path[48];

		snprintf(id, sizeof(id), "npu:%s", n->pci.bdf);
		doctor_add(res, "npu", id, from_compat(cn->status),
			   cn->fix[0] ? cn->fix : NULL, "%s", cn->message);
		if (n->accel_node[0] == '\0')
			continue;
		snprintf(rel, sizeof(rel), "accel/%s", n->accel_node);
		snprintf(id, sizeof(id), "accel:%s", n->accel_node);
		node = detect_find_node(&res->report, rel);
		detect_root_display(DETECT_BASE_DEV, rel, path, sizeof(path));
		if (i == 0)
			node_check = res->n_checks;
		/* the node's access is judged here and only here: the NPU
		 * verdict above speaks of driver and firmware */
		if (node == NULL || !node->exists)
			doctor_add(res, "npu", id, DOCTOR_FAIL,
				   "check that udev runs and 'ls -l /dev/accel'",
				   "%s is missing although amdxdna bound the NPU",
				   path);
		else
			doctor_check_node(res, "npu", id, rel);
	}
	/* the section ends with what will run on the NPU; a refusal warns
	 * (the NPU verdict above already fails when the NPU is broken) */
	if (node_check >= res->n_checks)
		node_check = -1; /* the table was full */
	flm_needs_node(res, node_check);
	if (res->has_flm_candidate)
		doctor_add(res, "npu", "flm",
			   res->flm_candidate.usable ? DOCTOR_OK : DOCTOR_WARN,
			   NULL, "%s", res->flm_candidate.reason);
}
