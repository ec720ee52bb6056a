/* Ollama's images (a list of base64 strings beside a message's text) as
 * OpenAI content parts, the shape llama-server's multimodal chat takes:
 * [{"type":"text",...}, {"type":"image_url","image_url":{"url":"data:..."}}]
 * for a model stored with a vision projector (backends/mmproj.c) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-private.h"

/* the media type from the first bytes' base64 (the data: URL needs one;
 * llama-server decodes by content, so an unknown kind is sent as PNG) */
static const char *mime_of(const char *b64)
{
	if (strncmp(b64, "/9j/", 4) == 0)
		return "image/jpeg";
	if (strncmp(b64, "R0lGOD", 6) == 0)
		return "image/gif";
	if (strncmp(b64, "UklGR", 5) == 0)
		return "image/webp";
	if (strncmp(b64, "Qk", 2) == 0)
		return "image/bmp";
	return "image/png";
}

static bool base64_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '+' || c == '/' ||
		      c == '=' || c == '\n' || c == '\r'))
			return false;
	}
	return true;
}

int server_ollama_images_to_parts(cJSON *msg, const cJSON *images,
				  const char **err)
{
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
	cJSON *parts = cJSON_CreateArray(), *p, *u;
	const cJSON *img;
	char *url;
	size_t n;

	if (parts == NULL)
		return -1;
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "type", "text");
	cJSON_AddStringToObject(p, "text", cJSON_IsString(content) ?
						   content->valuestring : "");
	cJSON_AddItemToArray(parts, p);
	cJSON_ArrayForEach(img, images) {
		if (!cJSON_IsString(img) || !base64_ok(img->valuestring)) {
			*err = "images must be base64 strings";
			cJSON_Delete(parts);
			return -1;
		}
		n = strlen(img->valuestring) + 64;
		url = malloc(n);
		if (url == NULL) {
			*err = "out of memory";
			cJSON_Delete(parts);
			return -1;
		}
		snprintf(url, n, "data:%s;base64,%s", mime_of(img->valuestring),
			 img->valuestring);
		p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "type", "image_url");
		u = cJSON_AddObjectToObject(p, "image_url");
		cJSON_AddStringToObject(u, "url", url);
		free(url);
		cJSON_AddItemToArray(parts, p);
	}
	if (content)
		cJSON_ReplaceItemInObjectCaseSensitive(msg, "content", parts);
	else
		cJSON_AddItemToObject(msg, "content", parts);
	return 0;
}
