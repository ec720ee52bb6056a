/* Ollama's tool calls and OpenAI's, both ways (for /api/chat over the
 * OpenAI-style child). Ollama's "tools" are OpenAI's function tools
 * already and pass unchanged. Its assistant messages carry
 * tool_calls:[{"function":{"name","arguments":{...}}}] (arguments an
 * object, no id) and its tool messages a tool_name; OpenAI's carry
 * arguments as a JSON string with an id, and a tool message names the id
 * it answers. A replayed conversation gets ids call_<n> in order, and each
 * tool message the id of the oldest unanswered call of its tool_name (or
 * of the oldest unanswered call when it names none), so a multi-turn
 * conversation keeps its calls. The child's streamed tool_calls deltas
 * (index, id, name, argument fragments) are gathered into Ollama's calls.
 * Pure functions on cJSON; unit-tested (tests/unit/test_server_ollama_tools.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-private.h"
#include "util/str.h"

void server_ollama_ids_init(struct server_ollama_ids *ids)
{
	memset(ids, 0, sizeof(*ids));
}

static void id_make(char *out, size_t cap, int n)
{
	snprintf(out, cap, "call_%d", n);
}

/* one Ollama tool call -> OpenAI's; NULL when it has no function name */
static cJSON *call_to_openai(const cJSON *c, struct server_ollama_ids *ids)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "function");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(f, "arguments");
	cJSON *o, *of;
	char id[32], *a;

	if (!cJSON_IsString(name))
		return NULL;
	id_make(id, sizeof(id), ids->next);
	if (ids->n < SERVER_OLLAMA_CALLS_MAX) {
		ids->open[ids->n].n = ids->next;
		lemon_str_copy(ids->open[ids->n].name, sizeof(ids->open[ids->n].name),
			       name->valuestring);
		ids->open[ids->n].answered = false;
		ids->n++;
	}
	ids->next++;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "type", "function");
	of = cJSON_AddObjectToObject(o, "function");
	cJSON_AddStringToObject(of, "name", name->valuestring);
	/* OpenAI's arguments are a JSON text; a string is taken as one */
	a = args && !cJSON_IsString(args) ? cJSON_PrintUnformatted(args) : NULL;
	cJSON_AddStringToObject(of, "arguments",
				cJSON_IsString(args) ? args->valuestring : a ? a : "{}");
	free(a);
	return o;
}

/* the id a tool message answers: the oldest open call of that name, or
 * the oldest open call; -1 when none is open */
static int answer(struct server_ollama_ids *ids, const char *name)
{
	int i, pick = -1;

	for (i = 0; i < ids->n && pick < 0; i++)
		if (!ids->open[i].answered && name && strcmp(ids->open[i].name, name) == 0)
			pick = i;
	for (i = 0; i < ids->n && pick < 0; i++)
		if (!ids->open[i].answered)
			pick = i;
	if (pick < 0)
		return -1;
	ids->open[pick].answered = true;
	return pick;
}

cJSON *server_ollama_message_to_openai(const cJSON *m, struct server_ollama_ids *ids)
{
	const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
	const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
	const cJSON *tname = cJSON_GetObjectItemCaseSensitive(m, "tool_name");
	const cJSON *c;
	cJSON *o = cJSON_CreateObject(), *arr;
	char id[32];
	int k;

	cJSON_AddStringToObject(o, "role", cJSON_IsString(role) ? role->valuestring : "user");
	cJSON_AddStringToObject(o, "content", cJSON_IsString(content) ? content->valuestring : "");
	if (cJSON_IsArray(calls) && cJSON_GetArraySize(calls) > 0) {
		arr = cJSON_AddArrayToObject(o, "tool_calls");
		cJSON_ArrayForEach (c, calls) {
			cJSON *t = call_to_openai(c, ids);

			if (t)
				cJSON_AddItemToArray(arr, t);
		}
	}
	if (cJSON_IsString(role) && strcmp(role->valuestring, "tool") == 0) {
		k = answer(ids, cJSON_IsString(tname) ? tname->valuestring : NULL);
		if (k >= 0) {
			id_make(id, sizeof(id), ids->open[k].n);
			cJSON_AddStringToObject(o, "tool_call_id", id);
		}
		if (cJSON_IsString(tname))
			cJSON_AddStringToObject(o, "name", tname->valuestring);
		else if (k >= 0)
			cJSON_AddStringToObject(o, "name", ids->open[k].name);
	}
	return o;
}

void server_ollama_calls_free(struct server_ollama_calls *acc)
{
	int i;

	for (i = 0; i < acc->n; i++)
		free(acc->call[i].args);
	memset(acc, 0, sizeof(*acc));
}

static int append(char **s, size_t *len, const char *add)
{
	size_t n = strlen(add);
	char *p;

	if (*len + n > SERVER_OLLAMA_ARGS_MAX)
		return -1;
	p = realloc(*s, *len + n + 1);
	if (p == NULL)
		return -1;
	memcpy(p + *len, add, n + 1);
	*s = p;
	*len += n;
	return 0;
}

int server_ollama_calls_delta(struct server_ollama_calls *acc, const cJSON *deltas)
{
	const cJSON *d;

	cJSON_ArrayForEach (d, deltas) {
		const cJSON *ix = cJSON_GetObjectItemCaseSensitive(d, "index");
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(d, "function");
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
		const cJSON *args = cJSON_GetObjectItemCaseSensitive(f, "arguments");
		int i = cJSON_IsNumber(ix) ? (int)ix->valuedouble : acc->n ? acc->n - 1 : 0;

		if (i < 0 || i >= SERVER_OLLAMA_CALLS_MAX)
			return -1;
		while (acc->n <= i)
			acc->n++;
		if (cJSON_IsString(name) && name->valuestring[0])
			lemon_str_copy(acc->call[i].name, sizeof(acc->call[i].name),
				       name->valuestring);
		if (cJSON_IsString(args) &&
		    append(&acc->call[i].args, &acc->call[i].len, args->valuestring) < 0)
			return -1;
	}
	return 0;
}

cJSON *server_ollama_calls_json(const struct server_ollama_calls *acc)
{
	cJSON *arr = cJSON_CreateArray();
	int i;

	for (i = 0; i < acc->n; i++) {
		cJSON *c, *f, *args;

		if (acc->call[i].name[0] == 0)
			continue;
		c = cJSON_CreateObject();
		f = cJSON_AddObjectToObject(c, "function");
		cJSON_AddStringToObject(f, "name", acc->call[i].name);
		/* Ollama's arguments are an object; text that is not one is
		 * kept as a string rather than dropped */
		args = acc->call[i].args ? cJSON_Parse(acc->call[i].args) : cJSON_CreateObject();
		if (!cJSON_IsObject(args)) {
			cJSON_Delete(args);
			args = cJSON_CreateString(acc->call[i].args ? acc->call[i].args : "");
		}
		cJSON_AddItemToObject(f, "arguments", args);
		cJSON_AddItemToArray(arr, c);
	}
	return arr;
}
