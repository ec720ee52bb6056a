/* request-body validation (server/body.h): the grammar pass
 * (server/body_json.c), then cJSON, then the fields lemon and the child
 * read are type-checked, so a client's mistake is a 400 naming the field
 * rather than the child's 500 (llama-server answered invalid UTF-8, raw
 * NULs and wrong types with its internal parse error). */
#include <stdio.h>
#include <string.h>

#include "backends/backends.h"
#include "server/body.h"

/* ---- the fields of each route ---- */

/* the name of field key inside at ("messages[2]" "role" ->
 * "messages[2].role"); at NULL or "" for a top-level field */
static void path(char *out, size_t cap, const char *at, const char *key)
{
	snprintf(out, cap, "%s%s%s", at && at[0] ? at : "", at && at[0] ? "." : "", key);
}

/* the member named key, refusing a second one: cJSON reads the first,
 * llama-server the last */
static int member(const cJSON *obj, const char *at, const char *key, const cJSON **out,
		  struct server_body_err *e)
{
	const cJSON *it;
	char p[64];
	int n = 0;

	*out = NULL;
	cJSON_ArrayForEach (it, obj) {
		if (it->string && strcmp(it->string, key) == 0 && n++ == 0)
			*out = it;
	}
	if (n > 1) {
		path(p, sizeof(p), at, key);
		return server_body_fail(e, SERVER_BODY_DUPLICATE, p, "'%s' appears more than once",
					p);
	}
	return 0;
}

enum kind {
	K_STRING = 1,
	K_NUMBER = 2,
	K_BOOL = 4,
	K_OBJECT = 8,
	K_ARRAY = 16,
	K_NULL = 32,
};

static bool is(const cJSON *v, unsigned kinds)
{
	return ((kinds & K_STRING) && cJSON_IsString(v)) ||
	       ((kinds & K_NUMBER) && cJSON_IsNumber(v)) || ((kinds & K_BOOL) && cJSON_IsBool(v)) ||
	       ((kinds & K_OBJECT) && cJSON_IsObject(v)) ||
	       ((kinds & K_ARRAY) && cJSON_IsArray(v)) || ((kinds & K_NULL) && cJSON_IsNull(v));
}

static const char *kinds_text(unsigned kinds)
{
	switch (kinds & ~(unsigned)K_NULL) {
	case K_STRING:
		return "a string";
	case K_NUMBER:
		return "a number";
	case K_BOOL:
		return "a boolean";
	case K_OBJECT:
		return "an object";
	case K_ARRAY:
		return "an array";
	case K_STRING | K_ARRAY:
		return "a string or an array";
	case K_STRING | K_OBJECT:
		return "a string or an object";
	case K_STRING | K_NUMBER:
		return "a string or a number";
	case K_STRING | K_NUMBER | K_ARRAY:
		return "a string, a number or an array";
	}
	return "of another type";
}

/* an optional member of obj (itself the field at) of one of kinds */
static int want_at(const cJSON *obj, const char *at, const char *key, unsigned kinds,
		   const cJSON **out, struct server_body_err *e)
{
	const cJSON *v;
	char p[64];

	if (out)
		*out = NULL;
	if (member(obj, at, key, &v, e) < 0)
		return -1;
	if (out)
		*out = v;
	if (v && !is(v, kinds)) {
		path(p, sizeof(p), at, key);
		return server_body_fail(e, SERVER_BODY_TYPE, p, "'%s' must be %s", p,
					kinds_text(kinds));
	}
	return 0;
}

static int want(const cJSON *obj, const char *key, unsigned kinds, const cJSON **out,
		struct server_body_err *e)
{
	return want_at(obj, NULL, key, kinds, out, e);
}

static int want_all(const cJSON *obj, const char *at, const char *const *keys, size_t n,
		    unsigned kinds, struct server_body_err *e)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (want_at(obj, at, keys[i], kinds, NULL, e) < 0)
			return -1;
	return 0;
}

/* the model name, under the first of keys present; required */
static int model(const cJSON *root, const char *const *keys, size_t n, struct server_body_err *e)
{
	const cJSON *v = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		if (member(root, NULL, keys[i], &v, e) < 0)
			return -1;
		if (v)
			break;
	}
	if (v == NULL)
		return server_body_fail(e, SERVER_BODY_NO_MODEL, keys[0], "model is required");
	if (!cJSON_IsString(v))
		return server_body_fail(e, SERVER_BODY_TYPE, keys[i],
					"'%s' must be a string naming a model", keys[i]);
	if (!backends_model_name_valid(v->valuestring)) {
		char shown[72];

		server_body_clip(shown, sizeof(shown), v->valuestring, strlen(v->valuestring));
		return server_body_fail(e, SERVER_BODY_NAME, keys[i],
					"invalid model name '%s': " BACKENDS_NAME_RULE, shown);
	}
	return 0;
}

/* every element of arr is one of kinds */
static int elements(const cJSON *arr, const char *key, unsigned kinds, struct server_body_err *e)
{
	const cJSON *it;
	char p[64];
	int i = 0;

	cJSON_ArrayForEach (it, arr) {
		if (!is(it, kinds)) {
			snprintf(p, sizeof(p), "%s[%d]", key, i);
			return server_body_fail(e, SERVER_BODY_TYPE, p, "'%s' must be %s", p,
						kinds_text(kinds));
		}
		i++;
	}
	return 0;
}

/* OpenAI and Ollama messages: objects with a string role; content is a
 * string (or, for OpenAI, an array of parts or null) */
static int messages(const cJSON *root, bool required, bool ollama, struct server_body_err *e)
{
	const cJSON *arr, *it, *role;
	char at[32];
	int i = 0;

	if (want(root, "messages", K_ARRAY, &arr, e) < 0)
		return -1;
	if (arr == NULL)
		return required ? server_body_fail(e, SERVER_BODY_MISSING, "messages",
						   "'messages' is required")
				: 0;
	if (elements(arr, "messages", K_OBJECT, e) < 0)
		return -1;
	cJSON_ArrayForEach (it, arr) {
		snprintf(at, sizeof(at), "messages[%d]", i++);
		if (want_at(it, at, "role", K_STRING, &role, e) < 0 ||
		    want_at(it, at, "content", ollama ? K_STRING : K_STRING | K_ARRAY | K_NULL,
			    NULL, e) < 0 ||
		    (ollama && want_at(it, at, "images", K_ARRAY | K_NULL, NULL, e) < 0))
			return -1;
		if (role == NULL)
			return server_body_fail(e, SERVER_BODY_MISSING, at, "'%s.role' is required",
						at);
	}
	return 0;
}

/* a string or an array of strings under key */
static int text_or_list(const cJSON *root, const char *key, bool required,
			struct server_body_err *e)
{
	const cJSON *v;

	if (want(root, key, K_STRING | K_ARRAY, &v, e) < 0)
		return -1;
	if (v == NULL && required)
		return server_body_fail(e, SERVER_BODY_MISSING, key, "'%s' is required", key);
	return cJSON_IsArray(v) ? elements(v, key, K_STRING, e) : 0;
}

/* OpenAI embeddings input: a string, an array of strings, an array of
 * token ids, or an array of arrays of token ids */
static int embed_input(const cJSON *root, struct server_body_err *e)
{
	const cJSON *v, *first, *it;
	char p[64];
	int i = 0;

	if (want(root, "input", K_STRING | K_ARRAY, &v, e) < 0)
		return -1;
	if (v == NULL)
		return server_body_fail(e, SERVER_BODY_MISSING, "input", "'input' is required");
	if (!cJSON_IsArray(v) || (first = v->child) == NULL)
		return 0;
	if (cJSON_IsString(first))
		return elements(v, "input", K_STRING, e);
	if (cJSON_IsNumber(first))
		return elements(v, "input", K_NUMBER, e);
	if (elements(v, "input", K_ARRAY, e) < 0)
		return server_body_fail(
			e, SERVER_BODY_TYPE, "input",
			"'input' must be a string, an array of strings or of token ids");
	cJSON_ArrayForEach (it, v) {
		snprintf(p, sizeof(p), "input[%d]", i++);
		if (elements(it, p, K_NUMBER, e) < 0)
			return -1;
	}
	return 0;
}

static const char *const openai_numbers[] = {
	"max_tokens",
	"max_completion_tokens",
	"n_predict",
	"temperature",
	"top_p",
	"top_k",
	"min_p",
	"seed",
	"n",
	"presence_penalty",
	"frequency_penalty",
};

static const char *const ollama_numbers[] = {
	"temperature",
	"top_p",
	"top_k",
	"min_p",
	"typical_p",
	"seed",
	"repeat_penalty",
	"repeat_last_n",
	"presence_penalty",
	"frequency_penalty",
	"mirostat",
	"mirostat_tau",
	"mirostat_eta",
	"num_predict",
	"num_ctx",
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int openai_common(const cJSON *root, struct server_body_err *e)
{
	static const char *const keys[] = { "model" };
	const cJSON *stop;

	if (model(root, keys, 1, e) < 0 || want(root, "stream", K_BOOL | K_NULL, NULL, e) < 0 ||
	    want_all(root, NULL, openai_numbers, N(openai_numbers), K_NUMBER | K_NULL, e) < 0 ||
	    want(root, "stop", K_STRING | K_ARRAY | K_NULL, &stop, e) < 0)
		return -1;
	return cJSON_IsArray(stop) ? elements(stop, "stop", K_STRING, e) : 0;
}

static int ollama_common(const cJSON *root, struct server_body_err *e)
{
	static const char *const keys[] = { "model", "name" };
	const cJSON *opts, *stop;

	if (model(root, keys, N(keys), e) < 0 || want(root, "stream", K_BOOL | K_NULL, NULL, e) < 0 ||
	    want(root, "keep_alive", K_STRING | K_NUMBER | K_NULL, NULL, e) < 0 ||
	    want(root, "format", K_STRING | K_OBJECT | K_NULL, NULL, e) < 0 ||
	    want(root, "options", K_OBJECT | K_NULL, &opts, e) < 0)
		return -1;
	if (opts == NULL)
		return 0;
	if (want_all(opts, "options", ollama_numbers, N(ollama_numbers), K_NUMBER, e) < 0 ||
	    want_at(opts, "options", "stop", K_STRING | K_ARRAY, &stop, e) < 0)
		return -1;
	return cJSON_IsArray(stop) ? elements(stop, "options.stop", K_STRING, e) : 0;
}

static int fields(const cJSON *root, enum server_body_route route, struct server_body_err *e)
{
	static const char *const load_keys[] = { "model_name", "model" };
	static const char *const pull_keys[] = { "model", "name", "model_name" };
	static const char *const gen_strings[] = { "prompt", "system", "suffix", "template" };
	const cJSON *v;

	switch (route) {
	case SERVER_BODY_CHAT:
		return openai_common(root, e) < 0 ? -1 : messages(root, true, false, e);
	case SERVER_BODY_COMPLETIONS:
		if (openai_common(root, e) < 0 ||
		    want(root, "prompt", K_STRING | K_ARRAY, &v, e) < 0)
			return -1;
		if (v == NULL)
			return server_body_fail(e, SERVER_BODY_MISSING, "prompt",
						"'prompt' is required");
		/* text, token ids, or a list of either (llama-server's forms) */
		return elements(v, "prompt", K_STRING | K_NUMBER | K_ARRAY, e);
	case SERVER_BODY_EMBEDDINGS:
		return openai_common(root, e) < 0 ? -1 : embed_input(root, e);
	case SERVER_BODY_LOAD:
		return model(root, load_keys, N(load_keys), e);
	case SERVER_BODY_PULL:
		if (model(root, pull_keys, N(pull_keys), e) < 0)
			return -1;
		return want(root, "stream", K_BOOL | K_NULL, NULL, e);
	case SERVER_BODY_OLLAMA_CHAT:
		return ollama_common(root, e) < 0 ? -1 : messages(root, false, true, e);
	case SERVER_BODY_OLLAMA_GENERATE:
		if (ollama_common(root, e) < 0 ||
		    want_all(root, NULL, gen_strings, N(gen_strings), K_STRING | K_NULL, e) < 0 ||
		    want(root, "raw", K_BOOL | K_NULL, NULL, e) < 0)
			return -1;
		return want(root, "images", K_ARRAY | K_NULL, NULL, e);
	case SERVER_BODY_OLLAMA_EMBED:
		return ollama_common(root, e) < 0 ? -1 : text_or_list(root, "input", true, e);
	case SERVER_BODY_OLLAMA_EMBEDDINGS:
		if (ollama_common(root, e) < 0 || want(root, "prompt", K_STRING, NULL, e) < 0)
			return -1;
		if (cJSON_GetObjectItemCaseSensitive(root, "prompt") == NULL)
			return server_body_fail(e, SERVER_BODY_MISSING, "prompt",
						"'prompt' is required");
		return 0;
	case SERVER_BODY_OLLAMA_SHOW:
		return ollama_common(root, e);
	case SERVER_BODY_RESPONSES:
		/* input: text or a list of items, which the child checks */
		return openai_common(root, e) < 0 ? -1 : want(root, "input", K_STRING | K_ARRAY, NULL, e);
	case SERVER_BODY_MESSAGES:
	case SERVER_BODY_COUNT_TOKENS:
		if (openai_common(root, e) < 0 ||
		    want(root, "system", K_STRING | K_ARRAY | K_NULL, NULL, e) < 0)
			return -1;
		return messages(root, true, false, e);
	case SERVER_BODY_RERANK:
		if (openai_common(root, e) < 0 || want(root, "query", K_STRING, &v, e) < 0)
			return -1;
		if (v == NULL)
			return server_body_fail(e, SERVER_BODY_MISSING, "query", "'query' is required");
		if (want(root, "top_n", K_NUMBER | K_NULL, NULL, e) < 0)
			return -1;
		return text_or_list(root, "documents", true, e);
	}
	return 0;
}

bool server_body_route_is_ollama(enum server_body_route route)
{
	switch (route) {
	case SERVER_BODY_OLLAMA_CHAT:
	case SERVER_BODY_OLLAMA_GENERATE:
	case SERVER_BODY_OLLAMA_EMBED:
	case SERVER_BODY_OLLAMA_EMBEDDINGS:
	case SERVER_BODY_OLLAMA_SHOW:
		return true;
	case SERVER_BODY_CHAT:
	case SERVER_BODY_COMPLETIONS:
	case SERVER_BODY_EMBEDDINGS:
	case SERVER_BODY_LOAD:
	case SERVER_BODY_PULL:
	case SERVER_BODY_RESPONSES:
	case SERVER_BODY_MESSAGES:
	case SERVER_BODY_COUNT_TOKENS:
	case SERVER_BODY_RERANK:
		return false;
	}
	return false;
}

cJSON *server_body_parse(const char *body, size_t len, enum server_body_route route,
			 struct server_body_err *e)
{
	/* the OpenAI routes forward the body unchanged, and llama-server
	 * reads \u0000 in text correctly; the others re-encode strings
	 * through cJSON, which would cut them there */
	bool nul_any = route != SERVER_BODY_CHAT && route != SERVER_BODY_COMPLETIONS &&
		       route != SERVER_BODY_EMBEDDINGS && route != SERVER_BODY_RESPONSES &&
		       route != SERVER_BODY_MESSAGES && route != SERVER_BODY_COUNT_TOKENS &&
		       route != SERVER_BODY_RERANK;
	cJSON *root;

	memset(e, 0, sizeof(*e));
	if (server_body_scan(body ? body : "", body ? len : 0, nul_any, e) < 0)
		return NULL;
	root = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		server_body_fail(e, SERVER_BODY_SYNTAX, NULL, "request body is not valid JSON");
		return NULL;
	}
	if (fields(root, route, e) < 0) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}
