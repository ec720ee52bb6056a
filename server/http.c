/* what every request goes through before its route: the checks that keep
 * a web page from driving a local server (Host must be loopback or the
 * configured host, so DNS rebinding fails; a foreign Origin is refused;
 * state-changing requests must be application/json, which a page cannot
 * send without a preflight; CORS headers only for the origins named in
 * cors_origin), the bearer key, routing, and the error responses every
 * route shares, always JSON in the route family's shape */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <cjson/cJSON.h>

#include "server/server-private.h"
#include "util/str.h"

int64_t server_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* length of the valid UTF-8 sequence at p (at most n bytes), 0 if none */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/* pre as a whole path prefix at p ("/home/u" not in "/home/user2") */
static bool prefix_at(const char *p, const char *pre, size_t n)
{
	return n > 1 && strncmp(p, pre, n) == 0 && strchr("/'\" :,)", p[n]) != NULL;
}

void server_clean_message(const struct server *s, const char *in, char *out, size_t cap)
{
	const char *home = getenv("HOME");
	size_t dl = s ? strlen(s->data_dir) : 0, hl = home ? strlen(home) : 0;
	size_t o = 0, n = strlen(in), i = 0;

	while (i < n && o + 5 < cap) {
		const char *put = NULL;
		size_t k;

		if (dl && prefix_at(in + i, s->data_dir, dl)) {
			put = "<data>";
			i += dl;
		} else if (hl && prefix_at(in + i, home, hl)) {
			put = "~";
			i += hl;
		}
		if (put) {
			if (o + strlen(put) + 1 > cap)
				break;
			memcpy(out + o, put, strlen(put));
			o += strlen(put);
			continue;
		}
		k = utf8_len((const unsigned char *)in + i, n - i);
		if (k == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3); /* U+FFFD */
			o += 3;
			i++;
			continue;
		}
		if (o + k + 1 > cap)
			break;
		memcpy(out + o, in + i, k);
		o += k;
		i += k;
	}
	out[o] = 0;
}

enum server_result server_send_json(struct server *s, struct server_conn *conn,
				    unsigned status, const char *json)
{
	struct server_response *r;
	enum server_result rc;

	(void)s;
	r = server_response_from_buffer(strlen(json), (void *)json,
					SERVER_RESPMEM_MUST_COPY);
	if (r == NULL)
		return SERVER_NO;
	server_response_add_header(r, "Content-Type", "application/json");
	/* 503 is "busy or not ready yet" (every loaded model serving, shutting
	 * down, a backend starting): say when to try again */
	if (status == 503)
		server_response_add_header(r, "Retry-After", "5");
	rc = server_queue_response(conn, status, r);
	server_response_destroy(r);
	return rc;
}

static enum server_result send_error_v(struct server *s, struct server_conn *conn,
				       unsigned status, const char *type, const char *param,
				       const char *code, const char *fmt, va_list ap)
{
	cJSON *root = cJSON_CreateObject(), *e;
	char raw[512], msg[1024];
	enum server_result rc = SERVER_NO;
	char *out;

	vsnprintf(raw, sizeof(raw), fmt, ap);
	server_clean_message(s, raw, msg, sizeof(msg));
	if (root == NULL)
		return SERVER_NO;
	e = cJSON_AddObjectToObject(root, "error");
	if (e) {
		cJSON_AddStringToObject(e, "message", msg);
		cJSON_AddStringToObject(e, "type", type);
		if (param && param[0])
			cJSON_AddStringToObject(e, "param", param);
		else
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

enum server_result server_send_error(struct server *s, struct server_conn *conn,
				     unsigned status, const char *type, const char *code,
				     const char *fmt, ...)
{
	enum server_result rc;
	va_list ap;

	va_start(ap, fmt);
	rc = send_error_v(s, conn, status, type, NULL, code, fmt, ap);
	va_end(ap);
	return rc;
}

enum server_result server_send_param_error(struct server *s, struct server_conn *conn,
					   unsigned status, const char *type, const char *param,
					   const char *code, const char *fmt, ...)
{
	enum server_result rc;
	va_list ap;

	va_start(ap, fmt);
	rc = send_error_v(s, conn, status, type, param, code, fmt, ap);
	va_end(ap);
	return rc;
}

enum server_result server_send_lemon_err(struct server *s, struct server_conn *conn,
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
		return server_send_error(s, conn, 503, "server_error", "busy", "%s",
					 err->msg);
	case LEMON_ERR_NETWORK:
		return server_send_error(s, conn, 502, "server_error",
					 "backend_unreachable", "%s", err->msg);
	default:
		return server_send_error(s, conn, 503, "server_error",
					 "backend_unavailable", "%s", err->msg);
	}
}

bool server_is_ollama_route(const char *path)
{
	return strcmp(path, "/") == 0 ||
	       (strncmp(path, "/api/", 5) == 0 && strncmp(path, "/api/v1/", 8) != 0);
}

static const char *http_code(unsigned status)
{
	switch (status) {
	case 400:
		return "bad_request";
	case 403:
		return "forbidden";
	case 408:
		return "request_timeout";
	case 413:
		return "request_too_large";
	case 414:
		return "uri_too_long";
	case 415:
		return "unsupported_media_type";
	case 417:
		return "expectation_failed";
	case 431:
		return "header_fields_too_large";
	case 501:
		return "not_implemented";
	case 503:
		return "unavailable";
	case 505:
		return "http_version_not_supported";
	default:
		return "internal_error";
	}
}

/* the target of a request whose head did not parse, as far as it came */
static void raw_target(const struct server_conn *c, char *out, size_t cap)
{
	const char *p = memchr(c->buf, ' ', c->len), *end = c->buf + c->len;
	size_t o = 0;

	out[0] = 0;
	if (p == NULL)
		return;
	for (p++; p < end && o + 1 < cap && *p != ' ' && *p != '?' && *p > 0x20; p++)
		out[o++] = *p;
	out[o] = 0;
}

void server_send_http_error(struct server_conn *c, unsigned status, const char *why)
{
	char target[64];

	if (c->req.target)
		lemon_str_copy(target, sizeof(target), c->req.target);
	else
		raw_target(c, target, sizeof(target));
	if (server_is_ollama_route(target))
		server_ollama_error(c->s, c, status, "%s", why);
	else
		server_send_error(c->s, c, status,
				  status >= 500 ? "server_error"
						: "invalid_request_error",
				  http_code(status), "%s", why);
}

/* the origins a browser gives pages served by this server itself */
static bool origin_own(const struct server *s, const char *o)
{
	const char *hosts[] = { "127.0.0.1", "localhost", "[::1]", s->cfg.host };
	char own[128];
	size_t i;

	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		snprintf(own, sizeof(own), "http://%s:%d", hosts[i], s->cfg.port);
		if (strcasecmp(o, own) == 0)
			return true;
	}
	return false;
}

/* in the comma-separated cors_origin list ("*": any) */
static bool origin_listed(const struct server *s, const char *o)
{
	const char *p = s->cfg.cors_origin;

	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		const char *t = p;

		lemon_str_trim(&t, &n);
		if ((n == 1 && t[0] == '*') ||
		    (n > 0 && n == strlen(o) && strncasecmp(t, o, n) == 0))
			return true;
		if (e == NULL)
			break;
		p = e + 1;
	}
	return false;
}

void server_cors_headers(struct server_conn *c, struct server_response *r)
{
	const char *o = server_conn_header(c, "Origin");
	bool any = origin_listed(c->s, "*");

	if (o == NULL || !origin_listed(c->s, o))
		return;
	server_response_add_header(r, "Access-Control-Allow-Origin", any ? "*" : o);
	if (!any)
		server_response_add_header(r, "Vary", "Origin");
	server_response_add_header(r, "Access-Control-Allow-Methods",
				   "GET, POST, DELETE, OPTIONS");
	server_response_add_header(r, "Access-Control-Allow-Headers",
				   "Authorization, Content-Type");
}

static bool loopback_name(const char *name, bool bracketed)
{
	struct in6_addr a6;
	struct in_addr a4;
	size_t n = strlen(name);

	if (bracketed)
		return inet_pton(AF_INET6, name, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	if (strcasecmp(name, "localhost") == 0 ||
	    (n > 10 && strcasecmp(name + n - 10, ".localhost") == 0))
		return true;
	return inet_pton(AF_INET, name, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* Host names a loopback address or the configured host (a DNS name
 * rebound to 127.0.0.1 does neither); bound to 0.0.0.0, any IP literal */
static bool host_ok(const struct server *s, const char *host)
{
	char name[256];
	const char *end, *port;
	bool br = host[0] == '[';
	struct in_addr a4;
	struct in6_addr a6;

	if (br) {
		end = strchr(host, ']');
		port = end ? end + 1 : NULL;
		host++;
	} else {
		end = strchr(host, ':');
		if (end && strchr(end + 1, ':'))
			return false;
		port = end ? end : host + strlen(host);
		end = port;
	}
	if (end == NULL || end == host || (size_t)(end - host) >= sizeof(name))
		return false;
	if (*port == ':' &&
	    (port[1] == 0 || strspn(port + 1, "0123456789") != strlen(port + 1)))
		return false;
	if (*port != 0 && *port != ':')
		return false;
	memcpy(name, host, (size_t)(end - host));
	name[end - host] = 0;
	if (loopback_name(name, br) || strcasecmp(name, s->cfg.host) == 0)
		return true;
	return strcmp(s->cfg.host, "0.0.0.0") == 0 &&
	       (br ? inet_pton(AF_INET6, name, &a6) : inet_pton(AF_INET, name, &a4)) == 1;
}

/* application/json, parameters allowed, any letter case */
static bool json_type(const char *ct)
{
	while (ct && (*ct == ' ' || *ct == '\t'))
		ct++;
	return ct && strncasecmp(ct, "application/json", 16) == 0 &&
	       (ct[16] == 0 || ct[16] == ';' || ct[16] == ' ' || ct[16] == '\t');
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

static enum server_result preflight(struct server_conn *conn)
{
	struct server_response *r =
		server_response_from_buffer(0, NULL, SERVER_RESPMEM_PERSISTENT);
	enum server_result rc;

	if (r == NULL)
		return SERVER_NO;
	server_response_add_header(r, "Allow", "GET, POST, DELETE, OPTIONS");
	if (server_conn_header(conn, "Origin"))
		server_response_add_header(r, "Access-Control-Max-Age", "600");
	rc = server_queue_response(conn, 204, r);
	server_response_destroy(r);
	return rc;
}

static void fail(struct server_conn *c, bool ollama, unsigned status, const char *code,
		 const char *msg)
{
	if (ollama)
		server_ollama_error(c->s, c, status, "%s", msg);
	else
		server_send_error(c->s, c, status, "invalid_request_error", code, "%s",
				  msg);
}

#define BAD_KEY "missing or wrong API key (Authorization: Bearer KEY)"

/* the browser checks, then the key; true when the request may go on */
static bool admitted(struct server_conn *c, const char *method, bool ollama)
{
	struct server *s = c->s;
	const char *origin = server_conn_header(c, "Origin");
	bool changes = strcmp(method, "POST") == 0 || strcmp(method, "DELETE") == 0;

	if (c->req.host && !host_ok(s, c->req.host)) {
		fail(c, ollama, 403, "forbidden_host",
		     "Host is not a loopback address or the configured host");
		return false;
	}
	if (origin && !origin_own(s, origin) && !origin_listed(s, origin)) {
		fail(c, ollama, 403, "forbidden_origin",
		     "requests from this Origin are not allowed (see --cors-origin)");
		return false;
	}
	if (strcmp(method, "OPTIONS") == 0) {
		preflight(c);
		return false;
	}
	if (!key_ok(s, c)) {
		fail(c, ollama, 401, "invalid_api_key", BAD_KEY);
		return false;
	}
	if (changes && !json_type(server_conn_header(c, "Content-Type"))) {
		fail(c, ollama, 415, "unsupported_media_type",
		     "this request needs Content-Type: application/json");
		return false;
	}
	return true;
}

void server_dispatch(struct server_conn *c, struct server_req *req)
{
	struct server *s = c->s;
	const char *url = c->req.target;
	/* HEAD is GET without the body (the writer leaves it out) */
	const char *method = c->head_only ? "GET" : c->req.method;
	bool ollama = server_is_ollama_route(url);

	if (!admitted(c, method, ollama))
		return;
	if (strcmp(url, "/v1/chat/completions") == 0 ||
	    strcmp(url, "/v1/completions") == 0 || strcmp(url, "/v1/embeddings") == 0) {
		if (strcmp(method, "POST") != 0)
			server_send_error(s, c, 405, "invalid_request_error",
					  "method_not_allowed", "%s needs POST", url);
		else
			server_proxy(s, c, url, req);
		return;
	}
	server_api(s, c, url, method, req);
}
