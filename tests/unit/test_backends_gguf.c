/* backends/gguf.c: the bounded GGUF header parser */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/backends.h"

struct buf {
	unsigned char b[1024];
	size_t n;
};

static void put(struct buf *b, const void *p, size_t n)
{
	assert_true(b->n + n <= sizeof(b->b));
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void u32(struct buf *b, uint32_t v)
{
	unsigned char x[4] = { v, v >> 8, v >> 16, v >> 24 };

	put(b, x, 4);
}

static void u64(struct buf *b, uint64_t v)
{
	u32(b, (uint32_t)v);
	u32(b, (uint32_t)(v >> 32));
}

static void str(struct buf *b, const char *s)
{
	u64(b, strlen(s));
	put(b, s, strlen(s));
}

/* magic, version 3, one tensor, three keys (string, u32 array, u32) */
static void valid(struct buf *b)
{
	memset(b, 0, sizeof(*b));
	put(b, "GGUF", 4);
	u32(b, 3);
	u64(b, 1);
	u64(b, 3);
	str(b, "general.architecture");
	u32(b, 8);
	str(b, "llama");
	str(b, "tokenizer.ggml.token_type");
	u32(b, 9);
	u32(b, 4);
	u64(b, 2);
	u32(b, 1);
	u32(b, 2);
	str(b, "llama.block_count");
	u32(b, 4);
	u32(b, 2);
	str(b, "token_embd.weight");
	u32(b, 2);
	u64(b, 64);
	u64(b, 32000);
	u32(b, 1);
	u64(b, 0);
}

static void test_valid(void **state)
{
	struct backends_gguf_info info;
	struct lemon_err err = { 0 };
	struct buf b;

	(void)state;
	valid(&b);
	assert_int_equal(backends_gguf_parse(b.b, b.n, &info, &err), 0);
	assert_int_equal(info.version, 3);
	assert_int_equal(info.n_tensors, 1);
	assert_int_equal(info.n_kv, 3);
	assert_string_equal(info.arch, "llama");
	assert_int_equal(info.header_len, b.n);
}

static void expect_invalid(const unsigned char *p, size_t n, const char *msg)
{
	struct backends_gguf_info info;
	struct lemon_err err = { 0 };

	assert_int_equal(backends_gguf_parse(p, n, &info, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, msg));
}

static void test_bad_magic_and_version(void **state)
{
	struct buf b;

	(void)state;
	valid(&b);
	b.b[0] = 'X';
	expect_invalid(b.b, b.n, "bad magic");
	expect_invalid(b.b, 3, "bad magic");
	valid(&b);
	b.b[4] = 1;
	expect_invalid(b.b, b.n, "version 1 unsupported");
	b.b[4] = 4;
	expect_invalid(b.b, b.n, "version 4 unsupported");
}

static void test_truncated_everywhere(void **state)
{
	struct buf b;
	size_t cut;

	(void)state;
	valid(&b);
	/* every proper prefix past the magic is rejected, never read past */
	for (cut = 4; cut < b.n; cut++)
		expect_invalid(b.b, cut, "truncated");
}

static void test_huge_lengths(void **state)
{
	struct buf b;

	(void)state;
	valid(&b);
	/* the architecture string claims 2^63 bytes */
	b.b[24 + 8 + 20 + 4 + 7] = 0x80;
	expect_invalid(b.b, b.n, "truncated");
	memset(&b, 0, sizeof(b));
	put(&b, "GGUF", 4);
	u32(&b, 3);
	u64(&b, UINT64_MAX);
	u64(&b, 1);
	expect_invalid(b.b, b.n, "counts too large");
}

static void test_bad_type_and_dims(void **state)
{
	struct buf b;

	(void)state;
	memset(&b, 0, sizeof(b));
	put(&b, "GGUF", 4);
	u32(&b, 3);
	u64(&b, 0);
	u64(&b, 1);
	str(&b, "k");
	u32(&b, 13);
	expect_invalid(b.b, b.n, "value type 13 invalid");
	memset(&b, 0, sizeof(b));
	put(&b, "GGUF", 4);
	u32(&b, 3);
	u64(&b, 1);
	u64(&b, 0);
	str(&b, "t");
	u32(&b, 5);
	expect_invalid(b.b, b.n, "tensor info invalid");
}


/* a plausible model: arch keys, file type, chat template, two layers */
static void model(struct buf *b, uint64_t off2, uint32_t type2)
{
	memset(b, 0, sizeof(*b));
	put(b, "GGUF", 4);
	u32(b, 3);
	u64(b, 3);
	u64(b, 8);
	str(b, "general.architecture");
	u32(b, 8);
	str(b, "llama");
	str(b, "llama.context_length");
	u32(b, 4);
	u32(b, 8192);
	str(b, "llama.block_count");
	u32(b, 4);
	u32(b, 2);
	str(b, "llama.embedding_length");
	u32(b, 10);
	u64(b, 4096);
	str(b, "llama.attention.head_count");
	u32(b, 4);
	u32(b, 32);
	str(b, "llama.attention.head_count_kv");
	u32(b, 4);
	u32(b, 8);
	str(b, "general.file_type");
	u32(b, 4);
	u32(b, 15);
	str(b, "tokenizer.chat_template");
	u32(b, 8);
	str(b, "{{ messages }}");
	/* f32 4096 x 32000, then two q4_k blk tensors of 4096 x 4096 */
	str(b, "token_embd.weight");
	u32(b, 2);
	u64(b, 4096);
	u64(b, 32000);
	u32(b, 0);
	u64(b, 0);
	str(b, "blk.0.attn_q.weight");
	u32(b, 2);
	u64(b, 4096);
	u64(b, 4096);
	u32(b, 12);
	u64(b, 524288000);
	str(b, "blk.1.attn_q.weight");
	u32(b, 2);
	u64(b, 4096);
	u64(b, 4096);
	u32(b, type2);
	u64(b, off2);
}

static void test_model_info(void **state)
{
	struct backends_gguf_info info;
	struct lemon_err err = { 0 };
	struct buf b;
	uint64_t q4k = 4096ull * 4096 / 256 * 144;

	(void)state;
	model(&b, 524288000 + q4k, 12);
	assert_int_equal(backends_gguf_parse(b.b, b.n, &info, &err), 0);
	assert_string_equal(info.arch, "llama");
	assert_int_equal(info.context_length, 8192);
	assert_int_equal(info.block_count, 2);
	assert_int_equal(info.embedding_length, 4096);
	assert_int_equal(info.head_count, 32);
	assert_int_equal(info.head_count_kv, 8);
	assert_true(info.has_file_type);
	assert_int_equal(info.file_type, 15);
	assert_string_equal(backends_gguf_ftype_name(info.file_type), "Q4_K_M");
	assert_string_equal(backends_gguf_ftype_name(4), "unknown");
	assert_true(info.has_chat_template);
	assert_int_equal(info.alignment, 32);
	assert_int_equal(info.n_params, 4096ull * 32000 + 2 * 4096ull * 4096);
	assert_int_equal(info.tensor_bytes, 524288000 + 2 * q4k);
	assert_int_equal(info.layer_bytes, 2 * q4k);
	assert_int_equal(info.data_len, 524288000 + 2 * q4k);
	assert_int_equal(info.header_len, b.n);
}

/* the template's place is recorded, and the bounded reader returns its
 * text from the file alone (no model loaded), refusing what exceeds max */
static void test_template_text(void **state)
{
	struct backends_gguf_info info;
	struct lemon_err err = { 0 };
	char path[] = "/tmp/lemon-gguf-tplXXXXXX", *text = NULL;
	struct buf b;
	int fd;

	(void)state;
	model(&b, 524288000 + 4096ull * 4096 / 256 * 144, 12);
	assert_int_equal(backends_gguf_parse(b.b, b.n, &info, &err), 0);
	assert_int_equal(info.chat_template_len, strlen("{{ messages }}"));
	assert_memory_equal(b.b + info.chat_template_off, "{{ messages }}",
			    info.chat_template_len);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b.b, b.n), (ssize_t)b.n);
	close(fd);
	assert_int_equal(backends_gguf_read_template(path, &info, 1 << 20,
						     &text, &err), 0);
	assert_string_equal(text, "{{ messages }}");
	free(text);
	assert_int_equal(backends_gguf_read_template(path, &info, 13, &text,
						     &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_null(text);
	/* a file cut short since its header was read: an error, not junk */
	assert_int_equal(truncate(path, (off_t)info.chat_template_off + 3), 0);
	lemon_err_clear(&err);
	assert_int_equal(backends_gguf_read_template(path, &info, 1 << 20,
						     &text, &err), -1);
	assert_null(text);
	unlink(path);
	/* a model without a template: NOT_FOUND */
	info.has_chat_template = false;
	lemon_err_clear(&err);
	assert_int_equal(backends_gguf_read_template(path, &info, 1 << 20,
						     &text, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
}

static void test_hostile_tensors(void **state)
{
	struct buf b;
	size_t dim_at;

	(void)state;
	model(&b, 524288000 + 1, 12);
	expect_invalid(b.b, b.n, "unaligned offset 524288001");
	model(&b, 1ull << 50, 12);
	expect_invalid(b.b, b.n, "offset 1125899906842624");
	model(&b, UINT64_MAX - 31, 12);
	expect_invalid(b.b, b.n, "offset");
	model(&b, 0, 200);
	expect_invalid(b.b, b.n, "type 200");
	model(&b, 0, 4); /* a removed ggml type */
	expect_invalid(b.b, b.n, "type 4");
	/* the last tensor's second dimension: 8 + 4 + 8 + 4 + 8 from its end */
	model(&b, 0, 12);
	dim_at = b.n - 8 - 4 - 8;
	memset(b.b + dim_at, 0, 8);
	expect_invalid(b.b, b.n, "dimension 0");
	memset(b.b + dim_at, 0xff, 8);
	expect_invalid(b.b, b.n, "dimension 18446744073709551615");
	/* 2^40 x 2^40 elements: each dimension allowed, the product is not */
	model(&b, 0, 0);
	memcpy(b.b + dim_at, "\0\0\0\0\0\x01\0\0", 8);
	memcpy(b.b + dim_at - 8, "\0\0\0\0\0\x01\0\0", 8);
	expect_invalid(b.b, b.n, "dimension 1099511627776");
	/* a q4_k row of 100 elements is not a whole number of blocks */
	model(&b, 0, 12);
	memcpy(b.b + dim_at - 8, "\x64\0\0\0\0\0\0\0", 8);
	expect_invalid(b.b, b.n, "row length for its type 100");
}

static void test_hostile_keys(void **state)
{
	struct buf b;

	(void)state;
	memset(&b, 0, sizeof(b));
	put(&b, "GGUF", 4);
	u32(&b, 3);
	u64(&b, 0);
	u64(&b, 1);
	str(&b, "general.alignment");
	u32(&b, 4);
	u32(&b, 48);
	expect_invalid(b.b, b.n, "alignment 48 invalid");
	b.n -= 4;
	u32(&b, 0);
	expect_invalid(b.b, b.n, "alignment 0 invalid");
	memset(&b, 0, sizeof(b));
	put(&b, "GGUF", 4);
	u32(&b, 3);
	u64(&b, 0);
	u64(&b, 1);
	u64(&b, 0); /* empty key */
	u32(&b, 4);
	u32(&b, 1);
	expect_invalid(b.b, b.n, "key length 0 invalid");
	/* an array of strings claiming 2^40 elements in a short buffer */
	memset(&b, 0, sizeof(b));
	put(&b, "GGUF", 4);
	u32(&b, 3);
	u64(&b, 0);
	u64(&b, 1);
	str(&b, "tokenizer.ggml.tokens");
	u32(&b, 9);
	u32(&b, 8);
	u64(&b, 1ull << 40);
	str(&b, "a");
	expect_invalid(b.b, b.n, "truncated");
	/* a context length of a signed negative value reads as absent */
	memset(&b, 0, sizeof(b));
	put(&b, "GGUF", 4);
	u32(&b, 3);
	u64(&b, 0);
	u64(&b, 1);
	str(&b, "llama.context_length");
	u32(&b, 5);
	u32(&b, 0xffffffffu);
	{
		struct backends_gguf_info info;
		struct lemon_err err = { 0 };

		assert_int_equal(backends_gguf_parse(b.b, b.n, &info, &err), 0);
		assert_int_equal(info.context_length, 0);
	}
}

/* the header's tensor extent against the file size: what a cut-off
 * download or copy is caught by */
static void test_min_size(void **state)
{
	struct backends_gguf_info info;
	struct lemon_err err = { 0 };
	uint64_t want;
	char msg[128];
	struct buf b;

	(void)state;
	valid(&b);
	assert_int_equal(backends_gguf_parse(b.b, b.n, &info, &err), 0);
	/* data starts at the header's end rounded up to 32; one F16 tensor
	 * of 64 x 32000 */
	want = (b.n + 31) / 32 * 32 + 64ull * 32000 * 2;
	assert_int_equal(backends_gguf_min_size(&info), want);
	assert_int_equal(backends_gguf_check_size(&info, want, &err), 0);
	assert_int_equal(backends_gguf_check_size(&info, want + 4096, &err), 0);
	assert_int_equal(backends_gguf_check_size(&info, want - 1, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	snprintf(msg, sizeof(msg),
		 "truncated gguf: its tensors need %llu bytes, the file has %llu",
		 (unsigned long long)want, (unsigned long long)want - 1);
	assert_string_equal(err.msg, msg);
	lemon_err_clear(&err);
	/* the header alone cut short of its data section */
	assert_int_equal(backends_gguf_check_size(&info, b.n, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);

	/* no tensors: the header is the whole file */
	memset(&b, 0, sizeof(b));
	put(&b, "GGUF", 4);
	u32(&b, 3);
	u64(&b, 0);
	u64(&b, 0);
	assert_int_equal(backends_gguf_parse(b.b, b.n, &info, &err), 0);
	assert_int_equal(backends_gguf_min_size(&info), 24);
	assert_int_equal(backends_gguf_check_size(&info, 24, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_bad_magic_and_version),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_huge_lengths),
		cmocka_unit_test(test_bad_type_and_dims),
		cmocka_unit_test(test_model_info),
		cmocka_unit_test(test_template_text),
		cmocka_unit_test(test_hostile_tensors),
		cmocka_unit_test(test_hostile_keys),
		cmocka_unit_test(test_min_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
