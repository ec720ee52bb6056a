/* monotonic timed waits on condition variables (util/cond.h) */
#include "util/cond.h"

int lemon_condattr_init(pthread_condattr_t *a)
{
	int rc = pthread_condattr_init(a);

	if (rc != 0)
		return rc;
	rc = pthread_condattr_setclock(a, CLOCK_MONOTONIC);
	if (rc != 0)
		pthread_condattr_destroy(a);
	return rc;
}

int lemon_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	int rc = lemon_condattr_init(&a);

	if (rc != 0)
		return rc;
	rc = pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
	return rc;
}

void lemon_cond_deadline(struct timespec *ts, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int lemon_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
			  const struct timespec *deadline)
{
	return pthread_cond_timedwait(cv, mu, deadline);
}

int lemon_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
	struct timespec ts;

	lemon_cond_deadline(&ts, ms);
	return pthread_cond_timedwait(cv, mu, &ts);
}
