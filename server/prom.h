/* the Prometheus text format (server/prom.c): a bounded text buffer, label
 * escaping, and the merge of children's /metrics under lemon's names.
 * Private to server/ (and the fuzz target); pure, no I/O. */
#ifndef LEMON_SERVER_PROM_H
#define LEMON_SERVER_PROM_H

#include <stdbool.h>
#include <stddef.h>

#define SERVER_PROM_TEXT_MAX (8u << 20) /* a /metrics answer at most */
#define SERVER_PROM_FAMILIES_MAX 64	/* child families kept */
#define SERVER_PROM_NAME_MAX 96
#define SERVER_PROM_CHILD_PREFIX "lemon_llamacpp_"

/* a growing buffer; once failed (out of memory or over the maximum) it
 * stays failed and adds nothing */
struct server_prom_text {
	char *p;
	size_t len, cap;
	bool failed;
};

int server_prom_add(struct server_prom_text *t, const char *s, size_t n);
int server_prom_puts(struct server_prom_text *t, const char *s);
/* v as a label value: \, " and newline escaped */
int server_prom_label(struct server_prom_text *t, const char *v);

struct server_prom_family {
	char name[SERVER_PROM_NAME_MAX]; /* without the prefix */
	char help[256];
	char type[16];
	struct server_prom_text samples; /* rendered sample lines */
};

/* the children's families, in order of first appearance */
struct server_prom {
	int n;
	struct server_prom_family fam[SERVER_PROM_FAMILIES_MAX];
};

void server_prom_init(struct server_prom *p);
void server_prom_free(struct server_prom *p);
/* adds one child's /metrics text (buf[0..len), any bytes): every sample
 * gets model="<model>",role="<role>" before its own labels; lines that are not HELP, TYPE or a well-formed sample are
 * skipped; families beyond the maximum are dropped */
void server_prom_parse(struct server_prom *p, const char *buf, size_t len, const char *model,
		       const char *role);
/* appends every family that has samples: HELP, TYPE, then the samples */
void server_prom_render(const struct server_prom *p, struct server_prom_text *out);

#endif
