/* backends/multigpu.c: a model larger than one GPU's free memory split by
 * layers across the GPUs of one vendor, in proportion to their free
 * memory; one GPU (the largest) when it holds the model; --device honoured */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "backends/backends.h"

#define GIB (1ull << 30)

/* a 70B-class shape: 80 layers, GQA 64/8, about 40 GiB of weights */
static struct backends_gguf_info shape70b(void)
{
	struct backends_gguf_info m;

	memset(&m, 0, sizeof(m));
	m.block_count = 80;
	m.embedding_length = 8192;
	m.head_count = 64;
	m.head_count_kv = 8;
	m.context_length = 131072;
	m.tensor_bytes = 40 * GIB;
	m.layer_bytes = 38 * GIB;
	return m;
}

static int plan(const struct backends_gpu_mem *g, int n, const char *only,
		uint64_t ram, struct backends_split_plan *p, struct lemon_err *err)
{
	struct backends_gguf_info m = shape70b();

	return backends_multigpu_plan(&m, "big", 4096, ram, g, n, only, p, err);
}

static void test_one_gpu_when_it_fits(void **state)
{
	const struct backends_gpu_mem g[] = { { "CUDA0", 8 * GIB }, { "CUDA1", 139 * GIB } };
	struct backends_split_plan p;
	struct lemon_err err = { 0 };

	(void)state;
	assert_int_equal(plan(g, 2, NULL, 64 * GIB, &p, &err), 0);
	assert_int_equal(p.n_devices, 1);
	assert_false(p.split);
	assert_string_equal(p.devices, "CUDA1");
	assert_false(p.fit.partial);
	assert_int_equal(p.fit.ngl, 81);
}

static void test_split_by_free_memory(void **state)
{
	const struct backends_gpu_mem g[] = { { "CUDA0", 30 * GIB }, { "CUDA1", 20 * GIB } };
	struct backends_split_plan p;
	struct lemon_err err = { 0 };

	(void)state;
	assert_int_equal(plan(g, 2, NULL, 64 * GIB, &p, &err), 0);
	assert_true(p.split);
	assert_int_equal(p.n_devices, 2);
	assert_string_equal(p.devices, "CUDA0,CUDA1");
	assert_string_equal(p.tensor_split, "30720,20480");
	assert_false(p.fit.partial);
	assert_int_equal(p.fit.ngl, 81);
	assert_non_null(strstr(p.text, "--split-mode layer --device CUDA0,CUDA1 --tensor-split 30720,20480"));
}

static void test_split_partial(void **state)
{
	const struct backends_gpu_mem g[] = { { "ROCm0", 16 * GIB }, { "ROCm1", 8 * GIB } };
	struct backends_split_plan p;
	struct lemon_err err = { 0 };

	(void)state;
	assert_int_equal(plan(g, 2, NULL, 64 * GIB, &p, &err), 0);
	assert_true(p.split);
	assert_string_equal(p.tensor_split, "16384,8192");
	assert_true(p.fit.partial);
	assert_true(p.fit.ngl > 30 && p.fit.ngl < 80);
	assert_non_null(strstr(p.text, "partial offload"));
}

static void test_one_vendor_only(void **state)
{
	const struct backends_gpu_mem g[] = {
		{ "CUDA0", 24 * GIB }, { "Vulkan0", 24 * GIB }, { "CUDA1", 24 * GIB }
	};
	struct backends_split_plan p;
	struct lemon_err err = { 0 };

	(void)state;
	assert_int_equal(plan(g, 3, NULL, 64 * GIB, &p, &err), 0);
	assert_string_equal(p.devices, "CUDA0,CUDA1");
	assert_string_equal(p.tensor_split, "24576,24576");
}

static void test_device_filter(void **state)
{
	const struct backends_gpu_mem g[] = {
		{ "CUDA0", 24 * GIB }, { "CUDA1", 24 * GIB }, { "CUDA10", 24 * GIB }
	};
	struct backends_split_plan p;
	struct lemon_err err = { 0 };

	(void)state;
	/* CUDA1 alone (not CUDA10): partially offloaded there */
	assert_int_equal(plan(g, 3, "CUDA1", 64 * GIB, &p, &err), 0);
	assert_int_equal(p.n_devices, 1);
	assert_string_equal(p.devices, "CUDA1");
	assert_true(p.fit.partial);
	assert_int_equal(plan(g, 3, "CUDA10,CUDA0", 64 * GIB, &p, &err), 0);
	assert_string_equal(p.devices, "CUDA0,CUDA10");
	lemon_err_clear(&err);
	assert_int_equal(plan(g, 3, "CUDA7", 64 * GIB, &p, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
}

static void test_fits_nowhere(void **state)
{
	const struct backends_gpu_mem g[] = { { "CUDA0", 8 * GIB }, { "CUDA1", 8 * GIB } };
	struct backends_split_plan p;
	struct lemon_err err = { 0 };

	(void)state;
	assert_int_equal(plan(g, 2, NULL, 8 * GIB, &p, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
	lemon_err_clear(&err);
	assert_int_equal(plan(g, 0, NULL, 64 * GIB, &p, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
}

static struct backends_candidate cand(const char *kind)
{
	struct backends_candidate c;

	memset(&c, 0, sizeof(c));
	snprintf(c.kind, sizeof(c.kind), "%s", kind);
	return c;
}

/* CUDA: the names detection gave, an iGPU and another vendor left out */
static void test_span_cuda(void **state)
{
	const struct backends_gpu_seen g[] = {
		{ "CUDA0", -1, 0x10de, false, 20 * GIB },
		{ "", -1, 0x8086, true, 4 * GIB },
		{ "CUDA1", -1, 0x10de, false, 10 * GIB },
	};
	struct backends_candidate c = cand("cuda");

	(void)state;
	/* the candidate's own GPU an iGPU: no span */
	backends_multigpu_span(&c, g + 1, 2, false, false);
	assert_int_equal(c.n_gpus, 0);
	backends_multigpu_span(&c, g, 3, false, false);
	assert_int_equal(c.n_gpus, 2);
	assert_string_equal(c.gpus[0].device, "CUDA0");
	assert_string_equal(c.gpus[1].device, "CUDA1");
	assert_true(c.gpus[1].free_bytes == 10 * GIB);
	assert_string_equal(c.split_env, "");
	/* one GPU: nothing to span */
	backends_multigpu_span(&c, g, 2, false, false);
	assert_int_equal(c.n_gpus, 0);
}

/* Vulkan: the child is shown the GPUs' loader indices in order and names
 * them Vulkan0..; a list the user set, or indices known for some only:
 * no span */
static void test_span_vulkan(void **state)
{
	const struct backends_gpu_seen g[] = {
		{ "Vulkan0", 2, 0x1002, false, 16 * GIB },
		{ "", 0, 0x8086, false, 8 * GIB }, /* another vendor */
		{ "", 1, 0x1002, false, 12 * GIB },
	};
	const struct backends_gpu_seen part[] = {
		{ "Vulkan0", 2, 0x1002, false, 16 * GIB },
		{ "", -1, 0x1002, false, 12 * GIB },
	};
	struct backends_candidate c = cand("vulkan");

	(void)state;
	backends_multigpu_span(&c, g, 3, false, false);
	assert_int_equal(c.n_gpus, 2);
	assert_string_equal(c.gpus[0].device, "Vulkan0");
	assert_string_equal(c.gpus[1].device, "Vulkan1");
	assert_string_equal(c.split_env, "GGML_VK_VISIBLE_DEVICES=2,1");
	backends_multigpu_span(&c, g, 3, true, false);
	assert_int_equal(c.n_gpus, 0);
	assert_string_equal(c.split_env, "");
	backends_multigpu_span(&c, part, 2, false, false);
	assert_int_equal(c.n_gpus, 0);
	assert_string_equal(c.split_env, "");
}

/* ROCm: ROCm0.. in detection order unless a *_VISIBLE_DEVICES variable
 * hides GPUs from HIP; the CPU candidate never spans */
static void test_span_rocm_and_cpu(void **state)
{
	const struct backends_gpu_seen g[] = {
		{ "", -1, 0x1002, false, 12 * GIB },
		{ "", -1, 0x1002, false, 12 * GIB },
	};
	struct backends_candidate c = cand("rocm");

	(void)state;
	backends_multigpu_span(&c, g, 2, false, false);
	assert_int_equal(c.n_gpus, 2);
	assert_string_equal(c.gpus[0].device, "ROCm0");
	assert_string_equal(c.gpus[1].device, "ROCm1");
	backends_multigpu_span(&c, g, 2, false, true);
	assert_int_equal(c.n_gpus, 0);
	c = cand("cpu");
	backends_multigpu_span(&c, g, 2, false, false);
	assert_int_equal(c.n_gpus, 0);
}

/* the bytes planned on each GPU (what a second model's plan subtracts)
 * in proportion to its free memory; a GPU that others filled (under
 * 1 MiB left) takes no layers and is left out of the split */
static void test_shares_and_full_gpus(void **state)
{
	const struct backends_gpu_mem g[] = { { "CUDA0", 30 * GIB }, { "CUDA1", 512 << 10 },
					      { "CUDA2", 20 * GIB } };
	const struct backends_gpu_mem big[] = { { "CUDA0", 8 * GIB }, { "CUDA1", 139 * GIB } };
	struct backends_split_plan p;
	struct lemon_err err = { 0 };

	(void)state;
	assert_int_equal(plan(g, 3, NULL, 64 * GIB, &p, &err), 0);
	assert_true(p.split);
	assert_int_equal(p.n_devices, 2);
	assert_string_equal(p.devices, "CUDA0,CUDA2");
	assert_string_equal(p.tensor_split, "30720,20480");
	assert_int_equal(p.idx[0], 0);
	assert_int_equal(p.idx[1], 2);
	assert_true(p.bytes[0] + p.bytes[1] <= p.fit.need);
	assert_true(p.bytes[0] + p.bytes[1] >= p.fit.need - 2);
	assert_true(p.bytes[0] / 3 > p.bytes[1] / 2 - (1 << 20) &&
		    p.bytes[0] / 3 < p.bytes[1] / 2 + (1 << 20));
	/* one GPU too small: what it has (the rest in RAM); one that holds
	 * the model: all of it */
	assert_int_equal(plan(g + 2, 1, NULL, 64 * GIB, &p, &err), 0);
	assert_true(p.fit.partial);
	assert_int_equal(p.idx[0], 0);
	assert_int_equal(p.bytes[0], 20 * GIB);
	assert_int_equal(plan(big, 2, NULL, 64 * GIB, &p, &err), 0);
	assert_int_equal(p.idx[0], 1);
	assert_int_equal(p.bytes[0], p.fit.need);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_gpu_when_it_fits),
		cmocka_unit_test(test_shares_and_full_gpus),
		cmocka_unit_test(test_split_by_free_memory),
		cmocka_unit_test(test_split_partial),
		cmocka_unit_test(test_one_vendor_only),
		cmocka_unit_test(test_device_filter),
		cmocka_unit_test(test_fits_nowhere),
		cmocka_unit_test(test_span_cuda),
		cmocka_unit_test(test_span_vulkan),
		cmocka_unit_test(test_span_rocm_and_cpu),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
