/* The one owner of the model store's layout (see store-private.h): paths
 * of a name, the per-name lock, the check that a file is a whole GGUF, and
 * publication, listing and deletion. Pulls, imports and deletes of a name
 * all hold its lock for their whole work, so none of them can see, remove
 * or rename another's half-written file, and what a pull or an import
 * publishes is the very inode it verified: the descriptor it wrote and
 * checked is linked into place, never a path looked up again. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backends-private.h"
#include "backends/store-private.h"
#include "util/fs.h"
#include "util/str.h"

#define BAD_NAME_FMT "invalid model name '%.64s': " BACKENDS_NAME_RULE
/* an older lemon unlinked lock files: retrying on a replaced one is
 * bounded, since each round means another process made progress */
#define LOCK_TRIES 16

/* out = dir "/" pre name post, TOO_LARGE when it does not fit */
static int join(char *out, size_t cap, struct lemon_err *err, const char *dir,
		const char *pre, const char *name, const char *post)
{
	int n = snprintf(out, cap, "%s/%s%s%s", dir, pre, name, post);

	if (n < 0 || (size_t)n >= cap)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "model store path too long: %s/%s%s%s", dir, pre,
				     name, post);
	return 0;
}

/* a name only an older lemon accepted: valid but for its leading '-'
 * (such an entry on disk can still be removed, `lemon rm -- -rf`) */
static bool legacy_name(const char *name)
{
	char probe[BACKENDS_NAME_MAX];

	if (name == NULL || name[0] != '-' ||
	    !lemon_str_copy(probe, sizeof(probe), name))
		return false;
	probe[0] = 'x';
	return backends_model_name_valid(probe);
}

/* the paths of a name already checked */
static int make_paths(const char *data_dir, const char *name,
		      struct backends_store_paths *p, struct lemon_err *err)
{
	char base[4000];

	lemon_str_copy(p->name, sizeof(p->name), name);
	if (backends_data_dir(data_dir, base, sizeof(base), err) < 0 ||
	    join(p->models, sizeof(p->models), err, base, "", "models", "") < 0 ||
	    join(p->file, sizeof(p->file), err, p->models, "", name, ".gguf") < 0 ||
	    join(p->dir, sizeof(p->dir), err, p->models, "", name, "") < 0 ||
	    join(p->staging, sizeof(p->staging), err, p->models, ".pull-", name,
		 "") < 0 ||
	    join(p->lock, sizeof(p->lock), err, p->models, ".pull-", name,
		 ".lock") < 0 ||
	    join(p->next, sizeof(p->next), err, p->models, ".pull-", name,
		 ".new") < 0 ||
	    join(p->import, sizeof(p->import), err, p->models, ".pull-", name,
		 ".import") < 0)
		return -1;
	return 0;
}

int backends_store_paths(const char *data_dir, const char *name,
			 struct backends_store_paths *p, struct lemon_err *err)
{
	if (!backends_model_name_valid(name))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG, BAD_NAME_FMT,
				     name ? name : "");
	return make_paths(data_dir, name, p, err);
}

/* ---- the per-name lock --------------------------------------------------- */

int backends_store_lock(const struct backends_store_paths *p, int *fd,
			struct lemon_err *err)
{
	struct stat a, b;
	int i;

	*fd = -1;
	if (backends_mkdirs(p->models, err) < 0)
		return -1;
	for (i = 0; i < LOCK_TRIES; i++) {
		int l = open(p->lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);

		if (l < 0)
			return lemon_err_errno_path(err, errno, "opening", p->lock);
		if (flock(l, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;

			close(l);
			if (e == EWOULDBLOCK)
				return lemon_err_set(err, LEMON_ERR_BUSY,
						     "a pull of '%s' is already running",
						     p->name);
			return lemon_err_errno_path(err, e, "locking", p->lock);
		}
		/* the lock counts only on the file the path names now */
		if (fstat(l, &a) == 0 && stat(p->lock, &b) == 0 &&
		    a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
			*fd = l;
			return 0;
		}
		close(l);
	}
	return lemon_err_set(err, LEMON_ERR_BUSY,
			     "the lock %s keeps being replaced", p->lock);
}

void backends_store_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock; the file stays */
}

int backends_store_open_part(const struct backends_store_paths *p,
			     const char *base, int *fd, char *path, size_t cap,
			     struct lemon_err *err)
{
	if (join(path, cap, err, p->staging, "", base, ".part") < 0 ||
	    backends_mkdirs(p->staging, err) < 0)
		return -1;
	*fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
		   0644);
	if (*fd < 0)
		return lemon_err_errno_path(err, errno, "opening", path);
	return 0;
}

/* ---- checking ------------------------------------------------------------ */

int backends_store_check(int fd, const char *label,
			 struct backends_gguf_info *info, struct lemon_err *err)
{
	struct backends_gguf_info local;
	struct stat st;
	void *map;
	int rc;

	if (info == NULL)
		info = &local;
	if (fstat(fd, &st) < 0)
		return lemon_err_errno_path(err, errno, "reading", label);
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: not a non-empty regular file", label);
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return lemon_err_errno_path(err, errno, "reading", label);
	rc = backends_gguf_parse(map, (size_t)st.st_size, info, err);
	munmap(map, (size_t)st.st_size);
	if (rc == 0)
		rc = backends_gguf_check_size(info, (uint64_t)st.st_size, err);
	if (rc < 0)
		lemon_err_prefix(err, "%s", label);
	return rc;
}

/* ---- publication --------------------------------------------------------- */

/* gives fd's inode the new name dst. linkat(AT_EMPTY_PATH) links the
 * descriptor itself and fails (ENOENT) when the file was deleted, so a
 * removed or replaced staging file can never be published. Before Linux
 * 6.10 an unprivileged process may not do that (EPERM): then staged is
 * renamed, after checking that it still names fd's inode; the caller holds
 * the name's lock, so no lemon renames it in between. */
static int link_fd(int fd, const char *staged, const char *dst,
		   struct lemon_err *err)
{
	struct stat a, b;

	if (linkat(fd, "", AT_FDCWD, dst, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != EPERM && errno != EINVAL && errno != ENOSYS) {
		if (errno == ENOENT && fstat(fd, &a) == 0 && a.st_nlink == 0)
			return lemon_err_set(err, LEMON_ERR_IO,
					     "%s was deleted before it could be published",
					     staged);
		return lemon_err_errno_path(err, errno, "publishing", dst);
	}
	if (fstat(fd, &a) < 0 || lstat(staged, &b) < 0 || a.st_ino != b.st_ino ||
	    a.st_dev != b.st_dev)
		return lemon_err_set(err, LEMON_ERR_IO,
				     "%s was replaced after it was verified: nothing published",
				     staged);
	if (rename(staged, dst) < 0)
		return lemon_err_errno_path(err, errno, "publishing", dst);
	return 0;
}

int backends_store_publish_file(const struct backends_store_paths *p, int fd,
				const char *staged, struct lemon_err *err)
{
	if (fsync(fd) < 0)
		return lemon_err_errno_path(err, errno, "syncing", staged);
	if (lemon_rm_tree(p->next, err) < 0 || link_fd(fd, staged, p->next, err) < 0)
		return -1;
	if (rename(p->next, p->file) < 0) {
		lemon_err_errno_path(err, errno, "publishing", p->file);
		unlink(p->next);
		return -1;
	}
	if (lemon_fsync_dir(p->models, err) < 0)
		return -1;
	/* a split model of the same name is replaced too: renamed aside to
	 * next (free again), removed by backends_store_sweep once the pair
	 * lock is let go (a large tree takes a while to delete) */
	if (rename(p->dir, p->next) < 0 && errno != ENOENT)
		return lemon_err_errno_path(err, errno, "removing", p->dir);
	if (lemon_rm_tree(p->staging, err) < 0)
		return -1;
	unlink(staged); /* the fallback's rename already moved it */
	return lemon_fsync_dir(p->models, err);
}

static int link_parts(const struct backends_store_paths *p, int n,
		      const int *fds, const char *const *staged,
		      const char *const *names, struct lemon_err *err)
{
	char dst[BACKENDS_STORE_PATH_MAX];
	int i;

	if (mkdir(p->next, 0755) < 0)
		return lemon_err_errno_path(err, errno, "creating", p->next);
	for (i = 0; i < n; i++) {
		if (strchr(names[i], '/') != NULL || names[i][0] == '.')
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "split part name '%s' invalid", names[i]);
		if (fsync(fds[i]) < 0)
			return lemon_err_errno_path(err, errno, "syncing", staged[i]);
		if (join(dst, sizeof(dst), err, p->next, "", names[i], "") < 0 ||
		    link_fd(fds[i], staged[i], dst, err) < 0)
			return -1;
	}
	return lemon_fsync_dir(p->next, err);
}

int backends_store_publish_split(const struct backends_store_paths *p, int n,
				 const int *fds, const char *const *staged,
				 const char *const *names,
				 struct lemon_err *err)
{
	bool swapped = false;

	if (lemon_rm_tree(p->next, err) < 0)
		return -1;
	if (link_parts(p, n, fds, staged, names, err) < 0 ||
	    lemon_swap_into_place(p->next, p->dir, &swapped, err) < 0) {
		lemon_rm_tree(p->next, NULL);
		return -1;
	}
	if (lemon_fsync_dir(p->models, err) < 0)
		return -1;
	/* the old tree, when there was one, is now at next: removed by
	 * backends_store_sweep once the pair lock is let go */
	if (lemon_rm_tree(p->staging, err) < 0)
		return -1;
	if (unlink(p->file) < 0 && errno != ENOENT)
		return lemon_err_errno_path(err, errno, "removing", p->file);
	return lemon_fsync_dir(p->models, err);
}

int backends_store_sweep(const struct backends_store_paths *p,
			 struct lemon_err *err)
{
	struct stat st;

	if (lstat(p->next, &st) < 0)
		return 0;
	if (lemon_rm_tree(p->next, err) < 0)
		return -1;
	return lemon_fsync_dir(p->models, err);
}

int backends_store_discard(const struct backends_store_paths *p,
			   struct lemon_err *err)
{
	return lemon_rm_tree(p->staging, err);
}

/* ---- lookup, listing and deletion ----------------------------------------- */

bool backends_split_is_first(const char *name, size_t n)
{
	return n > 20 && strncmp(name + n - 20, "-00001-of-", 10) == 0 &&
	       strspn(name + n - 10, "0123456789") == 5 &&
	       strcmp(name + n - 5, ".gguf") == 0;
}

int backends_split_first(const char *dir, char *out, size_t cap,
			 uint64_t *total)
{
	char best[4400] = "";
	struct dirent *de;
	struct stat st;
	char path[4400];
	DIR *d;

	*total = 0;
	d = opendir(dir);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		if (de->d_name[0] == '.' || n <= 20 ||
		    strcmp(de->d_name + n - 5, ".gguf") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		*total += (uint64_t)st.st_size;
		if (backends_split_is_first(de->d_name, n))
			lemon_str_copy(best, sizeof(best), path);
	}
	closedir(d);
	if (best[0] == 0 || !lemon_str_copy(out, cap, best))
		return -1;
	return 0;
}

uint64_t backends_model_file_bytes(const char *path)
{
	char dir[4400], first[4400];
	const char *slash = strrchr(path, '/');
	size_t n = strlen(path);
	struct stat st;
	uint64_t total;

	if (slash && backends_split_is_first(path, n) &&
	    (size_t)(slash - path) < sizeof(dir)) {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = 0;
		if (backends_split_first(dir, first, sizeof(first), &total) == 0)
			return total;
	}
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	return (uint64_t)st.st_size;
}

int backends_model_path(const char *data_dir, const char *name, char *out,
			size_t cap, struct lemon_err *err)
{
	struct backends_store_paths p;
	struct stat st;
	uint64_t total;

	if (backends_store_paths(data_dir, name, &p, err) < 0)
		return -1;
	if (stat(p.file, &st) == 0 && S_ISREG(st.st_mode)) {
		if (!lemon_str_copy(out, cap, p.file))
			return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
					     "model path too long");
		return 0;
	}
	/* a split model: the directory NAME/ and its first part */
	if (backends_split_first(p.dir, out, cap, &total) < 0)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "model '%s' not found in %s", name, p.models);
	return 0;
}

static int cmp_model(const void *a, const void *b)
{
	return strcmp(((const struct backends_model *)a)->name,
		      ((const struct backends_model *)b)->name);
}

/* one directory entry as a model: NAME.gguf, or a split model's NAME/ */
static bool list_entry(const char *dir, const char *entry,
		       struct backends_model *m)
{
	char path[4400], first[4400];
	size_t len = strlen(entry);
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, entry);
	if (backends_model_name_valid(entry) &&
	    lemon_str_copy(m->name, sizeof(m->name), entry) &&
	    lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
	    backends_split_first(path, first, sizeof(first), &m->size) == 0) {
		m->mtime = (int64_t)st.st_mtime;
		return true;
	}
	if (len <= 5 || strcmp(entry + len - 5, ".gguf") != 0 ||
	    len - 5 >= sizeof(m->name))
		return false;
	memcpy(m->name, entry, len - 5);
	m->name[len - 5] = 0;
	if (!backends_model_name_valid(m->name) || stat(path, &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return false;
	m->size = (uint64_t)st.st_size;
	m->mtime = (int64_t)st.st_mtime;
	return true;
}

int backends_list_models(const char *data_dir, struct backends_model *out,
			 int cap, int *n, struct lemon_err *err)
{
	char base[4000], dir[4096];
	struct dirent *de;
	DIR *d;

	*n = 0;
	if (backends_data_dir(data_dir, base, sizeof(base), err) < 0 ||
	    join(dir, sizeof(dir), err, base, "", "models", "") < 0)
		return -1;
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : lemon_err_errno_path(err, errno, "reading", dir);
	while ((de = readdir(d)) != NULL && *n < cap)
		if (list_entry(dir, de->d_name, &out[*n]))
			(*n)++;
	closedir(d);
	qsort(out, (size_t)*n, sizeof(*out), cmp_model);
	return 0;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* delete takes the name's lock and refuses (BUSY) while a pull or an
 * import of the name runs, rather than waiting for it: a pull can take
 * hours, and removing what it is writing is what once let a pull publish
 * another pull's half-written file */
int backends_delete_model(const char *data_dir, const char *name,
			  struct lemon_err *err)
{
	struct backends_store_paths p;
	char mm[BACKENDS_STORE_PATH_MAX];
	bool found;
	int fd, rc = 0;

	if (legacy_name(name) ? make_paths(data_dir, name, &p, err) < 0 :
				backends_store_paths(data_dir, name, &p, err) < 0)
		return -1;
	found = exists(p.file) || exists(p.dir);
	/* nothing at all: no lock file is created for a name never used */
	if (!found && !exists(p.staging) && !exists(p.next))
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "model '%s' not found in %s", name, p.models);
	if (backends_store_lock(&p, &fd, err) < 0) {
		lemon_err_prefix(err, "removing '%s'", name);
		return -1;
	}
	found = exists(p.file) || exists(p.dir); /* as it is under the lock */
	/* its vision projector (mmproj.c) goes with it */
	if (join(mm, sizeof(mm), err, p.models, "", name, ".mmproj.gguf") < 0 ||
	    lemon_rm_tree(mm, err) < 0 ||
	    lemon_rm_tree(p.file, err) < 0 || lemon_rm_tree(p.dir, err) < 0 ||
	    lemon_rm_tree(p.staging, err) < 0 || lemon_rm_tree(p.next, err) < 0 ||
	    lemon_rm_tree(p.import, err) < 0)
		rc = -1;
	backends_mmproj_unstage(&p); /* an interrupted publication's .ready */
	if (rc == 0 && !found)
		rc = lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				   "model '%s' not found in %s", name, p.models);
	if (rc == 0)
		rc = lemon_fsync_dir(p.models, err);
	backends_store_unlock(fd);
	return rc;
}
