/* Unit tests of provision/versions.c's bookkeeping: which versions of a
 * backend installed.json keeps when another is installed (the current one
 * kept for rollback, the kept one before it dropped, a reinstall in place
 * changing nothing else), and that the "previous" mark survives a write
 * and a read of installed.json. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "provision/provision-private.h"
#include "util/fs.h"
#include "util/str.h"

static void entry(struct provision_installed *e, const char *name,
		  const char *version, bool previous)
{
	memset(e, 0, sizeof(*e));
	lemon_str_copy(e->name, sizeof(e->name), name);
	lemon_str_copy(e->kind, sizeof(e->kind), "cpu");
	lemon_str_copy(e->version, sizeof(e->version), version);
	lemon_str_copy(e->asset, sizeof(e->asset), "a.tar.gz");
	snprintf(e->dir, sizeof(e->dir), "/b/%s-%s", name, version);
	snprintf(e->exe, sizeof(e->exe), "/b/%s-%s/llama-server", name, version);
	e->previous = previous;
}

static int shift(struct provision_installed *l, int n, const char *name,
		 const char *final, char *old, char *prev, char *removed)
{
	return provision_versions_shift(l, n, name, final, old, 4096, prev, 32,
					removed, 32);
}

static void test_shift(void **state)
{
	struct provision_installed l[4];
	char old[4096], prev[32], removed[32];
	int k;

	(void)state;
	/* first install: nothing kept, nothing dropped */
	entry(&l[0], "vk", "b1", false);
	k = shift(l, 1, "cpu", "/b/cpu-b1", old, prev, removed);
	assert_int_equal(k, 1);
	assert_string_equal(old, "");
	assert_string_equal(prev, "");

	/* an update: the current one is kept */
	entry(&l[0], "cpu", "b1", false);
	entry(&l[1], "vk", "b1", false);
	k = shift(l, 2, "cpu", "/b/cpu-b2", old, prev, removed);
	assert_int_equal(k, 2);
	assert_string_equal(l[0].version, "b1");
	assert_true(l[0].previous);
	assert_false(l[1].previous); /* another backend is untouched */
	assert_string_equal(prev, "b1");
	assert_string_equal(old, "");

	/* a third version: the kept one goes, the current one is kept */
	entry(&l[0], "cpu", "b1", true);
	entry(&l[1], "cpu", "b2", false);
	k = shift(l, 2, "cpu", "/b/cpu-b3", old, prev, removed);
	assert_int_equal(k, 1);
	assert_string_equal(l[0].version, "b2");
	assert_true(l[0].previous);
	assert_string_equal(old, "/b/cpu-b1");
	assert_string_equal(removed, "b1");
	assert_string_equal(prev, "b2");

	/* the same version again (in place): the kept one stays */
	entry(&l[0], "cpu", "b1", true);
	entry(&l[1], "cpu", "b2", false);
	k = shift(l, 2, "cpu", "/b/cpu-b2", old, prev, removed);
	assert_int_equal(k, 1);
	assert_string_equal(l[0].version, "b1");
	assert_true(l[0].previous);
	assert_string_equal(old, "");
	assert_string_equal(removed, "");

	/* the kept version installed again: it becomes current (replacing
	 * its entry), the current one is kept, nothing is deleted */
	entry(&l[0], "cpu", "b1", true);
	entry(&l[1], "cpu", "b2", false);
	k = shift(l, 2, "cpu", "/b/cpu-b1", old, prev, removed);
	assert_int_equal(k, 1);
	assert_string_equal(l[0].version, "b2");
	assert_true(l[0].previous);
	assert_string_equal(old, "");
}

static void test_previous_round_trip(void **state)
{
	static const char bad[] =
		"{\"backends\":[{\"name\":\"cpu\",\"kind\":\"cpu\",\"version\":\"b1\","
		"\"asset\":\"a\",\"dir\":\"d\",\"exe\":\"x\",\"installed_at\":1,"
		"\"previous\":1}]}";
	struct provision_installed in[2], out[4];
	struct lemon_err err = { 0 };
	char dir[] = "/tmp/lemon-versions-XXXXXX";
	int n = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	entry(&in[0], "cpu", "b1", true);
	entry(&in[1], "cpu", "b2", false);
	snprintf(in[0].dir, sizeof(in[0].dir), "%s/cpu-b1", dir);
	snprintf(in[0].exe, sizeof(in[0].exe), "%s/cpu-b1/llama-server", dir);
	snprintf(in[1].dir, sizeof(in[1].dir), "%s/cpu-b2", dir);
	snprintf(in[1].exe, sizeof(in[1].exe), "%s/cpu-b2/llama-server", dir);
	assert_int_equal(provision_state_write(dir, in, 2, &err), 0);
	assert_int_equal(provision_state_read(dir, out, 4, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_true(out[0].previous);
	assert_false(out[1].previous);
	/* "previous" must be a JSON boolean */
	assert_int_equal(lemon_write_atomic(dir, "installed.json", bad, strlen(bad),
					    &err), 0);
	assert_int_equal(provision_state_read(dir, out, 4, &n, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_int_equal(lemon_rm_tree(dir, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shift),
		cmocka_unit_test(test_previous_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
