/* server/body.c and server/body_json.c: request-body validation, every
 * fault asserted with the field it names */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "server/body.h"

struct bcase {
	enum server_body_route route;
	const char *body;
	size_t len; /* 0: strlen(body) */
	enum server_body_fault fault;
	const char *param;
};

#define CHAT SERVER_BODY_CHAT
#define OK SERVER_BODY_OK
#define M "\"model\":\"tiny\""
#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static const struct bcase cases[] = {
	/* accepted bodies */
	{ CHAT, "{" M "," MSGS "}", 0, OK, "" },
	{ CHAT,
	  " \r\n\t{" M ",\"stream\":true," MSGS ",\"max_tokens\":8,\"temperature\":0.5e-1}\n ", 0,
	  OK, "" },
	{ CHAT,
	  "{" M
	  ",\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b \\ud83d\\ude00 \xc3\xa9 \xf0\x9f\x98\x80\"}]}",
	  0, OK, "" },
	{ CHAT,
	  "{" M
	  ",\"messages\":[{\"role\":\"assistant\",\"content\":null},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}],\"max_tokens\":null,\"stop\":[\"a\"]}",
	  0, OK, "" },
	{ SERVER_BODY_COMPLETIONS, "{" M ",\"prompt\":[1,2,\"x\"]}", 0, OK, "" },
	{ SERVER_BODY_EMBEDDINGS, "{" M ",\"input\":[[1,2],[3]]}", 0, OK, "" },
	{ SERVER_BODY_EMBEDDINGS, "{" M ",\"input\":[\"a\",\"b\"]}", 0, OK, "" },
	{ SERVER_BODY_EMBEDDINGS, "{" M ",\"input\":[1,2,3]}", 0, OK, "" },
	{ SERVER_BODY_LOAD, "{\"model_name\":\"tiny\"}", 0, OK, "" },
	{ SERVER_BODY_PULL, "{\"name\":\"tiny:latest\",\"stream\":false}", 0, OK, "" },
	{ SERVER_BODY_OLLAMA_CHAT,
	  "{" M
	  ",\"options\":{\"temperature\":0,\"stop\":[\"x\"]},\"keep_alive\":\"5m\",\"format\":{}}",
	  0, OK, "" },
	{ SERVER_BODY_OLLAMA_GENERATE, "{" M ",\"prompt\":\"hi\",\"raw\":true,\"images\":null}", 0,
	  OK, "" },
	{ SERVER_BODY_OLLAMA_EMBED, "{" M ",\"input\":\"x\"}", 0, OK, "" },
	{ SERVER_BODY_OLLAMA_EMBEDDINGS, "{" M ",\"prompt\":\"x\"}", 0, OK, "" },
	{ SERVER_BODY_OLLAMA_SHOW, "{\"name\":\"tiny\"}", 0, OK, "" },
	/* null where clients send it for "not set" */
	{ CHAT, "{" M "," MSGS ",\"stream\":null,\"max_tokens\":null,\"stop\":null}", 0, OK, "" },
	{ SERVER_BODY_OLLAMA_GENERATE, "{" M ",\"prompt\":null,\"stream\":null,\"format\":null,\"options\":null,\"keep_alive\":null}", 0, OK, "" },

	/* the grammar */
	{ CHAT, "", 0, SERVER_BODY_EMPTY, "" },
	{ CHAT, "  \n", 0, SERVER_BODY_EMPTY, "" },
	{ CHAT, "{" M "," MSGS "}x", 0, SERVER_BODY_TRAILING, "" },
	{ CHAT, "{" M "," MSGS "}{}", 0, SERVER_BODY_TRAILING, "" },
	{ CHAT, "{" M "," MSGS "}\0", sizeof("{" M "," MSGS "}\0") - 1, SERVER_BODY_TRAILING, "" },
	{ CHAT, "[1]", 0, SERVER_BODY_NOT_OBJECT, "" },
	{ CHAT, "\"x\"", 0, SERVER_BODY_NOT_OBJECT, "" },
	{ CHAT, "{" M ",}", 0, SERVER_BODY_SYNTAX, "" },
	{ CHAT, "{'model':1}", 0, SERVER_BODY_SYNTAX, "" },
	{ CHAT, "{" M ",\"n\":01}", 0, SERVER_BODY_SYNTAX, "" },
	{ CHAT, "{" M ",\"n\":1.}", 0, SERVER_BODY_SYNTAX, "" },
	{ CHAT, "{" M ",\"n\":1e}", 0, SERVER_BODY_SYNTAX, "" },
	{ CHAT, "{" M ",\"n\":+1}", 0, SERVER_BODY_SYNTAX, "" },
	{ CHAT, "{" M ",\"n\":tru}", 0, SERVER_BODY_SYNTAX, "" },
	{ CHAT, "{" M ",\"x\":\"\\x\"}", 0, SERVER_BODY_SYNTAX, "" },
	{ CHAT, "{" M ",\"x\":\"\\u12g4\"}", 0, SERVER_BODY_SYNTAX, "" },
	{ CHAT, "{" M ",\"x\":\"abc", 0, SERVER_BODY_SYNTAX, "" },
	{ CHAT, "{" M ",\"x\":\xc3\xa9}", 0, SERVER_BODY_SYNTAX, "" },
	{ CHAT, "{" M ",\"x\":\"\xc3\x28\"}", 0, SERVER_BODY_UTF8, "" },
	{ CHAT, "{" M ",\"x\":\"\xc0\xaf\"}", 0, SERVER_BODY_UTF8, "" },	 /* overlong '/' */
	{ CHAT, "{" M ",\"x\":\"\xe0\x80\xaf\"}", 0, SERVER_BODY_UTF8, "" },	 /* overlong */
	{ CHAT, "{" M ",\"x\":\"\xed\xa0\x80\"}", 0, SERVER_BODY_UTF8, "" },	 /* U+D800 */
	{ CHAT, "{" M ",\"x\":\"\xf4\x90\x80\x80\"}", 0, SERVER_BODY_UTF8, "" }, /* > U+10FFFF */
	{ CHAT, "{" M ",\"x\":\"\xf5\x80\x80\x80\"}", 0, SERVER_BODY_UTF8, "" },
	{ CHAT, "{" M ",\"x\":\"\xff\"}", 0, SERVER_BODY_UTF8, "" },
	{ CHAT, "{" M ",\"x\":\"\xe2\x82\"}", 0, SERVER_BODY_UTF8, "" }, /* cut short */
	{ CHAT, "{" M ",\"x\":\"\xe2\x82", 0, SERVER_BODY_UTF8, "" },
	{ CHAT, "{" M ",\"x\":\"a\0b\"}", 27, SERVER_BODY_CONTROL, "" },
	{ CHAT, "{" M ",\"x\":\"a\nb\"}", 0, SERVER_BODY_CONTROL, "" },
	{ CHAT, "{" M ",\"x\":\"\\ud800\"}", 0, SERVER_BODY_SURROGATE, "" },
	{ CHAT, "{" M ",\"x\":\"\\ud800\\u0041\"}", 0, SERVER_BODY_SURROGATE, "" },
	{ CHAT, "{" M ",\"x\":\"\\udc00\"}", 0, SERVER_BODY_SURROGATE, "" },
	{ CHAT, "{\"model\":\"a\\u0000b\"," MSGS "}", 0, SERVER_BODY_NUL, "model" },
	{ CHAT, "{\"mod\\u0000el\":\"x\"," M "," MSGS "}", 0, SERVER_BODY_NUL, "" },
	{ SERVER_BODY_OLLAMA_CHAT, "{\"name\":\"a\\u0000b\"}", 0, SERVER_BODY_NUL, "name" },
	{ SERVER_BODY_OLLAMA_CHAT,
	  "{" M ",\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", 0,
	  SERVER_BODY_NUL, "" },
	{ SERVER_BODY_OLLAMA_GENERATE, "{" M ",\"prompt\":\"\\u0000\"}", 0, SERVER_BODY_NUL, "" },
	{ SERVER_BODY_PULL, "{\"model_name\":\"tiny\\u0000x\"}", 0, SERVER_BODY_NUL, "model_name" },
	{ CHAT,
	  "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
	  0, SERVER_BODY_DEPTH, "" },

	/* the fields */
	{ CHAT, "{" M "," M "," MSGS "}", 0, SERVER_BODY_DUPLICATE, "model" },
	{ CHAT, "{" M ",\"stream\":true,\"stream\":false," MSGS "}", 0, SERVER_BODY_DUPLICATE,
	  "stream" },
	{ CHAT, "{" M ",\"messages\":[{\"role\":\"user\",\"role\":\"system\"}]}", 0,
	  SERVER_BODY_DUPLICATE, "messages[0].role" },
	{ CHAT, "{" MSGS "}", 0, SERVER_BODY_NO_MODEL, "model" },
	{ CHAT, "{" M "}", 0, SERVER_BODY_MISSING, "messages" },
	{ CHAT, "{" M ",\"messages\":[{\"content\":\"x\"}]}", 0, SERVER_BODY_MISSING,
	  "messages[0]" },
	{ SERVER_BODY_COMPLETIONS, "{" M "}", 0, SERVER_BODY_MISSING, "prompt" },
	{ SERVER_BODY_EMBEDDINGS, "{" M "}", 0, SERVER_BODY_MISSING, "input" },
	{ SERVER_BODY_OLLAMA_EMBED, "{" M "}", 0, SERVER_BODY_MISSING, "input" },
	{ SERVER_BODY_OLLAMA_EMBEDDINGS, "{" M "}", 0, SERVER_BODY_MISSING, "prompt" },
	{ SERVER_BODY_LOAD, "{}", 0, SERVER_BODY_NO_MODEL, "model_name" },
	{ SERVER_BODY_OLLAMA_GENERATE, "{\"prompt\":\"x\"}", 0, SERVER_BODY_NO_MODEL, "model" },
	{ CHAT, "{\"model\":7," MSGS "}", 0, SERVER_BODY_TYPE, "model" },
	{ CHAT, "{" M ",\"messages\":{}}", 0, SERVER_BODY_TYPE, "messages" },
	{ CHAT, "{" M ",\"messages\":[1]}", 0, SERVER_BODY_TYPE, "messages[0]" },
	{ CHAT, "{" M ",\"messages\":[{\"role\":1}]}", 0, SERVER_BODY_TYPE, "messages[0].role" },
	{ CHAT, "{" M ",\"messages\":[{\"role\":\"user\",\"content\":5}]}", 0, SERVER_BODY_TYPE,
	  "messages[0].content" },
	{ CHAT, "{" M "," MSGS ",\"stream\":\"yes\"}", 0, SERVER_BODY_TYPE, "stream" },
	{ CHAT, "{" M "," MSGS ",\"max_tokens\":\"8\"}", 0, SERVER_BODY_TYPE, "max_tokens" },
	{ CHAT, "{" M "," MSGS ",\"temperature\":[]}", 0, SERVER_BODY_TYPE, "temperature" },
	{ CHAT, "{" M "," MSGS ",\"stop\":[1]}", 0, SERVER_BODY_TYPE, "stop[0]" },
	{ SERVER_BODY_COMPLETIONS, "{" M ",\"prompt\":{}}", 0, SERVER_BODY_TYPE, "prompt" },
	{ SERVER_BODY_COMPLETIONS, "{" M ",\"prompt\":[true]}", 0, SERVER_BODY_TYPE, "prompt[0]" },
	{ SERVER_BODY_EMBEDDINGS, "{" M ",\"input\":5}", 0, SERVER_BODY_TYPE, "input" },
	{ SERVER_BODY_EMBEDDINGS, "{" M ",\"input\":{\"a\":1}}", 0, SERVER_BODY_TYPE, "input" },
	{ SERVER_BODY_EMBEDDINGS, "{" M ",\"input\":[\"a\",1]}", 0, SERVER_BODY_TYPE, "input[1]" },
	{ SERVER_BODY_EMBEDDINGS, "{" M ",\"input\":[1,\"a\"]}", 0, SERVER_BODY_TYPE, "input[1]" },
	{ SERVER_BODY_EMBEDDINGS, "{" M ",\"input\":[[1],[\"a\"]]}", 0, SERVER_BODY_TYPE,
	  "input[1][0]" },
	{ SERVER_BODY_EMBEDDINGS, "{" M ",\"input\":[null]}", 0, SERVER_BODY_TYPE, "input" },
	{ SERVER_BODY_OLLAMA_CHAT, "{" M ",\"messages\":[{\"role\":\"user\",\"content\":[]}]}", 0,
	  SERVER_BODY_TYPE, "messages[0].content" },
	{ SERVER_BODY_OLLAMA_CHAT, "{" M ",\"options\":[]}", 0, SERVER_BODY_TYPE, "options" },
	{ SERVER_BODY_OLLAMA_CHAT, "{" M ",\"options\":{\"num_predict\":\"5\"}}", 0,
	  SERVER_BODY_TYPE, "options.num_predict" },
	{ SERVER_BODY_OLLAMA_CHAT, "{" M ",\"options\":{\"stop\":5}}", 0, SERVER_BODY_TYPE,
	  "options.stop" },
	{ SERVER_BODY_OLLAMA_CHAT, "{" M ",\"keep_alive\":true}", 0, SERVER_BODY_TYPE,
	  "keep_alive" },
	{ SERVER_BODY_OLLAMA_GENERATE, "{" M ",\"prompt\":[\"x\"]}", 0, SERVER_BODY_TYPE,
	  "prompt" },
	{ SERVER_BODY_OLLAMA_GENERATE, "{" M ",\"raw\":1}", 0, SERVER_BODY_TYPE, "raw" },
	{ SERVER_BODY_OLLAMA_EMBED, "{" M ",\"input\":[1]}", 0, SERVER_BODY_TYPE, "input[0]" },
	{ SERVER_BODY_PULL, "{" M ",\"stream\":\"no\"}", 0, SERVER_BODY_TYPE, "stream" },
	{ CHAT, "{\"model\":\"../etc\"," MSGS "}", 0, SERVER_BODY_NAME, "model" },
	{ CHAT, "{\"model\":\"\"," MSGS "}", 0, SERVER_BODY_NAME, "model" },
	{ SERVER_BODY_OLLAMA_SHOW, "{\"name\":\"a b\"}", 0, SERVER_BODY_NAME, "name" },
};

static void test_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bcase *c = &cases[i];
		struct server_body_err e;
		size_t len = c->len ? c->len : strlen(c->body);
		cJSON *root = server_body_parse(c->body, len, c->route, &e);

		if (e.fault != c->fault || strcmp(e.param, c->param) != 0)
			fail_msg("case %zu (%s): fault %d param '%s' (%s), want %d '%s'", i,
				 c->body, e.fault, e.param, e.msg, c->fault, c->param);
		assert_true((root != NULL) == (c->fault == OK));
		if (c->fault != OK)
			assert_true(e.msg[0] != 0);
		cJSON_Delete(root);
	}
}

static void test_offsets_and_codes(void **state)
{
	struct server_body_err e;

	(void)state;
	assert_null(server_body_parse("{\"model\":\"\xff\"}", 14, CHAT, &e));
	assert_int_equal(e.offset, 10);
	assert_string_equal(server_body_fault_code(e.fault), "invalid_string");
	assert_null(server_body_parse("{} x", 4, CHAT, &e));
	assert_int_equal(e.offset, 3);
	assert_string_equal(server_body_fault_code(SERVER_BODY_TRAILING), "invalid_json");
	assert_string_equal(server_body_fault_code(SERVER_BODY_NUL), "nul_in_name");
	assert_string_equal(server_body_fault_code(SERVER_BODY_NAME), "invalid_model_name");
	assert_string_equal(server_body_fault_code(SERVER_BODY_NO_MODEL), "missing_model");
	assert_null(server_body_parse("{\"prompt\":\"x\"}", 14, SERVER_BODY_OLLAMA_GENERATE, &e));
	assert_string_equal(e.msg, "model is required");
	assert_true(server_body_route_is_ollama(SERVER_BODY_OLLAMA_CHAT));
	assert_false(server_body_route_is_ollama(SERVER_BODY_PULL));
	assert_null(server_body_parse(NULL, 0, CHAT, &e));
	assert_int_equal(e.fault, SERVER_BODY_EMPTY);
}

static void test_clip(void **state)
{
	char out[8];

	(void)state;
	server_body_clip(out, sizeof(out), "abc", 3);
	assert_string_equal(out, "abc");
	/* never cut inside a character: 3 + 2 + 2 bytes fit, the 4th does not */
	server_body_clip(out, sizeof(out), "abc\xc3\xa9\xc3\xa9\xc3\xa9", 9);
	assert_string_equal(out, "abc\xc3\xa9\xc3\xa9");
	server_body_clip(out, sizeof(out), "a\xff\x01\xc3", 4);
	assert_string_equal(out, "a???");
	server_body_clip(out, sizeof(out), "\xed\xa0\x80", 3);
	assert_string_equal(out, "???");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_offsets_and_codes),
		cmocka_unit_test(test_clip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
