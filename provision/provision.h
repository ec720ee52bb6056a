/* provision: puts a llama.cpp backend bundle (or FastFlowLM) on the
 * machine. It downloads the asset named by compat's backend manifest (or
 * a mirror), verifies its
 * SHA-256 while the bytes arrive, unpacks it into a private staging
 * directory with every path checked, and renames it into
 * $XDG_DATA_HOME/lemon/backends/<backend>-<target>-<version>/ under a lock,
 * recording it in installed.json. A failed or interrupted install leaves
 * the previous one untouched. */
#ifndef LEMON_PROVISION_H
#define LEMON_PROVISION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compat/compat.h"
#include "util/err.h"

enum provision_progress {
	PROVISION_PROGRESS_AUTO = 0, /* bar when stderr is a TTY, else none */
	PROVISION_PROGRESS_BAR,
	PROVISION_PROGRESS_JSON,     /* JSON lines on stderr */
	PROVISION_PROGRESS_NONE,
};

struct provision_opts {
	const char *version;  /* NULL: the pinned (or the mirror's) version */
	const char *mirror;   /* NULL: LEMON_MIRROR, else the publisher */
	const char *data_dir; /* NULL: $XDG_DATA_HOME/lemon, ~/.local/share/lemon */
	bool force;           /* reinstall even when installed and working */
	bool insecure_skip_verify;
	enum provision_progress progress;
	/* an extra check of a new bundle before it becomes the current one
	 * (after `llama-server --version` passed), e.g. a health check with
	 * a small model; NULL: none. exe is the staged executable. */
	int (*smoke)(void *ctx, const char *exe, struct lemon_err *err);
	void *smoke_ctx;
	/* told the bytes of the asset on disk (total 0 when unknown) at most
	 * ~4 times a second and once at the end of the download, whatever
	 * progress says, so a server can relay them; NULL: not called */
	void (*on_progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
	/* told (with progress_ctx) when the download resumes a .part an
	 * earlier attempt kept, before any on_progress of that download:
	 * done then includes those bytes, which this attempt did not
	 * download; NULL: not called */
	void (*on_resume)(void *ctx, uint64_t kept);
	/* NULL, or set to end the download within about a second (BUSY; the
	 * previous bundle stays current), e.g. when a server shuts down */
	const atomic_bool *cancel;
};

struct provision_result {
	char name[40];
	char version[32];
	char asset[128];
	char dir[4096];      /* the install directory */
	char exe[4096];      /* absolute path of llama-server */
	bool already;        /* it was installed and working; nothing done */
	char previous[32];   /* the version kept for rollback, "" if none */
	char removed[32];    /* the older version deleted (two are kept) */
	bool unavailable;    /* on failure: the asset does not exist or cannot
			      * be verified, so another backend may serve */
};

/* "llamacpp:cpu", "llamacpp:vulkan", "llamacpp:rocm:gfx110X",
 * "llamacpp:rocm:gfx1101", "llamacpp:cuda:sm_89" or "flm" (FastFlowLM,
 * the NPU runtime). *needs_target is set
 * (and *out NULL) for "llamacpp:rocm" or "llamacpp:cuda" without a
 * target, which detection must complete.
 * Unknown names are NOT_FOUND with "unknown backend name '...'". */
int provision_find(const struct compat_backends *bm, const char *name,
		   const struct compat_backend_asset **out, bool *needs_target,
		   struct lemon_err *err);

/* installs one bundle; see the file comment. On failure res->unavailable
 * tells the caller whether trying the next candidate makes sense. */
int provision_install(const struct compat_backend_asset *a,
		      const struct provision_opts *opts,
		      struct provision_result *res, struct lemon_err *err);

#define PROVISION_MAX_INSTALLED 32

struct provision_installed {
	char name[40];     /* "llamacpp:cpu" */
	char kind[16];     /* "cpu", "vulkan", "rocm", "cuda" */
	char family[16];   /* rocm family, cuda sm_NN, "" otherwise */
	char version[32];
	char asset[128];
	char sha256[65];   /* "" when installed with --insecure-skip-verify */
	char dir[4096];    /* absolute install directory */
	char exe[4096];    /* absolute path of llama-server */
	int64_t installed_at;
	bool works;        /* the executable is there and executable */
	char problem[160]; /* why not, when !works */
	bool previous;     /* the version kept for rollback, not the current */
};

/* reads installed.json (a missing file is an empty list): the current
 * version of each installed backend, which `lemon serve` uses */
int provision_list(const char *data_dir, struct provision_installed *out,
		   int cap, int *n, struct lemon_err *err);
/* the same with the versions kept for rollback (previous set) */
int provision_list_all(const char *data_dir, struct provision_installed *out,
		       int cap, int *n, struct lemon_err *err);

/* makes the version kept for rollback of name the current one and the
 * current one the kept one; *now receives the new current entry.
 * NOT_FOUND when name has no kept version, BROKEN_SYSTEM when the kept
 * version's executable is gone. A running `lemon serve` keeps the
 * version it resolved at its start (both stay on disk). */
int provision_rollback(const char *data_dir, const char *name,
		       struct provision_installed *now, char *from, size_t from_cap,
		       struct lemon_err *err);

/* removes an installed backend by name ("llamacpp:cpu", with its kept
 * version) or install directory name; NOT_FOUND when it is not installed */
int provision_uninstall(const char *data_dir, const char *name,
			struct lemon_err *err);

/* the backends directory ($XDG_DATA_HOME/lemon/backends) */
int provision_backends_dir(const char *data_dir, char *out, size_t cap,
			   struct lemon_err *err);

/* unpacks a zip or tar.* archive file into the existing directory dest,
 * refusing absolute paths, "..", links that leave dest, device files and
 * more than max_bytes of content (0: the default limit) */
int provision_unpack_file(const char *archive_path, const char *dest,
			  uint64_t max_bytes, struct lemon_err *err);

/* ---- model pull (provision/pull.c) -------------------------------------
 * Downloads a registry model's GGUF file(s) from Hugging Face (or the
 * HF_ENDPOINT mirror): <endpoint>/<repo>/resolve/main/<file>, HF_TOKEN
 * sent as a bearer token when set. The bytes land in .part files the
 * caller has opened (resumed from what they hold, retried on transient
 * failures) and each is checked against the registry's SHA-256, else the
 * server's X-Linked-Etag / ETag LFS oid; when neither is known the file is
 * kept with its computed digest reported. A projector the registry names
 * (m->mmproj, digest mandatory) is one more file of the same pull, after
 * the model's, so progress and totals cover both. Naming and publishing the files
 * is the backends layer's job (backends_pull_model): this layer never
 * renames or removes them, so the caller publishes exactly the descriptor
 * whose bytes were hashed. */

/* what the progress callback is told; strings live until it returns */
struct provision_pull_progress {
	const char *model;    /* registry name */
	const char *status;   /* "pulling manifest", "downloading",
			       * "verifying sha256 digest", "writing manifest",
			       * "success" (the last two come from backends) */
	const char *file;     /* current file, NULL before the first */
	const char *digest;   /* "sha256:<hex>" once known, else NULL */
	int part, n_parts;    /* 1-based index of the current file */
	uint64_t completed;   /* bytes of the current file on disk */
	uint64_t total;       /* its size, 0 when unknown */
	uint64_t all_completed; /* bytes of every part so far */
	uint64_t all_total;   /* sum of the part sizes, 0 when one is unknown */
};

typedef void (*provision_pull_cb)(void *ctx,
				  const struct provision_pull_progress *p);

struct provision_pull_opts {
	const int *fds;            /* one open .part per file of the model,
				    * then one for its vision projector when
				    * m->mmproj names one (the last part):
				    * read-write, O_APPEND; the caller's */
	const char *const *paths;  /* their paths, for messages only */
	const atomic_bool *cancel; /* NULL, or ends the transfer within about
				    * a second once set (BUSY) */
	provision_pull_cb cb;      /* may be NULL */
	void *ctx;
};

/* the host to pull from: HF_ENDPOINT without trailing '/', else
 * https://huggingface.co */
int provision_hf_endpoint(char *out, size_t cap, struct lemon_err *err);

/* downloads every file of m into o->fds (see above); o->cb is called at
 * most ~10 times a second per file while bytes arrive. CHECKSUM "<file>:
 * sha256 mismatch: expected X, got Y" (that .part is truncated so the next
 * try starts afresh); NETWORK / NOT_FOUND from the transfer and BUSY when
 * cancelled (the bytes so far stay for a resume). */
int provision_pull_files(const struct compat_model *m,
			 const struct provision_pull_opts *o,
			 struct lemon_err *err);

/* ---- end of model pull ------------------------------------------------- */

#endif
