/* the event queue between a route's worker thread and its streamed
 * answer (server/events.h); a leaf that the pull and backend-install
 * routes call */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/events.h"
#include "util/cond.h"

void server_events_init(struct server_events *q, bool sse)
{
	memset(q, 0, sizeof(*q));
	q->sse = sse;
	pthread_mutex_init(&q->mu, NULL);
	lemon_cond_init(&q->cv); /* waited on with a timeout */
}

void server_events_destroy(struct server_events *q)
{
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q->out);
	q->out = NULL;
}

void server_events_push(struct server_events *q, cJSON *ev)
{
	char *t = cJSON_PrintUnformatted(ev);
	size_t n = t ? strlen(t) : 0, need = n + 16;

	cJSON_Delete(ev);
	if (t == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	if (q->len + need > q->cap) {
		size_t cap = q->cap ? q->cap : 4096;
		char *p;

		while (cap < q->len + need)
			cap *= 2;
		p = realloc(q->out, cap);
		if (p) {
			q->out = p;
			q->cap = cap;
		}
	}
	if (q->len + need <= q->cap) {
		if (q->sse) {
			memcpy(q->out + q->len, "data: ", 6);
			q->len += 6;
		}
		memcpy(q->out + q->len, t, n);
		q->len += n;
		memcpy(q->out + q->len, q->sse ? "\n\n" : "\n", q->sse ? 2 : 1);
		q->len += q->sse ? 2 : 1;
	}
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	free(t);
}

void server_events_end(struct server_events *q)
{
	pthread_mutex_lock(&q->mu);
	q->done = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

/* one wait of at most 200 ms under mu, then idle with mu released */
static void wait_locked(struct server_events *q, void (*idle)(void *ctx),
			void *ctx)
{
	lemon_cond_wait_ms(&q->cv, &q->mu, 200);
	if (idle) {
		pthread_mutex_unlock(&q->mu);
		idle(ctx);
		pthread_mutex_lock(&q->mu);
	}
}

void server_events_wait_end(struct server_events *q,
			    void (*idle)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&q->mu);
	while (!q->done)
		wait_locked(q, idle, ctx);
	pthread_mutex_unlock(&q->mu);
}

size_t server_events_read(struct server_events *q, char *buf, size_t max,
			  void (*idle)(void *ctx), void *ctx)
{
	size_t n;

	pthread_mutex_lock(&q->mu);
	while (q->pos == q->len && !q->done)
		wait_locked(q, idle, ctx);
	n = q->len - q->pos;
	if (n > max)
		n = max;
	memcpy(buf, q->out + q->pos, n);
	q->pos += n;
	if (q->pos == q->len)
		q->pos = q->len = 0;
	pthread_mutex_unlock(&q->mu);
	return n;
}
