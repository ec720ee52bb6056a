/* libFuzzer target for the kernel-log pattern matcher (compat/lookup.c
 * compat_kmsg_match, compat_template_match) over the shipped patterns of
 * compat/kmsg.json and kmsg-local.json: any line either matches nothing or
 * matches a pattern whose fixed text it really contains; a protocol read
 * from it is 0-255; never a crash, never a runaway match. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compat/compat-private.h"

static struct compat_db *db;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct lemon_err err = { 0 };

	(void)argc;
	(void)argv;
	if (compat_db_load_topics(LEMON_DATADIR, COMPAT_TOPIC_KMSG, &db,
				  &err) != 0)
		abort();
	return 0;
}

/* the template's text up to its first placeholder: what a line matching
 * it must contain verbatim */
static bool has_literal_head(const char *tmpl, const char *line)
{
	size_t n = strcspn(tmpl, "{");
	char head[256];

	if (n == 0)
		return true;
	if (n >= sizeof(head))
		n = sizeof(head) - 1;
	memcpy(head, tmpl, n);
	head[n] = '\0';
	return strstr(line, head) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct compat_kmsg_hit hit;
	char line[1024];
	size_t n = size < sizeof(line) - 1 ? size : sizeof(line) - 1;
	int i, j;
	bool real = false;

	memcpy(line, data, n);
	line[n] = '\0';
	if (!compat_kmsg_match(db, line, &hit))
		return 0;
	if (hit.id[0] == '\0' || hit.meaning[0] == '\0')
		abort();
	if (hit.proto_major < -1 || hit.proto_major > 255 ||
	    hit.proto_minor < -1 || hit.proto_minor > 255)
		abort();
	for (i = 0; i < db->n_kmsg; i++) {
		if (strcmp(db->kmsg[i].id, hit.id) != 0)
			continue;
		for (j = 0; j < db->kmsg[i].n; j++)
			if (has_literal_head(db->kmsg[i].match[j], line))
				real = true;
	}
	if (!real)
		abort(); /* matched without the pattern's own words */
	return 0;
}
