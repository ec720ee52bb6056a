/* backends/fit.c: the memory plan (all on the GPU, partial offload, refused
 * with the sizes) and reading a GGUF header from a file */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/backends.h"

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

/* 8 GiB of weights, 7 GiB of them in 32 layers; 4096-wide, GQA 32/8 */
static void big(struct backends_gguf_info *m)
{
	memset(m, 0, sizeof(*m));
	m->block_count = 32;
	m->context_length = 131072;
	m->embedding_length = 4096;
	m->head_count = 32;
	m->head_count_kv = 8;
	m->tensor_bytes = 8 * GiB;
	m->layer_bytes = 7 * GiB;
}

static void test_fits_on_gpu(void **state)
{
	struct backends_gguf_info m;
	struct backends_fit f;
	struct lemon_err err = { 0 };

	(void)state;
	big(&m);
	assert_int_equal(backends_fit_plan(&m, "big", 0, 32 * GiB, 24 * GiB, &f,
					   &err), 0);
	/* KV at the 4096 floor: 4 bytes * 32 layers * 4096 * 1024 */
	assert_int_equal(f.context, 512 * MiB);
	assert_int_equal(f.weights, 8 * GiB);
	assert_int_equal(f.need, 8 * GiB + 512 * MiB + 64 * MiB + 8 * GiB / 20);
	assert_int_equal(f.n_gpu_layers, -1);
	assert_false(f.partial);
	/* an explicit context counts in full */
	assert_int_equal(backends_fit_plan(&m, "big", 32768, 32 * GiB, 24 * GiB,
					   &f, &err), 0);
	assert_int_equal(f.context, 4 * GiB);
}

static void test_partial_offload(void **state)
{
	struct backends_gguf_info m;
	struct backends_fit f;
	struct lemon_err err = { 0 };
	uint64_t fixed, per;

	(void)state;
	big(&m);
	assert_int_equal(backends_fit_plan(&m, "big", 0, 32 * GiB, 4 * GiB, &f,
					   &err), 0);
	assert_true(f.partial);
	fixed = f.need - 7 * GiB - f.context;
	per = (7 * GiB + f.context) / 32;
	assert_int_equal(f.n_gpu_layers, (4 * GiB - fixed) / per);
	assert_true(f.n_gpu_layers > 0 && f.n_gpu_layers < 32);
	/* VRAM smaller than the non-layer part: nothing offloaded, runs */
	assert_int_equal(backends_fit_plan(&m, "big", 0, 32 * GiB, 512 * MiB,
					   &f, &err), 0);
	assert_int_equal(f.n_gpu_layers, 0);
	/* RAM + VRAM together are enough */
	assert_int_equal(backends_fit_plan(&m, "big", 0, 6 * GiB, 4 * GiB, &f,
					   &err), 0);
	assert_true(f.partial);
}

static void test_fits_nowhere(void **state)
{
	struct backends_gguf_info m;
	struct backends_fit f;
	struct lemon_err err = { 0 };

	(void)state;
	big(&m);
	assert_int_equal(backends_fit_plan(&m, "big", 0, 4 * GiB, 2 * GiB, &f,
					   &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
	assert_non_null(strstr(err.msg, "model 'big' needs about 9178 MiB"));
	assert_non_null(strstr(err.msg, "4096 MiB of RAM and 2048 MiB of VRAM"));
	lemon_err_clear(&err);
	assert_int_equal(backends_fit_plan(&m, "big", 0, 4 * GiB, 0, &f, &err),
			 -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
	assert_non_null(strstr(err.msg, "weights 8192 MiB"));
	assert_non_null(strstr(err.msg, "the machine has 4096 MiB of RAM"));
	/* unknown RAM: no refusal on the CPU */
	assert_int_equal(backends_fit_plan(&m, "big", 0, 0, 0, &f, &err), 0);
	assert_int_equal(f.n_gpu_layers, -1);
}

/* what the child is started with: the planned context, never above the
 * trained one (a header may declare 1e9), and an explicit layer count */
static void test_child_flags(void **state)
{
	struct backends_gguf_info m;
	struct backends_fit f;
	struct lemon_err err = { 0 };

	(void)state;
	big(&m);
	assert_int_equal(backends_fit_plan(&m, "big", 0, 32 * GiB, 0, &f, &err), 0);
	assert_int_equal(f.ctx, 4096);
	assert_int_equal(f.ngl, 0); /* a CPU candidate */
	assert_int_equal(backends_fit_plan(&m, "big", 0, 32 * GiB, 24 * GiB, &f,
					   &err), 0);
	assert_int_equal(f.ngl, 33); /* every layer and the output layer */
	assert_int_equal(backends_fit_plan(&m, "big", 0, 32 * GiB, 4 * GiB, &f,
					   &err), 0);
	assert_true(f.partial);
	assert_int_equal(f.ngl, f.n_gpu_layers);
	/* an explicit context above the trained one is clamped, and the KV
	 * cache is planned for the clamped size */
	m.context_length = 512;
	assert_int_equal(backends_fit_plan(&m, "big", 16384, 32 * GiB, 0, &f,
					   &err), 0);
	assert_int_equal(f.ctx, 512);
	assert_int_equal(f.context, 4ull * 32 * 512 * 1024);
	/* a header declaring a context of 1e9: the plan's 4096, not that */
	m.context_length = 1000000000;
	assert_int_equal(backends_fit_plan(&m, "big", 0, 32 * GiB, 0, &f, &err), 0);
	assert_int_equal(f.ctx, 4096);
	assert_int_equal(backends_fit_plan(&m, "big", 65536, 32 * GiB, 0, &f,
					   &err), 0);
	assert_int_equal(f.ctx, 65536);
}

static void test_saturates(void **state)
{
	struct backends_gguf_info m;
	struct backends_fit f;
	struct lemon_err err = { 0 };

	(void)state;
	big(&m);
	m.embedding_length = 1ull << 40;
	m.head_count = 0;
	m.block_count = 1ull << 30;
	m.tensor_bytes = 1ull << 50;
	assert_int_equal(backends_fit_plan(&m, "odd", 1 << 30, 64 * GiB, 0, &f,
					   &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
	/* 2^40 tiny layers on a GPU with room for many: the flag stays an int */
	big(&m);
	m.block_count = 1ull << 40;
	m.embedding_length = 0;
	m.tensor_bytes = (1ull << 40) + (1ull << 20);
	m.layer_bytes = 1ull << 40;
	lemon_err_clear(&err);
	assert_int_equal(backends_fit_plan(&m, "odd", 0, 0, 1ull << 40, &f, &err),
			 0);
	assert_true(f.partial);
	assert_int_equal(f.n_gpu_layers, INT_MAX / 2);
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static void test_read_file(void **state)
{
	struct backends_gguf_info info;
	struct lemon_err err = { 0 };
	char dir[] = "/tmp/lemon-fit-XXXXXX", path[64];
	unsigned char *buf;
	size_t n = 3u << 20, pos = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/m.gguf", dir);
	/* a 3 MiB string value: the header is longer than the first read */
	buf = calloc(1, n + 64);
	assert_non_null(buf);
	memcpy(buf, "GGUF\3\0\0\0", 8);
	buf[16] = 1; /* one key, no tensors */
	pos = 24;
	buf[pos] = 1;
	buf[pos + 8] = 'k';
	buf[pos + 9] = 8; /* string */
	pos += 13;
	buf[pos + 0] = (unsigned char)(n & 0xff);
	buf[pos + 1] = (unsigned char)(n >> 8);
	buf[pos + 2] = (unsigned char)(n >> 16);
	pos += 8;
	write_file(path, buf, pos + n);
	assert_int_equal(backends_gguf_read_file(path, &info, &err), 0);
	assert_int_equal(info.header_len, pos + n);
	/* the same file cut short: truncated, named by path */
	write_file(path, buf, pos + n - 1);
	assert_int_equal(backends_gguf_read_file(path, &info, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "truncated"));
	unlink(path);
	lemon_err_clear(&err);
	assert_int_equal(backends_gguf_read_file(path, &info, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	rmdir(dir);
	free(buf);
}

/* GGUF v3, no keys, one f32 tensor "blk.0.w" of n elements */
static void one_tensor(const char *path, uint64_t n)
{
	unsigned char b[64] = "GGUF\3\0\0\0\1";
	size_t pos = 24;

	b[pos] = 7;
	memcpy(b + pos + 8, "blk.0.w", 7);
	pos += 15;
	b[pos] = 1; /* one dimension */
	pos += 4;
	memcpy(b + pos, &n, 8); /* little-endian host */
	pos += 8 + 4 + 8;       /* type 0 (f32), offset 0 */
	write_file(path, b, pos);
}

static void test_split_model(void **state)
{
	struct backends_gguf_info info;
	struct lemon_err err = { 0 };
	char dir[] = "/tmp/lemon-split-XXXXXX", p1[80], p2[80], p3[80];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(p1, sizeof(p1), "%s/m-00001-of-00003.gguf", dir);
	snprintf(p2, sizeof(p2), "%s/m-00002-of-00003.gguf", dir);
	snprintf(p3, sizeof(p3), "%s/m-00003-of-00003.gguf", dir);
	one_tensor(p1, 1000);
	one_tensor(p2, 2000);
	/* the third part is missing: named in the error */
	assert_int_equal(backends_gguf_read_model(p1, &info, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, "m-00003-of-00003.gguf"));
	one_tensor(p3, 3000);
	lemon_err_clear(&err);
	assert_int_equal(backends_gguf_read_model(p1, &info, &err), 0);
	assert_int_equal(info.tensor_bytes, 4 * 6000);
	assert_int_equal(info.layer_bytes, 4 * 6000);
	assert_int_equal(info.n_params, 6000);
	/* a single file reads as itself */
	assert_int_equal(backends_gguf_read_model(p2, &info, &err), 0);
	assert_int_equal(info.n_params, 2000);
	unlink(p1);
	unlink(p2);
	unlink(p3);
	rmdir(dir);
}

/* the tiny model the integration tests use (tests/tools/make-tiny-gguf.py
 * defaults: llama, 2 layers, 64 wide, 4 heads, context 512) */
static void test_tiny_model(void **state)
{
	const char *path = "build/models/tiny.gguf";
	struct backends_gguf_info info;
	struct lemon_err err = { 0 };
	struct backends_fit f;

	(void)state;
	if (access(path, R_OK) != 0)
		skip();
	assert_int_equal(backends_gguf_read_file(path, &info, &err), 0);
	assert_string_equal(info.arch, "llama");
	assert_int_equal(info.block_count, 2);
	assert_int_equal(info.embedding_length, 64);
	assert_int_equal(info.head_count, 4);
	assert_int_equal(info.context_length, 512);
	assert_true(info.n_params > 0);
	assert_true(info.layer_bytes > 0 && info.layer_bytes < info.tensor_bytes);
	assert_int_equal(backends_fit_plan(&info, "tiny", 0, 1 * GiB, 0, &f,
					   &err), 0);
	assert_int_equal(f.context, 4ull * 2 * 512 * 64);
}

/* slots when --parallel is not given: 16 on a GPU of 16 GiB or more,
 * 8 from 4 GiB, else (and on the CPU) 4 */
static void test_default_slots(void **state)
{
	(void)state;
	assert_int_equal(backends_default_slots(0), 4);
	assert_int_equal(backends_default_slots((4ull << 30) - 1), 4);
	assert_int_equal(backends_default_slots(4ull << 30), 8);
	assert_int_equal(backends_default_slots((16ull << 30) - 1), 8);
	assert_int_equal(backends_default_slots(16ull << 30), 16);
	assert_int_equal(backends_default_slots(141ull << 30), 16);
}

/* the start deadline grows with the model: a 38.8 GB model (the 70B
 * shape) gets about 6 minutes beyond the base, a tiny one the base */
static void test_start_allowance(void **state)
{
	(void)state;
	assert_int_equal(backends_start_allowance_ms(60000, 0), 60000);
	assert_int_equal(backends_start_allowance_ms(2000, 1 << 20), 2010);
	assert_int_equal(backends_start_allowance_ms(60000, 38804665408ull),
			 60000 + 370072);
	assert_int_equal(backends_start_allowance_ms(60000, UINT64_MAX),
			 60000 + 86400000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fits_on_gpu),
		cmocka_unit_test(test_start_allowance),
		cmocka_unit_test(test_partial_offload),
		cmocka_unit_test(test_fits_nowhere),
		cmocka_unit_test(test_child_flags),
		cmocka_unit_test(test_saturates),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_split_model),
		cmocka_unit_test(test_tiny_model),
		cmocka_unit_test(test_default_slots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
