/* Unit tests of provision/unpack.c through provision_unpack_file: real
 * tar.gz and zip archives written with libarchive, good ones unpacked with
 * links intact, crafted ones (zip-slip, absolute paths, symlink and
 * hardlink escapes, device files, FIFOs, size bombs) refused with the exact
 * error code and nothing written outside the target. */
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

#include <archive.h>
#include <archive_entry.h>

#include "provision/provision.h"

struct ent {
	const char *name;
	char type;          /* 'f' file, 'd' dir, 'l' symlink, 'h' hardlink,
			     * 'c' char device, 'p' FIFO */
	const char *data;   /* file content, or link target */
	size_t size;        /* file size when data is NULL (zero bytes) */
};

struct fx {
	char tmp[64];
	char dest[128];
	char arc[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->tmp, sizeof(f->tmp), "/tmp/lemon-unpack-XXXXXX");
	assert_non_null(mkdtemp(f->tmp));
	snprintf(f->dest, sizeof(f->dest), "%s/a/b/dest", f->tmp);
	snprintf(f->arc, sizeof(f->arc), "%s/bundle", f->tmp);
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "mkdir -p %s", f->dest);
		assert_int_equal(system(cmd), 0);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->tmp);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void write_archive(const char *path, bool zip, const struct ent *e,
			  int n)
{
	struct archive *a = archive_write_new();
	struct archive_entry *ae;
	static char zeros[65536];
	size_t left, chunk;
	int i;

	if (zip) {
		assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
	} else {
		assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	}
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (i = 0; i < n; i++) {
		ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].name);
		archive_entry_set_perm(ae, e[i].type == 'd' ? 0755 : 0644);
		switch (e[i].type) {
		case 'f':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_size(ae, e[i].data ? (la_int64_t)strlen(e[i].data) :
					       (la_int64_t)e[i].size);
			break;
		case 'd':
			archive_entry_set_filetype(ae, AE_IFDIR);
			break;
		case 'l':
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink(ae, e[i].data);
			break;
		case 'h':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].data);
			break;
		case 'c':
			archive_entry_set_filetype(ae, AE_IFCHR);
			archive_entry_set_rdev(ae, (dev_t)0x0103);
			break;
		case 'p':
			archive_entry_set_filetype(ae, AE_IFIFO);
			break;
		}
		assert_true(archive_write_header(a, ae) >= ARCHIVE_WARN);
		if (e[i].type == 'f' && e[i].data) {
			archive_write_data(a, e[i].data, strlen(e[i].data));
		} else if (e[i].type == 'f') {
			for (left = e[i].size; left > 0; left -= chunk) {
				chunk = left < sizeof(zeros) ? left : sizeof(zeros);
				archive_write_data(a, zeros, chunk);
			}
		}
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

static bool exists(const char *dir, const char *rel)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return lstat(p, &st) == 0;
}

static void expect_refused(struct fx *f, bool zip, const struct ent *e, int n,
			   enum lemon_err_code code, const char *words)
{
	struct lemon_err err = { 0 };

	write_archive(f->arc, zip, e, n);
	assert_int_equal(provision_unpack_file(f->arc, f->dest, 0, &err), -1);
	assert_int_equal(err.code, code);
	assert_non_null(strstr(err.msg, words));
	/* nothing escaped: the target's parents hold only what setup made */
	assert_false(exists(f->tmp, "evil"));
	assert_false(exists(f->tmp, "a/evil"));
	assert_false(exists(f->tmp, "a/b/evil"));
}

static void test_good_tar(void **state)
{
	struct fx *f = *state;
	const struct ent e[] = {
		{ "./", 'd', NULL, 0 },
		{ "./llama-b1/", 'd', NULL, 0 },
		{ "./llama-b1/libx.so.1.2", 'f', "elf", 0 },
		{ "./llama-b1/libx.so.1", 'l', "libx.so.1.2", 0 },
		{ "./llama-b1/libx.so", 'l', "libx.so.1", 0 },
		{ "./llama-b1/up", 'l', "../llama-b1/libx.so", 0 },
		{ "./llama-b1/copy", 'h', "llama-b1/libx.so.1.2", 0 },
		{ "./llama-b1/llama-server", 'f', "#!/bin/sh\n", 0 },
	};
	struct lemon_err err = { 0 };
	char p[512], buf[16] = "";
	struct stat st;
	FILE *fp;

	write_archive(f->arc, false, e, 8);
	assert_int_equal(provision_unpack_file(f->arc, f->dest, 0, &err), 0);
	snprintf(p, sizeof(p), "%s/llama-b1/libx.so", f->dest);
	fp = fopen(p, "r");
	assert_non_null(fp);
	assert_non_null(fgets(buf, sizeof(buf), fp));
	fclose(fp);
	assert_string_equal(buf, "elf");
	snprintf(p, sizeof(p), "%s/llama-b1/copy", f->dest);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	snprintf(p, sizeof(p), "%s/llama-b1/libx.so.1", f->dest);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
}

static void test_good_zip(void **state)
{
	struct fx *f = *state;
	const struct ent e[] = {
		{ "llama-server", 'f', "bin", 0 },
		{ "rocblas/library/k.dat", 'f', "k", 0 },
		{ "libamdhip64.so", 'l', "libamdhip64.so.7", 0 },
		{ "libamdhip64.so.7", 'f', "so", 0 },
	};
	struct lemon_err err = { 0 };

	write_archive(f->arc, true, e, 4);
	assert_int_equal(provision_unpack_file(f->arc, f->dest, 0, &err), 0);
	assert_true(exists(f->dest, "rocblas/library/k.dat"));
	assert_true(exists(f->dest, "llama-server"));
}

static void test_zip_slip(void **state)
{
	const struct ent e[] = { { "ok", 'f', "x", 0 }, { "../evil", 'f', "x", 0 } };

	expect_refused(*state, true, e, 2, LEMON_ERR_INVALID_DATA, "'..' refused");
}

static void test_tar_dotdot_inside_path(void **state)
{
	const struct ent e[] = { { "x/../../../evil", 'f', "x", 0 } };

	expect_refused(*state, false, e, 1, LEMON_ERR_INVALID_DATA, "'..' refused");
}

static void test_absolute_path(void **state)
{
	struct fx *f = *state;
	char abs[256];
	const struct ent e[] = { { abs, 'f', "x", 0 } };

	snprintf(abs, sizeof(abs), "%s/evil", f->tmp);
	expect_refused(f, false, e, 1, LEMON_ERR_INVALID_DATA, "absolute path");
}

static void test_symlink_escape(void **state)
{
	const struct ent e[] = { { "lib", 'l', "../../evil", 0 } };

	expect_refused(*state, false, e, 1, LEMON_ERR_INVALID_DATA,
		       "points outside the bundle");
}

static void test_symlink_absolute(void **state)
{
	const struct ent e[] = { { "etc", 'l', "/etc", 0 } };

	expect_refused(*state, true, e, 1, LEMON_ERR_INVALID_DATA,
		       "points outside the bundle");
}

static void test_symlink_dotdot_after_name(void **state)
{
	/* d -> . is inside, but d/../.. from the root climbs out */
	const struct ent e[] = { { "d", 'l', ".", 0 }, { "l", 'l', "d/../..", 0 } };

	expect_refused(*state, false, e, 2, LEMON_ERR_INVALID_DATA,
		       "points outside the bundle");
}

static void test_write_through_symlink(void **state)
{
	/* an inside link, then a file "through" it: never followed */
	const struct ent e[] = { { "sub", 'd', NULL, 0 }, { "sub/up", 'l', "..", 0 },
				 { "sub/up/sub/x", 'f', "x", 0 } };

	expect_refused(*state, false, e, 3, LEMON_ERR_INVALID_DATA,
		       "goes through a symlink");
}

static void test_hardlink_escape(void **state)
{
	const struct ent e[] = { { "h", 'h', "../../../evil", 0 } };

	expect_refused(*state, false, e, 1, LEMON_ERR_INVALID_DATA, "'..' refused");
}

static void test_hardlink_absolute(void **state)
{
	const struct ent e[] = { { "passwd", 'h', "/etc/passwd", 0 } };

	expect_refused(*state, false, e, 1, LEMON_ERR_INVALID_DATA, "absolute path");
}

static void test_hardlink_to_symlink(void **state)
{
	const struct ent e[] = { { "l", 'l', "x", 0 }, { "h", 'h', "l", 0 } };

	expect_refused(*state, false, e, 2, LEMON_ERR_INVALID_DATA,
		       "not a file unpacked before it");
}

static void test_device_file(void **state)
{
	const struct ent e[] = { { "mem", 'c', NULL, 0 } };

	expect_refused(*state, false, e, 1, LEMON_ERR_INVALID_DATA, "device file");
}

static void test_fifo(void **state)
{
	const struct ent e[] = { { "pipe", 'p', NULL, 0 } };

	expect_refused(*state, false, e, 1, LEMON_ERR_INVALID_DATA, "FIFO");
}

static void test_size_limit(void **state)
{
	struct fx *f = *state;
	const struct ent e[] = { { "a", 'f', NULL, 600000 }, { "b", 'f', NULL, 600000 } };
	struct lemon_err err = { 0 };

	write_archive(f->arc, false, e, 2);
	assert_int_equal(provision_unpack_file(f->arc, f->dest, 1000000, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
	lemon_err_clear(&err);
	assert_int_equal(provision_unpack_file(f->arc, f->dest, 2000000, &err), 0);
}

static void test_bad_inputs(void **state)
{
	struct fx *f = *state;
	struct lemon_err err = { 0 };
	FILE *fp;
	int i;

	assert_int_equal(provision_unpack_file("/nonexistent/x.tar.gz", f->dest, 0,
					       &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	lemon_err_clear(&err);

	fp = fopen(f->arc, "w");
	assert_non_null(fp);
	for (i = 0; i < 4096; i++)
		fputc((i * 7919) & 0xff, fp);
	fclose(fp);
	assert_int_equal(provision_unpack_file(f->arc, f->dest, 0, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);

	write_archive(f->arc, false, NULL, 0);
	assert_int_equal(provision_unpack_file(f->arc, f->dest, 0, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "no entries"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_good_tar), T(test_good_zip), T(test_zip_slip),
		T(test_tar_dotdot_inside_path), T(test_absolute_path),
		T(test_symlink_escape), T(test_symlink_absolute),
		T(test_symlink_dotdot_after_name), T(test_write_through_symlink),
		T(test_hardlink_escape), T(test_hardlink_absolute),
		T(test_hardlink_to_symlink), T(test_device_file), T(test_fifo),
		T(test_size_limit), T(test_bad_inputs),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
