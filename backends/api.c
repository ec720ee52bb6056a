/* the public face of the supervisor: creating it, preparing the first
 * backend, leasing a ready child to a request (each lease counted until
 * released: a child with requests in flight is never evicted or unloaded
 * for idleness), load/unload and the status snapshot. Everything here runs
 * on request threads under the mutex and only asks the supervisor thread
 * to act. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/backends-private.h"
#include "backends/flm-private.h"
#include "util/cond.h"
#include "util/str.h"

#define RETRY_FAILED_MS 5000 /* a failed model may be retried after this */

int backends_new(const struct backends_opts *opts, struct backends **out,
		 struct lemon_err *err)
{
	struct backends *b;
	int i;

	*out = NULL;
	if (opts->n_candidates <= 0 || opts->n_candidates > BACKENDS_MAX_CANDIDATES)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "backend candidates: %d (1..%d)",
				     opts->n_candidates, BACKENDS_MAX_CANDIDATES);
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	b->o = *opts;
	b->log = opts->log ? opts->log : stderr;
	if (b->o.start_timeout_ms <= 0)
		b->o.start_timeout_ms = 60000;
	if (b->o.parallel < 0)
		b->o.parallel = 0;
	if (backends_data_dir(opts->data_dir, b->data_dir, sizeof(b->data_dir),
			      err) < 0) {
		free(b);
		return -1;
	}
	b->o.data_dir = b->data_dir;
	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++)
		b->child[i].proc.log_fd = -1;
	if (pipe2(b->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		lemon_err_errno(err, errno, "pipe");
		free(b);
		return -1;
	}
	pthread_mutex_init(&b->mu, NULL);
	pthread_mutex_init(&b->qmu, NULL);
	pthread_cond_init(&b->qcv, NULL);
	/* waited on with timeouts: on the monotonic clock */
	lemon_cond_init(&b->qdone);
	lemon_cond_init(&b->cv);
	lemon_cond_init(&b->wcv);
	if (backends_sup_log_start(b, err) < 0 ||
	    backends_sup_start_thread(b, err) < 0 ||
	    backends_workers_start(b, err) < 0) {
		backends_free(b);
		return -1;
	}
	*out = b;
	return 0;
}

int backends_prepare(struct backends *b, struct lemon_err *err)
{
	struct lemon_err e;
	int i;

	for (i = 0; i < b->o.n_candidates; i++) {
		struct backends_candidate c;

		pthread_mutex_lock(&b->mu);
		c = b->o.cand[i];
		pthread_mutex_unlock(&b->mu);
		lemon_err_clear(&e);
		if (backends_resolve_exe(b, &c, &e) == 0) {
			pthread_mutex_lock(&b->mu);
			b->o.cand[i] = c;
			pthread_mutex_unlock(&b->mu);
			backends_sup_log(b, "backend %s: %s", c.kind, c.exe);
			backends_sup_log_flush(b, 1000);
			return 0;
		}
		pthread_mutex_lock(&b->mu);
		b->cand_failed[i] = true;
		backends_sup_record_fallback(b, "", i, i + 1 < b->o.n_candidates ? i + 1 : -1,
				    e.msg);
		pthread_mutex_unlock(&b->mu);
		backends_sup_log(b, "backend %s unavailable: %s", c.kind, e.msg);
	}
	backends_sup_log_flush(b, 1000);
	return lemon_err_set(err, LEMON_ERR_BROKEN_SYSTEM,
			     "no backend could be installed (last: %s)", e.msg);
}

static struct backends_sup_child *find_child(struct backends *b, const char *model,
				    enum backends_role role, bool alloc)
{
	int i;

	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		struct backends_sup_child *c = &b->child[i];

		if (c->state != BACKENDS_SUP_UNUSED && c->role == role &&
		    strcmp(c->model, model) == 0)
			return c;
	}
	if (!alloc)
		return NULL;
	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		struct backends_sup_child *c = &b->child[i];

		if (c->state == BACKENDS_SUP_UNUSED && c->proc.pid == 0) {
			memset(c, 0, sizeof(*c));
			c->proc.log_fd = -1;
			c->state = BACKENDS_SUP_IDLE;
			c->role = role;
			lemon_str_copy(c->model, sizeof(c->model), model);
			return c;
		}
	}
	return NULL;
}

/* the first candidate that has not failed; the last one when all have */
static int first_candidate(struct backends *b)
{
	int i;

	int last = b->o.n_candidates - 1;

	for (i = 0; i < b->o.n_candidates; i++)
		if (!b->cand_failed[i] && !backends_flm_cand(b, i))
			return i;
	if (last > 0 && backends_flm_cand(b, last))
		last--; /* the NPU candidate is for flm models only */
	b->cand_failed[last] = false;
	return last;
}

int backends_sup_first_cand(struct backends *b)
{
	return first_candidate(b);
}

/* true while a child of the role is stopping to make room */
static bool evicting(struct backends *b, enum backends_role role)
{
	int i;

	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++)
		if (b->child[i].role == role && b->child[i].unload &&
		    b->child[i].state == BACKENDS_SUP_STOPPING)
			return true;
	return false;
}

/* the lock is held; woken by any state change or after 200 ms */
static void wait_a_little(struct backends *b)
{
	lemon_cond_wait_ms(&b->cv, &b->mu, 200);
}

static int wait_ready(struct backends *b, struct backends_sup_child *c,
		      struct backends_lease *l, struct lemon_err *err)
{
	int64_t deadline = backends_sup_now_ms() + b->o.start_timeout_ms * 4LL + 600000;

	for (;;) {
		/* an evicted child's memory is given back before a new one
		 * is started */
		if ((c->state == BACKENDS_SUP_IDLE && !evicting(b, c->role)) ||
		    (c->state == BACKENDS_SUP_FAILED &&
		     backends_sup_now_ms() - c->failed_at > RETRY_FAILED_MS)) {
			c->cand = backends_flm_first(b, c->model,
						     first_candidate(b));
			c->state = BACKENDS_SUP_WANT;
			backends_sup_wake(b);
		}
		if (c->state == BACKENDS_SUP_READY) {
			l->port = c->port;
			l->slot = (int)(c - b->child);
			l->gen = c->gen;
			lemon_str_copy(l->backend, sizeof(l->backend),
				       b->o.cand[c->cand].kind);
			c->leases++;
			return 0;
		}
		if (c->state == BACKENDS_SUP_FAILED &&
		    c->fail_code != 0 && c->fail_code != LEMON_ERR_BROKEN_SYSTEM)
			return lemon_err_set(err, c->fail_code, "%s", c->reason);
		if (c->state == BACKENDS_SUP_FAILED)
			return lemon_err_set(err, LEMON_ERR_BROKEN_SYSTEM,
					     "model failed to load: %s", c->reason);
		if (c->state == BACKENDS_SUP_UNUSED)
			return lemon_err_set(err, LEMON_ERR_BUSY,
					     "model '%s' was unloaded while loading",
					     c->model);
		if (b->stop || backends_sup_now_ms() > deadline)
			return lemon_err_set(err, LEMON_ERR_BUSY,
					     "model '%s' did not become ready",
					     c->model);
		wait_a_little(b);
	}
}

/* children of the role that hold (or are about to hold) memory */
static int count_loaded(struct backends *b, enum backends_role role,
			const struct backends_sup_child *except)
{
	int i, n = 0;

	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		const struct backends_sup_child *c = &b->child[i];

		if (c == except || c->role != role)
			continue;
		/* an idle one counts: it is about to start (or restart) */
		if (c->state == BACKENDS_SUP_WANT || c->state == BACKENDS_SUP_STARTING ||
		    c->state == BACKENDS_SUP_READY || c->state == BACKENDS_SUP_IDLE ||
		    (c->state == BACKENDS_SUP_STOPPING && !c->unload))
			n++;
	}
	return n;
}

static bool free_slot(struct backends *b)
{
	int i;

	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++)
		if (b->child[i].state == BACKENDS_SUP_UNUSED && b->child[i].proc.pid == 0)
			return true;
	return false;
}

/* the least recently used child that may go (ready, idle or failed, and
 * no request in flight on it): of the role when the role is at its limit,
 * of any role for a slot */
static struct backends_sup_child *lru_victim(struct backends *b, enum backends_role role,
				    bool any_role, const struct backends_sup_child *keep)
{
	struct backends_sup_child *v = NULL;
	int i;

	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		struct backends_sup_child *c = &b->child[i];
		bool ok = c->state == BACKENDS_SUP_READY || c->state == BACKENDS_SUP_IDLE ||
			  c->state == BACKENDS_SUP_FAILED;

		if (c == keep || !ok || c->leases > 0 ||
		    (!any_role && c->role != role))
			continue;
		if (v == NULL || c->last_used < v->last_used)
			v = c;
	}
	return v;
}

static void evict(struct backends *b, struct backends_sup_child *v, const char *for_model)
{
	backends_sup_log(b, "unloading %s (least recently used) to load %s", v->model,
		for_model);
	backends_sup_stop_child(b, v, true);
}

/* finds or makes the child for (model, role), evicting by LRU while the
 * role is at --max-loaded or every slot is taken; waits (cv) while all
 * the others are loading or serving requests, at most the start timeout,
 * then BUSY (the server answers 503 with Retry-After) */
static struct backends_sup_child *place_child(struct backends *b, const char *model,
				     enum backends_role role,
				     struct lemon_err *err)
{
	int limit = b->o.max_loaded > 0 ? b->o.max_loaded : BACKENDS_SUP_MAX_CHILDREN;
	int64_t deadline = backends_sup_now_ms() + b->o.start_timeout_ms;
	struct backends_sup_child *c, *v;

	for (;;) {
		c = find_child(b, model, role, false);
		if (c && (c->state == BACKENDS_SUP_WANT || c->state == BACKENDS_SUP_STARTING ||
			  c->state == BACKENDS_SUP_READY))
			return c; /* loaded or loading: share it */
		v = NULL;
		if (count_loaded(b, role, c) >= limit)
			v = lru_victim(b, role, false, c);
		else if (c == NULL && !free_slot(b))
			v = lru_victim(b, role, true, c);
		else if (c)
			return c;
		else if ((c = find_child(b, model, role, true)) != NULL) {
			c->last_used = backends_sup_now_ms(); /* not the LRU victim */
			return c;
		}
		if (v) {
			evict(b, v, model);
			continue;
		}
		if (b->stop || backends_sup_now_ms() > deadline) {
			lemon_err_set(err, LEMON_ERR_BUSY,
				      "no room to load '%s': the %d loaded models are busy (serving, loading or stopping)",
				      model, limit);
			return NULL;
		}
		wait_a_little(b);
	}
}

/* an flm model (backends/flm.c): on the NPU when flm can serve there, one
 * NPU child at a time; else, or when its child cannot start, the same
 * model's GGUF when the registry names one, saying so in the log and the
 * fallback history */
static int acquire_flm(struct backends *b, const char *model,
		       enum backends_role role, struct backends_lease *lease,
		       struct lemon_err *err)
{
	int64_t deadline = backends_sup_now_ms() + b->o.start_timeout_ms;
	struct backends_sup_child *c;
	char gguf[BACKENDS_NAME_MAX];
	int rc = -1;

	lemon_str_copy(gguf, sizeof(gguf), backends_flm_find(b, model)->gguf);
	pthread_mutex_lock(&b->mu);
	if (b->flm->cand < 0) {
		lemon_err_set(err, LEMON_ERR_UNSUPPORTED_HW,
			      "model '%s' runs on the NPU with FastFlowLM, which cannot serve here: %s",
			      model, b->flm->o.refusal);
		goto fallback;
	}
	while (!b->stop && !backends_flm_make_room(b, model)) {
		if (backends_sup_now_ms() > deadline) {
			pthread_mutex_unlock(&b->mu);
			return lemon_err_set(err, LEMON_ERR_BUSY,
					     "the NPU is busy with another model");
		}
		wait_a_little(b);
	}
	c = b->stop ? NULL : place_child(b, model, role, err);
	if (c == NULL) {
		pthread_mutex_unlock(&b->mu);
		return b->stop ? lemon_err_set(err, LEMON_ERR_BUSY,
					       "lemon is shutting down") :
				 -1;
	}
	c->unload = false;
	rc = wait_ready(b, c, lease, err);
	if (rc == 0)
		c->last_used = backends_sup_now_ms();
	if (rc == 0 || err->code != LEMON_ERR_BROKEN_SYSTEM || !gguf[0]) {
		pthread_mutex_unlock(&b->mu);
		return rc;
	}
	backends_sup_record_fallback(b, model, b->flm->cand, first_candidate(b),
				     err->msg);
fallback:
	pthread_mutex_unlock(&b->mu);
	if (!gguf[0])
		return -1;
	backends_sup_log(b, "%s cannot run on the NPU (%s); serving its GGUF %s instead",
		model, err->msg, gguf);
	lemon_err_clear(err);
	return backends_acquire(b, gguf, role, lease, err);
}

int backends_acquire(struct backends *b, const char *model,
		     enum backends_role role, struct backends_lease *lease,
		     struct lemon_err *err)
{
	struct backends_placement *pl;
	struct backends_place_in *in;
	struct backends_sup_child *c;
	char path[4200];
	int rc;

	lease->port = 0;
	if (backends_flm_find(b, model) != NULL)
		return acquire_flm(b, model, role, lease, err);
	if (backends_model_path(b->data_dir, model, path, sizeof(path), err) < 0)
		return -1;
	pthread_mutex_lock(&b->mu);
	if (b->stop) {
		pthread_mutex_unlock(&b->mu);
		return lemon_err_set(err, LEMON_ERR_BUSY, "lemon is shutting down");
	}
	c = find_child(b, model, role, false);
	if (c && c->state == BACKENDS_SUP_READY) {
		/* the common case: no header to read, nothing to plan */
		c->unload = false;
		rc = wait_ready(b, c, lease, err);
		c->last_used = backends_sup_now_ms();
		pthread_mutex_unlock(&b->mu);
		return rc;
	}
	pl = malloc(sizeof(*pl) + sizeof(*in));
	if (pl == NULL) {
		pthread_mutex_unlock(&b->mu);
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	}
	in = (struct backends_place_in *)(pl + 1);
	/* with everything free: a model that fits once others are gone is
	 * left to the start */
	backends_place_snapshot(b, first_candidate(b), NULL, model, true, in);
	pthread_mutex_unlock(&b->mu);
	/* a model that fits nowhere (not on the GPUs together either) is
	 * refused before anything starts or is evicted for it, by the
	 * placement the start makes; the workers are asked by the start */
	rc = backends_place(b, in, path, model, BACKENDS_PLACE_FOR_CHECK, pl, err);
	free(pl);
	if (rc < 0)
		return -1;
	pthread_mutex_lock(&b->mu);
	c = place_child(b, model, role, err);
	if (c == NULL) {
		pthread_mutex_unlock(&b->mu);
		return -1;
	}
	c->unload = false;
	rc = wait_ready(b, c, lease, err);
	if (rc == 0)
		c->last_used = backends_sup_now_ms();
	pthread_mutex_unlock(&b->mu);
	return rc;
}

/* the lock is held: one request fewer on the lease's child; the lease is
 * used up (a second release of it does nothing) */
static struct backends_sup_child *drop_lease(struct backends *b,
					     struct backends_lease *l)
{
	struct backends_sup_child *c;

	if (l->port <= 0 || l->slot < 0 || l->slot >= BACKENDS_SUP_MAX_CHILDREN)
		return NULL;
	l->port = 0;
	c = &b->child[l->slot];
	if (c->gen != l->gen)
		return NULL; /* that start is gone */
	if (c->leases > 0)
		c->leases--;
	c->last_used = backends_sup_now_ms();
	pthread_cond_broadcast(&b->cv); /* it may be evicted now */
	return c;
}

void backends_release(struct backends *b, struct backends_lease *l)
{
	pthread_mutex_lock(&b->mu);
	drop_lease(b, l);
	pthread_mutex_unlock(&b->mu);
}

void backends_report_dead(struct backends *b, struct backends_lease *l)
{
	struct backends_sup_child *c;
	bool alive;

	if (l->port <= 0)
		return;
	/* a child that still answers /health was only busy (a full listen
	 * backlog under load): it must not be killed */
	alive = backends_http_status(l->port, "/health", 1000) == 200;
	pthread_mutex_lock(&b->mu);
	c = drop_lease(b, l);
	if (!alive && c && c->state == BACKENDS_SUP_READY && c->proc.pid > 0) {
		backends_sup_log(b, "llama-server for %s is unreachable; restarting it",
			c->model);
		kill(-c->proc.pid, SIGKILL);
		c->state = BACKENDS_SUP_STOPPING;
		c->kill_at = 0;
		backends_sup_wake(b);
	}
	pthread_mutex_unlock(&b->mu);
}

/* loading holds no request: the lease is handed back at once */
int backends_load(struct backends *b, const char *model,
		  struct backends_lease *lease, struct lemon_err *err)
{
	if (backends_acquire(b, model, BACKENDS_CHAT, lease, err) < 0)
		return -1;
	backends_release(b, lease);
	return 0;
}
int backends_unload(struct backends *b, const char *model,
		    struct lemon_err *err)
{
	int found = 0, r;

	if (!backends_model_name_valid(model))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "invalid model name '%.64s'", model);
	pthread_mutex_lock(&b->mu);
	for (r = BACKENDS_CHAT; r <= BACKENDS_RERANK; r++) {
		struct backends_sup_child *c = find_child(b, model, r, false);

		if (c == NULL)
			continue;
		found++;
		backends_sup_stop_child(b, c, true);
	}
	pthread_mutex_unlock(&b->mu);
	backends_sup_wake(b);
	if (!found)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "model '%s' is not loaded", model);
	backends_sup_log(b, "unloading %s", model);
	return 0;
}

static const char *state_name(enum backends_sup_state s)
{
	switch (s) {
	case BACKENDS_SUP_UNUSED: return "unused";
	case BACKENDS_SUP_IDLE: return "idle";
	case BACKENDS_SUP_WANT: return "queued";
	case BACKENDS_SUP_STARTING: return "loading";
	case BACKENDS_SUP_READY: return "ready";
	case BACKENDS_SUP_STOPPING: return "stopping";
	case BACKENDS_SUP_FAILED: return "failed";
	}
	return "unknown";
}

static void snap_child(struct backends *b, const struct backends_sup_child *c,
		       struct backends_child_status *o)
{
	memset(o, 0, sizeof(*o));
	lemon_str_copy(o->model, sizeof(o->model), c->model);
	o->role = c->role;
	lemon_str_copy(o->state, sizeof(o->state), state_name(c->state));
	lemon_str_copy(o->backend, sizeof(o->backend), b->o.cand[c->cand].kind);
	o->idle_s = -1;
	o->n_gpu_layers = -1;
	o->leases = c->leases;
	o->crashes = c->crashes;
	if (c->state == BACKENDS_SUP_READY || c->state == BACKENDS_SUP_STARTING) {
		o->pid = (int)c->proc.pid;
		o->port = c->port;
	}
	if (c->state == BACKENDS_SUP_READY) {
		o->idle_s = c->leases > 0 ? 0 :
			    (backends_sup_now_ms() - c->last_used) / 1000;
		o->n_gpu_layers = c->n_gpu_layers;
	}
	if (c->state == BACKENDS_SUP_READY || c->state == BACKENDS_SUP_STARTING)
		o->slots = c->slots;
	if (c->state == BACKENDS_SUP_FAILED)
		lemon_str_copy(o->error, sizeof(o->error), c->reason);
	if (c->state == BACKENDS_SUP_READY || c->state == BACKENDS_SUP_STARTING)
		lemon_str_copy(o->placement, sizeof(o->placement), c->placement);
}

void backends_snapshot(struct backends *b, struct backends_status *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&b->mu);
	out->max_loaded = b->o.max_loaded;
	out->idle_timeout_s = b->o.idle_timeout_s;
	out->parallel = b->o.parallel;
	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++)
		if (b->child[i].state != BACKENDS_SUP_UNUSED)
			snap_child(b, &b->child[i], &out->child[out->n_children++]);
	for (i = 0; i < b->n_hist; i++) {
		struct backends_fallback_status *f = &out->fallback[i];

		f->time = b->hist[i].when;
		lemon_str_copy(f->model, sizeof(f->model), b->hist[i].model);
		lemon_str_copy(f->from, sizeof(f->from), b->hist[i].from);
		lemon_str_copy(f->to, sizeof(f->to), b->hist[i].to);
		lemon_str_copy(f->reason, sizeof(f->reason), b->hist[i].reason);
	}
	out->n_fallbacks = b->n_hist;
	for (i = 0; i < b->o.n_candidates; i++) {
		lemon_str_copy(out->cand[i].backend, sizeof(out->cand[i].backend),
			       b->o.cand[i].kind);
		lemon_str_copy(out->cand[i].exe, sizeof(out->cand[i].exe),
			       b->o.cand[i].exe);
		lemon_str_copy(out->cand[i].device, sizeof(out->cand[i].device),
			       b->o.cand[i].device);
		out->cand[i].failed = b->cand_failed[i];
	}
	out->n_candidates = b->o.n_candidates;
	out->n_workers = b->o.n_workers;
	for (i = 0; i < b->o.n_workers; i++) {
		out->worker[i] = b->o.workers[i];
		out->worker_info[i] = b->wstate[i].info;
		out->worker_checked[i] = b->wstate[i].checked;
	}
	out->installs = b->installs;
	pthread_mutex_unlock(&b->mu);
}

void backends_shutdown(struct backends *b)
{
	if (b == NULL)
		return;
	/* also ends a start's wait for the pair lock (mmproj.c) */
	atomic_store(&b->pulls_cancelled, true);
	pthread_mutex_lock(&b->mu);
	b->stop = true;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	backends_sup_wake(b);
	if (b->thread_started)
		pthread_join(b->thread, NULL);
	b->thread_started = false;
	backends_workers_stop(b);
	backends_sup_stop_all(b);
	backends_sup_log_flush(b, 1000);
}

void backends_free(struct backends *b)
{
	if (b == NULL)
		return;
	backends_shutdown(b);
	/* a writer stuck on a log nobody reads still uses b: it is left to
	 * the process's exit rather than freed under it */
	if (!backends_sup_log_stop(b))
		return;
	close(b->wake[0]);
	close(b->wake[1]);
	pthread_cond_destroy(&b->cv);
	pthread_cond_destroy(&b->wcv);
	pthread_cond_destroy(&b->qdone);
	pthread_cond_destroy(&b->qcv);
	pthread_mutex_destroy(&b->qmu);
	pthread_mutex_destroy(&b->mu);
	backends_flm_free(b);
	free(b);
}
