/* server/config.c: defaults, config file, environment, one-key setter */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/server.h"

static void test_defaults_and_set(void **state)
{
	struct server_config c;
	struct lemon_err err = { 0 };

	(void)state;
	server_config_defaults(&c);
	assert_string_equal(c.host, "127.0.0.1");
	assert_int_equal(c.port, 8000);
	assert_string_equal(c.backend, "auto");
	assert_int_equal(c.max_body, 1024 * 1024);
	/* no CORS unless origins are named (issue 9: '*' let any page in) */
	assert_string_equal(c.cors_origin, "");
	assert_int_equal(c.header_timeout_s, 10);
	assert_true(c.max_conns_per_client < c.max_conns);
	assert_int_equal(server_config_set(&c, "port", "9001", &err), 0);
	assert_int_equal(c.port, 9001);
	assert_int_equal(server_config_set(&c, "backend", "vulkan", &err), 0);
	assert_string_equal(c.backend, "vulkan");

	assert_int_equal(server_config_set(&c, "port", "0", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	lemon_err_clear(&err);
	assert_int_equal(server_config_set(&c, "port", "65536", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	lemon_err_clear(&err);
	assert_int_equal(server_config_set(&c, "port", "80x", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	lemon_err_clear(&err);
	assert_int_equal(server_config_set(&c, "backend", "cuda", &err), 0);
	assert_string_equal(c.backend, "cuda");
	assert_int_equal(server_config_set(&c, "backend", "metal", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "is not auto, cuda, rocm, vulkan or cpu"));
	lemon_err_clear(&err);
	assert_int_equal(server_config_set(&c, "colour", "red", &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "colour"));
	assert_int_equal(c.port, 9001);
}

static void write_text(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(s, f);
	fclose(f);
}

static void test_file_then_env(void **state)
{
	struct server_config c;
	struct lemon_err err = { 0 };
	char dir[] = "/tmp/lemon-config-XXXXXX", path[128];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config.json", dir);
	server_config_defaults(&c);
	assert_int_equal(server_config_load_file(&c, path, &err), 0); /* missing */
	assert_int_equal(c.port, 8000);

	write_text(path, "{\"port\": 8123, \"host\": \"127.0.0.2\", \"api_key\": \"k\"}");
	assert_int_equal(server_config_load_file(&c, path, &err), 0);
	assert_int_equal(c.port, 8123);
	assert_string_equal(c.host, "127.0.0.2");
	setenv("LEMON_PORT", "8200", 1);
	assert_int_equal(server_config_load_env(&c, &err), 0);
	assert_int_equal(c.port, 8200);
	assert_string_equal(c.api_key, "k");
	setenv("LEMON_PORT", "nope", 1);
	assert_int_equal(server_config_load_env(&c, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "LEMON_PORT"));
	unsetenv("LEMON_PORT");
	lemon_err_clear(&err);

	write_text(path, "{\"prot\": 1}");
	assert_int_equal(server_config_load_file(&c, path, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "prot"));
	lemon_err_clear(&err);
	write_text(path, "[1]");
	assert_int_equal(server_config_load_file(&c, path, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	write_text(path, "{\"port\": true}");
	assert_int_equal(server_config_load_file(&c, path, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);

	unlink(path);
	rmdir(dir);
}

/* --api-key-file: the first line, CR/LF dropped; empty, oversized,
 * missing or spaced keys refused, never truncated */
static void test_api_key_file(void **state)
{
	struct server_config c;
	struct lemon_err err = { 0 };
	char dir[] = "/tmp/lemon-keyfile-XXXXXX", path[128], big[400];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/key", dir);
	server_config_defaults(&c);
	write_text(path, "s3cret-key\r\nsecond line\n");
	assert_int_equal(server_config_set(&c, "api_key_file", path, &err), 0);
	assert_string_equal(c.api_key, "s3cret-key");
	write_text(path, "only-line");
	assert_int_equal(server_config_set(&c, "api_key_file", path, &err), 0);
	assert_string_equal(c.api_key, "only-line");

	write_text(path, "\nkey-on-line-two\n");
	assert_int_equal(server_config_set(&c, "api_key_file", path, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
	lemon_err_clear(&err);
	write_text(path, "");
	assert_int_equal(server_config_set(&c, "api_key_file", path, &err), -1);
	lemon_err_clear(&err);
	write_text(path, "two words\n");
	assert_int_equal(server_config_set(&c, "api_key_file", path, &err), -1);
	lemon_err_clear(&err);
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	write_text(path, big);
	assert_int_equal(server_config_set(&c, "api_key_file", path, &err), -1);
	assert_non_null(strstr(err.msg, "longer"));
	lemon_err_clear(&err);
	assert_string_equal(c.api_key, "only-line");
	unlink(path);
	assert_int_equal(server_config_set(&c, "api_key_file", path, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	lemon_err_clear(&err);
	/* a FIFO is refused at once, not opened for a read that blocks */
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(server_config_set(&c, "api_key_file", path, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_set),
		cmocka_unit_test(test_file_then_env),
		cmocka_unit_test(test_api_key_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
