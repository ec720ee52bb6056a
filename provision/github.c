/* The publisher's side of an install: GitHub's REST API lists a release's
 * assets with the SHA-256 GitHub computed when each was uploaded (since
 * 2025-06), so a bundle lemon pins no digest for is still verified
 * against its publisher. One GET per release tag, with the headers
 * GitHub asks for, GITHUB_TOKEN sent when set (to the API host only), the
 * answer kept under $XDG_CACHE_HOME/lemon/github/ with its ETag and
 * revalidated with If-None-Match (a 304 costs no rate limit). A rate
 * limit (403/429 with Retry-After or X-RateLimit-Remaining: 0) is waited
 * out when the wait is a few seconds and otherwise reported with the
 * time it resets. LEMON_GITHUB_API points it at GitHub Enterprise or the
 * tests' loopback fake (tests/tools/github-api.py). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "provision/provision-private.h"
#include "util/fs.h"
#include "util/str.h"

#define GH_DEFAULT_API "https://api.github.com"
#define GH_API_VERSION "2022-11-28"
#define GH_ATTEMPTS 3
#define GH_MAX_WAIT_S 5 /* a longer rate-limit wait is reported, not slept */

bool provision_github_api(char *out, size_t cap)
{
	const char *env = getenv("LEMON_GITHUB_API");
	size_t n;

	if (env == NULL || env[0] == 0)
		env = GH_DEFAULT_API;
	if (strcmp(env, "none") == 0)
		return false;
	n = strlen(env);
	while (n > 0 && env[n - 1] == '/')
		n--;
	return lemon_str_copy_n(out, cap, env, n);
}

static bool repo_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

bool provision_github_repo(const char *url, char *out, size_t cap)
{
	static const char pre[] = "https://github.com/";
	const char *p = url + sizeof(pre) - 1, *q, *s;
	int slashes = 0;

	if (strncmp(url, pre, sizeof(pre) - 1) != 0)
		return false;
	for (q = p; *q && slashes < 2; q++) {
		if (*q == '/')
			slashes++;
		else if (!repo_char(*q))
			return false;
	}
	if (slashes != 2 || strncmp(q, "releases/download/", 18) != 0)
		return false;
	/* owner and repository: neither empty, neither holding ".." */
	for (s = p; s + 1 < q; s++)
		if ((s[0] == '.' && s[1] == '.') || (s[0] == '/' && s[1] == '/'))
			return false;
	if (p[0] == '/')
		return false;
	return lemon_str_copy_n(out, cap, p, (size_t)(q - 1 - p));
}

/* what one answer said; header fields are reset at each status line, so a
 * redirect's headers never count for the final answer */
struct gh_reply {
	char *body;
	size_t len;
	bool over;
	long status;
	char etag[200];
	char retry_after[24];
	char remaining[24];
	char reset[24];
};

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
	struct gh_reply *r = user;
	size_t len = size * n;

	if (r->len + len > PROVISION_RELEASE_MAX_BYTES) {
		r->over = true;
		return 0;
	}
	memcpy(r->body + r->len, data, len);
	r->len += len;
	return len;
}

static void header_into(const char *v, size_t vlen, char *out, size_t cap)
{
	lemon_str_trim(&v, &vlen);
	if (!lemon_str_copy_n(out, cap, v, vlen))
		out[0] = 0; /* an over-long value is not one we use */
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
	struct gh_reply *r = user;
	size_t len = size * n, klen, vlen;
	const char *k, *v;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		r->etag[0] = r->retry_after[0] = r->remaining[0] = r->reset[0] = 0;
		return len;
	}
	if (!lemon_split_kv(data, len, ':', &k, &klen, &v, &vlen))
		return len;
	if (klen == 4 && strncasecmp(k, "etag", 4) == 0)
		header_into(v, vlen, r->etag, sizeof(r->etag));
	else if (klen == 11 && strncasecmp(k, "retry-after", 11) == 0)
		header_into(v, vlen, r->retry_after, sizeof(r->retry_after));
	else if (klen == 21 && strncasecmp(k, "x-ratelimit-remaining", 21) == 0)
		header_into(v, vlen, r->remaining, sizeof(r->remaining));
	else if (klen == 17 && strncasecmp(k, "x-ratelimit-reset", 17) == 0)
		header_into(v, vlen, r->reset, sizeof(r->reset));
	return len;
}

/* one GET; the CURLcode back, the answer in r */
static int gh_get(CURL *e, const char *url, const char *etag,
		  struct gh_reply *r, char *errbuf)
{
	const char *token = getenv("GITHUB_TOKEN");
	struct curl_slist *h, *t;
	char inm[256];
	CURLcode rc;

	h = curl_slist_append(NULL, "Accept: application/vnd.github+json");
	t = h ? curl_slist_append(h, "X-GitHub-Api-Version: " GH_API_VERSION) : NULL;
	if (t && etag[0] &&
	    snprintf(inm, sizeof(inm), "If-None-Match: %s", etag) < (int)sizeof(inm))
		t = curl_slist_append(t, inm);
	if (t == NULL) {
		curl_slist_free_all(h);
		return CURLE_OUT_OF_MEMORY;
	}
	curl_easy_reset(e);
	provision_curl_setup(e, url, errbuf);
	/* the status decides (403 and 429 carry the rate-limit headers) */
	curl_easy_setopt(e, CURLOPT_FAILONERROR, 0L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	if (token && token[0]) {
		/* libcurl keeps it to this host across redirects */
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, token);
	}
	r->len = 0;
	r->over = false;
	r->status = 0;
	errbuf[0] = 0;
	rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	return (int)rc;
}

static bool num(const char *s, uint64_t max, uint64_t *out)
{
	return s[0] && lemon_parse_u64(s, strlen(s), 10, max, out, NULL) == 0;
}

/* seconds until a rate limit lifts, or -1 when the answer is no rate
 * limit (a plain 403 is a permission problem); *reset_at the epoch time */
static int64_t rate_wait(const struct gh_reply *r, int64_t *reset_at)
{
	uint64_t v, left;
	int64_t now = (int64_t)time(NULL);

	if (r->status != 403 && r->status != 429)
		return -1;
	if (num(r->retry_after, 86400 * 7, &v)) {
		*reset_at = now + (int64_t)v;
		return (int64_t)v;
	}
	if (num(r->remaining, UINT32_MAX, &left) && left == 0 &&
	    num(r->reset, 1ull << 40, &v)) {
		*reset_at = (int64_t)v;
		return (int64_t)v > now ? (int64_t)v - now : 0;
	}
	if (r->status == 429) { /* too many requests, no time given */
		*reset_at = now + 60;
		return 60;
	}
	return -1;
}

static void rate_error(const struct gh_reply *r, int64_t reset_at,
		       int64_t wait, const char *url, struct lemon_err *err)
{
	char when[32] = "an unknown time";
	time_t t = (time_t)reset_at;
	struct tm tm;

	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	lemon_err_set(err, LEMON_ERR_NETWORK,
		      "GitHub API rate limit reached (HTTP %ld): it resets at %s "
		      "(in %lld min); set GITHUB_TOKEN for a higher limit (%s)",
		      r->status, when, (long long)((wait + 59) / 60), url);
}

/* $XDG_CACHE_HOME/lemon/github (or ~/.cache/...); false when neither is
 * set to an absolute path: then nothing is cached */
static bool cache_dir(char *out, size_t cap)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(out, cap, "%s/lemon/github", xdg);
	else if (home && home[0] == '/')
		n = snprintf(out, cap, "%s/.cache/lemon/github", home);
	else
		return false;
	return n > 0 && (size_t)n < cap;
}

/* the cache file's name: the tag for people, a hash of the whole URL (API
 * host, repository, tag) so two hosts never share an entry */
static void cache_name(const char *url, const char *tag, const char *ext,
		       char *out, size_t cap)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	const char *p;

	for (p = url; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	snprintf(out, cap, "%s-%016llx.%s", tag, (unsigned long long)h, ext);
}

struct gh_cache {
	bool on;
	char dir[4096];
	char body_name[128];
	char etag_name[128];
	char *body;  /* the cached listing, NULL when none */
	size_t len;
	char etag[200];
};

static void cache_open(struct gh_cache *c, const char *url, const char *tag)
{
	struct provision_release rel = { 0 };
	char path[4400], *etag = NULL;
	size_t elen = 0;

	c->on = cache_dir(c->dir, sizeof(c->dir));
	if (!c->on)
		return;
	cache_name(url, tag, "json", c->body_name, sizeof(c->body_name));
	cache_name(url, tag, "etag", c->etag_name, sizeof(c->etag_name));
	snprintf(path, sizeof(path), "%s/%s", c->dir, c->etag_name);
	if (lemon_read_file(path, sizeof(c->etag) - 1, true, &etag, &elen, NULL) < 0 ||
	    etag == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s", c->dir, c->body_name);
	/* an ETag without its body is worth nothing, and neither is a body
	 * that is not a listing of this tag (a crash mid-write, an edit) */
	if (lemon_read_file(path, PROVISION_RELEASE_MAX_BYTES, true, &c->body,
			    &c->len, NULL) == 0 && c->body != NULL &&
	    provision_release_parse(c->body, c->len, tag, path, &rel, NULL) == 0 &&
	    memchr(etag, '\n', elen) == NULL)
		lemon_str_copy_n(c->etag, sizeof(c->etag), etag, elen);
	else {
		free(c->body);
		c->body = NULL;
	}
	provision_release_free(&rel);
	free(etag);
}

/* dir/name replaced whole by a rename, not synced: it is a cache, and
 * cache_open checks what it reads (an fsync here cost an install more
 * than its API request) */
static bool cache_write(const char *dir, const char *name, const void *data,
			size_t len)
{
	char tmp[4400], path[4400];
	bool ok;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/.%s.%ld", dir, name, (long)getpid());
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return false;
	ok = write(fd, data, len) == (ssize_t)len;
	ok = close(fd) == 0 && ok && rename(tmp, path) == 0;
	if (!ok)
		unlink(tmp);
	return ok;
}

/* best effort: a cache that cannot be written costs a full answer next
 * time, nothing more. The old ETag goes first and the new one last: an
 * ETag never names bytes the cache does not hold. */
static void cache_store(struct gh_cache *c, const struct gh_reply *r)
{
	char path[4400];

	if (!c->on || r->etag[0] == 0 || provision_mkdirs(c->dir, NULL) < 0)
		return;
	snprintf(path, sizeof(path), "%s/%s", c->dir, c->etag_name);
	if (unlink(path) < 0 && errno != ENOENT)
		return;
	if (cache_write(c->dir, c->body_name, r->body, r->len))
		cache_write(c->dir, c->etag_name, r->etag, strlen(r->etag));
}

static bool transient(int rc)
{
	return rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT ||
	       rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
	       rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE;
}

/* asks until an answer that is neither a transient failure nor a short
 * rate-limit wait; the last answer is in r, its CURLcode returned */
static int ask(CURL *e, const char *url, const struct gh_cache *c,
	       struct gh_reply *r, char *errbuf)
{
	int64_t wait, reset_at = 0;
	int attempt, rc = CURLE_OK;

	for (attempt = 1; attempt <= GH_ATTEMPTS; attempt++) {
		rc = gh_get(e, url, c->etag, r, errbuf);
		/* GitHub answers 502/503 now and then under load */
		if (rc == CURLE_OK && r->status >= 500 && attempt < GH_ATTEMPTS) {
			usleep(250000u << attempt);
			continue;
		}
		if (rc == CURLE_OK) {
			wait = rate_wait(r, &reset_at);
			if (wait < 0 || wait > GH_MAX_WAIT_S || attempt == GH_ATTEMPTS)
				return rc;
			sleep((unsigned)wait + 1);
			continue;
		}
		if (r->over || !transient(rc))
			return rc;
		if (attempt < GH_ATTEMPTS)
			usleep(250000u << attempt);
	}
	return rc;
}

/* the release from the last answer, else from the cache when the API
 * cannot be asked now (a listing read before is better than none: its
 * digests still hold the bytes) */
static int answer(const struct gh_cache *c, const struct gh_reply *r, int rc,
		  const char *errbuf, const char *url, const char *what,
		  const char *tag, struct provision_release *rel,
		  struct lemon_err *err)
{
	struct lemon_err e = { 0 };
	int64_t reset_at = 0, wait;

	if (rc == CURLE_OK && r->status == 304 && c->body != NULL)
		return provision_release_parse(c->body, c->len, tag, what, rel, err);
	if (rc == CURLE_OK && r->status == 200)
		return provision_release_parse(r->body, r->len, tag, what, rel, err);
	if (r->over)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "%s is larger than %u bytes", url,
				     PROVISION_RELEASE_MAX_BYTES);
	if (rc == CURLE_OK && r->status == 404)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "%s does not exist (HTTP 404 from %s)", what, url);
	wait = rc == CURLE_OK ? rate_wait(r, &reset_at) : -1;
	if (wait >= 0)
		rate_error(r, reset_at, wait, url, &e);
	else if (rc == CURLE_OK && r->status < 400)
		lemon_err_set(&e, LEMON_ERR_NETWORK, "unexpected HTTP %ld from %s",
			      r->status, url);
	else
		provision_err_curl(&e, rc, rc == CURLE_OK ? r->status : 0, url, errbuf);
	if (c->body != NULL && (wait >= 0 || e.code == LEMON_ERR_NETWORK)) {
		fprintf(stderr, "lemon: %s; using the release listing cached in %s/%s\n",
			e.msg, c->dir, c->body_name);
		return provision_release_parse(c->body, c->len, tag, what, rel, err);
	}
	return lemon_err_set(err, e.code, "%s", e.msg);
}

int provision_github_release(const char *api, const char *repo,
			     const char *tag, struct provision_release *rel,
			     char *url, size_t url_cap, struct lemon_err *err)
{
	struct gh_cache c = { 0 };
	struct gh_reply r = { 0 };
	char errbuf[CURL_ERROR_SIZE] = "", what[200];
	int rc, ret;
	CURL *e;

	memset(rel, 0, sizeof(*rel));
	if (!compat_version_ok(tag))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "unusable release tag (" COMPAT_VERSION_RULE ")");
	if (snprintf(url, url_cap, "%s/repos/%s/releases/tags/%s", api, repo,
		     tag) >= (int)url_cap)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "GitHub API URL too long");
	snprintf(what, sizeof(what), "release %s of %s", tag, repo);
	if (provision_curl_load(err) < 0)
		return -1;
	r.body = malloc(PROVISION_RELEASE_MAX_BYTES);
	e = curl_easy_init();
	if (r.body == NULL || e == NULL) {
		free(r.body);
		if (e)
			curl_easy_cleanup(e);
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	}
	cache_open(&c, url, tag);
	rc = ask(e, url, &c, &r, errbuf);
	ret = answer(&c, &r, rc, errbuf, url, what, tag, rel, err);
	/* only a listing that parsed is kept */
	if (ret == 0 && rc == CURLE_OK && r.status == 200)
		cache_store(&c, &r);
	curl_easy_cleanup(e);
	free(c.body);
	free(r.body);
	return ret;
}
