/* the Prometheus text format (0.0.4) as lemon writes it and as it reads
 * its children's: a child's /metrics (llama-server --metrics) is parsed
 * line by line and each family is renamed under lemon_llamacpp_ with a
 * model label, merged with the same family of the other children so that
 * every family appears once (HELP, TYPE, then all its samples), as the
 * format requires. Pure functions of (buffer, length): the fuzz target
 * tests/fuzz/fuzz_server_prom.c runs exactly this. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/prom.h"

void server_prom_init(struct server_prom *p)
{
	memset(p, 0, sizeof(*p));
}

void server_prom_free(struct server_prom *p)
{
	int i;

	for (i = 0; i < p->n; i++)
		free(p->fam[i].samples.p);
	memset(p, 0, sizeof(*p));
}

int server_prom_add(struct server_prom_text *t, const char *s, size_t n)
{
	if (t->failed || t->len + n + 1 > SERVER_PROM_TEXT_MAX) {
		t->failed = true;
		return -1;
	}
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		char *q;

		while (cap < t->len + n + 1)
			cap *= 2;
		q = realloc(t->p, cap);
		if (q == NULL) {
			t->failed = true;
			return -1;
		}
		t->p = q;
		t->cap = cap;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = 0;
	return 0;
}

int server_prom_puts(struct server_prom_text *t, const char *s)
{
	return server_prom_add(t, s, strlen(s));
}

/* a label value with \, " and newline escaped */
int server_prom_label(struct server_prom_text *t, const char *v)
{
	for (; *v; v++) {
		const char *e = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;

		if (e ? server_prom_puts(t, e) : server_prom_add(t, v, 1))
			return -1;
	}
	return 0;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static size_t name_len(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
		      (i > 0 && c >= '0' && c <= '9')))
			break;
	}
	return i;
}

/* a child's metric name as lemon exports it: llama-server's "llamacpp:"
 * dropped (lemon's prefix says where it comes from) and any other colon,
 * which the format keeps for recording rules, made '_'; 0 when too long */
static size_t canon(const char *s, size_t n, char *out, size_t cap)
{
	size_t i;

	if (n > 9 && memcmp(s, "llamacpp:", 9) == 0) {
		s += 9;
		n -= 9;
	}
	if (n == 0 || n >= cap)
		return 0;
	for (i = 0; i < n; i++)
		out[i] = s[i] == ':' ? '_' : s[i];
	out[n] = 0;
	return n;
}

/* the family named name (made when new), NULL when the table is full */
static struct server_prom_family *family(struct server_prom *p, const char *raw, size_t rn)
{
	struct server_prom_family *f;
	char name[SERVER_PROM_NAME_MAX];
	size_t n = canon(raw, rn, name, sizeof(name));
	int i;

	if (n == 0)
		return NULL;
	for (i = 0; i < p->n; i++)
		if (strlen(p->fam[i].name) == n && memcmp(p->fam[i].name, name, n) == 0)
			return &p->fam[i];
	if (p->n == SERVER_PROM_FAMILIES_MAX)
		return NULL;
	f = &p->fam[p->n++];
	memcpy(f->name, name, n);
	f->name[n] = 0;
	return f;
}

/* the family a sample belongs to: its own name, or a histogram's or
 * summary's base name for its _bucket, _sum and _count series */
static struct server_prom_family *sample_family(struct server_prom *p, const char *raw,
						size_t rn)
{
	char name[SERVER_PROM_NAME_MAX];
	size_t n = canon(raw, rn, name, sizeof(name));
	static const char *const suffix[] = { "_bucket", "_sum", "_count" };
	size_t i, k;
	int j;

	for (i = 0; i < 3; i++) {
		k = strlen(suffix[i]);
		if (n <= k || memcmp(name + n - k, suffix[i], k) != 0)
			continue;
		for (j = 0; j < p->n; j++)
			if (strlen(p->fam[j].name) == n - k &&
			    memcmp(p->fam[j].name, name, n - k) == 0)
				return &p->fam[j];
	}
	return n ? family(p, name, n) : NULL;
}

/* a metadata line's text (HELP or TYPE), clipped, without control bytes */
static void meta(char *out, size_t cap, const char *s, size_t n)
{
	size_t o = 0, i;

	for (i = 0; i < n && o + 1 < cap; i++)
		out[o++] = (unsigned char)s[i] < 0x20 || s[i] == '\\' ? ' ' : s[i];
	out[o] = 0;
}

/* "name[{labels}] value [timestamp]": rewritten as
 * lemon_llamacpp_<name>{model="...",labels} value; a line that does not
 * read as a sample is skipped */
static void sample(struct server_prom *p, const char *s, size_t n, const char *model,
		   const char *role)
{
	size_t nl = name_len(s, n), i = nl, lb = 0, le = 0, cn;
	struct server_prom_family *f;
	struct server_prom_text *t;
	char name[SERVER_PROM_NAME_MAX];

	cn = canon(s, nl, name, sizeof(name));
	if (cn == 0)
		return;
	if (i < n && s[i] == '{') {
		bool quoted = false;

		lb = i + 1;
		for (i = lb; i < n; i++) {
			if (s[i] == '\\' && quoted)
				i++;
			else if (s[i] == '"')
				quoted = !quoted;
			else if (s[i] == '}' && !quoted)
				break;
		}
		if (i >= n)
			return;
		le = i++;
	}
	if (i >= n || s[i] != ' ')
		return;
	for (size_t k = i + 1; k < n; k++)
		if (!strchr("0123456789.eE+-NaInf ", s[k]))
			return;
	f = sample_family(p, s, nl);
	if (f == NULL)
		return;
	t = &f->samples;
	if (server_prom_puts(t, SERVER_PROM_CHILD_PREFIX) || server_prom_add(t, name, cn) ||
	    server_prom_puts(t, "{model=\"") || server_prom_label(t, model) ||
	    server_prom_puts(t, "\",role=\"") || server_prom_label(t, role) ||
	    server_prom_puts(t, "\""))
		return;
	if (lb && le > lb && (server_prom_puts(t, ",") || server_prom_add(t, s + lb, le - lb)))
		return;
	server_prom_add(t, "}", 1);
	server_prom_add(t, s + i, n - i);
	server_prom_add(t, "\n", 1);
}

void server_prom_parse(struct server_prom *p, const char *buf, size_t len, const char *model,
		       const char *role)
{
	size_t pos = 0;

	while (pos < len) {
		const char *s = buf + pos, *e = memchr(s, '\n', len - pos);
		size_t n = e ? (size_t)(e - s) : len - pos, nl;
		struct server_prom_family *f;

		pos += n + (e != NULL);
		if (n > 0 && s[n - 1] == '\r')
			n--;
		if (n > 7 && (memcmp(s, "# HELP ", 7) == 0 || memcmp(s, "# TYPE ", 7) == 0)) {
			nl = name_len(s + 7, n - 7);
			f = family(p, s + 7, nl);
			if (f == NULL || 7 + nl >= n || s[7 + nl] != ' ')
				continue;
			if (s[2] == 'H')
				meta(f->help, sizeof(f->help), s + 8 + nl, n - 8 - nl);
			else
				meta(f->type, sizeof(f->type), s + 8 + nl, n - 8 - nl);
		} else if (n > 0 && s[0] != '#') {
			sample(p, s, n, model, role);
		}
	}
}

void server_prom_render(const struct server_prom *p, struct server_prom_text *out)
{
	static const char *const types[] = { "counter", "gauge", "histogram", "summary",
					     "untyped" };
	int i;

	for (i = 0; i < p->n; i++) {
		const struct server_prom_family *f = &p->fam[i];
		const char *type = "untyped";
		size_t k;

		if (f->samples.len == 0)
			continue;
		for (k = 0; k < sizeof(types) / sizeof(types[0]); k++)
			if (strcmp(f->type, types[k]) == 0)
				type = types[k];
		/* a "counter" without _total (llama-server's n_tokens_max, a
		 * high-water mark) is a gauge by the format's naming rules */
		if (strcmp(type, "counter") == 0 &&
		    (strlen(f->name) < 6 || strcmp(f->name + strlen(f->name) - 6, "_total") != 0))
			type = "gauge";
		if (f->help[0]) {
			server_prom_puts(out, "# HELP " SERVER_PROM_CHILD_PREFIX);
			server_prom_puts(out, f->name);
			server_prom_puts(out, " ");
			server_prom_puts(out, f->help);
			server_prom_puts(out, "\n");
		}
		server_prom_puts(out, "# TYPE " SERVER_PROM_CHILD_PREFIX);
		server_prom_puts(out, f->name);
		server_prom_puts(out, " ");
		server_prom_puts(out, type);
		server_prom_puts(out, "\n");
		server_prom_add(out, f->samples.p, f->samples.len);
	}
}
