/* libFuzzer target for the compat schema checker through the user's
 * models.json (compat/schema.c, compat/models.c): any bytes either give a
 * registry whose every name, repo, file and projector passed the checks, or fail
 * with INVALID_DATA or TOO_LARGE; never a crash */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compat/compat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct compat_models *reg = calloc(1, sizeof(*reg));
	struct lemon_err err = { 0 };
	char *text = malloc(size + 1);
	int i;

	if (reg == NULL || text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = 0;
	if (compat_models_parse(reg, text, "fuzz.json", true, &err) < 0) {
		if (err.code != LEMON_ERR_INVALID_DATA && err.code != LEMON_ERR_TOO_LARGE)
			abort();
	} else {
		for (i = 0; i < reg->n; i++) {
			const struct compat_model *m = &reg->m[i];
			bool gguf = strcmp(m->recipe, "llamacpp") == 0;

			/* flm entries have no repo or files (FastFlowLM's own) */
			if (m->name[0] == 0 || strstr(m->name, "..") ||
			    (gguf && (m->n_files < 1 || strchr(m->repo, '/') == NULL)))
				abort();
			/* a projector always comes with its digest and a repo */
			if (m->mmproj.file[0] &&
			    (!gguf || strlen(m->mmproj.sha256) != 64 ||
			     strchr(m->mmproj_repo, '/') == NULL || strstr(m->mmproj.file, "..")))
				abort();
		}
	}
	free(text);
	free(reg);
	return 0;
}
