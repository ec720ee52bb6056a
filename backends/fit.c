/* memory planning: how much a model needs (weights from the GGUF tensor
 * infos, KV cache from its attention shape, a compute margin) and where it
 * goes on the selected device: all layers on the GPU, the layers that fit
 * (partial offload with --n-gpu-layers) or nowhere, refused before any
 * child is started. Also reads a GGUF header from a file without reading
 * the tensor data. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backends-private.h"
#include "util/str.h"

#define MIB (1024.0 * 1024.0)
#define READ_FIRST (1u << 20)
#define READ_MAX (256u << 20) /* vocabularies take a few MiB; far above */
#define MIN_CTX 4096          /* llama-server's --fit shrinks to this */
#define COMPUTE_BASE (64ull << 20)

static uint64_t kv_bytes(const struct backends_gguf_info *m, uint64_t ctx)
{
	uint64_t embd = m->embedding_length, kv = embd;

	if (m->head_count && m->head_count_kv && m->head_count_kv <= m->head_count)
		kv = embd / m->head_count * m->head_count_kv;
	/* K and V, f16, per layer; saturate instead of overflowing on odd
	 * (but parseable) shapes */
	if (kv && m->block_count && ctx &&
	    kv > UINT64_MAX / 4 / m->block_count / ctx)
		return UINT64_MAX / 4;
	return 4 * m->block_count * ctx * kv;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

int backends_default_slots(uint64_t vram)
{
	if (vram >= (16ull << 30))
		return 16;
	if (vram >= (4ull << 30))
		return 8;
	return 4;
}

int64_t backends_start_allowance_ms(int64_t base_ms, uint64_t model_bytes)
{
	/* 100 MiB/s is 104,857.6 bytes per ms; capped at a day */
	uint64_t extra = model_bytes / 104857u;

	if (extra > 86400000u)
		extra = 86400000u;
	return base_ms + (int64_t)extra;
}

int backends_fit_plan(const struct backends_gguf_info *m, const char *name,
		      int ctx, uint64_t ram, uint64_t vram,
		      struct backends_fit *out, struct lemon_err *err)
{
	uint64_t c = ctx > 0 ? (uint64_t)ctx : MIN_CTX, fixed, per_layer, avail;
	uint64_t k;

	/* the child gets exactly this context: never more than the model was
	 * trained for (a header may declare 1e9, which llama-server would
	 * otherwise try to allocate) */
	if (m->context_length && m->context_length < c)
		c = m->context_length;
	memset(out, 0, sizeof(*out));
	out->ctx = (int)c;
	out->weights = m->tensor_bytes;
	out->context = kv_bytes(m, c);
	out->need = sat_add(sat_add(out->weights, out->context),
			    COMPUTE_BASE + out->weights / 20);
	out->n_gpu_layers = -1;
	/* every layer and the output layer; 999 (llama.cpp's "all") when the
	 * header has no layer count */
	out->ngl = m->block_count && m->block_count < INT_MAX / 2 ?
			   (int)m->block_count + 1 : 999;
	if (vram == 0)
		out->ngl = 0;
	if (vram && out->need <= vram)
		return 0;
	if (ram && out->need > sat_add(ram, vram)) {
		if (vram)
			return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
					     "model '%s' needs about %.0f MiB (weights %.0f MiB, context %.0f MiB) but only %.0f MiB of RAM and %.0f MiB of VRAM exist",
					     name, out->need / MIB, out->weights / MIB,
					     out->context / MIB, ram / MIB, vram / MIB);
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "model '%s' needs about %.0f MiB (weights %.0f MiB, context %.0f MiB) but the machine has %.0f MiB of RAM",
				     name, out->need / MIB, out->weights / MIB,
				     out->context / MIB, ram / MIB);
	}
	if (vram == 0 || m->block_count == 0)
		return 0; /* CPU only, or no layer structure to split */
	/* per layer: its weights and its share of the KV cache; what is not
	 * in blk.* tensors (embeddings, output) and the compute margin are
	 * charged to the device first */
	per_layer = (m->layer_bytes + out->context) / m->block_count;
	fixed = out->need - m->layer_bytes - out->context;
	avail = vram > fixed ? vram - fixed : 0;
	k = per_layer ? avail / per_layer : m->block_count;
	if (k > m->block_count)
		k = m->block_count;
	if (k > INT_MAX / 2)
		k = INT_MAX / 2; /* a hostile block count: still a valid flag */
	out->n_gpu_layers = (int)k;
	out->ngl = (int)k;
	out->partial = true;
	return 0;
}

int backends_gguf_read_file(const char *path, struct backends_gguf_info *out,
			    struct lemon_err *err)
{
	struct lemon_err e = { 0 };
	unsigned char *buf = NULL, *p;
	size_t want = READ_FIRST, have = 0;
	struct stat st;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		lemon_err_errno(err, errno, path);
		goto out;
	}
	for (;;) {
		if ((uint64_t)want > (uint64_t)st.st_size)
			want = (size_t)st.st_size;
		p = realloc(buf, want ? want : 1);
		if (p == NULL) {
			lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
			goto out;
		}
		buf = p;
		while (have < want) {
			ssize_t n = pread(fd, buf + have, want - have, (off_t)have);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				lemon_err_errno(err, n < 0 ? errno : EIO, path);
				goto out;
			}
			have += (size_t)n;
		}
		lemon_err_clear(&e);
		rc = backends_gguf_parse(buf, have, out, &e);
		/* a header cut by our read size (not by the file) reads more */
		if (rc == 0 || strstr(e.msg, "truncated") == NULL ||
		    have == (size_t)st.st_size || want >= READ_MAX)
			break;
		want = want * 4 > READ_MAX ? READ_MAX : want * 4;
	}
	if (rc < 0) {
		lemon_err_set(err, e.code, "%s", e.msg);
		lemon_err_prefix(err, "%s", path);
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

/* a split model ("<prefix>-00001-of-0000N.gguf"): the tensors of every
 * part count, each part's header read and checked on its own */
static int add_split_parts(const char *path, struct backends_gguf_info *info,
			   struct lemon_err *err)
{
	struct backends_gguf_info part;
	const char *tail = strstr(path, "-00001-of-");
	char p[4200];
	uint64_t n, k;
	size_t pre;

	if (tail == NULL || strlen(tail) != 20 ||
	    lemon_parse_u64(tail + 10, 5, 10, 99999, &n, NULL) < 0)
		return 0;
	pre = (size_t)(tail - path);
	for (k = 2; k <= n; k++) {
		if (snprintf(p, sizeof(p), "%.*s-%05llu-of-%05llu.gguf", (int)pre,
			     path, (unsigned long long)k,
			     (unsigned long long)n) >= (int)sizeof(p))
			return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
					     "model path too long");
		if (backends_gguf_read_file(p, &part, err) < 0)
			return -1;
		if (part.tensor_bytes > UINT64_MAX / 2 - info->tensor_bytes)
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "%s: tensor sizes overflow", p);
		info->tensor_bytes += part.tensor_bytes;
		info->layer_bytes += part.layer_bytes;
		info->n_params += part.n_params;
	}
	return 0;
}

int backends_gguf_read_model(const char *path, struct backends_gguf_info *out,
			     struct lemon_err *err)
{
	if (backends_gguf_read_file(path, out, err) < 0)
		return -1;
	return add_split_parts(path, out, err);
}
