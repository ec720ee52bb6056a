/* backends/workers.c: the --workers list and the strict check of a
 * worker's GET /api/v1/worker answer (bytes from the network) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "backends/backends.h"
#include "server/server.h"

static int parse(const char *json, struct backends_worker_info *w)
{
	struct lemon_err err = { 0 };

	return backends_worker_parse_json(json, strlen(json), w, &err);
}

static void test_good_answer(void **state)
{
	struct backends_worker_info w;

	(void)state;
	assert_int_equal(parse("{\"lemon_worker\":1,\"version\":\"0.1.0\",\"backend\":\"cuda\","
			       "\"device\":\"CUDA0\",\"rpc_port\":50052,\"rpc_running\":true,"
			       "\"restarts\":0,\"free_bytes\":8589934592,\"mem_limit\":0}", &w), 0);
	assert_string_equal(w.backend, "cuda");
	assert_string_equal(w.device, "CUDA0");
	assert_true(w.rpc_running);
	assert_true(w.free_bytes == 8589934592ull);
}

static void test_bad_answers(void **state)
{
	static const char *bad[] = {
		"", "garbage", "[1,2]", "{}", "null",
		"{\"lemon_worker\":2,\"backend\":\"cpu\",\"free_bytes\":1}",
		"{\"lemon_worker\":1,\"backend\":\"tpu\",\"free_bytes\":1}",
		"{\"lemon_worker\":1,\"free_bytes\":1}",
		"{\"lemon_worker\":1,\"backend\":7,\"free_bytes\":1}",
		"{\"lemon_worker\":1,\"backend\":\"cpu\"}",
		"{\"lemon_worker\":1,\"backend\":\"cpu\",\"free_bytes\":\"1\"}",
		"{\"lemon_worker\":1,\"backend\":\"cpu\",\"free_bytes\":-1}",
		"{\"lemon_worker\":1,\"backend\":\"cpu\",\"free_bytes\":1.5}",
		"{\"lemon_worker\":1,\"backend\":\"cpu\",\"free_bytes\":1e30}",
		"{\"lemon_worker\":1,\"backend\":\"cpu\",\"free_bytes\":1125899906842625}",
		"{\"lemon_worker\":1,\"backend\":\"cpu\",\"device\":\"a\\nb\",\"free_bytes\":1}",
		"{\"lemon_worker\":1,\"backend\":\"cpu\",\"device\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"free_bytes\":1}",
	};
	struct backends_worker_info w;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], &w) != -1)
			fail_msg("accepted: %s", bad[i]);
	/* the largest believed: 2^50 bytes */
	assert_int_equal(parse("{\"lemon_worker\":1,\"backend\":\"cpu\",\"free_bytes\":1125899906842624}", &w), 0);
}

static void test_list(void **state)
{
	struct backends_opts o = { 0 };
	struct lemon_err err = { 0 };

	(void)state;
	assert_int_equal(backends_workers_parse_list("10.0.0.2:50052,::1:6000", &o, &err), 0);
	assert_int_equal(o.n_workers, 2);
	assert_string_equal(o.workers[0].host, "10.0.0.2");
	assert_int_equal(o.workers[0].port, 50052);
	assert_int_equal(o.workers[0].api_port, 50053);
	assert_string_equal(o.workers[1].host, "::1");
	assert_int_equal(o.workers[1].port, 6000);
	assert_int_equal(backends_workers_parse_list("host", &o, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	assert_int_equal(backends_workers_parse_list("h:0", &o, &err), -1);
	assert_int_equal(backends_workers_parse_list("h:65535", &o, &err), -1);
	assert_int_equal(backends_workers_parse_list(":5", &o, &err), -1);
	assert_int_equal(backends_workers_parse_list("a/b:5", &o, &err), -1);
	assert_int_equal(backends_workers_parse_list("h:5x", &o, &err), -1);
	assert_int_equal(backends_workers_parse_list("a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8,a:9", &o, &err), -1);
	/* the same worker twice: refused, a second port of one host is not */
	assert_int_equal(backends_workers_parse_list("10.0.0.2:50052,10.0.0.2:50052", &o, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	assert_int_equal(backends_workers_parse_list("10.0.0.2:50052,10.0.0.2:50062", &o, &err), 0);
	assert_int_equal(o.n_workers, 2);
	/* one address written two ways; ports 1 apart on one host */
	assert_int_equal(backends_workers_parse_list("::A:6000,::a:6000", &o, &err), -1);
	assert_int_equal(backends_workers_parse_list("10.0.0.2:50052,10.0.0.2:50053", &o, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	assert_int_equal(backends_workers_parse_list("10.0.0.2:50052,10.0.0.3:50053", &o, &err), 0);
}

/* the config file's and LEMON_WORKERS' key reaches serve */
static void test_config_key(void **state)
{
	struct server_config c;
	struct lemon_err err = { 0 };

	(void)state;
	server_config_defaults(&c);
	assert_string_equal(c.workers, "");
	assert_int_equal(server_config_set(&c, "workers", "10.0.0.2:50052,10.0.0.3:50052", &err), 0);
	assert_string_equal(c.workers, "10.0.0.2:50052,10.0.0.3:50052");
}

/* a model on workers gets the workers' slots: 16 when every one is a GPU
 * of 16 GiB or more, the CPU's 4 when any is a CPU */
static void test_rpc_slots(void **state)
{
	struct backends_worker_info w[2];

	(void)state;
	memset(w, 0, sizeof(w));
	memcpy(w[0].backend, "cuda", 5);
	w[0].free_bytes = 142194ull << 20;
	memcpy(w[1].backend, "cuda", 5);
	w[1].free_bytes = 142602ull << 20;
	assert_int_equal(backends_rpc_default_slots(w, 2), 16);
	w[1].free_bytes = 8ull << 30;
	assert_int_equal(backends_rpc_default_slots(w, 2), 8);
	memcpy(w[1].backend, "cpu", 4);
	assert_int_equal(backends_rpc_default_slots(w, 2), 4);
	assert_int_equal(backends_rpc_default_slots(w, 0), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_answer),
		cmocka_unit_test(test_rpc_slots),
		cmocka_unit_test(test_bad_answers),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_config_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
