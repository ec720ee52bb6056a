/* pull and delete over HTTP, in both of lemon's API flavours: POST
 * /api/pull streams Ollama's NDJSON progress objects ({"status",
 * "digest", "total", "completed"}, ending with {"status":"success"}),
 * POST /api/v1/pull the same steps as server-sent events with lemon's
 * fuller fields; DELETE /api/delete and POST /api/v1/delete unload the
 * model and remove it from the store. A pull runs in a thread of its own
 * that hands each progress event to the connection as it happens; a
 * client that goes away does not stop the download (the next pull finds
 * it finished or resumes it). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/events.h"
#include "server/server-private.h"
#include "util/str.h"

struct pl {
	struct server *s;
	bool sse;      /* /api/v1/pull: SSE; /api/pull: NDJSON */
	char model[BACKENDS_NAME_MAX];
	pthread_t th;
	struct server_events ev; /* SSE or NDJSON, as sse says */
	bool thread_started;
	uint64_t bytes_seen; /* all_completed last counted in /metrics */
};

/* one progress step in the flavour's shape */
static cJSON *event(bool ollama, const struct provision_pull_progress *g)
{
	cJSON *o = cJSON_CreateObject();
	char st[160];

	if (ollama) {
		bool dl = strcmp(g->status, "downloading") == 0;

		snprintf(st, sizeof(st), "%s%s%s", g->status, dl && g->digest ? " " : "",
			 dl && g->digest ? g->digest : "");
		cJSON_AddStringToObject(o, "status", st);
		if (dl) {
			cJSON_AddStringToObject(o, "digest", g->digest ? g->digest :
							     g->file ? g->file : "");
			cJSON_AddNumberToObject(o, "total", (double)g->total);
			cJSON_AddNumberToObject(o, "completed", (double)g->completed);
		}
		return o;
	}
	cJSON_AddStringToObject(o, "model", g->model);
	cJSON_AddStringToObject(o, "status", g->status);
	if (g->file) {
		cJSON_AddStringToObject(o, "file", g->file);
		cJSON_AddNumberToObject(o, "part", g->part);
		cJSON_AddNumberToObject(o, "n_parts", g->n_parts);
		cJSON_AddNumberToObject(o, "completed", (double)g->completed);
		cJSON_AddNumberToObject(o, "total", (double)g->total);
		cJSON_AddNumberToObject(o, "all_completed", (double)g->all_completed);
		cJSON_AddNumberToObject(o, "all_total", (double)g->all_total);
	}
	if (g->digest)
		cJSON_AddStringToObject(o, "digest", g->digest);
	return o;
}

static void on_progress(void *ctx, const struct provision_pull_progress *g)
{
	struct pl *p = ctx;

	/* bytes on disk so far, resumed ones included: count what is new */
	if (g->all_completed > p->bytes_seen) {
		server_metrics_pull(p->s, 0, g->all_completed - p->bytes_seen);
		p->bytes_seen = g->all_completed;
	}
	server_events_push(&p->ev, event(!p->sse, g));
}

/* a pull that failed because the server shut down says so in the words
 * a user acts on (the download's own are "URL: download cancelled"):
 * true when err was rewritten */
static bool cancelled(struct server *s, const char *model, struct lemon_err *err)
{
	if (err->code != LEMON_ERR_BUSY || !backends_pulls_cancelled(s->b))
		return false;
	lemon_err_clear(err);
	lemon_err_set(err, LEMON_ERR_BUSY,
		      "the server is shutting down: the pull of '%.64s' was cancelled; "
		      "what was downloaded is kept and the next pull resumes it",
		      model);
	return true;
}

/* the last event of a failed pull; lemon's shape carries a code so that
 * a client tells a cancelled pull from a failed one without the text. The
 * message is scrubbed as every error body is (server_clean_message): the
 * store's messages name files under the data directory */
static cJSON *error_event(const struct server *s, bool ollama, const struct lemon_err *err,
			  bool cancel)
{
	cJSON *o = cJSON_CreateObject(), *e;
	char msg[sizeof(err->msg)];

	server_clean_message(s, err->msg, msg, sizeof(msg));
	if (ollama) {
		cJSON_AddStringToObject(o, "error", msg);
		return o;
	}
	e = cJSON_AddObjectToObject(o, "error");
	cJSON_AddStringToObject(e, "message", msg);
	cJSON_AddStringToObject(e, "type", "server_error");
	if (cancel)
		cJSON_AddStringToObject(e, "code", "cancelled");
	return o;
}

/* Ollama clients name models "NAME:latest"; the registry has "NAME" */
static int pull(struct server *s, const char *name, provision_pull_cb cb,
		void *ctx, struct lemon_err *err)
{
	char bare[BACKENDS_NAME_MAX];
	size_t n = strlen(name);

	if (backends_pull(s->b, name, cb, ctx, err) == 0)
		return 0;
	if (err->code != LEMON_ERR_NOT_FOUND || n <= 7 ||
	    strcmp(name + n - 7, ":latest") != 0)
		return -1;
	lemon_str_copy_n(bare, sizeof(bare), name, n - 7);
	memset(err, 0, sizeof(*err));
	return backends_pull(s->b, bare, cb, ctx, err);
}

static void *pull_thread(void *arg)
{
	struct pl *p = arg;
	struct lemon_err err = { 0 };

	server_metrics_pull(p->s, 1, 0);
	if (pull(p->s, p->model, on_progress, p, &err) < 0) {
		bool cancel = cancelled(p->s, p->model, &err);

		server_events_push(&p->ev, error_event(p->s, !p->sse, &err, cancel));
	}
	server_metrics_pull(p->s, -1, 0);
	server_events_end(&p->ev);
	return NULL;
}

static ssize_t pl_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct pl *p = cls;
	size_t n = server_events_read(&p->ev, buf, max, NULL, NULL);

	(void)pos;
	return n ? (ssize_t)n : SERVER_READER_END_OF_STREAM;
}

static void pl_free(void *cls)
{
	struct pl *p = cls;

	if (p->thread_started)
		pthread_join(p->th, NULL);
	server_events_destroy(&p->ev);
	free(p);
}

/* {"model"} or {"name"} (Ollama), {"model_name"} (lemon), validated by
 * server_body_parse; "stream" false waits for the end and answers once */
static int pull_args(const struct server_req *req, char *model, size_t cap,
		     bool *stream, struct lemon_err *err)
{
	static const char *const keys[] = { "model", "name", "model_name" };
	struct server_body_err e;
	cJSON *root = server_body_parse(req->body, req->len, SERVER_BODY_PULL, &e);
	const cJSON *m = NULL;
	size_t i;

	if (root == NULL)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG, "%s", e.msg);
	for (i = 0; m == NULL && i < sizeof(keys) / sizeof(keys[0]); i++)
		m = cJSON_GetObjectItemCaseSensitive(root, keys[i]);
	lemon_str_copy(model, cap, m->valuestring);
	*stream = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(root, "stream"));
	cJSON_Delete(root);
	return 0;
}

static enum server_result bad(struct server *s, struct server_conn *conn,
			   bool ollama, const struct lemon_err *err)
{
	return ollama ? server_ollama_lemon_err(s, conn, err) :
			server_send_lemon_err(s, conn, err);
}

enum server_result server_pull(struct server *s, struct server_conn *conn,
			 const struct server_req *req, bool ollama)
{
	struct lemon_err err = { 0 };
	struct server_response *r;
	enum server_result rc;
	struct pl *p;
	bool stream = true;

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return SERVER_NO;
	if (pull_args(req, p->model, sizeof(p->model), &stream, &err) < 0) {
		free(p);
		return bad(s, conn, ollama, &err);
	}
	p->s = s;
	p->sse = !ollama;
	server_events_init(&p->ev, p->sse);
	if (!stream) {
		if (pull(s, p->model, NULL, NULL, &err) < 0) {
			cancelled(s, p->model, &err);
			rc = bad(s, conn, ollama, &err);
		} else {
			rc = server_send_json(s, conn, 200, "{\"status\":\"success\"}");
		}
		pl_free(p);
		return rc;
	}
	if (pthread_create(&p->th, NULL, pull_thread, p) != 0) {
		pl_free(p);
		lemon_err_set(&err, LEMON_ERR_INTERNAL, "cannot start the pull");
		return bad(s, conn, ollama, &err);
	}
	p->thread_started = true;
	r = server_response_from_callback(SERVER_SIZE_UNKNOWN, 4096, pl_read, p,
					      pl_free);
	if (r == NULL) {
		pl_free(p);
		return SERVER_NO;
	}
	server_response_add_header(r, "Content-Type", ollama ? "application/x-ndjson" :
							    "text/event-stream");
	rc = server_queue_response(conn, 200, r);
	server_response_destroy(r);
	return rc;
}

enum server_result server_delete(struct server *s, struct server_conn *conn,
			   const struct server_req *req, bool ollama)
{
	struct lemon_err err = { 0 };
	char model[BACKENDS_NAME_MAX];
	bool stream;

	char path[4096];
	size_t n;

	if (pull_args(req, model, sizeof(model), &stream, &err) < 0)
		return bad(s, conn, ollama, &err);
	n = strlen(model);
	if (n > 7 && strcmp(model + n - 7, ":latest") == 0 &&
	    backends_model_path(s->data_dir, model, path, sizeof(path), NULL) < 0)
		model[n - 7] = 0;
	/* a running child would keep the deleted file open */
	if (backends_unload(s->b, model, &err) < 0 && err.code != LEMON_ERR_NOT_FOUND)
		return bad(s, conn, ollama, &err);
	memset(&err, 0, sizeof(err));
	if (backends_delete_model(s->data_dir, model, &err) < 0)
		return bad(s, conn, ollama, &err);
	return server_send_json(s, conn, 200, "{\"status\":\"success\"}");
}
