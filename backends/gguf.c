/* GGUF header parser: a pure function over a buffer, so a model file is
 * validated (magic, version, every key/value and tensor info in bounds)
 * before lemon copies it into the store or hands it to llama-server */
#include <string.h>

#include "backends/backends-private.h"
#include "util/str.h"

#define GGUF_MAX_COUNT 1000000u /* tensors or keys: far above real models */
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_DEPTH 2        /* arrays of arrays */

enum {
	GT_U8, GT_I8, GT_U16, GT_I16, GT_U32, GT_I32, GT_F32, GT_BOOL,
	GT_STR, GT_ARR, GT_U64, GT_I64, GT_F64,
};

struct cursor {
	const unsigned char *p;
	size_t len;
	size_t pos;
};

static int truncated(struct cursor *c, struct lemon_err *err)
{
	return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			     "gguf header truncated at offset %zu", c->pos);
}

static int take(struct cursor *c, size_t n, const unsigned char **out,
		struct lemon_err *err)
{
	if (n > c->len - c->pos)
		return truncated(c, err);
	if (out)
		*out = c->p + c->pos;
	c->pos += n;
	return 0;
}

static int rd_u32(struct cursor *c, uint32_t *v, struct lemon_err *err)
{
	const unsigned char *b = NULL;

	if (take(c, 4, &b, err) < 0)
		return -1;
	*v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	     (uint32_t)b[3] << 24;
	return 0;
}

static int rd_u64(struct cursor *c, uint64_t *v, struct lemon_err *err)
{
	uint32_t lo, hi;

	if (rd_u32(c, &lo, err) < 0 || rd_u32(c, &hi, err) < 0)
		return -1;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

static int rd_str(struct cursor *c, const unsigned char **s, uint64_t *n,
		  struct lemon_err *err)
{
	if (rd_u64(c, n, err) < 0)
		return -1;
	if (*n > c->len - c->pos)
		return truncated(c, err);
	return take(c, (size_t)*n, s, err);
}

static size_t scalar_size(uint32_t t)
{
	switch (t) {
	case GT_U8: case GT_I8: case GT_BOOL: return 1;
	case GT_U16: case GT_I16: return 2;
	case GT_U32: case GT_I32: case GT_F32: return 4;
	case GT_U64: case GT_I64: case GT_F64: return 8;
	default: return 0;
	}
}

static int skip_value(struct cursor *c, uint32_t type, int depth,
		      struct lemon_err *err)
{
	const unsigned char *s;
	uint64_t n, i;
	uint32_t et;
	size_t sz = scalar_size(type);

	if (sz)
		return take(c, sz, NULL, err);
	if (type == GT_STR)
		return rd_str(c, &s, &n, err);
	if (type != GT_ARR || depth >= GGUF_MAX_DEPTH)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "gguf value type %u invalid at offset %zu",
				     type, c->pos);
	if (rd_u32(c, &et, err) < 0 || rd_u64(c, &n, err) < 0)
		return -1;
	sz = scalar_size(et);
	if (sz) {
		if (n > (c->len - c->pos) / sz)
			return truncated(c, err);
		return take(c, (size_t)(n * sz), NULL, err);
	}
	/* every string or array element takes at least 8 bytes */
	if (n > (c->len - c->pos) / 8)
		return truncated(c, err);
	for (i = 0; i < n; i++)
		if (skip_value(c, et, depth + 1, err) < 0)
			return -1;
	return 0;
}

static int parse_kv(struct cursor *c, struct backends_gguf_info *out,
		    struct lemon_err *err)
{
	const unsigned char *key, *val;
	uint64_t klen, vlen;
	uint32_t type;

	if (rd_str(c, &key, &klen, err) < 0 || rd_u32(c, &type, err) < 0)
		return -1;
	if (klen == 0 || klen > 65535)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "gguf key length %llu invalid at offset %zu",
				     (unsigned long long)klen, c->pos);
	if (type == GT_STR && klen == 20 &&
	    memcmp(key, "general.architecture", 20) == 0) {
		if (rd_str(c, &val, &vlen, err) < 0)
			return -1;
		lemon_str_copy_n(out->arch, sizeof(out->arch),
				 (const char *)val, (size_t)vlen);
		return 0;
	}
	return skip_value(c, type, 0, err);
}

static int parse_tensor(struct cursor *c, struct lemon_err *err)
{
	const unsigned char *name;
	uint64_t nlen, d, off;
	uint32_t ndims, type, i;

	if (rd_str(c, &name, &nlen, err) < 0 || rd_u32(c, &ndims, err) < 0)
		return -1;
	if (nlen == 0 || ndims == 0 || ndims > GGUF_MAX_DIMS)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "gguf tensor info invalid at offset %zu",
				     c->pos);
	for (i = 0; i < ndims; i++)
		if (rd_u64(c, &d, err) < 0)
			return -1;
	return rd_u32(c, &type, err) < 0 || rd_u64(c, &off, err) < 0 ? -1 : 0;
}

int backends_gguf_parse(const unsigned char *buf, size_t len,
			struct backends_gguf_info *out, struct lemon_err *err)
{
	struct cursor c = { buf, len, 0 };
	uint64_t i;

	memset(out, 0, sizeof(*out));
	if (len < 4 || memcmp(buf, "GGUF", 4) != 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "not a gguf file (bad magic)");
	c.pos = 4;
	if (rd_u32(&c, &out->version, err) < 0)
		return -1;
	if (out->version != 2 && out->version != 3)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "gguf version %u unsupported (2 or 3)",
				     out->version);
	if (rd_u64(&c, &out->n_tensors, err) < 0 ||
	    rd_u64(&c, &out->n_kv, err) < 0)
		return -1;
	if (out->n_tensors > GGUF_MAX_COUNT || out->n_kv > GGUF_MAX_COUNT)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "gguf counts too large (%llu tensors, %llu keys)",
				     (unsigned long long)out->n_tensors,
				     (unsigned long long)out->n_kv);
	for (i = 0; i < out->n_kv; i++)
		if (parse_kv(&c, out, err) < 0)
			return -1;
	for (i = 0; i < out->n_tensors; i++)
		if (parse_tensor(&c, err) < 0)
			return -1;
	out->header_len = c.pos;
	return 0;
}
