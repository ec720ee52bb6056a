/* a small blocking HTTP/1.1 client for the commands that talk to a running
 * lemon server (run, ps, status, stop): one request per connection, the
 * body read as it arrives (chunked or Content-Length or to close, framed
 * by util/http1.h's parser) so that streamed answers print as they come */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/http1.h"
#include "util/buf.h"

int cli_http_connect(const struct cli_target *t, struct lemon_err *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *a;
	char port[16];
	int fd = -1, one = 1;

	snprintf(port, sizeof(port), "%d", t->port);
	if (getaddrinfo(t->host, port, &hints, &res) != 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "cannot resolve host '%s'", t->host);
	for (a = res; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "no lemon server is running on %s:%d; start one with: lemon serve",
				     t->host, t->port);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int fill(struct cli_http *h)
{
	ssize_t n;

	if (h->pos == h->len) {
		h->pos = h->len = 0;
	} else if (h->pos > 0) {
		memmove(h->buf, h->buf + h->pos, h->len - h->pos);
		h->len -= h->pos;
		h->pos = 0;
	}
	if (h->len == sizeof(h->buf))
		return -1;
	do {
		n = recv(h->fd, h->buf + h->len, sizeof(h->buf) - h->len, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	h->len += (size_t)n;
	return n > 0;
}

static int read_head(struct cli_http *h, struct lemon_err *err)
{
	struct lemon_http1_head hd;
	int rc;

	while ((rc = lemon_http1_parse_head(h->buf, h->len, &hd)) ==
	       LEMON_HTTP1_INCOMPLETE)
		if (fill(h) <= 0)
			return lemon_err_set(err, LEMON_ERR_NETWORK,
					     "the server closed the connection without an answer");
	if (rc < 0)
		return lemon_err_set(err, LEMON_ERR_NETWORK,
				     "the server's answer is not valid HTTP: %s",
				     lemon_http1_rc_name(rc));
	h->status = hd.status;
	h->pos = hd.head_len;
	lemon_http1_body_init(&h->body, &hd);
	return 0;
}

int cli_http_request(const struct cli_target *t, const char *method,
		     const char *path, const char *body, struct cli_http *h,
		     struct lemon_err *err)
{
	char head[1024];
	size_t blen = body ? strlen(body) : 0;
	int n;

	memset(h, 0, sizeof(*h));
	h->fd = cli_http_connect(t, err);
	if (h->fd < 0)
		return -1;
	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s%s"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n",
		     method, path, t->host, t->port,
		     t->api_key[0] ? "Authorization: Bearer " : "", t->api_key,
		     t->api_key[0] ? "\r\n" : "", blen);
	if (n < 0 || (size_t)n >= sizeof(head) || send_all(h->fd, head, (size_t)n) < 0 ||
	    (blen && send_all(h->fd, body, blen) < 0)) {
		cli_http_close(h);
		return lemon_err_set(err, LEMON_ERR_NETWORK,
				     "cannot send the request to %s:%d", t->host, t->port);
	}
	if (read_head(h, err) < 0) {
		cli_http_close(h);
		return -1;
	}
	return 0;
}

ssize_t cli_http_read(struct cli_http *h, char *out, size_t max)
{
	for (;;) {
		size_t used, got;
		int f;

		if (lemon_http1_body_done(&h->body))
			return 0;
		if (lemon_http1_body_decode(&h->body, h->buf + h->pos,
					    h->len - h->pos, &used, out, max,
					    &got) < 0)
			return -1;
		h->pos += used;
		if (got > 0)
			return (ssize_t)got;
		if (lemon_http1_body_done(&h->body))
			return 0;
		if ((f = fill(h)) < 0)
			return -1;
		if (f == 0)
			return lemon_http1_body_eof_ok(&h->body) ? 0 : -1;
	}
}

static ssize_t read_some(void *ctx, char *out, size_t cap)
{
	return cli_http_read(ctx, out, cap);
}

char *cli_http_read_all(struct cli_http *h, size_t max)
{
	return lemon_read_all(read_some, h, 4096, max);
}

void cli_http_close(struct cli_http *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
}
