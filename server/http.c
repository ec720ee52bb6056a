/* what every request goes through before its route: the checks that keep
 * a web page from driving a local server (Host must be loopback or the
 * configured host, so DNS rebinding fails; a foreign Origin is refused;
 * state-changing requests must be application/json, which a page cannot
 * send without a preflight; CORS headers only for the origins named in
 * cors_origin), the key (Authorization: Bearer or x-api-key): all from
 * the request head, before a byte of the body is read (server_admit), so a
 * client without the key cannot make lemon take in a 32 MiB image body.
 * Then the route table's row (server/routes.c) runs, and every answer is
 * counted for /metrics. Refusals and 404/405 go out in the shape of the
 * path's route family (server/respond.c builds them). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <cjson/cJSON.h>

#include "server/server-private.h"
#include "util/str.h"

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

/* c == k in constant time, so the key cannot be guessed byte by byte */
static bool same_key(const char *key, const char *h)
{
	size_t kl = strlen(key), hl = strlen(h), i;
	unsigned diff = hl != kl;

	for (i = 0; i < kl; i++)
		diff |= (unsigned)(key[i] ^ (i < hl ? h[i] : 0));
	return diff == 0;
}

/* Authorization: Bearer KEY, or Anthropic's x-api-key: KEY (its SDK
 * sends only that one) */
static bool key_ok(struct server *s, struct server_conn *conn)
{
	const char *h = server_conn_header(conn, "Authorization");
	const char *x = server_conn_header(conn, "x-api-key");
	const char *key = s->cfg.api_key;

	if (key[0] == 0)
		return true;
	if (h && strncmp(h, "Bearer ", 7) == 0 && same_key(key, h + 7))
		return true;
	return x != NULL && same_key(key, x);
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

#define BAD_KEY "missing or wrong API key (Authorization: Bearer KEY or x-api-key: KEY)"

/* the browser checks, then the key; true when the request may go on */
static bool admitted(struct server_conn *c, const char *method, enum server_shape shape,
		     bool open)
{
	struct server *s = c->s;
	const char *origin = server_conn_header(c, "Origin");
	bool changes = strcmp(method, "POST") == 0 || strcmp(method, "DELETE") == 0;

	if (c->req.host && !host_ok(s, c->req.host)) {
		server_send_shaped(s, c, shape, 403, "forbidden_host",
				   "Host is not a loopback address or the configured host");
		return false;
	}
	if (origin && !origin_own(s, origin) && !server_origin_listed(s, origin)) {
		server_send_shaped(s, c, shape, 403, "forbidden_origin",
				   "requests from this Origin are not allowed (see --cors-origin)");
		return false;
	}
	if (strcmp(method, "OPTIONS") == 0) {
		preflight(c);
		return false;
	}
	if (!open && !key_ok(s, c)) {
		server_send_shaped(s, c, shape, 401, "invalid_api_key", BAD_KEY);
		return false;
	}
	if (changes && !json_type(server_conn_header(c, "Content-Type"))) {
		server_send_shaped(s, c, shape, 415, "unsupported_media_type",
				   "this request needs Content-Type: application/json");
		return false;
	}
	return true;
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
	server_send_shaped(c->s, c, server_route_shape(target), status, http_code(status), "%s",
			   why);
}

/* the request's route as far as the head says (HEAD is GET without the
 * body: the writer leaves it out) */
static void route_of(struct server_conn *c, struct server_call *k, bool *other_method)
{
	k->s = c->s;
	k->c = c;
	k->path = c->req.target;
	k->method = c->head_only ? "GET" : c->req.method;
	k->rt = server_route_find(k->method, k->path, &k->tail, other_method);
}

bool server_admit(struct server_conn *c)
{
	struct server_call k = { 0 };
	bool other_method = false;
	char label[SERVER_ROUTE_LABEL_MAX];
	enum server_shape shape;

	route_of(c, &k, &other_method);
	shape = k.rt ? k.rt->shape : server_route_shape(k.path);
	if (admitted(c, k.method, shape, server_ui_open(&k)))
		return true;
	server_route_label(k.rt, label, sizeof(label));
	server_metrics_request(c->s, label, c->resp ? c->status : 500);
	return false;
}

void server_dispatch(struct server_conn *c, struct server_req *req)
{
	struct server_call k = { 0 };
	bool other_method = false;
	char shown[201], label[SERVER_ROUTE_LABEL_MAX];
	enum server_shape shape;

	route_of(c, &k, &other_method);
	k.req = req;
	shape = k.rt ? k.rt->shape : server_route_shape(k.path);
	server_route_label(k.rt, label, sizeof(label));
	if (k.rt != NULL && !other_method) {
		k.rt->fn(&k);
	} else {
		/* the path is the client's bytes: whole UTF-8 characters only */
		server_body_clip(shown, sizeof(shown), k.path, strlen(k.path));
		if (other_method)
			server_send_shaped(c->s, c, shape, 405, "method_not_allowed",
					   "%s needs %s", shown, k.rt->method);
		else
			server_send_shaped(c->s, c, shape, 404, "not_found", "no route %s %s",
					   k.method, shown);
	}
	server_metrics_request(c->s, label, c->resp ? c->status : 500);
}
