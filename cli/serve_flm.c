/* serve's FastFlowLM side: the registry's flm models and whether flm can
 * serve on this machine's NPU, as doctor judged it (the flm candidate of
 * the detection answer, so a recorded tree given with --sysroot decides
 * it the same way `lemon doctor --sysroot` does) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "backends/flm.h"
#include "cli/cli.h"
#include "compat/compat.h"
#include "util/str.h"

/* the flm candidate of doctor's JSON: its path when usable, else why not */
static void flm_verdict(const char *sysinfo, struct backends_flm_opts *o)
{
	cJSON *root = sysinfo ? cJSON_Parse(sysinfo) : NULL, *c;
	const cJSON *cands;

	lemon_str_copy(o->refusal, sizeof(o->refusal),
		       "no NPU was found (see lemon doctor)");
	cands = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(root, "backend"),
		"candidates");
	cJSON_ArrayForEach (c, cands) {
		const cJSON *be =
			cJSON_GetObjectItemCaseSensitive(c, "backend");
		const cJSON *path = cJSON_GetObjectItemCaseSensitive(c, "path");
		const cJSON *reason =
			cJSON_GetObjectItemCaseSensitive(c, "reason");

		if (!cJSON_IsString(be) || strcmp(be->valuestring, "flm") != 0)
			continue;
		if (cJSON_IsTrue(
			    cJSON_GetObjectItemCaseSensitive(c, "usable")) &&
		    cJSON_IsString(path))
			lemon_str_copy(o->exe, sizeof(o->exe),
				       path->valuestring);
		else if (cJSON_IsString(reason))
			lemon_str_copy(o->refusal, sizeof(o->refusal),
				       reason->valuestring);
		break;
	}
	cJSON_Delete(root);
}

int cli_serve_flm(struct backends *b, const char *sysinfo,
		  const char *compat_dir, struct lemon_err *err)
{
	struct backends_flm_opts *o = calloc(1, sizeof(*o));
	struct compat_models *reg = NULL;
	int i, rc = 0;

	if (o == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	/* a broken registry is reported where models are pulled; serving
	 * GGUF models does not depend on it */
	if (compat_models_load(compat_dir, NULL, &reg, NULL) == 0) {
		for (i = 0; i < reg->n; i++) {
			const struct compat_model *m = &reg->m[i];
			struct backends_flm_model *fm;

			if (strcmp(m->recipe, "flm") != 0 ||
			    o->n_models == BACKENDS_MAX_FLM_MODELS)
				continue;
			fm = &o->models[o->n_models++];
			lemon_str_copy(fm->name, sizeof(fm->name), m->name);
			lemon_str_copy(fm->gguf, sizeof(fm->gguf), m->gguf);
		}
		compat_models_free(reg);
	}
	if (o->n_models > 0) {
		flm_verdict(sysinfo, o);
		if (o->exe[0])
			fprintf(stderr,
				"lemon: FastFlowLM models on the NPU with %s\n",
				o->exe);
		else
			fprintf(stderr,
				"lemon: FastFlowLM models cannot run on the NPU: %s\n",
				o->refusal);
		rc = backends_flm_setup(b, o, err);
	}
	free(o);
	return rc;
}
