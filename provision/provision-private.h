/* Internal interfaces of the provision layer: the downloader, the safe
 * unpacker, the per-library error tables, progress output, installed.json
 * and the file-system helpers. Only the files in provision/ include it. */
#ifndef LEMON_PROVISION_PRIVATE_H
#define LEMON_PROVISION_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "provision/provision.h"

struct archive;

/* ---- error tables (errmap.c): one per library, used at the boundary --- */

/* CURLcode (as int, so callers need no curl header) plus the HTTP status
 * and curl's error buffer; 404 is NOT_FOUND naming the URL */
int provision_err_curl(struct lemon_err *err, int code, long http_status,
		  const char *url, const char *detail);
/* libarchive: errno-backed failures map like errno, the rest is
 * INVALID_DATA "<what>: corrupt archive: ..." */
int provision_err_archive(struct lemon_err *err, struct archive *ar,
		     const char *what);
/* OpenSSL: drains the error queue into one message */
int provision_err_openssl(struct lemon_err *err, const char *what);
/* ISA-L inflate return codes */
int provision_err_isal(struct lemon_err *err, int code, const char *what);
/* errno with specific words for disk full and permission denied */
int provision_err_errno(struct lemon_err *err, int errnum, const char *what,
		   const char *path);

/* ---- progress (progress.c) -------------------------------------------- */

struct provision_meter {
	enum provision_progress mode; /* resolved: BAR, JSON or NONE */
	char label[128];
	uint64_t total;               /* 0 when unknown */
	uint64_t start_bytes;         /* resumed bytes, excluded from the rate */
	double t0;
	double last;
	double cb_last;               /* last on_progress call */
	bool drawn;
	void (*on_progress)(void *ctx, uint64_t done, uint64_t total);
	void (*on_resume)(void *ctx, uint64_t kept);
	void *progress_ctx;
};

void provision_progress_init(struct provision_meter *p, enum provision_progress mode,
			const char *label, uint64_t total);
void provision_progress_update(struct provision_meter *p, uint64_t done);
void provision_progress_event(struct provision_meter *p, const char *event,
			 const char *detail);
void provision_progress_finish(struct provision_meter *p, uint64_t done);
/* the download goes on from kept bytes already on disk (a .part) */
void provision_progress_resume(struct provision_meter *p, uint64_t kept,
			  const char *part_path);

/* ---- download (fetch.c) ----------------------------------------------- */

struct provision_fetch;

struct provision_fetch_opts {
	const char *url;
	const char *part_path;   /* bytes land here; an existing one is resumed */
	uint64_t expected_size;  /* 0 when unknown */
	struct provision_meter *progress; /* may be NULL */
	const char *bearer;      /* token sent to url's host only, or NULL */
	/* with part_fd_set: the .part is this open file (read-write,
	 * O_APPEND; the caller's, a duplicate is used) and part_path only
	 * names it in messages */
	bool part_fd_set;
	int part_fd;
	const atomic_bool *cancel; /* NULL, or set to end the transfer (BUSY) */
};

int provision_fetch_open(const struct provision_fetch_opts *o, struct provision_fetch **out,
		    struct lemon_err *err);
/* next bytes of the file in order (resumed bytes first); *len 0 at the
 * end. The buffer stays valid until the next call. Retries transient
 * failures with backoff, resuming with Range. */
int provision_fetch_read(struct provision_fetch *f, const void **buf, size_t *len,
		    struct lemon_err *err);
/* reads to the end, then gives the SHA-256 (hex) and size of the file */
int provision_fetch_finish(struct provision_fetch *f, char sha_hex[65], uint64_t *size,
		      struct lemon_err *err);
void provision_fetch_free(struct provision_fetch *f);

/* what a HEAD request (redirects not followed, since Hugging Face puts
 * the LFS facts on its redirect) says about a file */
struct provision_head {
	long status;
	uint64_t size;       /* X-Linked-Size, else Content-Length; 0 unknown */
	char sha256[65];     /* X-Linked-Etag, else an ETag of 64 hex; "" */
};

int provision_fetch_head(const char *url, const char *bearer, struct provision_head *h,
		    struct lemon_err *err);

/* a small document (the mirror's manifest.json) into a malloc'd,
 * NUL-terminated buffer of at most max bytes */
int provision_fetch_small(const char *url, size_t max, char **out, size_t *len,
		     struct lemon_err *err);

/* the options every request shares: URL, redirects (never from https to
 * http), TLS verification, timeouts, fail on HTTP errors, user agent;
 * curl is a CURL * (void here so callers need no curl header) */
void provision_curl_setup(void *curl, const char *url, char *errbuf);

/* ---- publisher release listings (release.c, github.c) ------------------ */

#define PROVISION_RELEASE_MAX_ASSETS 1000 /* GitHub's limit per release */
#define PROVISION_RELEASE_MAX_BYTES (8u << 20)

struct provision_release_asset {
	char name[256];
	char url[1024];      /* browser_download_url */
	uint64_t size;
	char sha256[65];     /* GitHub's digest, "" when it lists none */
};

struct provision_release {
	char tag[32];
	int n;
	struct provision_release_asset *assets; /* malloc'd, n of them */
};

/* parses GitHub's release JSON (len bytes, need not be NUL-terminated)
 * for tag into r (free with provision_release_free); what names the
 * source in messages. INVALID_DATA for anything that is not a release of
 * that tag with well-formed assets (a name usable as a file name, a whole
 * size, an http(s) URL, a digest that is "sha256:<hex>" or another
 * algorithm's), TOO_LARGE past the byte or asset limits. Assets whose
 * upload never finished (state other than "uploaded") are left out. */
int provision_release_parse(const char *text, size_t len, const char *tag,
			    const char *what, struct provision_release *r,
			    struct lemon_err *err);
void provision_release_free(struct provision_release *r);
/* exactly 64 lower-case hex digits, as lemon writes a SHA-256 */
bool provision_sha256_hex(const char *s);

/* true when name fits the target's declared pattern: ends in its format;
 * among its '-'-separated words are match.os, match.arch, the family
 * (when the target has one) and match.accel (as a prefix: "cuda12"), and
 * no other accelerator's word. A target without a pattern matches nothing. */
bool provision_release_matches(const struct compat_backend_asset *a,
			       const char *name);
/* the pattern in words for messages ("os=ubuntu arch=x64 accel=none ...") */
void provision_release_pattern(const struct compat_backend_asset *a, char *out,
			       size_t cap);
/* the index of the asset to install: the one named pinned, else the only
 * one matching the target's pattern. NOT_FOUND when none fits and
 * INVALID_DATA when several match, each naming the release's assets. */
int provision_release_pick(const struct provision_release *r,
			   const struct compat_backend_asset *a,
			   const char *pinned, const char *what, int *idx,
			   struct lemon_err *err);

/* the API base: LEMON_GITHUB_API without trailing '/', else
 * https://api.github.com; false when it is "none" (no publisher lookup) */
bool provision_github_api(char *out, size_t cap);
/* "owner/repo" of a https://github.com/<owner>/<repo>/releases/download/
 * URL template; false for any other URL */
bool provision_github_repo(const char *url, char *out, size_t cap);
/* the release tag of repo from api (see github.c): revalidated against
 * the cached copy with If-None-Match, GITHUB_TOKEN sent when set, a rate
 * limit waited out when short and otherwise reported with its reset time
 * (NETWORK). url receives the request's URL. NOT_FOUND when the release
 * does not exist. */
int provision_github_release(const char *api, const char *repo,
			     const char *tag, struct provision_release *r,
			     char *url, size_t url_cap, struct lemon_err *err);

/* ---- gzip decoding (gunzip.c) ---------------------------------------- */

struct provision_gunzip;

int provision_gunzip_new(struct provision_fetch *src, struct provision_gunzip **out,
		    struct lemon_err *err);
/* decompressed bytes of src (or src's bytes unchanged when they are not
 * gzip); *len 0 at the end of the stream */
int provision_gunzip_read(struct provision_gunzip *g, const void **buf, size_t *len,
		     struct lemon_err *err);
/* true when the last failure was the download's (so not the data's) */
bool provision_gunzip_source_failed(const struct provision_gunzip *g);
void provision_gunzip_free(struct provision_gunzip *g);

/* ---- unpacking (unpack.c) --------------------------------------------- */

#define PROV_UNPACK_DEFAULT_MAX (16ULL << 30)
#define PROV_UNPACK_MAX_ENTRIES 200000

/* a reader for zip and tar with gzip/xz/zstd filters */
struct archive *provision_archive_reader(struct lemon_err *err);
/* extracts every entry of an opened reader below dirfd; see
 * provision_unpack_file for what is refused */
int provision_unpack(struct archive *ar, int dirfd, uint64_t max_bytes,
		const char *what, struct lemon_err *err);

/* ---- installed.json (state.c) ----------------------------------------- */

/* the strict reader: a missing file is an empty list; unreadable,
 * malformed or oversized content is INVALID_DATA or TOO_LARGE */
int provision_state_read(const char *backends_dir, struct provision_installed *out,
		    int cap, int *n, struct lemon_err *err);
/* what installs, uninstalls and `lemon serve` use: a corrupt installed.json
 * must not stop them, so it is reported on stderr and read as an empty
 * list; with locked (the install lock held) it is also moved aside to
 * installed.json.corrupt-<unix time>. Other failures are returned. */
int provision_state_load(const char *backends_dir, bool locked,
			 struct provision_installed *out, int cap, int *n,
			 struct lemon_err *err);
/* rewrites installed.json atomically (temp file, fsync, rename, dir fsync) */
int provision_state_write(const char *backends_dir,
		     const struct provision_installed *list, int n,
		     struct lemon_err *err);
/* fills works/problem from the executable's state */
void provision_state_check(struct provision_installed *e);

/* ---- versions kept for rollback (versions.c) -------------------------- */

/* makes room in list (n entries) for a new current entry of name in
 * final_dir: the current entry of name (another directory) becomes the
 * kept one, the kept one before it is dropped and its directory put in
 * old_dir ("" if none); an entry in final_dir is dropped (the new one
 * replaces it). Returns the new count; the new entry goes at that index.
 * prev and removed receive the kept and the dropped versions ("" none). */
int provision_versions_shift(struct provision_installed *list, int n,
			     const char *name, const char *final_dir,
			     char *old_dir, size_t cap, char *prev,
			     size_t prev_cap, char *removed, size_t removed_cap);

/* deletes a dropped version's directory, unless a running process (a
 * llama-server that `lemon serve` started) executes a file in it: then it
 * is left on disk, stderr says so, and false is returned */
bool provision_versions_drop(const char *dir);

/* ---- smoke test (smoke.c) --------------------------------------------- */

struct provision_smoke {
	pid_t pid;        /* 0 when not running */
	int fd;           /* the read end of its stdout and stderr */
	int spawn_errno;  /* why it could not be started */
	const char *arg;  /* the one argument it runs with, for messages */
};

/* starts exe arg ("--version"), so that it runs while the caller does other work
 * (the bundle's fsync); every start needs its finish */
int provision_smoke_start(const char *exe, const char *arg,
			  struct provision_smoke *sm, struct lemon_err *err);
/* waits for it (15 s at most, then kills it): INVALID_DATA naming what,
 * the exit status or signal and the first line of its output when it did
 * not start, failed or hung */
int provision_smoke_finish(struct provision_smoke *sm, const char *what,
			   struct lemon_err *err);

/* ---- what to fetch (resolve.c) --------------------------------------- */

struct provision_plan {
	char version[32];
	char asset[128];
	char url[2048];
	char exe[128];       /* relative to the install directory */
	char sha256[65];     /* "" when unknown (only with insecure skip) */
	uint64_t size;       /* 0 when unknown */
	char dirname[128];   /* <backend>-<target>-<version> */
	char digest_from[24]; /* whose sha256 it is: "manifest" (a mirror's),
			       * "pinned" (compat/backends.json), "publisher" */
	bool from_mirror;
};

/* version, asset, URL and expected digest from the manifest or a mirror's
 * manifest.json; *unavailable is set when this bundle cannot be had (not
 * on the mirror, or no checksum known) */
int provision_plan_make(const struct compat_backend_asset *a,
		   const struct provision_opts *o, struct provision_plan *p,
		   bool *unavailable, struct lemon_err *err);
/* the plan for asset a from the text of mirror's manifest.json (len
 * bytes, not NUL-terminated); INVALID_DATA for a manifest that is not one
 * or whose version or size cannot be used, NOT_FOUND (and *unavailable)
 * when the mirror lacks the asset */
int provision_plan_from_manifest(const struct compat_backend_asset *a,
				 const struct provision_opts *o,
				 const char *mirror, const char *text,
				 size_t len, struct provision_plan *p,
				 bool *unavailable, struct lemon_err *err);

/* ---- file-system helpers (fsutil.c) ----------------------------------- */

/* creates dir and its parents (0755); the other file-system steps are
 * util/fs.h's */
int provision_mkdirs(const char *dir, struct lemon_err *err);
/* takes the exclusive install lock (blocking, saying so when it waits) */
/* the backends directory's install lock, waited for while another
 * install holds it; cancel (NULL: none) ends the wait with BUSY, so a
 * server shutting down is not held by another process's install */
int provision_lock(const char *backends_dir, const atomic_bool *cancel,
		   int *fd, struct lemon_err *err);
void provision_unlock(int fd);

/* libcurl and libarchive are opened on first use (lazy_curl.c,
 * lazy_archive.c); these say clearly when one is missing */
int provision_curl_load(struct lemon_err *err);
int provision_archive_load(struct lemon_err *err);

#endif
