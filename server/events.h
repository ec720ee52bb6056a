/* A stream of JSON events from a worker thread (a pull, a backend
 * install) to the HTTP connection that answers with them: the thread
 * pushes each event as it happens, the response's reader callback takes
 * what has queued, waiting for more until the thread ends the stream.
 * Server-sent events ("data: {...}\n\n") or NDJSON ("{...}\n"). */
#ifndef LEMON_SERVER_EVENTS_H
#define LEMON_SERVER_EVENTS_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

struct server_events {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool sse;
	char *out; /* events not yet handed on, under mu */
	size_t len, cap, pos;
	bool done; /* the thread has pushed its last event */
};

void server_events_init(struct server_events *q, bool sse);
void server_events_destroy(struct server_events *q);

/* queues ev (freed here) and wakes the reader; an event that cannot be
 * stored (out of memory) is dropped */
void server_events_push(struct server_events *q, cJSON *ev);

/* the thread is done: the reader ends the stream once it has taken all */
void server_events_end(struct server_events *q);

/* waits until the stream has ended; idle as in server_events_read */
void server_events_wait_end(struct server_events *q,
			    void (*idle)(void *ctx), void *ctx);

/* up to max queued bytes into buf, waiting while none are queued and the
 * stream goes on; idle (may be NULL) is called under no lock every 200 ms
 * of waiting (a route checks for a server drain there). 0 at the end. */
size_t server_events_read(struct server_events *q, char *buf, size_t max,
			  void (*idle)(void *ctx), void *ctx);

#endif
