/* FastFlowLM children, shared by backends/ only (flm.c, api.c, spawn.c,
 * supervise.c) */
#ifndef LEMON_BACKENDS_FLM_PRIVATE_H
#define LEMON_BACKENDS_FLM_PRIVATE_H

#include "backends/backends-private.h"
#include "backends/flm.h"

struct backends_flm_state {
	struct backends_flm_opts o;
	int cand; /* index of the flm candidate, -1 when none */
};

/* true when cand is the flm candidate */
bool backends_flm_cand(const struct backends *b, int cand);
/* the flm model of that name, NULL for a GGUF model */
const struct backends_flm_model *backends_flm_find(const struct backends *b,
						   const char *model);
/* the candidate a child of model starts on: flm's for an flm model,
 * dflt otherwise */
int backends_flm_first(const struct backends *b, const char *model, int dflt);
/* argv of `flm serve MODEL --host 127.0.0.1 --port P [--ctx-len N]
 * --quiet` (Lemonade's flm recipe); NULL-terminated, returns the count */
int backends_flm_argv(const struct backends_spawn *s, const char **argv,
		      char *port, size_t port_cap, char *ctx, size_t ctx_cap);
/* the lock is held: stops the other NPU children that can go (no lease);
 * false while one still runs or holds requests (the caller waits) */
bool backends_flm_make_room(struct backends *b, const char *model);
void backends_flm_free(struct backends *b);

#endif
