/* bounded growing buffers */
#ifndef LEMON_UTIL_BUF_H
#define LEMON_UTIL_BUF_H

#include <stddef.h>
#include <sys/types.h>

/* reads a stream to its end into one NUL-terminated heap buffer (the
 * caller frees it). read_fn returns bytes read, 0 at the end, < 0 on a
 * failure. NULL when reading failed, memory ran out, or the stream held
 * more than max bytes. */
char *lemon_read_all(ssize_t (*read_fn)(void *ctx, char *out, size_t cap),
		     void *ctx, size_t initial, size_t max);

#endif
