/* libFuzzer target for backends/fault.c: any log line is classified
 * without reading outside it, and a kept reason is terminated within its
 * buffer and carries no absolute path */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backends-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line, out[64];
	size_t cap, n;

	if (size == 0)
		return 0;
	cap = 1 + data[0] % sizeof(out);
	line = malloc(size);
	if (line == NULL)
		return 0;
	memcpy(line, data + 1, size - 1);
	line[size - 1] = 0;
	memset(out, 'x', sizeof(out));
	if (backends_sup_model_fault(line, out, cap)) {
		n = strnlen(out, cap);
		if (n == cap || out[0] == '/' || strstr(out, " /") ||
		    strstr(out, "'/") || strstr(out, "\"/"))
			abort();
	}
	free(line);
	return 0;
}
