/* the strict JSON grammar behind server/body.c (RFC 8259 with strict
 * UTF-8, RFC 3629): cJSON passes invalid UTF-8 and raw control characters
 * through and stops a string at \u0000 (so "a\u0000b" would be read as
 * "a"), so every request body is scanned here before cJSON sees it. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "server/body.h"

struct scan {
	const unsigned char *b, *p, *end;
	bool nul_any; /* \u0000 refused in every string */
	struct server_body_err *e;
};

/* top-level members whose string value is a name lemon reads */
static const char *const name_keys[] = { "model", "name", "model_name" };

int server_body_fail(struct server_body_err *e, enum server_body_fault f, const char *param,
		     const char *fmt, ...)
{
	va_list ap;

	e->fault = f;
	snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int sfail(struct scan *s, enum server_body_fault f, const char *what)
{
	s->e->offset = (size_t)(s->p - s->b);
	/* \u0000 is valid JSON; lemon refuses it where it would cut a name */
	return server_body_fail(s->e, f, NULL, "request body %s: %s at byte %zu",
				f == SERVER_BODY_NUL ? "refused" : "is not valid JSON", what,
				s->e->offset);
}

static void ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* one UTF-8 sequence at s->p of a lead byte >= 0x80 (RFC 3629 table 4) */
static int utf8_seq(struct scan *s)
{
	const unsigned char *p = s->p;
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c >= 0xc2 && c <= 0xdf)
		n = 1;
	else if (c >= 0xe0 && c <= 0xef)
		n = 2;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 3;
	else
		return sfail(s, SERVER_BODY_UTF8, "invalid UTF-8");
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* UTF-16 surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* above U+10FFFF */
	if ((size_t)(s->end - p) <= n)
		return sfail(s, SERVER_BODY_UTF8, "invalid UTF-8");
	for (i = 1; i <= n; i++) {
		if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xbf))
			return sfail(s, SERVER_BODY_UTF8, "invalid UTF-8");
	}
	s->p += n + 1;
	return 0;
}

static int hex4(struct scan *s, unsigned *out)
{
	unsigned v = 0;
	int i;

	if (s->end - s->p < 4)
		return sfail(s, SERVER_BODY_SYNTAX, "short \\u escape");
	for (i = 0; i < 4; i++) {
		unsigned char c = s->p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return sfail(s, SERVER_BODY_SYNTAX, "bad \\u escape");
	}
	s->p += 4;
	*out = v;
	return 0;
}

/* after the backslash; *cp is the code point (0x80 and up count as "not
 * ASCII" for key matching) */
static int escape(struct scan *s, unsigned *cp)
{
	static const char simple[] = "\"\\/bfnrt", value[] = "\"\\/\b\f\n\r\t";
	const char *k;
	unsigned lo;

	if (s->p >= s->end)
		return sfail(s, SERVER_BODY_SYNTAX, "unterminated string");
	if (*s->p != 'u') {
		k = *s->p ? strchr(simple, *s->p) : NULL;
		if (k == NULL)
			return sfail(s, SERVER_BODY_SYNTAX, "bad escape");
		*cp = (unsigned char)value[k - simple];
		s->p++;
		return 0;
	}
	s->p++;
	if (hex4(s, cp) < 0)
		return -1;
	if (*cp >= 0xdc00 && *cp <= 0xdfff)
		return sfail(s, SERVER_BODY_SURROGATE, "unpaired surrogate escape");
	if (*cp < 0xd800 || *cp > 0xdbff)
		return 0;
	if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
		return sfail(s, SERVER_BODY_SURROGATE, "unpaired surrogate escape");
	s->p += 2;
	if (hex4(s, &lo) < 0)
		return -1;
	if (lo < 0xdc00 || lo > 0xdfff)
		return sfail(s, SERVER_BODY_SURROGATE, "unpaired surrogate escape");
	*cp = 0x10000;
	return 0;
}

/* a string at s->p (the opening quote). key: when not NULL, the string's
 * ASCII text for matching names ("" when it is not plain ASCII that
 * fits). nul_ok: whether \u0000 may appear. */
static int string(struct scan *s, char *key, size_t cap, bool nul_ok)
{
	size_t kn = 0;
	bool plain = key != NULL;

	s->p++;
	for (;;) {
		unsigned cp;

		if (s->p >= s->end)
			return sfail(s, SERVER_BODY_SYNTAX, "unterminated string");
		if (*s->p == '"')
			break;
		if (*s->p < 0x20)
			return sfail(s, SERVER_BODY_CONTROL, "control character in a string");
		if (*s->p >= 0x80) {
			if (utf8_seq(s) < 0)
				return -1;
			plain = false;
			continue;
		}
		if (*s->p == '\\') {
			s->p++;
			if (escape(s, &cp) < 0)
				return -1;
			if (cp == 0 && !nul_ok)
				return sfail(s, SERVER_BODY_NUL,
					     key ? "\\u0000 in a key" :
						   "\\u0000 in a string that would be cut there");
		} else {
			cp = *s->p++;
		}
		if (plain && (cp >= 0x80 || kn + 1 >= cap))
			plain = false;
		if (plain)
			key[kn++] = (char)cp;
	}
	s->p++;
	if (key)
		key[plain ? kn : 0] = 0;
	return 0;
}

static int number(struct scan *s)
{
	const unsigned char *st;

	if (*s->p == '-')
		s->p++;
	st = s->p;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	if (s->p == st || (*st == '0' && s->p - st > 1))
		return sfail(s, SERVER_BODY_SYNTAX, "bad number");
	if (s->p < s->end && *s->p == '.') {
		st = ++s->p;
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
		if (s->p == st)
			return sfail(s, SERVER_BODY_SYNTAX, "bad number");
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		st = s->p;
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
		if (s->p == st)
			return sfail(s, SERVER_BODY_SYNTAX, "bad number");
	}
	return 0;
}

static int literal(struct scan *s, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return sfail(s, SERVER_BODY_SYNTAX, "unexpected character");
	s->p += n;
	return 0;
}

static int value(struct scan *s, int depth, bool nul_ok);

static bool is_name_key(const char *k)
{
	size_t i;

	for (i = 0; i < sizeof(name_keys) / sizeof(name_keys[0]); i++)
		if (strcmp(k, name_keys[i]) == 0)
			return true;
	return false;
}

/* '{' or '[' at s->p */
static int container(struct scan *s, int depth)
{
	bool obj = *s->p == '{';
	unsigned char close = obj ? '}' : ']';
	char key[16];

	if (depth >= SERVER_BODY_DEPTH_MAX)
		return sfail(s, SERVER_BODY_DEPTH, "nested too deeply");
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 0;
	}
	for (;;) {
		bool nul_ok = !s->nul_any;

		if (obj) {
			if (s->p >= s->end || *s->p != '"')
				return sfail(s, SERVER_BODY_SYNTAX, "expected a key");
			/* a key is a name: cJSON would cut it at \u0000 */
			if (string(s, key, sizeof(key), false) < 0)
				return -1;
			ws(s);
			if (s->p >= s->end || *s->p != ':')
				return sfail(s, SERVER_BODY_SYNTAX, "expected ':'");
			s->p++;
			ws(s);
			if (depth == 0 && is_name_key(key))
				nul_ok = false;
		}
		if (value(s, depth + 1, nul_ok) < 0) {
			/* name the field: "a\u0000b" is not the model "a" */
			if (s->e->fault == SERVER_BODY_NUL && obj && depth == 0 && is_name_key(key))
				server_body_fail(s->e, SERVER_BODY_NUL, key,
						 "'%s' must not contain \\u0000", key);
			return -1;
		}
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			ws(s);
			continue;
		}
		if (s->p < s->end && *s->p == close) {
			s->p++;
			return 0;
		}
		return sfail(s, SERVER_BODY_SYNTAX,
			     obj ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int value(struct scan *s, int depth, bool nul_ok)
{
	if (s->p >= s->end)
		return sfail(s, SERVER_BODY_SYNTAX, "unexpected end");
	switch (*s->p) {
	case '{':
	case '[':
		return container(s, depth);
	case '"':
		return string(s, NULL, 0, nul_ok);
	case 't':
		return literal(s, "true");
	case 'f':
		return literal(s, "false");
	case 'n':
		return literal(s, "null");
	default:
		if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
			return number(s);
		if (*s->p >= 0x80)
			return utf8_seq(s) < 0
				       ? -1
				       : sfail(s, SERVER_BODY_SYNTAX, "unexpected character");
		return sfail(s, SERVER_BODY_SYNTAX, "unexpected character");
	}
}

int server_body_scan(const char *body, size_t len, bool nul_any, struct server_body_err *e)
{
	struct scan s = { (const unsigned char *)body, (const unsigned char *)body,
			  (const unsigned char *)body + len, nul_any, e };

	ws(&s);
	if (s.p == s.end)
		return server_body_fail(e, SERVER_BODY_EMPTY, NULL,
					"request body is empty; a JSON object is needed");
	if (*s.p != '{') {
		/* still a fault of its own when it is valid JSON of another kind */
		if (value(&s, 0, true) < 0)
			return -1;
		return server_body_fail(e, SERVER_BODY_NOT_OBJECT, NULL,
					"request body is not a JSON object");
	}
	if (value(&s, 0, true) < 0)
		return -1;
	ws(&s);
	if (s.p != s.end)
		return sfail(&s, SERVER_BODY_TRAILING, "bytes after the JSON value");
	return 0;
}

const char *server_body_fault_code(enum server_body_fault fault)
{
	switch (fault) {
	case SERVER_BODY_OK:
		return "ok";
	case SERVER_BODY_EMPTY:
	case SERVER_BODY_SYNTAX:
	case SERVER_BODY_TRAILING:
	case SERVER_BODY_DEPTH:
	case SERVER_BODY_NOT_OBJECT:
		return "invalid_json";
	case SERVER_BODY_UTF8:
	case SERVER_BODY_CONTROL:
	case SERVER_BODY_SURROGATE:
		return "invalid_string";
	case SERVER_BODY_NUL:
		return "nul_in_name";
	case SERVER_BODY_DUPLICATE:
		return "duplicate_field";
	case SERVER_BODY_NO_MODEL:
		return "missing_model";
	case SERVER_BODY_MISSING:
		return "missing_field";
	case SERVER_BODY_TYPE:
		return "invalid_type";
	case SERVER_BODY_NAME:
		return "invalid_model_name";
	}
	return "invalid_request";
}

void server_body_clip(char *out, size_t cap, const char *s, size_t len)
{
	struct server_body_err e;
	struct scan sc = { (const unsigned char *)s, (const unsigned char *)s,
			   (const unsigned char *)s + len, false, &e };
	size_t o = 0;

	if (cap == 0)
		return;
	while (sc.p < sc.end) {
		const unsigned char *st = sc.p;
		size_t n;

		if (*sc.p >= 0x80 && utf8_seq(&sc) == 0) {
			n = (size_t)(sc.p - st);
		} else {
			sc.p = st + 1;
			n = 1;
			st = *st < 0x20 || *st >= 0x7f ? (const unsigned char *)"?" : st;
		}
		if (o + n >= cap)
			break;
		memcpy(out + o, st, n);
		o += n;
	}
	out[o] = 0;
}
