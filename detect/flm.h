/* an installed FastFlowLM runtime (`flm`): where it is and the version
 * `flm version` names. flm is a host program, not a machine file, so it is
 * looked up on PATH (or LEMON_FLM) even when the rest of the report comes
 * from a recorded tree. */
#ifndef LEMON_DETECT_FLM_H
#define LEMON_DETECT_FLM_H

#include <stdbool.h>
#include <stddef.h>

struct detect_flm {
	bool found; /* an executable flm was found */
	char path[512];
	char version[32]; /* "0.9.44"; "" when `flm version` named none */
	char error[128];  /* why the version is unknown, "" otherwise */
};

/* LEMON_FLM when set (an empty value means "not installed"), else
 * installed (the flm lemon installed, NULL: none) when executable, else
 * the first executable `flm` on PATH; runs `flm version` (5 s at most) */
void detect_flm_probe(struct detect_flm *out, const char *installed);

/* the first dotted number (at least major.minor) in text, as "a.b.c";
 * false when there is none */
bool detect_flm_parse_version(const char *text, size_t len, char *out,
			      size_t cap);

#endif
