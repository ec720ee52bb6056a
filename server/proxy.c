/* the forwarded routes (OpenAI chat, completions, embeddings, responses,
 * rerank; Anthropic messages): validate the request, have the upstream
 * client (server/upstream.c) lease a child and send the body unchanged,
 * and stream the answer back through a reader that passes the child's
 * bytes on as they arrive (the server re-chunks for the client). A child
 * that dies mid-stream ends an SSE stream with an error event; before the
 * answer's head it is a 502. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-private.h"
#include "util/str.h"

#define PX_BUF 16384
#define PX_ERR_MAX 65536 /* of a child's error body */

struct px {
	struct server_upstream *u;
	enum server_shape shape;
	bool error_sent;
};

static ssize_t px_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	static const char ev[] =
		"data: {\"error\":{\"message\":\"the backend stopped before the response was complete\",\"type\":\"server_error\",\"param\":null,\"code\":\"backend_failed\"}}\n\n";
	static const char ev_anthropic[] =
		"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"the backend stopped before the response was complete\"}}\n\n";
	const char *e = ev;
	size_t elen = sizeof(ev) - 1;
	struct px *p = cls;
	ssize_t n;

	(void)pos;
	if (p->error_sent)
		return SERVER_READER_END_OF_STREAM;
	n = server_upstream_read(p->u, buf, max);
	if (n > 0)
		return n;
	if (n == 0)
		return SERVER_READER_END_OF_STREAM;
	fprintf(stderr, "lemon: %s: backend connection broke off mid-response\n",
		server_upstream_model(p->u));
	if (p->shape == SERVER_SHAPE_ANTHROPIC) {
		e = ev_anthropic;
		elen = sizeof(ev_anthropic) - 1;
	}
	if (!server_upstream_sse(p->u) || max < elen)
		return SERVER_READER_END_WITH_ERROR;
	memcpy(buf, e, elen);
	p->error_sent = true;
	return (ssize_t)elen;
}

static void px_free(void *cls)
{
	struct px *p = cls;

	server_upstream_close(p->u);
	free(p);
}

/* validates the body (server/body.h): the model name and whether it
 * streams; NULL with the 400 queued in *rc when it is refused */
/* an image part in a message's content: OpenAI chat's "image_url",
 * Anthropic's "image", the Responses API's "input_image" */
static bool has_image(const cJSON *root)
{
	static const char *const lists[] = { "messages", "input" };
	const cJSON *m, *part, *t;
	size_t i;

	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(root, lists[i]))
			cJSON_ArrayForEach(part, cJSON_GetObjectItemCaseSensitive(m, "content")) {
				t = cJSON_GetObjectItemCaseSensitive(part, "type");
				if (cJSON_IsString(t) && (strcmp(t->valuestring, "image_url") == 0 ||
							  strcmp(t->valuestring, "image") == 0 ||
							  strcmp(t->valuestring, "input_image") == 0))
					return true;
			}
	return false;
}

static bool px_check(struct server *s, struct server_conn *conn, const struct server_route *rt,
		     const struct server_req *req, char *model, size_t cap, bool *stream,
		     enum server_result *rc)
{
	cJSON *root = server_body_request(s, conn, req, rt->body, rc);
	bool refuse;

	if (root == NULL)
		return false;
	lemon_str_copy(model, cap, cJSON_GetObjectItemCaseSensitive(root, "model")->valuestring);
	*stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "stream"));
	/* an image for a model without a vision projector: a clear 400 here
	 * rather than the child's 500 "image input is not supported" */
	refuse = rt->role == BACKENDS_CHAT && has_image(root) &&
		 !backends_model_has_mmproj(s->data_dir, model);
	cJSON_Delete(root);
	if (refuse) {
		*rc = server_send_shaped(s, conn, rt->shape, 400, "no_vision_projector",
					 "images need a model with a vision projector (mmproj); model '%s' has none (import one with lemon pull --file MODEL --mmproj PROJ NAME)",
					 model);
		return false;
	}
	return true;
}

/* the child answered with an error status: its body (bounded) re-shaped
 * in the route's error shape, a 4xx kept as the same 4xx */
static enum server_result px_error(struct server *s, struct server_conn *conn,
				   const struct server_route *rt, struct server_upstream *u,
				   unsigned status)
{
	char *b = malloc(PX_ERR_MAX + 1);
	size_t len = 0;
	ssize_t n;
	enum server_result rc;

	server_upstream_finish(u, false);
	while (b && len < PX_ERR_MAX && (n = server_upstream_read(u, b + len, PX_ERR_MAX - len)) > 0)
		len += (size_t)n;
	rc = server_child_error(s, conn, rt->shape, status, b, b ? len : 0);
	free(b);
	server_upstream_close(u);
	return rc;
}

enum server_result server_proxy(struct server *s, struct server_conn *conn,
				const struct server_route *rt, struct server_req *req)
{
	struct lemon_err err = { 0 };
	struct server_upstream *u = NULL;
	struct server_response *r;
	enum server_result rc = SERVER_YES;
	char ctype[128] = "application/json", model[BACKENDS_NAME_MAX];
	unsigned status = 0;
	bool stream = false;
	struct px *p;

	if (!px_check(s, conn, rt, req, model, sizeof(model), &stream, &rc))
		return rc;
	switch (server_upstream_open(s, rt->upstream, model, rt->role, req, &u, &status, ctype,
				     sizeof(ctype), NULL, &err)) {
	case 0:
		break;
	case -2:
		return server_send_shaped(s, conn, rt->shape, 502, "backend_failed", "%s", err.msg);
	default:
		return server_send_lemon_err_shaped(s, conn, rt->shape, &err);
	}
	server_upstream_set_stream(u, stream);
	if (status >= 400)
		return px_error(s, conn, rt, u, status);
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		server_upstream_close(u);
		return SERVER_NO;
	}
	p->u = u;
	p->shape = rt->shape;
	r = server_response_from_callback(server_upstream_size(u), PX_BUF, px_read, p, px_free);
	if (r == NULL) {
		px_free(p);
		return SERVER_NO;
	}
	server_response_add_header(r, "Content-Type", ctype);
	if (server_upstream_sse(u)) {
		server_response_add_header(r, "Cache-Control", "no-cache");
		server_response_add_header(r, "X-Accel-Buffering", "no");
	}
	rc = server_queue_response(conn, status, r);
	server_response_destroy(r);
	return rc;
}
