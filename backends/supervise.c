/* the supervisor: one thread that forks every llama-server child, probes
 * /health until it is ready, reaps exits with non-blocking waitpid (the
 * only place children are reaped while lemon runs; nothing waits for a
 * process under the lock), enforces the SIGTERM -> SIGKILL deadline,
 * copies child log lines into lemon's log with a prefix, and falls back to
 * the next candidate when a backend cannot start. A start that fails
 * because of the model (llama-server says the file cannot be loaded) is
 * blamed on the model: the backend stays in use for other models. Request
 * threads only flip a child to WANT and wait on the condition variable. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/backends-private.h"
#include "backends/flm-private.h"
#include "backends/store-private.h"
#include "util/str.h"

#define BACKENDS_SUP_FAST_MS 10  /* loop period while a child starts or stops */
#define BACKENDS_SUP_SLOW_MS 250 /* otherwise: reaping and log copying */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void backends_sup_wake(struct backends *b)
{
	char c = 1;
	ssize_t r = write(b->wake[1], &c, 1);

	(void)r;
}

static const char *role_name(enum backends_role r)
{
	return r == BACKENDS_EMBED ? "embed" : r == BACKENDS_RERANK ? "rerank" : "chat";
}

/* copies complete lines from the child's pipe into the log */
static void drain_log(struct backends *b, struct backends_sup_child *c)
{
	char buf[4096], out[1200];
	ssize_t n;
	size_t i;
	int k;

	while (c->proc.log_fd >= 0) {
		n = read(c->proc.log_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(c->proc.log_fd);
			c->proc.log_fd = -1;
			break;
		}
		for (i = 0; i < (size_t)n; i++) {
			if (buf[i] != '\n' && c->line_len < sizeof(c->line) - 1) {
				c->line[c->line_len++] = buf[i];
				continue;
			}
			if (buf[i] != '\n')
				continue; /* over-long line: rest dropped */
			c->line[c->line_len] = 0;
			k = snprintf(out, sizeof(out), "[llama-server %s/%s/%s] %s\n",
				     c->model, role_name(c->role),
				     b->o.cand[c->cand].kind, c->line);
			if (k >= (int)sizeof(out)) {
				k = (int)sizeof(out) - 1;
				out[k - 1] = '\n'; /* cut, still one line */
			}
			if (k > 0)
				backends_sup_emit(b, out, (size_t)k);
			if (c->line_len > 0)
				memcpy(c->last_line, c->line, c->line_len + 1);
			if (c->state == BACKENDS_SUP_STARTING &&
			    backends_sup_error_line(c->line))
				memcpy(c->error_line, c->line, c->line_len + 1);
			if (c->state == BACKENDS_SUP_STARTING && !c->model_fault &&
			    backends_sup_model_fault(c->line, c->fault_line,
						     sizeof(c->fault_line)))
				c->model_fault = true;
			c->line_len = 0;
		}
	}
}

void backends_sup_record_fallback(struct backends *b, const char *model, int from,
			 int to, const char *reason)
{
	struct backends_sup_fallback *h;

	if (b->n_hist == BACKENDS_SUP_MAX_HISTORY) {
		memmove(b->hist, b->hist + 1, sizeof(b->hist[0]) * (BACKENDS_SUP_MAX_HISTORY - 1));
		b->n_hist--;
	}
	h = &b->hist[b->n_hist++];
	h->when = (int64_t)time(NULL);
	lemon_str_copy(h->model, sizeof(h->model), model);
	lemon_str_copy(h->from, sizeof(h->from), b->o.cand[from].kind);
	lemon_str_copy(h->to, sizeof(h->to), to >= 0 ? b->o.cand[to].kind : "");
	lemon_str_copy(h->reason, sizeof(h->reason), reason);
}

/* a start failed: record why and move to the next candidate, or fail */
static void start_failed(struct backends *b, struct backends_sup_child *c,
			 const char *reason)
{
	int next = -1, i;

	b->cand_failed[c->cand] = true;
	for (i = c->cand + 1; i < b->o.n_candidates; i++)
		if (!b->cand_failed[i] && !backends_flm_cand(b, i)) {
			next = i;
			break;
		}
	backends_sup_record_fallback(b, c->model, c->cand, next, reason);
	if (next >= 0) {
		backends_sup_log(b, "%s on %s failed: %s; falling back to %s", c->model,
			b->o.cand[c->cand].kind, reason, b->o.cand[next].kind);
		c->cand = next;
		c->state = BACKENDS_SUP_WANT;
		return;
	}
	backends_sup_log(b, "%s on %s failed: %s; no candidate left", c->model,
		b->o.cand[c->cand].kind, reason);
	snprintf(c->reason, sizeof(c->reason), "%s on %s: %s", c->model,
		 b->o.cand[c->cand].kind, reason);
	c->state = BACKENDS_SUP_FAILED;
	c->failed_at = now_ms();
	pthread_cond_broadcast(&b->cv);
}

/* a start failed because of the model: the model is marked failed (a
 * request gets INVALID_DATA) and the backend stays in use, no fallback */
static void model_failed(struct backends *b, struct backends_sup_child *c,
			 const char *why)
{
	char reason[sizeof(c->reason)];

	backends_sup_log(b, "%s cannot be loaded by llama-server on %s (%s): %s; the model is at fault, %s stays in use",
		c->model, b->o.cand[c->cand].kind, why, c->fault_line,
		b->o.cand[c->cand].kind);
	snprintf(reason, sizeof(reason), "model '%s' cannot be loaded: %.300s",
		 c->model, c->fault_line);
	memcpy(c->reason, reason, sizeof(reason));
	c->fail_code = LEMON_ERR_INVALID_DATA;
	c->state = BACKENDS_SUP_FAILED;
	c->failed_at = now_ms();
	pthread_cond_broadcast(&b->cv);
}

static void kill_child(struct backends_sup_child *c, int sig)
{
	if (c->proc.pid > 0)
		kill(-c->proc.pid, sig);
}

/* a start's pair lock (backends_pair_hold) is let go once the child is
 * ready or gone: c's, or (c NULL) those of every child past STARTING */
static void release_holds(struct backends *b, struct backends_sup_child *c)
{
	int i;

	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		struct backends_sup_child *h = &b->child[i];

		if (h->hold > 0 && (h == c || (c == NULL &&
					     h->state != BACKENDS_SUP_STARTING))) {
			backends_pair_release(h->hold - 1);
			h->hold = 0;
		}
	}
}

void backends_sup_stop_child(struct backends *b, struct backends_sup_child *c,
			     bool unload)
{
	if (c->proc.pid <= 0) {
		release_holds(b, c);
		c->state = unload ? BACKENDS_SUP_UNUSED : BACKENDS_SUP_IDLE;
		return;
	}
	kill_child(c, SIGTERM);
	c->unload = unload;
	c->state = BACKENDS_SUP_STOPPING;
	c->kill_at = now_ms() + BACKENDS_SUP_TERM_MS;
	c->kill_reason[0] = 0;
	backends_sup_wake(b);
}

/* WANT -> STARTING: resolve the executable (maybe provisioning, with the
 * lock released), place the model (backends/place.c), pick a port, fork */
static void start_child(struct backends *b, struct backends_sup_child *c)
{
	struct backends_spawn s = { 0 };
	struct backends_place_in in;
	struct backends_placement pl;
	struct lemon_err err = { 0 };
	char path[4200], model[BACKENDS_NAME_MAX];
	uint64_t model_bytes = 0;
	int rc, port = 0, hold = -1;
	bool flm = backends_flm_cand(b, c->cand); /* no GGUF, no plan */
	struct backends_candidate *cand = &in.cand;

	release_holds(b, c); /* an earlier start's, when it was evicting */
	path[0] = '\0';
	memset(&pl, 0, sizeof(pl));
	pl.fit.n_gpu_layers = -1;
	c->state = BACKENDS_SUP_STARTING;
	c->rpc_wait = false;
	c->last_line[0] = 0;
	c->error_line[0] = 0;
	c->model_fault = false;
	c->fault_line[0] = 0;
	c->kill_reason[0] = 0;
	lemon_str_copy(model, sizeof(model), c->model);
	backends_place_snapshot(b, c->cand, c, model, false, &in);
	pthread_mutex_unlock(&b->mu);
	rc = backends_resolve_exe(b, cand, &err);
	/* held until the child is ready or gone (release_holds): a pull does
	 * not publish while it loads; not had (a publication that does not
	 * end): started all the same; the wait ends at shutdown
	 * (pulls_cancelled: set by backends_shutdown and lemon serve's
	 * signal handling, before the supervisor is joined) */
	if (rc == 0 && !flm)
		backends_pair_hold(b->o.data_dir, model, &b->pulls_cancelled,
				   &hold);
	if (rc == 0 && !flm)
		rc = backends_model_path(b->o.data_dir, model, path,
					 sizeof(path), &err);
	/* every part of a split model: the load reads them all */
	if (rc == 0 && !flm)
		model_bytes = backends_model_file_bytes(path);
	if (rc == 0 && !flm &&
	    backends_place(b, &in, path, model, BACKENDS_PLACE_FOR_START, &pl,
			   &err) < 0)
		rc = -2;
	if (rc == 0)
		rc = backends_free_port(&port, &err);
	pthread_mutex_lock(&b->mu);
	if (c->state != BACKENDS_SUP_STARTING) {
		backends_pair_release(hold);
		return; /* unloaded meanwhile */
	}
	c->hold = hold + 1;
	if (rc == -2) {
		/* the model, not the backend, is at fault: no fallback */
		snprintf(c->reason, sizeof(c->reason), "%s", err.msg);
		c->fail_code = err.code;
		c->state = BACKENDS_SUP_FAILED;
		c->failed_at = now_ms();
		pthread_cond_broadcast(&b->cv);
		return;
	}
	c->port = port;
	if (rc < 0) {
		c->state = BACKENDS_SUP_IDLE;
		start_failed(b, c, err.msg);
		return;
	}
	if (pl.rp.n_evict > 0) {
		backends_place_evict(b, c, &pl.rp);
		return;
	}
	lemon_str_copy(b->o.cand[c->cand].exe, sizeof(cand->exe), cand->exe);
	s.exe = cand->exe;
	s.model_path = path;
	s.alias = c->model;
	s.env_extra = cand->env;
	s.port = c->port;
	/* the child gets what was planned, nothing left to its defaults */
	s.parallel = b->o.parallel > 0 ? b->o.parallel :
		     backends_default_slots(cand->vram_bytes);
	c->slots = s.parallel;
	s.device = cand->device;
	s.embeddings = c->role == BACKENDS_EMBED;
	s.reranking = c->role == BACKENDS_RERANK;
	s.flm = flm;
	backends_place_apply(b, c, &in, &pl, &s);
	if (flm)
		s.ctx_size = b->o.ctx_size;
	if (backends_spawn_child(&s, &c->proc, &err) < 0) {
		c->state = BACKENDS_SUP_IDLE;
		start_failed(b, c, err.msg);
		return;
	}
	c->gen = ++b->gen_seq;
	c->leases = 0;
	c->start_allowed_ms = backends_start_allowance_ms(b->o.start_timeout_ms,
							 model_bytes);
	c->deadline = now_ms() + c->start_allowed_ms;
	backends_sup_log(b, "starting %s (%s) on %s%s%s: %s port %d pid %d -c %d --parallel %d --n-gpu-layers %d",
		c->model, role_name(c->role), cand->kind,
		s.device[0] ? " " : "", s.device, cand->exe, c->port,
		(int)c->proc.pid, s.ctx_size, s.parallel, s.n_gpu_layers);
}

/* exit of a child: a start failure, a crash or a requested stop */
static void child_exited(struct backends *b, struct backends_sup_child *c, int status)
{
	char why[64], reason[400];

	backends_describe_status(status, why, sizeof(why));
	release_holds(b, c); /* its load is over */
	drain_log(b, c);
	if (c->proc.log_fd >= 0)
		close(c->proc.log_fd);
	c->proc.log_fd = -1;
	c->proc.pid = 0;
	c->line_len = 0;
	c->kill_at = 0;
	if (c->state == BACKENDS_SUP_STARTING ||
	    (c->state == BACKENDS_SUP_STOPPING && c->kill_reason[0] && !c->unload)) {
		if (c->kill_reason[0])
			lemon_str_copy(reason, sizeof(reason), c->kill_reason);
		else
			snprintf(reason, sizeof(reason), "llama-server %s before becoming healthy%s%.200s",
				 why, c->error_line[0] || c->last_line[0] ? ": " : "",
				 c->error_line[0] ? c->error_line : c->last_line);
		c->kill_reason[0] = 0;
		if (c->model_fault)
			model_failed(b, c, why);
		else
			start_failed(b, c, reason);
		return;
	}
	if (c->state == BACKENDS_SUP_READY) {
		c->crashes++;
		backends_sup_log(b, "llama-server for %s (%s) %s; it restarts on the next request",
			c->model, role_name(c->role), why);
	}
	c->state = c->unload ? BACKENDS_SUP_UNUSED : BACKENDS_SUP_IDLE;
	c->unload = false;
	pthread_cond_broadcast(&b->cv);
}

static void reap(struct backends *b)
{
	int i, status;

	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		struct backends_sup_child *c = &b->child[i];

		if (c->proc.pid <= 0)
			continue;
		if (waitpid(c->proc.pid, &status, WNOHANG) == c->proc.pid)
			child_exited(b, c, status);
	}
}

/* STARTING: poll /health (lock released) until ready or the deadline */
static void probe(struct backends *b, struct backends_sup_child *c)
{
	int port = c->port, code;
	unsigned gen = c->gen;
	/* flm has no /health: Lemonade polls /api/tags */
	const char *hpath =
		backends_flm_cand(b, c->cand) ? "/api/tags" : "/health";

	pthread_mutex_unlock(&b->mu);
	code = backends_http_status(port, hpath, 1000);
	pthread_mutex_lock(&b->mu);
	if (c->state != BACKENDS_SUP_STARTING || c->gen != gen)
		return;
	if (code == 200) {
		c->state = BACKENDS_SUP_READY;
		c->last_used = now_ms();
		backends_sup_log(b, "%s (%s) ready on %s, port %d", c->model,
			role_name(c->role), b->o.cand[c->cand].kind, c->port);
		pthread_cond_broadcast(&b->cv);
		return;
	}
	if (now_ms() >= c->deadline) {
		char reason[128];

		snprintf(reason, sizeof(reason),
			 "not healthy after %lld ms (last /health status %d)",
			 (long long)c->start_allowed_ms, code);
		/* judged once reap() sees the exit: no wait under the lock */
		kill_child(c, SIGKILL);
		lemon_str_copy(c->kill_reason, sizeof(c->kill_reason), reason);
		c->state = BACKENDS_SUP_STOPPING;
		c->kill_at = 0;
	}
}

/* --idle-timeout: a ready child unused for that long is stopped and its
 * slot freed; the next request loads it again. A child with requests in
 * flight (leases) is in use, however long they take; its idle time
 * counts from the end of the last one (backends_release). */
static void unload_idle(struct backends *b)
{
	int64_t now = now_ms();
	int i;

	if (b->o.idle_timeout_s <= 0)
		return;
	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		struct backends_sup_child *c = &b->child[i];

		if (c->state != BACKENDS_SUP_READY || c->proc.pid <= 0 ||
		    c->leases > 0 ||
		    now - c->last_used < b->o.idle_timeout_s * 1000LL)
			continue;
		backends_sup_log(b, "unloading %s (%s): idle for %d s", c->model,
			role_name(c->role), b->o.idle_timeout_s);
		backends_sup_stop_child(b, c, true);
	}
}

/* a child that ignores SIGTERM (or is stopped) is killed at its deadline;
 * reap() sees the exit */
static void enforce_kill_deadlines(struct backends *b)
{
	int64_t now = now_ms();
	int i;

	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		struct backends_sup_child *c = &b->child[i];

		if (c->state != BACKENDS_SUP_STOPPING || c->proc.pid <= 0 ||
		    c->kill_at == 0 || now < c->kill_at)
			continue;
		backends_sup_log(b, "llama-server for %s (pid %d) did not exit %d ms after SIGTERM; killing it",
			c->model, (int)c->proc.pid, BACKENDS_SUP_TERM_MS);
		kill_child(c, SIGKILL);
		c->kill_at = 0;
	}
}

/* true while a child is starting or stopping: then it is watched often */
static bool any_starting(struct backends *b)
{
	int i;

	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++)
		if (b->child[i].state == BACKENDS_SUP_STARTING ||
		    b->child[i].state == BACKENDS_SUP_WANT ||
		    b->child[i].state == BACKENDS_SUP_STOPPING)
			return true;
	return false;
}

/* Child logs are read on a timer, not as each line arrives: waking for
 * every line would put this thread on a CPU exactly while llama-server's
 * compute threads run (measured: about 2 ms added to the time to first
 * token on a 2-core machine). The pipe buffer holds the lines meanwhile,
 * and exits drain the pipe before they are judged. */
static void *backends_sup_main(void *arg)
{
	struct backends *b = arg;
	struct pollfd pfd = { .events = POLLIN };
	char drain[64];
	int i;

	pfd.fd = b->wake[0];
	pthread_mutex_lock(&b->mu);
	while (!b->stop) {
		int timeout = any_starting(b) ? BACKENDS_SUP_FAST_MS : BACKENDS_SUP_SLOW_MS;

		pthread_mutex_unlock(&b->mu);
		if (poll(&pfd, 1, timeout) > 0)
			while (read(b->wake[0], drain, sizeof(drain)) > 0)
				;
		pthread_mutex_lock(&b->mu);
		for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++)
			drain_log(b, &b->child[i]);
		reap(b);
		enforce_kill_deadlines(b);
		unload_idle(b);
		for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN && !b->stop; i++) {
			struct backends_sup_child *c = &b->child[i];

			if (c->state == BACKENDS_SUP_WANT &&
			    !(c->rpc_wait && backends_place_rpc_stopping(b)))
				start_child(b, c);
			if (c->state == BACKENDS_SUP_STARTING && c->proc.pid > 0)
				probe(b, c);
		}
		release_holds(b, NULL);
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

int backends_sup_start_thread(struct backends *b, struct lemon_err *err)
{
	int rc = pthread_create(&b->thread, NULL, backends_sup_main, b);

	if (rc != 0)
		return lemon_err_errno(err, rc, "starting the supervisor thread");
	b->thread_started = true;
	return 0;
}

/* reaps what has exited; the number still running. The lock is taken:
 * request threads may still release leases during shutdown */
static int reap_left(struct backends *b)
{
	int i, status, left = 0;

	pthread_mutex_lock(&b->mu);
	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		struct backends_sup_child *c = &b->child[i];

		if (c->proc.pid <= 0)
			continue;
		if (waitpid(c->proc.pid, &status, WNOHANG) == c->proc.pid) {
			drain_log(b, c);
			c->proc.pid = 0;
		} else {
			left++;
		}
	}
	pthread_mutex_unlock(&b->mu);
	return left;
}

/* polls until none is left or the deadline; the number left */
static int reap_until(struct backends *b, int64_t deadline)
{
	int left;

	while ((left = reap_left(b)) > 0 && now_ms() < deadline)
		usleep(20000);
	return left;
}

/* SIGTERM to every process group, SIGKILL to what is left after
 * BACKENDS_SUP_TERM_MS; a process that not even SIGKILL ends in
 * BACKENDS_SUP_REAP_MS (stuck in a driver) is reported and left behind
 * rather than waited for */
void backends_sup_stop_all(struct backends *b)
{
	int i;

	pthread_mutex_lock(&b->mu);
	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++)
		kill_child(&b->child[i], SIGTERM);
	pthread_mutex_unlock(&b->mu);
	if (reap_until(b, now_ms() + BACKENDS_SUP_TERM_MS) > 0) {
		pthread_mutex_lock(&b->mu);
		for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++)
			kill_child(&b->child[i], SIGKILL);
		pthread_mutex_unlock(&b->mu);
		reap_until(b, now_ms() + BACKENDS_SUP_REAP_MS);
	}
	pthread_mutex_lock(&b->mu);
	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		struct backends_sup_child *c = &b->child[i];

		if (c->proc.pid > 0)
			backends_sup_log(b, "llama-server for %s (pid %d) did not exit after SIGKILL; leaving it",
				c->model, (int)c->proc.pid);
		c->proc.pid = 0;
		if (c->proc.log_fd >= 0)
			close(c->proc.log_fd);
		c->proc.log_fd = -1;
		if (c->state != BACKENDS_SUP_UNUSED)
			c->state = BACKENDS_SUP_IDLE;
	}
	release_holds(b, NULL);
	pthread_mutex_unlock(&b->mu);
}

int64_t backends_sup_now_ms(void)
{
	return now_ms();
}
