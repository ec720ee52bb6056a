/* libFuzzer target for util/http1.c: any bytes as a response head either
 * parse (with the body framing consistent), need more bytes, or fail with
 * a named code; the rest of the input is fed to every body decoder in
 * pieces, and the decoded body never exceeds what the framing allows */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/http1.h"

static void decode(const struct lemon_http1_head *h, const char *in, size_t len, size_t step)
{
	struct lemon_http1_reader r;
	char out[97];
	size_t pos = 0, total = 0;

	lemon_http1_body_init(&r, h);
	while (pos < len) {
		size_t n = len - pos < step ? len - pos : step, used, got;
		int rc = lemon_http1_body_decode(&r, in + pos, n, &used, out, sizeof(out), &got);

		if (used > n || got > sizeof(out))
			abort();
		if (rc < 0 || (used == 0 && got == 0))
			break;
		if (rc != LEMON_HTTP1_OK && rc != LEMON_HTTP1_INCOMPLETE)
			abort();
		if (strcmp(lemon_http1_rc_name(rc), "unknown") == 0)
			abort();
		pos += used;
		total += got;
	}
	if (h->body == LEMON_HTTP1_BODY_LENGTH && total > h->content_length)
		abort();
	if (h->body == LEMON_HTTP1_BODY_NONE && total != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lemon_http1_head h;
	const char *b = (const char *)data;
	int rc = lemon_http1_parse_head(b, size, &h);

	if (strcmp(lemon_http1_rc_name(rc), "unknown") == 0)
		abort();
	if (rc == LEMON_HTTP1_OK) {
		if (h.head_len > size || h.head_len > LEMON_HTTP1_HEAD_MAX || h.status < 200 ||
		    h.status > 599 || memchr(h.content_type, 0, sizeof(h.content_type)) == NULL ||
		    h.content_length > LEMON_HTTP1_BODY_MAX)
			abort();
		decode(&h, b + h.head_len, size - h.head_len, 1);
		decode(&h, b + h.head_len, size - h.head_len, 7);
		decode(&h, b + h.head_len, size - h.head_len, size);
	} else if (rc == LEMON_HTTP1_INCOMPLETE && size >= LEMON_HTTP1_HEAD_MAX) {
		abort();
	}
	/* the same bytes as a bare chunked body */
	{
		struct lemon_http1_head ch = { .status = 200, .body = LEMON_HTTP1_BODY_CHUNKED };

		decode(&ch, b, size, 3);
	}
	return 0;
}
