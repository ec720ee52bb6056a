/* vision projectors (llama.cpp's --mmproj): a model NAME may have one
 * stored beside it as <models>/NAME.mmproj.gguf, imported with
 * `lemon pull --file PATH --mmproj PROJ NAME` or pulled with a registry
 * entry that names one (pull.c); its presence is what makes
 * the chat child start with --mmproj and what /api/show calls "vision" */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backends-private.h"
#include "backends/store-private.h"
#include "util/fs.h"
#include "util/str.h"

#define MMPROJ_EXT ".mmproj.gguf"

static bool regular(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool backends_mmproj_beside(const char *model_path, char *out, size_t cap)
{
	const char *slash;
	size_t n = strlen(model_path);
	struct stat st;
	int w;

	if (n <= 5 || strcmp(model_path + n - 5, ".gguf") != 0)
		return false;
	/* a file model NAME.gguf: NAME.mmproj.gguf */
	w = snprintf(out, cap, "%.*s%s", (int)(n - 5), model_path, MMPROJ_EXT);
	if (w >= 0 && (size_t)w < cap && regular(out))
		return true;
	/* a split model NAME/x-00001-of-N.gguf: its projector is the name's,
	 * NAME.mmproj.gguf beside the directory (a pull publishes it there:
	 * the directory is swapped whole, the projector is not one of its
	 * parts) */
	slash = strrchr(model_path, '/');
	if (slash == NULL || slash == model_path || !backends_split_is_first(model_path, n))
		return false;
	w = snprintf(out, cap, "%.*s", (int)(slash - model_path), model_path);
	if (w < 0 || (size_t)w >= cap || stat(out, &st) < 0 || !S_ISDIR(st.st_mode))
		return false;
	w = snprintf(out, cap, "%.*s%s", (int)(slash - model_path), model_path,
		     MMPROJ_EXT);
	return w >= 0 && (size_t)w < cap && regular(out);
}

bool backends_model_has_mmproj(const char *data_dir, const char *name)
{
	char path[4096], mm[4096];

	return backends_model_path(data_dir, name, path, sizeof(path), NULL) == 0 &&
	       backends_mmproj_beside(path, mm, sizeof(mm));
}

/* q: the store paths of name's projector, the model's own with the file
 * names changed, so import and publish (store.c) work on it unchanged */
static int mmproj_paths(const struct backends_store_paths *p,
			struct backends_store_paths *q, struct lemon_err *err)
{
	int a, b, c, d, e;

	*q = *p;
	a = snprintf(q->file, sizeof(q->file), "%s/%s%s", p->models, p->name,
		     MMPROJ_EXT);
	b = snprintf(q->dir, sizeof(q->dir), "%s/%s.mmproj", p->models, p->name);
	c = snprintf(q->staging, sizeof(q->staging), "%s/.pull-%s.mmproj",
		     p->models, p->name);
	d = snprintf(q->next, sizeof(q->next), "%s/.pull-%s.mmproj.new",
		     p->models, p->name);
	e = snprintf(q->import, sizeof(q->import), "%s/.pull-%s.mmproj.import",
		     p->models, p->name);
	if (a < 0 || b < 0 || c < 0 || d < 0 || e < 0 ||
	    (size_t)a >= sizeof(q->file) || (size_t)b >= sizeof(q->dir) ||
	    (size_t)c >= sizeof(q->staging) || (size_t)d >= sizeof(q->next) ||
	    (size_t)e >= sizeof(q->import))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "model store path too long");
	return 0;
}

static int not_clip(const char *src, const char *arch, struct lemon_err *err)
{
	return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			     "%s: not a vision projector (architecture '%s', not 'clip')",
			     src, arch);
}

int backends_pull_file_mmproj(const char *data_dir, const char *src,
			      const char *mmsrc, const char *name,
			      struct backends_gguf_info *info,
			      struct lemon_err *err)
{
	struct backends_store_paths p, q;
	struct backends_gguf_info mm;
	struct stat st;

	if (backends_store_paths(data_dir, name, &p, err) < 0 ||
	    mmproj_paths(&p, &q, err) < 0)
		return -1;
	/* a projector is a GGUF of architecture "clip": a text model given
	 * by mistake is refused before any copy (the source is looked at
	 * first only when it is a regular file: a FIFO would block); the
	 * copy is what counts, checked as a projector before it is published */
	if (stat(mmsrc, &st) == 0 && S_ISREG(st.st_mode) &&
	    backends_gguf_read_file(mmsrc, &mm, NULL) == 0 &&
	    strcmp(mm.arch, "clip") != 0)
		return not_clip(mmsrc, mm.arch, err);
	return backends_store_import(&p, src, &q, mmsrc, info, err);
}

int backends_pull_mmproj(const char *data_dir, const char *src,
			 const char *name, struct lemon_err *err)
{
	return backends_pull_file_mmproj(data_dir, NULL, src, name, NULL, err);
}

int backends_mmproj_check(int fd, const char *label, struct lemon_err *err)
{
	struct backends_gguf_info info;

	if (backends_store_check(fd, label, &info, err) < 0)
		return -1;
	if (strcmp(info.arch, "clip") != 0)
		return not_clip(label, info.arch, err);
	return 0;
}

/* r: the paths a verified projector is staged under before the model is
 * published: publish_file links it to .pull-NAME.mmproj.new and renames
 * that to .pull-NAME.mmproj.ready, invisible to listing; its dir
 * NAME.mmproj and staging .pull-NAME.mmproj name nothing (NAME.mmproj is
 * no valid model name), so removing them removes nothing */
static int ready_paths(const struct backends_store_paths *p,
		       struct backends_store_paths *r, struct lemon_err *err)
{
	int n;

	if (mmproj_paths(p, r, err) < 0)
		return -1;
	n = snprintf(r->file, sizeof(r->file), "%s/.pull-%s.mmproj.ready",
		     p->models, p->name);
	if (n < 0 || (size_t)n >= sizeof(r->file))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "model store path too long");
	return 0;
}

int backends_mmproj_stage(const struct backends_store_paths *p, int fd,
			  const char *staged, struct lemon_err *err)
{
	struct backends_store_paths r;

	if (ready_paths(p, &r, err) < 0)
		return -1;
	/* durable and linked (the inode verified, never a path looked up
	 * again), but nothing a reader sees changes yet */
	return backends_store_publish_file(&r, fd, staged, err);
}

int backends_mmproj_commit(const struct backends_store_paths *p,
			   struct lemon_err *err)
{
	struct backends_store_paths q, r;

	if (mmproj_paths(p, &q, err) < 0 || ready_paths(p, &r, err) < 0)
		return -1;
	if (rename(r.file, q.file) < 0)
		return lemon_err_errno_path(err, errno, "publishing", q.file);
	return lemon_fsync_dir(p->models, err);
}

int backends_mmproj_drop(const struct backends_store_paths *p,
			 struct lemon_err *err)
{
	struct backends_store_paths q;

	if (mmproj_paths(p, &q, err) < 0)
		return -1;
	if (unlink(q.file) == 0)
		return lemon_fsync_dir(p->models, err);
	if (errno == ENOENT)
		return 0;
	return lemon_err_errno_path(err, errno, "removing", q.file);
}

static bool ctime_before(const struct stat *a, const struct stat *b)
{
	return a->st_ctim.tv_sec < b->st_ctim.tv_sec ||
	       (a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
		a->st_ctim.tv_nsec < b->st_ctim.tv_nsec);
}

/* A .ready outside an exclusive pair-lock section is what an interrupted
 * publication (SIGKILL, power loss, a failed commit) left: it is made
 * only under that lock (publish_held) and renamed or removed before the
 * lock is let go. Whether the model of that publication was published is
 * told by the change times: staging links the projector (its ctime), and
 * the model published after it is linked and renamed later still, so a
 * model whose ctime is not older than the .ready's is that publication's
 * (the projector goes with it); an older one is the model from before,
 * which keeps its old projector. The caller holds the pair lock
 * exclusive. */
void backends_mmproj_recover(const struct backends_store_paths *p)
{
	struct backends_store_paths q, r;
	struct stat rs, f, d;
	bool hf, hd;

	if (mmproj_paths(p, &q, NULL) < 0 || ready_paths(p, &r, NULL) < 0 ||
	    lstat(r.file, &rs) < 0)
		return;
	hf = stat(p->file, &f) == 0;
	hd = stat(p->dir, &d) == 0;
	if ((hf && !ctime_before(&f, &rs)) || (hd && !ctime_before(&d, &rs))) {
		if (rename(r.file, q.file) < 0)
			unlink(r.file);
	} else {
		unlink(r.file);
	}
	lemon_fsync_dir(p->models, NULL);
}

bool backends_mmproj_leftover(const struct backends_store_paths *p)
{
	struct backends_store_paths r;
	struct stat st;

	return ready_paths(p, &r, NULL) == 0 && lstat(r.file, &st) == 0;
}

void backends_mmproj_unstage(const struct backends_store_paths *p)
{
	struct backends_store_paths r;

	if (ready_paths(p, &r, NULL) == 0)
		unlink(r.file);
}

/* ---- the pair lock: a start never loads half of a publication ----------
 * A child opens the model and its projector by path while it loads, some
 * time after lemon chose them; a publication in between could give it the
 * old model with the new projector, or a split model's parts of two pulls.
 * So a start holds .pull-NAME.pair shared from before it resolves the
 * model until its child is ready or gone, and a pull's publication (its
 * renames only: every byte is synced before) holds it exclusive. It is
 * not the name's lock, which a pull holds for its whole download. */

static int pair_open(const struct backends_store_paths *p, struct lemon_err *err)
{
	char path[BACKENDS_STORE_PATH_MAX];
	int n, fd;

	n = snprintf(path, sizeof(path), "%s/.pull-%s.pair", p->models, p->name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "model store path too long");
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return lemon_err_errno_path(err, errno, "opening", path);
	return fd;
}

/* A start that finds a leftover .ready (an interrupted publication,
 * backends_mmproj_recover) tries once, without waiting, to take the pair
 * lock exclusive and put the pair right; it never waits for exclusive,
 * and never takes the name's lock, so it cannot deadlock with a pull
 * (which holds the name's lock and waits for the pair lock) nor with the
 * starts loading (which hold it shared): when it cannot have it, the pair
 * is put right by the next start, pull or delete that can. The name's lock
 * is not needed: a .ready is only made under the pair lock exclusive. */
static void pair_recover(const struct backends_store_paths *p, int l)
{
	if (!backends_mmproj_leftover(p) || flock(l, LOCK_EX | LOCK_NB) < 0)
		return;
	backends_mmproj_recover(p);
	flock(l, LOCK_UN);
}

int backends_pair_hold(const char *data_dir, const char *name,
		       const atomic_bool *stop, int *fd)
{
	struct backends_store_paths p;
	int l, i;

	*fd = -1;
	if (backends_store_paths(data_dir, name, &p, NULL) < 0 ||
	    (l = pair_open(&p, NULL)) < 0)
		return -1;
	pair_recover(&p, l);
	/* a publication is a few renames: bounded, so a publisher that is
	 * stopped (^Z) delays a start, never blocks it */
	for (i = 0; i < BACKENDS_PAIR_WAIT_MS / 10; i++) {
		if (flock(l, LOCK_SH | LOCK_NB) == 0) {
			*fd = l;
			return 0;
		}
		if (errno != EWOULDBLOCK || (stop && atomic_load(stop)))
			break; /* a shutdown does not wait for it */
		usleep(10000);
	}
	close(l);
	return -1;
}

void backends_pair_release(int fd)
{
	if (fd >= 0)
		close(fd);
}

int backends_pair_lock(const struct backends_store_paths *p,
		       const atomic_bool *cancel, int *fd, struct lemon_err *err)
{
	int l = pair_open(p, err);

	*fd = -1;
	if (l < 0)
		return -1;
	/* waits for the starts that are loading this model (each ends at its
	 * start deadline at the latest); a shutdown cancels the wait */
	while (flock(l, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			lemon_err_errno(err, errno, "locking the model's files");
			close(l);
			return -1;
		}
		if (cancel && atomic_load(cancel)) {
			close(l);
			return lemon_err_set(err, LEMON_ERR_BUSY,
					     "pull of '%s' cancelled: lemon is shutting down",
					     p->name);
		}
		usleep(20000);
	}
	*fd = l;
	return 0;
}
