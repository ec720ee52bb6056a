/* RPC workers (`lemon serve --workers`): the list of HOST:PORT, each
 * worker's lemon endpoint (GET /api/v1/worker on PORT + 1) probed with
 * bounded connect and read times, its JSON checked strictly (it comes from
 * the network), and the placement of a model that fits nowhere locally
 * across the reachable workers' free memory: llama-server --rpc with a
 * --tensor-split in proportion to what each has free */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backends/backends-private.h"
#include "util/cond.h"
#include "util/http1.h"
#include "util/str.h"

#define MIB (1024.0 * 1024.0)
#define ANSWER_MAX 8192

/* the same host: equal IP addresses, else (not a literal) equal names
 * ignoring case */
static bool same_host(const char *a, const char *b)
{
	unsigned char x[16], y[16];

	if (inet_pton(AF_INET, a, x) == 1)
		return inet_pton(AF_INET, b, y) == 1 && memcmp(x, y, 4) == 0;
	if (inet_pton(AF_INET6, a, x) == 1)
		return inet_pton(AF_INET6, b, y) == 1 && memcmp(x, y, 16) == 0;
	return strcasecmp(a, b) == 0;
}

int backends_workers_parse_list(const char *s, struct backends_opts *o,
				struct lemon_err *err)
{
	const char *p = s, *end, *colon;
	uint64_t port;
	size_t len;

	o->n_workers = 0;
	while (*p) {
		struct backends_worker_addr *w;

		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		colon = memrchr(p, ':', len);
		if (o->n_workers == BACKENDS_MAX_WORKERS)
			return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
					     "workers: more than %d",
					     BACKENDS_MAX_WORKERS);
		if (colon == NULL || colon == p || (size_t)(colon - p) >= 64 ||
		    lemon_parse_u64(colon + 1, len - (size_t)(colon - p) - 1,
				    10, 65534, &port, NULL) < 0 ||
		    port == 0)
			return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
					     "workers: '%.*s' is not HOST:PORT "
					     "(port 1..65534)",
					     (int)(len > 80 ? 80 : len), p);
		w = &o->workers[o->n_workers++];
		memset(w, 0, sizeof(*w));
		lemon_str_copy_n(w->host, sizeof(w->host), p,
				 (size_t)(colon - p));
		if (strpbrk(w->host, " /@?#") != NULL)
			return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
					     "workers: bad host '%s'", w->host);
		w->port = (int)port;
		w->api_port = (int)port + 1;
		/* one rpc-server listed twice would count its memory twice
		 * and be given two shares of one model; and a worker's lemon
		 * endpoint is its port + 1, so ports next to each other on
		 * one host mix one worker's endpoint with the other's
		 * rpc-server. Hosts compared as addresses ("::A" is "::a") */
		for (int k = 0; k < o->n_workers - 1; k++) {
			const struct backends_worker_addr *v = &o->workers[k];

			if (!same_host(v->host, w->host))
				continue;
			if (v->port == w->port)
				return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
						     "workers: %s:%d is listed twice",
						     w->host, w->port);
			if (v->port == w->port + 1 || w->port == v->port + 1)
				return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
						     "workers: %s:%d and %s:%d: a worker's lemon endpoint is its port + 1, so ports of one host must be at least 2 apart",
						     v->host, v->port, w->host, w->port);
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* a TCP connection to host:port within timeout_ms (IPv4 or IPv6
 * literals; names are not resolved, so no resolver can hang a probe) */
static int connect_to(const char *host, int port, int timeout_ms,
		      struct lemon_err *err)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	struct pollfd pfd;
	socklen_t sl, el = sizeof(int);
	int fd, soerr = 0;
	const char *h = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;

	if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		sl = sizeof(*a4);
	} else if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*a6);
	} else {
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "'%s' is not an IP address", host);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
	if (fd < 0)
		return lemon_err_errno(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, timeout_ms) != 1) {
			errno = ETIMEDOUT;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) < 0 ||
		    soerr) {
			errno = soerr ? soerr : errno;
			goto fail;
		}
	}
	return fd;
fail:
	lemon_err_set(err, LEMON_ERR_NETWORK, "connecting to %s:%d: %s", host,
		      port, strerror(errno));
	close(fd);
	return -1;
}

int backends_worker_probe(const struct backends_worker_addr *w, int timeout_ms,
			  bool check_rpc, struct backends_worker_info *out,
			  struct lemon_err *err)
{
	struct lemon_http1_head head;
	struct pollfd pfd;
	char req[200], *resp = malloc(ANSWER_MAX + 1);
	int64_t deadline = mono_ms() + timeout_ms;
	size_t got = 0;
	ssize_t r;
	int fd, n, rc = -1, hrc = LEMON_HTTP1_INCOMPLETE, left;

	memset(out, 0, sizeof(*out));
	if (resp == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	fd = connect_to(w->host, w->api_port, timeout_ms, err);
	if (fd < 0)
		goto done;
	n = snprintf(req, sizeof(req),
		     "GET /api/v1/worker HTTP/1.1\r\nHost: "
		     "%s:%d\r\nConnection: close\r\n\r\n",
		     w->host, w->api_port);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		lemon_err_set(err, LEMON_ERR_NETWORK, "%s:%d: send failed",
			      w->host, w->api_port);
		goto done;
	}
	/* to EOF (Connection: close), within the deadline and ANSWER_MAX */
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		left = (int)(deadline - mono_ms());
		if (left <= 0 || poll(&pfd, 1, left) != 1) {
			lemon_err_set(err, LEMON_ERR_NETWORK,
				      "%s:%d: no complete answer within %d ms",
				      w->host, w->api_port, timeout_ms);
			goto done;
		}
		r = recv(fd, resp + got, ANSWER_MAX - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == ANSWER_MAX) {
			lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				      "%s:%d: answer longer than %d bytes",
				      w->host, w->api_port, ANSWER_MAX);
			goto done;
		}
	}
	resp[got] = 0;
	hrc = lemon_http1_parse_head(resp, got, &head);
	if (hrc != LEMON_HTTP1_OK || head.status != 200) {
		lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			      "%s:%d: not an HTTP 200 answer", w->host,
			      w->api_port);
		goto done;
	}
	if (backends_worker_parse_json(resp + head.head_len,
				       got - head.head_len, out, err) < 0) {
		lemon_err_prefix(err, "%s:%d", w->host, w->api_port);
		goto done;
	}
	if (!out->rpc_running) {
		lemon_err_set(err, LEMON_ERR_BUSY,
			      "%s:%d: its rpc-server is not running", w->host,
			      w->api_port);
		goto done;
	}
	close(fd);
	fd = -1;
	/* the rpc-server's own port must answer too: the head talks to it */
	if (check_rpc)
		fd = connect_to(w->host, w->port, timeout_ms, err);
	if (fd >= 0 || !check_rpc)
		rc = 0;
done:
	if (fd >= 0)
		close(fd);
	free(resp);
	return rc;
}

#define REFRESH_MS 30000 /* the workers are asked this often */
#define KICK_MIN_MS 2000 /* and on demand at most this often */

void backends_workers_refresh(struct backends *b)
{
	struct backends_worker_info info;
	struct lemon_err err;
	bool stop, held;
	int i;

	for (i = 0; i < b->o.n_workers; i++) {
		struct backends_worker_state *s = &b->wstate[i];
		bool was_ok;

		pthread_mutex_lock(&b->mu);
		stop = b->stop;
		held = backends_workers_holder(b, i) != NULL;
		pthread_mutex_unlock(&b->mu);
		if (stop)
			return; /* shutting down: no probe holds it up */
		lemon_err_clear(&err);
		if (backends_worker_probe(&b->o.workers[i], 2000, !held, &info,
					  &err) < 0) {
			memset(&info, 0, sizeof(info));
			snprintf(info.error, sizeof(info.error), "%s", err.msg);
		}
		pthread_mutex_lock(&b->mu);
		was_ok = s->checked && s->info.error[0] == 0;
		s->info = info;
		if (info.error[0] && (was_ok || !s->checked))
			backends_sup_log(b, "worker %s:%d unusable: %s",
					 b->o.workers[i].host,
					 b->o.workers[i].port, info.error);
		else if (!info.error[0] && !was_ok)
			backends_sup_log(b, "worker %s:%d: %s, %.0f MiB free",
					 b->o.workers[i].host,
					 b->o.workers[i].port, info.backend,
					 info.free_bytes / MIB);
		s->checked = true;
		pthread_mutex_unlock(&b->mu);
	}
	pthread_mutex_lock(&b->mu);
	b->wlast = mono_ms();
	pthread_mutex_unlock(&b->mu);
}

/* the refresher: a worker that goes away or comes back while nothing
 * is started is seen within REFRESH_MS (or at the next kick). Its own
 * thread: the probes take up to 2 s per silent worker, which the
 * supervisor's loop (reaping, health probes) must not wait for */
static void *refresher(void *arg)
{
	struct backends *b = arg;
	int64_t left;

	pthread_mutex_lock(&b->mu);
	while (!b->stop) {
		left = b->wlast + REFRESH_MS - mono_ms();
		if (!b->wkick && left > 0) {
			/* wcv is on the monotonic clock, as left is: a wall
			 * clock stepped back does not stall the refresh */
			lemon_cond_wait_ms(&b->wcv, &b->mu, left);
			continue;
		}
		b->wkick = false;
		b->wbusy = true;
		pthread_mutex_unlock(&b->mu);
		backends_workers_refresh(b);
		pthread_mutex_lock(&b->mu);
		b->wbusy = false;
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

int backends_workers_start(struct backends *b, struct lemon_err *err)
{
	int rc;

	if (b->o.n_workers == 0)
		return 0;
	b->wlast = mono_ms(); /* serve probes them once itself at start */
	rc = pthread_create(&b->wthread, NULL, refresher, b);
	if (rc != 0)
		return lemon_err_errno(err, rc, "starting the workers' refresher");
	b->wthread_started = true;
	return 0;
}

void backends_workers_stop(struct backends *b)
{
	if (!b->wthread_started)
		return;
	pthread_mutex_lock(&b->mu);
	pthread_cond_broadcast(&b->wcv);
	pthread_mutex_unlock(&b->mu);
	pthread_join(b->wthread, NULL);
	b->wthread_started = false;
}

void backends_workers_kick(struct backends *b)
{
	pthread_mutex_lock(&b->mu);
	if (b->wthread_started && !b->wbusy &&
	    mono_ms() - b->wlast >= KICK_MIN_MS) {
		b->wkick = true;
		pthread_cond_signal(&b->wcv);
	}
	pthread_mutex_unlock(&b->mu);
}

int backends_rpc_default_slots(const struct backends_worker_info *w, int n)
{
	uint64_t least = UINT64_MAX;
	int i;

	for (i = 0; i < n; i++) {
		if (strcmp(w[i].backend, "cpu") == 0)
			return backends_default_slots(0);
		if (w[i].free_bytes < least)
			least = w[i].free_bytes;
	}
	return backends_default_slots(n > 0 ? least : 0);
}

int backends_rpc_plan(struct backends *b, const struct backends_gguf_info *m,
		      const char *model, uint64_t local,
		      enum backends_place_mode mode,
		      struct backends_rpc_placement *out, struct lemon_err *err)
{
	struct backends_fit fit;
	struct backends_worker_choice ch, *use = &ch;
	char busy[240];
	struct backends_worker_info used[BACKENDS_MAX_WORKERS];
	size_t pos = 0, tpos = 0;
	int i;

	memset(out, 0, sizeof(*out));
	if (backends_fit_plan(m, model, b->o.ctx_size, 0, 0, &fit, err) < 0)
		return -1;
	if (mode == BACKENDS_PLACE_FOR_START)
		backends_workers_refresh(b);
	pthread_mutex_lock(&b->mu);
	/* evicted only when it fits: else refused */
	backends_workers_pick(b, mode, fit.need, local, &ch, busy, sizeof(busy));
	for (i = 0; i < use->n; i++) {
		const struct backends_worker_addr *w = &b->o.workers[use->w[i]];

		pos += (size_t)snprintf(out->rpc + pos, sizeof(out->rpc) - pos,
					"%s%s:%d", i ? "," : "", w->host, w->port);
		tpos += (size_t)snprintf(out->tensor_split + tpos,
					 sizeof(out->tensor_split) - tpos, "%s%llu",
					 i ? "," : "",
					 (unsigned long long)(b->wstate[use->w[i]].info.free_bytes >> 20) + 1);
		used[i] = b->wstate[use->w[i]].info;
		out->workers |= 1u << use->w[i];
	}
	out->slots = backends_rpc_default_slots(used, use->n);
	for (i = 0; i < use->n_evict; i++) {
		out->evict[i] = use->evict[i];
		out->evict_gen[i] = b->child[use->evict[i]].gen;
	}
	out->n_evict = use->n_evict;
	pthread_mutex_unlock(&b->mu);
	if (busy[0] && fit.need > use->total + local)
		return lemon_err_set(err, LEMON_ERR_BUSY,
				     "model '%s' needs about %.0f MiB, more than this machine has, and the workers are held: %s (an rpc-server serves one model at a time, and these have requests in flight or are loading)",
				     model, fit.need / MIB, busy);
	if (use->n == 0)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "model '%s' needs about %.0f MiB, more than this machine has, and no worker is reachable",
				     model, fit.need / MIB);
	if (fit.need > use->total + local)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "model '%s' needs about %.0f MiB; this machine has %.0f MiB and the %d free reachable worker(s) %.0f MiB",
				     model, fit.need / MIB, local / MIB, use->n,
				     use->total / MIB);
	out->n_workers = use->n;
	out->need = fit.need;
	out->ctx = fit.ctx;
	/* all layers on the workers when they hold it; else the layers in
	 * their share, the rest on this machine */
	out->ngl = m->block_count && m->block_count < 100000 ?
			   (int)m->block_count + 1 : 999;
	if (fit.need > use->total && m->block_count)
		out->ngl = (int)(m->block_count * (use->total / (double)fit.need));
	snprintf(out->placement, sizeof(out->placement),
		 "rpc %.280s, tensor split %.60s (MiB free), %d layers on workers",
		 out->rpc, out->tensor_split, out->ngl);
	return 0;
}
