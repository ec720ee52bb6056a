/* the sysroot object: the one place that knows where machine files live.
 *
 * Every file lemon reads about the machine is named as (base, relative path)
 * and resolved here, so `--sysroot DIR` replays a recorded tree by
 * construction and no other file holds a literal /sys, /proc or /dev path. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "detect/detect-private.h"
#include "util/str.h"

struct lemon_root {
	char dir[1024]; /* "" for the live machine, no trailing slash */
};

static const char *base_path(enum detect_base base)
{
	switch (base) {
	case DETECT_BASE_SYS:
		return "/sys";
	case DETECT_BASE_PROC:
		return "/proc";
	case DETECT_BASE_DEV:
		return "/dev";
	case DETECT_BASE_FIRMWARE:
		return "/lib/firmware";
	case DETECT_BASE_MODULES:
		return "/lib/modules";
	case DETECT_BASE_LIBDRM:
		return "/usr/share/libdrm";
	case DETECT_BASE_ETC:
		return "/etc";
	case DETECT_BASE_HWDATA:
		return "/usr/share/misc";
	}
	return "/nonexistent";
}

int detect_root_new(const char *sysroot, struct lemon_root **out,
		    struct lemon_err *err)
{
	struct lemon_root *root;
	struct stat st;
	size_t n;

	root = calloc(1, sizeof(*root));
	if (root == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	if (sysroot != NULL && sysroot[0] != '\0') {
		if (stat(sysroot, &st) != 0 || !S_ISDIR(st.st_mode)) {
			free(root);
			return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
					     "sysroot %s is not a directory",
					     sysroot);
		}
		if (!lemon_str_copy(root->dir, sizeof(root->dir), sysroot)) {
			free(root);
			return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
					     "sysroot path too long: %s", sysroot);
		}
		n = strlen(root->dir);
		while (n > 1 && root->dir[n - 1] == '/')
			root->dir[--n] = '\0';
		if (strcmp(root->dir, "/") == 0)
			root->dir[0] = '\0';
	}
	*out = root;
	return 0;
}

void detect_root_free(struct lemon_root *root)
{
	free(root);
}

bool detect_root_is_live(const struct lemon_root *root)
{
	return root->dir[0] == '\0';
}

const char *detect_root_dir(const struct lemon_root *root)
{
	return root->dir;
}

void detect_root_display(enum detect_base base, const char *rel, char *out,
			 size_t cap)
{
	snprintf(out, cap, "%s/%s", base_path(base), rel);
}

int detect_root_path(const struct lemon_root *root, enum detect_base base,
		     const char *rel, char *out, size_t cap,
		     struct lemon_err *err)
{
	int n;

	if (rel == NULL || rel[0] == '\0')
		n = snprintf(out, cap, "%s%s", root->dir, base_path(base));
	else
		n = snprintf(out, cap, "%s%s/%s", root->dir, base_path(base),
			     rel);
	if (n < 0 || (size_t)n >= cap)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "path too long: %s/%s", base_path(base),
				     rel ? rel : "");
	return 0;
}

int detect_root_read(const struct lemon_root *root, enum detect_base base,
		     const char *rel, char *buf, size_t cap, size_t *len,
		     struct lemon_err *err)
{
	char path[1280];
	size_t total = 0;
	int fd;

	if (detect_root_path(root, base, rel, path, sizeof(path), err) < 0)
		return -1;
	/* O_NONBLOCK keeps a live /dev/kmsg read from waiting for new lines */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return lemon_err_errno(err, errno, path);
	for (;;) {
		ssize_t r;

		if (total + 1 >= cap) {
			char probe;

			r = read(fd, &probe, 1);
			close(fd);
			if (r > 0)
				return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
						     "%s is larger than %zu bytes",
						     path, cap - 1);
			break;
		}
		r = read(fd, buf + total, cap - 1 - total);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EPIPE) && total > 0) {
			close(fd);
			break;
		}
		if (r < 0) {
			int e = errno;

			close(fd);
			return lemon_err_errno(err, e, path);
		}
		if (r == 0) {
			close(fd);
			break;
		}
		total += (size_t)r;
	}
	buf[total] = '\0';
	*len = total;
	return 0;
}

int detect_root_link_name(const struct lemon_root *root, enum detect_base base,
			  const char *rel, char *out, size_t cap,
			  struct lemon_err *err)
{
	char path[1280], target[1024];
	const char *slash;
	ssize_t n;

	if (detect_root_path(root, base, rel, path, sizeof(path), err) < 0)
		return -1;
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return lemon_err_errno(err, errno, path);
	target[n] = '\0';
	slash = strrchr(target, '/');
	if (!lemon_str_copy(out, cap, slash ? slash + 1 : target))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "link target of %s too long", path);
	return 0;
}

bool detect_root_exists(const struct lemon_root *root, enum detect_base base,
			const char *rel)
{
	char path[1280];
	struct stat st;

	if (detect_root_path(root, base, rel, path, sizeof(path), NULL) < 0)
		return false;
	return lstat(path, &st) == 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int detect_root_list(const struct lemon_root *root, enum detect_base base,
		     const char *rel, struct detect_names *out,
		     struct lemon_err *err)
{
	char path[1280];
	struct dirent *de;
	size_t cap = 0;
	DIR *d;

	out->names = NULL;
	out->count = 0;
	if (detect_root_path(root, base, rel, path, sizeof(path), err) < 0)
		return -1;
	d = opendir(path);
	if (d == NULL)
		return lemon_err_errno(err, errno, path);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (out->count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **n;

			/* checked before realloc: a successful realloc frees
			 * the old array, so out->names must take n at once */
			if (ncap > DETECT_LIST_MAX)
				goto too_many;
			n = realloc(out->names, ncap * sizeof(*n));
			if (n == NULL)
				goto oom;
			out->names = n;
			cap = ncap;
		}
		out->names[out->count] = strdup(de->d_name);
		if (out->names[out->count] == NULL)
			goto oom;
		out->count++;
	}
	closedir(d);
	if (out->count > 0)
		qsort(out->names, out->count, sizeof(char *), cmp_names);
	return 0;
too_many:
	closedir(d);
	detect_names_free(out);
	return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
			     "%s: more than %d entries", path, DETECT_LIST_MAX);
oom:
	closedir(d);
	detect_names_free(out);
	return lemon_err_set(err, LEMON_ERR_INTERNAL,
			     "out of memory listing %s", path);
}

void detect_names_free(struct detect_names *names)
{
	size_t i;

	for (i = 0; i < names->count; i++)
		free(names->names[i]);
	free(names->names);
	names->names = NULL;
	names->count = 0;
}

int detect_read_attr(const struct lemon_root *root, enum detect_base base,
		     const char *rel, char *out, size_t cap,
		     struct lemon_err *err)
{
	char buf[512];
	const char *s = buf;
	size_t len;

	if (detect_root_read(root, base, rel, buf, sizeof(buf), &len, err) < 0)
		return -1;
	lemon_str_trim(&s, &len);
	if (!lemon_str_copy_n(out, cap, s, len))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "value of %s longer than %zu bytes", rel,
				     cap - 1);
	return 0;
}

int detect_read_u64(const struct lemon_root *root, enum detect_base base,
		    const char *rel, int num_base, uint64_t max, uint64_t *out,
		    struct lemon_err *err)
{
	char buf[64];

	if (detect_read_attr(root, base, rel, buf, sizeof(buf), err) < 0)
		return -1;
	if (lemon_parse_u64(buf, strlen(buf), num_base, max, out, err) < 0) {
		lemon_err_prefix(err, "%s", rel);
		return -1;
	}
	return 0;
}

int detect_read_proc_optional(const struct lemon_root *root, const char *rel,
			      char *buf, size_t cap, size_t *len,
			      struct lemon_err *err)
{
	struct lemon_err e = { 0 };

	if (detect_root_read(root, DETECT_BASE_PROC, rel, buf, cap, len,
			     &e) == 0)
		return 0;
	if (e.code == LEMON_ERR_NOT_FOUND)
		return 1;
	*err = e;
	return -1;
}
