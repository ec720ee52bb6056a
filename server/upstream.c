/* the client of lemon's children: leases a ready llama-server child for
 * (model, role), sends one request over loopback, reads the answer's head
 * and then its body as the bytes arrive (decoding the child's chunked
 * encoding), and records what was served (stats and metrics) as the body
 * ends. A leaf that the forwarding route (server/proxy.c) and the
 * translating routes (server/ollama*.c) call; it calls no handler. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "server/server-private.h"
#include "util/http1.h"
#include "util/str.h"

#define PX_BUF 16384
#define PX_TAIL 8192

struct server_upstream {
	struct server *s;
	struct backends_lease lease;
	int fd;
	bool sse;
	struct lemon_http1_reader body; /* the upstream body's framing */
	bool error_sent;
	bool stats_done;
	bool nofill;        /* px_fill must not wait for the socket */
	size_t rpos, rlen;
	char rbuf[PX_BUF];
	struct server_stats st;
	int64_t t0;
	size_t tail_len;
	char tail[PX_TAIL + 1];
};

/* 1: more bytes buffered, 0: upstream closed, -1: error, 2: nothing
 * buffered and nofill set */
static int px_fill(struct server_upstream *p)
{
	ssize_t n;

	if (p->nofill)
		return 2;
	if (p->rpos == p->rlen) {
		p->rpos = p->rlen = 0;
	} else if (p->rpos > 0) {
		memmove(p->rbuf, p->rbuf + p->rpos, p->rlen - p->rpos);
		p->rlen -= p->rpos;
		p->rpos = 0;
	}
	if (p->rlen == sizeof(p->rbuf))
		return -1;
	do {
		n = recv(p->fd, p->rbuf + p->rlen, sizeof(p->rbuf) - p->rlen, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	p->rlen += (size_t)n;
	return n > 0 ? 1 : 0;
}

/* next bytes of the upstream body: >0 bytes, 0 at its clean end, -1 when
 * the upstream broke off or its framing is invalid, -2 when nofill is set
 * and nothing is buffered */
static ssize_t px_body(struct server_upstream *p, char *out, size_t max)
{
	for (;;) {
		size_t used, got;
		int f;

		if (lemon_http1_body_done(&p->body))
			return 0;
		if (lemon_http1_body_decode(&p->body, p->rbuf + p->rpos,
					    p->rlen - p->rpos, &used, out, max,
					    &got) < 0)
			return -1;
		p->rpos += used;
		if (got > 0)
			return (ssize_t)got;
		if (lemon_http1_body_done(&p->body))
			return 0;
		f = px_fill(p);
		if (f == 2)
			return -2;
		if (f < 0)
			return -1;
		if (f == 0)
			return lemon_http1_body_eof_ok(&p->body) ? 0 : -1;
	}
}

static void tail_add(struct server_upstream *p, const char *b, size_t n)
{
	if (n >= PX_TAIL) {
		memcpy(p->tail, b + n - PX_TAIL, PX_TAIL);
		p->tail_len = PX_TAIL;
	} else {
		if (p->tail_len + n > PX_TAIL) {
			size_t drop = p->tail_len + n - PX_TAIL;

			memmove(p->tail, p->tail + drop, p->tail_len - drop);
			p->tail_len -= drop;
		}
		memcpy(p->tail + p->tail_len, b, n);
		p->tail_len += n;
	}
	p->tail[p->tail_len] = 0;
}

/* a JSON object that starts right after the last occurrence of key */
static cJSON *last_object(const char *tail, const char *key)
{
	const char *at = NULL, *q = tail;

	while ((q = strstr(q, key)) != NULL)
		at = q++;
	if (at == NULL || (at = strchr(at, '{')) == NULL)
		return NULL;
	return cJSON_ParseWithOpts(at, NULL, 0);
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void px_finish_stats(struct server_upstream *p, bool ok)
{
	cJSON *t, *u;

	if (p->stats_done)
		return;
	p->stats_done = true;
	t = last_object(p->tail, "\"timings\"");
	u = last_object(p->tail, "\"usage\"");
	p->st.ok = ok;
	p->st.total_ms = (double)(server_now_ms() - p->t0);
	if (t) {
		p->st.prompt_tokens = (int64_t)num(t, "prompt_n");
		p->st.completion_tokens = (int64_t)num(t, "predicted_n");
		p->st.tokens_per_second = num(t, "predicted_per_second");
		if (!p->sse)
			p->st.ttft_ms = num(t, "prompt_ms");
	} else if (u) {
		/* OpenAI's names, or the Responses and Anthropic ones */
		p->st.prompt_tokens = (int64_t)(num(u, "prompt_tokens") + num(u, "input_tokens"));
		p->st.completion_tokens =
			(int64_t)(num(u, "completion_tokens") + num(u, "output_tokens"));
	}
	cJSON_Delete(t);
	cJSON_Delete(u);
	p->st.valid = true;
	server_stats_record(p->s, &p->st);
}

static void px_free(struct server_upstream *p)
{

	if (p->fd >= 0)
		close(p->fd);
	if (p->st.valid || p->tail_len)
		px_finish_stats(p, false);
	if (p->s != NULL)
		backends_release(p->s->b, &p->lease);
	free(p);
}

/* head and body in one sendmsg: a second small write would wait for the
 * first one's ACK (Nagle), adding latency to every request */
static int send_request(int fd, char *head, size_t hlen, char *body,
			size_t blen)
{
	struct iovec iov[2] = { { head, hlen }, { body, blen } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t w;

	while (iov[0].iov_len + iov[1].iov_len > 0) {
		w = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		for (size_t i = 0; i < 2 && w > 0; i++) {
			size_t n = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;

			iov[i].iov_base = (char *)iov[i].iov_base + n;
			iov[i].iov_len -= n;
			w -= (ssize_t)n;
		}
	}
	return 0;
}

/* connects and sends the request; -1 when the child is unreachable, -2
 * when lemon could not open a socket at all (out of descriptors): that
 * is no sign of a dead child */
static int px_send(struct server_upstream *p, const char *url, const struct server_req *req)
{
	struct timeval tv = { p->s->cfg.upstream_timeout_s, 0 };
	struct lemon_err e = { 0 };
	char head[512];
	int n, one = 1;

	p->fd = backends_connect(p->lease.port, 2000, &e);
	if (p->fd < 0)
		return e.code == LEMON_ERR_NETWORK ? -1 : -2;
	setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = snprintf(head, sizeof(head),
		     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n",
		     url, p->lease.port, req->len);
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (send_request(p->fd, head, (size_t)n, req->body, req->len) < 0) {
		close(p->fd);
		p->fd = -1;
		return -1;
	}
	return 0;
}

/* reads and parses the response head (util/http1.h); status and content
 * type out, the body's framing set up */
static int px_head(struct server_upstream *p, unsigned *status, char *ctype, size_t cap)
{
	struct lemon_http1_head h;
	int rc;

	while ((rc = lemon_http1_parse_head(p->rbuf, p->rlen, &h)) ==
	       LEMON_HTTP1_INCOMPLETE)
		if (px_fill(p) <= 0)
			return -1;
	if (rc < 0) {
		fprintf(stderr, "lemon: %s: llama-server's answer is not valid HTTP: %s\n",
			p->st.model, lemon_http1_rc_name(rc));
		return -1;
	}
	*status = h.status;
	if (h.content_type[0])
		lemon_str_copy(ctype, cap, h.content_type);
	p->rpos = h.head_len;
	lemon_http1_body_init(&p->body, &h);
	return 0;
}

/* leases a child, sends the request and reads the head of its answer. A
 * child that dies between the lease and its answer is reported dead and
 * the request sent once more, to the child started next: SIGKILLed, its
 * listening socket can still complete a connect while the process is torn
 * down and then close it without a byte (test_serve's node client saw the
 * request after a killed stream fail with 502 under ASan), and nothing of
 * the answer has reached the client yet. -1 with err when no child can be
 * had or reached; -3 with err when the answer's head is malformed or never
 * came (the lease is still held: px_free hands it back) */
static int px_open(struct server *s, struct server_upstream *p, const char *url,
		   const struct server_req *req, enum backends_role role, unsigned *status,
		   char *ctype, size_t cap, struct lemon_err *err)
{
	int attempt, rc;

	for (attempt = 0; attempt < 2; attempt++) {
		if (backends_acquire(s->b, p->st.model, role, &p->lease, err) < 0)
			return -1;
		rc = px_send(p, url, req);
		/* lemon's own shortage: the healthy child must not be killed
		 * for it (the probe of report_dead would fail the same way) */
		if (rc == -2) {
			backends_release(s->b, &p->lease);
			return lemon_err_set(err, LEMON_ERR_BUSY,
					     "lemon is out of file descriptors; retry later");
		}
		if (rc == 0) {
			if (px_head(p, status, ctype, cap) == 0)
				return 0;
			if (p->rlen > 0 || attempt == 1) {
				lemon_err_set(err, LEMON_ERR_NETWORK,
					      "llama-server for '%s' closed the connection without a response",
					      p->st.model);
				return -3;
			}
			close(p->fd);
			p->fd = -1;
			p->rpos = p->rlen = 0;
		}
		backends_report_dead(s->b, &p->lease);
	}
	return lemon_err_set(err, LEMON_ERR_NETWORK,
			     "llama-server for '%s' is not reachable",
			     p->st.model);
}

int server_upstream_open(struct server *s, const char *url, const char *model,
			 enum backends_role role, const struct server_req *req,
			 struct server_upstream **out, unsigned *status, char *ctype, size_t cap,
			 int64_t *load_ns, struct lemon_err *err)
{
	char type[128] = "application/json";
	struct server_upstream *p;
	int64_t t;
	int rc;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	p->s = s;
	p->fd = -1;
	p->t0 = req->t0;
	lemon_str_copy(p->st.model, sizeof(p->st.model), model);
	lemon_str_copy(p->st.endpoint, sizeof(p->st.endpoint), url + 4);
	t = server_now_ms();
	rc = px_open(s, p, url, req, role, status, type, sizeof(type), err);
	if (rc == -1) {
		free(p);
		return -1;
	}
	if (load_ns)
		*load_ns = (server_now_ms() - t) * 1000000;
	lemon_str_copy(p->st.backend, sizeof(p->st.backend), p->lease.backend);
	if (rc < 0) {
		px_finish_stats(p, false);
		px_free(p);
		return -2;
	}
	p->sse = strncmp(type, "text/event-stream", 17) == 0;
	p->st.stream = p->sse;
	if (ctype)
		lemon_str_copy(ctype, cap, type);
	*out = p;
	return 0;
}

void server_upstream_set_stream(struct server_upstream *u, bool stream)
{
	u->st.stream = stream;
}

bool server_upstream_sse(const struct server_upstream *u)
{
	return u->sse;
}

uint64_t server_upstream_size(const struct server_upstream *u)
{
	return u->body.kind == LEMON_HTTP1_BODY_LENGTH ? u->body.left :
	       u->body.kind == LEMON_HTTP1_BODY_NONE	 ? 0 :
							   SERVER_SIZE_UNKNOWN;
}

const char *server_upstream_model(const struct server_upstream *u)
{
	return u->st.model;
}

void server_upstream_finish(struct server_upstream *u, bool ok)
{
	px_finish_stats(u, ok);
}

ssize_t server_upstream_read(struct server_upstream *p, char *buf, size_t max)
{
	ssize_t n = px_body(p, buf, max), m;

	if (n <= 0) {
		px_finish_stats(p, n == 0);
		return n;
	}
	/* whatever else is already buffered goes out in the same write: one
	 * syscall per burst, not per upstream chunk */
	p->nofill = true;
	while ((size_t)n < max && (m = px_body(p, buf + n, max - (size_t)n)) > 0)
		n += m;
	p->nofill = false;
	if (p->st.ttft_ms == 0 && p->sse &&
	    (memmem(buf, (size_t)n, "\"content\":\"", 11) || memmem(buf, (size_t)n, "\"text\":\"", 8) ||
	     memmem(buf, (size_t)n, "\"delta\":\"", 9)))
		p->st.ttft_ms = (double)(server_now_ms() - p->t0);
	tail_add(p, buf, (size_t)n);
	/* record before the client has the last bytes, so a stats request
	 * right after the response sees this one; the caller may stop
	 * reading at [DONE]: the request went well */
	if (lemon_http1_body_done(&p->body) ||
	    (p->sse && memmem(buf, (size_t)n, "data: [DONE]", 12)))
		px_finish_stats(p, true);
	return n;
}

void server_upstream_close(struct server_upstream *u)
{
	if (u)
		px_free(u);
}

#define CHILD_GET_TIMEOUT_S 2

/* lemon's own GET to a child, outside any lease (a scrape, its props) */
char *server_child_get(int port, const char *path, size_t max)
{
	struct lemon_err err = { 0 };
	struct timeval tv = { CHILD_GET_TIMEOUT_S, 0 };
	struct lemon_http1_head h;
	struct lemon_http1_reader r;
	char req[256], *buf, *out = NULL;
	size_t len = 0, used = 0, got = 0;
	ssize_t n;
	int fd = backends_connect(port, CHILD_GET_TIMEOUT_S * 1000, &err), k;

	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	k = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", path, port);
	buf = malloc(max + 1);
	if (buf == NULL || send(fd, req, (size_t)k, MSG_NOSIGNAL) != k) {
		free(buf);
		close(fd);
		return NULL;
	}
	/* until the whole body is in: a child may keep the connection open */
	while (len < max && (n = recv(fd, buf + len, max - len, 0)) > 0) {
		len += (size_t)n;
		if (lemon_http1_parse_head(buf, len, &h) == LEMON_HTTP1_OK &&
		    h.body == LEMON_HTTP1_BODY_LENGTH && len - h.head_len >= h.content_length)
			break;
	}
	close(fd);
	if (lemon_http1_parse_head(buf, len, &h) == LEMON_HTTP1_OK && h.status == 200) {
		lemon_http1_body_init(&r, &h);
		out = malloc(len + 1);
		if (out && lemon_http1_body_decode(&r, buf + h.head_len, len - h.head_len, &used,
						   out, len, &got) == 0) {
			out[got] = 0;
		} else {
			free(out);
			out = NULL;
		}
	}
	free(buf);
	return out;
}

