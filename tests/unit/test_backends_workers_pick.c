/* backends/workers_pick.c: which workers a placement across `lemon
 * worker`s takes, and which idle models holding workers are unloaded for
 * it: the fewest, least recently used first (an evicted model's next
 * request pays a full reload over RPC) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backends/backends-private.h"
#include "util/str.h"

#define GIB (1ull << 30)

static struct backends_worker_slot w_free(uint64_t bytes)
{
	struct backends_worker_slot s = { .up = true,
					  .free_bytes = bytes,
					  .holder = -1 };

	return s;
}

static struct backends_worker_slot w_held(uint64_t bytes, int holder, bool idle,
					  int64_t last_used)
{
	struct backends_worker_slot s = { .up = true,
					  .free_bytes = bytes,
					  .holder = holder,
					  .idle = idle,
					  .last_used = last_used };

	return s;
}

static void assert_ints(const int *got, int n_got, const int *want, int n_want)
{
	int i;

	assert_int_equal(n_got, n_want);
	for (i = 0; i < n_want; i++)
		assert_int_equal(got[i], want[i]);
}

/* A held by idle X, B by idle Y, C free; the model fits on A + C: only X
 * is unloaded (before: X and Y, and Y's next request reloaded it) */
static void test_fewest_evicted(void **state)
{
	struct backends_worker_slot s[3] = { w_held(4 * GIB, 0, true, 100),
					     w_held(4 * GIB, 1, true, 200),
					     w_free(4 * GIB) };
	struct backends_worker_choice ch;

	(void)state;
	backends_workers_choose(s, 3, 7 * GIB, 0, &ch);
	assert_ints(ch.w, ch.n, (int[]){ 0, 2 }, 2);
	assert_ints(ch.evict, ch.n_evict, (int[]){ 0 }, 1);
	assert_true(ch.total == 8 * GIB);
}

/* the least recently used holder goes first: here Y (B) */
static void test_lru_first(void **state)
{
	struct backends_worker_slot s[3] = { w_held(4 * GIB, 0, true, 300),
					     w_held(4 * GIB, 1, true, 200),
					     w_free(4 * GIB) };
	struct backends_worker_choice ch;

	(void)state;
	backends_workers_choose(s, 3, 7 * GIB, 0, &ch);
	assert_ints(ch.w, ch.n, (int[]){ 1, 2 }, 2);
	assert_ints(ch.evict, ch.n_evict, (int[]){ 1 }, 1);
	/* the head's own memory counts: with 1 GiB here, C alone is enough */
	backends_workers_choose(s, 3, 5 * GIB, 1 * GIB, &ch);
	assert_ints(ch.w, ch.n, (int[]){ 2 }, 1);
	assert_int_equal(ch.n_evict, 0);
}

/* one holder at a time until it fits: both, the older first; a holder of
 * two workers frees both */
static void test_as_many_as_needed(void **state)
{
	struct backends_worker_slot s[4] = { w_held(4 * GIB, 3, true, 500),
					     w_held(4 * GIB, 5, true, 400),
					     w_free(4 * GIB),
					     w_held(4 * GIB, 3, true, 500) };
	struct backends_worker_choice ch;

	(void)state;
	backends_workers_choose(s, 4, 7 * GIB, 0, &ch);
	assert_ints(ch.w, ch.n, (int[]){ 1, 2 }, 2);
	assert_ints(ch.evict, ch.n_evict, (int[]){ 5 }, 1);
	backends_workers_choose(s, 4, 9 * GIB, 0, &ch);
	assert_ints(ch.w, ch.n, (int[]){ 0, 1, 2, 3 }, 4);
	assert_ints(ch.evict, ch.n_evict, (int[]){ 5, 3 }, 2);
	assert_true(ch.total == 16 * GIB);
}

/* a holder with requests in flight is never taken; an unreachable worker
 * is never used; nothing is unloaded when the free workers suffice */
static void test_busy_and_down(void **state)
{
	struct backends_worker_slot s[4] = { w_held(8 * GIB, 0, false, 1),
					     w_held(4 * GIB, 1, true, 200),
					     w_free(4 * GIB),
					     w_free(64 * GIB) };
	struct backends_worker_choice ch;

	(void)state;
	s[3].up = false;
	backends_workers_choose(s, 4, 3 * GIB, 0, &ch);
	assert_ints(ch.w, ch.n, (int[]){ 2 }, 1);
	assert_int_equal(ch.n_evict, 0);
	backends_workers_choose(s, 4, 7 * GIB, 0, &ch);
	assert_ints(ch.w, ch.n, (int[]){ 1, 2 }, 2);
	assert_ints(ch.evict, ch.n_evict, (int[]){ 1 }, 1);
	/* too large even with every idle holder's: the caller refuses it */
	backends_workers_choose(s, 4, 12 * GIB, 0, &ch);
	assert_true(ch.total == 8 * GIB);
	assert_ints(ch.w, ch.n, (int[]){ 1, 2 }, 2);
}

/* a child placed on 8 workers with long IPv6 addresses holds all 8: its
 * --rpc list (8 x 46 characters here) is longer than the placement text
 * shows, and a worker missed would get a second child, which hangs in its
 * load (an rpc-server serves one client at a time) */
static void test_holder_of_long_list(void **state)
{
	struct backends *b = calloc(1, sizeof(*b));
	struct backends_gguf_info m = { 0 };
	struct backends_placement *pl = calloc(1, sizeof(*pl));
	struct backends_place_in *in = calloc(1, sizeof(*in));
	struct backends_spawn sp = { 0 };
	struct backends_worker_choice ch;
	struct backends_sup_child *c;
	struct lemon_err err = { 0 };
	char busy[240];
	int i;

	(void)state;
	assert_non_null(b);
	assert_non_null(pl);
	assert_non_null(in);
	pthread_mutex_init(&b->mu, NULL);
	pthread_mutex_init(&b->qmu, NULL);
	pthread_cond_init(&b->qcv, NULL);
	b->o.n_workers = BACKENDS_MAX_WORKERS;
	for (i = 0; i < BACKENDS_MAX_WORKERS; i++) {
		snprintf(b->o.workers[i].host, sizeof(b->o.workers[i].host),
			 "fd00:1234:5678:9abc:def0:1234:5678:9a%02d", i);
		b->o.workers[i].port = 50052;
		b->o.workers[i].api_port = 50053;
		b->wstate[i].checked = true;
		memcpy(b->wstate[i].info.backend, "cuda", 5);
		b->wstate[i].info.free_bytes = 1 * GIB;
	}
	m.tensor_bytes = 4 * GIB;
	m.block_count = 32;
	m.context_length = 4096;
	m.embedding_length = 4096;
	m.head_count = 32;
	m.head_count_kv = 8;
	assert_int_equal(backends_rpc_plan(b, &m, "big", 16 << 20,
					   BACKENDS_PLACE_FOR_PLAN, &pl->rp,
					   &err),
			 0);
	assert_int_equal(pl->rp.n_workers, BACKENDS_MAX_WORKERS);
	lemon_str_copy(pl->text, sizeof(pl->text), pl->rp.placement);
	c = &b->child[2];
	memcpy(c->model, "big", 4);
	backends_place_apply(b, c, in, pl, &sp);
	c->proc.pid = 1; /* running (no process is signalled here) */
	c->state = BACKENDS_SUP_READY;
	c->leases = 1;
	for (i = 0; i < BACKENDS_MAX_WORKERS; i++)
		if (backends_workers_holder(b, i) != c)
			fail_msg("worker %d (%s) not seen as held", i,
				 b->o.workers[i].host);
	/* so a second model gets none of them: every one is busy */
	backends_workers_pick(b, BACKENDS_PLACE_FOR_START, 2 * GIB, 0, &ch,
			      busy, sizeof(busy));
	assert_int_equal(ch.n, 0);
	assert_int_equal(ch.n_evict, 0);
	/* exited: free again */
	c->proc.pid = 0;
	for (i = 0; i < BACKENDS_MAX_WORKERS; i++)
		assert_null(backends_workers_holder(b, i));
	free(in);
	free(pl);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fewest_evicted),
		cmocka_unit_test(test_lru_first),
		cmocka_unit_test(test_as_many_as_needed),
		cmocka_unit_test(test_busy_and_down),
		cmocka_unit_test(test_holder_of_long_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
