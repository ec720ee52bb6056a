/* the public face of the supervisor: creating it, preparing the first
 * backend, leasing a ready child to a request, load/unload and the health
 * report. Everything here runs on request threads under the mutex and only
 * asks the supervisor thread to act. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/backends-private.h"
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
	if (b->o.parallel <= 0)
		b->o.parallel = 4;
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
	pthread_cond_init(&b->cv, NULL);
	if (backends_sup_start_thread(b, err) < 0) {
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
		if (backends_resolve_exe(&b->o, &c, &e) == 0) {
			pthread_mutex_lock(&b->mu);
			b->o.cand[i] = c;
			pthread_mutex_unlock(&b->mu);
			backends_sup_log(b, "backend %s: %s", c.kind, c.exe);
			return 0;
		}
		pthread_mutex_lock(&b->mu);
		b->cand_failed[i] = true;
		backends_sup_record_fallback(b, "", i, i + 1 < b->o.n_candidates ? i + 1 : -1,
				    e.msg);
		pthread_mutex_unlock(&b->mu);
		backends_sup_log(b, "backend %s unavailable: %s", c.kind, e.msg);
	}
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

	for (i = 0; i < b->o.n_candidates; i++)
		if (!b->cand_failed[i])
			return i;
	b->cand_failed[b->o.n_candidates - 1] = false;
	return b->o.n_candidates - 1;
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
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 200 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&b->cv, &b->mu, &ts);
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
			c->cand = first_candidate(b);
			c->state = BACKENDS_SUP_WANT;
			backends_sup_wake(b);
		}
		if (c->state == BACKENDS_SUP_READY) {
			l->port = c->port;
			l->slot = (int)(c - b->child);
			l->gen = c->gen;
			lemon_str_copy(l->backend, sizeof(l->backend),
				       b->o.cand[c->cand].kind);
			return 0;
		}
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

/* the least recently used child that may go (ready, idle or failed): of
 * the role when the role is at its limit, of any role for a slot */
static struct backends_sup_child *lru_victim(struct backends *b, enum backends_role role,
				    bool any_role, const struct backends_sup_child *keep)
{
	struct backends_sup_child *v = NULL;
	int i;

	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		struct backends_sup_child *c = &b->child[i];
		bool ok = c->state == BACKENDS_SUP_READY || c->state == BACKENDS_SUP_IDLE ||
			  c->state == BACKENDS_SUP_FAILED;

		if (c == keep || !ok || (!any_role && c->role != role))
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
	if (v->proc.pid > 0) {
		kill(-v->proc.pid, SIGTERM);
		v->unload = true;
		v->state = BACKENDS_SUP_STOPPING;
		backends_sup_wake(b);
	} else {
		v->state = BACKENDS_SUP_UNUSED;
	}
}

/* finds or makes the child for (model, role), evicting by LRU while the
 * role is at --max-loaded or every slot is taken; waits (cv) while all
 * the others are still loading */
static struct backends_sup_child *place_child(struct backends *b, const char *model,
				     enum backends_role role,
				     struct lemon_err *err)
{
	int limit = b->o.max_loaded > 0 ? b->o.max_loaded : BACKENDS_SUP_MAX_CHILDREN;
	int64_t deadline = backends_sup_now_ms() + b->o.start_timeout_ms * 2LL;
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
				      "no room to load '%s': %d models are loading or stopping",
				      model, limit);
			return NULL;
		}
		wait_a_little(b);
	}
}

int backends_acquire(struct backends *b, const char *model,
		     enum backends_role role, struct backends_lease *lease,
		     struct lemon_err *err)
{
	struct backends_fit fit;
	struct backends_sup_child *c;
	char path[4200];
	int rc, ci;

	if (backends_model_path(b->data_dir, model, path, sizeof(path), err) < 0)
		return -1;
	pthread_mutex_lock(&b->mu);
	c = find_child(b, model, role, false);
	if (c && c->state == BACKENDS_SUP_READY) {
		/* the common case: no header to read, nothing to plan */
		c->unload = false;
		rc = wait_ready(b, c, lease, err);
		c->last_used = backends_sup_now_ms();
		pthread_mutex_unlock(&b->mu);
		return rc;
	}
	ci = first_candidate(b);
	pthread_mutex_unlock(&b->mu);
	/* a model that fits nowhere is refused before anything starts or is
	 * evicted for it */
	if (backends_sup_plan(b, path, model, b->o.ram_bytes, b->o.cand[ci].vram_bytes,
		     &fit, err) < 0)
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

void backends_release(struct backends *b, const struct backends_lease *l)
{
	struct backends_sup_child *c;

	if (l->port <= 0 || l->slot < 0 || l->slot >= BACKENDS_SUP_MAX_CHILDREN)
		return;
	pthread_mutex_lock(&b->mu);
	c = &b->child[l->slot];
	if (c->gen == l->gen)
		c->last_used = backends_sup_now_ms();
	pthread_mutex_unlock(&b->mu);
}

void backends_report_dead(struct backends *b, const struct backends_lease *l)
{
	struct backends_sup_child *c;

	if (l->slot < 0 || l->slot >= BACKENDS_SUP_MAX_CHILDREN)
		return;
	/* a child that still answers /health was only busy (a full listen
	 * backlog under load): it must not be killed */
	if (backends_http_status(l->port, "/health", 1000) == 200)
		return;
	pthread_mutex_lock(&b->mu);
	c = &b->child[l->slot];
	if (c->gen == l->gen && c->state == BACKENDS_SUP_READY && c->proc.pid > 0) {
		backends_sup_log(b, "llama-server for %s is unreachable; restarting it",
			c->model);
		kill(-c->proc.pid, SIGKILL);
		c->state = BACKENDS_SUP_STOPPING;
		backends_sup_wake(b);
	}
	pthread_mutex_unlock(&b->mu);
}

int backends_load(struct backends *b, const char *model,
		  struct backends_lease *lease, struct lemon_err *err)
{
	return backends_acquire(b, model, BACKENDS_CHAT, lease, err);
}

int backends_unload(struct backends *b, const char *model,
		    struct lemon_err *err)
{
	int found = 0, r;

	if (!backends_model_name_valid(model))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "invalid model name '%.64s'", model);
	pthread_mutex_lock(&b->mu);
	for (r = BACKENDS_CHAT; r <= BACKENDS_EMBED; r++) {
		struct backends_sup_child *c = find_child(b, model, r, false);

		if (c == NULL)
			continue;
		found++;
		if (c->proc.pid > 0) {
			kill(-c->proc.pid, SIGTERM);
			c->unload = true;
			c->state = BACKENDS_SUP_STOPPING;
		} else {
			c->state = BACKENDS_SUP_UNUSED;
		}
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

static void add_children(struct backends *b, cJSON *arr)
{
	int i;

	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		struct backends_sup_child *c = &b->child[i];
		cJSON *o;

		if (c->state == BACKENDS_SUP_UNUSED)
			continue;
		o = cJSON_CreateObject();
		if (o == NULL)
			continue;
		cJSON_AddStringToObject(o, "model", c->model);
		cJSON_AddStringToObject(o, "role", c->role == BACKENDS_EMBED ?
							   "embeddings" : "chat");
		cJSON_AddStringToObject(o, "state", state_name(c->state));
		cJSON_AddStringToObject(o, "backend", b->o.cand[c->cand].kind);
		if (c->state == BACKENDS_SUP_READY || c->state == BACKENDS_SUP_STARTING) {
			cJSON_AddNumberToObject(o, "pid", c->proc.pid);
			cJSON_AddNumberToObject(o, "port", c->port);
		}
		if (c->state == BACKENDS_SUP_READY)
			cJSON_AddNumberToObject(o, "idle_s",
						(double)((backends_sup_now_ms() - c->last_used) / 1000));
		if (c->n_gpu_layers >= 0 && c->state == BACKENDS_SUP_READY)
			cJSON_AddNumberToObject(o, "n_gpu_layers", c->n_gpu_layers);
		if (c->state == BACKENDS_SUP_FAILED)
			cJSON_AddStringToObject(o, "error", c->reason);
		cJSON_AddItemToArray(arr, o);
	}
}

static void add_history(struct backends *b, cJSON *arr)
{
	int i;

	for (i = 0; i < b->n_hist; i++) {
		struct backends_sup_fallback *h = &b->hist[i];
		cJSON *o = cJSON_CreateObject();

		if (o == NULL)
			continue;
		cJSON_AddNumberToObject(o, "time", (double)h->when);
		if (h->model[0])
			cJSON_AddStringToObject(o, "model", h->model);
		else
			cJSON_AddNullToObject(o, "model");
		cJSON_AddStringToObject(o, "from", h->from);
		if (h->to[0])
			cJSON_AddStringToObject(o, "to", h->to);
		else
			cJSON_AddNullToObject(o, "to");
		cJSON_AddStringToObject(o, "reason", h->reason);
		cJSON_AddItemToArray(arr, o);
	}
}

char *backends_health_json(struct backends *b)
{
	cJSON *root = cJSON_CreateObject(), *loaded, *fb, *cands;
	char *s = NULL;
	int i;

	if (root == NULL)
		return NULL;
	pthread_mutex_lock(&b->mu);
	loaded = cJSON_AddArrayToObject(root, "loaded");
	fb = cJSON_AddArrayToObject(root, "fallbacks");
	cands = cJSON_AddArrayToObject(root, "candidates");
	if (loaded && fb && cands) {
		cJSON_AddNumberToObject(root, "max_loaded", b->o.max_loaded);
		cJSON_AddNumberToObject(root, "idle_timeout", b->o.idle_timeout_s);
		cJSON_AddNumberToObject(root, "parallel", b->o.parallel);
		add_children(b, loaded);
		add_history(b, fb);
		for (i = 0; i < b->o.n_candidates; i++) {
			cJSON *o = cJSON_CreateObject();

			if (o == NULL)
				continue;
			cJSON_AddStringToObject(o, "backend", b->o.cand[i].kind);
			cJSON_AddStringToObject(o, "exe", b->o.cand[i].exe);
			cJSON_AddBoolToObject(o, "failed", b->cand_failed[i]);
			cJSON_AddItemToArray(cands, o);
		}
		s = cJSON_PrintUnformatted(root);
	}
	pthread_mutex_unlock(&b->mu);
	cJSON_Delete(root);
	return s;
}

void backends_free(struct backends *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&b->mu);
	b->stop = true;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	backends_sup_wake(b);
	if (b->thread_started)
		pthread_join(b->thread, NULL);
	backends_sup_stop_all(b);
	close(b->wake[0]);
	close(b->wake[1]);
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}
