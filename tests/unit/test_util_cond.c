/* util/cond.c: lemon's conds wait on CLOCK_MONOTONIC, so a wall clock
 * stepped back cannot stall a timed wait (the workers' refresher, the
 * supervisor's waiters, the events queue, the drain of connections) */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "util/cond.h"

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* the attribute the conds are made with names CLOCK_MONOTONIC */
static void test_attr_clock(void **state)
{
	pthread_condattr_t a;
	clockid_t clk = CLOCK_REALTIME;

	(void)state;
	assert_int_equal(lemon_condattr_init(&a), 0);
	assert_int_equal(pthread_condattr_getclock(&a, &clk), 0);
	assert_int_equal(clk, CLOCK_MONOTONIC);
	pthread_condattr_destroy(&a);
}

/* a timed wait lasts its timeout: the cond's clock and the deadline's
 * agree (a cond on CLOCK_REALTIME read a monotonic deadline as a time in
 * 1970 and returned at once; a realtime deadline on it stalls when the
 * wall clock is stepped back) */
static void test_wait_lasts(void **state)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv;
	int64_t t0, took;

	(void)state;
	assert_int_equal(lemon_cond_init(&cv), 0);
	pthread_mutex_lock(&mu);
	t0 = mono_ms();
	assert_int_equal(lemon_cond_wait_ms(&cv, &mu, 150), ETIMEDOUT);
	took = mono_ms() - t0;
	pthread_mutex_unlock(&mu);
	if (took < 140 || took > 5000)
		fail_msg("a 150 ms wait took %lld ms", (long long)took);
	pthread_cond_destroy(&cv);
}

struct sig {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int go;
};

static void *signaller(void *arg)
{
	struct sig *s = arg;

	pthread_mutex_lock(&s->mu);
	s->go = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* and a signal ends it early */
static void test_signal_wakes(void **state)
{
	struct sig s = { .mu = PTHREAD_MUTEX_INITIALIZER };
	pthread_t t;
	int64_t t0;

	(void)state;
	assert_int_equal(lemon_cond_init(&s.cv), 0);
	pthread_mutex_lock(&s.mu);
	assert_int_equal(pthread_create(&t, NULL, signaller, &s), 0);
	t0 = mono_ms();
	while (!s.go && mono_ms() - t0 < 10000)
		lemon_cond_wait_ms(&s.cv, &s.mu, 20000);
	pthread_mutex_unlock(&s.mu);
	pthread_join(t, NULL);
	assert_int_equal(s.go, 1);
	assert_true(mono_ms() - t0 < 10000);
	pthread_cond_destroy(&s.cv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attr_clock),
		cmocka_unit_test(test_wait_lasts),
		cmocka_unit_test(test_signal_wakes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
