/* Model downloads from Hugging Face or a mirror of it (HF_ENDPOINT): a
 * HEAD per file first, for the size and the LFS digest the hub puts in
 * X-Linked-Etag, then the bytes through the provisioner's resumable,
 * retrying, hashing downloader, into .part files the caller opened. Files
 * are written and hashed through those descriptors only, never looked up
 * by path, so the caller can publish exactly what was verified; an
 * interrupted split pull re-hashes the finished parts from their bytes
 * instead of trusting a file name. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "provision/provision-private.h"
#include "util/str.h"

#define PULL_DEFAULT_ENDPOINT "https://huggingface.co"
#define PULL_CB_INTERVAL 0.1 /* seconds between progress callbacks */

struct pull_ctx {
	const struct compat_model *m;
	const struct provision_pull_opts *o;
	provision_pull_cb cb;
	void *ctx;
	struct provision_pull_progress p;
	char endpoint[1024];
	const char *token;
	struct provision_head head[COMPAT_MODEL_MAX_PARTS + 1]; /* + projector */
	char digest[80];
	double last;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void emit(struct pull_ctx *c, const char *status)
{
	c->p.status = status;
	if (c->cb)
		c->cb(c->ctx, &c->p);
}

int provision_hf_endpoint(char *out, size_t cap, struct lemon_err *err)
{
	const char *e = getenv("HF_ENDPOINT");
	size_t n;

	if (e == NULL || e[0] == 0)
		e = PULL_DEFAULT_ENDPOINT;
	if (strncmp(e, "http://", 7) != 0 && strncmp(e, "https://", 8) != 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "HF_ENDPOINT '%.200s' must start with http:// or https://",
				     e);
	if (!lemon_str_copy(out, cap, e))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "HF_ENDPOINT longer than %zu bytes", cap - 1);
	n = strlen(out);
	while (n > 0 && out[n - 1] == '/')
		out[--n] = 0;
	return 0;
}

static const char *base_name(const char *file)
{
	const char *s = strrchr(file, '/');

	return s ? s + 1 : file;
}

/* the files of a pull: the model's, then its vision projector when the
 * registry names one, so totals and progress cover both */
static int n_files(const struct compat_model *m)
{
	return m->n_files + (m->mmproj.file[0] ? 1 : 0);
}

static const struct compat_model_file *file_at(const struct compat_model *m,
					       int i)
{
	return i < m->n_files ? &m->files[i] : &m->mmproj;
}

static int file_url(const struct pull_ctx *c, int i, char *out, size_t cap,
		    struct lemon_err *err)
{
	const struct compat_model_file *mf = file_at(c->m, i);
	int n = snprintf(out, cap, "%s/%s/resolve/main/%s", c->endpoint,
			 i < c->m->n_files ? c->m->repo : c->m->mmproj_repo,
			 mf->file);

	if (n < 0 || (size_t)n >= cap)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "URL too long for %s",
				     mf->file);
	return 0;
}

/* HEAD every file: sizes for the totals, digests the registry lacks */
static int heads(struct pull_ctx *c, struct lemon_err *err)
{
	char url[2048];
	uint64_t total = 0;
	int i;

	emit(c, "pulling manifest");
	for (i = 0; i < n_files(c->m); i++) {
		if (file_url(c, i, url, sizeof(url), err) < 0 ||
		    provision_fetch_head(url, c->token, &c->head[i], err) < 0) {
			if (err && err->code == LEMON_ERR_PERMISSION &&
			    (c->token == NULL || c->token[0] == 0))
				lemon_err_prefix(err, "set HF_TOKEN for gated models");
			return -1;
		}
		if (file_at(c->m, i)->size)
			c->head[i].size = file_at(c->m, i)->size;
		if (total != UINT64_MAX && c->head[i].size)
			total += c->head[i].size;
		else
			total = UINT64_MAX;
	}
	c->p.all_total = total == UINT64_MAX ? 0 : total;
	return 0;
}

/* downloads (or re-reads) part i into its .part and checks it */
static int fetch_one(struct pull_ctx *c, int i, struct lemon_err *err)
{
	const struct compat_model_file *mf = file_at(c->m, i);
	const char *want = mf->sha256[0] ? mf->sha256 : c->head[i].sha256;
	struct provision_fetch_opts o = { 0 };
	struct provision_fetch *f = NULL;
	char url[2048], got[65];
	uint64_t base = c->p.all_completed, size = 0;
	const void *b;
	size_t n;
	double t;
	uint64_t emitted = UINT64_MAX;
	int rc;

	if (file_url(c, i, url, sizeof(url), err) < 0)
		return -1;
	c->p.file = base_name(mf->file);
	c->p.part = i + 1;
	c->p.completed = 0;
	c->p.total = c->head[i].size;
	c->p.digest = NULL;
	o.url = url;
	o.part_path = c->o->paths[i];
	o.part_fd_set = true;
	o.part_fd = c->o->fds[i];
	o.cancel = c->o->cancel;
	o.expected_size = c->head[i].size;
	o.bearer = c->token;
	emit(c, "downloading");
	rc = provision_fetch_open(&o, &f, err);
	while (rc == 0) {
		rc = provision_fetch_read(f, &b, &n, err);
		if (rc < 0 || n == 0)
			break;
		c->p.completed += n;
		c->p.all_completed = base + c->p.completed;
		t = now_s();
		if (t - c->last >= PULL_CB_INTERVAL) {
			c->last = t;
			emit(c, "downloading");
			emitted = c->p.completed;
		}
	}
	if (rc == 0)
		rc = provision_fetch_finish(f, got, &size, err);
	provision_fetch_free(f);
	if (rc < 0) {
		lemon_err_prefix(err, "pulling %s", c->p.file);
		return -1;
	}
	/* the last chunk may have fallen between two rate-limited events */
	if (emitted != size) {
		c->p.completed = size;
		c->p.all_completed = base + size;
		emit(c, "downloading");
	}
	if (want[0] && strcmp(want, got) != 0) {
		/* a wrong file must not be resumed */
		if (ftruncate(c->o->fds[i], 0) < 0)
			return provision_err_errno(err, errno, "truncating",
						   c->o->paths[i]);
		return lemon_err_set(err, LEMON_ERR_CHECKSUM,
				     "%s: sha256 mismatch: expected %s, got %s",
				     c->p.file, want, got);
	}
	snprintf(c->digest, sizeof(c->digest), "sha256:%s", got);
	c->p.digest = c->digest;
	emit(c, "verifying sha256 digest");
	return 0;
}

int provision_pull_files(const struct compat_model *m,
			 const struct provision_pull_opts *o,
			 struct lemon_err *err)
{
	struct pull_ctx *c;
	int i, rc = 0;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	c->m = m;
	c->o = o;
	c->cb = o->cb;
	c->ctx = o->ctx;
	c->p.model = m->name;
	c->p.n_parts = n_files(m);
	c->token = getenv("HF_TOKEN");
	if (provision_hf_endpoint(c->endpoint, sizeof(c->endpoint), err) < 0 ||
	    heads(c, err) < 0)
		rc = -1;
	for (i = 0; rc == 0 && i < n_files(m); i++)
		rc = fetch_one(c, i, err);
	free(c);
	return rc;
}
