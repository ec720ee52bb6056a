/* GET /api/v1/logs: lemon's log lines (its supervisor's and the
 * children's, backends_log_read) as server-sent events {"line": "..."},
 * first the last 64 KiB kept, then each line as it is logged, for the web
 * app's Logs page. A comment goes out every few seconds when nothing is
 * logged, so a client that left is noticed by a failed write; the stream
 * ends when the server drains. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-private.h"

#define LOGS_LINE_MAX 2048	/* a longer line is cut into pieces */
#define LOGS_KEEPALIVE_MS 5000
#define LOGS_WAIT_MS 100

struct logs_stream {
	struct server *s;
	uint64_t pos;		/* next byte of backends_log_read */
	char line[LOGS_LINE_MAX]; /* a line not yet ended */
	size_t line_len;
	char *out; /* events not yet handed on */
	size_t out_len, out_off, out_cap;
	int64_t last_ms; /* when something was last sent */
};

/* one line as an event; control bytes are cJSON's to escape */
static void add_event(struct logs_stream *ls, const char *line, size_t n)
{
	cJSON *o = cJSON_CreateObject();
	char *text, *js, clean[3 * LOGS_LINE_MAX + 16]; /* U+FFFD for a bad byte */
	size_t len;

	text = malloc(n + 1);
	if (o == NULL || text == NULL) {
		cJSON_Delete(o);
		free(text);
		return;
	}
	memcpy(text, line, n);
	text[n] = 0;
	/* the data directory and home out, as from every other answer: the
	 * lines name executables and models by their full paths */
	server_clean_message(ls->s, text, clean, sizeof(clean));
	cJSON_AddStringToObject(o, "line", clean);
	free(text);
	js = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (js == NULL)
		return;
	len = strlen(js) + 8;
	if (ls->out_len + len > ls->out_cap) {
		size_t cap = (ls->out_len + len) * 2;
		char *p = realloc(ls->out, cap);

		if (p == NULL) {
			free(js);
			return;
		}
		ls->out = p;
		ls->out_cap = cap;
	}
	ls->out_len += (size_t)snprintf(ls->out + ls->out_len, ls->out_cap - ls->out_len,
					"data: %s\n\n", js);
	free(js);
}

/* new bytes into whole lines, each an event */
static void take(struct logs_stream *ls, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n' || ls->line_len == sizeof(ls->line)) {
			add_event(ls, ls->line, ls->line_len);
			ls->line_len = 0;
			if (p[i] == '\n')
				continue;
		}
		ls->line[ls->line_len++] = p[i];
	}
}

static ssize_t logs_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct logs_stream *ls = cls;
	char raw[8192];
	size_t n;

	(void)pos;
	if (ls->out_off == ls->out_len) {
		ls->out_off = ls->out_len = 0;
		if (ls->s->http->draining)
			return SERVER_READER_END_OF_STREAM;
		n = backends_log_read(ls->s->b, &ls->pos, raw, sizeof(raw));
		take(ls, raw, n);
		if (ls->out_len == 0) {
			if (server_now_ms() - ls->last_ms < LOGS_KEEPALIVE_MS) {
				poll(NULL, 0, LOGS_WAIT_MS);
				return 0;
			}
			memcpy(buf, ": keep-alive\n\n", 14);
			ls->last_ms = server_now_ms();
			return 14;
		}
	}
	n = ls->out_len - ls->out_off < max ? ls->out_len - ls->out_off : max;
	memcpy(buf, ls->out + ls->out_off, n);
	ls->out_off += n;
	ls->last_ms = server_now_ms();
	return (ssize_t)n;
}

static void logs_free(void *cls)
{
	struct logs_stream *ls = cls;

	free(ls->out);
	free(ls);
}

enum server_result server_logs_route(const struct server_call *k)
{
	struct logs_stream *ls = calloc(1, sizeof(*ls));
	struct server_response *r;
	enum server_result rc;

	if (ls == NULL)
		return server_send_error(k->s, k->c, 500, "server_error", NULL, "out of memory");
	ls->s = k->s;
	ls->last_ms = server_now_ms();
	r = server_response_from_callback(SERVER_SIZE_UNKNOWN, 16384, logs_reader, ls, logs_free);
	if (r == NULL) {
		logs_free(ls);
		return server_send_error(k->s, k->c, 500, "server_error", NULL, "out of memory");
	}
	server_response_add_header(r, "Content-Type", "text/event-stream");
	server_response_add_header(r, "Cache-Control", "no-cache");
	server_cors_headers(k->c, r);
	rc = server_queue_response(k->c, 200, r);
	server_response_destroy(r);
	return rc;
}
