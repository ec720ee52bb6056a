/* server/respond.c: what an error message must become before it goes into a
 * JSON body (issue 9 item 6): valid UTF-8, and no absolute data path */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/server-private.h"
#include "util/str.h"

static void test_utf8(void **state)
{
	char out[256];

	(void)state;
	server_clean_message(NULL, "plain ascii \"q\"", out, sizeof(out));
	assert_string_equal(out, "plain ascii \"q\"");
	server_clean_message(NULL, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8d\x8b", out,
			     sizeof(out));
	assert_string_equal(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8d\x8b");
	/* a lone byte, a cut sequence, an overlong '/', a surrogate */
	server_clean_message(NULL,
			     "a\xff"
			     "b",
			     out, sizeof(out));
	assert_string_equal(out, "a\xef\xbf\xbd"
				 "b");
	server_clean_message(NULL, "x\xe2\x82", out, sizeof(out));
	assert_string_equal(out, "x\xef\xbf\xbd\xef\xbf\xbd");
	server_clean_message(NULL, "\xc0\xaf", out, sizeof(out));
	assert_string_equal(out, "\xef\xbf\xbd\xef\xbf\xbd");
	server_clean_message(NULL, "\xed\xa0\x80", out, sizeof(out));
	assert_string_equal(out, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	/* a small buffer ends on a whole character */
	server_clean_message(NULL, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", out, 8);
	assert_string_equal(out, "\xe2\x82\xac");
}

static void test_paths(void **state)
{
	struct server *s = calloc(1, sizeof(*s));
	char out[256];

	(void)state;
	assert_non_null(s);
	lemon_str_copy(s->data_dir, sizeof(s->data_dir), "/home/u/.local/share/lemon");
	setenv("HOME", "/home/u", 1);
	server_clean_message(s,
			     "model 'x' not found in /home/u/.local/share/lemon/models",
			     out, sizeof(out));
	assert_string_equal(out, "model 'x' not found in <data>/models");
	server_clean_message(s, "reading /home/u/m.gguf: no such file", out, sizeof(out));
	assert_string_equal(out, "reading ~/m.gguf: no such file");
	server_clean_message(s, "/home/user2/f and /home/u", out, sizeof(out));
	assert_string_equal(out, "/home/user2/f and ~");
	server_clean_message(s, "/etc/x stays", out, sizeof(out));
	assert_string_equal(out, "/etc/x stays");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
