/* File-system primitives the installer's crash safety rests on: durable
 * atomic file replacement (write, fsync, rename, fsync the directory), an
 * atomic directory swap (renameat2 RENAME_EXCHANGE), tree removal that
 * never follows symlinks, and the flock(2) that serializes installs. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "provision/provision-private.h"
#include "util/fs.h"
#include "util/str.h"

int provision_mkdirs(const char *dir, struct lemon_err *err)
{
	char failed[4096];
	int e = lemon_mkdirs(dir, failed, sizeof(failed));

	if (e == ENAMETOOLONG)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "path too long: %s", dir);
	if (e != 0)
		return provision_err_errno(err, e, "creating directory", failed);
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int provision_rm_rf(const char *path, struct lemon_err *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : provision_err_errno(err, errno, "stat", path);
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 ? provision_err_errno(err, errno, "removing", path) : 0;
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0)
		return provision_err_errno(err, errno, "removing", path);
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

int provision_sync_tree(const char *dir, struct lemon_err *err)
{
	nftw(dir, start_one, 32, FTW_PHYS);
	if (nftw(dir, sync_one, 32, FTW_PHYS | FTW_DEPTH) != 0)
		return provision_err_errno(err, errno, "syncing", dir);
	return 0;
}

int provision_lock(const char *backends_dir, int *fd, struct lemon_err *err)
{
	char path[4096];

	*fd = -1;
	if (snprintf(path, sizeof(path), "%s/.lock", backends_dir) >= (int)sizeof(path))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "path too long: %s",
				     backends_dir);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*fd < 0)
		return provision_err_errno(err, errno, "opening lock", path);
	if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK) {
		provision_err_errno(err, errno, "locking", path);
		close(*fd);
		*fd = -1;
		return -1;
	}
	fprintf(stderr, "lemon: another install holds %s; waiting for it to finish\n",
		path);
	while (flock(*fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		provision_err_errno(err, errno, "locking", path);
		close(*fd);
		*fd = -1;
		return -1;
	}
	return 0;
}

void provision_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

int provision_fsync_dir(const char *dir, struct lemon_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return provision_err_errno(err, errno, "opening", dir);
	if (fsync(fd) < 0 && errno != EINVAL) {
		provision_err_errno(err, errno, "syncing", dir);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int provision_write_atomic(const char *dir, const char *name, const char *data,
		      size_t len, struct lemon_err *err)
{
	char tmp[4096], path[4096];
	size_t done = 0;
	ssize_t w;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%ld", dir, name, (long)getpid()) >=
	    (int)sizeof(tmp) ||
	    snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "path too long: %s", dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return provision_err_errno(err, errno, "creating", tmp);
	while (done < len) {
		w = write(fd, data + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto fail;
		done += (size_t)w;
	}
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		fd = -1;
		goto fail;
	}
	return provision_fsync_dir(dir, err);
fail:
	provision_err_errno(err, errno, "writing", path);
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}

int provision_swap_into_place(const char *staging, const char *final,
			 bool *swapped, struct lemon_err *err)
{
	char tmp[4096];

	*swapped = false;
	if (rename(staging, final) == 0)
		return 0;
	if (errno != ENOTEMPTY && errno != EEXIST)
		return provision_err_errno(err, errno, "moving into place", final);
	/* both names exist at every instant: the old install stays whole
	 * until the new one has replaced it */
	if (renameat2(AT_FDCWD, staging, AT_FDCWD, final, RENAME_EXCHANGE) == 0) {
		*swapped = true;
		return 0;
	}
	if (errno != EINVAL && errno != ENOSYS)
		return provision_err_errno(err, errno, "swapping into place", final);
	/* file systems without RENAME_EXCHANGE: a short window without final */
	if (snprintf(tmp, sizeof(tmp), "%s.old", staging) >= (int)sizeof(tmp))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "path too long: %s", staging);
	if (rename(final, tmp) < 0)
		return provision_err_errno(err, errno, "moving aside", final);
	if (rename(staging, final) < 0) {
		int e = errno;

		if (rename(tmp, final) < 0)
			return provision_err_errno(err, errno, "restoring", final);
		return provision_err_errno(err, e, "moving into place", final);
	}
	if (rename(tmp, staging) < 0)
		return provision_err_errno(err, errno, "moving", tmp);
	*swapped = true;
	return 0;
}
