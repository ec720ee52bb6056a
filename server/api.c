/* lemon's own routes and the model list: /v1/models, /api/v1/health (what
 * is loaded, on which backend, and the fallback history), system-info (the
 * doctor JSON), stats (the last proxied request) and load/unload */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/flm.h"
#include "server/server-private.h"
#include "util/str.h"

#define API_MAX_MODELS 256

static enum server_result send_cjson(struct server *s, struct server_conn *conn,
				  unsigned status, cJSON *root)
{
	char *out = root ? cJSON_PrintUnformatted(root) : NULL;
	enum server_result rc;

	cJSON_Delete(root);
	if (out == NULL)
		return server_send_error(s, conn, 500, "server_error", NULL,
				      "out of memory");
	rc = server_send_json(s, conn, status, out);
	free(out);
	return rc;
}

/* OpenAI's model object */
static cJSON *model_json(const struct backends_model *m)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", m->name);
	cJSON_AddStringToObject(o, "object", "model");
	cJSON_AddNumberToObject(o, "created", (double)m->mtime);
	cJSON_AddStringToObject(o, "owned_by", "lemon");
	return o;
}

/* a registry model of recipe flm (FastFlowLM fetches it, so it has no
 * file time): OpenAI's fields, and recipe and device as Lemonade's list
 * has them so a client can tell an NPU model; "gguf" when its GGUF
 * serves it because FastFlowLM cannot here */
static cJSON *flm_model_json(const struct backends_flm_listed *f)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", f->name);
	cJSON_AddStringToObject(o, "object", "model");
	cJSON_AddNumberToObject(o, "created", 0);
	cJSON_AddStringToObject(o, "owned_by", "lemon");
	cJSON_AddStringToObject(o, "recipe", "flm");
	cJSON_AddStringToObject(o, "device", f->npu ? "npu" : "gguf");
	if (!f->npu)
		cJSON_AddStringToObject(o, "gguf", f->gguf);
	return o;
}

/* the store's models and the servable flm models (id NULL) or the one
 * named id: GET /v1/models and /v1/models/{id}, which the child does not
 * serve */
static enum server_result models(struct server *s, struct server_conn *conn, const char *id)
{
	struct lemon_err err = { 0 };
	struct backends_flm_listed fl[BACKENDS_MAX_FLM_MODELS];
	struct backends_model *m;
	cJSON *root, *data;
	int n = 0, nf, i;

	m = calloc(API_MAX_MODELS, sizeof(*m));
	if (m == NULL)
		return SERVER_NO;
	if (backends_list_models(s->data_dir, m, API_MAX_MODELS, &n, &err) < 0) {
		free(m);
		return server_send_lemon_err(s, conn, &err);
	}
	nf = backends_flm_list(s->b, fl, BACKENDS_MAX_FLM_MODELS);
	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "object", "list");
	data = cJSON_AddArrayToObject(root, "data");
	for (i = 0; i < n && data; i++) {
		if (id && strcmp(id, m[i].name) == 0) {
			cJSON_Delete(root);
			root = model_json(&m[i]);
			free(m);
			return send_cjson(s, conn, 200, root);
		}
		cJSON_AddItemToArray(data, model_json(&m[i]));
	}
	free(m);
	for (i = 0; i < nf && data; i++) {
		if (id && strcmp(id, fl[i].name) == 0) {
			cJSON_Delete(root);
			return send_cjson(s, conn, 200, flm_model_json(&fl[i]));
		}
		cJSON_AddItemToArray(data, flm_model_json(&fl[i]));
	}
	if (id) {
		char shown[72];

		cJSON_Delete(root);
		server_body_clip(shown, sizeof(shown), id, strlen(id));
		return server_send_error(s, conn, 404, "invalid_request_error", "model_not_found",
					 "model '%s' not found", shown);
	}
	return send_cjson(s, conn, 200, root);
}

/* "workers": each `lemon worker` as last checked: address, state (up,
 * unusable, unchecked), backend and free memory or why it is unusable */
static void workers_json(cJSON *root, const struct backends_status *st)
{
	cJSON *arr, *o;
	char addr[80];
	int i;

	if (st->n_workers == 0 || (arr = cJSON_AddArrayToObject(root, "workers")) == NULL)
		return;
	for (i = 0; i < st->n_workers; i++) {
		const struct backends_worker_info *w = &st->worker_info[i];

		cJSON_AddItemToArray(arr, o = cJSON_CreateObject());
		snprintf(addr, sizeof(addr), "%s:%d", st->worker[i].host,
			 st->worker[i].port);
		cJSON_AddStringToObject(o, "address", addr);
		cJSON_AddStringToObject(o, "state", !st->worker_checked[i] ? "unchecked" :
						    w->error[0]		  ? "unusable" :
										    "up");
		if (w->error[0]) {
			cJSON_AddStringToObject(o, "error", w->error);
			continue;
		}
		if (!st->worker_checked[i])
			continue;
		cJSON_AddStringToObject(o, "backend", w->backend);
		cJSON_AddNumberToObject(o, "free_bytes", (double)w->free_bytes);
	}
}

/* the supervisor's snapshot as {"loaded":[...],"fallbacks":[...],
 * "candidates":[...],...}; NULL on allocation failure */
static cJSON *status_json(const struct backends_status *st)
{
	cJSON *root = cJSON_CreateObject(), *loaded, *fb, *cands, *o;
	int i;

	loaded = cJSON_AddArrayToObject(root, "loaded");
	fb = cJSON_AddArrayToObject(root, "fallbacks");
	cands = cJSON_AddArrayToObject(root, "candidates");
	if (loaded == NULL || fb == NULL || cands == NULL) {
		cJSON_Delete(root);
		return NULL;
	}
	cJSON_AddNumberToObject(root, "max_loaded", st->max_loaded);
	cJSON_AddNumberToObject(root, "idle_timeout", st->idle_timeout_s);
	cJSON_AddNumberToObject(root, "parallel", st->parallel);
	for (i = 0; i < st->n_children; i++) {
		const struct backends_child_status *c = &st->child[i];

		cJSON_AddItemToArray(loaded, o = cJSON_CreateObject());
		cJSON_AddStringToObject(o, "model", c->model);
		cJSON_AddStringToObject(o, "role", c->role == BACKENDS_EMBED	? "embeddings" :
						   c->role == BACKENDS_RERANK ? "rerank" :
										"chat");
		cJSON_AddStringToObject(o, "state", c->state);
		cJSON_AddStringToObject(o, "backend", c->backend);
		if (c->pid > 0) {
			cJSON_AddNumberToObject(o, "pid", c->pid);
			cJSON_AddNumberToObject(o, "port", c->port);
		}
		if (c->idle_s >= 0)
			cJSON_AddNumberToObject(o, "idle_s", (double)c->idle_s);
		cJSON_AddNumberToObject(o, "requests", c->leases);
		if (c->n_gpu_layers >= 0)
			cJSON_AddNumberToObject(o, "n_gpu_layers", c->n_gpu_layers);
		if (c->slots > 0)
			cJSON_AddNumberToObject(o, "slots", c->slots);
		if (c->error[0])
			cJSON_AddStringToObject(o, "error", c->error);
		if (c->placement[0])
			cJSON_AddStringToObject(o, "placement", c->placement);
	}
	workers_json(root, st);
	for (i = 0; i < st->n_fallbacks; i++) {
		const struct backends_fallback_status *h = &st->fallback[i];

		cJSON_AddItemToArray(fb, o = cJSON_CreateObject());
		cJSON_AddNumberToObject(o, "time", (double)h->time);
		cJSON_AddItemToObject(o, "model", h->model[0] ? cJSON_CreateString(h->model) :
								 cJSON_CreateNull());
		cJSON_AddStringToObject(o, "from", h->from);
		cJSON_AddItemToObject(o, "to", h->to[0] ? cJSON_CreateString(h->to) :
							  cJSON_CreateNull());
		cJSON_AddStringToObject(o, "reason", h->reason);
	}
	for (i = 0; i < st->n_candidates; i++) {
		cJSON_AddItemToArray(cands, o = cJSON_CreateObject());
		cJSON_AddStringToObject(o, "backend", st->cand[i].backend);
		cJSON_AddStringToObject(o, "exe", st->cand[i].exe);
		if (st->cand[i].device[0])
			cJSON_AddStringToObject(o, "device", st->cand[i].device);
		cJSON_AddBoolToObject(o, "failed", st->cand[i].failed);
	}
	return root;
}

static enum server_result health(struct server *s, struct server_conn *conn)
{
	struct backends_status *st = malloc(sizeof(*st));
	const struct backends_child_status *ready = NULL;
	cJSON *root = NULL;
	int i;

	/* the workers are probed anew in the background (rate-limited): the
	 * next look shows one that went away or came back */
	backends_workers_kick(s->b);
	if (st != NULL) {
		backends_snapshot(s->b, st);
		root = status_json(st);
	}
	if (root == NULL) {
		free(st);
		return server_send_error(s, conn, 500, "server_error", NULL,
				      "out of memory");
	}
	for (i = 0; i < st->n_children && ready == NULL; i++)
		if (strcmp(st->child[i].state, "ready") == 0)
			ready = &st->child[i];
	cJSON_AddStringToObject(root, "status", "ok");
	cJSON_AddStringToObject(root, "version", LEMON_VERSION);
	cJSON_AddItemToObject(root, "model_loaded", ready ? cJSON_CreateString(ready->model) :
							    cJSON_CreateNull());
	cJSON_AddItemToObject(root, "backend", ready ? cJSON_CreateString(ready->backend) :
						       cJSON_CreateNull());
	free(st);
	return send_cjson(s, conn, 200, root);
}

static enum server_result stats(struct server *s, struct server_conn *conn)
{
	struct server_stats st;
	cJSON *root = cJSON_CreateObject();

	pthread_mutex_lock(&s->mu);
	st = s->last;
	pthread_mutex_unlock(&s->mu);
	if (!st.valid) {
		cJSON_AddNullToObject(root, "last_request");
		return send_cjson(s, conn, 200, root);
	}
	cJSON_AddStringToObject(root, "model", st.model);
	cJSON_AddStringToObject(root, "backend", st.backend);
	cJSON_AddStringToObject(root, "endpoint", st.endpoint);
	cJSON_AddBoolToObject(root, "stream", st.stream);
	cJSON_AddBoolToObject(root, "ok", st.ok);
	cJSON_AddNumberToObject(root, "time_to_first_token_ms", st.ttft_ms);
	cJSON_AddNumberToObject(root, "total_ms", st.total_ms);
	cJSON_AddNumberToObject(root, "tokens_per_second", st.tokens_per_second);
	cJSON_AddNumberToObject(root, "input_tokens", (double)st.prompt_tokens);
	cJSON_AddNumberToObject(root, "output_tokens", (double)st.completion_tokens);
	return send_cjson(s, conn, 200, root);
}

/* {"model_name": "..."} (Lemonade) or {"model": "..."} */
static enum server_result load_unload(struct server *s,
				   struct server_conn *conn,
				   const struct server_req *req, bool load)
{
	struct backends_lease lease;
	struct lemon_err err = { 0 };
	cJSON *root, *m, *out;
	char name[BACKENDS_NAME_MAX];
	enum server_result sent = SERVER_YES;
	int rc;

	root = server_body_request(s, conn, req, SERVER_BODY_LOAD, &sent);
	if (root == NULL)
		return sent;
	m = cJSON_GetObjectItemCaseSensitive(root, "model_name");
	if (m == NULL)
		m = cJSON_GetObjectItemCaseSensitive(root, "model");
	lemon_str_copy(name, sizeof(name), m->valuestring);
	cJSON_Delete(root);
	rc = load ? backends_load(s->b, name, &lease, &err) :
		    backends_unload(s->b, name, &err);
	if (rc < 0)
		return server_send_lemon_err(s, conn, &err);
	out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "status", "success");
	cJSON_AddStringToObject(out, "model_name", name);
	if (load)
		cJSON_AddStringToObject(out, "backend", lease.backend);
	return send_cjson(s, conn, 200, out);
}

#define SHUTDOWN_BODY "{\"status\":\"shutting down\"}"

static ssize_t shutdown_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	size_t n = sizeof(SHUTDOWN_BODY) - 1;

	(void)cls;
	if (pos >= n)
		return SERVER_READER_END_OF_STREAM;
	n -= (size_t)pos;
	if (n > max)
		n = max;
	memcpy(buf, &SHUTDOWN_BODY[pos], n);
	return (ssize_t)n;
}

/* lemon serve stops on SIGTERM; it is raised once the answer is done with,
 * so the client has it before the listener closes */
static void shutdown_done(void *cls)
{
	(void)cls;
	kill(getpid(), SIGTERM);
}

/* POST /api/v1/shutdown (`lemon stop`); behind the API key like every
 * route */
static enum server_result shutdown_req(struct server_conn *conn)
{
	struct server_response *r;
	enum server_result rc;

	r = server_response_from_callback(sizeof(SHUTDOWN_BODY) - 1, 256,
					      shutdown_body, NULL, shutdown_done);
	if (r == NULL)
		return SERVER_NO;
	server_response_add_header(r, "Content-Type", "application/json");
	server_response_add_header(r, "Connection", "close");
	fprintf(stderr, "lemon: shutdown requested over the API\n");
	rc = server_queue_response(conn, 200, r);
	server_response_destroy(r);
	return rc;
}

enum server_result server_api_models(const struct server_call *k)
{
	return models(k->s, k->c, NULL);
}

enum server_result server_api_model(const struct server_call *k)
{
	return models(k->s, k->c, k->tail);
}

enum server_result server_api_health(const struct server_call *k)
{
	return health(k->s, k->c);
}

enum server_result server_api_sysinfo(const struct server_call *k)
{
	return server_send_json(k->s, k->c, 200, k->s->sysinfo);
}

enum server_result server_api_stats(const struct server_call *k)
{
	return stats(k->s, k->c);
}

enum server_result server_api_load(const struct server_call *k)
{
	return load_unload(k->s, k->c, k->req, true);
}

enum server_result server_api_unload(const struct server_call *k)
{
	return load_unload(k->s, k->c, k->req, false);
}

enum server_result server_api_shutdown(const struct server_call *k)
{
	return shutdown_req(k->c);
}

/* a liveness probe: the process answers HTTP, nothing more is asked */
enum server_result server_api_live(const struct server_call *k)
{
	return server_send_json(k->s, k->c, 200, "{\"status\":\"ok\"}");
}
