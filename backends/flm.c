/* FastFlowLM children: the candidate, flm serve's command line and the
 * one-NPU-child rule. The command line is Lemonade's flm recipe (`flm serve
 * <model> --ctx-len N --port P --host 127.0.0.1 --quiet`); readiness is
 * GET /api/tags answering 200, as Lemonade polls it (flm has no /health). */
#include "backends/flm-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"

int backends_flm_setup(struct backends *b, const struct backends_flm_opts *o,
		       struct lemon_err *err)
{
	struct backends_flm_state *st;
	int i;

	for (i = 0; i < o->n_models; i++)
		if (!backends_model_name_valid(o->models[i].name) ||
		    (o->models[i].gguf[0] &&
		     !backends_model_name_valid(o->models[i].gguf)))
			return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
					     "bad flm model name '%s'",
					     o->models[i].name);
	if (o->exe[0] && b->o.n_candidates >= BACKENDS_MAX_CANDIDATES)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "no candidate slot left for flm");
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	st->o = *o;
	st->cand = -1;
	pthread_mutex_lock(&b->mu);
	if (o->exe[0]) {
		struct backends_candidate *c = &b->o.cand[b->o.n_candidates];

		memset(c, 0, sizeof(*c));
		lemon_str_copy(c->kind, sizeof(c->kind), "flm");
		lemon_str_copy(c->exe, sizeof(c->exe), o->exe);
		st->cand = b->o.n_candidates++;
	}
	free(b->flm);
	b->flm = st;
	pthread_mutex_unlock(&b->mu);
	return 0;
}

bool backends_flm_cand(const struct backends *b, int cand)
{
	return b->flm != NULL && b->flm->cand >= 0 && cand == b->flm->cand;
}

const struct backends_flm_model *backends_flm_find(const struct backends *b,
						   const char *model)
{
	int i;

	if (b->flm == NULL)
		return NULL;
	for (i = 0; i < b->flm->o.n_models; i++)
		if (strcmp(b->flm->o.models[i].name, model) == 0)
			return &b->flm->o.models[i];
	return NULL;
}

int backends_flm_first(const struct backends *b, const char *model, int dflt)
{
	if (b->flm != NULL && b->flm->cand >= 0 && backends_flm_find(b, model))
		return b->flm->cand;
	return dflt;
}

int backends_flm_argv(const struct backends_spawn *s, const char **argv,
		      char *port, size_t port_cap, char *ctx, size_t ctx_cap)
{
	int n = 0;

	snprintf(port, port_cap, "%d", s->port);
	argv[n++] = s->exe;
	argv[n++] = "serve";
	argv[n++] = s->alias;
	if (s->ctx_size > 0) {
		snprintf(ctx, ctx_cap, "%d", s->ctx_size);
		argv[n++] = "--ctx-len";
		argv[n++] = ctx;
	}
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--host";
	argv[n++] = "127.0.0.1";
	argv[n++] = "--quiet";
	argv[n] = NULL;
	return n;
}

bool backends_flm_make_room(struct backends *b, const char *model)
{
	bool clear = true;
	int i;

	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		struct backends_sup_child *c = &b->child[i];

		if (c->state == BACKENDS_SUP_UNUSED ||
		    !backends_flm_cand(b, c->cand) ||
		    strcmp(c->model, model) == 0)
			continue;
		if (c->proc.pid <= 0 && c->state != BACKENDS_SUP_STOPPING) {
			/* no process: the slot goes at once */
			if (c->leases == 0)
				backends_sup_stop_child(b, c, true);
			continue;
		}
		clear = false;
		if (c->leases == 0 && c->state != BACKENDS_SUP_STOPPING) {
			backends_sup_log(
				b,
				"unloading %s from the NPU to load %s (one NPU model at a time)",
				c->model, model);
			backends_sup_stop_child(b, c, true);
		}
	}
	return clear;
}

int backends_flm_list(struct backends *b, struct backends_flm_listed *out,
		      int cap)
{
	struct backends_flm_model *m = NULL;
	char path[4200];
	int i, nm = 0, n = 0;
	bool npu;

	if (b == NULL)
		return 0;
	/* copied under the lock, the store is read without it */
	pthread_mutex_lock(&b->mu);
	if (b->flm != NULL && b->flm->o.n_models > 0 &&
	    (m = calloc((size_t)b->flm->o.n_models, sizeof(*m))) != NULL) {
		nm = b->flm->o.n_models;
		memcpy(m, b->flm->o.models, (size_t)nm * sizeof(*m));
	}
	npu = b->flm != NULL && b->flm->cand >= 0;
	pthread_mutex_unlock(&b->mu);
	for (i = 0; i < nm && n < cap; i++) {
		if (!npu && (!m[i].gguf[0] ||
			     backends_model_path(b->data_dir, m[i].gguf, path,
						 sizeof(path), NULL) < 0))
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		lemon_str_copy(out[n].name, sizeof(out[n].name), m[i].name);
		lemon_str_copy(out[n].gguf, sizeof(out[n].gguf), m[i].gguf);
		out[n++].npu = npu;
	}
	free(m);
	return n;
}

void backends_flm_free(struct backends *b)
{
	free(b->flm);
	b->flm = NULL;
}
