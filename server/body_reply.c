/* the answers around request-body validation and child errors, in the
 * route family's error shape: a refused body is a 400 naming the field
 * (OpenAI: {"error":{"message","type","param","code"}}, Ollama:
 * {"error":"..."}), and a child's own 4xx stays the same 4xx, its
 * message kept when the child's body is JSON: the client sent something
 * the child refuses, which is not a server failure (500/502). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-private.h"

#define CHILD_MSG_MAX 512

cJSON *server_body_request(struct server *s, struct server_conn *conn,
			   const struct server_req *req, enum server_body_route route,
			   enum server_result *rc)
{
	struct server_body_err e;
	cJSON *root = server_body_parse(req->body, req->len, route, &e);

	if (root != NULL)
		return root;
	if (server_body_route_is_ollama(route))
		*rc = server_ollama_error(s, conn, 400, "%s", e.msg);
	else if (route == SERVER_BODY_MESSAGES || route == SERVER_BODY_COUNT_TOKENS)
		*rc = server_send_shaped(s, conn, SERVER_SHAPE_ANTHROPIC, 400, NULL, "%s", e.msg);
	else
		*rc = server_send_param_error(s, conn, 400, "invalid_request_error", e.param,
					      server_body_fault_code(e.fault), "%s", e.msg);
	return NULL;
}

enum server_result server_child_error(struct server *s, struct server_conn *conn,
				      enum server_shape shape,
				      unsigned status, const char *body, size_t len)
{
	cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *m = cJSON_IsString(e) ? e : cJSON_GetObjectItemCaseSensitive(e, "message");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "type");
	char msg[CHILD_MSG_MAX], code[64];
	bool client = status >= 400 && status < 500;
	enum server_result rc;

	/* the child's words only when they are its JSON error (an HTML or
	 * text page is not echoed); clipped to whole UTF-8 characters */
	if (cJSON_IsString(m) && m->valuestring[0])
		server_body_clip(msg, sizeof(msg), m->valuestring, strlen(m->valuestring));
	else
		snprintf(msg, sizeof(msg), "llama-server answered with status %u", status);
	if (cJSON_IsString(t) && t->valuestring[0])
		server_body_clip(code, sizeof(code), t->valuestring, strlen(t->valuestring));
	else
		snprintf(code, sizeof(code), "%s", client ? "invalid_request" : "backend_error");
	if (status < 400 || status > 599)
		status = 502;
	if (shape != SERVER_SHAPE_OPENAI)
		rc = server_send_shaped(s, conn, shape, status, code, "%s", msg);
	else
		rc = server_send_error(s, conn, status,
				       client ? "invalid_request_error" : "server_error", code, "%s",
				       msg);
	cJSON_Delete(j);
	return rc;
}
