/* server/http1_request.c: the request head and chunked bodies as lemon's
 * own HTTP server parses them, including the inputs that gave two
 * response heads or HTML error pages under libmicrohttpd */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/server-private.h"

/* parses a copy of s (the parser cuts fields in place) */
static int parse(const char *s, struct server_http1_request *r, char **keep)
{
	size_t n = strlen(s);
	char *b = malloc(n + 1);

	assert_non_null(b);
	memcpy(b, s, n + 1);
	*keep = b;
	return server_http1_parse_request(b, n, r);
}

static unsigned status_of(const char *s)
{
	struct server_http1_request r;
	char *b;
	int rc = parse(s, &r, &b);

	free(b);
	return rc < 0 ? r.status : 0;
}

static void test_simple_get(void **state)
{
	const char *s = "GET /api/v1/health?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
			"Accept:  */*  \r\nAuthorization: Bearer k\r\n\r\nNEXT";
	struct server_http1_request r;
	char *b;

	(void)state;
	assert_int_equal(parse(s, &r, &b), (int)(strlen(s) - 4));
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.target, "/api/v1/health");
	assert_string_equal(r.query, "x=1");
	assert_int_equal(r.minor, 1);
	assert_int_equal(r.n_headers, 3);
	assert_string_equal(r.host, "127.0.0.1:8000");
	assert_string_equal(server_http1_header(&r, "accept"), "*/*");
	assert_string_equal(server_http1_header(&r, "AUTHORIZATION"), "Bearer k");
	assert_null(server_http1_header(&r, "Content-Type"));
	assert_true(r.keep_alive);
	assert_false(r.has_length);
	assert_false(r.chunked);
	free(b);
}

static void test_incomplete_then_complete(void **state)
{
	struct server_http1_request r;
	char *b;

	(void)state;
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n", &r, &b), 0);
	free(b);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n\r", &r, &b), 0);
	free(b);
	assert_int_equal(parse("", &r, &b), 0);
	free(b);
	/* bare LF line ends are read too; leading empty lines skipped */
	assert_int_equal(parse("\r\nGET / HTTP/1.0\n\n", &r, &b), 18);
	assert_false(r.keep_alive);
	assert_null(r.host);
	free(b);
}

static void test_post_framing(void **state)
{
	struct server_http1_request r;
	char *b;

	(void)state;
	assert_true(parse("POST /v1/completions HTTP/1.1\r\nHost: h\r\n"
			  "Content-Length: 12\r\nConnection: close\r\n"
			  "Expect: 100-continue\r\n\r\n",
			  &r, &b) > 0);
	assert_true(r.has_length);
	assert_int_equal(r.length, 12);
	assert_false(r.keep_alive);
	assert_true(r.expect_continue);
	free(b);
	assert_true(
		parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n",
		      &r, &b) > 0);
	assert_true(r.chunked);
	free(b);
	assert_true(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r, &b) >
		    0);
	assert_true(r.keep_alive);
	free(b);
}

/* every refused head gets one status, never a second head */
static void test_refused(void **state)
{
	char big[SERVER_HTTP1_LINE_MAX + 64], hdrs[8192];
	size_t i, o;

	(void)state;
	assert_int_equal(
		status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"),
		400);
	assert_int_equal(
		status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n"),
		400);
	assert_int_equal(
		status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n"),
		400);
	assert_int_equal(
		status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n"),
		400);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
				   "Content-Length: 5\r\n\r\n"),
			 400);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: "
				   "99999999999999999999\r\n\r\n"),
			 413);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n"),
			 400);
	assert_int_equal(
		status_of(
			"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"),
		501);
	assert_int_equal(
		status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
	assert_int_equal(status_of("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), 505);
	assert_int_equal(status_of("GET / FTP/1.1\r\nHost: h\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\n\r\n"), 400); /* no Host */
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"),
			 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n"), 400);
	assert_int_equal(
		status_of("GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer a\x01"
			  "b\r\n\r\n"),
		400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"), 400);
	assert_int_equal(
		status_of("GET / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n"), 417);
	assert_int_equal(status_of("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
	assert_int_equal(status_of("GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
	assert_int_equal(status_of("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
	assert_int_equal(status_of("GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
	/* a request line over 8 KiB: 414 even before it is complete */
	memcpy(big, "GET /", 5);
	memset(big + 5, 'a', sizeof(big) - 6);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(status_of(big), 414);
	/* 101 header fields: 431 */
	o = (size_t)snprintf(hdrs, sizeof(hdrs), "GET / HTTP/1.1\r\nHost: h\r\n");
	for (i = 0; i < 100; i++)
		o += (size_t)snprintf(hdrs + o, sizeof(hdrs) - o, "X-%zu: v\r\n", i);
	snprintf(hdrs + o, sizeof(hdrs) - o, "\r\n");
	assert_int_equal(status_of(hdrs), 431);
}

static void test_nul_and_huge_head(void **state)
{
	static const char nul[] =
		"GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer a\0b\r\n\r\n";
	struct server_http1_request r;
	size_t n = SERVER_HTTP1_HEAD_MAX + 100, o = 0;
	char *b = malloc(n), c[sizeof(nul)];

	(void)state;
	memcpy(c, nul, sizeof(nul));
	assert_int_equal(server_http1_parse_request(c, sizeof(nul) - 1, &r), -1);
	assert_int_equal(r.status, 400);
	/* a head growing past 32 KiB without its end: 431 */
	assert_non_null(b);
	o += (size_t)snprintf(b, n, "GET / HTTP/1.1\r\n");
	while (o + 20 < n)
		o += (size_t)snprintf(b + o, n - o, "X-Pad: 0123456789\r\n");
	assert_int_equal(server_http1_parse_request(b, o, &r), -1);
	assert_int_equal(r.status, 431);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_get),
		cmocka_unit_test(test_incomplete_then_complete),
		cmocka_unit_test(test_post_framing),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_nul_and_huge_head),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
