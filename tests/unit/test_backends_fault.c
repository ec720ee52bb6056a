/* backends/fault.c: which llama-server log lines blame the model (lines
 * recorded from the bundle's llama-server), and that the kept reason
 * carries no directory of a data path */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "backends/backends-private.h"

static void test_model_faults(void **state)
{
	char out[400];

	(void)state;
	assert_true(backends_sup_model_fault(
		"0.00.060.148 E llama_model_load: error loading model: check_tensor_dims: tensor 'blk.0.attn_q.weight' not found",
		out, sizeof(out)));
	assert_string_equal(out, "error loading model: check_tensor_dims: tensor 'blk.0.attn_q.weight' not found");
	assert_true(backends_sup_model_fault(
		"0.00.015.614 E llama_model_load: error loading model: tensor 'token_embd.weight' data is not within the file bounds, model is corrupted or incomplete",
		out, sizeof(out)));
	assert_true(backends_sup_model_fault(
		"E llama_model_load: error loading model: unknown model architecture: 'llamx'",
		out, sizeof(out)));
	assert_string_equal(out, "error loading model: unknown model architecture: 'llamx'");
}

static void test_not_model_faults(void **state)
{
	char out[16] = "untouched";

	(void)state;
	/* the device's fault: the backend falls back */
	assert_false(backends_sup_model_fault(
		"E llama_model_load: error loading model: unable to allocate Vulkan0 buffer",
		out, sizeof(out)));
	assert_false(backends_sup_model_fault(
		"E ggml_vulkan: error loading model: failed to allocate 4096 MiB: out of memory",
		out, sizeof(out)));
	/* the summary lines carry the path and no reason */
	assert_false(backends_sup_model_fault(
		"E srv    load_model: failed to load model, '/data/lemon/models/x.gguf'",
		out, sizeof(out)));
	assert_false(backends_sup_model_fault(
		"E srv  llama_server: exiting due to model loading error", out,
		sizeof(out)));
	assert_false(backends_sup_model_fault("", out, sizeof(out)));
	assert_string_equal(out, "untouched");
}

static void test_paths_cut(void **state)
{
	char out[400], small[12];

	(void)state;
	assert_true(backends_sup_model_fault(
		"E llama_model_load: error loading model: llama_model_loader: failed to load model from /home/u/.local/share/lemon/models/x.gguf",
		out, sizeof(out)));
	assert_string_equal(out, "error loading model: llama_model_loader: failed to load model from x.gguf");
	assert_true(backends_sup_model_fault(
		"gguf_init_from_file: failed to open '/a/b/c.gguf': '/' and \"/d/\" then /",
		out, sizeof(out)));
	assert_string_equal(out, "gguf_init_from_file: failed to open 'c.gguf': '' and \"\" then ");
	/* a small buffer is cut, always terminated */
	assert_true(backends_sup_model_fault("error loading model: long reason",
					     small, sizeof(small)));
	assert_string_equal(small, "error loadi");
}

/* the line a failed start is reported with: llama-server's own error
 * lines, not its usage text that follows a refused argument */
static void test_error_lines(void **state)
{
	(void)state;
	assert_true(backends_sup_error_line(
		"error while handling argument \"--device\": invalid device: CUDA0"));
	assert_true(backends_sup_error_line(
		"ggml_cuda_init: failed to initialize CUDA: no CUDA-capable device is detected"));
	assert_true(backends_sup_error_line("error: failed to load model"));
	assert_false(backends_sup_error_line("to show complete usage, run with -h"));
	assert_false(backends_sup_error_line("usage:"));
	assert_false(backends_sup_error_line(
		"main: server is listening on http://127.0.0.1:8080"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_faults),
		cmocka_unit_test(test_not_model_faults),
		cmocka_unit_test(test_paths_cut),
		cmocka_unit_test(test_error_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
