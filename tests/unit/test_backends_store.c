/* backends/store.c and the import of backends/models.c: the layout of a
 * name, the per-name lock (a second locker and a delete are BUSY, the lock
 * file is never removed), the whole-GGUF check (a file shorter than its
 * tensors names both sizes), publication of exactly the verified
 * descriptor (a staged file deleted or replaced after verification is
 * never published), split publication, and the import's refusals (FIFO,
 * directory, truncated file) with their exact codes */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/backends-private.h"
#include "backends/store-private.h"

static char root[64];
static char models[128];

/* fault injection: before Linux 6.10 the kernel refuses
 * linkat(AT_EMPTY_PATH) to unprivileged callers (EPERM); with refuse_flink
 * set, this definition (which the store's calls resolve to) answers the
 * same, so the store's checked-rename fallback runs */
static bool refuse_flink;

int linkat(int olddirfd, const char *oldpath, int newdirfd,
	   const char *newpath, int flags)
{
	if (refuse_flink && (flags & AT_EMPTY_PATH)) {
		errno = EPERM;
		return -1;
	}
	return (int)syscall(SYS_linkat, olddirfd, oldpath, newdirfd, newpath,
			    flags);
}

/* likewise copy_file_range across file systems (EXDEV, and ENOSYS before
 * Linux 4.5): the import's pread/pwrite copy runs */
static bool refuse_cfr;

ssize_t copy_file_range(int in, loff_t *off_in, int out, loff_t *off_out,
			size_t len, unsigned int flags)
{
	if (refuse_cfr) {
		errno = EXDEV;
		return -1;
	}
	return syscall(SYS_copy_file_range, in, off_in, out, off_out, len, flags);
}

/* a GGUF of one F32 tensor of 8 elements: 64 bytes of header (already a
 * multiple of the alignment) and 32 of data; fill marks the data */
#define GGUF_SIZE 96
static void gguf(unsigned char *b, unsigned char fill)
{
	static const unsigned char head[] = {
		'G', 'G', 'U', 'F', 3, 0, 0, 0,
		1, 0, 0, 0, 0, 0, 0, 0, /* tensors */
		0, 0, 0, 0, 0, 0, 0, 0, /* keys */
		8, 0, 0, 0, 0, 0, 0, 0, 't', '.', 'w', 'e', 'i', 'g', 'h', 't',
		1, 0, 0, 0,             /* dimensions */
		8, 0, 0, 0, 0, 0, 0, 0, /* 8 elements */
		0, 0, 0, 0,             /* F32 */
		0, 0, 0, 0, 0, 0, 0, 0, /* offset */
	};

	memcpy(b, head, sizeof(head));
	memset(b + sizeof(head), fill, GGUF_SIZE - sizeof(head));
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/lemon-store-XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(models, sizeof(models), "%s/models", root);
	return 0;
}

static int teardown(void **state)
{
	char cmd[160];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_layout(void **state)
{
	struct backends_store_paths p;
	struct lemon_err err = { 0 };
	char want[256];

	(void)state;
	assert_int_equal(backends_store_paths(root, "x-rf", &p, &err), 0);
	snprintf(want, sizeof(want), "%s/x-rf.gguf", models);
	assert_string_equal(p.file, want);
	snprintf(want, sizeof(want), "%s/x-rf", models);
	assert_string_equal(p.dir, want);
	snprintf(want, sizeof(want), "%s/.pull-x-rf", models);
	assert_string_equal(p.staging, want);
	snprintf(want, sizeof(want), "%s/.pull-x-rf.lock", models);
	assert_string_equal(p.lock, want);
	snprintf(want, sizeof(want), "%s/.pull-x-rf.new", models);
	assert_string_equal(p.next, want);
	/* a name that reads as an option is no name */
	assert_int_equal(backends_store_paths(root, "-rf", &p, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "not starting with '-'"));
	lemon_err_clear(&err);
	assert_int_equal(backends_store_paths(root, "../x", &p, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	lemon_err_clear(&err);
	assert_int_equal(backends_store_paths(root, ".pull-x", &p, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
}

/* a pull holding the lock: a second pull, an import and a delete are BUSY,
 * and nothing is removed; the lock file outlives every holder */
static void test_lock(void **state)
{
	struct backends_store_paths p;
	struct lemon_err err = { 0 };
	unsigned char g[GGUF_SIZE];
	char src[256];
	int fd, fd2;

	(void)state;
	assert_int_equal(backends_store_paths(root, "m", &p, &err), 0);
	assert_int_equal(backends_store_lock(&p, &fd, &err), 0);
	assert_int_equal(backends_store_lock(&p, &fd2, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_BUSY);
	assert_non_null(strstr(err.msg, "a pull of 'm' is already running"));
	lemon_err_clear(&err);

	gguf(g, 1);
	write_file(p.file, g, sizeof(g));
	snprintf(src, sizeof(src), "%s/src.gguf", root);
	write_file(src, g, sizeof(g));
	assert_int_equal(backends_pull_file(root, src, "m", NULL, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_BUSY);
	lemon_err_clear(&err);
	assert_int_equal(backends_delete_model(root, "m", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_BUSY);
	assert_non_null(strstr(err.msg, "removing 'm': a pull of 'm'"));
	lemon_err_clear(&err);
	assert_true(exists(p.file));

	backends_store_unlock(fd);
	assert_int_equal(backends_delete_model(root, "m", &err), 0);
	assert_false(exists(p.file));
	assert_true(exists(p.lock)); /* never unlinked: lockers cannot split */
	assert_int_equal(backends_store_lock(&p, &fd, &err), 0);
	backends_store_unlock(fd);
	/* nothing left: NOT_FOUND, and no lock file for an unknown name */
	assert_int_equal(backends_delete_model(root, "m", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	lemon_err_clear(&err);
	assert_int_equal(backends_delete_model(root, "never", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	snprintf(src, sizeof(src), "%s/.pull-never.lock", models);
	assert_false(exists(src));
}

static void test_check(void **state)
{
	struct backends_gguf_info info;
	struct lemon_err err = { 0 };
	unsigned char g[GGUF_SIZE];
	char path[256];
	int fd;

	(void)state;
	gguf(g, 2);
	snprintf(path, sizeof(path), "%s/c.gguf", root);
	write_file(path, g, sizeof(g));
	fd = open(path, O_RDONLY);
	assert_int_equal(backends_store_check(fd, "c", &info, &err), 0);
	assert_int_equal(info.n_tensors, 1);
	close(fd);
	write_file(path, g, sizeof(g) - 1);
	fd = open(path, O_RDONLY);
	assert_int_equal(backends_store_check(fd, "c", &info, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_string_equal(err.msg,
			    "c: truncated gguf: its tensors need 96 bytes, the file has 95");
	close(fd);
	lemon_err_clear(&err);
	write_file(path, "", 0);
	fd = open(path, O_RDONLY);
	assert_int_equal(backends_store_check(fd, "c", NULL, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	close(fd);
	unlink(path);
}

/* a staged file opened, verified, then deleted or replaced by path: the
 * verified descriptor is never published, and nothing else is either */
static void test_publish_exact_fd(void **state)
{
	struct backends_store_paths p;
	struct lemon_err err = { 0 };
	unsigned char g[GGUF_SIZE], h[GGUF_SIZE];
	struct stat a, b;
	char staged[BACKENDS_STORE_PATH_MAX];
	int lock, fd;

	(void)state;
	assert_int_equal(backends_store_paths(root, "pub", &p, &err), 0);
	assert_int_equal(backends_store_lock(&p, &lock, &err), 0);
	gguf(g, 3);
	gguf(h, 4);

	/* deleted after verification (what `rm` once did): refused */
	assert_int_equal(backends_store_open_part(&p, "pub.gguf", &fd, staged,
						  sizeof(staged), &err), 0);
	assert_int_equal(write(fd, g, sizeof(g)), (ssize_t)sizeof(g));
	assert_int_equal(backends_store_check(fd, staged, NULL, &err), 0);
	assert_int_equal(unlink(staged), 0);
	assert_int_equal(backends_store_publish_file(&p, fd, staged, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_IO);
	assert_false(exists(p.file));
	close(fd);
	lemon_err_clear(&err);

	/* replaced by another file of the same path (a second pull's .part):
	 * what is published is the verified inode, never the other file */
	assert_int_equal(backends_store_open_part(&p, "pub.gguf", &fd, staged,
						  sizeof(staged), &err), 0);
	assert_int_equal(write(fd, g, sizeof(g)), (ssize_t)sizeof(g));
	assert_int_equal(backends_store_check(fd, staged, NULL, &err), 0);
	assert_int_equal(unlink(staged), 0);
	write_file(staged, h, sizeof(h) / 2);
	assert_int_equal(backends_store_publish_file(&p, fd, staged, &err), -1);
	assert_false(exists(p.file));
	close(fd);
	lemon_err_clear(&err);
	assert_int_equal(backends_store_discard(&p, &err), 0);

	/* left alone: published as the same inode, staging gone */
	assert_int_equal(backends_store_open_part(&p, "pub.gguf", &fd, staged,
						  sizeof(staged), &err), 0);
	assert_int_equal(write(fd, g, sizeof(g)), (ssize_t)sizeof(g));
	assert_int_equal(backends_store_check(fd, staged, NULL, &err), 0);
	assert_int_equal(backends_store_publish_file(&p, fd, staged, &err), 0);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(stat(p.file, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(b.st_size, GGUF_SIZE);
	assert_false(exists(p.staging));
	assert_false(exists(p.next));
	close(fd);
	backends_store_unlock(lock);
	assert_int_equal(backends_delete_model(root, "pub", &err), 0);
}

/* the same without linkat of a descriptor: the staged path is renamed
 * only while it still names the verified inode */
static void test_publish_fallback(void **state)
{
	struct backends_store_paths p;
	struct lemon_err err = { 0 };
	unsigned char g[GGUF_SIZE], h[GGUF_SIZE];
	char staged[BACKENDS_STORE_PATH_MAX];
	struct stat a, b;
	int lock, fd;

	(void)state;
	refuse_flink = true;
	assert_int_equal(backends_store_paths(root, "fb", &p, &err), 0);
	assert_int_equal(backends_store_lock(&p, &lock, &err), 0);
	gguf(g, 7);
	gguf(h, 8);
	assert_int_equal(backends_store_open_part(&p, "fb.gguf", &fd, staged,
						  sizeof(staged), &err), 0);
	assert_int_equal(write(fd, g, sizeof(g)), (ssize_t)sizeof(g));
	assert_int_equal(unlink(staged), 0);
	write_file(staged, h, sizeof(h));
	assert_int_equal(backends_store_publish_file(&p, fd, staged, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_IO);
	assert_non_null(strstr(err.msg, "replaced after it was verified"));
	assert_false(exists(p.file));
	close(fd);
	lemon_err_clear(&err);
	assert_int_equal(backends_store_discard(&p, &err), 0);

	assert_int_equal(backends_store_open_part(&p, "fb.gguf", &fd, staged,
						  sizeof(staged), &err), 0);
	assert_int_equal(write(fd, g, sizeof(g)), (ssize_t)sizeof(g));
	assert_int_equal(backends_store_publish_file(&p, fd, staged, &err), 0);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(stat(p.file, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_false(exists(p.staging));
	close(fd);
	backends_store_unlock(lock);
	refuse_flink = false;
	assert_int_equal(backends_delete_model(root, "fb", &err), 0);
}

/* a split set replaces an older split set and a single file of its name */
static void test_publish_split(void **state)
{
	struct backends_store_paths p;
	struct lemon_err err = { 0 };
	static const char *const names[] = { "s-00001-of-00002.gguf",
					     "s-00002-of-00002.gguf" };
	char staged[2][BACKENDS_STORE_PATH_MAX], path[BACKENDS_STORE_PATH_MAX + 64];
	const char *sp[2] = { staged[0], staged[1] };
	unsigned char g[GGUF_SIZE];
	int lock, fds[2], round, i;
	char first[512];
	uint64_t total;

	(void)state;
	assert_int_equal(backends_store_paths(root, "sp", &p, &err), 0);
	gguf(g, 5);
	write_file(p.file, g, sizeof(g));
	for (round = 0; round < 2; round++) {
		assert_int_equal(backends_store_lock(&p, &lock, &err), 0);
		for (i = 0; i < 2; i++) {
			assert_int_equal(backends_store_open_part(&p, names[i], &fds[i],
								  staged[i],
								  sizeof(staged[i]), &err),
					 0);
			assert_int_equal(write(fds[i], g, sizeof(g)), (ssize_t)sizeof(g));
		}
		assert_int_equal(backends_store_publish_split(&p, 2, fds, sp, names,
							      &err), 0);
		for (i = 0; i < 2; i++)
			close(fds[i]);
		/* the replaced split tree (the second round's) is left aside
		 * for the sweep, after the pair lock is let go */
		assert_int_equal(exists(p.next), round == 1);
		assert_int_equal(backends_store_sweep(&p, &err), 0);
		backends_store_unlock(lock);
		assert_false(exists(p.file));
		assert_false(exists(p.staging));
		assert_false(exists(p.next));
		assert_int_equal(backends_split_first(p.dir, first, sizeof(first),
						      &total), 0);
		assert_int_equal(total, 2 * GGUF_SIZE);
		snprintf(path, sizeof(path), "%s/%s", p.dir, names[0]);
		assert_string_equal(first, path);
	}
	assert_int_equal(backends_model_path(root, "sp", first, sizeof(first), &err), 0);
	assert_string_equal(first, path);
	/* the start deadline's size: both parts, not the first alone */
	assert_int_equal(backends_model_file_bytes(first), 2 * GGUF_SIZE);
	snprintf(path, sizeof(path), "%s/%s", p.dir, names[1]);
	assert_int_equal(backends_model_file_bytes(path), GGUF_SIZE);
	assert_int_equal(backends_model_file_bytes(p.dir), 0);
	assert_int_equal(backends_delete_model(root, "sp", &err), 0);
	assert_false(exists(p.dir));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* import: non-regular sources are refused at once (a FIFO without a writer
 * would block an open for ever), a truncated copy is not published */
static void test_import_refusals(void **state)
{
	struct backends_store_paths p;
	struct lemon_err err = { 0 };
	unsigned char g[GGUF_SIZE];
	char path[256];
	double t0;

	(void)state;
	assert_int_equal(backends_store_paths(root, "imp", &p, &err), 0);
	snprintf(path, sizeof(path), "%s/fifo", root);
	assert_int_equal(mkfifo(path, 0644), 0);
	t0 = now_s();
	assert_int_equal(backends_pull_file(root, path, "imp", NULL, &err), -1);
	assert_true(now_s() - t0 < 2.0);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "not a regular file"));
	lemon_err_clear(&err);
	unlink(path);
	assert_int_equal(backends_pull_file(root, root, "imp", NULL, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	lemon_err_clear(&err);

	gguf(g, 6);
	snprintf(path, sizeof(path), "%s/short.gguf", root);
	write_file(path, g, sizeof(g) - 10);
	assert_int_equal(backends_pull_file(root, path, "imp", NULL, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "its tensors need 96 bytes, the file has 86"));
	assert_false(exists(p.file));
	assert_false(exists(p.import));
	lemon_err_clear(&err);

	write_file(path, g, sizeof(g));
	assert_int_equal(backends_pull_file(root, path, "imp", NULL, &err), 0);
	assert_true(exists(p.file));
	assert_false(exists(p.import));
	assert_int_equal(backends_delete_model(root, "imp", &err), 0);
	unlink(path);
}

/* a sparse source (a header and 1 GiB of hole) is imported whole and
 * stays sparse: the copy keeps holes instead of writing zeros, with
 * copy_file_range and with the pread/pwrite fallback */
static void test_import_sparse(void **state)
{
	struct backends_store_paths p;
	struct lemon_err err = { 0 };
	unsigned char g[GGUF_SIZE];
	const off_t size = 64 + (1ll << 30);
	struct stat st;
	char path[256];
	int fd;

	(void)state;
	gguf(g, 0);
	g[44] = 0; /* 2^28 F32 elements: 1 GiB of tensor data */
	g[47] = 0x10;
	snprintf(path, sizeof(path), "%s/sparse.gguf", root);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, g, 64), 64);
	assert_int_equal(ftruncate(fd, size - 1), 0);
	close(fd);
	assert_int_equal(backends_pull_file(root, path, "sparse", NULL, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "its tensors need 1073741888 bytes"));
	lemon_err_clear(&err);
	assert_int_equal(truncate(path, size), 0);
	assert_int_equal(backends_store_paths(root, "sparse", &p, &err), 0);
	for (refuse_cfr = false;; refuse_cfr = true) {
		unsigned char back[64];

		assert_int_equal(backends_pull_file(root, path, "sparse", NULL, &err), 0);
		assert_int_equal(stat(p.file, &st), 0);
		assert_int_equal(st.st_size, size);
		assert_true(st.st_blocks * 512 < (1 << 20));
		fd = open(p.file, O_RDONLY);
		assert_int_equal(read(fd, back, sizeof(back)), (ssize_t)sizeof(back));
		assert_memory_equal(back, g, sizeof(back));
		close(fd);
		assert_int_equal(backends_delete_model(root, "sparse", &err), 0);
		if (refuse_cfr)
			break;
	}
	refuse_cfr = false;
	unlink(path);
}

/* a delete removes an unfinished pull too, under the lock */
static void test_delete_staging(void **state)
{
	struct backends_store_paths p;
	struct lemon_err err = { 0 };
	char staged[BACKENDS_STORE_PATH_MAX];
	int lock, fd;

	(void)state;
	assert_int_equal(backends_store_paths(root, "half", &p, &err), 0);
	assert_int_equal(backends_store_lock(&p, &lock, &err), 0);
	assert_int_equal(backends_store_open_part(&p, "half.gguf", &fd, staged,
						  sizeof(staged), &err), 0);
	close(fd);
	backends_store_unlock(lock);
	assert_int_equal(backends_delete_model(root, "half", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_false(exists(p.staging));
}

/* an entry an older lemon stored under a name starting with '-' is
 * removed by name (`lemon rm -- -rf`); nothing is created for one absent,
 * and a name that was never valid stays refused */
static void test_delete_legacy_dash(void **state)
{
	struct lemon_err err = { 0 };
	char path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/-rf.gguf", models);
	write_file(path, "legacy", 6);
	assert_int_equal(backends_delete_model(root, "-rf", &err), 0);
	assert_false(exists(path));
	assert_int_equal(backends_delete_model(root, "-rf", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	lemon_err_clear(&err);
	assert_int_equal(backends_delete_model(root, "-..", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	lemon_err_clear(&err);
	assert_int_equal(backends_delete_model(root, "-a/b", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_lock),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_publish_exact_fd),
		cmocka_unit_test(test_publish_fallback),
		cmocka_unit_test(test_publish_split),
		cmocka_unit_test(test_import_refusals),
		cmocka_unit_test(test_import_sparse),
		cmocka_unit_test(test_delete_staging),
		cmocka_unit_test(test_delete_legacy_dash),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
