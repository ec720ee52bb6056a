/* the responses every route queues, and the one place a lemon error code
 * becomes an HTTP status: a JSON body copied into a response, and errors
 * in the three shapes clients parse (OpenAI {"error":{"message","type",
 * "param","code"}}, Ollama {"error":"..."}, Anthropic {"type":"error",
 * "error":{"type","message"}}). A leaf of server/: it calls only the
 * response objects (server/http_response.c), so every handler may call it
 * and nothing here calls back into a handler or the router. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "server/server-private.h"
#include "util/str.h"

int64_t server_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* length of the valid UTF-8 sequence at p (at most n bytes), 0 if none */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/* pre as a whole path prefix at p ("/home/u" not in "/home/user2") */
static bool prefix_at(const char *p, const char *pre, size_t n)
{
	return n > 1 && strncmp(p, pre, n) == 0 && strchr("/'\" :,)", p[n]) != NULL;
}

void server_clean_message(const struct server *s, const char *in, char *out, size_t cap)
{
	const char *home = getenv("HOME");
	size_t dl = s ? strlen(s->data_dir) : 0, hl = home ? strlen(home) : 0;
	size_t o = 0, n = strlen(in), i = 0;

	while (i < n && o + 5 < cap) {
		const char *put = NULL;
		size_t k;

		if (dl && prefix_at(in + i, s->data_dir, dl)) {
			put = "<data>";
			i += dl;
		} else if (hl && prefix_at(in + i, home, hl)) {
			put = "~";
			i += hl;
		}
		if (put) {
			if (o + strlen(put) + 1 > cap)
				break;
			memcpy(out + o, put, strlen(put));
			o += strlen(put);
			continue;
		}
		k = utf8_len((const unsigned char *)in + i, n - i);
		if (k == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3); /* U+FFFD */
			o += 3;
			i++;
			continue;
		}
		if (o + k + 1 > cap)
			break;
		memcpy(out + o, in + i, k);
		o += k;
		i += k;
	}
	out[o] = 0;
}

enum server_result server_send_json(struct server *s, struct server_conn *conn,
				    unsigned status, const char *json)
{
	struct server_response *r;
	enum server_result rc;

	(void)s;
	r = server_response_from_buffer(strlen(json), (void *)json,
					SERVER_RESPMEM_MUST_COPY);
	if (r == NULL)
		return SERVER_NO;
	server_response_add_header(r, "Content-Type", "application/json");
	/* 503 is "busy or not ready yet" (every loaded model serving, shutting
	 * down, a backend starting): say when to try again */
	if (status == 503)
		server_response_add_header(r, "Retry-After", "5");
	rc = server_queue_response(conn, status, r);
	server_response_destroy(r);
	return rc;
}

static enum server_result send_error_v(struct server *s, struct server_conn *conn,
				       unsigned status, const char *type, const char *param,
				       const char *code, const char *fmt, va_list ap)
{
	cJSON *root = cJSON_CreateObject(), *e;
	char raw[512], msg[1024];
	enum server_result rc = SERVER_NO;
	char *out;

	vsnprintf(raw, sizeof(raw), fmt, ap);
	server_clean_message(s, raw, msg, sizeof(msg));
	if (root == NULL)
		return SERVER_NO;
	e = cJSON_AddObjectToObject(root, "error");
	if (e) {
		cJSON_AddStringToObject(e, "message", msg);
		cJSON_AddStringToObject(e, "type", type);
		if (param && param[0])
			cJSON_AddStringToObject(e, "param", param);
		else
			cJSON_AddNullToObject(e, "param");
		if (code)
			cJSON_AddStringToObject(e, "code", code);
		else
			cJSON_AddNullToObject(e, "code");
	}
	out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (out) {
		rc = server_send_json(s, conn, status, out);
		free(out);
	}
	return rc;
}

enum server_result server_send_error(struct server *s, struct server_conn *conn,
				     unsigned status, const char *type, const char *code,
				     const char *fmt, ...)
{
	enum server_result rc;
	va_list ap;

	va_start(ap, fmt);
	rc = send_error_v(s, conn, status, type, NULL, code, fmt, ap);
	va_end(ap);
	return rc;
}

enum server_result server_send_param_error(struct server *s, struct server_conn *conn,
					   unsigned status, const char *type, const char *param,
					   const char *code, const char *fmt, ...)
{
	enum server_result rc;
	va_list ap;

	va_start(ap, fmt);
	rc = send_error_v(s, conn, status, type, param, code, fmt, ap);
	va_end(ap);
	return rc;
}

enum server_result server_ollama_send(struct server *s, struct server_conn *conn,
				unsigned status, cJSON *body)
{
	char *t = body ? cJSON_PrintUnformatted(body) : NULL;
	enum server_result rc;

	cJSON_Delete(body);
	if (t == NULL)
		return server_send_json(s, conn, 500, "{\"error\":\"out of memory\"}");
	rc = server_send_json(s, conn, status, t);
	free(t);
	return rc;
}


/* the one mapping of error codes to statuses, whatever the shape: the
 * client's fault (400, 404), lemon's own failure (500), a child that
 * answered nothing (502), and every other failure to get a backend (a
 * model too large, every candidate broken, busy) 503 with Retry-After */
unsigned server_err_status(enum lemon_err_code code)
{
	switch (code) {
	case LEMON_ERR_INVALID_ARG:
	case LEMON_ERR_INVALID_DATA:
		return 400;
	case LEMON_ERR_NOT_FOUND:
		return 404;
	case LEMON_ERR_NETWORK:
		return 502;
	case LEMON_ERR_INTERNAL:
		return 500;
	case LEMON_OK:
	case LEMON_ERR_PERMISSION:
	case LEMON_ERR_BROKEN_SYSTEM:
	case LEMON_ERR_UNSUPPORTED_HW:
	case LEMON_ERR_CHECKSUM:
	case LEMON_ERR_IO:
	case LEMON_ERR_NO_SPACE:
	case LEMON_ERR_TOO_LARGE:
	case LEMON_ERR_BUSY:
		break;
	}
	return 503;
}

/* OpenAI's "code" for a lemon error */
static const char *err_openai_code(enum lemon_err_code code)
{
	switch (code) {
	case LEMON_ERR_INVALID_ARG:
	case LEMON_ERR_INVALID_DATA:
		return "invalid_value";
	case LEMON_ERR_NOT_FOUND:
		return "model_not_found";
	case LEMON_ERR_BUSY:
		return "busy";
	case LEMON_ERR_NETWORK:
		return "backend_unreachable";
	case LEMON_ERR_INTERNAL:
		return "internal_error";
	default:
		return "backend_unavailable";
	}
}

/* Anthropic's error "type" for a status */
static const char *anthropic_type(unsigned status)
{
	switch (status) {
	case 400:
	case 405:
	case 408:
	case 411:
	case 414:
	case 415:
	case 417:
	case 431:
		return "invalid_request_error";
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 413:
		return "request_too_large";
	case 429:
		return "rate_limit_error";
	case 503:
		return "overloaded_error";
	default:
		return "api_error";
	}
}

static enum server_result anthropic_v(struct server *s, struct server_conn *conn,
				      unsigned status, const char *fmt, va_list ap)
{
	cJSON *root = cJSON_CreateObject(), *e;
	char raw[512], msg[1024];
	enum server_result rc = SERVER_NO;
	char *out;

	vsnprintf(raw, sizeof(raw), fmt, ap);
	server_clean_message(s, raw, msg, sizeof(msg));
	if (root == NULL)
		return SERVER_NO;
	cJSON_AddStringToObject(root, "type", "error");
	e = cJSON_AddObjectToObject(root, "error");
	if (e) {
		cJSON_AddStringToObject(e, "type", anthropic_type(status));
		cJSON_AddStringToObject(e, "message", msg);
	}
	out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (out) {
		rc = server_send_json(s, conn, status, out);
		free(out);
	}
	return rc;
}

static enum server_result ollama_v(struct server *s, struct server_conn *conn, unsigned status,
				   const char *fmt, va_list ap)
{
	cJSON *o = cJSON_CreateObject();
	char raw[512], msg[1024];

	vsnprintf(raw, sizeof(raw), fmt, ap);
	/* valid UTF-8, no absolute data paths */
	server_clean_message(s, raw, msg, sizeof(msg));
	cJSON_AddStringToObject(o, "error", msg);
	return server_ollama_send(s, conn, status, o);
}

enum server_result server_ollama_error(struct server *s, struct server_conn *conn,
				       unsigned status, const char *fmt, ...)
{
	enum server_result rc;
	va_list ap;

	va_start(ap, fmt);
	rc = ollama_v(s, conn, status, fmt, ap);
	va_end(ap);
	return rc;
}

enum server_result server_send_shaped(struct server *s, struct server_conn *conn,
				      enum server_shape shape, unsigned status, const char *code,
				      const char *fmt, ...)
{
	enum server_result rc;
	va_list ap;

	va_start(ap, fmt);
	switch (shape) {
	case SERVER_SHAPE_OLLAMA:
		rc = ollama_v(s, conn, status, fmt, ap);
		break;
	case SERVER_SHAPE_ANTHROPIC:
		rc = anthropic_v(s, conn, status, fmt, ap);
		break;
	case SERVER_SHAPE_OPENAI:
	default:
		rc = send_error_v(s, conn, status,
				  status >= 500 ? "server_error" : "invalid_request_error", NULL,
				  code, fmt, ap);
		break;
	}
	va_end(ap);
	return rc;
}

enum server_result server_send_lemon_err_shaped(struct server *s, struct server_conn *conn,
						enum server_shape shape,
						const struct lemon_err *err)
{
	return server_send_shaped(s, conn, shape, server_err_status(err->code),
				  err_openai_code(err->code), "%s", err->msg);
}

enum server_result server_send_lemon_err(struct server *s, struct server_conn *conn,
					 const struct lemon_err *err)
{
	return server_send_lemon_err_shaped(s, conn, SERVER_SHAPE_OPENAI, err);
}

enum server_result server_ollama_lemon_err(struct server *s, struct server_conn *conn,
					   const struct lemon_err *err)
{
	return server_send_lemon_err_shaped(s, conn, SERVER_SHAPE_OLLAMA, err);
}
