/* the OpenAI routes: validate the request, lease a ready llama-server
 * child, forward the body unchanged over loopback, and stream the
 * response back through a callback that reads the upstream socket as bytes
 * arrive (decoding upstream chunked encoding; the server re-chunks for the
 * client). A backend that dies mid-stream ends an SSE stream with an error
 * event; before the response head it is a 502. */
#include <cjson/cJSON.h>
#include <errno.h>
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
#define PX_ERR_MAX 65536 /* of a child's error body */

struct px {
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
static int px_fill(struct px *p)
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
static ssize_t px_body(struct px *p, char *out, size_t max)
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

static void tail_add(struct px *p, const char *b, size_t n)
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

static void px_finish_stats(struct px *p, bool ok)
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
		p->st.prompt_tokens = (int64_t)num(u, "prompt_tokens");
		p->st.completion_tokens = (int64_t)num(u, "completion_tokens");
	}
	cJSON_Delete(t);
	cJSON_Delete(u);
	p->st.valid = true;
	server_stats_record(p->s, &p->st);
}

static ssize_t px_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	static const char ev[] =
		"data: {\"error\":{\"message\":\"the backend stopped before the response was complete\",\"type\":\"server_error\",\"param\":null,\"code\":\"backend_failed\"}}\n\n";
	struct px *p = cls;
	ssize_t n;

	(void)pos;
	if (p->error_sent)
		return SERVER_READER_END_OF_STREAM;
	n = px_body(p, buf, max);
	if (n > 0) {
		ssize_t m;

		/* whatever else is already buffered goes out in the same
		 * write: one syscall per burst, not per upstream chunk */
		p->nofill = true;
		while ((size_t)n < max && (m = px_body(p, buf + n, max - (size_t)n)) > 0)
			n += m;
		p->nofill = false;
		if (p->st.ttft_ms == 0 && p->sse &&
		    (memmem(buf, (size_t)n, "\"content\":\"", 11) ||
		     memmem(buf, (size_t)n, "\"text\":\"", 8)))
			p->st.ttft_ms = (double)(server_now_ms() - p->t0);
		tail_add(p, buf, (size_t)n);
		/* record before the client has the last bytes, so a stats
		 * request right after the response sees this one */
		if (lemon_http1_body_done(&p->body) ||
		    (p->sse && memmem(buf, (size_t)n, "data: [DONE]", 12)))
			px_finish_stats(p, true);
		return n;
	}
	px_finish_stats(p, n == 0);
	if (n == 0)
		return SERVER_READER_END_OF_STREAM;
	fprintf(stderr, "lemon: %s: backend connection broke off mid-response\n",
		p->st.model);
	if (!p->sse || max < sizeof(ev) - 1)
		return SERVER_READER_END_WITH_ERROR;
	memcpy(buf, ev, sizeof(ev) - 1);
	p->error_sent = true;
	return (ssize_t)(sizeof(ev) - 1);
}

static void px_free(void *cls)
{
	struct px *p = cls;

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
static int px_send(struct px *p, const char *url, const struct server_req *req)
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
static int px_head(struct px *p, unsigned *status, char *ctype, size_t cap)
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

/* validates the body (server/body.h): the model name and whether it
 * streams; *done with the 400 queued when it is refused */
static enum server_result px_check(struct server *s, struct server_conn *conn,
				   const struct server_req *req, const char *url,
				   struct px *p, bool *done)
{
	enum server_body_route route = strcmp(url, "/v1/chat/completions") == 0 ?
		SERVER_BODY_CHAT : strcmp(url, "/v1/completions") == 0 ?
		SERVER_BODY_COMPLETIONS : SERVER_BODY_EMBEDDINGS;
	enum server_result rc = SERVER_YES;
	cJSON *root = server_body_request(s, conn, req, route, &rc);

	*done = root == NULL;
	if (root == NULL)
		return rc;
	lemon_str_copy(p->st.model, sizeof(p->st.model),
		       cJSON_GetObjectItemCaseSensitive(root, "model")->valuestring);
	p->st.stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "stream"));
	cJSON_Delete(root);
	return rc;
}

/* the child answered with an error status: its body (bounded) re-shaped
 * in the OpenAI error shape, a 4xx kept as the same 4xx */
static enum server_result px_error(struct server *s, struct server_conn *conn,
				   struct px *p, unsigned status)
{
	char *b = malloc(PX_ERR_MAX + 1);
	size_t len = 0;
	ssize_t n;
	enum server_result rc;

	while (b && len < PX_ERR_MAX &&
	       (n = px_body(p, b + len, PX_ERR_MAX - len)) > 0)
		len += (size_t)n;
	px_finish_stats(p, false);
	rc = server_child_error(s, conn, false, status, b, b ? len : 0);
	free(b);
	px_free(p);
	return rc;
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
static int px_open(struct server *s, struct px *p, const char *url,
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

enum server_result server_proxy(struct server *s, struct server_conn *conn,
			  const char *url, struct server_req *req)
{
	struct lemon_err err = { 0 };
	struct server_response *r;
	enum server_result rc;
	char ctype[128] = "application/json";
	unsigned status = 0;
	struct px *p;
	bool done;

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return SERVER_NO;
	p->s = s;
	p->fd = -1;
	p->t0 = req->t0;
	rc = px_check(s, conn, req, url, p, &done);
	if (done) {
		free(p);
		return rc;
	}
	lemon_str_copy(p->st.endpoint, sizeof(p->st.endpoint), url + 4);
	switch (px_open(s, p, url, req,
			strcmp(url, "/v1/embeddings") == 0 ? BACKENDS_EMBED : BACKENDS_CHAT,
			&status, ctype, sizeof(ctype), &err)) {
	case 0:
		break;
	case -3: {
		enum server_result e;

		lemon_str_copy(p->st.backend, sizeof(p->st.backend), p->lease.backend);
		px_finish_stats(p, false);
		e = server_send_error(s, conn, 502, "server_error", "backend_failed", "%s",
				      err.msg);
		px_free(p);
		return e;
	}
	default:
		px_free(p);
		return server_send_lemon_err(s, conn, &err);
	}
	lemon_str_copy(p->st.backend, sizeof(p->st.backend), p->lease.backend);
	if (status >= 400)
		return px_error(s, conn, p, status);
	p->sse = strncmp(ctype, "text/event-stream", 17) == 0;
	r = server_response_from_callback(p->body.kind == LEMON_HTTP1_BODY_LENGTH ?
						  p->body.left :
					  p->body.kind == LEMON_HTTP1_BODY_NONE ?
						  0 : SERVER_SIZE_UNKNOWN,
					      PX_BUF, px_read, p, px_free);
	if (r == NULL) {
		px_free(p);
		return SERVER_NO;
	}
	server_response_add_header(r, "Content-Type", ctype);
	if (p->sse) {
		server_response_add_header(r, "Cache-Control", "no-cache");
		server_response_add_header(r, "X-Accel-Buffering", "no");
	}
	rc = server_queue_response(conn, status, r);
	server_response_destroy(r);
	return rc;
}

/* ---- upstream requests for the translating routes (server/ollama.c) ---- */

struct server_upstream {
	struct px p;
};

int server_upstream_open(struct server *s, const char *url, const char *model,
		      enum backends_role role, const struct server_req *req,
		      struct server_upstream **out, unsigned *status,
		      int64_t *load_ns, struct lemon_err *err)
{
	char ctype[128] = "application/json";
	struct server_upstream *u;
	struct px *p;
	int64_t t;
	int rc;

	*out = NULL;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	p = &u->p;
	p->s = s;
	p->fd = -1;
	p->t0 = req->t0;
	lemon_str_copy(p->st.model, sizeof(p->st.model), model);
	lemon_str_copy(p->st.endpoint, sizeof(p->st.endpoint), url + 4);
	t = server_now_ms();
	rc = px_open(s, p, url, req, role, status, ctype, sizeof(ctype), err);
	if (rc == -1) {
		free(u);
		return -1;
	}
	*load_ns = (server_now_ms() - t) * 1000000;
	lemon_str_copy(p->st.backend, sizeof(p->st.backend), p->lease.backend);
	if (rc < 0) {
		px_finish_stats(p, false);
		px_free(p);
		return -1;
	}
	p->sse = strncmp(ctype, "text/event-stream", 17) == 0;
	p->st.stream = p->sse;
	*out = u;
	return 0;
}

ssize_t server_upstream_read(struct server_upstream *u, char *out, size_t max)
{
	struct px *p = &u->p;
	ssize_t n = px_body(p, out, max);

	if (n <= 0) {
		px_finish_stats(p, n == 0);
		return n;
	}
	if (p->st.ttft_ms == 0 && p->sse &&
	    (memmem(out, (size_t)n, "\"content\":\"", 11) ||
	     memmem(out, (size_t)n, "\"text\":\"", 8)))
		p->st.ttft_ms = (double)(server_now_ms() - p->t0);
	tail_add(p, out, (size_t)n);
	/* the caller may stop reading at [DONE]: the request went well */
	if (lemon_http1_body_done(&p->body) ||
	    (p->sse && memmem(out, (size_t)n, "data: [DONE]", 12)))
		px_finish_stats(p, true);
	return n;
}

void server_upstream_close(struct server_upstream *u)
{
	if (u)
		px_free(&u->p);
}
