/* server/routes.c and server/respond.c: the route table (Lemonade's four
 * prefixes, a path that exists under another method, the {id} tail, the
 * error shape of a path) and the one mapping of lemon error codes to HTTP
 * statuses, the same for every shape (issue 13: the Ollama routes said
 * 500 where the OpenAI routes said 503 for the same code) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/server-private.h"

static const struct server_route *find(const char *method, const char *path, const char **tail,
				       bool *other)
{
	return server_route_find(method, path, tail, other);
}

static void test_prefixes(void **state)
{
	static const char *const pre[] = { "/api/v0/", "/api/v1/", "/v0/", "/v1/" };
	const struct server_route *r;
	const char *tail;
	char path[64], label[SERVER_ROUTE_LABEL_MAX];
	bool other;
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%schat/completions", pre[i]);
		r = find("POST", path, &tail, &other);
		assert_non_null(r);
		assert_false(other);
		assert_string_equal(r->upstream, "/v1/chat/completions");
		assert_int_equal(r->shape, SERVER_SHAPE_OPENAI);
		server_route_label(r, label, sizeof(label));
		assert_string_equal(label, "/v1/chat/completions");
		snprintf(path, sizeof(path), "%shealth", pre[i]);
		r = find("GET", path, &tail, &other);
		assert_non_null(r);
		assert_ptr_equal(r->fn, server_api_health);
		snprintf(path, sizeof(path), "%sreranking", pre[i]);
		r = find("POST", path, &tail, &other);
		assert_non_null(r);
		assert_string_equal(r->upstream, "/v1/rerank");
		assert_int_equal(r->role, BACKENDS_RERANK);
	}
	/* no other prefix, and Ollama's /api/ routes are not prefixed */
	assert_null(find("POST", "/v2/chat/completions", &tail, &other));
	assert_null(find("POST", "/api/chat/completions", &tail, &other));
	assert_null(find("POST", "/v1/api/chat", &tail, &other));
	r = find("POST", "/api/chat", &tail, &other);
	assert_non_null(r);
	assert_int_equal(r->shape, SERVER_SHAPE_OLLAMA);
}

static void test_methods_and_tail(void **state)
{
	const struct server_route *r;
	const char *tail;
	bool other;

	(void)state;
	r = find("GET", "/v1/chat/completions", &tail, &other);
	assert_non_null(r);
	assert_true(other);
	assert_string_equal(r->method, "POST");
	r = find("GET", "/api/v1/models/tiny", &tail, &other);
	assert_non_null(r);
	assert_false(other);
	assert_string_equal(tail, "tiny");
	assert_ptr_equal(r->fn, server_api_model);
	assert_null(find("GET", "/v1/models/", &tail, &other));
	assert_null(find("GET", "/v1/models/a/b", &tail, &other));
	r = find("GET", "/live", &tail, &other);
	assert_non_null(r);
	assert_null(find("GET", "/v1/live", &tail, &other));
	r = find("GET", "/metrics", &tail, &other);
	assert_non_null(r);
	assert_ptr_equal(r->fn, server_metrics_route);
	/* Anthropic's routes exist under /v1 only */
	r = find("POST", "/v1/messages/count_tokens", &tail, &other);
	assert_non_null(r);
	assert_int_equal(r->shape, SERVER_SHAPE_ANTHROPIC);
	assert_int_equal(r->body, SERVER_BODY_COUNT_TOKENS);
	assert_null(find("POST", "/api/v1/messages", &tail, &other));
}

static void test_shapes(void **state)
{
	(void)state;
	assert_int_equal(server_route_shape("/"), SERVER_SHAPE_OLLAMA);
	assert_int_equal(server_route_shape("/api/nothing"), SERVER_SHAPE_OLLAMA);
	assert_int_equal(server_route_shape("/api/v1/nothing"), SERVER_SHAPE_OPENAI);
	assert_int_equal(server_route_shape("/v1/messages"), SERVER_SHAPE_ANTHROPIC);
	assert_int_equal(server_route_shape("/v1/messages/other"), SERVER_SHAPE_ANTHROPIC);
	assert_int_equal(server_route_shape("/v2/x"), SERVER_SHAPE_OPENAI);
	assert_int_equal(server_route_shape(""), SERVER_SHAPE_OPENAI);
}

static void test_err_status(void **state)
{
	(void)state;
	assert_int_equal(server_err_status(LEMON_ERR_INVALID_ARG), 400);
	assert_int_equal(server_err_status(LEMON_ERR_INVALID_DATA), 400);
	assert_int_equal(server_err_status(LEMON_ERR_NOT_FOUND), 404);
	assert_int_equal(server_err_status(LEMON_ERR_NETWORK), 502);
	assert_int_equal(server_err_status(LEMON_ERR_INTERNAL), 500);
	/* no backend can be had for the request: the same 503 everywhere */
	assert_int_equal(server_err_status(LEMON_ERR_BUSY), 503);
	assert_int_equal(server_err_status(LEMON_ERR_TOO_LARGE), 503);
	assert_int_equal(server_err_status(LEMON_ERR_BROKEN_SYSTEM), 503);
	assert_int_equal(server_err_status(LEMON_ERR_UNSUPPORTED_HW), 503);
	assert_int_equal(server_err_status(LEMON_ERR_IO), 503);
}

/* the web app's rows (server/ui.c): GET only, open without the key, one
 * file name after /ui/ and nothing deeper, one metrics label for all */
static void test_ui_rows(void **state)
{
	const struct server_route *r;
	const char *tail;
	char label[SERVER_ROUTE_LABEL_MAX];
	bool other;

	(void)state;
	r = find("GET", "/ui/app.js", &tail, &other);
	assert_non_null(r);
	assert_false(other);
	assert_true(r->flags & SERVER_ROUTE_OPEN);
	assert_ptr_equal(r->fn, server_ui_asset);
	assert_string_equal(tail, "app.js");
	server_route_label(r, label, sizeof(label));
	assert_string_equal(label, "/ui/{file}");
	r = find("GET", "/ui/", &tail, &other);
	assert_non_null(r);
	assert_null(tail);
	assert_true(r->flags & SERVER_ROUTE_OPEN);
	r = find("GET", "/ui", &tail, &other);
	assert_non_null(r);
	assert_true(r->flags & SERVER_ROUTE_OPEN);
	assert_null(find("GET", "/ui/a/b.js", &tail, &other));
	r = find("POST", "/ui/app.js", &tail, &other);
	assert_true(other);
	/* the API rows stay closed */
	r = find("GET", "/v1/models", &tail, &other);
	assert_non_null(r);
	assert_false(r->flags & SERVER_ROUTE_OPEN);
	r = find("GET", "/", &tail, &other);
	assert_non_null(r);
	assert_false(r->flags & SERVER_ROUTE_OPEN);
	assert_ptr_equal(r->fn, server_ui_root);
}

/* the large body limit only for the routes whose bodies carry images,
 * under every prefix they answer; never below max_body */
static void test_body_limits(void **state)
{
	struct server_config c;

	(void)state;
	server_config_defaults(&c);
	assert_int_equal(c.max_body, 1u << 20);
	assert_int_equal(c.max_image_body, 32u << 20);
	assert_int_equal(server_route_body_limit(&c, "POST", "/v1/chat/completions"), 32u << 20);
	assert_int_equal(server_route_body_limit(&c, "POST", "/api/v0/chat/completions"), 32u << 20);
	assert_int_equal(server_route_body_limit(&c, "POST", "/v1/responses"), 32u << 20);
	assert_int_equal(server_route_body_limit(&c, "POST", "/v1/messages"), 32u << 20);
	assert_int_equal(server_route_body_limit(&c, "POST", "/v1/messages/count_tokens"), 32u << 20);
	assert_int_equal(server_route_body_limit(&c, "POST", "/api/chat"), 32u << 20);
	assert_int_equal(server_route_body_limit(&c, "POST", "/api/generate"), 32u << 20);
	assert_int_equal(server_route_body_limit(&c, "POST", "/v1/embeddings"), 1u << 20);
	assert_int_equal(server_route_body_limit(&c, "POST", "/v1/completions"), 1u << 20);
	assert_int_equal(server_route_body_limit(&c, "POST", "/api/show"), 1u << 20);
	assert_int_equal(server_route_body_limit(&c, "POST", "/api/pull"), 1u << 20);
	assert_int_equal(server_route_body_limit(&c, "POST", "/api/v1/load"), 1u << 20);
	assert_int_equal(server_route_body_limit(&c, "POST", "/nowhere"), 1u << 20);
	/* a chat path under another method is a 405: no large body for it */
	assert_int_equal(server_route_body_limit(&c, "DELETE", "/api/chat"), 1u << 20);
	assert_int_equal(server_config_set(&c, "max_image_body", "4096", NULL), 0);
	assert_int_equal(server_config_set(&c, "max_body", "8192", NULL), 0);
	assert_int_equal(server_route_body_limit(&c, "POST", "/api/chat"), 8192);
	assert_int_equal(server_config_set(&c, "max_image_body", "12", NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_methods_and_tail),
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_err_status),
		cmocka_unit_test(test_ui_rows),
		cmocka_unit_test(test_body_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
