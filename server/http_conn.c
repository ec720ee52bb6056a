/* lemon's HTTP/1.1 server: the listener, one thread per connection, and
 * the responses the routes queue. A connection gets a total deadline for
 * its request head (header_timeout) and one for its body (timeout) from
 * the moment they start, so a client trickling bytes cannot hold a thread
 * for longer; a global and a per-client-address connection cap keep one
 * local client from starving the others. Streaming responses are written
 * piece by piece as their content reader returns them. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "server/server-private.h"
#include "util/http1.h"
#include "util/str.h"

/* a connection's buffer starts small (most heads are a few hundred
 * bytes) and grows up to the largest head plus room for what follows */
#define CONN_BUF_FIRST 4096
#define CONN_BUF (SERVER_HTTP1_HEAD_MAX + 4096)

/* ---- writing -------------------------------------------------------------- */

static const char *reason(unsigned st)
{
	switch (st) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return st < 300 ? "OK" : st < 500 ? "Client Error" : "Server Error";
	}
}

/* all of iov or fail; MSG_NOSIGNAL: a client gone is an error, not
 * SIGPIPE; SO_SNDTIMEO bounds a client that stops reading */
static int send_all(int fd, struct iovec *iov, int n)
{
	struct msghdr m = { 0 };

	m.msg_iov = iov;
	m.msg_iovlen = (size_t)n;
	while (m.msg_iovlen > 0) {
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		while (m.msg_iovlen > 0 && (size_t)w >= m.msg_iov->iov_len) {
			w -= (ssize_t)m.msg_iov->iov_len;
			m.msg_iov++;
			m.msg_iovlen--;
		}
		if (m.msg_iovlen > 0) {
			m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + w;
			m.msg_iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* the status line and headers; framing by Content-Length when the size
 * is known, else chunked (HTTP/1.1) or the end of the connection */
static int write_head(struct server_conn *c, bool *chunked, char *head, size_t cap)
{
	struct server_response *r = c->resp;
	bool known = r->reader == NULL || r->size != SERVER_SIZE_UNKNOWN;
	size_t o;
	struct iovec iov[3];

	*chunked = !known && c->req.minor == 1;
	if (r->close || (!known && !*chunked))
		c->keep = false;
	o = (size_t)snprintf(head, cap, "HTTP/1.1 %u %s\r\n", c->status,
			     reason(c->status));
	if (known && c->status != 204 && c->status >= 200)
		o += (size_t)snprintf(head + o, cap - o, "Content-Length: %llu\r\n",
				      (unsigned long long)r->size);
	else if (*chunked)
		o += (size_t)snprintf(head + o, cap - o,
				      "Transfer-Encoding: chunked\r\n");
	if (!c->keep)
		o += (size_t)snprintf(head + o, cap - o, "Connection: close\r\n");
	else if (c->req.minor == 0)
		o += (size_t)snprintf(head + o, cap - o, "Connection: keep-alive\r\n");
	iov[0] = (struct iovec){ head, o };
	iov[1] = (struct iovec){ r->hdr.p, r->hdr.len };
	iov[2] = (struct iovec){ "\r\n", 2 };
	if (c->head_only || r->reader || r->len == 0)
		return send_all(c->fd, iov, 3);
	{
		struct iovec all[4] = { iov[0], iov[1], iov[2], { r->body, r->len } };

		return send_all(c->fd, all, 4);
	}
}

/* a streaming body: each piece goes out as soon as the reader returns it;
 * a failed write (the client left) stops the reader */
static int write_stream(struct server_conn *c, bool chunked)
{
	struct server_response *r = c->resp;
	char *buf = malloc(r->block), szl[24];
	uint64_t pos = 0;
	int rc = -1;

	if (buf == NULL)
		return -1;
	for (;;) {
		size_t max = r->block;
		struct iovec iov[3];
		ssize_t n;

		if (r->size != SERVER_SIZE_UNKNOWN && r->size - pos < max)
			max = (size_t)(r->size - pos);
		if (r->size != SERVER_SIZE_UNKNOWN && max == 0) {
			rc = 0;
			break;
		}
		n = r->reader(r->cls, pos, buf, max);
		if (n == SERVER_READER_END_OF_STREAM) {
			/* a known size not reached: the client must not take
			 * the short body for the whole */
			if (r->size != SERVER_SIZE_UNKNOWN)
				break;
			rc = chunked ? send_all(c->fd, &(struct iovec){ "0\r\n\r\n", 5 },
						1)
				     : 0;
			break;
		}
		if (n < 0)
			break;
		if (n == 0) {
			poll(NULL, 0, 1);
			continue;
		}
		if ((size_t)n > max)
			n = (ssize_t)max;
		iov[0] = (struct iovec){ szl, (size_t)snprintf(szl, sizeof(szl),
							       "%zx\r\n", (size_t)n) };
		iov[1] = (struct iovec){ buf, (size_t)n };
		iov[2] = (struct iovec){ "\r\n", 2 };
		if (chunked ? send_all(c->fd, iov, 3) : send_all(c->fd, iov + 1, 1))
			break;
		pos += (uint64_t)n;
	}
	free(buf);
	return rc;
}

/* sends the queued response (a 500 when a route queued none) */
static int write_response(struct server_conn *c)
{
	char head[256];
	bool chunked;
	int rc;

	if (c->resp == NULL) {
		server_send_http_error(c, 500, "the server could not build a response");
		c->keep = false;
		if (c->resp == NULL)
			return -1;
	}
	rc = write_head(c, &chunked, head, sizeof(head));
	if (rc == 0 && c->resp->reader && !c->head_only)
		rc = write_stream(c, chunked);
	server_response_destroy(c->resp);
	c->resp = NULL;
	return rc;
}

/* ---- reading -------------------------------------------------------------- */

/* waits until fd is readable or the deadline (monotonic ms) passes:
 * 1 readable, 0 deadline, -1 error */
static int wait_in(int fd, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - server_now_ms();
		int n;

		if (left <= 0)
			return 0;
		n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* reads at most max bytes before the deadline: >0 read, 0 the peer
 * closed, -1 error, -2 deadline passed */
static ssize_t read_some(int fd, char *p, size_t max, int64_t deadline)
{
	int w = wait_in(fd, deadline);
	ssize_t n;

	if (w <= 0)
		return w == 0 ? -2 : -1;
	do
		n = recv(fd, p, max, 0);
	while (n < 0 && errno == EINTR);
	return n;
}

/* the head deadline: header_timeout, or timeout when that is shorter
 * (timeout bounds every wait for the client) */
static int64_t head_ms(const struct server *s)
{
	int t = s->cfg.header_timeout_s < s->cfg.timeout_s ? s->cfg.header_timeout_s
							   : s->cfg.timeout_s;

	return t * 1000LL;
}

/* the head buffer doubles up to CONN_BUF (the parser refuses a longer
 * head before it is full); fields point into it only once parsed */
static int grow(struct server_conn *c)
{
	size_t cap = c->cap * 2 > CONN_BUF ? CONN_BUF : c->cap * 2;
	char *p;

	if (cap <= c->cap)
		return -1;
	p = realloc(c->buf, cap);
	if (p == NULL)
		return -1;
	c->buf = p;
	c->cap = cap;
	return 0;
}

enum head_rc { HEAD_OK, HEAD_QUIET_CLOSE, HEAD_ERROR };

/* the request head, within its total deadline counted from the first
 * byte (or, on a new connection, from the accept); a quiet close for an
 * idle keep-alive connection that sends nothing */
static enum head_rc read_head(struct server_conn *c, int64_t first_deadline,
			      int *head_len)
{
	int64_t deadline = c->len > 0 || c->fresh ? first_deadline : 0;
	size_t scanned = 0;

	/* the last request's fields point into bytes that have moved; and
	 * a HEAD before must not strip the body of this request's answer
	 * (an error answered before dispatch never sets head_only) */
	memset(&c->req, 0, sizeof(c->req));
	c->head_only = false;

	for (;;) {
		if (c->len > scanned &&
		    (memchr(c->buf + scanned, '\n', c->len - scanned) ||
		     c->len > SERVER_HTTP1_LINE_MAX)) {
			int n = server_http1_parse_request(c->buf, c->len, &c->req);

			if (n != 0) {
				*head_len = n;
				return n > 0 ? HEAD_OK : HEAD_ERROR;
			}
		}
		scanned = c->len;
		if (c->len == c->cap && grow(c) < 0) {
			c->req.status = 500;
			c->req.why = "out of memory";
			return HEAD_ERROR;
		}
		ssize_t got = read_some(c->fd, c->buf + c->len, c->cap - c->len,
					deadline ? deadline : c->idle_deadline);

		/* nothing of a request yet (idle, or a browser's spare
		 * connection): closed without an answer */
		if (got == -2 && (deadline == 0 || c->len == 0))
			return HEAD_QUIET_CLOSE;
		if (got == -2) {
			c->req.status = 408;
			c->req.why = "request head not received in time";
			return HEAD_ERROR;
		}
		if (got <= 0)
			return HEAD_QUIET_CLOSE;
		if (deadline == 0)
			deadline = server_now_ms() + head_ms(c->s);
		c->len += (size_t)got;
	}
}

static int body_fail(struct server_conn *c, unsigned status, const char *why)
{
	c->req.status = status;
	c->req.why = why;
	return -1;
}

/* doubling: a chunked body grows by a read at a time, and growing it by
 * exactly that would copy a 32 MiB image body thousands of times */
static int body_grow(struct server_req *b, size_t need)
{
	size_t cap = b->cap * 2 > need ? b->cap * 2 : need;
	char *p;

	if (need <= b->cap)
		return 0;
	p = realloc(b->body, cap);
	if (p == NULL)
		return -1;
	b->body = p;
	b->cap = cap;
	return 0;
}

/* a chunked body, decoded as it arrives by util/http1's decoder (the one
 * that also reads the children's answers) straight into the body buffer,
 * from the bytes after the head, then from a read buffer of its own; its
 * end closes the connection (bytes after it are not kept for a next
 * request) */
static int chunked_step(struct server_conn *c, struct server_req *b,
			struct lemon_http1_chunked *ch, const char *src, size_t have)
{
	size_t pos = 0;

	/* decoded bytes are never more than their encoding */
	if (body_grow(b, b->len + have + 1) < 0)
		return body_fail(c, 500, "out of memory");
	while (pos < have && !ch->done) {
		size_t used = 0, out = 0;
		int rc = lemon_http1_chunked_decode(ch, src + pos, have - pos, &used,
						    b->body + b->len, b->cap - b->len - 1,
						    &out);

		if (rc < 0)
			return body_fail(c, 400, "malformed chunked request body");
		b->len += out;
		pos += used;
		if (b->len > c->max_body)
			return body_fail(c, 413, "request body too large");
		if (rc == LEMON_HTTP1_INCOMPLETE || (used == 0 && out == 0))
			break;
	}
	b->body[b->len] = 0;
	return 0;
}

static int read_chunked(struct server_conn *c, struct server_req *b, size_t have,
			int64_t deadline)
{
	struct lemon_http1_chunked ch = { 0 };
	char *rd = NULL;
	int rc = 0;

	c->keep = false;
	if (have > 0)
		rc = chunked_step(c, b, &ch, c->buf + c->used, have);
	while (rc == 0 && !ch.done) {
		ssize_t got;

		if (rd == NULL && (rd = malloc(16384)) == NULL)
			return body_fail(c, 500, "out of memory");
		got = read_some(c->fd, rd, 16384, deadline);
		if (got == -2)
			rc = body_fail(c, 408, "request body not received in time");
		else if (got <= 0)
			rc = -2;
		else
			rc = chunked_step(c, b, &ch, rd, (size_t)got);
	}
	free(rd);
	return rc;
}

/* the body into c->body: -1 with c->req.status set (answer and close), -2
 * the client went away */
static int read_body(struct server_conn *c, struct server_req *b)
{
	int64_t deadline = server_now_ms() + c->s->cfg.timeout_s * 1000LL;
	size_t have = c->len - c->used, take;

	if (!c->req.has_length && !c->req.chunked)
		return 0;
	/* the route's limit: larger for the routes that take images */
	c->max_body = server_route_body_limit(&c->s->cfg, c->req.method, c->req.target);
	if (c->req.has_length && c->req.length > c->max_body)
		return body_fail(c, 413, "request body too large");
	if (c->req.expect_continue && (c->req.chunked || have < c->req.length) &&
	    send_all(c->fd, &(struct iovec){ "HTTP/1.1 100 Continue\r\n\r\n", 25 }, 1))
		return -2;
	if (c->req.chunked)
		return read_chunked(c, b, have, deadline);
	if (body_grow(b, (size_t)c->req.length + 1) < 0)
		return body_fail(c, 500, "out of memory");
	take = have < c->req.length ? have : (size_t)c->req.length;
	memcpy(b->body, c->buf + c->used, take);
	c->used += take;
	b->len = take;
	while (b->len < c->req.length) {
		ssize_t got = read_some(c->fd, b->body + b->len,
					(size_t)c->req.length - b->len, deadline);

		if (got == -2)
			return body_fail(c, 408, "request body not received in time");
		if (got <= 0)
			return -2;
		b->len += (size_t)got;
	}
	b->body[b->len] = 0;
	return 0;
}

/* ---- one connection ------------------------------------------------------- */

/* before the close: no more writes, then what the client still sends is
 * read and dropped for a moment, so that its unread bytes do not turn the
 * close into a reset that destroys the answer on its way. The socket is
 * closed by server_conn_free once the connection is off the server's list
 * (a closed descriptor's number may be reused at once). */
static void linger(int fd)
{
	/* until the client's FIN, for at most 2 s and 64 MiB: a close with
	 * its body still arriving resets the connection, and a client still
	 * sending then reports the reset instead of the answer (a 33 MiB
	 * image body refused 413 came back as "000" after 256 KiB). Read
	 * and dropped, never kept: memory stays bounded */
	int64_t deadline = server_now_ms() + 2000;
	size_t total = 0;
	char sink[16384];
	ssize_t n;

	shutdown(fd, SHUT_WR);
	while (total < 64u * 1024 * 1024 &&
	       (n = read_some(fd, sink, sizeof(sink), deadline)) > 0)
		total += (size_t)n;
}

/* one request whose head is in: body, route, response; false when the
 * connection ends after it */
static bool serve_one(struct server_conn *c)
{
	struct server_req b = { 0 };
	int rc;

	b.t0 = server_now_ms();
	c->head_only = strcmp(c->req.method, "HEAD") == 0;
	if (!server_admit(c)) {
		/* refused from the head (no key, a foreign Origin, ...): its
		 * body is never read, not even the 100 Continue for it is
		 * sent, and the connection ends with the answer, as unread
		 * body bytes would otherwise be taken for the next request */
		if (c->req.chunked || (c->req.has_length && c->req.length > 0))
			c->keep = false;
	} else if ((rc = read_body(c, &b)) == -2) {
		free(b.body);
		return false;
	} else if (rc == -1) {
		c->keep = false;
		c->head_only = false;
		server_send_http_error(c, c->req.status, c->req.why);
	} else {
		server_dispatch(c, &b);
	}
	pthread_mutex_lock(&c->s->http->mu);
	if (c->s->http->draining)
		c->keep = false;
	pthread_mutex_unlock(&c->s->http->mu);
	rc = write_response(c);
	free(b.body);
	return rc == 0 && c->keep;
}

void server_conn_run(struct server_conn *c)
{
	struct server *s = c->s;
	int64_t first = c->accepted + head_ms(s);
	struct timeval tv = { .tv_sec = s->cfg.timeout_s };
	int one = 1, head_len = 0;

	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c->fresh = true;
	for (;;) {
		enum head_rc h = read_head(c, first, &head_len);

		if (h == HEAD_QUIET_CLOSE)
			break;
		c->keep = false;
		if (h == HEAD_ERROR) {
			/* one answer for a head that cannot be read, then close */
			server_send_http_error(c, c->req.status, c->req.why);
			write_response(c);
			break;
		}
		c->used = (size_t)head_len;
		c->keep = c->req.keep_alive;
		if (!serve_one(c))
			break;
		memmove(c->buf, c->buf + c->used, c->len - c->used);
		c->len -= c->used;
		c->used = 0;
		c->fresh = false;
		c->idle_deadline = server_now_ms() + s->cfg.timeout_s * 1000LL;
		first = server_now_ms() + head_ms(s);
	}
	linger(c->fd);
}

struct server_conn *server_conn_new(struct server *s, int fd, uint32_t peer)
{
	struct server_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->buf = malloc(CONN_BUF_FIRST);
	c->cap = CONN_BUF_FIRST;
	if (c->buf == NULL) {
		free(c);
		return NULL;
	}
	c->s = s;
	c->fd = fd;
	c->peer = peer;
	c->accepted = server_now_ms();
	return c;
}

void server_conn_free(struct server_conn *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
}
