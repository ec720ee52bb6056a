/* Unit tests of provision/errmap.c: each library's failure codes become
 * the exact lemon_err code with a message naming the URL or path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <isa-l/igzip_lib.h>

#include "provision/provision-private.h"

#define URL "http://127.0.0.1:9/x.tar.gz"

static void expect_curl(int code, long status, enum lemon_err_code want,
			const char *words)
{
	struct lemon_err err = { 0 };

	assert_int_equal(provision_err_curl(&err, code, status, URL, "detail"), -1);
	assert_int_equal(err.code, want);
	assert_non_null(strstr(err.msg, words));
}

static void test_curl(void **state)
{
	(void)state;
	expect_curl(CURLE_HTTP_RETURNED_ERROR, 404, LEMON_ERR_NOT_FOUND,
		    "HTTP 404: " URL " does not exist");
	expect_curl(CURLE_HTTP_RETURNED_ERROR, 410, LEMON_ERR_NOT_FOUND, "HTTP 410");
	expect_curl(CURLE_HTTP_RETURNED_ERROR, 403, LEMON_ERR_PERMISSION,
		    "HTTP 403: access to " URL " denied");
	expect_curl(CURLE_HTTP_RETURNED_ERROR, 503, LEMON_ERR_NETWORK, "HTTP 503 from " URL);
	expect_curl(CURLE_COULDNT_CONNECT, 0, LEMON_ERR_NETWORK,
		    "network unreachable: cannot connect to " URL " (detail)");
	expect_curl(CURLE_COULDNT_RESOLVE_HOST, 0, LEMON_ERR_NETWORK,
		    "network unreachable: cannot resolve");
	expect_curl(CURLE_PEER_FAILED_VERIFICATION, 0, LEMON_ERR_NETWORK,
		    "TLS certificate verification failed for " URL);
	expect_curl(CURLE_SSL_CACERT_BADFILE, 0, LEMON_ERR_BROKEN_SYSTEM,
		    "CA certificates");
	expect_curl(CURLE_UNSUPPORTED_PROTOCOL, 0, LEMON_ERR_INVALID_ARG,
		    "unsupported protocol");
	expect_curl(CURLE_FILESIZE_EXCEEDED, 0, LEMON_ERR_TOO_LARGE, "too large");
	expect_curl(CURLE_PARTIAL_FILE, 0, LEMON_ERR_NETWORK, "connection dropped");
	/* a code outside the table keeps curl's words */
	expect_curl(CURLE_FTP_WEIRD_PASV_REPLY, 0, LEMON_ERR_NETWORK, "detail");
}

static void test_first_message_wins(void **state)
{
	struct lemon_err err = { 0 };

	(void)state;
	provision_err_errno(&err, ENOSPC, "writing", "/d/f");
	provision_err_curl(&err, CURLE_WRITE_ERROR, 0, URL, NULL);
	assert_int_equal(err.code, LEMON_ERR_NO_SPACE);
	assert_string_equal(err.msg, "disk full: writing /d/f: free some space and retry");
}

static void test_errno(void **state)
{
	struct lemon_err err = { 0 };

	(void)state;
	provision_err_errno(&err, EACCES, "creating directory", "/opt/x");
	assert_int_equal(err.code, LEMON_ERR_PERMISSION);
	assert_string_equal(err.msg, "permission denied: creating directory /opt/x");
	lemon_err_clear(&err);
	provision_err_errno(&err, EDQUOT, "writing", NULL);
	assert_int_equal(err.code, LEMON_ERR_NO_SPACE);
	lemon_err_clear(&err);
	provision_err_errno(&err, EROFS, "writing", "/ro");
	assert_int_equal(err.code, LEMON_ERR_PERMISSION);
	assert_non_null(strstr(err.msg, "read-only file system"));
	lemon_err_clear(&err);
	provision_err_errno(&err, ENOENT, "opening", "/nope");
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, "/nope"));
	lemon_err_clear(&err);
	provision_err_errno(&err, EIO, "reading", "/bad");
	assert_int_equal(err.code, LEMON_ERR_IO);
}

static void test_isal_and_archive(void **state)
{
	struct lemon_err err = { 0 };

	(void)state;
	provision_err_isal(&err, ISAL_INCORRECT_CHECKSUM, "gzip stream");
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_string_equal(err.msg, "gzip stream: corrupt data: CRC32 or length check failed");
	lemon_err_clear(&err);
	provision_err_isal(&err, -99, "gzip stream");
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "-99"));
	lemon_err_clear(&err);
	provision_err_archive(&err, NULL, "x.zip");
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "x.zip: corrupt or unsupported archive"));
	lemon_err_clear(&err);
	provision_err_openssl(&err, "sha256 init");
	assert_int_equal(err.code, LEMON_ERR_INTERNAL);
	assert_non_null(strstr(err.msg, "sha256 init"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_curl),
		cmocka_unit_test(test_first_message_wins),
		cmocka_unit_test(test_errno),
		cmocka_unit_test(test_isal_and_archive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
