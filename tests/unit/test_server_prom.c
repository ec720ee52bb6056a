/* server/prom.c: children's /metrics (text recorded from the bundle's
 * llama-server --metrics, trimmed) merged under lemon's names: renamed,
 * labelled with model and role, each family once, a counter without
 * _total exported as a gauge, junk lines skipped, label values escaped */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/prom.h"

static const char child[] =
	"# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached tokens\n"
	"# TYPE llamacpp:prompt_tokens_total counter\n"
	"llamacpp:prompt_tokens_total 29\n"
	"# HELP llamacpp:n_tokens_max Largest observed sequence length (prompt + generation)\n"
	"# TYPE llamacpp:n_tokens_max counter\n"
	"llamacpp:n_tokens_max 32\r\n";

static void test_merge(void **state)
{
	static struct server_prom p;
	struct server_prom_text t = { 0 };

	(void)state;
	server_prom_init(&p);
	server_prom_parse(&p, child, strlen(child), "tiny", "chat");
	server_prom_parse(&p, child, strlen(child), "tiny", "embeddings");
	server_prom_render(&p, &t);
	assert_false(t.failed);
	assert_string_equal(
		t.p,
		"# HELP lemon_llamacpp_prompt_tokens_total Number of prompt tokens processed, excluding cached tokens\n"
		"# TYPE lemon_llamacpp_prompt_tokens_total counter\n"
		"lemon_llamacpp_prompt_tokens_total{model=\"tiny\",role=\"chat\"} 29\n"
		"lemon_llamacpp_prompt_tokens_total{model=\"tiny\",role=\"embeddings\"} 29\n"
		"# HELP lemon_llamacpp_n_tokens_max Largest observed sequence length (prompt + generation)\n"
		"# TYPE lemon_llamacpp_n_tokens_max gauge\n"
		"lemon_llamacpp_n_tokens_max{model=\"tiny\",role=\"chat\"} 32\n"
		"lemon_llamacpp_n_tokens_max{model=\"tiny\",role=\"embeddings\"} 32\n");
	free(t.p);
	server_prom_free(&p);
}

static void test_junk_and_labels(void **state)
{
	static const char in[] = "garbage line here\n"
				 "x{a=\"1\"} 2\n"
				 "y{a=\"unterminated} 3\n"
				 "z 4 5 6 not-a-number\n"
				 "# random comment\n"
				 "h_bucket{le=\"+Inf\"} 1\n"
				 "# TYPE h histogram\n";
	static struct server_prom p;
	struct server_prom_text t = { 0 };

	(void)state;
	server_prom_init(&p);
	server_prom_parse(&p, in, sizeof(in) - 1, "m\"q", "chat");
	server_prom_render(&p, &t);
	assert_string_equal(t.p, "# TYPE lemon_llamacpp_x untyped\n"
				 "lemon_llamacpp_x{model=\"m\\\"q\",role=\"chat\",a=\"1\"} 2\n"
				 "# TYPE lemon_llamacpp_h_bucket untyped\n"
				 "lemon_llamacpp_h_bucket{model=\"m\\\"q\",role=\"chat\",le=\"+Inf\"} 1\n");
	free(t.p);
	server_prom_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_junk_and_labels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
