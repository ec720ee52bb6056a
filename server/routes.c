/* the route table: every (method, path) lemon answers, the handler, the
 * error shape its clients parse, and for the forwarded routes the child's
 * path, the body's checks and the child's role. Lemonade's rule that each
 * of its routes answers under /api/v0, /api/v1, /v0 and /v1 is one flag
 * (SERVER_ROUTE_PREFIXED) rather than four rows each. The router
 * (server/http.c) looks requests up here; the handlers never see the
 * table, so no handler calls back into routing. */
#include <stdio.h>
#include <string.h>

#include "server/server-private.h"
#include "util/str.h"

static enum server_result h_forward(const struct server_call *k)
{
	return server_proxy(k->s, k->c, k->rt, k->req);
}

static enum server_result h_pull(const struct server_call *k)
{
	return server_pull(k->s, k->c, k->req, k->rt->shape == SERVER_SHAPE_OLLAMA);
}

static enum server_result h_delete(const struct server_call *k)
{
	return server_delete(k->s, k->c, k->req, k->rt->shape == SERVER_SHAPE_OLLAMA);
}

static enum server_result h_chat(const struct server_call *k)
{
	return server_ollama_generate(k->s, k->c, k->req, true);
}

static enum server_result h_generate(const struct server_call *k)
{
	return server_ollama_generate(k->s, k->c, k->req, false);
}

#define P SERVER_ROUTE_PREFIXED
#define TAIL SERVER_ROUTE_TAIL
#define OAI SERVER_SHAPE_OPENAI
#define OLL SERVER_SHAPE_OLLAMA
#define ANT SERVER_SHAPE_ANTHROPIC
#define IMG SERVER_ROUTE_IMAGES
#define FWDF(path, up, body, role, shape, flags)                                                   \
	{ "POST", path, ((shape) == ANT ? 0 : P) | (flags), shape, h_forward, up, body, role }
#define FWD(path, up, body, role, shape) FWDF(path, up, body, role, shape, 0)

/* first match wins; a path that matches with another method is a 405 */
static const struct server_route routes[] = {
	/* OpenAI, forwarded to the child unchanged */
	FWDF("chat/completions", "/v1/chat/completions", SERVER_BODY_CHAT, BACKENDS_CHAT, OAI, IMG),
	FWD("completions", "/v1/completions", SERVER_BODY_COMPLETIONS, BACKENDS_CHAT, OAI),
	FWD("embeddings", "/v1/embeddings", SERVER_BODY_EMBEDDINGS, BACKENDS_EMBED, OAI),
	FWDF("responses", "/v1/responses", SERVER_BODY_RESPONSES, BACKENDS_CHAT, OAI, IMG),
	/* llama.cpp's rerank, with Lemonade's two aliases */
	FWD("rerank", "/v1/rerank", SERVER_BODY_RERANK, BACKENDS_RERANK, OAI),
	FWD("reranking", "/v1/rerank", SERVER_BODY_RERANK, BACKENDS_RERANK, OAI),
	FWD("reranker", "/v1/rerank", SERVER_BODY_RERANK, BACKENDS_RERANK, OAI),
	/* Anthropic's Messages API: /v1 only, as Anthropic's SDK calls it */
	FWDF("/v1/messages", "/v1/messages", SERVER_BODY_MESSAGES, BACKENDS_CHAT, ANT, IMG),
	/* counts the tokens of the same messages, images included */
	FWDF("/v1/messages/count_tokens", "/v1/messages/count_tokens",
	     SERVER_BODY_COUNT_TOKENS, BACKENDS_CHAT, ANT, IMG),
	/* the model list and lemon's own routes (Lemonade's names) */
	{ "GET", "models", P, OAI, server_api_models, NULL, 0, 0 },
	{ "GET", "models/", P | TAIL, OAI, server_api_model, NULL, 0, 0 },
	{ "GET", "health", P, OAI, server_api_health, NULL, 0, 0 },
	{ "GET", "system-info", P, OAI, server_api_sysinfo, NULL, 0, 0 },
	{ "GET", "stats", P, OAI, server_api_stats, NULL, 0, 0 },
	{ "GET", "logs", P, OAI, server_logs_route, NULL, 0, 0 },
	{ "GET", "plans", P, OAI, server_plans_route, NULL, 0, 0 },
	{ "GET", "plans/", P | TAIL, OAI, server_plans_route, NULL, 0, 0 },
	{ "GET", "backends", P, OAI, server_backends_route, NULL, 0, 0 },
	{ "POST", "backends/install", P, OAI, server_backends_install, NULL, 0, 0 },
	{ "POST", "load", P, OAI, server_api_load, NULL, 0, 0 },
	{ "POST", "unload", P, OAI, server_api_unload, NULL, 0, 0 },
	{ "POST", "shutdown", P, OAI, server_api_shutdown, NULL, 0, 0 },
	{ "POST", "pull", P, OAI, h_pull, NULL, 0, 0 },
	{ "POST", "delete", P, OAI, h_delete, NULL, 0, 0 },
	/* probes and scrapes, unversioned as in Lemonade */
	/* liveness probes carry no key, and the answer is only {"status":"ok"}:
	 * open, as Lemonade's is (lemonade-sdk/lemonade@e385039
	 * src/cpp/server/server.cpp authenticate_request checks the key on
	 * /api/, /v0/, /v1/, /mcp and /metrics only; handle_live answers
	 * {"status":"ok"}). The Host and Origin checks still apply. */
	{ "GET", "/live", SERVER_ROUTE_OPEN, OAI, server_api_live, NULL, 0, 0 },
	{ "GET", "/metrics", 0, OAI, server_metrics_route, NULL, 0, 0 },
	/* the web app's files (server/ui.c), loaded without the key */
	{ "GET", "/ui", SERVER_ROUTE_OPEN, OAI, server_ui_asset, NULL, 0, 0 },
	{ "GET", "/ui/", SERVER_ROUTE_OPEN, OAI, server_ui_asset, NULL, 0, 0 },
	{ "GET", "/ui/", SERVER_ROUTE_OPEN | TAIL, OAI, server_ui_asset, NULL, 0, 0 },
	/* Ollama */
	{ "GET", "/", 0, OLL, server_ui_root, NULL, 0, 0 },
	{ "GET", "/api/version", 0, OLL, server_ollama_version, NULL, 0, 0 },
	{ "GET", "/api/tags", 0, OLL, server_ollama_tags, NULL, 0, 0 },
	{ "GET", "/api/ps", 0, OLL, server_ollama_ps, NULL, 0, 0 },
	{ "POST", "/api/chat", IMG, OLL, h_chat, NULL, 0, 0 },
	{ "POST", "/api/generate", IMG, OLL, h_generate, NULL, 0, 0 },
	{ "POST", "/api/show", 0, OLL, server_ollama_show, NULL, 0, 0 },
	{ "POST", "/api/embed", 0, OLL, server_ollama_embed, NULL, 0, 0 },
	{ "POST", "/api/embeddings", 0, OLL, server_ollama_embeddings, NULL, 0, 0 },
	{ "POST", "/api/pull", 0, OLL, h_pull, NULL, 0, 0 },
	{ "DELETE", "/api/delete", 0, OLL, h_delete, NULL, 0, 0 },
};

static const char *const prefixes[] = { "/api/v0/", "/api/v1/", "/v0/", "/v1/" };

/* the rest of path after one of Lemonade's prefixes, or NULL */
static const char *unprefixed(const char *path)
{
	size_t i;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(path, prefixes[i], strlen(prefixes[i])) == 0)
			return path + strlen(prefixes[i]);
	return NULL;
}

/* path against one row; *tail set for a TAIL row */
static bool path_matches(const struct server_route *r, const char *path, const char *rest,
			 const char **tail)
{
	const char *p = r->flags & SERVER_ROUTE_PREFIXED ? rest : path;
	size_t n = strlen(r->path);

	if (p == NULL)
		return false;
	if (r->flags & SERVER_ROUTE_TAIL) {
		/* one non-empty segment after the row's path */
		if (strncmp(p, r->path, n) != 0 || p[n] == 0 || strchr(p + n, '/'))
			return false;
		*tail = p + n;
		return true;
	}
	return strcmp(p, r->path) == 0;
}

const struct server_route *server_route_find(const char *method, const char *path,
					     const char **tail, bool *other_method)
{
	const struct server_route *other = NULL;
	const char *rest = unprefixed(path);
	size_t i;

	*tail = NULL;
	*other_method = false;
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!path_matches(&routes[i], path, rest, tail))
			continue;
		if (strcmp(routes[i].method, method) == 0)
			return &routes[i];
		if (other == NULL)
			other = &routes[i];
	}
	*tail = NULL;
	*other_method = other != NULL;
	return other;
}

/* base64 images make chat bodies megabytes long (a phone photo is 3-5
 * MiB of base64), while every other route's body is a few names: only the
 * image routes get the large limit, so an unauthenticated client cannot
 * make lemon hold 32 MiB per connection on a route that never needs it.
 * llama-server's own limit (cpp-httplib's CPPHTTPLIB_PAYLOAD_MAX_LENGTH in
 * the bundle's vendor/cpp-httplib/httplib.h) is 100 MB for every route;
 * Ollama sets none on a plain body (ollama/ollama@fb30760 limits only a
 * zstd-compressed Responses body, to 20 MiB once decompressed:
 * middleware/openai.go maxDecompressedBodySize). */
size_t server_route_body_limit(const struct server_config *cfg, const char *method,
			       const char *path)
{
	const struct server_route *r;
	const char *tail;
	bool other;

	r = server_route_find(method, path, &tail, &other);
	if (r != NULL && !other && (r->flags & SERVER_ROUTE_IMAGES) &&
	    cfg->max_image_body > cfg->max_body)
		return cfg->max_image_body;
	return cfg->max_body;
}

enum server_shape server_route_shape(const char *path)
{
	const struct server_route *r;
	const char *tail;
	bool other;

	/* a method does not change a path's family: any row of the path */
	r = server_route_find("", path, &tail, &other);
	if (r != NULL)
		return r->shape;
	if (strcmp(path, "/") == 0 ||
	    (strncmp(path, "/api/", 5) == 0 && unprefixed(path) == NULL))
		return SERVER_SHAPE_OLLAMA;
	if (strncmp(path, "/v1/messages", 12) == 0)
		return SERVER_SHAPE_ANTHROPIC;
	return SERVER_SHAPE_OPENAI;
}

void server_route_label(const struct server_route *r, char *out, size_t cap)
{
	if (r == NULL)
		lemon_str_copy(out, cap, "other");
	else if ((r->flags & SERVER_ROUTE_TAIL) && !(r->flags & SERVER_ROUTE_PREFIXED))
		snprintf(out, cap, "%s{file}", r->path);
	else if (r->flags & SERVER_ROUTE_TAIL)
		snprintf(out, cap, "/v1/%s{id}", r->path);
	else if (r->flags & SERVER_ROUTE_PREFIXED)
		snprintf(out, cap, "/v1/%s", r->path);
	else
		lemon_str_copy(out, cap, r->path);
}
