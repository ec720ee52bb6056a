/* libFuzzer target for detect/flm.c: any bytes as the output of
 * `flm version`; a version found is "a.b.c" of decimal parts that fits */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "detect/flm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char v[32];
	size_t i, dots = 0;

	memset(v, 'x', sizeof(v));
	if (!detect_flm_parse_version((const char *)data, size, v, sizeof(v)))
		return 0;
	if (memchr(v, '\0', sizeof(v)) == NULL)
		abort();
	for (i = 0; v[i]; i++) {
		if (v[i] == '.')
			dots++;
		else if (v[i] < '0' || v[i] > '9')
			abort();
	}
	if (dots != 2)
		abort();
	return 0;
}
