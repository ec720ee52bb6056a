/* condition variables whose timed waits run on CLOCK_MONOTONIC: a
 * pthread_cond_t made with a NULL attribute measures its timeout on
 * CLOCK_REALTIME, so a wall clock stepped back (NTP, an admin, a VM
 * resumed) would hold a "wait up to 200 ms" for as long as the step; and
 * a deadline taken from one clock and waited on the other is off by
 * decades. Every cond that lemon waits on with a timeout is made by
 * lemon_cond_init and waited on by lemon_cond_wait_ms. */
#ifndef LEMON_UTIL_COND_H
#define LEMON_UTIL_COND_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* the attribute lemon's conds are made with (the clock set to
 * CLOCK_MONOTONIC); 0, or the pthread error */
int lemon_condattr_init(pthread_condattr_t *a);

/* pthread_cond_init with that attribute; 0, or the pthread error */
int lemon_cond_init(pthread_cond_t *cv);

/* now + ms on CLOCK_MONOTONIC, as an absolute time for a timed wait */
void lemon_cond_deadline(struct timespec *ts, int64_t ms);

/* waits on cv (made by lemon_cond_init; mu held) until signalled or the
 * deadline (of lemon_cond_deadline); pthread_cond_timedwait's result */
int lemon_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
			  const struct timespec *deadline);

/* waits on cv (made by lemon_cond_init; mu held) until signalled or ms
 * have passed on CLOCK_MONOTONIC; pthread_cond_timedwait's result */
int lemon_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms);

#endif
