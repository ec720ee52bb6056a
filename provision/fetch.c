/* The downloader: a pull-style byte stream over libcurl's multi interface,
 * so the unpacker can read the archive while it arrives. Every byte is
 * appended to a .part file and fed to SHA-256 exactly once, in file order;
 * a .part left by an earlier run is replayed first and the transfer resumes
 * with a Range request. Transient failures (dropped connection, timeouts,
 * 5xx) are retried with exponential backoff from where the stream stopped. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "provision/provision-private.h"
#include "util/str.h"

#define FETCH_MAX_FAILURES 6   /* consecutive failures without progress */
#define FETCH_BACKOFF_MS 250
#define FETCH_BACKOFF_MAX_MS 8000
/* received bytes waiting for the reader; when full the transfer pauses
 * (TCP flow control holds the rest), so memory stays bounded and the
 * buffer is never reallocated */
#define FETCH_BUF_SIZE (1u << 20)

struct provision_fetch {
	CURLM *multi;
	CURL *easy;
	char url[2048];
	char part_path[4096];
	int part_fd;
	EVP_MD_CTX *md;
	uint64_t part_len;   /* bytes of the .part present at open */
	uint64_t replayed;   /* of those, handed out so far */
	uint64_t have;       /* bytes hashed and in the .part */
	uint64_t expected;
	unsigned char *buf;  /* received, not yet handed out */
	size_t len;
	bool handed;         /* buf was handed out: reset before refilling */
	bool paused;         /* buf was full: the transfer waits for the reader */
	bool running, eof;
	int failures;
	uint64_t skip;       /* bytes of a 200 reply already in the .part */
	bool status_seen;
	long status;
	struct lemon_err werr;
	char errbuf[CURL_ERROR_SIZE];
	struct provision_meter *progress;
	char bearer[1024];
	const atomic_bool *cancel;
	unsigned char rbuf[1 << 16];
};

void provision_curl_setup(void *curl, const char *url, char *errbuf)
{
	CURL *e = curl;
	bool https = strncmp(url, "https://", 8) == 0;

	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* never downgrade a TLS download to plain HTTP on a redirect */
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 20L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "lemon/" LEMON_VERSION);
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* checks "Content-Range: bytes START-END/TOTAL" against where we resume */
static size_t on_header(char *data, size_t size, size_t n, void *user)
{
	struct provision_fetch *f = user;
	size_t len = size * n, klen, vlen;
	const char *k, *v, *dash;
	uint64_t start;

	if (!lemon_split_kv(data, len, ':', &k, &klen, &v, &vlen) ||
	    klen != 13 || strncasecmp(k, "content-range", 13) != 0)
		return len;
	if (!lemon_str_has_prefix(v, vlen, "bytes "))
		return len;
	dash = memchr(v, '-', vlen);
	if (dash == NULL ||
	    lemon_parse_u64(v + 6, (size_t)(dash - v - 6), 10, UINT64_MAX, &start,
			    NULL) < 0 || start != f->have) {
		lemon_err_set(&f->werr, LEMON_ERR_NETWORK,
			      "%s: server resumed at the wrong offset (want %" PRIu64 ")",
			      f->url, f->have);
		return 0;
	}
	return len;
}

static size_t on_data(char *data, size_t size, size_t n, void *user)
{
	struct provision_fetch *f = user;
	size_t len = size * n, cut;

	if (f->handed) {
		f->len = 0;
		f->handed = false;
	}
	if (f->len + len > FETCH_BUF_SIZE) {
		f->paused = true;
		return CURL_WRITEFUNC_PAUSE; /* curl keeps the chunk for later */
	}
	if (!f->status_seen) {
		f->status_seen = true;
		curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->status);
		/* a server that ignores Range sends the whole file again */
		if (f->status == 200 && f->have > 0)
			f->skip = f->have;
	}
	if (f->skip > 0) {
		cut = f->skip < len ? (size_t)f->skip : len;
		f->skip -= cut;
		data += cut;
		len -= cut;
		if (len == 0)
			return size * n;
	}
	if (f->expected && f->have + len > f->expected) {
		lemon_err_set(&f->werr, LEMON_ERR_CHECKSUM,
			      "%s is larger than the %" PRIu64 " bytes the manifest states",
			      f->url, f->expected);
		return 0;
	}
	if (write_all(f->part_fd, data, len) < 0) {
		provision_err_errno(&f->werr, errno, "writing", f->part_path);
		return 0;
	}
	if (EVP_DigestUpdate(f->md, data, len) != 1) {
		provision_err_openssl(&f->werr, "sha256 update");
		return 0;
	}
	memcpy(f->buf + f->len, data, len);
	f->len += len;
	f->have += len;
	f->failures = 0;
	provision_progress_update(f->progress, f->have);
	return size * n;
}

static int start_request(struct provision_fetch *f, struct lemon_err *err)
{
	char range[32];

	curl_easy_reset(f->easy);
	provision_curl_setup(f->easy, f->url, f->errbuf);
	curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(f->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(f->easy, CURLOPT_HEADERDATA, f);
	if (f->bearer[0]) {
		/* libcurl keeps it to the first host across redirects */
		curl_easy_setopt(f->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(f->easy, CURLOPT_XOAUTH2_BEARER, f->bearer);
	}
	if (f->have > 0) {
		snprintf(range, sizeof(range), "%" PRIu64 "-", f->have);
		curl_easy_setopt(f->easy, CURLOPT_RANGE, range);
	}
	f->status_seen = false;
	f->paused = false;
	f->status = 0;
	f->skip = 0;
	f->errbuf[0] = 0;
	if (curl_multi_add_handle(f->multi, f->easy) != CURLM_OK)
		return lemon_err_set(err, LEMON_ERR_INTERNAL,
				     "curl_multi_add_handle failed");
	f->running = true;
	return 0;
}

static bool transient(CURLcode rc, long status)
{
	switch (rc) {
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	case CURLE_HTTP_RETURNED_ERROR:
		return status >= 500 || status == 429 || status == 408;
	default:
		return false;
	}
}

static bool cancelled(const atomic_bool *cancel)
{
	return cancel != NULL && atomic_load(cancel);
}

/* sleeps in slices of 100 ms so that a cancel is seen promptly */
static void backoff(int failures, const atomic_bool *cancel)
{
	long ms = FETCH_BACKOFF_MS, step;
	struct timespec ts;

	while (--failures > 0 && ms < FETCH_BACKOFF_MAX_MS)
		ms *= 2;
	if (ms > FETCH_BACKOFF_MAX_MS)
		ms = FETCH_BACKOFF_MAX_MS;
	for (; ms > 0 && !cancelled(cancel); ms -= step) {
		step = ms < 100 ? ms : 100;
		ts.tv_sec = 0;
		ts.tv_nsec = step * 1000000L;
		nanosleep(&ts, NULL);
	}
}

/* one finished transfer: end of file, a retry, or an error */
static int on_done(struct provision_fetch *f, CURLcode rc, struct lemon_err *err)
{
	long status = 0;
	char msg[CURL_ERROR_SIZE + 64];

	curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(f->multi, f->easy);
	f->running = false;
	if (f->werr.code != LEMON_OK) {
		lemon_err_set(err, f->werr.code, "%s", f->werr.msg);
		return -1;
	}
	if (rc == CURLE_OK && (status == 200 || status == 206 || status == 0)) {
		if (f->expected == 0 || f->have >= f->expected) {
			f->eof = true;
			return 0;
		}
		rc = CURLE_PARTIAL_FILE;
	}
	if (rc == CURLE_HTTP_RETURNED_ERROR && status == 416 && f->have > 0)
		return lemon_err_set(err, LEMON_ERR_NETWORK,
				     "%s: server refused to resume at byte %" PRIu64,
				     f->url, f->have);
	if (!transient(rc, status) || ++f->failures > FETCH_MAX_FAILURES)
		return provision_err_curl(err, rc, status, f->url, f->errbuf);
	snprintf(msg, sizeof(msg), "%s at byte %" PRIu64 ", retry %d of %d",
		 f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc), f->have,
		 f->failures, FETCH_MAX_FAILURES);
	provision_progress_event(f->progress, "retry", msg);
	backoff(f->failures, f->cancel);
	return 0;
}

static int pump(struct provision_fetch *f, struct lemon_err *err)
{
	CURLMsg *m;
	int still = 0, left;

	/* curl_multi_poll below waits at most a second: the cancel latency */
	if (cancelled(f->cancel))
		return lemon_err_set(err, LEMON_ERR_BUSY, "%s: download cancelled",
				     f->url);
	if (!f->running) {
		if (f->expected && f->have == f->expected) {
			f->eof = true;
			return 0;
		}
		if (start_request(f, err) < 0)
			return -1;
	}
	if (f->paused) {
		CURLcode rc;

		f->paused = false;
		/* may deliver the held chunk right here, into the emptied buf */
		rc = curl_easy_pause(f->easy, CURLPAUSE_CONT);
		if (f->werr.code != LEMON_OK)
			return lemon_err_set(err, f->werr.code, "%s", f->werr.msg);
		if (rc != CURLE_OK)
			return provision_err_curl(err, rc, 0, f->url, f->errbuf);
	}
	if (curl_multi_perform(f->multi, &still) != CURLM_OK)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "curl_multi_perform failed");
	while ((m = curl_multi_info_read(f->multi, &left)) != NULL)
		if (m->msg == CURLMSG_DONE && on_done(f, m->data.result, err) < 0)
			return -1;
	if (f->running && (f->handed || f->len == 0) && still > 0)
		curl_multi_poll(f->multi, NULL, 0, 1000, NULL);
	return 0;
}

int provision_fetch_read(struct provision_fetch *f, const void **buf, size_t *len,
		    struct lemon_err *err)
{
	ssize_t r;

	*len = 0;
	if (f->replayed < f->part_len) {
		r = pread(f->part_fd, f->rbuf, sizeof(f->rbuf), (off_t)f->replayed);
		if (r <= 0)
			return provision_err_errno(err, r < 0 ? errno : EIO, "reading",
					      f->part_path);
		if (EVP_DigestUpdate(f->md, f->rbuf, (size_t)r) != 1)
			return provision_err_openssl(err, "sha256 update");
		f->replayed += (uint64_t)r;
		*buf = f->rbuf;
		*len = (size_t)r;
		return 0;
	}
	while (!f->eof && (f->handed || f->len == 0))
		if (pump(f, err) < 0)
			return -1;
	if (f->handed || f->len == 0)
		return 0;
	f->handed = true;
	*buf = f->buf;
	*len = f->len;
	return 0;
}

int provision_fetch_finish(struct provision_fetch *f, char sha_hex[65], uint64_t *size,
		      struct lemon_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	const void *b;
	size_t n;

	do {
		if (provision_fetch_read(f, &b, &n, err) < 0)
			return -1;
	} while (n > 0);
	if (EVP_DigestFinal_ex(f->md, md, &mdlen) != 1 || mdlen != 32)
		return provision_err_openssl(err, "sha256 final");
	for (i = 0; i < mdlen; i++)
		snprintf(sha_hex + 2 * i, 3, "%02x", md[i]);
	*size = f->have;
	provision_progress_finish(f->progress, f->have);
	return 0;
}

int provision_fetch_open(const struct provision_fetch_opts *o, struct provision_fetch **out,
		    struct lemon_err *err)
{
	struct provision_fetch *f;
	struct stat st;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	f->part_fd = -1;
	*out = f;
	if (!lemon_str_copy(f->url, sizeof(f->url), o->url) ||
	    !lemon_str_copy(f->part_path, sizeof(f->part_path), o->part_path))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "URL or path too long: %s",
				     o->url);
	f->expected = o->expected_size;
	f->progress = o->progress;
	if (o->bearer && !lemon_str_copy(f->bearer, sizeof(f->bearer), o->bearer))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "token longer than %zu bytes", sizeof(f->bearer) - 1);
	f->cancel = o->cancel;
	if (o->part_fd_set)
		f->part_fd = fcntl(o->part_fd, F_DUPFD_CLOEXEC, 3);
	else
		f->part_fd = open(o->part_path,
				  O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (f->part_fd < 0 || fstat(f->part_fd, &st) < 0)
		return provision_err_errno(err, errno, "opening", o->part_path);
	f->part_len = (uint64_t)st.st_size;
	/* a .part longer than the file cannot be a prefix of it */
	if (f->expected && f->part_len > f->expected) {
		if (ftruncate(f->part_fd, 0) < 0)
			return provision_err_errno(err, errno, "truncating", o->part_path);
		f->part_len = 0;
	}
	f->have = f->part_len;
	if (f->part_len > 0)
		provision_progress_resume(f->progress, f->part_len, o->part_path);
	f->buf = malloc(FETCH_BUF_SIZE);
	if (f->buf == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	f->md = EVP_MD_CTX_new();
	if (f->md == NULL || EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) != 1)
		return provision_err_openssl(err, "sha256 init");
	if (provision_curl_load(err) < 0)
		return -1;
	f->multi = curl_multi_init();
	f->easy = curl_easy_init();
	if (f->multi == NULL || f->easy == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "curl init failed");
	return 0;
}

void provision_fetch_free(struct provision_fetch *f)
{
	if (f == NULL)
		return;
	if (f->running)
		curl_multi_remove_handle(f->multi, f->easy);
	if (f->easy)
		curl_easy_cleanup(f->easy);
	if (f->multi)
		curl_multi_cleanup(f->multi);
	if (f->md)
		EVP_MD_CTX_free(f->md);
	if (f->part_fd >= 0)
		close(f->part_fd);
	free(f->buf);
	free(f);
}

struct small_buf {
	char *p;
	size_t len, max;
	bool over;
};

static size_t on_small(char *data, size_t size, size_t n, void *user)
{
	struct small_buf *b = user;
	size_t len = size * n;

	if (b->len + len > b->max) {
		b->over = true;
		return 0;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return len;
}

int provision_fetch_small(const char *url, size_t max, char **out, size_t *len,
		     struct lemon_err *err)
{
	struct small_buf b = { .max = max };
	char errbuf[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode rc = CURLE_OK;
	CURL *e;
	int attempt;

	*out = NULL;
	if (provision_curl_load(err) < 0)
		return -1;
	b.p = malloc(max + 1);
	e = curl_easy_init();
	if (b.p == NULL || e == NULL) {
		free(b.p);
		if (e)
			curl_easy_cleanup(e);
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	}
	for (attempt = 1; attempt <= 3; attempt++) {
		curl_easy_reset(e);
		provision_curl_setup(e, url, errbuf);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_small);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
		b.len = 0;
		rc = curl_easy_perform(e);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		if (rc == CURLE_OK || b.over || !transient(rc, status))
			break;
		backoff(attempt, NULL);
	}
	curl_easy_cleanup(e);
	if (b.over) {
		free(b.p);
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "%s is larger than %zu bytes", url, max);
	}
	if (rc != CURLE_OK) {
		free(b.p);
		return provision_err_curl(err, rc, status, url, errbuf);
	}
	b.p[b.len] = 0;
	*out = b.p;
	*len = b.len;
	return 0;
}

/* the value of a header line named name (case-insensitive), trimmed and
 * unquoted, into out; false when the line is another header */
static bool header_value(const char *line, size_t len, const char *name,
			 char *out, size_t cap)
{
	const char *k, *v;
	size_t klen, vlen;

	if (!lemon_split_kv(line, len, ':', &k, &klen, &v, &vlen) ||
	    klen != strlen(name) || strncasecmp(k, name, klen) != 0)
		return false;
	lemon_str_trim(&v, &vlen);
	if (vlen >= 2 && v[0] == 'W' && v[1] == '/') {
		v += 2;
		vlen -= 2;
	}
	if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
		v++;
		vlen -= 2;
	}
	return lemon_str_copy_n(out, cap, v, vlen);
}

struct head_state {
	struct provision_head *h;
	uint64_t linked_size, length;
	char etag[65];
};

static size_t on_head(char *data, size_t size, size_t n, void *user)
{
	struct head_state *hs = user;
	size_t len = size * n;
	char v[128];

	if (header_value(data, len, "x-linked-etag", v, sizeof(v)) &&
	    provision_sha256_hex(v))
		lemon_str_copy(hs->h->sha256, sizeof(hs->h->sha256), v);
	else if (header_value(data, len, "etag", v, sizeof(v)) && provision_sha256_hex(v))
		lemon_str_copy(hs->etag, sizeof(hs->etag), v);
	else if (header_value(data, len, "x-linked-size", v, sizeof(v)))
		lemon_parse_u64(v, strlen(v), 10, UINT64_MAX, &hs->linked_size, NULL);
	else if (header_value(data, len, "content-length", v, sizeof(v)))
		lemon_parse_u64(v, strlen(v), 10, UINT64_MAX, &hs->length, NULL);
	return len;
}

int provision_fetch_head(const char *url, const char *bearer, struct provision_head *h,
		    struct lemon_err *err)
{
	struct head_state hs = { .h = h };
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode rc = CURLE_OK;
	CURL *e;
	int attempt;

	memset(h, 0, sizeof(*h));
	if (provision_curl_load(err) < 0)
		return -1;
	e = curl_easy_init();
	if (e == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "curl init failed");
	for (attempt = 1; attempt <= 3; attempt++) {
		curl_easy_reset(e);
		provision_curl_setup(e, url, errbuf);
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
		curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_head);
		curl_easy_setopt(e, CURLOPT_HEADERDATA, &hs);
		if (bearer && bearer[0]) {
			curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
			curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, bearer);
		}
		memset(&hs, 0, sizeof(hs));
		hs.h = h;
		h->sha256[0] = 0;
		rc = curl_easy_perform(e);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &h->status);
		if (rc == CURLE_OK || !transient(rc, h->status))
			break;
		backoff(attempt, NULL);
	}
	curl_easy_cleanup(e);
	if (rc != CURLE_OK)
		return provision_err_curl(err, rc, h->status, url, errbuf);
	if (h->sha256[0] == 0 && hs.etag[0])
		lemon_str_copy(h->sha256, sizeof(h->sha256), hs.etag);
	h->size = hs.linked_size;
	/* a redirect's Content-Length is its own body's, not the file's */
	if (h->size == 0 && h->status >= 200 && h->status < 300)
		h->size = hs.length;
	return 0;
}
