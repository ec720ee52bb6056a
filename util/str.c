/* bounded parsing helpers shared by every layer (no atoi/sscanf/strtok) */
#include "util/str.h"

#include <string.h>

bool lemon_str_copy_n(char *dst, size_t dst_size, const char *src, size_t len)
{
	bool fits = len < dst_size;
	size_t n = fits ? len : dst_size - 1;

	if (dst_size == 0)
		return false;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return fits;
}

bool lemon_str_copy(char *dst, size_t dst_size, const char *src)
{
	return lemon_str_copy_n(dst, dst_size, src, strlen(src));
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f' || c == '\0';
}

void lemon_str_trim(const char **s, size_t *len)
{
	while (*len > 0 && is_space((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*s)[*len - 1]))
		(*len)--;
}

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

int lemon_parse_u64(const char *s, size_t len, int base, uint64_t max,
		    uint64_t *out, struct lemon_err *err)
{
	uint64_t v = 0;
	size_t i;

	lemon_str_trim(&s, &len);
	if (base == 16 && len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		len -= 2;
	}
	if (len == 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA, "empty number");
	if (len > 32)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "number too long (%zu characters)", len);
	for (i = 0; i < len; i++) {
		int d = digit_value(s[i]);

		if (d >= base)
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "invalid number '%.*s'", (int)len, s);
		/* d > max first: max - d would wrap and pass any value */
		if ((uint64_t)d > max || v > (max - (uint64_t)d) / (uint64_t)base)
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "number '%.*s' exceeds maximum %llu",
					     (int)len, s, (unsigned long long)max);
		v = v * (uint64_t)base + (uint64_t)d;
	}
	*out = v;
	return 0;
}

int lemon_parse_version(const char *s, size_t len, uint32_t *parts,
			int max_parts, struct lemon_err *err)
{
	int n = 0;
	size_t start = 0, i;

	lemon_str_trim(&s, &len);
	for (i = 0; i <= len; i++) {
		uint64_t v;

		if (i < len && s[i] != '.')
			continue;
		if (n == max_parts)
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "version '%.*s' has more than %d parts",
					     (int)len, s, max_parts);
		if (lemon_parse_u64(s + start, i - start, 10, 0xffffffffu, &v,
				    err) < 0) {
			lemon_err_prefix(err, "version '%.*s'", (int)len, s);
			return -1;
		}
		parts[n++] = (uint32_t)v;
		start = i + 1;
	}
	return n;
}

bool lemon_next_line(const char *buf, size_t len, size_t *pos,
		     const char **line, size_t *line_len)
{
	const char *nl;

	if (*pos >= len)
		return false;
	*line = buf + *pos;
	nl = memchr(*line, '\n', len - *pos);
	*line_len = nl ? (size_t)(nl - *line) : len - *pos;
	*pos += *line_len + (nl ? 1 : 0);
	return true;
}

bool lemon_str_has_prefix(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(s, prefix, n) == 0;
}

bool lemon_split_kv(const char *line, size_t len, char sep, const char **key,
		    size_t *key_len, const char **val, size_t *val_len)
{
	const char *p = memchr(line, sep, len);

	if (p == NULL)
		return false;
	*key = line;
	*key_len = (size_t)(p - line);
	lemon_str_trim(key, key_len);
	*val = p + 1;
	*val_len = (size_t)(line + len - (p + 1));
	lemon_str_trim(val, val_len);
	return true;
}

bool lemon_slice_eq(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}
