/* the local model store: $XDG_DATA_HOME/lemon/models/<name>.gguf. Names are
 * validated before they touch a path, and imports are checked GGUF files
 * copied in through a temporary file and a rename */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backends-private.h"
#include "util/fs.h"
#include "util/str.h"

bool backends_model_name_valid(const char *name)
{
	size_t i, n;

	if (name == NULL)
		return false;
	n = strnlen(name, BACKENDS_NAME_MAX);
	if (n == 0 || n >= BACKENDS_NAME_MAX || name[0] == '.' ||
	    strstr(name, "..") != NULL)
		return false;
	for (i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == ':' || ch == '-'))
			return false;
	}
	return true;
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

static int models_dir(const char *data_dir, char *out, size_t cap,
		      struct lemon_err *err)
{
	char base[4096];
	int n;

	if (backends_data_dir(data_dir, base, sizeof(base), err) < 0)
		return -1;
	n = snprintf(out, cap, "%s/models", base);
	if (n < 0 || (size_t)n >= cap)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "models directory path too long");
	return 0;
}

int backends_model_path(const char *data_dir, const char *name, char *out,
			size_t cap, struct lemon_err *err)
{
	char dir[4096], split[4200];
	struct stat st;
	uint64_t total;
	int n;

	if (!backends_model_name_valid(name))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "invalid model name '%.64s': use 1-63 of A-Z a-z 0-9 . _ : - without '..'",
				     name ? name : "");
	if (models_dir(data_dir, dir, sizeof(dir), err) < 0)
		return -1;
	n = snprintf(out, cap, "%s/%s.gguf", dir, name);
	if (n < 0 || (size_t)n >= cap)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "model path too long");
	if (stat(out, &st) == 0 && S_ISREG(st.st_mode))
		return 0;
	/* a split model: the directory <name>/ and its first part */
	snprintf(split, sizeof(split), "%s/%s", dir, name);
	if (backends_split_first(split, out, cap, &total) < 0)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "model '%s' not found in %s", name, dir);
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

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* copies the mapped file into dir/<name>.gguf through a temp file */
static int store_copy(const char *dir, const char *name,
		      const unsigned char *p, size_t n, struct lemon_err *err)
{
	char tmp[4200], dst[4200];
	int fd, dfd;

	snprintf(tmp, sizeof(tmp), "%s/.%s.gguf.tmp", dir, name);
	snprintf(dst, sizeof(dst), "%s/%s.gguf", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return lemon_err_errno(err, errno, tmp);
	if (write_all(fd, p, n) < 0 || fsync(fd) < 0) {
		lemon_err_errno(err, errno, tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, dst) < 0) {
		lemon_err_errno(err, errno, dst);
		unlink(tmp);
		return -1;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

int backends_pull_file(const char *data_dir, const char *src,
		       const char *name, struct backends_gguf_info *info,
		       struct lemon_err *err)
{
	struct backends_gguf_info local;
	char dir[4096];
	struct stat st;
	void *map;
	int fd, rc;

	if (info == NULL)
		info = &local;
	if (!backends_model_name_valid(name))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "invalid model name '%.64s': use 1-63 of A-Z a-z 0-9 . _ : - without '..'",
				     name);
	fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lemon_err_errno(err, errno, src);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		close(fd);
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: not a non-empty regular file", src);
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return lemon_err_errno(err, errno, src);
	rc = backends_gguf_parse(map, (size_t)st.st_size, info, err);
	if (rc < 0)
		lemon_err_prefix(err, "%s", src);
	if (rc == 0 && (rc = models_dir(data_dir, dir, sizeof(dir), err)) == 0 &&
	    (rc = backends_mkdirs(dir, err)) == 0)
		rc = store_copy(dir, name, map, (size_t)st.st_size, err);
	munmap(map, (size_t)st.st_size);
	return rc;
}

static int cmp_model(const void *a, const void *b)
{
	return strcmp(((const struct backends_model *)a)->name,
		      ((const struct backends_model *)b)->name);
}

/* a split model's directory <name>/ as one entry */
static bool list_split(const char *dir, const char *entry,
		       struct backends_model *m)
{
	char path[4400], first[4400];
	struct stat st;

	if (!backends_model_name_valid(entry) ||
	    !lemon_str_copy(m->name, sizeof(m->name), entry))
		return false;
	snprintf(path, sizeof(path), "%s/%s", dir, entry);
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    backends_split_first(path, first, sizeof(first), &m->size) < 0)
		return false;
	m->mtime = (int64_t)st.st_mtime;
	return true;
}

int backends_list_models(const char *data_dir, struct backends_model *out,
			 int cap, int *n, struct lemon_err *err)
{
	char dir[4096], path[4400];
	struct dirent *de;
	struct stat st;
	DIR *d;

	*n = 0;
	if (models_dir(data_dir, dir, sizeof(dir), err) < 0)
		return -1;
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : lemon_err_errno(err, errno, dir);
	while ((de = readdir(d)) != NULL && *n < cap) {
		size_t len = strlen(de->d_name);
		struct backends_model *m = &out[*n];

		if (list_split(dir, de->d_name, m)) {
			(*n)++;
			continue;
		}
		if (len <= 5 || strcmp(de->d_name + len - 5, ".gguf") != 0 ||
		    len - 5 >= sizeof(m->name))
			continue;
		memcpy(m->name, de->d_name, len - 5);
		m->name[len - 5] = 0;
		if (!backends_model_name_valid(m->name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		m->size = (uint64_t)st.st_size;
		m->mtime = (int64_t)st.st_mtime;
		(*n)++;
	}
	closedir(d);
	qsort(out, (size_t)*n, sizeof(*out), cmp_model);
	return 0;
}
