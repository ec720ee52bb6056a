/* Registry pulls into the model store. The download is the provision
 * layer's, the layout and publication the store's (store.c); this file
 * ties them: under the name's lock it opens one .part per file in the
 * staging directory (kept across failures so the next pull resumes), has
 * the provisioner fill and hash them through those descriptors, checks
 * every file as a whole GGUF through the same descriptors and publishes
 * them: a file model as <name>.gguf, a split set as the directory <name>/,
 * so a reader sees the old model or the new, never a mix, and never a file
 * other than the one verified. A vision projector the registry names is
 * one more part of the same pull (staging/+mmproj.part: '+' is in no
 * registry file name), checked as a GGUF of architecture clip, staged
 * before the model is published and renamed into place as
 * <name>.mmproj.gguf just after it, under the same lock: a projector that
 * fails to download or verify publishes nothing, and a model that fails to
 * publish leaves the old model with its old projector. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backends-private.h"
#include "backends/store-private.h"
#include "compat/compat.h"

#define MMPROJ_PART "+mmproj"

/* the model's parts, then the projector's when there is one */
struct pull_parts {
	int n;
	int fds[COMPAT_MODEL_MAX_PARTS + 1];
	char paths[COMPAT_MODEL_MAX_PARTS + 1][BACKENDS_STORE_PATH_MAX];
	const char *path_ptr[COMPAT_MODEL_MAX_PARTS + 1];
	const char *names[COMPAT_MODEL_MAX_PARTS + 1];
};

static const char *base_name(const char *file)
{
	const char *s = strrchr(file, '/');

	return s ? s + 1 : file;
}

static void report(provision_pull_cb cb, void *ctx,
		   const struct compat_model *m, const char *status)
{
	struct provision_pull_progress pp = { 0 };

	if (cb == NULL)
		return;
	pp.model = m->name;
	pp.status = status;
	pp.n_parts = m->n_files + (m->mmproj.file[0] ? 1 : 0);
	pp.part = pp.n_parts;
	cb(ctx, &pp);
}

static void close_parts(struct pull_parts *pp)
{
	int i;

	for (i = 0; i < pp->n; i++)
		close(pp->fds[i]);
	pp->n = 0;
}

static int open_parts(const struct compat_model *m,
		      const struct backends_store_paths *p,
		      struct pull_parts *pp, struct lemon_err *err)
{
	int i;

	pp->n = 0;
	for (i = 0; i < m->n_files + (m->mmproj.file[0] ? 1 : 0); i++) {
		pp->names[i] = i < m->n_files ? base_name(m->files[i].file) :
						MMPROJ_PART;
		pp->path_ptr[i] = pp->paths[i];
		if (backends_store_open_part(p, pp->names[i], &pp->fds[i],
					     pp->paths[i], sizeof(pp->paths[i]),
					     err) < 0)
			return -1;
		pp->n = i + 1;
	}
	return 0;
}

/* every part a whole GGUF, checked through the descriptor that will be
 * published; messages name the file the part becomes */
static int check_parts(const struct compat_model *m,
		       const struct backends_store_paths *p,
		       const struct pull_parts *pp, struct lemon_err *err)
{
	char label[BACKENDS_STORE_PATH_MAX + 320];
	int i;

	for (i = 0; i < pp->n; i++) {
		snprintf(label, sizeof(label), "%s/%s", p->staging,
			 i < m->n_files ? pp->names[i] : base_name(m->mmproj.file));
		if (i < m->n_files ?
			    backends_store_check(pp->fds[i], label, NULL, err) < 0 :
			    backends_mmproj_check(pp->fds[i], label, err) < 0)
			return -1;
	}
	return 0;
}

/* true when the model's first file in the store is fd's inode: what a
 * publication that reported a failure after its rename did put in place */
static bool in_place(const struct compat_model *m,
		     const struct backends_store_paths *p,
		     const struct pull_parts *pp)
{
	char path[BACKENDS_STORE_PATH_MAX + 320];
	struct stat a, b;

	if (m->n_files == 1)
		snprintf(path, sizeof(path), "%s", p->file);
	else
		snprintf(path, sizeof(path), "%s/%s", p->dir, pp->names[0]);
	return fstat(pp->fds[0], &a) == 0 && stat(path, &b) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/* the model first, then its projector: the projector is staged (verified,
 * durable, invisible) before the model is published and renamed into
 * place after it, so a model that fails to publish leaves the old model
 * with its old projector untouched, and the old model is never paired
 * with the new projector (a reader between the two renames sees the new
 * model with the old projector, for the length of one rename) */
static int publish_held(const struct compat_model *m,
			const struct backends_store_paths *p,
			const struct pull_parts *pp, struct lemon_err *err)
{
	int n = m->n_files, rc;
	bool mm = m->mmproj.file[0] != 0;

	if (mm && backends_mmproj_stage(p, pp->fds[n], pp->paths[n], err) < 0)
		return -1;
	rc = n == 1 ? backends_store_publish_file(p, pp->fds[0], pp->paths[0], err) :
		      backends_store_publish_split(p, n, pp->fds, pp->path_ptr,
						   pp->names, err);
	/* an entry that names no projector (any more): the old one is not
	 * the new model's, so it goes once the model is in place */
	if (!mm) {
		if (rc < 0 && !in_place(m, p, pp))
			return -1;
		if (backends_mmproj_drop(p, rc < 0 ? NULL : err) < 0)
			return -1;
		return rc;
	}
	if (rc < 0 && !in_place(m, p, pp)) {
		backends_mmproj_unstage(p);
		return -1;
	}
	/* the model is in place (a failure after its rename still put it
	 * there): its projector goes with it */
	if (backends_mmproj_commit(p, rc < 0 ? NULL : err) < 0)
		return -1;
	return rc;
}

/* under the pair lock (mmproj.c), so no start loads a mix of the old
 * files and the new; every byte synced first, so the starts it waits for
 * and that wait for it are held up by renames only */
static int publish(const struct compat_model *m,
		   const struct backends_store_paths *p,
		   const struct pull_parts *pp, const atomic_bool *cancel,
		   struct lemon_err *err)
{
	int i, fd, rc;

	for (i = 0; i < pp->n; i++)
		if (fsync(pp->fds[i]) < 0)
			return lemon_err_errno_path(err, errno, "syncing", pp->paths[i]);
	/* a crashed publication's leftover, removed before the lock */
	if (backends_store_sweep(p, err) < 0 ||
	    backends_pair_lock(p, cancel, &fd, err) < 0)
		return -1;
	backends_mmproj_recover(p); /* an interrupted publication's */
	rc = publish_held(m, p, pp, err);
	backends_pair_release(fd);
	/* the replaced split tree, deleted once no start waits for it */
	if (backends_store_sweep(p, rc < 0 ? NULL : err) < 0 && rc == 0)
		rc = -1;
	return rc;
}

static int pull_locked(const struct compat_model *m,
		       const struct backends_store_paths *p,
		       const atomic_bool *cancel, provision_pull_cb cb,
		       void *ctx, struct lemon_err *err)
{
	struct provision_pull_opts po = { 0 };
	struct pull_parts *pp = calloc(1, sizeof(*pp));
	int rc;

	if (pp == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	rc = open_parts(m, p, pp, err);
	po.fds = pp->fds;
	po.paths = pp->path_ptr;
	po.cancel = cancel;
	po.cb = cb;
	po.ctx = ctx;
	if (rc == 0 && provision_pull_files(m, &po, err) < 0) {
		/* a wrong digest starts afresh; a cut transfer resumes */
		if (err && err->code == LEMON_ERR_CHECKSUM)
			backends_store_discard(p, NULL);
		rc = -1;
	}
	if (rc == 0 && check_parts(m, p, pp, err) < 0) {
		backends_store_discard(p, NULL); /* not a model: start afresh */
		rc = -1;
	}
	if (rc == 0) {
		report(cb, ctx, m, "writing manifest");
		rc = publish(m, p, pp, cancel, err);
	}
	close_parts(pp);
	free(pp);
	if (rc == 0)
		report(cb, ctx, m, "success");
	return rc;
}

static int pull(const char *data_dir, const char *name,
		const atomic_bool *cancel, provision_pull_cb progress,
		void *ctx, struct lemon_err *err)
{
	const struct compat_model *m;
	struct compat_models *reg = NULL;
	struct backends_store_paths p;
	int fd, rc;

	if (backends_store_paths(data_dir, name, &p, err) < 0 ||
	    compat_models_load(NULL, NULL, &reg, err) < 0)
		return -1;
	if (compat_model_find(reg, name, &m, err) < 0 ||
	    (strcmp(m->recipe, "flm") == 0 &&
	     lemon_err_set(err, LEMON_ERR_INVALID_ARG,
			   "model '%s' runs on FastFlowLM, which fetches its own models: nothing to pull",
			   name) < 0) ||
	    backends_store_lock(&p, &fd, err) < 0) {
		compat_models_free(reg);
		return -1;
	}
	rc = pull_locked(m, &p, cancel, progress, ctx, err);
	backends_store_unlock(fd);
	compat_models_free(reg);
	return rc;
}

int backends_pull_model(const char *data_dir, const char *name,
			provision_pull_cb progress, void *ctx,
			struct lemon_err *err)
{
	return pull(data_dir, name, NULL, progress, ctx, err);
}

int backends_pull(struct backends *b, const char *name,
		  provision_pull_cb progress, void *ctx, struct lemon_err *err)
{
	if (atomic_load(&b->pulls_cancelled))
		return lemon_err_set(err, LEMON_ERR_BUSY,
				     "pull of '%s' refused: lemon is shutting down",
				     name);
	return pull(b->data_dir, name, &b->pulls_cancelled, progress, ctx,
		    err);
}

void backends_cancel_pulls(struct backends *b)
{
	if (b != NULL)
		atomic_store(&b->pulls_cancelled, true);
}
