/* The installer's own file-system steps: directory creation with the
 * provisioner's error words, and the flock(2) that serializes installs.
 * Atomic writes, directory swaps, tree removal and syncing are util/fs.h's. */
#include <errno.h>
#include <fcntl.h>
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

int provision_lock(const char *backends_dir, const atomic_bool *cancel,
		   int *fd, struct lemon_err *err)
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
	/* polled when it can be cancelled: flock has no timeout */
	while (flock(*fd, cancel ? LOCK_EX | LOCK_NB : LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		if (cancel && errno == EWOULDBLOCK) {
			if (!atomic_load(cancel)) {
				usleep(100 * 1000);
				continue;
			}
			close(*fd);
			*fd = -1;
			return lemon_err_set(err, LEMON_ERR_BUSY,
					     "cancelled while another install held %s",
					     path);
		}
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
