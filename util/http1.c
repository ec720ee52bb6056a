/* HTTP/1.x response head parser and body decoders (see util/http1.h).
 * Strict where leniency has let proxies disagree about where a message
 * ends (RFC 9112 section 11.2): CRLF line ends only, no obs-fold, digits
 * only in Content-Length, no Content-Length beside chunked, chunked as the
 * only transfer coding. */
#include <string.h>
#include <strings.h>

#include "util/http1.h"

enum {
	CS_SIZE,
	CS_EXT,
	CS_SIZE_LF,
	CS_DATA,
	CS_DATA_CR,
	CS_DATA_LF,
	CS_TRAILER,
	CS_TRAILER_LINE,
	CS_TRAILER_LF,
	CS_END_LF,
	CS_DONE,
};

/* RFC 9110 token characters */
static bool tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* control characters other than HTAB, DEL included */
static bool ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool name_is(const char *name, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(name, lit, n) == 0;
}

/* "HTTP/1.x NNN[ reason]" */
static int status_line(const char *l, size_t n, unsigned *status)
{
	unsigned code;
	size_t i;

	if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ' ||
	    !digit(l[9]) || !digit(l[10]) || !digit(l[11]) || (n > 12 && l[12] != ' '))
		return LEMON_HTTP1_BAD_STATUS_LINE;
	for (i = 12; i < n; i++)
		if (ctl((unsigned char)l[i]))
			return LEMON_HTTP1_BAD_STATUS_LINE;
	code = (unsigned)(l[9] - '0') * 100 + (unsigned)(l[10] - '0') * 10 +
	       (unsigned)(l[11] - '0');
	if (code < 200 || code > 599)
		return LEMON_HTTP1_BAD_STATUS;
	*status = code;
	return LEMON_HTTP1_OK;
}

static int content_length(const char *v, size_t n, bool *has, uint64_t *len)
{
	uint64_t x = 0;
	size_t i;

	if (n == 0 || n > 20)
		return LEMON_HTTP1_BAD_LENGTH;
	for (i = 0; i < n; i++) {
		if (!digit(v[i]))
			return LEMON_HTTP1_BAD_LENGTH;
		x = x * 10 + (uint64_t)(v[i] - '0');
		if (x > LEMON_HTTP1_BODY_MAX)
			return LEMON_HTTP1_BAD_LENGTH;
	}
	/* a repeat is tolerated only with the same value (RFC 9112 6.3) */
	if (*has && *len != x)
		return LEMON_HTTP1_BAD_LENGTH;
	*has = true;
	*len = x;
	return LEMON_HTTP1_OK;
}

/* a comma-separated token list naming "close" */
static bool has_close(const char *v, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t s, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (name_is(v + s, e - s, "close"))
			return true;
	}
	return false;
}

struct head_state {
	bool has_len, chunked;
};

static int header_line(const char *l, size_t n, struct lemon_http1_head *out, struct head_state *hs)
{
	const char *colon = memchr(l, ':', n), *v;
	size_t nl, vl, i;

	if (colon == NULL || colon == l)
		return LEMON_HTTP1_BAD_HEADER;
	nl = (size_t)(colon - l);
	for (i = 0; i < nl; i++)
		if (!tchar((unsigned char)l[i]))
			return LEMON_HTTP1_BAD_HEADER;
	v = colon + 1;
	vl = n - nl - 1;
	for (i = 0; i < vl; i++)
		if (ctl((unsigned char)v[i]))
			return LEMON_HTTP1_BAD_HEADER;
	while (vl && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		vl--;
	}
	while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	if (name_is(l, nl, "Content-Length"))
		return content_length(v, vl, &hs->has_len, &out->content_length);
	if (name_is(l, nl, "Transfer-Encoding")) {
		/* a second "chunked" would mean chunked twice */
		if (hs->chunked || !name_is(v, vl, "chunked"))
			return LEMON_HTTP1_BAD_ENCODING;
		hs->chunked = true;
	} else if (name_is(l, nl, "Content-Type")) {
		if (vl >= sizeof(out->content_type))
			return LEMON_HTTP1_VALUE_TOO_LONG;
		memcpy(out->content_type, v, vl);
		out->content_type[vl] = 0;
	} else if (name_is(l, nl, "Connection")) {
		out->conn_close |= has_close(v, vl);
	}
	return LEMON_HTTP1_OK;
}

static int head_end(struct lemon_http1_head *out, const struct head_state *hs)
{
	if (hs->chunked && hs->has_len)
		return LEMON_HTTP1_BAD_FRAMING;
	if (out->status == 204 || out->status == 304)
		out->body = LEMON_HTTP1_BODY_NONE;
	else if (hs->chunked)
		out->body = LEMON_HTTP1_BODY_CHUNKED;
	else if (hs->has_len)
		out->body = LEMON_HTTP1_BODY_LENGTH;
	else
		out->body = LEMON_HTTP1_BODY_CLOSE;
	if (out->body != LEMON_HTTP1_BODY_LENGTH)
		out->content_length = 0;
	return LEMON_HTTP1_OK;
}

int lemon_http1_parse_head(const char *buf, size_t len, struct lemon_http1_head *out)
{
	struct head_state hs = { false, false };
	size_t pos = 0, lim = len < LEMON_HTTP1_HEAD_MAX ? len : LEMON_HTTP1_HEAD_MAX;
	unsigned headers = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	for (;;) {
		const char *l = buf + pos, *nl = memchr(l, '\n', lim - pos);
		bool first = pos == 0;
		size_t n;

		if (nl == NULL)
			return len >= LEMON_HTTP1_HEAD_MAX ? LEMON_HTTP1_HEAD_TOO_LONG
							   : LEMON_HTTP1_INCOMPLETE;
		n = (size_t)(nl - l);
		if (n == 0 || l[n - 1] != '\r' || memchr(l, '\r', n - 1) != NULL)
			return LEMON_HTTP1_BAD_LINE_END;
		n--;
		pos += n + 2;
		if (first) {
			rc = status_line(l, n, &out->status);
		} else if (n == 0) {
			out->head_len = pos;
			return head_end(out, &hs);
		} else if (++headers > LEMON_HTTP1_HEADERS_MAX) {
			rc = LEMON_HTTP1_TOO_MANY_HEADERS;
		} else if (l[0] == ' ' || l[0] == '\t') {
			rc = LEMON_HTTP1_BAD_HEADER; /* obs-fold */
		} else {
			rc = header_line(l, n, out, &hs);
		}
		if (rc != LEMON_HTTP1_OK)
			return rc;
	}
}

/* one framing byte (anything but chunk data) */
static int chunk_byte(struct lemon_http1_chunked *c, unsigned char b)
{
	int h;

	switch (c->state) {
	case CS_SIZE:
		if ((h = hexval(b)) >= 0) {
			c->left = c->left * 16 + (uint64_t)h;
			if (++c->digits > 11 || c->left > LEMON_HTTP1_BODY_MAX)
				return LEMON_HTTP1_CHUNK_TOO_LONG;
			return LEMON_HTTP1_OK;
		}
		if (c->digits == 0 || (b != ';' && b != '\r'))
			return LEMON_HTTP1_BAD_CHUNK;
		c->line = 0;
		c->state = b == ';' ? CS_EXT : CS_SIZE_LF;
		return LEMON_HTTP1_OK;
	case CS_EXT:
	case CS_TRAILER:
	case CS_TRAILER_LINE:
		if (b == '\r') {
			c->state = c->state == CS_EXT	    ? CS_SIZE_LF
				   : c->state == CS_TRAILER ? CS_END_LF
							    : CS_TRAILER_LF;
			return LEMON_HTTP1_OK;
		}
		if (ctl(b))
			return LEMON_HTTP1_BAD_CHUNK;
		if (++c->line > LEMON_HTTP1_CHUNK_LINE_MAX)
			return LEMON_HTTP1_CHUNK_TOO_LONG;
		if (c->state == CS_TRAILER)
			c->state = CS_TRAILER_LINE;
		return LEMON_HTTP1_OK;
	case CS_SIZE_LF:
		if (b != '\n')
			return LEMON_HTTP1_BAD_CHUNK;
		c->digits = 0;
		c->line = 0;
		c->state = c->left ? CS_DATA : CS_TRAILER;
		return LEMON_HTTP1_OK;
	case CS_DATA_CR:
	case CS_TRAILER_LF:
	case CS_END_LF:
	case CS_DATA_LF:
		if (b != (c->state == CS_DATA_CR ? '\r' : '\n'))
			return LEMON_HTTP1_BAD_CHUNK;
		c->state = c->state == CS_DATA_CR      ? CS_DATA_LF
			   : c->state == CS_DATA_LF    ? CS_SIZE
			   : c->state == CS_TRAILER_LF ? CS_TRAILER
						       : CS_DONE;
		c->done = c->state == CS_DONE;
		return LEMON_HTTP1_OK;
	default:
		return LEMON_HTTP1_BAD_CHUNK;
	}
}

int lemon_http1_chunked_decode(struct lemon_http1_chunked *c, const char *in, size_t len,
			       size_t *used, char *out, size_t cap, size_t *out_len)
{
	size_t i = 0, o = 0;
	int rc;

	while (i < len && c->state != CS_DONE) {
		if (c->state == CS_DATA) {
			size_t n = len - i;

			if (n > c->left)
				n = (size_t)c->left;
			if (n > cap - o)
				n = cap - o;
			if (n == 0)
				break; /* out is full */
			memcpy(out + o, in + i, n);
			i += n;
			o += n;
			c->left -= n;
			if (c->left == 0)
				c->state = CS_DATA_CR;
			continue;
		}
		rc = chunk_byte(c, (unsigned char)in[i]);
		if (rc != LEMON_HTTP1_OK) {
			*used = i;
			*out_len = o;
			return rc;
		}
		i++;
	}
	*used = i;
	*out_len = o;
	return o > 0 || c->done ? LEMON_HTTP1_OK : LEMON_HTTP1_INCOMPLETE;
}

void lemon_http1_body_init(struct lemon_http1_reader *r, const struct lemon_http1_head *h)
{
	memset(r, 0, sizeof(*r));
	r->kind = h->body;
	r->left = h->body == LEMON_HTTP1_BODY_LENGTH ? h->content_length : 0;
}

int lemon_http1_body_decode(struct lemon_http1_reader *r, const char *in, size_t len, size_t *used,
			    char *out, size_t cap, size_t *out_len)
{
	size_t n = len < cap ? len : cap;

	*used = *out_len = 0;
	switch (r->kind) {
	case LEMON_HTTP1_BODY_CHUNKED:
		return lemon_http1_chunked_decode(&r->ch, in, len, used, out, cap, out_len);
	case LEMON_HTTP1_BODY_NONE:
		return LEMON_HTTP1_OK;
	case LEMON_HTTP1_BODY_LENGTH:
		if (n > r->left)
			n = (size_t)r->left;
		r->left -= n;
		break;
	case LEMON_HTTP1_BODY_CLOSE:
		break;
	}
	if (n)
		memcpy(out, in, n);
	*used = *out_len = n;
	return n > 0 || lemon_http1_body_done(r) ? LEMON_HTTP1_OK : LEMON_HTTP1_INCOMPLETE;
}

bool lemon_http1_body_done(const struct lemon_http1_reader *r)
{
	switch (r->kind) {
	case LEMON_HTTP1_BODY_LENGTH:
		return r->left == 0;
	case LEMON_HTTP1_BODY_CHUNKED:
		return r->ch.done;
	case LEMON_HTTP1_BODY_NONE:
		return true;
	case LEMON_HTTP1_BODY_CLOSE:
		return false;
	}
	return false;
}

bool lemon_http1_body_eof_ok(const struct lemon_http1_reader *r)
{
	return r->kind == LEMON_HTTP1_BODY_CLOSE || lemon_http1_body_done(r);
}

const char *lemon_http1_rc_name(int rc)
{
	switch ((enum lemon_http1_rc)rc) {
	case LEMON_HTTP1_OK:
		return "ok";
	case LEMON_HTTP1_INCOMPLETE:
		return "incomplete";
	case LEMON_HTTP1_BAD_STATUS_LINE:
		return "malformed status line";
	case LEMON_HTTP1_BAD_STATUS:
		return "status code outside 200-599";
	case LEMON_HTTP1_BAD_HEADER:
		return "malformed header line";
	case LEMON_HTTP1_BAD_LINE_END:
		return "line not ended by CRLF";
	case LEMON_HTTP1_HEAD_TOO_LONG:
		return "response head too long";
	case LEMON_HTTP1_TOO_MANY_HEADERS:
		return "too many header lines";
	case LEMON_HTTP1_BAD_LENGTH:
		return "invalid Content-Length";
	case LEMON_HTTP1_BAD_ENCODING:
		return "unsupported Transfer-Encoding";
	case LEMON_HTTP1_BAD_FRAMING:
		return "both Content-Length and chunked";
	case LEMON_HTTP1_VALUE_TOO_LONG:
		return "header value too long";
	case LEMON_HTTP1_BAD_CHUNK:
		return "malformed chunk";
	case LEMON_HTTP1_CHUNK_TOO_LONG:
		return "chunk size or line too long";
	}
	return "unknown";
}
