/* Ollama's /api/chat and /api/generate over the OpenAI-style llama-server
 * child: the request is rewritten as a streaming chat (or, for raw
 * generate, text) completion, and each SSE event from the child becomes
 * one NDJSON line with Ollama's field names the moment it arrives; the
 * last line carries done, done_reason and the timing fields in
 * nanoseconds. With "stream": false the same events are gathered into one
 * object. An empty message list (or prompt) loads the model, or unloads it
 * with keep_alive 0, as Ollama does. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server-private.h"
#include "util/str.h"

#define OL_READ 16384
#define OL_LINE_MAX (1u << 20) /* one SSE line; beyond that the child is broken */

struct ol_buf {
	char *p;
	size_t len, cap;
};

struct ol {
	struct server *s;
	struct server_upstream *u;
	bool chat;      /* message{} rather than response */
	bool stream;
	bool finished;  /* the final line (or error) is queued */
	int64_t t0_ns, load_ns;
	char model[BACKENDS_NAME_MAX];
	struct ol_buf in;   /* upstream bytes not yet a whole line */
	struct ol_buf out;  /* NDJSON not yet handed to the client */
	size_t out_pos;
	struct ol_buf text; /* the whole answer, when not streaming */
	struct ol_buf think;
	char done_reason[16];
	bool have_timings;
	double prompt_n, prompt_ms, predicted_n, predicted_ms;
	double usage_prompt, usage_completion;
	int chunks;
	struct server_ollama_calls calls; /* the child's tool calls so far */
	bool calls_sent; /* streamed: the tool_calls line is queued */
	char error[256]; /* an error event's message */
	unsigned error_status; /* and its status, 0 when it named none */
};

static int buf_add(struct ol_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}

/* {"model","created_at"} and, for chat, an assistant message */
static cJSON *ol_head(const char *model, bool chat, const char *content,
		      const char *thinking)
{
	cJSON *o = cJSON_CreateObject(), *m;
	char ts[48];

	server_ollama_time(ts, sizeof(ts), -1, 0);
	cJSON_AddStringToObject(o, "model", model);
	cJSON_AddStringToObject(o, "created_at", ts);
	if (chat) {
		m = cJSON_AddObjectToObject(o, "message");
		cJSON_AddStringToObject(m, "role", "assistant");
		cJSON_AddStringToObject(m, "content", content);
		if (thinking && thinking[0])
			cJSON_AddStringToObject(m, "thinking", thinking);
	} else {
		cJSON_AddStringToObject(o, "response", content);
		if (thinking && thinking[0])
			cJSON_AddStringToObject(o, "thinking", thinking);
	}
	return o;
}

static cJSON *ol_error_line(const char *msg)
{
	cJSON *e = cJSON_CreateObject();

	cJSON_AddStringToObject(e, "error", msg);
	return e;
}

static int emit(struct ol *o, cJSON *line)
{
	char *t = cJSON_PrintUnformatted(line);
	int rc = -1;

	cJSON_Delete(line);
	if (t && buf_add(&o->out, t, strlen(t)) == 0 &&
	    buf_add(&o->out, "\n", 1) == 0)
		rc = 0;
	free(t);
	return rc;
}

static cJSON *ol_final(struct ol *o)
{
	cJSON *f = ol_head(o->model, o->chat, o->stream ? "" : (o->text.p ? o->text.p : ""),
			   o->stream ? NULL : o->think.p);
	/* the whole prompt (usage.prompt_tokens), not the part that missed
	 * the cache (timings.prompt_n): clients count input tokens with it */
	double pn = o->usage_prompt > 0 ? o->usage_prompt : o->prompt_n;
	double en = o->have_timings ? o->predicted_n :
		    (o->usage_completion ? o->usage_completion : o->chunks);

	if (o->chat && !o->stream && o->calls.n > 0)
		cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(f, "message"), "tool_calls",
				      server_ollama_calls_json(&o->calls));
	cJSON_AddBoolToObject(f, "done", true);
	cJSON_AddStringToObject(f, "done_reason",
				o->done_reason[0] ? o->done_reason : "stop");
	cJSON_AddNumberToObject(f, "total_duration",
				(double)(server_ollama_now_ns() - o->t0_ns));
	cJSON_AddNumberToObject(f, "load_duration", (double)o->load_ns);
	cJSON_AddNumberToObject(f, "prompt_eval_count", pn);
	cJSON_AddNumberToObject(f, "prompt_eval_duration", o->prompt_ms * 1e6);
	cJSON_AddNumberToObject(f, "eval_count", en);
	cJSON_AddNumberToObject(f, "eval_duration", o->predicted_ms * 1e6);
	return f;
}

static double jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* streamed: the gathered tool calls as one message line, once */
static int emit_calls(struct ol *o)
{
	cJSON *line = ol_head(o->model, true, "", NULL);

	o->calls_sent = true;
	cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(line, "message"), "tool_calls",
			      server_ollama_calls_json(&o->calls));
	cJSON_AddBoolToObject(line, "done", false);
	return emit(o, line);
}

/* one upstream event; its text goes out as one line (or is gathered) */
static int ol_event(struct ol *o, const cJSON *ev)
{
	const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ev, "choices"), 0);
	const cJSON *delta = cJSON_GetObjectItemCaseSensitive(ch, "delta");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev, "timings");
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(ev, "usage");
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(ev, "error");
	const char *content, *thinking, *fr;
	cJSON *line;

	if (err) {
		const char *m = jstr(err, "message");
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");

		o->finished = true;
		lemon_str_copy(o->error, sizeof(o->error),
			       m ? m : "the backend reported an error");
		/* the child's status for the error (llama-server puts it in
		 * "code"): a 4xx stays the client's fault */
		if (cJSON_IsNumber(code) && code->valuedouble >= 400 &&
		    code->valuedouble < 600)
			o->error_status = (unsigned)code->valuedouble;
		if (!o->stream)
			return -2;
		return emit(o, ol_error_line(o->error));
	}
	if (cJSON_IsObject(t)) {
		o->have_timings = true;
		o->prompt_n = jnum(t, "prompt_n");
		o->prompt_ms = jnum(t, "prompt_ms");
		o->predicted_n = jnum(t, "predicted_n");
		o->predicted_ms = jnum(t, "predicted_ms");
	}
	if (cJSON_IsObject(u)) {
		o->usage_prompt = jnum(u, "prompt_tokens");
		o->usage_completion = jnum(u, "completion_tokens");
	}
	if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(delta, "tool_calls"))) {
		if (server_ollama_calls_delta(&o->calls,
					      cJSON_GetObjectItemCaseSensitive(delta, "tool_calls")) < 0)
			return -1;
		o->chunks++;
	}
	fr = jstr(ch, "finish_reason");
	/* Ollama ends a tool-calling turn with "stop" */
	if (fr)
		lemon_str_copy(o->done_reason, sizeof(o->done_reason),
			       strcmp(fr, "tool_calls") == 0 ? "stop" : fr);
	if (fr && o->stream && o->calls.n > 0 && !o->calls_sent)
		return emit_calls(o);
	content = delta ? jstr(delta, "content") : jstr(ch, "text");
	thinking = delta ? jstr(delta, "reasoning_content") : NULL;
	if ((content == NULL || !content[0]) && (thinking == NULL || !thinking[0]))
		return 0;
	o->chunks++;
	if (!o->stream) {
		if ((content && buf_add(&o->text, content, strlen(content)) < 0) ||
		    (thinking && buf_add(&o->think, thinking, strlen(thinking)) < 0))
			return -1;
		return 0;
	}
	line = ol_head(o->model, o->chat, content ? content : "", thinking);
	cJSON_AddBoolToObject(line, "done", false);
	return emit(o, line);
}

/* whole "data: ..." lines from the input buffer */
static int ol_lines(struct ol *o)
{
	size_t pos = 0, len;
	const char *line;
	cJSON *ev;
	int rc = 0;

	while (!o->finished && rc == 0) {
		const char *nl = memchr(o->in.p + pos, '\n', o->in.len - pos);

		if (nl == NULL)
			break;
		line = o->in.p + pos;
		len = (size_t)(nl - line);
		pos += len + 1;
		if (len && line[len - 1] == '\r')
			len--;
		if (len < 6 || memcmp(line, "data: ", 6) != 0)
			continue;
		line += 6;
		len -= 6;
		if (len == 6 && memcmp(line, "[DONE]", 6) == 0) {
			o->finished = true;
			if (o->stream && o->calls.n > 0 && !o->calls_sent && emit_calls(o) < 0)
				rc = -1;
			else
				rc = o->stream ? emit(o, ol_final(o)) : 0;
			break;
		}
		ev = cJSON_ParseWithLength(line, len);
		if (ev)
			rc = ol_event(o, ev);
		cJSON_Delete(ev);
	}
	memmove(o->in.p, o->in.p + pos, o->in.len - pos);
	o->in.len -= pos;
	return rc;
}

/* reads upstream until there is output to hand on or the stream is over;
 * -1: the child broke off or memory ran out (an error line is queued when
 * streaming), -2: the child reported an error (non-streaming) */
static int ol_pump(struct ol *o)
{
	char tmp[OL_READ];
	ssize_t n;
	int rc;

	while (!o->finished && (!o->stream || o->out_pos == o->out.len)) {
		n = server_upstream_read(o->u, tmp, sizeof(tmp));
		if (n > 0) {
			if (buf_add(&o->in, tmp, (size_t)n) < 0 || o->in.len > OL_LINE_MAX)
				n = -1;
			else if ((rc = ol_lines(o)) != 0)
				return rc;
			if (n > 0)
				continue;
		}
		o->finished = true;
		if (n == 0 && o->chunks > 0)
			return o->stream ? emit(o, ol_final(o)) : 0;
		fprintf(stderr, "lemon: %s: backend connection broke off mid-response\n",
			o->model);
		if (o->stream)
			emit(o, ol_error_line("the backend stopped before the response was complete"));
		return -1;
	}
	return 0;
}

static void ol_free(void *cls)
{
	struct ol *o = cls;

	server_upstream_close(o->u);
	free(o->in.p);
	free(o->out.p);
	free(o->text.p);
	free(o->think.p);
	server_ollama_calls_free(&o->calls);
	free(o);
}

static ssize_t ol_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct ol *o = cls;
	size_t n;

	(void)pos;
	if (o->out_pos == o->out.len)
		ol_pump(o);
	n = o->out.len - o->out_pos;
	if (n == 0)
		return SERVER_READER_END_OF_STREAM;
	if (n > max)
		n = max;
	memcpy(buf, o->out.p + o->out_pos, n);
	o->out_pos += n;
	if (o->out_pos == o->out.len)
		o->out_pos = o->out.len = 0;
	return (ssize_t)n;
}

/* Ollama options that llama-server takes under the same name */
static const char *const pass_opts[] = {
	"temperature", "top_p", "top_k", "min_p", "typical_p", "seed", "stop",
	"repeat_penalty", "repeat_last_n", "presence_penalty",
	"frequency_penalty", "mirostat", "mirostat_tau", "mirostat_eta",
};

static void map_options(cJSON *dst, const cJSON *req)
{
	const cJSON *opts = cJSON_GetObjectItemCaseSensitive(req, "options");
	const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(req, "format");
	const cJSON *v;
	size_t i;

	for (i = 0; cJSON_IsObject(opts) && i < sizeof(pass_opts) / sizeof(pass_opts[0]); i++)
		if ((v = cJSON_GetObjectItemCaseSensitive(opts, pass_opts[i])))
			cJSON_AddItemToObject(dst, pass_opts[i], cJSON_Duplicate(v, true));
	v = cJSON_GetObjectItemCaseSensitive(opts, "num_predict");
	/* negative: until the context is full, llama-server's default */
	if (cJSON_IsNumber(v) && v->valuedouble >= 0)
		cJSON_AddNumberToObject(dst, "max_tokens", v->valuedouble);
	if (cJSON_IsString(fmt) && strcmp(fmt->valuestring, "json") == 0) {
		cJSON *rf = cJSON_AddObjectToObject(dst, "response_format");

		cJSON_AddStringToObject(rf, "type", "json_object");
	} else if (cJSON_IsObject(fmt)) {
		cJSON *rf = cJSON_AddObjectToObject(dst, "response_format"), *js;

		cJSON_AddStringToObject(rf, "type", "json_schema");
		js = cJSON_AddObjectToObject(rf, "json_schema");
		cJSON_AddStringToObject(js, "name", "format");
		cJSON_AddItemToObject(js, "schema", cJSON_Duplicate(fmt, true));
	}
}

static int add_message(cJSON *msgs, const char *role, const char *content)
{
	cJSON *m = cJSON_CreateObject();

	cJSON_AddStringToObject(m, "role", role);
	cJSON_AddStringToObject(m, "content", content);
	cJSON_AddItemToArray(msgs, m);
	return 0;
}

/* images go to a model stored with a vision projector (its child runs
 * with --mmproj); for any other they are refused, naming why, rather
 * than dropped */
#define NO_IMAGES "images need a model with a vision projector (mmproj); this model has none (import one with lemon pull --file MODEL --mmproj PROJ NAME)"

/* the OpenAI body for the child; NULL with msg set for a bad request.
 * *empty: no messages / no prompt (a load or unload request) */
static cJSON *translate(const cJSON *req, bool chat, const char *model,
			bool vision, bool *raw, bool *empty, const char **msg)
{
	cJSON *out = cJSON_CreateObject(), *msgs = NULL, *om;
	const cJSON *imgs;
	struct server_ollama_ids ids;
	const cJSON *m, *it;
	const char *prompt, *system;

	*raw = false;
	*empty = false;
	cJSON_AddStringToObject(out, "model", model);
	cJSON_AddBoolToObject(out, "stream", true);
	/* usage (the whole prompt's tokens) in the last event */
	cJSON_AddItemToObject(out, "stream_options",
			      cJSON_Parse("{\"include_usage\":true}"));
	map_options(out, req);
	if (chat) {
		m = cJSON_GetObjectItemCaseSensitive(req, "messages");
		if (m && !cJSON_IsArray(m)) {
			*msg = "messages must be an array";
			goto bad;
		}
		*empty = cJSON_GetArraySize(m) == 0;
		msgs = cJSON_AddArrayToObject(out, "messages");
		server_ollama_ids_init(&ids);
		cJSON_ArrayForEach(it, m) {
			if (jstr(it, "role") == NULL) {
				*msg = "every message needs a role";
				goto bad;
			}
			imgs = cJSON_GetObjectItemCaseSensitive(it, "images");
			if (cJSON_GetArraySize(imgs) > 0 && !vision) {
				*msg = NO_IMAGES;
				goto bad;
			}
			om = server_ollama_message_to_openai(it, &ids);
			cJSON_AddItemToArray(msgs, om);
			if (cJSON_GetArraySize(imgs) > 0 &&
			    server_ollama_images_to_parts(om, imgs, msg) < 0)
				goto bad;
		}
		/* Ollama's tools are OpenAI's function tools */
		if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(req, "tools")))
			cJSON_AddItemToObject(out, "tools",
					      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(req, "tools"), true));
		return out;
	}
	prompt = jstr(req, "prompt");
	system = jstr(req, "system");
	*raw = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "raw"));
	*empty = prompt == NULL || prompt[0] == 0;
	if (jstr(req, "suffix") && jstr(req, "suffix")[0]) {
		*msg = "suffix is not supported by this server";
		goto bad;
	}
	imgs = cJSON_GetObjectItemCaseSensitive(req, "images");
	if (cJSON_GetArraySize(imgs) > 0 && (!vision || *raw)) {
		*msg = *raw ? "images cannot go with a raw prompt" : NO_IMAGES;
		goto bad;
	}
	if (*raw) {
		cJSON_AddStringToObject(out, "prompt", prompt ? prompt : "");
		return out;
	}
	msgs = cJSON_AddArrayToObject(out, "messages");
	if (system && system[0])
		add_message(msgs, "system", system);
	add_message(msgs, "user", prompt ? prompt : "");
	if (cJSON_GetArraySize(imgs) > 0 &&
	    server_ollama_images_to_parts(cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1),
					  imgs, msg) < 0)
		goto bad;
	return out;
bad:
	cJSON_Delete(out);
	return NULL;
}

/* keep_alive 0 (number or "0", "0s", "0m") asks for an unload */
static bool keep_alive_zero(const cJSON *req)
{
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(req, "keep_alive");

	if (cJSON_IsNumber(k))
		return k->valuedouble == 0;
	return cJSON_IsString(k) && k->valuestring[0] == '0' &&
	       (k->valuestring[1] == 0 || strchr("smh", k->valuestring[1]));
}

static enum server_result load_only(struct server *s, struct server_conn *conn,
				 const char *model, bool chat, bool unload)
{
	struct backends_lease lease;
	struct lemon_err err = { 0 };
	cJSON *o;

	if (unload ? backends_unload(s->b, model, &err) < 0 &&
			     err.code != LEMON_ERR_NOT_FOUND :
		     backends_load(s->b, model, &lease, &err) < 0)
		return server_ollama_lemon_err(s, conn, &err);
	o = ol_head(model, chat, "", NULL);
	cJSON_AddStringToObject(o, "done_reason", unload ? "unload" : "load");
	cJSON_AddBoolToObject(o, "done", true);
	return server_ollama_send(s, conn, 200, o);
}

/* the child answered with an error status: its message in Ollama's
 * shape, a 4xx kept as the same 4xx (server_child_error) */
static enum server_result upstream_error(struct server *s,
				      struct server_conn *conn,
				      struct ol *o, unsigned status)
{
	char tmp[4096];
	struct ol_buf b = { 0 };
	ssize_t n;
	enum server_result rc;

	while (b.len < 65536 && (n = server_upstream_read(o->u, tmp, sizeof(tmp))) > 0)
		if (buf_add(&b, tmp, (size_t)n) < 0)
			break;
	rc = server_child_error(s, conn, SERVER_SHAPE_OLLAMA, status, b.p, b.len);
	free(b.p);
	ol_free(o);
	return rc;
}

static enum server_result respond(struct server *s, struct server_conn *conn,
			       struct ol *o)
{
	struct server_response *r;
	enum server_result rc;
	int e;

	if (!o->stream) {
		while (!o->finished)
			if ((e = ol_pump(o)) < 0) {
				rc = server_ollama_error(s, conn, e != -2 ? 502 :
							 o->error_status ? o->error_status : 500, "%s",
						      e == -2 ? o->error :
						      "the backend stopped before the response was complete");
				ol_free(o);
				return rc;
			}
		rc = server_ollama_send(s, conn, 200, ol_final(o));
		ol_free(o);
		return rc;
	}
	r = server_response_from_callback(SERVER_SIZE_UNKNOWN, OL_READ, ol_read,
					      o, ol_free);
	if (r == NULL) {
		ol_free(o);
		return SERVER_NO;
	}
	server_response_add_header(r, "Content-Type", "application/x-ndjson");
	rc = server_queue_response(conn, 200, r);
	server_response_destroy(r);
	return rc;
}

enum server_result server_ollama_generate(struct server *s,
				    struct server_conn *conn,
				    const struct server_req *req, bool chat)
{
	struct lemon_err err = { 0 };
	struct server_req up = { .t0 = req->t0 };
	char model[BACKENDS_NAME_MAX];
	const char *msg = NULL;
	bool raw, empty, unload, stream;
	cJSON *root, *body, *st;
	enum server_result rc;
	unsigned status = 0;
	struct ol *o;
	int64_t t0 = server_ollama_now_ns();

	root = server_ollama_parse(s, conn, req, chat ? SERVER_BODY_OLLAMA_CHAT :
					   SERVER_BODY_OLLAMA_GENERATE, model, sizeof(model), &rc);
	if (root == NULL)
		return rc;
	st = cJSON_GetObjectItemCaseSensitive(root, "stream");
	stream = !cJSON_IsFalse(st); /* Ollama streams by default (absent or null) */
	body = translate(root, chat, model,
			 backends_model_has_mmproj(s->data_dir, model), &raw,
			 &empty, &msg);
	unload = keep_alive_zero(root);
	cJSON_Delete(root);
	if (body == NULL)
		return server_ollama_error(s, conn, 400, "%s", msg);
	if (empty) {
		cJSON_Delete(body);
		return load_only(s, conn, model, chat, unload);
	}
	up.body = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	o = calloc(1, sizeof(*o));
	if (up.body == NULL || o == NULL) {
		free(up.body);
		free(o);
		return SERVER_NO;
	}
	up.len = strlen(up.body);
	o->s = s;
	o->chat = chat;
	o->stream = stream;
	o->t0_ns = t0;
	lemon_str_copy(o->model, sizeof(o->model), model);
	if (server_upstream_open(s, raw ? "/v1/completions" : "/v1/chat/completions",
			      model, BACKENDS_CHAT, &up, &o->u, &status, NULL, 0,
			      &o->load_ns, &err) < 0) {
		free(up.body);
		free(o);
		return server_ollama_lemon_err(s, conn, &err);
	}
	free(up.body);
	if (status != 200)
		return upstream_error(s, conn, o, status);
	return respond(s, conn, o);
}
