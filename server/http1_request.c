/* the HTTP/1.x request head and chunked request bodies, parsed from bytes
 * as they arrived: pure functions with fixed limits, so that what a client
 * sends can only ever produce one answer (a request, "need more bytes", or
 * one error status). Strict where leniency has been used for request
 * smuggling: one Content-Length of plain digits, no Content-Length beside
 * Transfer-Encoding, no obs-fold, no control bytes in header values. */
#include <string.h>

#include "server/server-private.h"

static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-value bytes: visible ASCII, space, tab and obs-text (>= 0x80) */
static bool is_vchar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int fail(struct server_http1_request *r, unsigned status, const char *why)
{
	r->status = status;
	r->why = why;
	return -1;
}

static bool ieq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

/* the end of the line starting at p: the '\n' (a "\r" before it is part of
 * the terminator), or NULL */
static char *line_end(char *p, const char *end)
{
	return memchr(p, '\n', (size_t)(end - p));
}

/* cuts [p, nl) into a NUL-terminated string without the CR */
static size_t cut(char *p, char *nl)
{
	size_t n = (size_t)(nl - p);

	if (n > 0 && p[n - 1] == '\r')
		n--;
	p[n] = 0;
	return n;
}

static int parse_version(struct server_http1_request *r, const char *v)
{
	if (strcmp(v, "HTTP/1.1") == 0) {
		r->minor = 1;
		return 0;
	}
	if (strcmp(v, "HTTP/1.0") == 0) {
		r->minor = 0;
		return 0;
	}
	if (strncmp(v, "HTTP/", 5) == 0 && v[5] >= '0' && v[5] <= '9' && v[6] == '.' &&
	    v[7] >= '0' && v[7] <= '9' && v[8] == 0)
		return fail(r, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
	return fail(r, 400, "malformed HTTP version in the request line");
}

/* METHOD SP request-target SP HTTP-version, single spaces */
static int parse_request_line(struct server_http1_request *r, char *line)
{
	char *sp1 = strchr(line, ' '), *sp2, *q;
	size_t i;

	if (sp1 == NULL || sp1 == line || (size_t)(sp1 - line) >= sizeof(r->method))
		return fail(r, 400, "malformed request line");
	for (i = 0; line + i < sp1; i++)
		if (!is_tchar((unsigned char)line[i]))
			return fail(r, 400, "malformed method in the request line");
	*sp1 = 0;
	memcpy(r->method, line, (size_t)(sp1 - line) + 1);
	r->target = sp1 + 1;
	sp2 = strchr(r->target, ' ');
	if (sp2 == NULL || sp2 == r->target)
		return fail(r, 400, "malformed request line");
	*sp2 = 0;
	for (q = r->target; *q; q++)
		if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
			return fail(r, 400, "malformed request target");
	if (r->target[0] != '/' && strcmp(r->target, "*") != 0)
		return fail(r, 400, "request target is not an absolute path");
	r->query = strchr(r->target, '?');
	if (r->query)
		*r->query++ = 0;
	return parse_version(r, sp2 + 1);
}

static int content_length(struct server_http1_request *r, const char *v)
{
	uint64_t n = 0;
	size_t i;

	if (r->has_length)
		return fail(r, 400, "more than one Content-Length header");
	if (v[0] == 0)
		return fail(r, 400, "empty Content-Length");
	for (i = 0; v[i]; i++) {
		if (v[i] < '0' || v[i] > '9')
			return fail(r, 400,
				    "Content-Length is not a plain decimal number");
		if (i >= 15)
			return fail(r, 413,
				    "Content-Length larger than any body accepted");
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	r->has_length = true;
	r->length = n;
	return 0;
}

/* the header fields lemon acts on itself; the rest are only kept */
static int known_header(struct server_http1_request *r, const char *name, const char *v)
{
	if (ieq(name, "Content-Length"))
		return content_length(r, v);
	if (ieq(name, "Transfer-Encoding")) {
		if (r->chunked)
			return fail(r, 400, "more than one Transfer-Encoding header");
		if (!ieq(v, "chunked"))
			return fail(r, 501,
				    "only the chunked transfer coding is supported");
		r->chunked = true;
	} else if (ieq(name, "Host")) {
		if (r->host)
			return fail(r, 400, "more than one Host header");
		r->host = v;
	} else if (ieq(name, "Connection")) {
		/* a token list; "close" and "keep-alive" are the ones that count */
		if (strcasestr(v, "close"))
			r->close = true;
		else if (strcasestr(v, "keep-alive"))
			r->keep_alive = true;
	} else if (ieq(name, "Expect")) {
		if (!ieq(v, "100-continue"))
			return fail(r, 417, "only Expect: 100-continue is supported");
		r->expect_continue = true;
	}
	return 0;
}

static int parse_header(struct server_http1_request *r, char *line)
{
	char *colon, *v, *e;
	size_t i;

	if (line[0] == ' ' || line[0] == '\t')
		return fail(r, 400, "folded header line (obs-fold) refused");
	colon = strchr(line, ':');
	if (colon == NULL || colon == line)
		return fail(r, 400, "malformed header line");
	for (i = 0; line + i < colon; i++)
		if (!is_tchar((unsigned char)line[i]))
			return fail(r, 400, "malformed header name");
	*colon = 0;
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	for (e = v; *e; e++)
		if (!is_vchar((unsigned char)*e))
			return fail(r, 400, "control character in a header value");
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = 0;
	if (r->n_headers == SERVER_HTTP1_HEADERS_MAX)
		return fail(r, 431, "more than 100 header fields");
	r->headers[r->n_headers].name = line;
	r->headers[r->n_headers].value = v;
	r->n_headers++;
	return known_header(r, line, v);
}

/* the request is complete: what the fields mean together */
static int check_framing(struct server_http1_request *r)
{
	if (r->has_length && r->chunked)
		return fail(r, 400, "both Content-Length and Transfer-Encoding");
	if (r->chunked && r->minor == 0)
		return fail(r, 400, "Transfer-Encoding in an HTTP/1.0 request");
	if (r->minor == 1 && r->host == NULL)
		return fail(r, 400, "HTTP/1.1 request without a Host header");
	r->keep_alive = r->minor == 1 ? !r->close : r->keep_alive && !r->close;
	return 0;
}

/* a NUL anywhere in the head is refused: it would cut a field short */
static int scan_limits(struct server_http1_request *r, const char *buf, size_t len,
		       const char **head_end)
{
	const char *nl = memchr(buf, '\n', len), *p;

	if ((nl == NULL && len > SERVER_HTTP1_LINE_MAX) ||
	    (nl && (size_t)(nl - buf) > SERVER_HTTP1_LINE_MAX))
		return fail(r, 414, "request line longer than 8 KiB");
	*head_end = NULL;
	for (p = nl; p; p = memchr(p + 1, '\n', len - (size_t)(p + 1 - buf))) {
		const char *q = p + 1;

		if (q < buf + len && *q == '\r')
			q++;
		if (q < buf + len && *q == '\n') {
			*head_end = q + 1;
			break;
		}
		if (q >= buf + len)
			break;
	}
	if ((*head_end ? (size_t)(*head_end - buf) : len) > SERVER_HTTP1_HEAD_MAX)
		return fail(r, 431, "request head larger than 32 KiB");
	/* only the head: the body bytes that arrived with it may hold a NUL
	 * (a JSON string's), which the body's own validation answers */
	if (memchr(buf, 0, *head_end ? (size_t)(*head_end - buf) : len))
		return fail(r, 400, "NUL byte in the request head");
	return 0;
}

int server_http1_parse_request(char *buf, size_t len, struct server_http1_request *r)
{
	const char *head_end;
	char *p, *nl, *end;

	memset(r, 0, sizeof(*r));
	/* empty lines before a request line are skipped (RFC 9112 2.2) */
	while (r->skipped < len && (buf[r->skipped] == '\r' || buf[r->skipped] == '\n') &&
	       r->skipped < 16)
		r->skipped++;
	buf += r->skipped;
	len -= r->skipped;
	if (scan_limits(r, buf, len, &head_end) < 0)
		return -1;
	if (head_end == NULL)
		return 0;
	end = buf + (head_end - buf);
	nl = line_end(buf, end);
	cut(buf, nl);
	if (parse_request_line(r, buf) < 0)
		return -1;
	for (p = nl + 1; p < end; p = nl + 1) {
		nl = line_end(p, end);
		if (cut(p, nl) == 0)
			break;
		if (parse_header(r, p) < 0)
			return -1;
	}
	if (check_framing(r) < 0)
		return -1;
	return (int)(r->skipped + (size_t)(end - buf));
}

const char *server_http1_header(const struct server_http1_request *r, const char *name)
{
	int i;

	for (i = 0; i < r->n_headers; i++)
		if (ieq(r->headers[i].name, name))
			return r->headers[i].value;
	return NULL;
}
