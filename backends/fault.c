/* telling a model that cannot load from a backend that cannot start, from
 * llama-server's own log. llama.cpp prints "llama_model_load: error loading
 * model: <why>" (src/llama.cpp llama_model_load, catching what the GGUF
 * loader, the hyperparameter and vocabulary readers and the tensor checks
 * throw) and exits with status 1 ("exiting due to model loading error").
 * The same line carries a failure to allocate the model's buffers, which
 * is the device's fault, so those words do not count. Measured with the
 * bundle's llama-server on a renamed tensor ("check_tensor_dims: tensor
 * 'blk.0.attn_q.weight' not found"), a truncated file ("tensor
 * 'token_embd.weight' data is not within the file bounds, model is
 * corrupted or incomplete") and an unknown architecture. The reason reaches
 * HTTP error bodies, which never carry data paths. */
#include <string.h>

#include "backends/backends-private.h"

/* copies from p on, each absolute path cut to its last part */
static void strip_dirs(const char *p, char *out, size_t cap)
{
	size_t n = 0;

	for (; *p && n + 1 < cap; p++) {
		if (*p == '/' && (n == 0 || out[n - 1] == ' ' || out[n - 1] == '\'' ||
				  out[n - 1] == '"')) {
			const char *end = p + strcspn(p, " '\"");
			const char *last = p;

			for (; p < end; p++)
				if (*p == '/')
					last = p + 1;
			p = last - 1; /* the loop steps onto the last part */
			continue;
		}
		out[n++] = *p;
	}
	out[n] = 0;
}

/* a line that says what went wrong, for the reason of a start that
 * failed: llama-server ends a refused argument with its usage text
 * ("to show complete usage, run with -h"), so the last line alone often
 * names nothing; "error while handling argument "--device": invalid
 * device: CUDA0" or "ggml_cuda_init: failed to initialize CUDA: ..." does */
bool backends_sup_error_line(const char *line)
{
	static const char *const words[] = { "error", "failed", "invalid",
					     "unable to", "cannot", "not found" };
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(line, words[i]))
			return true;
	return false;
}

bool backends_sup_model_fault(const char *line, char *out, size_t cap)
{
	static const char *const alloc[] = { "unable to allocate",
					     "failed to allocate",
					     "out of memory" };
	const char *p = strstr(line, "error loading model");
	size_t i;

	if (p == NULL)
		p = strstr(line, "gguf_init_from_file");
	if (p == NULL)
		return false;
	for (i = 0; i < sizeof(alloc) / sizeof(alloc[0]); i++)
		if (strstr(line, alloc[i]))
			return false;
	if (cap > 0)
		strip_dirs(p, out, cap);
	return true;
}
