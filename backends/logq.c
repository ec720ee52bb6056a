/* lemon's log lines from the supervisor (its own and the children's) are
 * queued, a memcpy under a leaf mutex, and written by one writer thread:
 * a log reader that stalls (a full pipe on stderr) then holds up only
 * that thread, never the supervisor thread (which reaps, probes and
 * starts children) nor a thread waiting for the supervisor's lock. A full
 * queue drops lines and says how many once it can write again. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backends/backends-private.h"
#include "util/cond.h"

/* the history a log reader sees: every line, even one the writer's queue
 * dropped; the oldest bytes are overwritten. Called under qmu. */
static void ring_put(struct backends *b, const char *text, size_t n)
{
	size_t cap = sizeof(b->logring), at, first;

	if (n > cap) {
		text += n - cap;
		b->logring_end += n - cap;
		n = cap;
	}
	at = (size_t)(b->logring_end % cap);
	first = n < cap - at ? n : cap - at;
	memcpy(b->logring + at, text, first);
	memcpy(b->logring, text + first, n - first);
	b->logring_end += n;
}

size_t backends_log_read(struct backends *b, uint64_t *pos, char *out, size_t cap)
{
	size_t ring = sizeof(b->logring), n, at, first;

	pthread_mutex_lock(&b->qmu);
	if (b->logring_end > ring && *pos < b->logring_end - ring)
		*pos = b->logring_end - ring; /* overwritten: from the oldest kept */
	if (*pos > b->logring_end)
		*pos = b->logring_end;
	n = (size_t)(b->logring_end - *pos) < cap ? (size_t)(b->logring_end - *pos) : cap;
	at = (size_t)(*pos % ring);
	first = n < ring - at ? n : ring - at;
	memcpy(out, b->logring + at, first);
	memcpy(out + first, b->logring, n - first);
	*pos += n;
	pthread_mutex_unlock(&b->qmu);
	return n;
}

void backends_sup_emit(struct backends *b, const char *text, size_t n)
{
	pthread_mutex_lock(&b->qmu);
	if (n > sizeof(b->logq) - b->logq_len) {
		b->logq_dropped++;
	} else {
		memcpy(b->logq + b->logq_len, text, n);
		b->logq_len += n;
		b->logq_in += n;
	}
	ring_put(b, text, n);
	pthread_cond_signal(&b->qcv);
	pthread_mutex_unlock(&b->qmu);
}

void backends_sup_log(struct backends *b, const char *fmt, ...)
{
	char line[1200];
	va_list ap;
	int n;

	memcpy(line, "lemon: ", 7);
	va_start(ap, fmt);
	n = vsnprintf(line + 7, sizeof(line) - 8, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 9)
		n = (int)sizeof(line) - 9; /* cut, still one line */
	n += 7;
	line[n++] = '\n';
	backends_sup_emit(b, line, (size_t)n);
}

static void *writer_main(void *arg)
{
	struct backends *b = arg;
	unsigned long dropped;
	size_t n;

	pthread_mutex_lock(&b->qmu);
	for (;;) {
		while (b->logq_len == 0 && b->logq_dropped == 0 && !b->log_stop)
			pthread_cond_wait(&b->qcv, &b->qmu);
		if (b->logq_len == 0 && b->logq_dropped == 0)
			break; /* stopping, everything written */
		n = b->logq_len;
		memcpy(b->logout, b->logq, n);
		b->logq_len = 0;
		dropped = b->logq_dropped;
		b->logq_dropped = 0;
		pthread_mutex_unlock(&b->qmu);
		if (n > 0)
			fwrite(b->logout, 1, n, b->log);
		if (dropped)
			fprintf(b->log, "lemon: %lu log lines dropped (the log was not read in time)\n",
				dropped);
		fflush(b->log);
		pthread_mutex_lock(&b->qmu);
		b->logq_out += n;
		pthread_cond_broadcast(&b->qdone);
	}
	pthread_mutex_unlock(&b->qmu);
	return NULL;
}

int backends_sup_log_start(struct backends *b, struct lemon_err *err)
{
	int rc = pthread_create(&b->logthr, NULL, writer_main, b);

	if (rc != 0)
		return lemon_err_errno(err, rc, "starting the log writer thread");
	b->logthr_started = true;
	return 0;
}

void backends_sup_log_flush(struct backends *b, int wait_ms)
{
	struct timespec ts;
	uint64_t want;

	lemon_cond_deadline(&ts, wait_ms); /* qdone is on the monotonic clock */
	pthread_mutex_lock(&b->qmu);
	want = b->logq_in;
	while (b->logthr_started && b->logq_out < want)
		if (lemon_cond_wait_until(&b->qdone, &b->qmu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&b->qmu);
}

bool backends_sup_log_stop(struct backends *b)
{
	struct timespec ts;

	if (!b->logthr_started)
		return true;
	pthread_mutex_lock(&b->qmu);
	b->log_stop = true;
	pthread_cond_signal(&b->qcv);
	pthread_mutex_unlock(&b->qmu);
	lemon_cond_deadline(&ts, 2000);
	if (pthread_clockjoin_np(b->logthr, NULL, CLOCK_MONOTONIC, &ts) != 0)
		return false; /* stuck writing to a log nobody reads */
	b->logthr_started = false;
	return true;
}
