/* which workers a placement across `lemon worker`s uses: the reachable
 * ones no child holds, and when they are not enough those held by idle
 * children, which are then unloaded first (an rpc-server serves one
 * client at a time). The choice itself is a pure function over what each
 * worker has free and who holds it (backends_workers_choose), so that it
 * is tested without a network; backends_workers_pick feeds it from the
 * supervisor's state. */
#include <stdio.h>
#include <string.h>

#include "backends/backends-private.h"

struct backends_sup_child *backends_workers_holder(struct backends *b, int wi)
{
	int i;

	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		struct backends_sup_child *c = &b->child[i];

		if (c->proc.pid > 0 && (c->workers & 1u << wi))
			return c;
	}
	return NULL;
}

/* the idle holder used least recently not yet in out->evict; -1: none */
static int next_idle(const struct backends_worker_slot *s, int n,
		     const struct backends_worker_choice *out)
{
	int i, k, best = -1;

	for (i = 0; i < n; i++) {
		if (!s[i].up || s[i].holder < 0 || !s[i].idle)
			continue;
		for (k = 0; k < out->n_evict && out->evict[k] != s[i].holder;
		     k++)
			;
		if (k < out->n_evict)
			continue;
		if (best < 0 || s[i].last_used < s[best].last_used ||
		    (s[i].last_used == s[best].last_used &&
		     s[i].holder < s[best].holder))
			best = i;
	}
	return best;
}

void backends_workers_choose(const struct backends_worker_slot *s, int n,
			     uint64_t need, uint64_t local,
			     struct backends_worker_choice *out)
{
	bool use[BACKENDS_MAX_WORKERS] = { false };
	int i, h;

	memset(out, 0, sizeof(*out));
	if (n > BACKENDS_MAX_WORKERS)
		n = BACKENDS_MAX_WORKERS;
	for (i = 0; i < n; i++)
		if (s[i].up && s[i].holder < 0) {
			use[i] = true;
			out->total += s[i].free_bytes;
		}
	/* the free workers are not enough: the idle holders' workers, one
	 * holder at a time, least recently used first, until the model fits
	 * (each one unloaded reloads over RPC at its next request) */
	while (need > out->total + local && (h = next_idle(s, n, out)) >= 0) {
		out->evict[out->n_evict++] = s[h].holder;
		for (i = 0; i < n; i++)
			if (s[i].up && s[i].holder == s[h].holder) {
				use[i] = true;
				out->total += s[i].free_bytes;
			}
	}
	for (i = 0; i < n; i++)
		if (use[i])
			out->w[out->n++] = i;
}

void backends_workers_pick(struct backends *b, enum backends_place_mode mode,
			   uint64_t need, uint64_t local,
			   struct backends_worker_choice *out, char *busy,
			   size_t cap)
{
	struct backends_worker_slot s[BACKENDS_MAX_WORKERS];
	struct backends_sup_child *h;
	size_t pos = 0;
	int i, k;

	memset(s, 0, sizeof(s));
	for (i = 0; i < b->o.n_workers; i++) {
		s[i].holder = -1;
		s[i].up = b->wstate[i].checked && !b->wstate[i].info.error[0];
		s[i].free_bytes = b->wstate[i].info.free_bytes;
		/* the plans route counts every reachable worker as free */
		h = mode == BACKENDS_PLACE_FOR_PLAN
			    ? NULL
			    : backends_workers_holder(b, i);
		if (h == NULL)
			continue;
		s[i].holder = (int)(h - b->child);
		/* as the local LRU unloads an idle model for memory */
		s[i].idle = mode == BACKENDS_PLACE_FOR_START &&
			    h->state == BACKENDS_SUP_READY && h->leases == 0 &&
			    !h->unload;
		s[i].last_used = h->last_used;
	}
	backends_workers_choose(s, b->o.n_workers, need, local, out);
	/* the workers held by children that stay, for the message */
	busy[0] = 0;
	for (i = 0; i < b->o.n_workers && pos < cap; i++) {
		if (!s[i].up || s[i].holder < 0)
			continue;
		for (k = 0; k < out->n && out->w[k] != i; k++)
			;
		if (k < out->n)
			continue;
		pos += (size_t)snprintf(
			busy + pos, cap - pos, "%s%s:%d by '%.40s'",
			pos ? ", " : "", b->o.workers[i].host,
			b->o.workers[i].port, b->child[s[i].holder].model);
	}
}
