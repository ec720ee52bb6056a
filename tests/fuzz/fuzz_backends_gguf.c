/* libFuzzer target for backends/gguf.c: any bytes either parse or fail
 * with INVALID_DATA, never read outside the buffer */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "backends/backends.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct backends_gguf_info info;
	struct lemon_err err = { 0 };

	if (backends_gguf_parse(data, size, &info, &err) < 0 &&
	    err.code != LEMON_ERR_INVALID_DATA)
		abort();
	if (err.code == LEMON_OK && info.header_len > size)
		abort();
	/* the sizes the memory plan trusts stay within the parser's caps */
	if (err.code == LEMON_OK &&
	    (info.layer_bytes > info.tensor_bytes ||
	     info.data_len > (1ull << 50) || info.alignment == 0 ||
	     (info.alignment & (info.alignment - 1)) != 0))
		abort();
	/* the recorded chat template lies inside the header that was read */
	if (err.code == LEMON_OK && info.has_chat_template &&
	    (info.chat_template_off > info.header_len ||
	     info.chat_template_len > info.header_len - info.chat_template_off))
		abort();
	/* the truncation check's extent neither wraps nor undercuts the
	 * header, and this buffer, whole, passes it exactly when it is that
	 * long */
	if (err.code == LEMON_OK &&
	    (backends_gguf_min_size(&info) < info.header_len ||
	     (backends_gguf_check_size(&info, size, NULL) == 0) !=
		     (size >= backends_gguf_min_size(&info))))
		abort();
	return 0;
}
