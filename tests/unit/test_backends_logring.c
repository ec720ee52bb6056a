/* backends/logq.c: the log history GET /api/v1/logs reads
 * (backends_log_read): bytes come back in order from where the reader
 * left off, a reader that fell behind the 64 KiB kept resumes at the
 * oldest byte kept, and a line larger than the history keeps its tail */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backends/backends-private.h"

static struct backends *fresh(void)
{
	struct backends *b = calloc(1, sizeof(*b));

	assert_non_null(b);
	pthread_mutex_init(&b->qmu, NULL);
	pthread_cond_init(&b->qcv, NULL);
	return b;
}

static void test_in_order(void **state)
{
	struct backends *b = fresh();
	uint64_t pos = 0;
	char out[64];

	(void)state;
	assert_int_equal(backends_log_read(b, &pos, out, sizeof(out)), 0);
	backends_sup_emit(b, "one\n", 4);
	backends_sup_emit(b, "two\n", 4);
	assert_int_equal(backends_log_read(b, &pos, out, 5), 5);
	assert_memory_equal(out, "one\nt", 5);
	assert_int_equal(backends_log_read(b, &pos, out, sizeof(out)), 3);
	assert_memory_equal(out, "wo\n", 3);
	assert_int_equal(pos, 8);
	assert_int_equal(backends_log_read(b, &pos, out, sizeof(out)), 0);
	free(b);
}

static void test_fell_behind(void **state)
{
	struct backends *b = fresh();
	size_t cap = sizeof(b->logring), total = 0, got = 0, n;
	char line[1000], *out = malloc(cap + 1);
	uint64_t pos = 0;
	int i;

	(void)state;
	assert_non_null(out);
	/* numbered 999-byte lines, more than the history holds */
	for (i = 0; total < cap + 5000; i++) {
		memset(line, 'a' + i % 26, sizeof(line));
		line[sizeof(line) - 1] = '\n';
		backends_sup_emit(b, line, sizeof(line));
		b->logq_len = 0; /* no writer thread here: the queue is drained */
		total += sizeof(line);
	}
	while ((n = backends_log_read(b, &pos, out + got, cap + 1 - got)) > 0)
		got += n;
	assert_int_equal(got, cap);
	assert_int_equal(pos, total);
	/* the newest byte is the last line's newline, the one before it the
	 * last line's letter */
	assert_int_equal(out[cap - 1], '\n');
	assert_int_equal(out[cap - 2], 'a' + (i - 1) % 26);
	free(out);
	free(b);
}

static void test_huge_line(void **state)
{
	struct backends *b = fresh();
	size_t cap = sizeof(b->logring), n;
	char *big = malloc(cap + 100), *out = malloc(cap);
	uint64_t pos = 0;

	(void)state;
	assert_non_null(big);
	assert_non_null(out);
	memset(big, 'x', cap + 100);
	big[cap + 99] = '\n';
	big[100] = 'y'; /* the first byte kept */
	b->logq_len = sizeof(b->logq); /* a full queue: dropped there, kept here */
	backends_sup_emit(b, big, cap + 100);
	n = backends_log_read(b, &pos, out, cap);
	assert_int_equal(n, cap);
	assert_int_equal(out[0], 'y');
	assert_int_equal(out[cap - 1], '\n');
	assert_int_equal(pos, cap + 100);
	free(big);
	free(out);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_fell_behind),
		cmocka_unit_test(test_huge_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
