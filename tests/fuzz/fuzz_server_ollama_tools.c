/* libFuzzer target for server/ollama_tools.c: any bytes, split at the
 * first NUL, as a client's Ollama message list and as a child's streamed
 * tool_calls deltas: the conversion to OpenAI messages and the gathered
 * calls never crash, every converted message has a string role and
 * content (Ollama images as one content part each, or refused with a
 * reason), and every gathered call a name and object or string arguments */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *nul = memchr(s, 0, size);
	size_t n1 = nul ? (size_t)(nul - s) : size;
	cJSON *msgs = cJSON_ParseWithLength(s, n1), *m, *c, *out;
	cJSON *deltas = nul ? cJSON_ParseWithLength(nul + 1, size - n1 - 1) : NULL;
	struct server_ollama_calls acc;
	struct server_ollama_ids ids;
	cJSON *list;

	memset(&acc, 0, sizeof(acc));
	server_ollama_ids_init(&ids);
	list = cJSON_IsArray(msgs) ? msgs : NULL;
	cJSON_ArrayForEach (m, list) {
		const cJSON *imgs = cJSON_GetObjectItem(m, "images");
		const char *why = NULL;

		out = server_ollama_message_to_openai(m, &ids);
		if (!cJSON_IsString(cJSON_GetObjectItem(out, "role")) ||
		    !cJSON_IsString(cJSON_GetObjectItem(out, "content")))
			abort();
		/* images (ollama_images.c): text then one part per image, or
		 * a refusal that says why */
		if (cJSON_IsArray(imgs)) {
			if (server_ollama_images_to_parts(out, imgs, &why) == 0) {
				if (cJSON_GetArraySize(cJSON_GetObjectItem(out, "content")) !=
				    1 + cJSON_GetArraySize(imgs))
					abort();
			} else if (why == NULL) {
				abort();
			}
		}
		cJSON_Delete(out);
	}
	if (cJSON_IsArray(deltas))
		server_ollama_calls_delta(&acc, deltas);
	out = server_ollama_calls_json(&acc);
	cJSON_ArrayForEach (c, out) {
		const cJSON *f = cJSON_GetObjectItem(c, "function");
		const cJSON *a = cJSON_GetObjectItem(f, "arguments");

		if (!cJSON_IsString(cJSON_GetObjectItem(f, "name")) ||
		    !(cJSON_IsObject(a) || cJSON_IsString(a)))
			abort();
	}
	cJSON_Delete(out);
	server_ollama_calls_free(&acc);
	cJSON_Delete(msgs);
	cJSON_Delete(deltas);
	return 0;
}
