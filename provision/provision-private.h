/* Internal interfaces of the provision layer: the downloader, the safe
 * unpacker, the per-library error tables, progress output, installed.json
 * and the file-system helpers. Only the files in provision/ include it. */
#ifndef LEMON_PROVISION_PRIVATE_H
#define LEMON_PROVISION_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provision/provision.h"

struct archive;

/* ---- error tables (errmap.c): one per library, used at the boundary --- */

/* CURLcode (as int, so callers need no curl header) plus the HTTP status
 * and curl's error buffer; 404 is NOT_FOUND naming the URL */
int prov_err_curl(struct lemon_err *err, int code, long http_status,
		  const char *url, const char *detail);
/* libarchive: errno-backed failures map like errno, the rest is
 * INVALID_DATA "<what>: corrupt archive: ..." */
int prov_err_archive(struct lemon_err *err, struct archive *ar,
		     const char *what);
/* OpenSSL: drains the error queue into one message */
int prov_err_openssl(struct lemon_err *err, const char *what);
/* ISA-L inflate return codes */
int prov_err_isal(struct lemon_err *err, int code, const char *what);
/* errno with specific words for disk full and permission denied */
int prov_err_errno(struct lemon_err *err, int errnum, const char *what,
		   const char *path);

/* ---- progress (progress.c) -------------------------------------------- */

struct prov_progress {
	enum provision_progress mode; /* resolved: BAR, JSON or NONE */
	char label[128];
	uint64_t total;               /* 0 when unknown */
	uint64_t start_bytes;         /* resumed bytes, excluded from the rate */
	double t0;
	double last;
	bool drawn;
};

void prov_progress_init(struct prov_progress *p, enum provision_progress mode,
			const char *label, uint64_t total);
void prov_progress_update(struct prov_progress *p, uint64_t done);
void prov_progress_event(struct prov_progress *p, const char *event,
			 const char *detail);
void prov_progress_finish(struct prov_progress *p, uint64_t done);

/* ---- download (fetch.c) ----------------------------------------------- */

struct prov_fetch;

struct prov_fetch_opts {
	const char *url;
	const char *part_path;   /* bytes land here; an existing one is resumed */
	uint64_t expected_size;  /* 0 when unknown */
	struct prov_progress *progress; /* may be NULL */
	const char *bearer;      /* token sent to url's host only, or NULL */
};

int prov_fetch_open(const struct prov_fetch_opts *o, struct prov_fetch **out,
		    struct lemon_err *err);
/* next bytes of the file in order (resumed bytes first); *len 0 at the
 * end. The buffer stays valid until the next call. Retries transient
 * failures with backoff, resuming with Range. */
int prov_fetch_read(struct prov_fetch *f, const void **buf, size_t *len,
		    struct lemon_err *err);
/* reads to the end, then gives the SHA-256 (hex) and size of the file */
int prov_fetch_finish(struct prov_fetch *f, char sha_hex[65], uint64_t *size,
		      struct lemon_err *err);
void prov_fetch_free(struct prov_fetch *f);

/* what a HEAD request (redirects not followed, since Hugging Face puts
 * the LFS facts on its redirect) says about a file */
struct prov_head {
	long status;
	uint64_t size;       /* X-Linked-Size, else Content-Length; 0 unknown */
	char sha256[65];     /* X-Linked-Etag, else an ETag of 64 hex; "" */
};

int prov_fetch_head(const char *url, const char *bearer, struct prov_head *h,
		    struct lemon_err *err);

/* a small document (the mirror's manifest.json) into a malloc'd,
 * NUL-terminated buffer of at most max bytes */
int prov_fetch_small(const char *url, size_t max, char **out, size_t *len,
		     struct lemon_err *err);

/* ---- gzip decoding (gunzip.c) ---------------------------------------- */

struct prov_gunzip;

int prov_gunzip_new(struct prov_fetch *src, struct prov_gunzip **out,
		    struct lemon_err *err);
/* decompressed bytes of src (or src's bytes unchanged when they are not
 * gzip); *len 0 at the end of the stream */
int prov_gunzip_read(struct prov_gunzip *g, const void **buf, size_t *len,
		     struct lemon_err *err);
/* true when the last failure was the download's (so not the data's) */
bool prov_gunzip_source_failed(const struct prov_gunzip *g);
void prov_gunzip_free(struct prov_gunzip *g);

/* ---- unpacking (unpack.c) --------------------------------------------- */

#define PROV_UNPACK_DEFAULT_MAX (16ULL << 30)
#define PROV_UNPACK_MAX_ENTRIES 200000

/* a reader for zip and tar with gzip/xz/zstd filters */
struct archive *prov_archive_reader(struct lemon_err *err);
/* extracts every entry of an opened reader below dirfd; see
 * provision_unpack_file for what is refused */
int prov_unpack(struct archive *ar, int dirfd, uint64_t max_bytes,
		const char *what, struct lemon_err *err);

/* ---- installed.json (state.c) ----------------------------------------- */

int prov_state_read(const char *backends_dir, struct provision_installed *out,
		    int cap, int *n, struct lemon_err *err);
/* rewrites installed.json atomically (temp file, fsync, rename, dir fsync) */
int prov_state_write(const char *backends_dir,
		     const struct provision_installed *list, int n,
		     struct lemon_err *err);
/* fills works/problem from the executable's state */
void prov_state_check(struct provision_installed *e);

/* ---- what to fetch (resolve.c) --------------------------------------- */

struct prov_plan {
	char version[32];
	char asset[128];
	char url[2048];
	char exe[128];       /* relative to the install directory */
	char sha256[65];     /* "" when unknown (only with insecure skip) */
	uint64_t size;       /* 0 when unknown */
	char dirname[128];   /* <backend>-<target>-<version> */
	bool from_mirror;
};

/* version, asset, URL and expected digest from the manifest or a mirror's
 * manifest.json; *unavailable is set when this bundle cannot be had (not
 * on the mirror, or no checksum known) */
int prov_plan_make(const struct compat_backend_asset *a,
		   const struct provision_opts *o, struct prov_plan *p,
		   bool *unavailable, struct lemon_err *err);

/* ---- file-system helpers (fsutil.c) ----------------------------------- */

/* creates dir and its parents (0755) */
int prov_mkdirs(const char *dir, struct lemon_err *err);
/* removes a tree without following symlinks; a missing path is fine */
int prov_rm_rf(const char *path, struct lemon_err *err);
/* takes the exclusive install lock (blocking, saying so when it waits) */
int prov_lock(const char *backends_dir, int *fd, struct lemon_err *err);
void prov_unlock(int fd);
/* writes a whole file durably: tmp + fsync + rename + fsync(dir) */
int prov_write_atomic(const char *dir, const char *name, const char *data,
		      size_t len, struct lemon_err *err);
int prov_fsync_dir(const char *dir, struct lemon_err *err);
/* makes every file and directory under dir durable (fsync each, after
 * starting write-back of all of them) */
int prov_sync_tree(const char *dir, struct lemon_err *err);
/* moves staging into place; an existing final is swapped out atomically
 * and left at staging for the caller to remove */
int prov_swap_into_place(const char *staging, const char *final,
			 bool *swapped, struct lemon_err *err);

/* libcurl and libarchive are opened on first use (lazy_curl.c,
 * lazy_archive.c); these say clearly when one is missing */
int provision_curl_load(struct lemon_err *err);
int provision_archive_load(struct lemon_err *err);

#endif
