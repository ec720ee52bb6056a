/* request-body validation for the JSON routes (server/body.c): pure
 * functions of (buffer, length), shared by the route handlers and the
 * fuzz target, so what is fuzzed is exactly what lemon runs. Private to
 * server/ (included through server-private.h). */
#ifndef LEMON_SERVER_BODY_H
#define LEMON_SERVER_BODY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* nesting deeper than this is refused (cJSON recurses per level) */
#define SERVER_BODY_DEPTH_MAX 64

/* which route's fields are checked */
enum server_body_route {
	SERVER_BODY_CHAT,	       /* POST /v1/chat/completions */
	SERVER_BODY_COMPLETIONS,       /* POST /v1/completions */
	SERVER_BODY_EMBEDDINGS,	       /* POST /v1/embeddings */
	SERVER_BODY_LOAD,	       /* POST /api/v1/load, /api/v1/unload */
	SERVER_BODY_PULL,	       /* pull and delete, both flavours */
	SERVER_BODY_OLLAMA_CHAT,       /* POST /api/chat */
	SERVER_BODY_OLLAMA_GENERATE,   /* POST /api/generate */
	SERVER_BODY_OLLAMA_EMBED,      /* POST /api/embed */
	SERVER_BODY_OLLAMA_EMBEDDINGS, /* POST /api/embeddings (legacy) */
	SERVER_BODY_OLLAMA_SHOW,       /* POST /api/show */
	SERVER_BODY_RESPONSES,	       /* POST /v1/responses */
	SERVER_BODY_MESSAGES,	       /* POST /v1/messages (Anthropic) */
	SERVER_BODY_COUNT_TOKENS,      /* POST /v1/messages/count_tokens */
	SERVER_BODY_RERANK,	       /* POST /v1/rerank */
};

/* what is wrong with a body; every fault is the client's (HTTP 400) */
enum server_body_fault {
	SERVER_BODY_OK = 0,
	SERVER_BODY_EMPTY,	/* no body at all */
	SERVER_BODY_SYNTAX,	/* not JSON */
	SERVER_BODY_UTF8,	/* invalid UTF-8 (overlong, surrogate, > U+10FFFF) */
	SERVER_BODY_CONTROL,	/* a raw control character (NUL included) in a string */
	SERVER_BODY_SURROGATE,	/* a \u escape of an unpaired surrogate */
	SERVER_BODY_NUL,	/* \u0000 in a key or a name lemon reads */
	SERVER_BODY_DEPTH,	/* nested deeper than SERVER_BODY_DEPTH_MAX */
	SERVER_BODY_TRAILING,	/* bytes after the one JSON value */
	SERVER_BODY_NOT_OBJECT, /* the value is not an object */
	SERVER_BODY_DUPLICATE,	/* a field lemon reads appears twice */
	SERVER_BODY_NO_MODEL,	/* the model name is absent */
	SERVER_BODY_MISSING,	/* another required field is absent */
	SERVER_BODY_TYPE,	/* a field has the wrong type */
	SERVER_BODY_NAME,	/* the model name is not a valid name */
};

struct server_body_err {
	enum server_body_fault fault;
	size_t offset;	/* where in the body a syntax-level fault is */
	char param[64]; /* the field at fault ("messages[1].role"), "" for the body */
	char msg[256];	/* lower-case, one line, valid UTF-8 */
};

/* validates body[0..len) as a request to route: strict UTF-8, exactly one
 * JSON value (an object; whitespace around it allowed), no raw control
 * character inside a string, no \u0000 in a key (nor anywhere, for the
 * routes whose strings lemon re-encodes), nesting bounded, and the types
 * of the fields lemon or the child reads. Returns the parsed root (the
 * caller owns it) or NULL with e filled. */
cJSON *server_body_parse(const char *body, size_t len, enum server_body_route route,
			 struct server_body_err *e);

/* the grammar pass of server_body_parse (server/body_json.c): 0 when the
 * bytes are one JSON object with strict strings; nul_any: \u0000 is
 * refused in every string, else only in keys and top-level name fields */
int server_body_scan(const char *body, size_t len, bool nul_any, struct server_body_err *e);

/* records a fault in e; always returns -1 */
int server_body_fail(struct server_body_err *e, enum server_body_fault f, const char *param,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* true for the Ollama routes, whose errors are {"error":"..."} */
bool server_body_route_is_ollama(enum server_body_route route);

/* the OpenAI error "code" string of a fault ("invalid_utf8") */
const char *server_body_fault_code(enum server_body_fault fault);

/* copies s[0..len) for echoing into a JSON message: whole UTF-8
 * characters only (never cut inside one), invalid bytes and control
 * characters as '?', at most cap - 1 bytes, always terminated */
void server_body_clip(char *out, size_t cap, const char *s, size_t len);

#endif
