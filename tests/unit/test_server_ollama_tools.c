/* server/ollama_tools.c: Ollama's tool calls and OpenAI's, both ways: a
 * replayed conversation keeps its calls (ids in order, tool messages
 * answering the oldest open call of their tool_name), and the child's
 * streamed tool_calls deltas (as llama-server sends them: the first delta
 * with id and name, then argument fragments) become Ollama's calls with
 * arguments as an object */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/server-private.h"

static char *convert(const char *msgs)
{
	struct server_ollama_ids ids;
	cJSON *in = cJSON_Parse(msgs), *out = cJSON_CreateArray(), *m;
	char *t;

	assert_non_null(in);
	server_ollama_ids_init(&ids);
	cJSON_ArrayForEach (m, in)
		cJSON_AddItemToArray(out, server_ollama_message_to_openai(m, &ids));
	t = cJSON_PrintUnformatted(out);
	cJSON_Delete(in);
	cJSON_Delete(out);
	return t;
}

static void test_replay(void **state)
{
	char *t;

	(void)state;
	t = convert("[{\"role\":\"user\",\"content\":\"weather?\"},"
		    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":["
		    "{\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}},"
		    "{\"function\":{\"name\":\"get_time\",\"arguments\":{}}}]},"
		    "{\"role\":\"tool\",\"content\":\"12:00\",\"tool_name\":\"get_time\"},"
		    "{\"role\":\"tool\",\"content\":\"22C\"}]");
	assert_string_equal(
		t, "[{\"role\":\"user\",\"content\":\"weather?\"},"
		   "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":["
		   "{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
		   "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]},"
		   "{\"role\":\"tool\",\"content\":\"12:00\",\"tool_call_id\":\"call_1\",\"name\":\"get_time\"},"
		   "{\"role\":\"tool\",\"content\":\"22C\",\"tool_call_id\":\"call_0\",\"name\":\"get_weather\"}]");
	free(t);
	/* a tool message with no call open keeps its name, gets no id */
	t = convert("[{\"role\":\"tool\",\"content\":\"x\",\"tool_name\":\"f\"}]");
	assert_string_equal(t, "[{\"role\":\"tool\",\"content\":\"x\",\"name\":\"f\"}]");
	free(t);
}

static void test_deltas(void **state)
{
	static const char *const ev[] = {
		"[{\"index\":0,\"id\":\"abc\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]",
		"[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\": \"}}]",
		"[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]",
		"[{\"index\":1,\"id\":\"def\",\"type\":\"function\",\"function\":{\"name\":\"bad\",\"arguments\":\"not json\"}}]",
	};
	struct server_ollama_calls acc = { 0 };
	cJSON *d, *out;
	char *t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
		d = cJSON_Parse(ev[i]);
		assert_int_equal(server_ollama_calls_delta(&acc, d), 0);
		cJSON_Delete(d);
	}
	out = server_ollama_calls_json(&acc);
	t = cJSON_PrintUnformatted(out);
	assert_string_equal(t, "[{\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}},"
			       "{\"function\":{\"name\":\"bad\",\"arguments\":\"not json\"}}]");
	free(t);
	cJSON_Delete(out);
	d = cJSON_Parse("[{\"index\":99999,\"function\":{\"name\":\"x\"}}]");
	assert_int_equal(server_ollama_calls_delta(&acc, d), -1);
	cJSON_Delete(d);
	server_ollama_calls_free(&acc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_deltas),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
