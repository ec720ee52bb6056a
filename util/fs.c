/* file-system helpers shared by the provisioner, the model store and the
 * compat loaders (see util/fs.h for what each promises) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/fs.h"
#include "util/str.h"

/* mkdir reports EACCES before EEXIST, so an existing directory under a
 * read-only parent is recognised by stat, not by the mkdir error */
static int mkdir_one(const char *path)
{
	struct stat st;
	int e;

	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	e = errno;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return e;
}

int lemon_mkdirs(const char *dir, char *failed, size_t failed_cap)
{
	char buf[4096];
	size_t i;
	int e;

	if (!lemon_str_copy(buf, sizeof(buf), dir)) {
		lemon_str_copy(failed, failed_cap, dir);
		return ENAMETOOLONG;
	}
	for (i = 1; buf[i]; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = 0;
		e = mkdir_one(buf);
		if (e != 0) {
			lemon_str_copy(failed, failed_cap, buf);
			return e;
		}
		buf[i] = '/';
	}
	e = mkdir_one(buf);
	if (e != 0)
		lemon_str_copy(failed, failed_cap, buf);
	return e;
}

/* ---- tree removal ------------------------------------------------------ */

/* deep enough for any tree lemon writes, shallow enough that one open
 * descriptor per level cannot exhaust the process's limit */
#define RM_MAX_DEPTH 128

struct rm_walk {
	char path[4096]; /* the entry being removed, for messages */
	size_t len;
	struct lemon_err *err;
};

static int rm_at(struct rm_walk *w, int dfd, const char *name, int depth);

/* removes every entry of the directory open at fd (closes fd) */
static int rm_children(struct rm_walk *w, int fd, int depth)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	size_t keep = w->len;
	int rc = 0, n;

	if (d == NULL) {
		close(fd);
		return lemon_err_errno_path(w->err, errno, "reading", w->path);
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		n = snprintf(w->path + keep, sizeof(w->path) - keep, "/%s",
			     de->d_name);
		w->len = n > 0 && keep + (size_t)n < sizeof(w->path) ?
				 keep + (size_t)n : sizeof(w->path) - 1;
		rc = rm_at(w, dirfd(d), de->d_name, depth + 1);
		w->path[keep] = '\0';
		w->len = keep;
	}
	closedir(d);
	return rc;
}

/* unlinkat removes files and symlinks (the link, not its target); a
 * directory refuses with EISDIR (EPERM on some systems) and is emptied
 * through a descriptor opened with O_NOFOLLOW, then removed */
static int rm_at(struct rm_walk *w, int dfd, const char *name, int depth)
{
	int fd, e;

	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	e = errno;
	if (e != EISDIR && e != EPERM)
		return lemon_err_errno_path(w->err, e, "removing", w->path);
	if (depth >= RM_MAX_DEPTH)
		return lemon_err_set(w->err, LEMON_ERR_TOO_LARGE,
				     "removing %s: deeper than %d levels",
				     w->path, RM_MAX_DEPTH);
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		/* not a directory after all: unlinkat's own refusal stands */
		if (errno == ENOTDIR || errno == ELOOP)
			return lemon_err_errno_path(w->err, e, "removing", w->path);
		return lemon_err_errno_path(w->err, errno, "opening", w->path);
	}
	if (rm_children(w, fd, depth) < 0)
		return -1;
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return lemon_err_errno_path(w->err, errno, "removing", w->path);
	return 0;
}

int lemon_rm_tree(const char *path, struct lemon_err *err)
{
	struct rm_walk w;

	w.err = err;
	lemon_str_copy(w.path, sizeof(w.path), path);
	w.len = strlen(w.path);
	return rm_at(&w, AT_FDCWD, path, 0);
}

/* ---- durability -------------------------------------------------------- */

int lemon_fsync_dir(const char *dir, struct lemon_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return lemon_err_errno_path(err, errno, "opening", dir);
	if (fsync(fd) < 0 && errno != EINVAL) {
		lemon_err_errno_path(err, errno, "syncing", dir);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* pass 1 starts write-back of every file at once (the device sees the
 * whole batch); pass 2 waits for each, and for the directories */
static int start_one(const char *path, const struct stat *st, int flag,
		     struct FTW *ftw)
{
	int fd;

	(void)st;
	(void)ftw;
	if (flag != FTW_F)
		return 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		close(fd);
	}
	return 0;
}

static int sync_one(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	int fd, rc;

	(void)st;
	(void)ftw;
	if (flag != FTW_F && flag != FTW_D && flag != FTW_DP)
		return 0; /* symlinks live in their directory's blocks */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int lemon_sync_tree(const char *dir, struct lemon_err *err)
{
	nftw(dir, start_one, 32, FTW_PHYS);
	if (nftw(dir, sync_one, 32, FTW_PHYS | FTW_DEPTH) != 0)
		return lemon_err_errno_path(err, errno, "syncing", dir);
	return 0;
}

static int write_full(int fd, const char *p, size_t len)
{
	ssize_t w;

	while (len > 0) {
		w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int lemon_write_atomic(const char *dir, const char *name, const void *data,
		       size_t len, struct lemon_err *err)
{
	char tmp[4096], path[4096];
	int fd, n, m;

	n = snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name);
	m = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || n >= (int)sizeof(tmp) || m < 0 || m >= (int)sizeof(path))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "path too long: %s",
				     dir);
	/* a unique name: two writers in one process never share a temp file */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return lemon_err_errno_path(err, errno, "creating a temp file in",
					    dir);
	if (fchmod(fd, 0644) < 0 || write_full(fd, data, len) < 0 ||
	    fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	return lemon_fsync_dir(dir, err);
fail:
	lemon_err_errno_path(err, errno, "writing", path);
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}

int lemon_swap_into_place(const char *staging, const char *final,
			  bool *swapped, struct lemon_err *err)
{
	char tmp[4096];
	int n, e;

	*swapped = false;
	if (rename(staging, final) == 0)
		return 0;
	if (errno != ENOTEMPTY && errno != EEXIST)
		return lemon_err_errno_path(err, errno, "moving into place", final);
	/* both names exist at every instant: the old tree stays whole until
	 * the new one has replaced it */
	if (renameat2(AT_FDCWD, staging, AT_FDCWD, final, RENAME_EXCHANGE) == 0) {
		*swapped = true;
		return 0;
	}
	if (errno != EINVAL && errno != ENOSYS)
		return lemon_err_errno_path(err, errno, "swapping into place", final);
	/* file systems without RENAME_EXCHANGE: a short window without final */
	n = snprintf(tmp, sizeof(tmp), "%s.old", staging);
	if (n < 0 || n >= (int)sizeof(tmp))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "path too long: %s",
				     staging);
	if (rename(final, tmp) < 0)
		return lemon_err_errno_path(err, errno, "moving aside", final);
	if (rename(staging, final) < 0) {
		e = errno;
		if (rename(tmp, final) < 0)
			return lemon_err_errno_path(err, errno, "restoring", final);
		return lemon_err_errno_path(err, e, "moving into place", final);
	}
	if (rename(tmp, staging) < 0)
		return lemon_err_errno_path(err, errno, "moving", tmp);
	*swapped = true;
	return 0;
}

/* ---- bounded read ------------------------------------------------------ */

struct fd_src {
	int fd;
	int errnum;
	size_t total;
};

static ssize_t read_fd(void *ctx, char *out, size_t cap)
{
	struct fd_src *s = ctx;
	ssize_t n;

	do
		n = read(s->fd, out, cap);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		s->errnum = errno;
	else
		s->total += (size_t)n;
	return n;
}

int lemon_read_file(const char *path, size_t max, bool missing_ok, char **out,
		    size_t *len, struct lemon_err *err)
{
	struct fd_src s = { -1, 0, 0 };
	struct stat st;
	size_t hint;

	*out = NULL;
	if (len != NULL)
		*len = 0;
	/* O_NONBLOCK: opening a FIFO for reading must not wait for a writer */
	s.fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (s.fd < 0) {
		if (errno == ENOENT && missing_ok)
			return 0;
		return lemon_err_errno_path(err, errno, "opening", path);
	}
	if (fstat(s.fd, &st) < 0) {
		lemon_err_errno_path(err, errno, "reading", path);
		close(s.fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(s.fd);
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: not a regular file", path);
	}
	if ((uint64_t)st.st_size > max) {
		close(s.fd);
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "%s: larger than %zu bytes", path, max);
	}
	/* one read for a file that does not change; the bound still holds
	 * for one that grows while read */
	hint = (size_t)st.st_size + 1;
	*out = lemon_read_all(read_fd, &s, hint, max);
	close(s.fd);
	if (*out == NULL) {
		if (s.errnum != 0)
			return lemon_err_errno_path(err, s.errnum, "reading", path);
		if (s.total > max)
			return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
					     "%s: larger than %zu bytes", path, max);
		return lemon_err_set(err, LEMON_ERR_INTERNAL,
				     "out of memory reading %s", path);
	}
	if (len != NULL)
		*len = s.total;
	return 0;
}
