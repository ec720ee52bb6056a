/* libFuzzer target for server/http1_request.c: any bytes give a complete
 * head, "need more" or one refusal status; fields stay inside the buffer,
 * and what follows the head is fed to util/http1's chunked decoder, as
 * server/http_conn.c does with a chunked request body */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-private.h"
#include "util/http1.h"

static bool inside(const char *p, const char *b, size_t n)
{
	return p >= b && p <= b + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct server_http1_request r;
	struct lemon_http1_chunked c = { 0 };
	char *b = malloc(size + 1), *dec = malloc(size + 1);
	size_t used, out;
	int n, i;

	if (b == NULL || dec == NULL) {
		free(b);
		free(dec);
		return 0;
	}
	memcpy(b, data, size);
	n = server_http1_parse_request(b, size, &r);
	if (n < 0 && (r.status < 400 || r.status > 505 || r.why == NULL))
		abort();
	if (n > 0) {
		if ((size_t)n > size || (size_t)n > SERVER_HTTP1_HEAD_MAX + 16 ||
		    !inside(r.target, b, size) || r.n_headers > SERVER_HTTP1_HEADERS_MAX)
			abort();
		if (r.has_length && r.chunked)
			abort();
		for (i = 0; i < r.n_headers; i++)
			if (!inside(r.headers[i].name, b, size) ||
			    !inside(r.headers[i].value, b, size))
				abort();
		if (lemon_http1_chunked_decode(&c, b + n, size - (size_t)n, &used, dec,
					       size + 1, &out) >= 0 &&
		    (used > size - (size_t)n || out > used))
			abort();
	}
	free(b);
	free(dec);
	return 0;
}
