/* libFuzzer target for backends/workers.c: a worker's answer (untrusted
 * bytes from the network) is checked without reading outside it, and
 * what is accepted is within the documented bounds */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backends.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct backends_worker_info w;
	struct lemon_err err = { 0 };
	char *buf = malloc(size ? size : 1);

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	if (backends_worker_parse_json(buf, size, &w, &err) == 0) {
		if (w.free_bytes > (1ull << 50) ||
		    strnlen(w.backend, sizeof(w.backend)) == sizeof(w.backend) ||
		    strnlen(w.device, sizeof(w.device)) == sizeof(w.device) ||
		    strnlen(w.version, sizeof(w.version)) == sizeof(w.version))
			abort();
	} else if (err.code != LEMON_ERR_INVALID_DATA) {
		abort();
	}
	free(buf);
	return 0;
}
