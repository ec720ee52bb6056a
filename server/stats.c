/* what was served: the last proxied request (GET /api/v1/stats) and the
 * counters and histograms GET /metrics renders (server/metrics_route.c).
 * A leaf: the router and the upstream client record here, nothing here
 * calls back. */
#include <string.h>

#include "server/server-private.h"
#include "util/str.h"

const double server_metrics_ttft_le[SERVER_METRICS_BUCKETS - 1] = {
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};
const double server_metrics_tps_le[SERVER_METRICS_BUCKETS - 1] = {
	1, 2, 5, 10, 20, 50, 100, 200, 500, 1000,
};

static void observe(struct server_metrics_hist *h, const double *le, double v)
{
	int i = 0;

	while (i < SERVER_METRICS_BUCKETS - 1 && v > le[i])
		i++;
	h->bucket[i]++;
	h->sum += v;
	h->count++;
}

/* the entry of (model, backend), made when there is room; NULL when the
 * table is full (the request is then not broken down by model) */
static int model_entry(struct server_metrics *m, const char *model, const char *backend)
{
	int i;

	for (i = 0; i < m->n_model; i++)
		if (strcmp(m->model[i].model, model) == 0 &&
		    strcmp(m->model[i].backend, backend) == 0)
			return i;
	if (m->n_model == SERVER_METRICS_MODEL_MAX)
		return -1;
	i = m->n_model++;
	lemon_str_copy(m->model[i].model, sizeof(m->model[i].model), model);
	lemon_str_copy(m->model[i].backend, sizeof(m->model[i].backend), backend);
	return i;
}

void server_stats_record(struct server *s, const struct server_stats *st)
{
	struct server_metrics *m = &s->metrics;
	int i;

	pthread_mutex_lock(&s->mu);
	s->last = *st;
	i = st->model[0] && st->backend[0] ? model_entry(m, st->model, st->backend) : -1;
	if (i >= 0) {
		m->model[i].prompt_tokens += st->prompt_tokens > 0 ? (uint64_t)st->prompt_tokens : 0;
		m->model[i].completion_tokens +=
			st->completion_tokens > 0 ? (uint64_t)st->completion_tokens : 0;
		if (st->ok && st->ttft_ms > 0)
			observe(&m->model[i].ttft, server_metrics_ttft_le, st->ttft_ms / 1000);
		if (st->ok && st->tokens_per_second > 0)
			observe(&m->model[i].tps, server_metrics_tps_le, st->tokens_per_second);
	}
	pthread_mutex_unlock(&s->mu);
}

void server_metrics_request(struct server *s, const char *route, unsigned code)
{
	struct server_metrics *m = &s->metrics;
	int i;

	pthread_mutex_lock(&s->mu);
	for (i = 0; i < m->n_req; i++)
		if (m->req[i].code == code && strcmp(m->req[i].route, route) == 0)
			break;
	if (i == m->n_req && m->n_req < SERVER_METRICS_REQ_MAX) {
		m->n_req++;
		lemon_str_copy(m->req[i].route, sizeof(m->req[i].route), route);
		m->req[i].code = code;
	}
	if (i < m->n_req)
		m->req[i].n++;
	pthread_mutex_unlock(&s->mu);
}

void server_metrics_pull(struct server *s, int delta, uint64_t bytes)
{
	pthread_mutex_lock(&s->mu);
	s->metrics.pulls_active += delta;
	if (delta > 0)
		s->metrics.pulls_total++;
	s->metrics.pull_bytes += bytes;
	pthread_mutex_unlock(&s->mu);
}
