/* a small blocking HTTP/1.1 client for the commands that talk to a running
 * lemon server (run, ps, status, stop): one request per connection, the
 * body read as it arrives (chunked or Content-Length or to close) so that
 * streamed answers print as they come */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/str.h"
#include "util/buf.h"

enum { CH_SIZE, CH_DATA, CH_CRLF, CH_DONE };

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

static bool header(const char *line, size_t len, const char *name,
		   const char **v, size_t *vlen)
{
	size_t nl = strlen(name);

	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return false;
	*v = line + nl + 1;
	*vlen = len - nl - 1;
	lemon_str_trim(v, vlen);
	return true;
}

static int read_head(struct cli_http *h, struct lemon_err *err)
{
	const char *end, *line, *v;
	size_t pos = 0, len, vlen;
	uint64_t code;
	bool first = true;

	while ((end = memmem(h->buf, h->len, "\r\n\r\n", 4)) == NULL)
		if (fill(h) <= 0)
			return lemon_err_set(err, LEMON_ERR_NETWORK,
					     "the server closed the connection without an answer");
	while (lemon_next_line(h->buf, (size_t)(end - h->buf) + 2, &pos, &line, &len)) {
		if (len && line[len - 1] == '\r')
			len--;
		if (first) {
			first = false;
			if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 ||
			    lemon_parse_u64(line + 9, 3, 10, 599, &code, NULL) < 0)
				return lemon_err_set(err, LEMON_ERR_NETWORK,
						     "the server's answer is not HTTP");
			h->status = (unsigned)code;
		} else if (header(line, len, "Content-Length", &v, &vlen)) {
			if (lemon_parse_u64(v, vlen, 10, 1ULL << 40, &h->remaining, NULL) == 0)
				h->has_len = true;
		} else if (header(line, len, "Transfer-Encoding", &v, &vlen)) {
			h->chunked = memmem(v, vlen, "chunked", 7) != NULL;
		}
	}
	h->pos = (size_t)(end - h->buf) + 4;
	if (h->chunked)
		h->has_len = false;
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

static size_t take(struct cli_http *h, char *out, size_t max)
{
	size_t n = h->len - h->pos;

	if (n > max)
		n = max;
	memcpy(out, h->buf + h->pos, n);
	h->pos += n;
	return n;
}

ssize_t cli_http_read(struct cli_http *h, char *out, size_t max)
{
	const char *nl;
	uint64_t v;
	size_t n, avail;
	int f;

	if (!h->chunked) {
		if (h->has_len && h->remaining == 0)
			return 0;
		if (h->pos == h->len && (f = fill(h)) <= 0)
			return f == 0 && !h->has_len ? 0 : -1;
		if (h->has_len && max > h->remaining)
			max = (size_t)h->remaining;
		n = take(h, out, max);
		if (h->has_len)
			h->remaining -= n;
		return (ssize_t)n;
	}
	for (;;) {
		avail = h->len - h->pos;
		if (h->cstate == CH_DONE)
			return 0;
		if (h->cstate == CH_SIZE &&
		    (nl = memchr(h->buf + h->pos, '\n', avail)) != NULL) {
			const char *s = h->buf + h->pos, *semi;

			n = (size_t)(nl - s);
			semi = memchr(s, ';', n);
			if (lemon_parse_u64(s, semi ? (size_t)(semi - s) : n - (n && s[n - 1] == '\r'),
					    16, 1ULL << 40, &v, NULL) < 0)
				return -1;
			h->pos += n + 1;
			h->crem = v;
			h->cstate = v ? CH_DATA : CH_DONE;
			continue;
		}
		if (h->cstate == CH_DATA && avail > 0) {
			if (max > h->crem)
				max = (size_t)h->crem;
			n = take(h, out, max);
			h->crem -= n;
			if (h->crem == 0)
				h->cstate = CH_CRLF;
			return (ssize_t)n;
		}
		if (h->cstate == CH_CRLF && avail >= 2) {
			h->pos += 2;
			h->cstate = CH_SIZE;
			continue;
		}
		if (fill(h) <= 0)
			return -1;
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
