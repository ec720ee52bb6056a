/* The model store's layout and its rules, for backends/ only (store.c owns
 * them; pull.c and models.c go through these functions, never through
 * paths of their own). A model NAME lives in <data>/models as
 *   NAME.gguf            a single-file model
 *   NAME/                a split model: every part under its split name
 *   .pull-NAME/          an unfinished registry pull: one .part per file,
 *                        kept across failures so the next pull resumes
 *   .pull-NAME.lock      the name's lock (flock): held by a pull, an import
 *                        and a delete of NAME for all of their work; the
 *                        file is never unlinked, so two lockers can never
 *                        hold locks on two different files
 *   .pull-NAME.new       what is being published (a link of the verified
 *                        file, or a directory of the verified parts)
 *   .pull-NAME.import    the copy an import writes and checks
 *   .pull-NAME.mmproj.ready  a pull's verified projector, renamed to
 *                        NAME.mmproj.gguf once the model is published;
 *                        made only under the pair lock exclusive, so one
 *                        seen by a holder of the pair lock is an
 *                        interrupted publication's (backends_mmproj_recover:
 *                        starts, pulls; a delete removes it)
 *   .pull-NAME.pair      held shared by a start from before it resolves
 *                        the model until its child is ready or gone, and
 *                        exclusive by a pull's publication (mmproj.c), so
 *                        no child loads half of a publication; never
 *                        unlinked, like the lock
 * Every name starting with '.' is invisible to listing (model names never
 * start with '.'). */
#ifndef LEMON_BACKENDS_STORE_PRIVATE_H
#define LEMON_BACKENDS_STORE_PRIVATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "backends/backends.h"

#define BACKENDS_STORE_PATH_MAX 4300

struct backends_store_paths {
	char name[BACKENDS_NAME_MAX];
	char models[4096];
	char file[BACKENDS_STORE_PATH_MAX];    /* NAME.gguf */
	char dir[BACKENDS_STORE_PATH_MAX];     /* NAME/ */
	char staging[BACKENDS_STORE_PATH_MAX]; /* .pull-NAME/ */
	char lock[BACKENDS_STORE_PATH_MAX];    /* .pull-NAME.lock */
	char next[BACKENDS_STORE_PATH_MAX];    /* .pull-NAME.new */
	char import[BACKENDS_STORE_PATH_MAX];  /* .pull-NAME.import */
};

/* the paths of name in the store of data_dir (NULL: the default data
 * directory); INVALID_ARG for a bad name, TOO_LARGE for a path too long */
int backends_store_paths(const char *data_dir, const char *name,
			 struct backends_store_paths *p, struct lemon_err *err);

/* copies the regular file src into the store as p's file and mmsrc as
 * q's (a vision projector, checked as one: mmproj.c), either NULL for
 * none, under p's lock (the model's own name); every copy is checked as a
 * whole GGUF before any is published, and they are published together
 * under the pair lock exclusive, the model first */
int backends_store_import(const struct backends_store_paths *p,
			  const char *src, const struct backends_store_paths *q,
			  const char *mmsrc, struct backends_gguf_info *info,
			  struct lemon_err *err);

/* creates the models directory and takes name's lock without waiting:
 * BUSY "a pull of 'NAME' is already running" while another process or
 * thread holds it. *fd is the lock; backends_store_unlock releases it. */
int backends_store_lock(const struct backends_store_paths *p, int *fd,
			struct lemon_err *err);
void backends_store_unlock(int fd);

/* opens (creating) staging/<base>.part for a download: read-write,
 * O_APPEND, close-on-exec; its path goes to path. The lock is held. */
int backends_store_open_part(const struct backends_store_paths *p,
			     const char *base, int *fd, char *path, size_t cap,
			     struct lemon_err *err);

/* checks that the file open at fd is a whole GGUF model: its header parses
 * and the file holds every byte of tensor data the header describes
 * (INVALID_DATA naming the expected and the actual size otherwise). label
 * prefixes the messages. info may be NULL. */
int backends_store_check(int fd, const char *label,
			 struct backends_gguf_info *info,
			 struct lemon_err *err);

/* publishes the verified file open at fd (written under the path staged)
 * as NAME.gguf, replacing a model of that name (a split one too), and
 * removes staging. The inode published is fd's own: linkat of the
 * descriptor, or where the kernel refuses that to this process, a rename
 * of staged after checking that it still names fd's inode. Durable when
 * it returns 0. The lock is held. */
int backends_store_publish_file(const struct backends_store_paths *p, int fd,
				const char *staged, struct lemon_err *err);

/* the same for the n verified parts of a split model: fds[i], written
 * under staged[i], become NAME/names[i], the directory swapped in whole.
 * Both leave the model they replaced, when it was a split one, at next:
 * the caller removes it with backends_store_sweep once it has let go of
 * the pair lock, so a start never waits for a large tree to be deleted */
int backends_store_publish_split(const struct backends_store_paths *p, int n,
				 const int *fds, const char *const *staged,
				 const char *const *names,
				 struct lemon_err *err);

/* vision projectors (mmproj.c), for a registry pull holding p's lock:
 * check that fd is a whole GGUF of architecture clip (INVALID_DATA
 * otherwise). A projector is published after its model, so a model that
 * fails to publish leaves the old model with its old projector: stage
 * makes the verified fd durable as .pull-NAME.mmproj.ready (like
 * backends_store_publish_file; staged is unlinked, what a reader sees is
 * unchanged), commit renames that over <models>/NAME.mmproj.gguf once the
 * model is in place, unstage removes it when the model was not published */
int backends_mmproj_check(int fd, const char *label, struct lemon_err *err);
int backends_mmproj_stage(const struct backends_store_paths *p, int fd,
			  const char *staged, struct lemon_err *err);
int backends_mmproj_commit(const struct backends_store_paths *p,
			   struct lemon_err *err);
void backends_mmproj_unstage(const struct backends_store_paths *p);
/* removes NAME.mmproj.gguf (none: 0): a re-pull whose entry names no
 * projector, once its model is published, under the pair lock */
int backends_mmproj_drop(const struct backends_store_paths *p,
			 struct lemon_err *err);
/* an interrupted publication's leftover .pull-NAME.mmproj.ready: there
 * (leftover), and put right holding the pair lock exclusive (recover:
 * renamed into place when the model in place is that publication's,
 * removed otherwise) */
bool backends_mmproj_leftover(const struct backends_store_paths *p);
void backends_mmproj_recover(const struct backends_store_paths *p);

/* the pair lock (mmproj.c). hold: shared, for a start of name (data_dir
 * NULL: the default), waiting at most BACKENDS_PAIR_WAIT_MS for a
 * publication to end, and not once stop is set (a shutdown); -1 (no
 * lock, *fd -1) when it could not be had.
 * lock: exclusive, for a pull's publication holding p's lock, waiting for
 * the starts loading the model until cancel is set (BUSY then). */
#define BACKENDS_PAIR_WAIT_MS 5000
int backends_pair_hold(const char *data_dir, const char *name,
		       const atomic_bool *stop, int *fd);
int backends_pair_lock(const struct backends_store_paths *p,
		       const atomic_bool *cancel, int *fd, struct lemon_err *err);
void backends_pair_release(int fd);

/* removes next (a replaced split tree, a crashed publication's); the
 * name's lock is held, the pair lock need not be */
int backends_store_sweep(const struct backends_store_paths *p,
			 struct lemon_err *err);

/* removes staging (a pull that must start afresh). The lock is held. */
int backends_store_discard(const struct backends_store_paths *p,
			   struct lemon_err *err);

#endif
