/* model names, the data directory, and imports (`lemon pull --file`): a
 * local file is copied into the store under the name's lock, and the copy,
 * not the source, is checked as a whole GGUF and published (store.c), so a
 * source that changes or is cut short while it is read cannot slip a
 * different or shorter file into the store */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backends-private.h"
#include "backends/store-private.h"
#include "compat/compat.h"
#include "util/fs.h"
#include "util/str.h"

/* the rule is the registry's (compat/models.c), so an entry it lists is a
 * name the store takes and the other way round */
_Static_assert(BACKENDS_NAME_MAX == sizeof(((struct compat_model *)0)->name),
	       "one length for model names");

bool backends_model_name_valid(const char *name)
{
	return compat_model_name_valid(name);
}

int backends_data_dir(const char *data_dir, char *out, size_t cap,
		      struct lemon_err *err)
{
	const char *x = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	int n;

	if (data_dir && data_dir[0])
		n = snprintf(out, cap, "%s", data_dir);
	else if (x && x[0] == '/')
		n = snprintf(out, cap, "%s/lemon", x);
	else if (home && home[0] == '/')
		n = snprintf(out, cap, "%s/.local/share/lemon", home);
	else
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "no data directory: set XDG_DATA_HOME or HOME");
	if (n < 0 || (size_t)n >= cap)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "data directory path too long");
	return 0;
}

/* creates a directory and its parents */
int backends_mkdirs(const char *path, struct lemon_err *err)
{
	char failed[4096];
	int e = lemon_mkdirs(path, failed, sizeof(failed));

	if (e == ENAMETOOLONG)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "path too long: %s", path);
	if (e != 0)
		return lemon_err_errno(err, e, failed);
	return 0;
}

/* the source of an import: a regular, non-empty file. stat first so a
 * FIFO or a device is never opened at all, and O_NONBLOCK plus fstat on
 * what was opened, in case the path was swapped in between: opening a
 * FIFO without a writer would otherwise block for ever */
static int open_source(const char *src, int *fd, struct lemon_err *err)
{
	struct stat st;

	*fd = -1;
	if (stat(src, &st) < 0)
		return lemon_err_errno_path(err, errno, "reading", src);
	if (!S_ISREG(st.st_mode))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "%s: not a regular file", src);
	*fd = open(src, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (*fd < 0)
		return lemon_err_errno_path(err, errno, "reading", src);
	if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		close(*fd);
		*fd = -1;
		return lemon_err_set(err, S_ISREG(st.st_mode) ? LEMON_ERR_INVALID_DATA :
								 LEMON_ERR_INVALID_ARG,
				     "%s: not a non-empty regular file", src);
	}
	return 0;
}

/* copies len bytes at off of in to the same offset of out: pread and
 * pwrite, where copy_file_range cannot (another file system, old kernel) */
static int copy_plain(int in, int out, off_t off, off_t len, const char *src,
		      const char *dst, struct lemon_err *err)
{
	char *buf = malloc(1 << 20);
	ssize_t n = 0, w;
	int e = 0;

	if (buf == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	while (len > 0) {
		n = pread(in, buf, len < (1 << 20) ? (size_t)len : 1 << 20, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) { /* n 0: the source shrank; the copy is checked */
			e = n < 0 ? errno : 0;
			break;
		}
		for (w = 0; w < n;) {
			ssize_t k = pwrite(out, buf + w, (size_t)(n - w), off + w);

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				e = k < 0 ? errno : EIO;
				free(buf);
				return lemon_err_errno_path(err, e, "writing", dst);
			}
			w += k;
		}
		off += n;
		len -= n;
	}
	free(buf);
	if (e != 0)
		return lemon_err_errno_path(err, e, "reading", src);
	return 0;
}

static int copy_range(int in, int out, off_t off, off_t len, const char *src,
		      const char *dst, struct lemon_err *err)
{
	loff_t a = off, b = off;
	ssize_t n;

	while (len > 0) {
		n = copy_file_range(in, &a, out, &b,
				    len < (1 << 30) ? (size_t)len : 1 << 30, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			      errno == EOPNOTSUPP))
			return copy_plain(in, out, a, len, src, dst, err);
		if (n < 0)
			return lemon_err_errno_path(err, errno, "copying", dst);
		if (n == 0)
			break;
		len -= n;
	}
	return 0;
}

/* copies in to out with its holes (SEEK_DATA/SEEK_HOLE), so a sparse
 * source stays sparse in the store instead of filling the disk with
 * zeros; a file system without hole lookup counts as all data */
static int copy_fd(int in, int out, const char *src, const char *dst,
		   struct lemon_err *err)
{
	off_t off = 0, data, hole;
	struct stat st;

	if (fstat(in, &st) < 0)
		return lemon_err_errno_path(err, errno, "reading", src);
	for (;;) {
		data = lseek(in, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* only a hole, or nothing, is left */
		if (data < 0) {
			data = off;
			hole = st.st_size;
		} else {
			hole = lseek(in, data, SEEK_HOLE);
			if (hole < 0)
				hole = st.st_size;
		}
		if (hole <= data)
			break;
		if (copy_range(in, out, data, hole - data, src, dst, err) < 0)
			return -1;
		off = hole;
	}
	if (fstat(in, &st) < 0 || ftruncate(out, st.st_size) < 0)
		return lemon_err_errno_path(err, errno, "writing", dst);
	return 0;
}

/* one file of an import: its source, open, and its copy in the store */
struct import_file {
	const struct backends_store_paths *dst;
	const char *src;
	bool clip; /* a vision projector (mmproj.c) */
	int in, fd;
};

static int import_copy(struct import_file *f, struct backends_gguf_info *info,
		       struct lemon_err *err)
{
	const char *path = f->dst->import;
	int rc;

	unlink(path); /* a crashed import's leftover; the lock is ours */
	f->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		     0644);
	if (f->fd < 0)
		return lemon_err_errno_path(err, errno, "creating", path);
	rc = copy_fd(f->in, f->fd, f->src, path, err);
	if (rc == 0)
		rc = f->clip ? backends_mmproj_check(f->fd, f->src, err) :
			       backends_store_check(f->fd, f->src, info, err);
	return rc;
}

/* every copy checked first, then all published under the pair lock
 * exclusive (mmproj.c), the model before its projector: a start loading
 * the model holds that lock shared, so it never opens the new model with
 * the old projector, and the renames wait for it */
static int import_locked(const struct backends_store_paths *p,
			 struct import_file *f, int n,
			 struct backends_gguf_info *info, struct lemon_err *err)
{
	int i, pair, rc = 0;

	for (i = 0; i < n && rc == 0; i++)
		rc = import_copy(&f[i], f[i].clip ? NULL : info, err);
	if (rc == 0 && (backends_store_sweep(p, err) < 0 ||
			backends_pair_lock(p, NULL, &pair, err) < 0))
		rc = -1;
	else if (rc == 0) {
		backends_mmproj_recover(p); /* an interrupted publication's */
		for (i = 0; i < n && rc == 0; i++)
			rc = backends_store_publish_file(f[i].dst, f[i].fd,
							 f[i].dst->import, err);
		backends_pair_release(pair);
		/* a replaced split tree, deleted outside the pair lock */
		if (backends_store_sweep(p, rc < 0 ? NULL : err) < 0 && rc == 0)
			rc = -1;
	}
	for (i = 0; i < n; i++) {
		if (f[i].fd >= 0)
			close(f[i].fd);
		if (rc < 0)
			unlink(f[i].dst->import);
	}
	return rc;
}

int backends_store_import(const struct backends_store_paths *p,
			  const char *src, const struct backends_store_paths *q,
			  const char *mmsrc, struct backends_gguf_info *info,
			  struct lemon_err *err)
{
	struct import_file f[2];
	int n = 0, i, lock, rc = -1;

	if (src != NULL)
		f[n++] = (struct import_file){ p, src, false, -1, -1 };
	if (mmsrc != NULL)
		f[n++] = (struct import_file){ q, mmsrc, true, -1, -1 };
	for (i = 0; i < n; i++)
		if (open_source(f[i].src, &f[i].in, err) < 0)
			goto out;
	if (backends_store_lock(p, &lock, err) < 0)
		goto out;
	rc = import_locked(p, f, n, info, err);
	backends_store_unlock(lock);
out:
	for (i = 0; i < n; i++)
		if (f[i].in >= 0)
			close(f[i].in);
	return rc;
}

int backends_pull_file(const char *data_dir, const char *src,
		       const char *name, struct backends_gguf_info *info,
		       struct lemon_err *err)
{
	struct backends_store_paths p;

	if (backends_store_paths(data_dir, name, &p, err) < 0)
		return -1;
	return backends_store_import(&p, src, NULL, NULL, info, err);
}

/* asked by the server after a failed pull (backends.h) */
bool backends_pulls_cancelled(const struct backends *b)
{
	return b != NULL && atomic_load(&b->pulls_cancelled);
}
