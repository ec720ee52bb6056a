/* the responses the routes build and queue (server-private.h): a buffer
 * or a content reader, extra headers, and the free callback that runs once
 * the connection is done with it */
#include <stdlib.h>
#include <string.h>

#include "server/server-private.h"
#include "util/str.h"

struct server_response *server_response_from_buffer(size_t len, void *buf,
						    enum server_respmem mode)
{
	struct server_response *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->refs = 1;
	r->len = len;
	r->size = len;
	if (mode == SERVER_RESPMEM_MUST_COPY && len > 0) {
		r->body = malloc(len);
		if (r->body == NULL) {
			free(r);
			return NULL;
		}
		memcpy(r->body, buf, len);
		r->owned = true;
	} else {
		r->body = buf;
	}
	return r;
}

struct server_response *server_response_from_callback(uint64_t size, size_t block,
						      server_reader_fn reader, void *cls,
						      server_reader_free_fn free_cb)
{
	struct server_response *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->refs = 1;
	r->size = size;
	r->block = block < 1024 ? 1024 : block > 65536 ? 65536 : block;
	r->reader = reader;
	r->cls = cls;
	r->free_cb = free_cb;
	return r;
}

/* CR or LF in a name or value would let a value start a new header */
enum server_result server_response_add_header(struct server_response *r, const char *name,
					      const char *value)
{
	size_t nl = strlen(name), vl = strlen(value), need;
	char *p;

	if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n") || nl == 0)
		return SERVER_NO;
	if (strcasecmp(name, "Connection") == 0) {
		r->close = strcasestr(value, "close") != NULL;
		return SERVER_YES; /* the writer sets it */
	}
	need = r->hdr.len + nl + vl + 5;
	if (need > 16384)
		return SERVER_NO;
	if (need > r->hdr.cap) {
		p = realloc(r->hdr.p, need * 2);
		if (p == NULL)
			return SERVER_NO;
		r->hdr.p = p;
		r->hdr.cap = need * 2;
	}
	memcpy(r->hdr.p + r->hdr.len, name, nl);
	memcpy(r->hdr.p + r->hdr.len + nl, ": ", 2);
	memcpy(r->hdr.p + r->hdr.len + nl + 2, value, vl);
	memcpy(r->hdr.p + r->hdr.len + nl + 2 + vl, "\r\n", 3);
	r->hdr.len += nl + vl + 4;
	return SERVER_YES;
}

void server_response_destroy(struct server_response *r)
{
	if (r == NULL || --r->refs > 0)
		return;
	if (r->free_cb)
		r->free_cb(r->cls);
	if (r->owned)
		free(r->body);
	free(r->hdr.p);
	free(r);
}

/* in the comma-separated cors_origin list ("*": any) */
bool server_origin_listed(const struct server *s, const char *o)
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
	bool any = server_origin_listed(c->s, "*");

	if (o == NULL || !server_origin_listed(c->s, o))
		return;
	server_response_add_header(r, "Access-Control-Allow-Origin", any ? "*" : o);
	if (!any)
		server_response_add_header(r, "Vary", "Origin");
	server_response_add_header(r, "Access-Control-Allow-Methods",
				   "GET, POST, DELETE, OPTIONS");
	server_response_add_header(r, "Access-Control-Allow-Headers",
				   "Authorization, Content-Type, x-api-key, anthropic-version");
}

/* one response per request: a second is refused like libmicrohttpd did */
enum server_result server_queue_response(struct server_conn *c, unsigned status,
					 struct server_response *r)
{
	if (c->resp != NULL || r == NULL || status < 100 || status > 599)
		return SERVER_NO;
	r->refs++;
	c->resp = r;
	c->status = status;
	server_cors_headers(c, r);
	return SERVER_YES;
}

const char *server_conn_header(struct server_conn *c, const char *name)
{
	return server_http1_header(&c->req, name);
}
