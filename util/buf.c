/* bounded growing buffers: every growth is checked against a maximum */
#include <stdlib.h>

#include "util/buf.h"

char *lemon_read_all(ssize_t (*read_fn)(void *ctx, char *out, size_t cap),
		     void *ctx, size_t initial, size_t max)
{
	size_t len = 0, cap = initial ? initial : 4096;
	char *b = malloc(cap + 1), *p;
	ssize_t n;

	while (b != NULL && (n = read_fn(ctx, b + len, cap - len)) != 0) {
		if (n < 0 || len + (size_t)n > max) {
			free(b);
			return NULL;
		}
		len += (size_t)n;
		if (len == cap) {
			p = realloc(b, cap * 2 + 1);
			if (p == NULL) {
				free(b);
				return NULL;
			}
			b = p;
			cap *= 2;
		}
	}
	if (b != NULL)
		b[len] = 0;
	return b;
}
