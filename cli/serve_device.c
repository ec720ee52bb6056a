/* serve --device: the GPU(s) the user chose, by llama.cpp's own device
 * names (what `llama-server --list-devices` prints: CUDA0, Vulkan1,
 * ROCm0), one backend kind, up to 8. The children of that kind get them
 * as --device exactly (a name llama-server does not know makes the child
 * fail, and lemon falls back saying so); lemon's own per-GPU choice for
 * that kind (its device, GGML_VK_VISIBLE_DEVICES, a split over GPUs) is
 * set aside. For CUDA the names are the driver probe's ordinals under the
 * same CUDA_VISIBLE_DEVICES, so the plan uses those GPUs' free memory;
 * Vulkan and ROCm number devices in ways detection cannot see, so their
 * plan keeps the memory of the candidate's GPU. */
#include <stdio.h>
#include <string.h>

#include "backends/backends.h"
#include "cli/cli.h"
#include "util/str.h"

static const char *const kinds[][2] = { { "CUDA", "cuda" },
					{ "Vulkan", "vulkan" },
					{ "ROCm", "rocm" } };

/* the kind ("cuda"...) of one name, NULL when it is no device name */
static const char *name_kind(const char *s, size_t len)
{
	size_t i, p, d;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		p = strlen(kinds[i][0]);
		if (len <= p || len > p + 2 || strncmp(s, kinds[i][0], p) != 0)
			continue;
		for (d = p; d < len; d++)
			if (s[d] < '0' || s[d] > '9')
				return NULL;
		if (len == p + 2 && s[p] == '0')
			return NULL; /* "CUDA01": not how llama.cpp names one */
		return kinds[i][1];
	}
	return NULL;
}

int cli_serve_devices(const char *v, struct cli_devices *out,
		      struct lemon_err *err)
{
	const char *s = v, *kind = NULL, *k;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (v == NULL || v[0] == 0 || strlen(v) >= sizeof(out->list))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "--device: expected llama.cpp device names such as CUDA0 or Vulkan1,Vulkan2");
	for (;;) {
		len = strcspn(s, ",");
		k = name_kind(s, len);
		if (k == NULL || (kind && strcmp(k, kind) != 0) ||
		    out->n == CLI_MAX_DEVICES)
			return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
					     "--device '%.64s': expected up to %d llama.cpp device names of one backend (CUDA0, Vulkan1, ROCm0: see llama-server --list-devices)",
					     v, CLI_MAX_DEVICES);
		kind = k;
		if (k == kinds[0][1]) {
			uint64_t n = 0;

			if (lemon_parse_u64(s + 4, len - 4, 10, 99, &n, NULL) < 0)
				return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
						     "--device '%.64s': bad CUDA ordinal", v);
			out->cuda[out->n] = (int)n;
		}
		out->n++;
		if (s[len] == 0)
			break;
		s += len + 1;
	}
	lemon_str_copy(out->list, sizeof(out->list), v);
	lemon_str_copy(out->kind, sizeof(out->kind), kind);
	return 0;
}

void cli_apply_devices(const struct cli_devices *d,
		       const struct backends_gpu_seen *gpus, int n_gpus,
		       struct backends_opts *o)
{
	uint64_t sum = 0;
	int k, i, g;

	if (d == NULL || d->n == 0)
		return;
	for (k = 0; k < o->n_candidates; k++) {
		struct backends_candidate *c = &o->cand[k];

		if (strcmp(c->kind, d->kind) != 0)
			continue;
		lemon_str_copy(c->device, sizeof(c->device), d->list);
		if (strncmp(c->env, "GGML_VK_VISIBLE_DEVICES=", 24) == 0)
			c->env[0] = 0;
		c->n_gpus = 0; /* the user's list, not lemon's split */
		c->split_env[0] = 0;
		if (strcmp(d->kind, "cuda") != 0)
			continue;
		for (i = 0; i < d->n; i++)
			for (g = 0; g < n_gpus; g++) {
				char name[16];

				snprintf(name, sizeof(name), "CUDA%d", d->cuda[i]);
				if (strcmp(gpus[g].device, name) == 0)
					sum += gpus[g].free_bytes;
			}
		/* a name the probe did not see: the child will refuse it */
		if (sum)
			c->vram_bytes = sum;
	}
}
