/* Error conversion at the provision layer's boundary with its libraries:
 * one table each for libcurl, libarchive, OpenSSL and errno, so a failure
 * deep in a library reaches the user as one lemon_err code with a message
 * that says what happened and to which URL or path. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <archive.h>
#include <curl/curl.h>
#include <isa-l/igzip_lib.h>
#include <openssl/err.h>

#include "provision/provision-private.h"

struct curl_row {
	CURLcode code;
	enum lemon_err_code lemon;
	const char *text;
};

/* the CURLcodes a download can end with; everything else is NETWORK with
 * curl's own words */
static const struct curl_row curl_table[] = {
	{ CURLE_COULDNT_RESOLVE_HOST, LEMON_ERR_NETWORK,
	  "network unreachable: cannot resolve the host of" },
	{ CURLE_COULDNT_RESOLVE_PROXY, LEMON_ERR_NETWORK,
	  "network unreachable: cannot resolve the proxy for" },
	{ CURLE_COULDNT_CONNECT, LEMON_ERR_NETWORK,
	  "network unreachable: cannot connect to" },
	{ CURLE_OPERATION_TIMEDOUT, LEMON_ERR_NETWORK,
	  "timed out (no progress) downloading" },
	{ CURLE_PARTIAL_FILE, LEMON_ERR_NETWORK,
	  "connection dropped before the end of" },
	{ CURLE_RECV_ERROR, LEMON_ERR_NETWORK, "connection reset downloading" },
	{ CURLE_SEND_ERROR, LEMON_ERR_NETWORK, "connection reset requesting" },
	{ CURLE_GOT_NOTHING, LEMON_ERR_NETWORK, "empty reply from" },
	{ CURLE_PEER_FAILED_VERIFICATION, LEMON_ERR_NETWORK,
	  "TLS certificate verification failed for" },
	{ CURLE_SSL_CONNECT_ERROR, LEMON_ERR_NETWORK, "TLS handshake failed with" },
	{ CURLE_SSL_CACERT_BADFILE, LEMON_ERR_BROKEN_SYSTEM,
	  "cannot read the CA certificates to verify" },
	{ CURLE_TOO_MANY_REDIRECTS, LEMON_ERR_NETWORK, "too many redirects from" },
	{ CURLE_UNSUPPORTED_PROTOCOL, LEMON_ERR_INVALID_ARG,
	  "unsupported protocol (http and https only) in" },
	{ CURLE_URL_MALFORMAT, LEMON_ERR_INVALID_ARG, "malformed URL" },
	{ CURLE_RANGE_ERROR, LEMON_ERR_NETWORK, "server refused to resume" },
	{ CURLE_FILESIZE_EXCEEDED, LEMON_ERR_TOO_LARGE, "file too large at" },
	{ CURLE_OUT_OF_MEMORY, LEMON_ERR_INTERNAL, "out of memory downloading" },
	{ CURLE_ABORTED_BY_CALLBACK, LEMON_ERR_INTERNAL, "download aborted:" },
};

int provision_err_curl(struct lemon_err *err, int code, long http_status,
		  const char *url, const char *detail)
{
	size_t i;

	if (code == CURLE_HTTP_RETURNED_ERROR || (code == CURLE_OK && http_status >= 400)) {
		if (http_status == 404 || http_status == 410)
			return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
					     "HTTP %ld: %s does not exist",
					     http_status, url);
		if (http_status == 401 || http_status == 403)
			return lemon_err_set(err, LEMON_ERR_PERMISSION,
					     "HTTP %ld: access to %s denied",
					     http_status, url);
		return lemon_err_set(err, LEMON_ERR_NETWORK,
				     "HTTP %ld from %s", http_status, url);
	}
	for (i = 0; i < sizeof(curl_table) / sizeof(curl_table[0]); i++)
		if (curl_table[i].code == (CURLcode)code)
			return lemon_err_set(err, curl_table[i].lemon, "%s %s%s%s%s",
					     curl_table[i].text, url,
					     detail && detail[0] ? " (" : "",
					     detail ? detail : "",
					     detail && detail[0] ? ")" : "");
	return lemon_err_set(err, LEMON_ERR_NETWORK, "downloading %s: %s", url,
			     detail && detail[0] ? detail :
			     curl_easy_strerror((CURLcode)code));
}

int provision_err_archive(struct lemon_err *err, struct archive *ar,
		     const char *what)
{
	int e = ar ? archive_errno(ar) : 0;
	const char *msg = ar ? archive_error_string(ar) : NULL;

	if (msg == NULL)
		msg = "unknown libarchive error";
	/* libarchive passes file-system errno through; other values are its
	 * own format errors (ARCHIVE_ERRNO_FILE_FORMAT, -1, ...) */
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case EACCES:
	case EPERM:
	case EROFS:
	case ENOMEM:
		return provision_err_errno(err, e, what, NULL);
	default:
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: corrupt or unsupported archive: %s",
				     what, msg);
	}
}

int provision_err_openssl(struct lemon_err *err, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[160];

	if (e == 0)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "openssl: %s failed",
				     what);
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return lemon_err_set(err, LEMON_ERR_INTERNAL, "openssl: %s: %s", what,
			     buf);
}

static const struct {
	int code;
	const char *text;
} isal_table[] = {
	{ ISAL_INVALID_BLOCK, "invalid deflate block" },
	{ ISAL_INVALID_SYMBOL, "invalid deflate symbol" },
	{ ISAL_INVALID_LOOKBACK, "invalid back-reference distance" },
	{ ISAL_INVALID_WRAPPER, "invalid gzip header" },
	{ ISAL_UNSUPPORTED_METHOD, "unsupported compression method" },
	{ ISAL_INCORRECT_CHECKSUM, "CRC32 or length check failed" },
};

int provision_err_isal(struct lemon_err *err, int code, const char *what)
{
	size_t i;

	for (i = 0; i < sizeof(isal_table) / sizeof(isal_table[0]); i++)
		if (isal_table[i].code == code)
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "%s: corrupt data: %s", what,
					     isal_table[i].text);
	return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			     "%s: corrupt data (inflate error %d)", what, code);
}

int provision_err_errno(struct lemon_err *err, int errnum, const char *what,
		   const char *path)
{
	return lemon_err_errno_path(err, errnum, what, path);
}
