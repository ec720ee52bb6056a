/* the libmicrohttpd daemon: request bodies collected under a size limit,
 * bearer-key check, CORS, routing, and the error responses every route
 * shares */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "server/server-private.h"
#include "util/str.h"

/* temporary: the new server API (server-private.h) over libmicrohttpd
 * until lemon's own HTTP/1.1 server replaces it */
struct server_http {
	struct MHD_Daemon *d;
};

struct server_response *server_response_from_buffer(size_t len, void *buf,
						    enum server_respmem mode)
{
	return (struct server_response *)MHD_create_response_from_buffer(
		len, buf, mode == SERVER_RESPMEM_MUST_COPY ? MHD_RESPMEM_MUST_COPY :
							     MHD_RESPMEM_PERSISTENT);
}

struct server_response *server_response_from_callback(uint64_t size, size_t block,
						      server_reader_fn reader,
						      void *cls,
						      server_reader_free_fn free_cb)
{
	return (struct server_response *)MHD_create_response_from_callback(
		size == SERVER_SIZE_UNKNOWN ? MHD_SIZE_UNKNOWN : size, block,
		reader, cls, free_cb);
}

enum server_result server_response_add_header(struct server_response *r,
					      const char *name,
					      const char *value)
{
	return MHD_add_response_header((struct MHD_Response *)r, name, value) ==
			       MHD_YES ? SERVER_YES : SERVER_NO;
}

enum server_result server_queue_response(struct server_conn *c, unsigned status,
					 struct server_response *r)
{
	return MHD_queue_response((struct MHD_Connection *)c, status,
				  (struct MHD_Response *)r) == MHD_YES ?
		       SERVER_YES : SERVER_NO;
}

void server_response_destroy(struct server_response *r)
{
	MHD_destroy_response((struct MHD_Response *)r);
}

const char *server_conn_header(struct server_conn *c, const char *name)
{
	return MHD_lookup_connection_value((struct MHD_Connection *)c,
					   MHD_HEADER_KIND, name);
}

int64_t server_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void server_add_cors(struct server *s, struct server_response *r)
{
	if (s->cfg.cors_origin[0] == 0)
		return;
	server_response_add_header(r, "Access-Control-Allow-Origin",
				s->cfg.cors_origin);
	server_response_add_header(r, "Access-Control-Allow-Methods",
				"GET, POST, DELETE, OPTIONS");
	server_response_add_header(r, "Access-Control-Allow-Headers",
				"Authorization, Content-Type");
}

enum server_result server_send_json(struct server *s, struct server_conn *conn,
			      unsigned status, const char *json)
{
	struct server_response *r;
	enum server_result rc;

	r = server_response_from_buffer(strlen(json), (void *)json,
					    SERVER_RESPMEM_MUST_COPY);
	if (r == NULL)
		return SERVER_NO;
	server_response_add_header(r, "Content-Type", "application/json");
	server_add_cors(s, r);
	rc = server_queue_response(conn, status, r);
	server_response_destroy(r);
	return rc;
}

enum server_result server_send_error(struct server *s, struct server_conn *conn,
			       unsigned status, const char *type,
			       const char *code, const char *fmt, ...)
{
	cJSON *root = cJSON_CreateObject(), *e;
	char msg[512];
	enum server_result rc = SERVER_NO;
	char *out;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (root == NULL)
		return SERVER_NO;
	e = cJSON_AddObjectToObject(root, "error");
	if (e) {
		cJSON_AddStringToObject(e, "message", msg);
		cJSON_AddStringToObject(e, "type", type);
		cJSON_AddNullToObject(e, "param");
		if (code)
			cJSON_AddStringToObject(e, "code", code);
		else
			cJSON_AddNullToObject(e, "code");
	}
	out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (out) {
		rc = server_send_json(s, conn, status, out);
		free(out);
	}
	return rc;
}

enum server_result server_send_lemon_err(struct server *s,
				   struct server_conn *conn,
				   const struct lemon_err *err)
{
	switch (err->code) {
	case LEMON_ERR_INVALID_ARG:
	case LEMON_ERR_INVALID_DATA:
		return server_send_error(s, conn, 400, "invalid_request_error",
				      "invalid_value", "%s", err->msg);
	case LEMON_ERR_NOT_FOUND:
		return server_send_error(s, conn, 404, "invalid_request_error",
				      "model_not_found", "%s", err->msg);
	case LEMON_ERR_BUSY:
		return server_send_error(s, conn, 503, "server_error",
				      "busy", "%s", err->msg);
	case LEMON_ERR_NETWORK:
		return server_send_error(s, conn, 502, "server_error",
				      "backend_unreachable", "%s", err->msg);
	default:
		return server_send_error(s, conn, 503, "server_error",
				      "backend_unavailable", "%s", err->msg);
	}
}

/* constant-time so the key cannot be guessed byte by byte from timing */
static bool key_ok(struct server *s, struct server_conn *conn)
{
	const char *h = server_conn_header(conn, "Authorization");
	const char *key = s->cfg.api_key;
	size_t kl = strlen(key), hl, i;
	unsigned diff = 0;

	if (kl == 0)
		return true;
	if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	hl = strlen(h);
	diff = hl != kl;
	for (i = 0; i < kl; i++)
		diff |= (unsigned)(key[i] ^ (i < hl ? h[i] : 0));
	return diff == 0;
}

static enum server_result preflight(struct server *s, struct server_conn *conn)
{
	struct server_response *r =
		server_response_from_buffer(0, NULL, SERVER_RESPMEM_PERSISTENT);
	enum server_result rc;

	if (r == NULL)
		return SERVER_NO;
	server_add_cors(s, r);
	server_response_add_header(r, "Access-Control-Max-Age", "600");
	rc = server_queue_response(conn, 204, r);
	server_response_destroy(r);
	return rc;
}

#define BAD_KEY "missing or wrong API key (Authorization: Bearer KEY)"

static enum server_result route(struct server *s, struct server_conn *conn,
			     const char *url, const char *method,
			     struct server_req *req)
{
	bool post = strcmp(method, "POST") == 0;
	/* Ollama clients read {"error": "..."} */
	bool ollama = strcmp(url, "/") == 0 ||
		      (strncmp(url, "/api/", 5) == 0 && strncmp(url, "/api/v1/", 8) != 0);

	if (strcmp(method, "OPTIONS") == 0)
		return preflight(s, conn);
	if (!key_ok(s, conn) && ollama)
		return server_ollama_error(s, conn, 401, "%s", BAD_KEY);
	if (!key_ok(s, conn))
		return server_send_error(s, conn, 401, "invalid_request_error",
				      "invalid_api_key", "%s", BAD_KEY);
	if (req->too_large)
		return server_send_error(s, conn, 413, "invalid_request_error",
				      "request_too_large",
				      "request body larger than %zu bytes",
				      s->cfg.max_body);
	if (strcmp(url, "/v1/chat/completions") == 0 ||
	    strcmp(url, "/v1/completions") == 0 ||
	    strcmp(url, "/v1/embeddings") == 0) {
		if (!post)
			return server_send_error(s, conn, 405, "invalid_request_error",
					      "method_not_allowed",
					      "%s needs POST", url);
		return server_proxy(s, conn, url, req);
	}
	return server_api(s, conn, url, method, req);
}

static bool body_over_limit(struct server *s, struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						     "Content-Length");
	uint64_t n;

	if (cl == NULL)
		return false;
	return lemon_parse_u64(cl, strlen(cl), 10, UINT64_MAX / 2, &n, NULL) < 0 ||
	       n > s->cfg.max_body;
}

static int append(struct server *s, struct server_req *req, const char *data,
		  size_t n)
{
	size_t need = req->len + n + 1;

	if (req->len + n > s->cfg.max_body) {
		req->too_large = true;
		return 0;
	}
	if (need > req->cap) {
		size_t cap = req->cap ? req->cap : 4096;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(req->body, cap);
		if (p == NULL)
			return -1;
		req->body = p;
		req->cap = cap;
	}
	memcpy(req->body + req->len, data, n);
	req->len += n;
	req->body[req->len] = 0;
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *data,
				  size_t *size, void **con_cls)
{
	struct server *s = cls;
	struct server_req *req = *con_cls;

	(void)version;
	if (req == NULL) {
		req = calloc(1, sizeof(*req));
		if (req == NULL)
			return MHD_NO;
		req->t0 = server_now_ms();
		*con_cls = req;
		/* a declared oversized body is refused before it is read */
		if (body_over_limit(s, conn)) {
			req->too_large = true;
			return server_send_error(s, (struct server_conn *)conn, 413,
						 "invalid_request_error", "request_too_large",
						 "request body larger than %zu bytes",
						 s->cfg.max_body) == SERVER_YES ?
				       MHD_YES : MHD_NO;
		}
		return MHD_YES;
	}
	if (*size > 0) {
		if (!req->too_large && append(s, req, data, *size) < 0)
			return MHD_NO;
		*size = 0;
		/* a body trickled in slower than the timeout (slow-loris) ends
		 * the connection: libmicrohttpd 0.9.75 takes no response
		 * before the whole body is in, so there is no 408 to send */
		if (server_now_ms() - req->t0 > s->cfg.timeout_s * 1000LL) {
			fprintf(stderr, "lemon: request body slower than %d s, connection closed\n",
				s->cfg.timeout_s);
			return MHD_NO;
		}
		return MHD_YES;
	}
	return route(s, (struct server_conn *)conn, url, method, req) == SERVER_YES ?
		       MHD_YES : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn,
			 void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct server_req *req = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (req == NULL)
		return;
	free(req->body);
	free(req);
	*con_cls = NULL;
}

int server_start(const struct server_config *c, struct backends *b,
		 const char *data_dir, const char *system_info,
		 struct server **out, struct lemon_err *err)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct server *s;

	*out = NULL;
	if (inet_pton(AF_INET, c->host, &sa.sin_addr) != 1)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "host '%s' is not an IPv4 address", c->host);
	sa.sin_port = htons((uint16_t)c->port);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	if (server_mhd_load(err) < 0) {
		free(s);
		return -1;
	}
	s->cfg = *c;
	s->b = b;
	lemon_str_copy(s->data_dir, sizeof(s->data_dir), data_dir);
	s->sysinfo = strdup(system_info ? system_info : "null");
	pthread_mutex_init(&s->mu, NULL);
	s->http = calloc(1, sizeof(*s->http));
	if (s->http == NULL) {
		server_stop(s);
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	}
	s->http->d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG,
		0, NULL, NULL, on_request, s,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->timeout_s,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_conns,
		MHD_OPTION_THREAD_STACK_SIZE, (size_t)256 * 1024,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
		MHD_OPTION_END);
	if (s->http->d == NULL) {
		server_stop(s);
		return lemon_err_set(err, LEMON_ERR_IO,
				     "cannot listen on %s:%d (in use or not permitted)",
				     c->host, c->port);
	}
	*out = s;
	return 0;
}

void server_quiesce(struct server *s)
{
	MHD_socket fd;

	if (s == NULL || s->http == NULL || s->http->d == NULL)
		return;
	fd = MHD_quiesce_daemon(s->http->d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

void server_stop(struct server *s)
{
	if (s == NULL)
		return;
	if (s->http && s->http->d)
		MHD_stop_daemon(s->http->d);
	free(s->http);
	pthread_mutex_destroy(&s->mu);
	free(s->sysinfo);
	free(s);
}
