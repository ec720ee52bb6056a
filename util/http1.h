/* HTTP/1.x response parsing as pure functions of (buffer, length): the
 * response head (status and the few headers lemon acts on) and an
 * incremental chunked-body decoder. One leaf shared by the three places
 * that read HTTP answers (the proxy to llama-server children, the CLI's
 * client, the children's /health probe), so strictness and limits are
 * decided once. No I/O here: callers own their sockets and buffers. */
#ifndef LEMON_UTIL_HTTP1_H
#define LEMON_UTIL_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* the whole head, status line to blank line, may be at most this long */
#define LEMON_HTTP1_HEAD_MAX 16384
/* header lines after the status line */
#define LEMON_HTTP1_HEADERS_MAX 64
/* Content-Length and chunk sizes above this are refused (1 TiB) */
#define LEMON_HTTP1_BODY_MAX (1ULL << 40)
/* one chunk-size line's extension, and all trailer lines together */
#define LEMON_HTTP1_CHUNK_LINE_MAX 1024
#define LEMON_HTTP1_CTYPE_MAX 128

/* results: 0 done, 1 more bytes needed, < 0 the bytes are not a valid
 * answer (lemon_http1_rc_name says which rule broke) */
enum lemon_http1_rc {
	LEMON_HTTP1_OK = 0,
	LEMON_HTTP1_INCOMPLETE = 1,
	LEMON_HTTP1_BAD_STATUS_LINE = -1, /* not "HTTP/1.x NNN reason" */
	LEMON_HTTP1_BAD_STATUS = -2,	  /* a code outside 200-599 */
	LEMON_HTTP1_BAD_HEADER = -3,	  /* no name, no colon, folding, CTL */
	LEMON_HTTP1_BAD_LINE_END = -4,	  /* a CR without LF or a bare LF */
	LEMON_HTTP1_HEAD_TOO_LONG = -5,	  /* over LEMON_HTTP1_HEAD_MAX */
	LEMON_HTTP1_TOO_MANY_HEADERS = -6,
	LEMON_HTTP1_BAD_LENGTH = -7,	  /* not digits, over max, conflicting */
	LEMON_HTTP1_BAD_ENCODING = -8,	  /* a transfer coding other than chunked */
	LEMON_HTTP1_BAD_FRAMING = -9,	  /* both Content-Length and chunked */
	LEMON_HTTP1_VALUE_TOO_LONG = -10, /* Content-Type over its buffer */
	LEMON_HTTP1_BAD_CHUNK = -11,	  /* a malformed chunk size or CRLF */
	LEMON_HTTP1_CHUNK_TOO_LONG = -12, /* chunk size or line over the limit */
};

/* how the body after the head is delimited */
enum lemon_http1_body {
	LEMON_HTTP1_BODY_LENGTH,  /* Content-Length bytes */
	LEMON_HTTP1_BODY_CHUNKED, /* Transfer-Encoding: chunked */
	LEMON_HTTP1_BODY_CLOSE,	  /* everything until the connection closes */
	LEMON_HTTP1_BODY_NONE,	  /* 204 and 304 carry none */
};

struct lemon_http1_head {
	unsigned status;
	size_t head_len; /* bytes of the head, blank line included */
	enum lemon_http1_body body;
	uint64_t content_length;		  /* for LEMON_HTTP1_BODY_LENGTH */
	bool conn_close;			  /* Connection: close */
	char content_type[LEMON_HTTP1_CTYPE_MAX]; /* "" when absent */
};

/* parses the response head at the start of buf. Lines end in CRLF; header
 * names are tokens; Content-Length is plain digits (a repeat must be the
 * same value); the only transfer coding taken is "chunked"; 1xx interim
 * answers are refused (lemon never sends Expect or Upgrade). Returns
 * LEMON_HTTP1_OK with *out filled, LEMON_HTTP1_INCOMPLETE when the blank
 * line has not arrived yet (and the head is still within the limit), or a
 * negative enum lemon_http1_rc. */
int lemon_http1_parse_head(const char *buf, size_t len, struct lemon_http1_head *out);

/* incremental chunked-body decoder; zero-initialise before the first
 * call */
struct lemon_http1_chunked {
	int state;
	uint64_t left;	 /* data bytes of the current chunk still to come */
	unsigned digits; /* of the chunk size read so far */
	size_t line;	 /* extension or trailer bytes read so far */
	bool done;	 /* the last chunk and the trailer have been read */
};

/* decodes from in[0..len) into out[0..cap): *used input bytes were
 * consumed and *out_len body bytes written. Consumes as much as it can in
 * one call, across chunk boundaries. Returns LEMON_HTTP1_OK when body
 * bytes were written or the body is complete (c->done),
 * LEMON_HTTP1_INCOMPLETE when all input was consumed without producing
 * body bytes (more input needed), or a negative enum lemon_http1_rc. */
int lemon_http1_chunked_decode(struct lemon_http1_chunked *c, const char *in, size_t len,
			       size_t *used, char *out, size_t cap, size_t *out_len);

/* the body framing of one response: a decoder for whichever of the
 * delimitations the head named. Zero-initialise, then
 * lemon_http1_body_init. */
struct lemon_http1_reader {
	enum lemon_http1_body kind;
	uint64_t left; /* for LEMON_HTTP1_BODY_LENGTH */
	struct lemon_http1_chunked ch;
};

void lemon_http1_body_init(struct lemon_http1_reader *r, const struct lemon_http1_head *h);

/* as lemon_http1_chunked_decode for any delimitation */
int lemon_http1_body_decode(struct lemon_http1_reader *r, const char *in, size_t len, size_t *used,
			    char *out, size_t cap, size_t *out_len);

/* the whole body has been decoded (never true for BODY_CLOSE: that ends
 * with the connection) */
bool lemon_http1_body_done(const struct lemon_http1_reader *r);

/* the connection closed now: true when that is a clean end of the body
 * (BODY_CLOSE, or everything was read), false when it was cut short */
bool lemon_http1_body_eof_ok(const struct lemon_http1_reader *r);

/* a fixed lower-case description of a result code ("bad chunk size") */
const char *lemon_http1_rc_name(int rc);

#endif
