/* the listening socket and the accept thread: each connection gets its
 * own thread (a blocking upstream read then streams to its client alone),
 * within a global cap and a cap per client address; over a cap the client
 * gets 503 with Retry-After at once. Stop lets streamed answers write
 * their last event for a short flush window, then wakes every connection
 * thread (shutdown(2) of its socket) and waits for them with a deadline. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "server/server-private.h"
#include "util/cond.h"
#include "util/str.h"

#define STOP_WAIT_MS 10000
/* of STOP_WAIT_MS, what streams get to end with their final event before
 * their sockets are shut: a cancelled download notices within a second */
#define FLUSH_MS 3000
/* descriptors kept for what is not a connection: children's pipes and
 * health probes, pulls, the store's locks, the logs */
#define FD_RESERVE 64

/* the answer over a cap, written without waiting: the socket is new and
 * its send buffer empty */
static void refuse(int fd, const char *why)
{
	char body[256], msg[512];
	int bl = snprintf(body, sizeof(body),
			  "{\"error\":{\"message\":\"%s\",\"type\":\"server_error\","
			  "\"param\":null,\"code\":\"too_many_connections\"}}",
			  why);
	int n = snprintf(
		msg, sizeof(msg),
		"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
		"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		bl, body);

	if (bl > 0 && n > 0 && (size_t)n < sizeof(msg))
		(void)!send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(fd, SHUT_WR);
	close(fd);
}

static void unlink_conn(struct server_http *h, struct server_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->n_conns--;
	pthread_cond_broadcast(&h->cv);
}

static void *conn_thread(void *arg)
{
	struct server_conn *c = arg;
	struct server_http *h = c->s->http;

	server_conn_run(c);
	pthread_mutex_lock(&h->mu);
	unlink_conn(h, c);
	pthread_mutex_unlock(&h->mu);
	server_conn_free(c);
	return NULL;
}

/* NULL when a cap is reached; why names which */
static const char *over_cap(struct server *s, uint32_t peer)
{
	struct server_conn *c;
	int same = 0;

	if (s->http->n_conns >= s->cfg.max_conns)
		return "too many connections to the server; retry later";
	for (c = s->http->conns; c; c = c->next)
		same += c->peer == peer;
	if (same >= s->cfg.max_conns_per_client)
		return "too many connections from this address; retry later";
	return NULL;
}

static void admit(struct server *s, int fd, uint32_t peer)
{
	struct server_http *h = s->http;
	struct server_conn *c;
	pthread_attr_t attr;
	pthread_t t;
	const char *why;

	pthread_mutex_lock(&h->mu);
	why = over_cap(s, peer);
	if (why) {
		pthread_mutex_unlock(&h->mu);
		refuse(fd, why);
		return;
	}
	c = server_conn_new(s, fd, peer);
	if (c == NULL) {
		pthread_mutex_unlock(&h->mu);
		refuse(fd, "out of memory; retry later");
		return;
	}
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	h->n_conns++;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, (size_t)256 * 1024);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, conn_thread, c) != 0) {
		unlink_conn(h, c);
		c->fd = -1;
		server_conn_free(c);
		pthread_mutex_unlock(&h->mu);
		refuse(fd, "cannot start a connection thread; retry later");
	} else {
		pthread_mutex_unlock(&h->mu);
	}
	pthread_attr_destroy(&attr);
}

static void *accept_thread(void *arg)
{
	struct server *s = arg;
	struct server_http *h = s->http;

	for (;;) {
		struct pollfd p[2] = { { .fd = h->lfd, .events = POLLIN },
				       { .fd = h->wake[0], .events = POLLIN } };
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		fd = accept4(h->lfd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC);
		if (fd < 0) {
			/* out of descriptors: give the others time to end */
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
				poll(NULL, 0, 100);
			continue;
		}
		admit(s, fd, sl >= sizeof(sa) ? sa.sin_addr.s_addr : 0);
	}
	return NULL;
}

static int listen_on(const struct server_config *c, int *out, struct lemon_err *err)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd, one = 1;

	if (inet_pton(AF_INET, c->host, &sa.sin_addr) != 1)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "host '%s' is not an IPv4 address", c->host);
	sa.sin_port = htons((uint16_t)c->port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lemon_err_errno(err, errno, "socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0) {
		close(fd);
		return lemon_err_set(err, LEMON_ERR_IO,
				     "cannot listen on %s:%d (in use or not permitted)",
				     c->host, c->port);
	}
	*out = fd;
	return 0;
}

/* a connection may hold two descriptors (its socket and one to a child).
 * The soft limit is raised as far as the hard one allows; a connection
 * cap the limit still cannot carry is lowered to what it can, so that a
 * busy server refuses a connection (503) instead of running out in the
 * middle of a request, where the failed socket to the child looked like
 * a dead child and had it killed */
static void fit_fd_limit(struct server_config *c)
{
	rlim_t need = (rlim_t)c->max_conns * 2 + FD_RESERVE;
	struct rlimit rl;
	int n;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit up = { need < rl.rlim_max ? need : rl.rlim_max, rl.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
		if (rl.rlim_cur >= need)
			return;
	}
	n = rl.rlim_cur > FD_RESERVE + 2 ? (int)((rl.rlim_cur - FD_RESERVE) / 2) : 1;
	fprintf(stderr,
		"lemon: the open file limit (%llu, ulimit -n) carries %d connections, not %d: --max-conns is %d\n",
		(unsigned long long)rl.rlim_cur, n, c->max_conns, n);
	c->max_conns = n;
}

int server_start(const struct server_config *c, struct backends *b, const char *data_dir,
		 const char *system_info, struct server **out, struct lemon_err *err)
{
	struct server *s;
	struct server_http *h;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	h = calloc(1, sizeof(*h));
	if (s == NULL || h == NULL) {
		free(s);
		free(h);
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	}
	s->cfg = *c;
	fit_fd_limit(&s->cfg);
	s->b = b;
	s->http = h;
	h->lfd = h->wake[0] = h->wake[1] = -1;
	lemon_str_copy(s->data_dir, sizeof(s->data_dir), data_dir);
	s->sysinfo = strdup(system_info ? system_info : "null");
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&h->mu, NULL);
	lemon_cond_init(&h->cv); /* waited on with a timeout */
	if (s->sysinfo == NULL || listen_on(c, &h->lfd, err) < 0 ||
	    pipe2(h->wake, O_CLOEXEC) < 0 ||
	    pthread_create(&h->accept_thread, NULL, accept_thread, s) != 0) {
		lemon_err_set(err, LEMON_ERR_INTERNAL, "cannot start the HTTP server");
		server_stop(s);
		return -1;
	}
	h->accepting = true;
	*out = s;
	return 0;
}

static void stop_accepting(struct server_http *h)
{
	if (!h->accepting)
		return;
	(void)!write(h->wake[1], "x", 1);
	pthread_join(h->accept_thread, NULL);
	h->accepting = false;
	close(h->lfd);
	h->lfd = -1;
}

/* new connections are refused; idle keep-alive connections end, busy ones
 * finish their response and then close */
void server_quiesce(struct server *s)
{
	struct server_conn *c;

	if (s == NULL || s->http == NULL)
		return;
	stop_accepting(s->http);
	pthread_mutex_lock(&s->http->mu);
	s->http->draining = true;
	/* a request still being read ends too; answers being written go on */
	for (c = s->http->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RD);
	pthread_mutex_unlock(&s->http->mu);
}

/* waits, under h->mu, until no connection is left or the deadline (ms
 * of server_now_ms) passes */
static void wait_conns(struct server_http *h, int64_t deadline)
{
	while (h->n_conns > 0 && server_now_ms() < deadline)
		lemon_cond_wait_ms(&h->cv, &h->mu, 100);
}

/* true when every connection thread ended before the deadline. First
 * the flush window: with only their reads shut, the connections get
 * FLUSH_MS to end by themselves, so that a streamed route the shutdown
 * cancelled (a pull, a backend install) writes its final event, which
 * tells its client "cancelled" rather than "cut"; idle and reading
 * connections end at once. Then every socket is shut both ways and the
 * rest of STOP_WAIT_MS is waited. */
static bool end_connections(struct server_http *h)
{
	int64_t t0 = server_now_ms();
	struct server_conn *c;
	bool done;

	pthread_mutex_lock(&h->mu);
	h->draining = true;
	for (c = h->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RD);
	wait_conns(h, t0 + FLUSH_MS);
	for (c = h->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	wait_conns(h, t0 + STOP_WAIT_MS);
	done = h->n_conns == 0;
	pthread_mutex_unlock(&h->mu);
	return done;
}

int server_stop(struct server *s)
{
	struct server_http *h;

	if (s == NULL)
		return 0;
	h = s->http;
	if (h) {
		stop_accepting(h);
		if (!end_connections(h)) {
			/* a thread still inside a route would use freed memory:
			 * leave it all to the process exit */
			fprintf(stderr,
				"lemon: %d connection(s) still busy after %d s; not waiting longer\n",
				h->n_conns, STOP_WAIT_MS / 1000);
			return -1;
		}
		if (h->lfd >= 0)
			close(h->lfd);
		if (h->wake[0] >= 0)
			close(h->wake[0]);
		if (h->wake[1] >= 0)
			close(h->wake[1]);
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->mu);
		free(h);
	}
	pthread_mutex_destroy(&s->mu);
	free(s->sysinfo);
	free(s);
	return 0;
}
