/* util/lazylib.c: the first use of a lazily loaded library from several
 * threads at once loads it once and gives every thread the same handle.
 * Before pthread_once, a thread that came second while the first was
 * still inside dlopen saw "tried" set and no handle yet, and failed with
 * NOT_FOUND and an empty message. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "util/lazylib.h"

#define THREADS 8

/* a large library this test binary does not link, so dlopen takes long
 * enough (relocations) for the other threads to arrive; the later names
 * keep the test meaningful where LLVM is not installed */
static const char *const heavy[] = { "libLLVM-15.so.1", "libLLVM-14.so.1",
				     "libicui18n.so.72", "libgtk-x11-2.0.so.0",
				     "libgomp.so.1", "libm.so.6", NULL };
static struct lemon_lazylib heavy_lib = LEMON_LAZYLIB_INIT(heavy, "test");

static const char *const missing[] = { "liblemon-does-not-exist.so.1", NULL };
static struct lemon_lazylib missing_lib = LEMON_LAZYLIB_INIT(missing, "lemon-test");

struct arg {
	pthread_barrier_t *start;
	struct lemon_lazylib *lib;
	int rc;
	struct lemon_err err;
	void *handle;
};

static void *opener(void *p)
{
	struct arg *a = p;

	pthread_barrier_wait(a->start);
	a->rc = lemon_lazylib_open(a->lib, &a->err);
	a->handle = a->lib->handle;
	return NULL;
}

static void open_from_threads(struct lemon_lazylib *lib, struct arg *args)
{
	pthread_barrier_t start;
	pthread_t t[THREADS];
	int i;

	pthread_barrier_init(&start, NULL, THREADS);
	for (i = 0; i < THREADS; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].start = &start;
		args[i].lib = lib;
		assert_int_equal(pthread_create(&t[i], NULL, opener, &args[i]), 0);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
}

static void test_first_use_from_threads(void **state)
{
	struct arg args[THREADS];
	int i;

	(void)state;
	open_from_threads(&heavy_lib, args);
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(args[i].rc, 0);
		assert_int_equal(args[i].err.code, LEMON_OK);
		assert_non_null(args[i].handle);
		assert_ptr_equal(args[i].handle, args[0].handle);
	}
	assert_int_equal(heavy_lib.loads, 1);
	/* later uses neither load again nor change the handle */
	assert_int_equal(lemon_lazylib_open(&heavy_lib, NULL), 0);
	assert_ptr_equal(heavy_lib.handle, args[0].handle);
	assert_int_equal(heavy_lib.loads, 1);
}

static void test_missing_from_threads(void **state)
{
	struct arg args[THREADS];
	int i;

	(void)state;
	open_from_threads(&missing_lib, args);
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(args[i].rc, -1);
		assert_int_equal(args[i].err.code, LEMON_ERR_NOT_FOUND);
		/* every thread gets the whole message, not an empty one */
		assert_non_null(strstr(args[i].err.msg,
				       "cannot load liblemon-does-not-exist.so.1"));
		assert_non_null(strstr(args[i].err.msg, "lemon-test package"));
	}
	assert_int_equal(missing_lib.loads, 1);
	assert_null(lemon_lazylib_sym(&missing_lib, "anything"));
	assert_int_equal(missing_lib.loads, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_use_from_threads),
		cmocka_unit_test(test_missing_from_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
