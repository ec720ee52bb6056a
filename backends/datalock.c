/* the data directory's lock: one `lemon serve` per data directory. Two
 * servers on one store would each start children for the same models and
 * evict each other's memory plans. The lock is an flock on
 * <data>/lemon.lock held for the server's life; the file is never
 * unlinked (a new file at that path would be a second, independent lock),
 * and the kernel drops the lock when the process ends however it ends. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "backends/backends-private.h"

/* the pid the holder wrote, "unknown" when unreadable */
static void holder_pid(int fd, char *out, size_t cap)
{
	ssize_t n = pread(fd, out, cap - 1, 0);
	ssize_t i;

	if (n <= 0) {
		snprintf(out, cap, "unknown");
		return;
	}
	out[n] = 0;
	for (i = 0; i < n; i++)
		if (out[i] < '0' || out[i] > '9') {
			out[i] = 0;
			break;
		}
	if (out[0] == 0)
		snprintf(out, cap, "unknown");
}

int backends_lock_data_dir(const char *data_dir, int *fd,
			   struct lemon_err *err)
{
	char dir[4096], path[4200], pid[24];
	ssize_t w = 0;
	int f, n;

	*fd = -1;
	if (backends_data_dir(data_dir, dir, sizeof(dir), err) < 0 ||
	    backends_mkdirs(dir, err) < 0)
		return -1;
	if (snprintf(path, sizeof(path), "%s/lemon.lock", dir) >= (int)sizeof(path))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "data directory path too long");
	f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f < 0)
		return lemon_err_errno_path(err, errno, "opening", path);
	if (flock(f, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		if (e == EWOULDBLOCK) {
			holder_pid(f, pid, sizeof(pid));
			close(f);
			return lemon_err_set(err, LEMON_ERR_BUSY,
					     "another lemon serve (pid %s) is using the data directory %s; stop it or give this one another --data-dir",
					     pid, dir);
		}
		close(f);
		return lemon_err_errno_path(err, e, "locking", path);
	}
	/* the pid is only for the message above (the lock is the flock), so
	 * failing to write it is no error */
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(f, 0) == 0)
		w = pwrite(f, pid, (size_t)n, 0);
	(void)w;
	*fd = f;
	return 0;
}
