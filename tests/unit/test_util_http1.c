/* util/http1.c: the response head parser and the body decoders, every
 * result code asserted */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/http1.h"

static int head(const char *s, struct lemon_http1_head *h)
{
	return lemon_http1_parse_head(s, strlen(s), h);
}

static void test_head_ok(void **state)
{
	struct lemon_http1_head h;
	const char *r = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
			"Transfer-Encoding: chunked\r\nConnection: keep-alive, Close\r\n"
			"\r\nbody";

	(void)state;
	assert_int_equal(head(r, &h), LEMON_HTTP1_OK);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.head_len, strlen(r) - 4);
	assert_int_equal(h.body, LEMON_HTTP1_BODY_CHUNKED);
	assert_true(h.conn_close);
	assert_string_equal(h.content_type, "text/event-stream");

	assert_int_equal(head("HTTP/1.0 404 Not Found\r\ncontent-length:  12 \r\n\r\n", &h),
			 LEMON_HTTP1_OK);
	assert_int_equal(h.status, 404);
	assert_int_equal(h.body, LEMON_HTTP1_BODY_LENGTH);
	assert_int_equal(h.content_length, 12);
	assert_false(h.conn_close);
	assert_string_equal(h.content_type, "");

	/* no reason phrase; no length: the body runs to the close */
	assert_int_equal(head("HTTP/1.1 500\r\n\r\n", &h), LEMON_HTTP1_OK);
	assert_int_equal(h.status, 500);
	assert_int_equal(h.body, LEMON_HTTP1_BODY_CLOSE);

	/* 204 has no body whatever the headers say; a repeated equal length */
	assert_int_equal(head("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n"
			      "Content-Length: 5\r\n\r\n",
			      &h),
			 LEMON_HTTP1_OK);
	assert_int_equal(h.body, LEMON_HTTP1_BODY_NONE);
	assert_int_equal(head("HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n", &h),
			 LEMON_HTTP1_OK);
	assert_true(h.content_length == LEMON_HTTP1_BODY_MAX);
}

static void test_head_incomplete(void **state)
{
	struct lemon_http1_head h;
	const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
	size_t i;

	(void)state;
	/* every proper prefix needs more bytes, none is invalid */
	for (i = 0; i < strlen(r); i++)
		assert_int_equal(lemon_http1_parse_head(r, i, &h), LEMON_HTTP1_INCOMPLETE);
	assert_int_equal(lemon_http1_parse_head(r, strlen(r), &h), LEMON_HTTP1_OK);
}

static void test_head_status_errors(void **state)
{
	struct lemon_http1_head h;

	(void)state;
	assert_int_equal(head("HTTP/2 200 OK\r\n\r\n", &h), LEMON_HTTP1_BAD_STATUS_LINE);
	assert_int_equal(head("HTTP/1.2 200 OK\r\n\r\n", &h), LEMON_HTTP1_BAD_STATUS_LINE);
	assert_int_equal(head("HTTP/1.1 20 OK\r\n\r\n", &h), LEMON_HTTP1_BAD_STATUS_LINE);
	assert_int_equal(head("HTTP/1.1 2000 OK\r\n\r\n", &h), LEMON_HTTP1_BAD_STATUS_LINE);
	assert_int_equal(head("HTTP/1.1  200 OK\r\n\r\n", &h), LEMON_HTTP1_BAD_STATUS_LINE);
	assert_int_equal(head("HTTP/1.1 200 O\001K\r\n\r\n", &h), LEMON_HTTP1_BAD_STATUS_LINE);
	assert_int_equal(head("hello\r\n\r\n", &h), LEMON_HTTP1_BAD_STATUS_LINE);
	assert_int_equal(head("HTTP/1.1 100 Continue\r\n\r\n", &h), LEMON_HTTP1_BAD_STATUS);
	assert_int_equal(head("HTTP/1.1 600 Odd\r\n\r\n", &h), LEMON_HTTP1_BAD_STATUS);
	assert_int_equal(head("HTTP/1.1 099 Odd\r\n\r\n", &h), LEMON_HTTP1_BAD_STATUS);
}

static void test_head_header_errors(void **state)
{
	struct lemon_http1_head h;

	(void)state;
	assert_int_equal(head("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", &h), LEMON_HTTP1_BAD_HEADER);
	assert_int_equal(head("HTTP/1.1 200 OK\r\n: empty\r\n\r\n", &h), LEMON_HTTP1_BAD_HEADER);
	assert_int_equal(head("HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n", &h),
			 LEMON_HTTP1_BAD_HEADER);
	assert_int_equal(head("HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", &h),
			 LEMON_HTTP1_BAD_HEADER);
	assert_int_equal(head("HTTP/1.1 200 OK\r\nA: b\001c\r\n\r\n", &h), LEMON_HTTP1_BAD_HEADER);
	assert_int_equal(lemon_http1_parse_head("HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n", 29, &h),
			 LEMON_HTTP1_BAD_HEADER);
	assert_int_equal(head("HTTP/1.1 200 OK\nA: b\r\n\r\n", &h), LEMON_HTTP1_BAD_LINE_END);
	assert_int_equal(head("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", &h), LEMON_HTTP1_BAD_LINE_END);
	assert_int_equal(head("HTTP/1.1 200 OK\r\n\n", &h), LEMON_HTTP1_BAD_LINE_END);
	assert_int_equal(head("HTTP/1.1 200 OK\r\nContent-Type: "
			      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			      "\r\n\r\n",
			      &h),
			 LEMON_HTTP1_VALUE_TOO_LONG);
}

static void test_head_framing_errors(void **state)
{
	struct lemon_http1_head h;

	(void)state;
	assert_int_equal(head("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", &h),
			 LEMON_HTTP1_BAD_LENGTH);
	assert_int_equal(head("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", &h),
			 LEMON_HTTP1_BAD_LENGTH);
	assert_int_equal(head("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", &h),
			 LEMON_HTTP1_BAD_LENGTH);
	assert_int_equal(head("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", &h),
			 LEMON_HTTP1_BAD_LENGTH);
	assert_int_equal(head("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", &h),
			 LEMON_HTTP1_BAD_LENGTH);
	assert_int_equal(head("HTTP/1.1 200 OK\r\nContent-Length: 1099511627777\r\n\r\n", &h),
			 LEMON_HTTP1_BAD_LENGTH);
	assert_int_equal(
		head("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", &h),
		LEMON_HTTP1_BAD_LENGTH);
	assert_int_equal(
		head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", &h),
		LEMON_HTTP1_BAD_LENGTH);
	assert_int_equal(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &h),
			 LEMON_HTTP1_BAD_ENCODING);
	assert_int_equal(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
			      "Transfer-Encoding: chunked\r\n\r\n",
			      &h),
			 LEMON_HTTP1_BAD_ENCODING);
	assert_int_equal(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
			      "Content-Length: 3\r\n\r\n",
			      &h),
			 LEMON_HTTP1_BAD_FRAMING);
}

static void test_head_limits(void **state)
{
	struct lemon_http1_head h;
	size_t cap = LEMON_HTTP1_HEAD_MAX + 64, n, i;
	char *b = malloc(cap);

	(void)state;
	assert_non_null(b);
	/* one endless header line: too long once the limit is reached */
	n = (size_t)snprintf(b, cap, "HTTP/1.1 200 OK\r\nX: ");
	memset(b + n, 'a', cap - n);
	assert_int_equal(lemon_http1_parse_head(b, LEMON_HTTP1_HEAD_MAX - 1, &h),
			 LEMON_HTTP1_INCOMPLETE);
	assert_int_equal(lemon_http1_parse_head(b, LEMON_HTTP1_HEAD_MAX, &h),
			 LEMON_HTTP1_HEAD_TOO_LONG);
	assert_int_equal(lemon_http1_parse_head(b, cap, &h), LEMON_HTTP1_HEAD_TOO_LONG);
	/* many short headers */
	n = (size_t)snprintf(b, cap, "HTTP/1.1 200 OK\r\n");
	for (i = 0; i <= LEMON_HTTP1_HEADERS_MAX; i++)
		n += (size_t)snprintf(b + n, cap - n, "X: y\r\n");
	n += (size_t)snprintf(b + n, cap - n, "\r\n");
	assert_int_equal(lemon_http1_parse_head(b, n, &h), LEMON_HTTP1_TOO_MANY_HEADERS);
	free(b);
}

/* decodes s fed in pieces of step bytes into a buffer of out_cap at a
 * time; returns the last result, the body in out */
static int dechunk(const char *s, size_t len, size_t step, size_t out_cap, char *out,
		   size_t *out_len, struct lemon_http1_chunked *c)
{
	size_t have = 0, pos = 0;
	int rc = LEMON_HTTP1_INCOMPLETE;

	memset(c, 0, sizeof(*c));
	*out_len = 0;
	while (!c->done) {
		size_t used, got;

		if (have < len)
			have = have + step < len ? have + step : len;
		else if (rc == LEMON_HTTP1_INCOMPLETE)
			return rc;
		rc = lemon_http1_chunked_decode(c, s + pos, have - pos, &used, out + *out_len,
						out_cap, &got);
		if (rc < 0)
			return rc;
		pos += used;
		*out_len += got;
	}
	return rc;
}

static void test_chunked_ok(void **state)
{
	static const char body[] = "5\r\nhello\r\n7;ext=1\r\n, world\r\n"
				   "0\r\nTrailer: x\r\n\r\nEXTRA";
	struct lemon_http1_chunked c;
	char out[64];
	size_t n, step, cap;

	(void)state;
	for (step = 1; step < sizeof(body); step++)
		for (cap = 1; cap < 16; cap += 3) {
			assert_int_equal(dechunk(body, sizeof(body) - 1, step, cap, out, &n, &c),
					 LEMON_HTTP1_OK);
			assert_true(c.done);
			assert_int_equal(n, 12);
			assert_memory_equal(out, "hello, world", 12);
		}
	/* the bytes after the end are not consumed */
	memset(&c, 0, sizeof(c));
	{
		size_t used, got;

		assert_int_equal(lemon_http1_chunked_decode(&c, "0\r\n\r\nXY", 7, &used, out,
							    sizeof(out), &got),
				 LEMON_HTTP1_OK);
		assert_int_equal(used, 5);
		assert_int_equal(got, 0);
		assert_true(c.done);
	}
}

static int chunk1(const char *s)
{
	struct lemon_http1_chunked c;
	char out[64];
	size_t n;

	return dechunk(s, strlen(s), strlen(s), sizeof(out), out, &n, &c);
}

static void test_chunked_errors(void **state)
{
	char big[LEMON_HTTP1_CHUNK_LINE_MAX + 16];

	(void)state;
	assert_int_equal(chunk1("5\r\nhel"), LEMON_HTTP1_INCOMPLETE);
	assert_int_equal(chunk1("\r\n"), LEMON_HTTP1_BAD_CHUNK);
	assert_int_equal(chunk1("g\r\n"), LEMON_HTTP1_BAD_CHUNK);
	assert_int_equal(chunk1("-5\r\n"), LEMON_HTTP1_BAD_CHUNK);
	assert_int_equal(chunk1("5 \r\nhello\r\n"), LEMON_HTTP1_BAD_CHUNK);
	assert_int_equal(chunk1("5\nhello\r\n"), LEMON_HTTP1_BAD_CHUNK);
	assert_int_equal(chunk1("5\r\nhelloXX"), LEMON_HTTP1_BAD_CHUNK);
	assert_int_equal(chunk1("5\r\nhello\rX"), LEMON_HTTP1_BAD_CHUNK);
	assert_int_equal(chunk1("5;a\001\r\nhello\r\n"), LEMON_HTTP1_BAD_CHUNK);
	assert_int_equal(chunk1("0\r\nX\001\r\n\r\n"), LEMON_HTTP1_BAD_CHUNK);
	assert_int_equal(chunk1("0\r\nX: y\rZ"), LEMON_HTTP1_BAD_CHUNK);
	assert_int_equal(chunk1("0\r\n\rZ"), LEMON_HTTP1_BAD_CHUNK);
	assert_int_equal(chunk1("10000000001\r\n"), LEMON_HTTP1_CHUNK_TOO_LONG);
	assert_int_equal(chunk1("000000000001\r\n"), LEMON_HTTP1_CHUNK_TOO_LONG);
	assert_int_equal(chunk1("ffffffffffffffffffff\r\n"), LEMON_HTTP1_CHUNK_TOO_LONG);
	memset(big, 'e', sizeof(big));
	memcpy(big, "1;", 2);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(chunk1(big), LEMON_HTTP1_CHUNK_TOO_LONG);
	memcpy(big, "0\r\n", 3);
	assert_int_equal(chunk1(big), LEMON_HTTP1_CHUNK_TOO_LONG);
}

static void test_reader(void **state)
{
	struct lemon_http1_head h;
	struct lemon_http1_reader r;
	char out[8];
	size_t used, got;

	(void)state;
	assert_int_equal(head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", &h), 0);
	lemon_http1_body_init(&r, &h);
	assert_false(lemon_http1_body_done(&r));
	assert_false(lemon_http1_body_eof_ok(&r));
	assert_int_equal(lemon_http1_body_decode(&r, "", 0, &used, out, sizeof(out), &got),
			 LEMON_HTTP1_INCOMPLETE);
	assert_int_equal(lemon_http1_body_decode(&r, "abcdef", 6, &used, out, sizeof(out), &got),
			 LEMON_HTTP1_OK);
	assert_int_equal(used, 3);
	assert_int_equal(got, 3);
	assert_true(lemon_http1_body_done(&r));
	assert_true(lemon_http1_body_eof_ok(&r));

	assert_int_equal(head("HTTP/1.1 200 OK\r\n\r\n", &h), 0);
	lemon_http1_body_init(&r, &h);
	assert_int_equal(
		lemon_http1_body_decode(&r, "abcdefghij", 10, &used, out, sizeof(out), &got),
		LEMON_HTTP1_OK);
	assert_int_equal(got, 8);
	assert_false(lemon_http1_body_done(&r));
	assert_true(lemon_http1_body_eof_ok(&r));

	assert_int_equal(head("HTTP/1.1 304 Not Modified\r\n\r\n", &h), 0);
	lemon_http1_body_init(&r, &h);
	assert_int_equal(lemon_http1_body_decode(&r, "ab", 2, &used, out, sizeof(out), &got),
			 LEMON_HTTP1_OK);
	assert_int_equal(used + got, 0);
	assert_true(lemon_http1_body_done(&r));

	assert_int_equal(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &h), 0);
	lemon_http1_body_init(&r, &h);
	assert_int_equal(
		lemon_http1_body_decode(&r, "2\r\nab\r\n", 7, &used, out, sizeof(out), &got),
		LEMON_HTTP1_OK);
	assert_int_equal(got, 2);
	assert_false(lemon_http1_body_eof_ok(&r));
	assert_int_equal(lemon_http1_body_decode(&r, "0\r\n\r\n", 5, &used, out, sizeof(out), &got),
			 LEMON_HTTP1_OK);
	assert_true(lemon_http1_body_eof_ok(&r));
}

static void test_rc_names(void **state)
{
	int rc;

	(void)state;
	for (rc = LEMON_HTTP1_CHUNK_TOO_LONG; rc <= LEMON_HTTP1_INCOMPLETE; rc++)
		assert_string_not_equal(lemon_http1_rc_name(rc), "unknown");
	assert_string_equal(lemon_http1_rc_name(-99), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_ok),
		cmocka_unit_test(test_head_incomplete),
		cmocka_unit_test(test_head_status_errors),
		cmocka_unit_test(test_head_header_errors),
		cmocka_unit_test(test_head_framing_errors),
		cmocka_unit_test(test_head_limits),
		cmocka_unit_test(test_chunked_ok),
		cmocka_unit_test(test_chunked_errors),
		cmocka_unit_test(test_reader),
		cmocka_unit_test(test_rc_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
