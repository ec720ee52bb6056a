/* GET /api/v1/backends and POST /api/v1/backends/install, for the web
 * app's System page: the bundles compat pins (each with what is installed
 * of it, the current version and the one kept for rollback) and an install
 * of one of them from the serve's --mirror, its download progress streamed
 * as server-sent events in the shape of POST /api/v1/pull. One install at
 * a time (409 otherwise): two installs of one bundle would race for its
 * lock, and the download competes with the running children anyway. The
 * install runs in a thread of its own, so a client that goes away does
 * not leave a half-installed bundle (provision keeps the previous one
 * until the new one is complete). A running child keeps the executable it
 * started with; the next load resolves the installed one again. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/events.h"
#include "server/server-private.h"
#include "util/str.h"

struct inst {
	struct server *s;
	char name[40];
	struct compat_backends *bm;
	const struct compat_backend_asset *a;
	pthread_t th;
	struct server_events ev;
	bool thread_started;
	atomic_bool cancel; /* set when the server drains */
};

/* while the reader or inst_free waits: a server that drains cancels the
 * download, so a shutdown is not held up by it */
static void check_drain(void *ctx)
{
	struct inst *p = ctx;

	if (p->s->http->draining)
		atomic_store(&p->cancel, true);
}

static cJSON *step(const struct inst *p, const char *status)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "name", p->name);
	cJSON_AddStringToObject(o, "status", status);
	return o;
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct inst *p = ctx;
	cJSON *o = step(p, "downloading");

	cJSON_AddNumberToObject(o, "completed", (double)done);
	cJSON_AddNumberToObject(o, "total", (double)total);
	server_events_push(&p->ev, o);
}

static void *install_thread(void *arg)
{
	struct inst *p = arg;
	struct provision_opts po = { .mirror = p->s->cfg.mirror[0] ? p->s->cfg.mirror : NULL,
				     .data_dir = p->s->data_dir,
				     .force = true,
				     .progress = PROVISION_PROGRESS_NONE,
				     .on_progress = on_progress,
				     .progress_ctx = p,
				     .cancel = &p->cancel };
	struct provision_result *res = calloc(1, sizeof(*res));
	struct lemon_err err = { 0 };
	cJSON *o, *e;
	char msg[sizeof(err.msg)];

	if (res == NULL)
		lemon_err_set(&err, LEMON_ERR_INTERNAL, "out of memory");
	/* counted for /metrics with every other install of the process */
	if (res && backends_install(p->s->b, p->a, &po, res, &err) == 0) {
		o = step(p, "success");
		cJSON_AddStringToObject(o, "version", res->version);
		cJSON_AddStringToObject(o, "path", res->exe);
		cJSON_AddStringToObject(o, "previous", res->previous);
	} else {
		/* the shape of a failed pull's last event; the download's own
		 * words ("URL: download cancelled") give way to what happened */
		bool cancel = atomic_load(&p->cancel);

		if (cancel) {
			lemon_err_clear(&err);
			lemon_err_set(&err, LEMON_ERR_BUSY,
				      "the server is shutting down: the install of %s was "
				      "cancelled; the bundle installed before is kept and the "
				      "next install resumes the download",
				      p->name);
		}
		server_clean_message(p->s, err.msg, msg, sizeof(msg));
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", p->name);
		e = cJSON_AddObjectToObject(o, "error");
		cJSON_AddStringToObject(e, "message", msg);
		cJSON_AddStringToObject(e, "type", "server_error");
		if (cancel)
			cJSON_AddStringToObject(e, "code", "cancelled");
	}
	server_events_push(&p->ev, o);
	free(res);
	atomic_store(&p->s->installing, false);
	server_events_end(&p->ev);
	return NULL;
}

static ssize_t inst_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct inst *p = cls;
	size_t n = server_events_read(&p->ev, buf, max, check_drain, p);

	(void)pos;
	return n ? (ssize_t)n : SERVER_READER_END_OF_STREAM;
}

static void inst_free(void *cls)
{
	struct inst *p = cls;

	if (p->thread_started) {
		/* a client that left does not stop the install, a drain does */
		server_events_wait_end(&p->ev, check_drain, p);
		pthread_join(p->th, NULL);
	}
	server_events_destroy(&p->ev);
	compat_backends_free(p->bm);
	free(p);
}

/* backend names are short printable ASCII; anything else is refused
 * before it is looked up or echoed in an error message */
static bool plain_name(const char *v, size_t cap)
{
	size_t i;

	for (i = 0; v[i]; i++)
		if (i + 1 >= cap || (unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return false;
	return i > 0;
}

/* {"name": "llamacpp:cpu"}: a name compat pins, else INVALID_ARG */
static int install_args(struct inst *p, const struct server_req *req, struct lemon_err *err)
{
	cJSON *root = cJSON_ParseWithLength(req->body ? req->body : "", req->len);
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "name");
	bool needs_target = false;
	int rc = 0;

	if (!cJSON_IsString(n) || !plain_name(n->valuestring, sizeof(p->name)))
		rc = lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				   "the body must be {\"name\": \"<backend>\"} with a backend's "
				   "name, e.g. llamacpp:cpu");
	else
		lemon_str_copy(p->name, sizeof(p->name), n->valuestring);
	cJSON_Delete(root);
	if (rc < 0 || compat_backends_load(NULL, &p->bm, err) < 0)
		return -1;
	if (provision_find(p->bm, p->name, &p->a, &needs_target, err) < 0) {
		/* an unknown name is the client's mistake, not a missing thing */
		err->code = LEMON_ERR_INVALID_ARG;
		return -1;
	}
	return 0;
}

enum server_result server_backends_install(const struct server_call *k)
{
	struct lemon_err err = { 0 };
	struct server_response *r;
	enum server_result rc;
	struct inst *p = calloc(1, sizeof(*p));
	bool busy = false;

	if (p == NULL)
		return SERVER_NO;
	server_events_init(&p->ev, true);
	p->s = k->s;
	if (install_args(p, k->req, &err) < 0) {
		inst_free(p);
		return server_send_lemon_err(k->s, k->c, &err);
	}
	if (!atomic_compare_exchange_strong(&k->s->installing, &busy, true)) {
		inst_free(p);
		return server_send_error(k->s, k->c, 409, "invalid_request_error", "busy",
					 "another backend install is running");
	}
	if (pthread_create(&p->th, NULL, install_thread, p) != 0) {
		atomic_store(&k->s->installing, false);
		inst_free(p);
		lemon_err_set(&err, LEMON_ERR_INTERNAL, "cannot start the install");
		return server_send_lemon_err(k->s, k->c, &err);
	}
	p->thread_started = true;
	server_events_push(&p->ev, step(p, "installing"));
	r = server_response_from_callback(SERVER_SIZE_UNKNOWN, 4096, inst_read, p, inst_free);
	if (r == NULL) {
		inst_free(p);
		return SERVER_NO;
	}
	server_response_add_header(r, "Content-Type", "text/event-stream");
	rc = server_queue_response(k->c, 200, r);
	server_response_destroy(r);
	return rc;
}

/* one pinned bundle with what is installed of it */
static cJSON *entry(const struct compat_backend_asset *a, const struct provision_installed *in,
		    int n_in)
{
	cJSON *o = cJSON_CreateObject(), *vs, *v;
	int i;

	cJSON_AddStringToObject(o, "name", a->name);
	cJSON_AddStringToObject(o, "kind", a->kind);
	cJSON_AddStringToObject(o, "pinned", a->version);
	cJSON_AddItemToObject(o, "current", cJSON_CreateNull());
	vs = cJSON_AddArrayToObject(o, "installed");
	for (i = 0; i < n_in; i++) {
		if (strcmp(in[i].name, a->name) != 0)
			continue;
		v = cJSON_CreateObject();
		cJSON_AddStringToObject(v, "version", in[i].version);
		cJSON_AddBoolToObject(v, "current", !in[i].previous);
		cJSON_AddBoolToObject(v, "works", in[i].works);
		if (!in[i].works)
			cJSON_AddStringToObject(v, "problem", in[i].problem);
		cJSON_AddItemToArray(vs, v);
		if (!in[i].previous)
			cJSON_ReplaceItemInObjectCaseSensitive(o, "current",
							       cJSON_CreateString(in[i].version));
	}
	/* every pinned bundle can be (re)installed; the page's button says
	 * which of the two it would be */
	cJSON_AddBoolToObject(o, "installable", true);
	return o;
}

enum server_result server_backends_route(const struct server_call *k)
{
	struct provision_installed *in = calloc(PROVISION_MAX_INSTALLED, sizeof(*in));
	struct compat_backends *bm = NULL;
	struct lemon_err err = { 0 };
	enum server_result rc;
	cJSON *root, *arr;
	char *t;
	int i, n = 0;

	if (in == NULL)
		return SERVER_NO;
	if (compat_backends_load(NULL, &bm, &err) < 0 ||
	    provision_list_all(k->s->data_dir, in, PROVISION_MAX_INSTALLED, &n, &err) < 0) {
		compat_backends_free(bm);
		free(in);
		return server_send_lemon_err(k->s, k->c, &err);
	}
	root = cJSON_CreateObject();
	cJSON_AddBoolToObject(root, "installing", atomic_load(&k->s->installing));
	arr = cJSON_AddArrayToObject(root, "backends");
	for (i = 0; i < bm->n; i++)
		cJSON_AddItemToArray(arr, entry(&bm->a[i], in, n));
	t = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	compat_backends_free(bm);
	free(in);
	if (t == NULL)
		return SERVER_NO;
	rc = server_send_json(k->s, k->c, 200, t);
	free(t);
	return rc;
}
