/* Registry pulls into the model store and model deletion. The download is
 * the provision layer's; this file owns the store side: one pull per name
 * at a time (a lock file), a hidden staging directory that survives a
 * failure so the next try resumes, a GGUF header check of every file, and
 * an atomic publish: a single file is renamed to <name>.gguf, a split set
 * is renamed as the directory <name>/ (swapped with an older one with
 * RENAME_EXCHANGE), so a reader sees the old model or the new, never a
 * mix. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backends-private.h"
#include "compat/compat.h"
#include "util/str.h"

#define BAD_NAME_FMT \
	"invalid model name '%.64s': use 1-63 of A-Z a-z 0-9 . _ : - without '..'"

struct pull_paths {
	char models[4096];
	char staging[4200];
	char lock[4200];
	char file[4200];  /* <models>/<name>.gguf */
	char dir[4200];   /* <models>/<name> */
};

static int make_paths(const char *data_dir, const char *name,
		      struct pull_paths *p, struct lemon_err *err)
{
	char base[4000];

	if (!backends_model_name_valid(name))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG, BAD_NAME_FMT,
				     name ? name : "");
	if (backends_data_dir(data_dir, base, sizeof(base), err) < 0)
		return -1;
	snprintf(p->models, sizeof(p->models), "%s/models", base);
	snprintf(p->staging, sizeof(p->staging), "%s/.pull-%s", p->models, name);
	snprintf(p->lock, sizeof(p->lock), "%s/.pull-%s.lock", p->models, name);
	snprintf(p->file, sizeof(p->file), "%s/%s.gguf", p->models, name);
	snprintf(p->dir, sizeof(p->dir), "%s/%s", p->models, name);
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 &&
	       errno != ENOENT ? -1 : 0;
}

/* removes a tree without following symlinks; a missing path is fine */
static int rm_tree(const char *path, struct lemon_err *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : lemon_err_errno(err, errno, path);
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return lemon_err_errno(err, errno, path);
	return 0;
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* the GGUF header check of one downloaded file */
static int check_gguf(const char *path, struct lemon_err *err)
{
	struct backends_gguf_info info;
	struct stat st;
	void *map;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lemon_err_errno(err, errno, path);
	if (fstat(fd, &st) < 0 || st.st_size == 0) {
		close(fd);
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: empty file", path);
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return lemon_err_errno(err, errno, path);
	rc = backends_gguf_parse(map, (size_t)st.st_size, &info, err);
	munmap(map, (size_t)st.st_size);
	if (rc < 0)
		lemon_err_prefix(err, "%s", path);
	return rc;
}

static const char *base_name(const char *file)
{
	const char *s = strrchr(file, '/');

	return s ? s + 1 : file;
}

/* puts the verified staging files in place; see the file comment */
static int publish(const struct compat_model *m, const struct pull_paths *p,
		   struct lemon_err *err)
{
	char src[4608];

	if (m->n_files == 1) {
		snprintf(src, sizeof(src), "%s/%s", p->staging,
			 base_name(m->files[0].file));
		if (rename(src, p->file) < 0)
			return lemon_err_errno(err, errno, p->file);
		fsync_dir(p->models);
		/* a split model of the same name is replaced too */
		if (rm_tree(p->dir, err) < 0 || rm_tree(p->staging, err) < 0)
			return -1;
		return 0;
	}
	if (rename(p->staging, p->dir) < 0) {
		if (errno != EEXIST && errno != ENOTEMPTY && errno != EISDIR)
			return lemon_err_errno(err, errno, p->dir);
		if (renameat2(AT_FDCWD, p->staging, AT_FDCWD, p->dir,
			      RENAME_EXCHANGE) < 0)
			return lemon_err_errno(err, errno, p->dir);
		fsync_dir(p->models);
		if (rm_tree(p->staging, err) < 0)
			return -1;
	}
	fsync_dir(p->models);
	if (unlink(p->file) < 0 && errno != ENOENT)
		return lemon_err_errno(err, errno, p->file);
	return 0;
}

static void report(provision_pull_cb cb, void *ctx,
		   const struct compat_model *m, const char *status)
{
	struct provision_pull_progress pp = { 0 };

	if (cb == NULL)
		return;
	pp.model = m->name;
	pp.status = status;
	pp.n_parts = m->n_files;
	pp.part = m->n_files;
	cb(ctx, &pp);
}

static int pull_locked(const struct compat_model *m,
		       const struct pull_paths *p, provision_pull_cb cb,
		       void *ctx, struct lemon_err *err)
{
	char path[4400];
	int i;

	if (backends_mkdirs(p->staging, err) < 0 ||
	    provision_pull_files(m, p->staging, cb, ctx, err) < 0)
		return -1;
	for (i = 0; i < m->n_files; i++) {
		snprintf(path, sizeof(path), "%s/%s", p->staging,
			 base_name(m->files[i].file));
		if (check_gguf(path, err) < 0) {
			/* not a model: start afresh next time */
			rm_tree(p->staging, NULL);
			return -1;
		}
	}
	report(cb, ctx, m, "writing manifest");
	if (publish(m, p, err) < 0)
		return -1;
	report(cb, ctx, m, "success");
	return 0;
}

int backends_pull_model(const char *data_dir, const char *name,
			provision_pull_cb progress, void *ctx,
			struct lemon_err *err)
{
	const struct compat_model *m;
	struct compat_models *reg = NULL;
	struct pull_paths p;
	int fd, rc;

	if (make_paths(data_dir, name, &p, err) < 0 ||
	    compat_models_load(NULL, NULL, &reg, err) < 0)
		return -1;
	if (compat_model_find(reg, name, &m, err) < 0 ||
	    backends_mkdirs(p.models, err) < 0) {
		compat_models_free(reg);
		return -1;
	}
	fd = open(p.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		compat_models_free(reg);
		return lemon_err_errno(err, errno, p.lock);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		compat_models_free(reg);
		return lemon_err_set(err, LEMON_ERR_BUSY,
				     "a pull of '%s' is already running", name);
	}
	rc = pull_locked(m, &p, progress, ctx, err);
	close(fd);
	compat_models_free(reg);
	return rc;
}

int backends_delete_model(const char *data_dir, const char *name,
			  struct lemon_err *err)
{
	struct pull_paths p;
	struct stat st;
	bool found = false;

	if (make_paths(data_dir, name, &p, err) < 0)
		return -1;
	if (lstat(p.file, &st) == 0) {
		found = true;
		if (unlink(p.file) < 0)
			return lemon_err_errno(err, errno, p.file);
	}
	if (lstat(p.dir, &st) == 0) {
		found = true;
		if (rm_tree(p.dir, err) < 0)
			return -1;
	}
	if (rm_tree(p.staging, err) < 0)
		return -1;
	unlink(p.lock);
	if (!found)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "model '%s' not found in %s", name, p.models);
	fsync_dir(p.models);
	return 0;
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
		if (strncmp(de->d_name + n - 20, "-00001-of-", 10) == 0)
			lemon_str_copy(best, sizeof(best), path);
	}
	closedir(d);
	if (best[0] == 0 || !lemon_str_copy(out, cap, best))
		return -1;
	return 0;
}
