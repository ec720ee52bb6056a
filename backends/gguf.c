/* GGUF header reader: a pure function over a buffer, so a model file is
 * validated (magic, version, every key/value and tensor info in bounds,
 * tensor types known, sizes and offsets plausible) before lemon copies it
 * into the store or hands it to llama-server, and so the memory a model
 * needs can be estimated from its tensor infos before anything starts */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backends-private.h"
#include "util/str.h"

#define GGUF_MAX_COUNT 1000000u /* tensors or keys: far above real models */
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_DEPTH 2        /* arrays of arrays */
#define GGUF_MAX_DIM (1ull << 40)      /* elements along one dimension */
#define GGUF_MAX_DATA (1ull << 50)     /* 1 PiB of tensor data: hostile */
#define GGUF_MAX_ALIGN (1u << 20)

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

/* reads an integer value of any integer type; other types are skipped and
 * leave *v alone (a key of an unexpected type is not ours to judge) */
static int rd_int(struct cursor *c, uint32_t type, uint64_t *v,
		  struct lemon_err *err)
{
	const unsigned char *b = NULL;
	size_t sz = scalar_size(type), i;

	if (sz == 0 || type == GT_F32 || type == GT_F64 || type == GT_BOOL)
		return skip_value(c, type, 0, err);
	if (take(c, sz, &b, err) < 0)
		return -1;
	*v = 0;
	for (i = 0; i < sz; i++)
		*v |= (uint64_t)b[i] << (8 * i);
	/* negative signed values are nonsense for sizes: treated as absent */
	if ((type == GT_I8 || type == GT_I16 || type == GT_I32 ||
	     type == GT_I64) && (b[sz - 1] & 0x80))
		*v = 0;
	return 0;
}

static bool key_is(const unsigned char *key, uint64_t klen, const char *k)
{
	size_t n = strlen(k);

	return klen == n && memcmp(key, k, n) == 0;
}

/* "<arch>.<suffix>" with exactly one dot: the per-architecture keys */
static bool arch_key(const unsigned char *key, uint64_t klen,
		     const char *suffix)
{
	size_t n = strlen(suffix), i;

	if (klen <= n + 1 || memcmp(key + klen - n, suffix, n) != 0 ||
	    key[klen - n - 1] != '.')
		return false;
	for (i = 0; i + n + 1 < klen; i++)
		if (key[i] == '.')
			return false;
	return true;
}

static int parse_kv(struct cursor *c, struct backends_gguf_info *out,
		    struct lemon_err *err)
{
	const unsigned char *key, *val;
	uint64_t klen, vlen, v = 0;
	uint32_t type;
	size_t at;

	if (rd_str(c, &key, &klen, err) < 0)
		return -1;
	at = c->pos;
	if (rd_u32(c, &type, err) < 0)
		return -1;
	if (klen == 0 || klen > 65535)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "gguf key length %llu invalid at offset %zu",
				     (unsigned long long)klen, at);
	if (type == GT_STR && key_is(key, klen, "general.architecture")) {
		if (rd_str(c, &val, &vlen, err) < 0)
			return -1;
		lemon_str_copy_n(out->arch, sizeof(out->arch),
				 (const char *)val, (size_t)vlen);
		return 0;
	}
	if (key_is(key, klen, "tokenizer.chat_template")) {
		if (type != GT_STR)
			return skip_value(c, type, 0, err);
		if (rd_str(c, &val, &vlen, err) < 0)
			return -1;
		/* where the text lies, so /api/show can read it later without
		 * keeping the header or loading the model */
		out->has_chat_template = true;
		out->chat_template_off = c->pos - (size_t)vlen;
		out->chat_template_len = vlen;
		return 0;
	}
	if (key_is(key, klen, "general.file_type")) {
		if (rd_int(c, type, &v, err) < 0)
			return -1;
		out->has_file_type = scalar_size(type) != 0 && type != GT_F32 &&
				     type != GT_F64 && type != GT_BOOL;
		out->file_type = (uint32_t)(v > 0xffff ? 0xffff : v);
		return 0;
	}
	if (key_is(key, klen, "general.alignment")) {
		if (rd_int(c, type, &v, err) < 0)
			return -1;
		if (v == 0 || v > GGUF_MAX_ALIGN || (v & (v - 1)) != 0)
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "gguf alignment %llu invalid at offset %zu",
					     (unsigned long long)v, at);
		out->alignment = (uint32_t)v;
		return 0;
	}
	if (arch_key(key, klen, "context_length"))
		return rd_int(c, type, &out->context_length, err);
	if (arch_key(key, klen, "block_count"))
		return rd_int(c, type, &out->block_count, err);
	if (arch_key(key, klen, "embedding_length"))
		return rd_int(c, type, &out->embedding_length, err);
	if (arch_key(key, klen, "attention.head_count"))
		return rd_int(c, type, &out->head_count, err);
	if (arch_key(key, klen, "attention.head_count_kv"))
		return rd_int(c, type, &out->head_count_kv, err);
	return skip_value(c, type, 0, err);
}

/* ggml tensor types: elements per block and bytes per block; 0 unknown */
static void type_size(uint32_t t, uint32_t *blk, uint32_t *bytes)
{
	static const uint16_t tab[][2] = {
		[0] = { 1, 4 },     [1] = { 1, 2 },     [2] = { 32, 18 },
		[3] = { 32, 20 },   [6] = { 32, 22 },   [7] = { 32, 24 },
		[8] = { 32, 34 },   [9] = { 32, 36 },   [10] = { 256, 84 },
		[11] = { 256, 110 }, [12] = { 256, 144 }, [13] = { 256, 176 },
		[14] = { 256, 210 }, [15] = { 256, 292 }, [16] = { 256, 66 },
		[17] = { 256, 74 }, [18] = { 256, 98 }, [19] = { 256, 50 },
		[20] = { 32, 18 },  [21] = { 256, 110 }, [22] = { 256, 82 },
		[23] = { 256, 136 }, [24] = { 1, 1 },   [25] = { 1, 2 },
		[26] = { 1, 4 },    [27] = { 1, 8 },    [28] = { 1, 8 },
		[29] = { 256, 56 }, [30] = { 1, 2 },    [34] = { 256, 54 },
		[35] = { 256, 66 }, [39] = { 32, 17 },
	};

	*blk = *bytes = 0;
	if (t < sizeof(tab) / sizeof(tab[0])) {
		*blk = tab[t][0];
		*bytes = tab[t][1];
	}
}

static int bad_tensor(size_t at, const char *what, uint64_t v,
		      struct lemon_err *err)
{
	return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			     "gguf tensor info invalid at offset %zu: %s %llu",
			     at, what, (unsigned long long)v);
}

static int parse_tensor(struct cursor *c, struct backends_gguf_info *out,
			struct lemon_err *err)
{
	const unsigned char *name;
	uint64_t nlen, d, d0 = 0, off, elems = 1, bytes;
	uint32_t ndims, type, i, blk, bsz;
	size_t at = c->pos;

	if (rd_str(c, &name, &nlen, err) < 0 || rd_u32(c, &ndims, err) < 0)
		return -1;
	if (nlen == 0 || nlen > 65535)
		return bad_tensor(at, "name length", nlen, err);
	if (ndims == 0 || ndims > GGUF_MAX_DIMS)
		return bad_tensor(at, "dimensions", ndims, err);
	for (i = 0; i < ndims; i++) {
		if (rd_u64(c, &d, err) < 0)
			return -1;
		if (d == 0 || d > GGUF_MAX_DIM || elems > GGUF_MAX_DATA / d)
			return bad_tensor(at, "dimension", d, err);
		elems *= d;
		if (i == 0)
			d0 = d;
	}
	if (rd_u32(c, &type, err) < 0 || rd_u64(c, &off, err) < 0)
		return -1;
	type_size(type, &blk, &bsz);
	if (blk == 0)
		return bad_tensor(at, "type", type, err);
	if (d0 % blk != 0)
		return bad_tensor(at, "row length for its type", d0, err);
	bytes = elems / blk * bsz;
	if (off > GGUF_MAX_DATA || bytes > GGUF_MAX_DATA - off ||
	    out->tensor_bytes > GGUF_MAX_DATA - bytes)
		return bad_tensor(at, "offset", off, err);
	/* keys precede tensor infos, so the alignment is known here */
	if (off % out->alignment != 0)
		return bad_tensor(at, "unaligned offset", off, err);
	out->n_params += elems;
	out->tensor_bytes += bytes;
	if (off + bytes > out->data_len)
		out->data_len = off + bytes;
	if (nlen > 4 && memcmp(name, "blk.", 4) == 0)
		out->layer_bytes += bytes;
	return 0;
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
	if (out->alignment == 0)
		out->alignment = 32;
	for (i = 0; i < out->n_tensors; i++)
		if (parse_tensor(&c, out, err) < 0)
			return -1;
	out->header_len = c.pos;
	return 0;
}

uint64_t backends_gguf_min_size(const struct backends_gguf_info *info)
{
	uint64_t a = info->alignment ? info->alignment : 32;

	if (info->n_tensors == 0)
		return info->header_len;
	/* the data section starts at the end of the header rounded up to the
	 * alignment; llama.cpp refuses a tensor that ends past the file */
	return (info->header_len + a - 1) / a * a + info->data_len;
}

int backends_gguf_check_size(const struct backends_gguf_info *info,
			     uint64_t size, struct lemon_err *err)
{
	uint64_t want = backends_gguf_min_size(info);

	if (size < want)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "truncated gguf: its tensors need %llu bytes, the file has %llu",
				     (unsigned long long)want, (unsigned long long)size);
	return 0;
}

const char *backends_gguf_ftype_name(uint32_t ft)
{
	static const char *names[] = {
		[0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1",
		[7] = "Q8_0", [8] = "Q5_0", [9] = "Q5_1", [10] = "Q2_K",
		[11] = "Q3_K_S", [12] = "Q3_K_M", [13] = "Q3_K_L",
		[14] = "Q4_K_S", [15] = "Q4_K_M", [16] = "Q5_K_S",
		[17] = "Q5_K_M", [18] = "Q6_K", [19] = "IQ2_XXS",
		[20] = "IQ2_XS", [21] = "Q2_K_S", [22] = "IQ3_XS",
		[23] = "IQ3_XXS", [24] = "IQ1_S", [25] = "IQ4_NL",
		[26] = "IQ3_S", [27] = "IQ3_M", [28] = "IQ2_S", [29] = "IQ2_M",
		[30] = "IQ4_XS", [31] = "IQ1_M", [32] = "BF16",
		[36] = "TQ1_0", [37] = "TQ2_0", [38] = "MXFP4_MOE",
	};

	if (ft < sizeof(names) / sizeof(names[0]) && names[ft])
		return names[ft];
	return "unknown";
}

int backends_gguf_read_template(const char *path,
				const struct backends_gguf_info *info,
				size_t max, char **out, struct lemon_err *err)
{
	size_t n, have = 0;
	char *buf;
	int fd;

	*out = NULL;
	if (!info->has_chat_template)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "%s: no chat template", path);
	if (info->chat_template_len > max)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: chat template of %llu bytes exceeds %zu",
				     path,
				     (unsigned long long)info->chat_template_len,
				     max);
	n = (size_t)info->chat_template_len;
	buf = malloc(n + 1);
	if (buf == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return lemon_err_errno(err, errno, path);
	}
	while (have < n) {
		ssize_t r = pread(fd, buf + have, n - have,
				  (off_t)(info->chat_template_off + have));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* the file shrank since its header was read */
			int e = r < 0 ? errno : EIO;

			close(fd);
			free(buf);
			return lemon_err_errno(err, e, path);
		}
		have += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	/* a NUL inside would silently cut the text: not a template we serve */
	if (memchr(buf, '\0', n) != NULL) {
		free(buf);
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: chat template contains a NUL byte",
				     path);
	}
	*out = buf;
	return 0;
}
