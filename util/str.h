/* bounded string and number parsing: every parser takes (buffer, length)
 * and an explicit maximum, so no input can overrun or overflow */
#ifndef LEMON_UTIL_STR_H
#define LEMON_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* copies at most dst_size-1 bytes and always terminates; returns false when
 * src did not fit (dst then holds the truncated prefix) */
bool lemon_str_copy(char *dst, size_t dst_size, const char *src);

/* like lemon_str_copy for a (pointer, length) slice */
bool lemon_str_copy_n(char *dst, size_t dst_size, const char *src, size_t len);

/* trims ASCII whitespace from both ends of a slice in place */
void lemon_str_trim(const char **s, size_t *len);

/* decimal (base 10) or hex (base 16, optional 0x) number, whole slice after
 * trimming whitespace; fails with INVALID_DATA on junk or values > max */
int lemon_parse_u64(const char *s, size_t len, int base, uint64_t max,
		    uint64_t *out, struct lemon_err *err);

/* "a.b.c" with up to max_parts parts each <= 0xffffffff; returns count */
int lemon_parse_version(const char *s, size_t len, uint32_t *parts,
			int max_parts, struct lemon_err *err);

/* next line of a buffer: line and line_len point into buf; returns false at
 * the end; *pos is the cursor */
bool lemon_next_line(const char *buf, size_t len, size_t *pos,
		     const char **line, size_t *line_len);

bool lemon_str_has_prefix(const char *s, size_t len, const char *prefix);

/* "key<sep>value" split at the first sep; value is trimmed */
bool lemon_split_kv(const char *line, size_t len, char sep, const char **key,
		    size_t *key_len, const char **val, size_t *val_len);

bool lemon_slice_eq(const char *s, size_t len, const char *lit);

#endif
