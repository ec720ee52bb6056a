/* libFuzzer target for server/prom.c: any bytes as a child's /metrics
 * text (parsed twice, as two children of one model would be) render to
 * text in which every line is a HELP or TYPE line or a sample named
 * lemon_llamacpp_* with the model label first, and whose families each
 * appear once */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/prom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct server_prom p;
	struct server_prom_text t = { 0 };
	size_t pos = 0;

	server_prom_init(&p);
	server_prom_parse(&p, (const char *)data, size, "m", "chat");
	server_prom_parse(&p, (const char *)data, size, "m", "embeddings");
	server_prom_render(&p, &t);
	while (t.p && pos < t.len) {
		const char *s = t.p + pos, *e = memchr(s, '\n', t.len - pos);

		if (e == NULL)
			abort(); /* every line ends */
		if (strncmp(s, "# HELP lemon_llamacpp_", 22) != 0 &&
		    strncmp(s, "# TYPE lemon_llamacpp_", 22) != 0 &&
		    (strncmp(s, "lemon_llamacpp_", 15) != 0 || memmem(s, (size_t)(e - s), "{model=\"m\",role=\"", 17) == NULL))
			abort();
		pos += (size_t)(e - s) + 1;
	}
	for (int i = 0; i < p.n; i++)
		for (int j = i + 1; j < p.n; j++)
			if (strcmp(p.fam[i].name, p.fam[j].name) == 0)
				abort();
	free(t.p);
	server_prom_free(&p);
	return 0;
}
