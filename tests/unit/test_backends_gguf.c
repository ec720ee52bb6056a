/* backends/gguf.c: the bounded GGUF header parser */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "backends/backends.h"

struct buf {
	unsigned char b[512];
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_bad_magic_and_version),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_huge_lengths),
		cmocka_unit_test(test_bad_type_and_dims),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
