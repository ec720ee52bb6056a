/* GET /metrics: lemon's counters and histograms (server/stats.c), what the
 * supervisor has loaded and every fallback it took, and each ready
 * child's own llama-server metrics (--metrics) scraped over loopback and
 * re-exported under lemon_llamacpp_ with a model label, in the Prometheus
 * text format 0.0.4. docs/metrics.md says what each metric means. Behind
 * the API key like every route (the router checks it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/prom.h"
#include "server/server-private.h"

#define SCRAPE_MAX (1u << 20) /* of one child's answer */

static void head(struct server_prom_text *t, const char *name, const char *type,
		 const char *help)
{
	char line[512];

	snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	server_prom_puts(t, line);
}

/* name{k1="v1",k2="v2"} value: n label pairs */
static void sample(struct server_prom_text *t, const char *name, const char *const *kv, int n,
		   double v)
{
	char num[64];
	int i;

	server_prom_puts(t, name);
	for (i = 0; i < n; i++) {
		server_prom_puts(t, i == 0 ? "{" : ",");
		server_prom_puts(t, kv[2 * i]);
		server_prom_puts(t, "=\"");
		server_prom_label(t, kv[2 * i + 1]);
		server_prom_puts(t, "\"");
	}
	snprintf(num, sizeof(num), "%s %.17g\n", n ? "}" : "", v);
	server_prom_puts(t, num);
}

static void hist(struct server_prom_text *t, const char *name, const char *model,
		 const char *backend, const struct server_metrics_hist *h, const double *le)
{
	char bname[128], bound[32];
	uint64_t cum = 0;
	int i;

	snprintf(bname, sizeof(bname), "%s_bucket", name);
	for (i = 0; i < SERVER_METRICS_BUCKETS; i++) {
		const char *kv[] = { "model", model, "backend", backend, "le", bound };

		cum += h->bucket[i];
		if (i == SERVER_METRICS_BUCKETS - 1)
			snprintf(bound, sizeof(bound), "+Inf");
		else
			snprintf(bound, sizeof(bound), "%g", le[i]);
		sample(t, bname, kv, 3, (double)cum);
	}
	{
		const char *kv[] = { "model", model, "backend", backend };

		snprintf(bname, sizeof(bname), "%s_sum", name);
		sample(t, bname, kv, 2, h->sum);
		snprintf(bname, sizeof(bname), "%s_count", name);
		sample(t, bname, kv, 2, (double)h->count);
	}
}

/* the request counters, tokens and latency histograms (a copy taken
 * under the lock, so rendering does not hold it) */
static void own(struct server_prom_text *t, const struct server_metrics *m)
{
	int i, j;

	head(t, "lemon_requests_total", "counter",
	     "Requests answered, by route (the route table's name) and HTTP status.");
	for (i = 0; i < m->n_req; i++) {
		char code[8];
		const char *kv[] = { "route", m->req[i].route, "code", code };

		snprintf(code, sizeof(code), "%u", m->req[i].code);
		sample(t, "lemon_requests_total", kv, 2, (double)m->req[i].n);
	}
	head(t, "lemon_input_tokens_total", "counter", "Prompt tokens of answered requests, per model.");
	for (i = 0; i < m->n_model; i++) {
		const char *kv[] = { "model", m->model[i].model };
		double n = 0;

		for (j = 0; j < m->n_model; j++)
			if (strcmp(m->model[j].model, m->model[i].model) == 0) {
				if (j < i)
					break;
				n += (double)m->model[j].prompt_tokens;
			}
		if (j == m->n_model)
			sample(t, "lemon_input_tokens_total", kv, 1, n);
	}
	head(t, "lemon_output_tokens_total", "counter", "Generated tokens, per model.");
	for (i = 0; i < m->n_model; i++) {
		const char *kv[] = { "model", m->model[i].model };
		double n = 0;

		for (j = 0; j < m->n_model; j++)
			if (strcmp(m->model[j].model, m->model[i].model) == 0) {
				if (j < i)
					break;
				n += (double)m->model[j].completion_tokens;
			}
		if (j == m->n_model)
			sample(t, "lemon_output_tokens_total", kv, 1, n);
	}
	head(t, "lemon_time_to_first_token_seconds", "histogram",
	     "From a request's arrival to its first generated text, per model and backend.");
	for (i = 0; i < m->n_model; i++)
		hist(t, "lemon_time_to_first_token_seconds", m->model[i].model, m->model[i].backend,
		     &m->model[i].ttft, server_metrics_ttft_le);
	head(t, "lemon_tokens_per_second", "histogram",
	     "Generation speed of answered requests, per model and backend.");
	for (i = 0; i < m->n_model; i++)
		hist(t, "lemon_tokens_per_second", m->model[i].model, m->model[i].backend,
		     &m->model[i].tps, server_metrics_tps_le);
	head(t, "lemon_pulls_in_progress", "gauge", "Model pulls running now.");
	sample(t, "lemon_pulls_in_progress", NULL, 0, m->pulls_active);
	head(t, "lemon_pulls_total", "counter", "Model pulls started over the API.");
	sample(t, "lemon_pulls_total", NULL, 0, (double)m->pulls_total);
	head(t, "lemon_pull_bytes_total", "counter", "Bytes received by model pulls over the API.");
	sample(t, "lemon_pull_bytes_total", NULL, 0, (double)m->pull_bytes);
}

/* every bundle install of the process: the first run's, a fallback
 * candidate's on demand, and POST /api/v1/backends/install's (counted by
 * backends/install.c) */
static void installs(struct server_prom_text *t, const struct backends_install_counts *n)
{
	head(t, "lemon_backend_installs_in_progress", "gauge",
	     "Backend bundle installs running now (first run, fallback on demand, or the API).");
	sample(t, "lemon_backend_installs_in_progress", NULL, 0, n->in_progress);
	head(t, "lemon_backend_installs_completed_total", "counter",
	     "Backend bundle installs that installed their bundle.");
	sample(t, "lemon_backend_installs_completed_total", NULL, 0, (double)n->completed);
	head(t, "lemon_backend_installs_failed_total", "counter",
	     "Backend bundle installs that failed or were cancelled.");
	sample(t, "lemon_backend_installs_failed_total", NULL, 0, (double)n->failed);
	head(t, "lemon_backend_install_bytes_total", "counter",
	     "Bytes downloaded by backend bundle installs.");
	sample(t, "lemon_backend_install_bytes_total", NULL, 0, (double)n->bytes);
}

static const char *role_name(enum backends_role r)
{
	return r == BACKENDS_EMBED ? "embeddings" : r == BACKENDS_RERANK ? "rerank" : "chat";
}

/* what the supervisor holds: children by state, fallbacks */
static void supervisor(struct server_prom_text *t, const struct backends_status *st)
{
	int i, j;

	head(t, "lemon_model_loaded", "gauge",
	     "1 for each ready child: its model, role and the backend it runs on.");
	for (i = 0; i < st->n_children; i++) {
		const struct backends_child_status *c = &st->child[i];
		const char *kv[] = { "model", c->model, "role", role_name(c->role), "backend",
				     c->backend };

		if (strcmp(c->state, "ready") == 0)
			sample(t, "lemon_model_loaded", kv, 3, 1);
	}
	head(t, "lemon_child_restarts_total", "counter",
	     "Exits of a ready child (each restarts on the next request), per loaded model and role.");
	for (i = 0; i < st->n_children; i++) {
		const struct backends_child_status *c = &st->child[i];
		const char *kv[] = { "model", c->model, "role", role_name(c->role), "backend",
				     c->backend };

		sample(t, "lemon_child_restarts_total", kv, 3, c->crashes);
	}
	head(t, "lemon_fallbacks_total", "counter",
	     "Backend fallbacks in the kept history (the last " "16" "), by from, to and reason.");
	for (i = 0; i < st->n_fallbacks; i++) {
		const struct backends_fallback_status *f = &st->fallback[i];
		char reason[96];
		const char *kv[] = { "from", f->from, "to", f->to[0] ? f->to : "none", "reason",
				     reason };
		int n = 0;

		for (j = 0; j < st->n_fallbacks; j++) {
			const struct backends_fallback_status *g = &st->fallback[j];

			if (strcmp(g->from, f->from) == 0 && strcmp(g->to, f->to) == 0 &&
			    strncmp(g->reason, f->reason, sizeof(reason) - 1) == 0) {
				if (j < i)
					break;
				n++;
			}
		}
		if (j < st->n_fallbacks)
			continue;
		snprintf(reason, sizeof(reason), "%s", f->reason);
		sample(t, "lemon_fallbacks_total", kv, 3, n);
	}
}

static void children(struct server_prom_text *t, const struct backends_status *st)
{
	struct server_prom *p = malloc(sizeof(*p));
	int i;

	if (p == NULL)
		return;
	server_prom_init(p);
	for (i = 0; i < st->n_children; i++) {
		const struct backends_child_status *c = &st->child[i];
		char *body;

		if (strcmp(c->state, "ready") != 0 || c->port <= 0)
			continue;
		body = server_child_get(c->port, "/metrics", SCRAPE_MAX);
		if (body)
			server_prom_parse(p, body, strlen(body), c->model, role_name(c->role));
		free(body);
	}
	server_prom_render(p, t);
	server_prom_free(p);
	free(p);
}

enum server_result server_metrics_route(const struct server_call *k)
{
	struct server_prom_text t = { 0 };
	struct server_metrics *m = malloc(sizeof(*m));
	struct backends_status *st = malloc(sizeof(*st));
	struct server_response *r;
	enum server_result rc = SERVER_NO;

	if (m && st) {
		pthread_mutex_lock(&k->s->mu);
		*m = k->s->metrics;
		pthread_mutex_unlock(&k->s->mu);
		backends_snapshot(k->s->b, st);
		own(&t, m);
		installs(&t, &st->installs);
		supervisor(&t, st);
		children(&t, st);
	}
	free(m);
	free(st);
	if (t.failed || t.p == NULL) {
		free(t.p);
		return server_send_error(k->s, k->c, 500, "server_error", "internal_error",
					 "out of memory rendering /metrics");
	}
	r = server_response_from_buffer(t.len, t.p, SERVER_RESPMEM_MUST_COPY);
	free(t.p);
	if (r == NULL)
		return SERVER_NO;
	server_response_add_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	rc = server_queue_response(k->c, 200, r);
	server_response_destroy(r);
	return rc;
}
