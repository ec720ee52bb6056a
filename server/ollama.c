/* the Ollama API, so that clients written for Ollama work against lemon
 * unchanged: the model list (/api/tags), what is loaded (/api/ps), the
 * version, model details (/api/show), embeddings (/api/embed and the older
 * /api/embeddings); chat and generate are in ollama_chat.c, pull and
 * delete in ollama_pull.c. Errors use Ollama's {"error":"..."} shape. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/flm.h"
#include "server/server-private.h"
#include "util/str.h"
#include "util/buf.h"

#define OL_MAX_MODELS 256
#define OL_EMBED_MAX (64u << 20) /* largest embeddings answer read back */
#define OL_PROPS_MAX (4u << 20)  /* a child's /props (the template is in it) */
#define OL_TEMPLATE_MAX (1u << 20) /* a chat template read from a GGUF */

static void param_size(char *out, size_t cap, uint64_t n)
{
	if (n >= 1000000000ULL)
		snprintf(out, cap, "%.1fB", (double)n / 1e9);
	else if (n >= 1000000ULL)
		snprintf(out, cap, "%.0fM", (double)n / 1e6);
	else if (n > 0)
		snprintf(out, cap, "%.0fK", (double)n / 1e3);
	else
		out[0] = 0;
}

/* true for a registry model of recipe flm that is servable here
 * (backends_flm_list): FastFlowLM's, so it has no GGUF header to read */
static bool is_flm(struct server *s, const char *name)
{
	struct backends_flm_listed fl[BACKENDS_MAX_FLM_MODELS];
	int i, n = backends_flm_list(s->b, fl, BACKENDS_MAX_FLM_MODELS);

	for (i = 0; i < n; i++)
		if (strcmp(fl[i].name, name) == 0)
			return true;
	return false;
}

/* Ollama's "details" object from the model's GGUF header (left blank when
 * the header cannot be read; format "flm" for FastFlowLM's models); gi may
 * be NULL */
static cJSON *details(struct server *s, const char *name,
		      struct backends_gguf_info *gi)
{
	struct backends_gguf_info local;
	cJSON *d = cJSON_CreateObject(), *fam;
	char path[4096], ps[32] = "";
	bool ok;

	if (gi == NULL)
		gi = &local;
	memset(gi, 0, sizeof(*gi));
	ok = backends_model_path(s->data_dir, name, path, sizeof(path), NULL) == 0 &&
	     backends_gguf_read_file(path, gi, NULL) == 0;
	if (ok)
		param_size(ps, sizeof(ps), gi->n_params);
	cJSON_AddStringToObject(d, "parent_model", "");
	cJSON_AddStringToObject(d, "format",
				!ok && is_flm(s, name) ? "flm" : "gguf");
	cJSON_AddStringToObject(d, "family", ok ? gi->arch : "");
	if (ok && gi->arch[0]) {
		fam = cJSON_AddArrayToObject(d, "families");
		cJSON_AddItemToArray(fam, cJSON_CreateString(gi->arch));
	} else {
		cJSON_AddNullToObject(d, "families");
	}
	cJSON_AddStringToObject(d, "parameter_size", ps);
	cJSON_AddStringToObject(d, "quantization_level",
				ok && gi->has_file_type ?
					backends_gguf_ftype_name(gi->file_type) : "");
	return d;
}

static int list(struct server *s, struct backends_model **m, int *n,
		struct lemon_err *err)
{
	*m = calloc(OL_MAX_MODELS, sizeof(**m));
	if (*m == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	if (backends_list_models(s->data_dir, *m, OL_MAX_MODELS, n, err) < 0) {
		free(*m);
		*m = NULL;
		return -1;
	}
	return 0;
}

/* the servable flm models (backends_flm_list) in /api/tags: FastFlowLM
 * keeps their files, so no size or time; details.format "flm" */
static void add_flm_tags(struct server *s, cJSON *arr)
{
	struct backends_flm_listed fl[BACKENDS_MAX_FLM_MODELS];
	int i, n = backends_flm_list(s->b, fl, BACKENDS_MAX_FLM_MODELS);
	char ts[48];

	server_ollama_time(ts, sizeof(ts), 0, 0);
	for (i = 0; i < n && arr; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "name", fl[i].name);
		cJSON_AddStringToObject(o, "model", fl[i].name);
		cJSON_AddStringToObject(o, "modified_at", ts);
		cJSON_AddNumberToObject(o, "size", 0);
		cJSON_AddStringToObject(o, "digest", "");
		cJSON_AddItemToObject(o, "details", details(s, fl[i].name, NULL));
		cJSON_AddItemToArray(arr, o);
	}
}

static enum server_result tags(struct server *s, struct server_conn *conn)
{
	struct lemon_err err = { 0 };
	struct backends_model *m;
	cJSON *root, *arr;
	char ts[48];
	int n = 0, i;

	if (list(s, &m, &n, &err) < 0)
		return server_ollama_lemon_err(s, conn, &err);
	root = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(root, "models");
	for (i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		server_ollama_time(ts, sizeof(ts), m[i].mtime, 0);
		cJSON_AddStringToObject(o, "name", m[i].name);
		cJSON_AddStringToObject(o, "model", m[i].name);
		cJSON_AddStringToObject(o, "modified_at", ts);
		cJSON_AddNumberToObject(o, "size", (double)m[i].size);
		cJSON_AddStringToObject(o, "digest", "");
		cJSON_AddItemToObject(o, "details", details(s, m[i].name, NULL));
		cJSON_AddItemToArray(arr, o);
	}
	free(m);
	add_flm_tags(s, arr);
	return server_ollama_send(s, conn, 200, root);
}

static uint64_t model_size(const struct backends_model *m, int n,
			   const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(m[i].name, name) == 0)
			return m[i].size;
	return 0;
}

/* the models with a ready child, each once (chat and embedding children
 * of one model are one entry) */
static enum server_result ps(struct server *s, struct server_conn *conn)
{
	struct lemon_err err = { 0 };
	struct backends_model *m;
	struct backends_status *h = malloc(sizeof(*h));
	cJSON *root, *arr;
	int n = 0, i, k;

	if (h == NULL || list(s, &m, &n, &err) < 0) {
		enum server_result r = h ? server_ollama_lemon_err(s, conn, &err) :
				       server_ollama_error(s, conn, 500, "out of memory");

		free(h);
		return r;
	}
	backends_snapshot(s->b, h);
	root = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(root, "models");
	for (i = 0; i < h->n_children; i++) {
		const struct backends_child_status *c = &h->child[i];
		bool seen = false;
		uint64_t size;
		cJSON *o;

		if (strcmp(c->state, "ready") != 0)
			continue;
		for (k = 0; k < i; k++)
			seen |= strcmp(h->child[k].state, "ready") == 0 &&
				strcmp(h->child[k].model, c->model) == 0;
		if (seen)
			continue;
		size = model_size(m, n, c->model);
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", c->model);
		cJSON_AddStringToObject(o, "model", c->model);
		cJSON_AddNumberToObject(o, "size", (double)size);
		cJSON_AddStringToObject(o, "digest", "");
		cJSON_AddItemToObject(o, "details", details(s, c->model, NULL));
		/* with --idle-timeout: when the child is unloaded unless used
		 * again; without, it stays until unloaded or evicted */
		if (h->idle_timeout_s > 0 && c->idle_s >= 0) {
			char ts[48];
			int64_t left = h->idle_timeout_s - c->idle_s;

			server_ollama_time(ts, sizeof(ts), (int64_t)time(NULL) + (left > 0 ? left : 0), 0);
			cJSON_AddStringToObject(o, "expires_at", ts);
		} else {
			cJSON_AddStringToObject(o, "expires_at", "0001-01-01T00:00:00Z");
		}
		cJSON_AddNumberToObject(o, "size_vram",
					strcmp(c->backend, "cpu") != 0 ? (double)size : 0);
		cJSON_AddItemToArray(arr, o);
	}
	free(m);
	free(h);
	return server_ollama_send(s, conn, 200, root);
}

/* the /props of the model's ready chat child (its chat template and
 * modalities), NULL when none is loaded; /api/show loads nothing and
 * then reads the template from the GGUF itself */
static cJSON *loaded_props(struct server *s, const char *model)
{
	struct backends_status *h = malloc(sizeof(*h));
	cJSON *props = NULL;
	char *body;
	int i;

	if (h == NULL)
		return NULL;
	backends_snapshot(s->b, h);
	for (i = 0; i < h->n_children && props == NULL; i++) {
		const struct backends_child_status *c = &h->child[i];

		if (c->role != BACKENDS_CHAT || strcmp(c->state, "ready") != 0 ||
		    strcmp(c->model, model) != 0)
			continue;
		body = server_child_get(c->port, "/props", OL_PROPS_MAX);
		props = body ? cJSON_Parse(body) : NULL;
		free(body);
	}
	free(h);
	return props;
}

/* the chat template from the model's own GGUF (gi, read by details()),
 * so /api/show answers without a loaded child; NULL when there is none */
static char *gguf_template(struct server *s, const char *model,
			   const struct backends_gguf_info *gi)
{
	char path[4096], *text = NULL;

	if (!gi->has_chat_template ||
	    backends_model_path(s->data_dir, model, path, sizeof(path),
				NULL) < 0 ||
	    backends_gguf_read_template(path, gi, OL_TEMPLATE_MAX, &text,
					NULL) < 0)
		return NULL;
	return text;
}

static void add_u64(cJSON *o, const char *arch, const char *key, uint64_t v)
{
	char k[96];

	if (v == 0)
		return;
	snprintf(k, sizeof(k), "%s.%s", arch, key);
	cJSON_AddNumberToObject(o, k, (double)v);
}

static enum server_result show(struct server *s, struct server_conn *conn,
			    const struct server_req *req)
{
	struct backends_gguf_info gi;
	char model[BACKENDS_NAME_MAX];
	cJSON *root, *o, *info, *caps, *props, *d;
	const cJSON *tpl;
	char *file_tpl = NULL;
	const char *text = "";
	enum server_result rc;

	root = server_ollama_parse(s, conn, req, SERVER_BODY_OLLAMA_SHOW, model,
				   sizeof(model), &rc);
	if (root == NULL)
		return rc;
	cJSON_Delete(root);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "modelfile", "");
	cJSON_AddStringToObject(o, "parameters", "");
	props = loaded_props(s, model);
	d = details(s, model, &gi);
	tpl = cJSON_GetObjectItemCaseSensitive(props, "chat_template");
	if (cJSON_IsString(tpl))
		text = tpl->valuestring;
	else if ((file_tpl = gguf_template(s, model, &gi)) != NULL)
		text = file_tpl;
	cJSON_AddStringToObject(o, "template", text);
	cJSON_AddItemToObject(o, "details", d);
	info = cJSON_AddObjectToObject(o, "model_info");
	if (gi.arch[0]) {
		cJSON_AddStringToObject(info, "general.architecture", gi.arch);
		if (gi.has_file_type)
			cJSON_AddNumberToObject(info, "general.file_type", gi.file_type);
		if (gi.n_params)
			cJSON_AddNumberToObject(info, "general.parameter_count",
						(double)gi.n_params);
		add_u64(info, gi.arch, "context_length", gi.context_length);
		add_u64(info, gi.arch, "block_count", gi.block_count);
		add_u64(info, gi.arch, "embedding_length", gi.embedding_length);
		add_u64(info, gi.arch, "attention.head_count", gi.head_count);
		add_u64(info, gi.arch, "attention.head_count_kv", gi.head_count_kv);
	}
	/* every GGUF that loads can complete text, and the embedding child
	 * (--embeddings) serves any of them; tools when the chat template
	 * (Jinja, --jinja) renders them; vision when a projector is stored
	 * beside the model (its child gets --mmproj) or the child says so */
	caps = cJSON_AddArrayToObject(o, "capabilities");
	cJSON_AddItemToArray(caps, cJSON_CreateString("completion"));
	if (strstr(text, "tools"))
		cJSON_AddItemToArray(caps, cJSON_CreateString("tools"));
	if (backends_model_has_mmproj(s->data_dir, model) ||
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(props, "modalities"), "vision")))
		cJSON_AddItemToArray(caps, cJSON_CreateString("vision"));
	cJSON_AddItemToArray(caps, cJSON_CreateString("embedding"));
	cJSON_Delete(props);
	free(file_tpl);
	return server_ollama_send(s, conn, 200, o);
}

/* the whole upstream body, NUL-terminated; NULL when it broke off */
static ssize_t read_some(void *ctx, char *out, size_t cap)
{
	return server_upstream_read(ctx, out, cap);
}

static char *read_all(struct server_upstream *u, size_t max)
{
	return lemon_read_all(read_some, u, 65536, max);
}

/* POST /api/embed ({"input": string or [strings]}) and the older
 * /api/embeddings ({"prompt": string} -> {"embedding": [...]}) */
static enum server_result embed(struct server *s, struct server_conn *conn,
			     const struct server_req *req, bool legacy)
{
	struct server_req up = { .t0 = req->t0 };
	struct lemon_err err = { 0 };
	struct server_upstream *u = NULL;
	char model[BACKENDS_NAME_MAX], *ans;
	int64_t t0 = server_ollama_now_ns(), load_ns = 0;
	cJSON *root, *in, *body, *res, *out, *arr, *it;
	unsigned status = 0;
	enum server_result rc;

	root = server_ollama_parse(s, conn, req, legacy ? SERVER_BODY_OLLAMA_EMBEDDINGS :
					   SERVER_BODY_OLLAMA_EMBED, model, sizeof(model), &rc);
	if (root == NULL)
		return rc;
	in = cJSON_DetachItemFromObjectCaseSensitive(root, legacy ? "prompt" : "input");
	cJSON_Delete(root);
	if (!cJSON_IsString(in) && !cJSON_IsArray(in)) {
		cJSON_Delete(in);
		return server_ollama_error(s, conn, 400, legacy ?
					"prompt must be a string" :
					"input must be a string or an array of strings");
	}
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "model", model);
	cJSON_AddItemToObject(body, "input", in);
	up.body = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (up.body == NULL)
		return SERVER_NO;
	up.len = strlen(up.body);
	if (server_upstream_open(s, "/v1/embeddings", model, BACKENDS_EMBED, &up,
			      &u, &status, NULL, 0, &load_ns, &err) < 0) {
		free(up.body);
		return server_ollama_lemon_err(s, conn, &err);
	}
	free(up.body);
	ans = read_all(u, OL_EMBED_MAX);
	server_upstream_close(u);
	if (status >= 400) {
		rc = server_child_error(s, conn, SERVER_SHAPE_OLLAMA, status, ans, ans ? strlen(ans) : 0);
		free(ans);
		return rc;
	}
	res = ans ? cJSON_Parse(ans) : NULL;
	free(ans);
	if (status != 200 || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(res, "data"))) {
		cJSON_Delete(res);
		return server_ollama_error(s, conn, 502, "the backend returned no embeddings");
	}
	out = cJSON_CreateObject();
	if (legacy) {
		it = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res, "data"), 0);
		cJSON_AddItemToObject(out, "embedding",
				      cJSON_DetachItemFromObjectCaseSensitive(it, "embedding"));
		cJSON_Delete(res);
		return server_ollama_send(s, conn, 200, out);
	}
	cJSON_AddStringToObject(out, "model", model);
	arr = cJSON_AddArrayToObject(out, "embeddings");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(res, "data"))
		cJSON_AddItemToArray(arr, cJSON_DetachItemFromObjectCaseSensitive(it, "embedding"));
	cJSON_AddNumberToObject(out, "total_duration", (double)(server_ollama_now_ns() - t0));
	cJSON_AddNumberToObject(out, "load_duration", (double)load_ns);
	cJSON_AddNumberToObject(out, "prompt_eval_count",
				cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(
					cJSON_GetObjectItemCaseSensitive(res, "usage"),
					"prompt_tokens")));
	cJSON_Delete(res);
	return server_ollama_send(s, conn, 200, out);
}

enum server_result server_ollama_root(const struct server_call *k)
{
	return server_send_json(k->s, k->c, 200, "\"lemon is running\"");
}

/* Ollama's clients compare "version" with the Ollama release that brought
 * what they use (tools, structured outputs): lemon answers a release with
 * all of them, and its own version beside it */
#define OLLAMA_COMPAT_VERSION "0.12.0"

enum server_result server_ollama_version(const struct server_call *k)
{
	return server_send_json(k->s, k->c, 200,
				"{\"version\":\"" OLLAMA_COMPAT_VERSION "\",\"lemon_version\":\"" LEMON_VERSION
				"\"}");
}

enum server_result server_ollama_tags(const struct server_call *k)
{
	return tags(k->s, k->c);
}

enum server_result server_ollama_ps(const struct server_call *k)
{
	return ps(k->s, k->c);
}

enum server_result server_ollama_show(const struct server_call *k)
{
	return show(k->s, k->c, k->req);
}

enum server_result server_ollama_embed(const struct server_call *k)
{
	return embed(k->s, k->c, k->req, false);
}

enum server_result server_ollama_embeddings(const struct server_call *k)
{
	return embed(k->s, k->c, k->req, true);
}
