/* Unit tests of provision/state.c and the name/plan logic of
 * provision/resolve.c that needs no network: installed.json round trip,
 * malformed files refused with the exact code, backend names, the install
 * directory, and the refusal to install without a known checksum. */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "provision/provision-private.h"
#include "util/fs.h"
#include "util/str.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/lemon-state-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	assert_int_equal(lemon_rm_tree(dir, NULL), 0);
	return 0;
}

static void write_text(const char *name, const char *text)
{
	char p[128];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_round_trip(void **state)
{
	struct provision_installed in[2], out[4];
	struct lemon_err err = { 0 };
	char exe[256];
	int n = -1;

	(void)state;
	assert_int_equal(provision_state_read(dir, out, 4, &n, &err), 0);
	assert_int_equal(n, 0); /* no file: nothing installed */
	memset(in, 0, sizeof(in));
	lemon_str_copy(in[0].name, sizeof(in[0].name), "llamacpp:cpu");
	lemon_str_copy(in[0].kind, sizeof(in[0].kind), "cpu");
	lemon_str_copy(in[0].version, sizeof(in[0].version), "b1");
	lemon_str_copy(in[0].asset, sizeof(in[0].asset), "llama-b1-bin-ubuntu-x64.tar.gz");
	lemon_str_copy(in[0].sha256, sizeof(in[0].sha256), "ab");
	snprintf(in[0].dir, sizeof(in[0].dir), "%s/llamacpp-cpu-b1", dir);
	assert_true(snprintf(in[0].exe, sizeof(in[0].exe), "%s/llama-b1/llama-server",
			     in[0].dir) < (int)sizeof(in[0].exe));
	in[0].installed_at = 1700000000;
	in[1] = in[0];
	lemon_str_copy(in[1].name, sizeof(in[1].name), "llamacpp:rocm:gfx110X");
	lemon_str_copy(in[1].kind, sizeof(in[1].kind), "rocm");
	lemon_str_copy(in[1].family, sizeof(in[1].family), "gfx110X");
	in[1].sha256[0] = 0; /* installed with --insecure-skip-verify */
	snprintf(in[1].dir, sizeof(in[1].dir), "%s/llamacpp-rocm-gfx110X-b1", dir);
	assert_true(snprintf(in[1].exe, sizeof(in[1].exe), "%s/llama-server",
			     in[1].dir) < (int)sizeof(in[1].exe));
	assert_int_equal(provision_state_write(dir, in, 2, &err), 0);

	/* make the first one's executable real, leave the second missing */
	snprintf(exe, sizeof(exe), "%s/llamacpp-cpu-b1/llama-b1", dir);
	assert_int_equal(provision_mkdirs(exe, &err), 0);
	write_text("llamacpp-cpu-b1/llama-b1/llama-server", "#!/bin/sh\n");
	assert_int_equal(chmod(in[0].exe, 0755), 0);

	assert_int_equal(provision_state_read(dir, out, 4, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(out[0].exe, in[0].exe);
	assert_string_equal(out[0].sha256, "ab");
	assert_true(out[0].works);
	assert_string_equal(out[1].family, "gfx110X");
	assert_string_equal(out[1].sha256, "");
	assert_false(out[1].works);
	assert_string_equal(out[1].problem, "No such file or directory");
	assert_int_equal(out[0].installed_at, 1700000000);

	/* cap smaller than the list */
	assert_int_equal(provision_state_read(dir, out, 1, &n, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
}

static void test_malformed(void **state)
{
	struct provision_installed out[4];
	struct lemon_err err = { 0 };
	int n;

	(void)state;
	write_text("installed.json", "{\"schema\":1,");
	assert_int_equal(provision_state_read(dir, out, 4, &n, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	/* an entry pointing outside the backends directory */
	write_text("installed.json", "{\"backends\":[{\"name\":\"llamacpp:cpu\","
		   "\"kind\":\"cpu\",\"version\":\"b1\",\"asset\":\"a\",\"dir\":\"../etc\","
		   "\"exe\":\"x\",\"installed_at\":1}]}");
	assert_int_equal(provision_state_read(dir, out, 4, &n, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "malformed entry"));
	lemon_err_clear(&err);
	write_text("installed.json", "{\"backends\":[{\"name\":\"llamacpp:cpu\","
		   "\"kind\":\"cpu\",\"version\":\"b1\",\"asset\":\"a\",\"dir\":\"d\","
		   "\"exe\":\"../../x\",\"installed_at\":1}]}");
	assert_int_equal(provision_state_read(dir, out, 4, &n, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
}

static void test_names_and_plan(void **state)
{
	struct compat_backends *bm;
	const struct compat_backend_asset *a;
	struct provision_opts o = { 0 };
	struct lemon_err err = { 0 };
	struct provision_plan p;
	bool needs = false, unavailable = false;
	char out[256];

	(void)state;
	assert_int_equal(compat_backends_load(LEMON_DATADIR, &bm, &err), 0);
	assert_int_equal(provision_find(bm, "llamacpp:rocm:gfx1101", &a, &needs, &err), 0);
	assert_string_equal(a->name, "llamacpp:rocm:gfx110X");
	assert_int_equal(provision_find(bm, "llamacpp:rocm", &a, &needs, &err), 0);
	assert_true(needs);
	assert_null(a);
	assert_int_equal(provision_find(bm, "ollama:cpu", &a, &needs, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, "unknown backend name 'ollama:cpu'"));
	lemon_err_clear(&err);
	assert_int_equal(provision_find(bm, "llamacpp:rocm:gfx1103x", &a, &needs, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	lemon_err_clear(&err);

	/* no mirror and no pinned digest: refused before any download */
	assert_int_equal(provision_find(bm, "llamacpp:cpu", &a, &needs, &err), 0);
	unsetenv("LEMON_MIRROR");
	setenv("LEMON_GITHUB_API", "none", 1); /* no publisher lookup here */
	assert_int_equal(provision_plan_make(a, &o, &p, &unavailable, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_CHECKSUM);
	assert_true(unavailable);
	assert_non_null(strstr(err.msg, "--insecure-skip-verify"));
	lemon_err_clear(&err);
	o.insecure_skip_verify = true;
	o.version = "b42";
	assert_int_equal(provision_plan_make(a, &o, &p, &unavailable, &err), 0);
	assert_string_equal(p.dirname, "llamacpp-cpu-b42");
	assert_string_equal(p.url, "https://github.com/ggml-org/llama.cpp/releases/"
			    "download/b42/llama-b42-bin-ubuntu-x64.tar.gz");
	assert_string_equal(p.sha256, "");

	setenv("XDG_DATA_HOME", "/x/data", 1);
	assert_int_equal(provision_backends_dir(NULL, out, sizeof(out), &err), 0);
	assert_string_equal(out, "/x/data/lemon/backends");
	setenv("XDG_DATA_HOME", "relative", 1); /* ignored, as the spec says */
	setenv("HOME", "/home/u", 1);
	assert_int_equal(provision_backends_dir(NULL, out, sizeof(out), &err), 0);
	assert_string_equal(out, "/home/u/.local/share/lemon/backends");
	assert_int_equal(provision_backends_dir("/d", out, sizeof(out), &err), 0);
	assert_string_equal(out, "/d/backends");
	assert_int_equal(provision_backends_dir("/d", out, 4, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
	compat_backends_free(bm);
}

static void test_atomic_write(void **state)
{
	struct lemon_err err = { 0 };
	char p[128], buf[16] = "";
	FILE *f;

	(void)state;
	assert_int_equal(lemon_write_atomic(dir, "a.json", "new", 3, &err), 0);
	snprintf(p, sizeof(p), "%s/a.json", dir);
	f = fopen(p, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "new");
	assert_int_equal(lemon_write_atomic("/nonexistent-lemon", "a", "x", 1, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
}

/* names in dir starting with prefix: how many, the last in out */
static int count_prefixed(const char *d, const char *prefix, char *out, size_t cap)
{
	DIR *dd = opendir(d);
	struct dirent *de;
	int k = 0;

	assert_non_null(dd);
	while ((de = readdir(dd)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
			snprintf(out, cap, "%s/%s", d, de->d_name);
			k++;
		}
	closedir(dd);
	return k;
}

/* a corrupt installed.json once stopped every install (and with it
 * `lemon serve`): it is reported, read as empty and, under the install
 * lock, moved aside with its bytes kept */
static void test_corrupt_moved_aside(void **state)
{
	struct provision_installed out[4];
	struct lemon_err err = { 0 };
	char path[128], aside[512], sub[128], buf[64];
	struct stat st;
	FILE *f;
	int n = -1;

	(void)state;
	snprintf(path, sizeof(path), "%s/installed.json", dir);
	write_text("installed.json", "{\"backends\":[{\"name\":");
	/* without the lock: reported, read as empty, left where it is */
	assert_int_equal(provision_state_load(dir, false, out, 4, &n, &err), 0);
	assert_int_equal(err.code, LEMON_OK);
	assert_int_equal(n, 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(count_prefixed(dir, "installed.json.corrupt-", aside, sizeof(aside)), 0);
	/* with the lock: moved aside, bytes kept */
	n = -1;
	assert_int_equal(provision_state_load(dir, true, out, 4, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(count_prefixed(dir, "installed.json.corrupt-", aside, sizeof(aside)), 1);
	f = fopen(aside, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "{\"backends\":[{\"name\":");
	/* a second corrupt file in the same second does not replace the first */
	write_text("installed.json", "[]");
	assert_int_equal(provision_state_load(dir, true, out, 4, &n, &err), 0);
	assert_int_equal(count_prefixed(dir, "installed.json.corrupt-", aside, sizeof(aside)), 2);
	/* an entry that fails the checks is corruption too */
	write_text("installed.json", "{\"backends\":[{\"name\":\"llamacpp:cpu\","
		   "\"kind\":\"cpu\",\"version\":\"b1\",\"asset\":\"a\",\"dir\":\"../etc\","
		   "\"exe\":\"x\",\"installed_at\":1}]}");
	assert_int_equal(provision_state_load(dir, true, out, 4, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(count_prefixed(dir, "installed.json.corrupt-", aside, sizeof(aside)), 3);
	/* the strict reader still refuses it, with its code */
	write_text("installed.json", "{");
	assert_int_equal(provision_state_read(dir, out, 4, &n, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	/* provision_list, as lemon serve and lemon backends call it: no error */
	snprintf(sub, sizeof(sub), "%s/backends", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(path, sizeof(path), "%s/backends/installed.json", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("\x01\x02garbage", f);
	fclose(f);
	n = -1;
	assert_int_equal(provision_list(dir, out, 4, &n, &err), 0);
	assert_int_equal(err.code, LEMON_OK);
	assert_int_equal(n, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_round_trip), T(test_malformed), T(test_names_and_plan),
		T(test_atomic_write), T(test_corrupt_moved_aside),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
