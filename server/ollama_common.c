/* what the Ollama handlers share (server/ollama.c, ollama_chat.c,
 * ollama_pull.c): a body parsed for a model name resolved against the
 * store, and Ollama's time fields. A leaf under those handlers, so that
 * none of them calls another. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/server-private.h"
#include "util/str.h"

/* the store's name for what the client asked for: "tiny:latest" is
 * "tiny" unless a model is really called "tiny:latest" */
static int resolve(struct server *s, const char *want, char *out, size_t cap)
{
	char path[4096];
	size_t n = strlen(want);

	lemon_str_copy(out, cap, want);
	if (backends_model_path(s->data_dir, want, path, sizeof(path), NULL) == 0)
		return 0;
	if (n > 7 && strcmp(want + n - 7, ":latest") == 0) {
		lemon_str_copy_n(out, cap, want, n - 7);
		if (backends_model_path(s->data_dir, out, path, sizeof(path), NULL) == 0)
			return 0;
		lemon_str_copy(out, cap, want);
	}
	return -1;
}

cJSON *server_ollama_parse(struct server *s, struct server_conn *conn,
			const struct server_req *req, enum server_body_route route,
			char *model, size_t cap, enum server_result *rc)
{
	cJSON *root = server_body_request(s, conn, req, route, rc);
	const cJSON *m;

	if (root == NULL)
		return NULL;
	/* server_body_parse checked that the first of these is a valid name */
	m = cJSON_GetObjectItemCaseSensitive(root, "model");
	if (m == NULL)
		m = cJSON_GetObjectItemCaseSensitive(root, "name");
	if (resolve(s, m->valuestring, model, cap) < 0) {
		*rc = server_ollama_error(s, conn, 404,
				       "model '%s' not found, try pulling it first",
				       m->valuestring);
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

int64_t server_ollama_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void server_ollama_time(char *out, size_t cap, int64_t unix_s, long usec)
{
	struct timespec ts;
	struct tm tm;
	time_t t;

	if (unix_s < 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		t = ts.tv_sec;
		usec = ts.tv_nsec / 1000;
	} else {
		t = (time_t)unix_s;
	}
	gmtime_r(&t, &tm);
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, usec);
}

