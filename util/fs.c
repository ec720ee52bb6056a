/* directory creation shared by the provisioner and the model store */
#include <errno.h>
#include <sys/stat.h>

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
