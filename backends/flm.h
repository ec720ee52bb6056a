/* FastFlowLM (`flm serve`) children: registry models of recipe "flm" run
 * on the NPU under the same supervisor, leases, LRU/idle and fallback
 * rules as llama-server children. FastFlowLM fetches its own models, so a
 * model's lemon name is FastFlowLM's name ("llama3.2:1b"). Only one NPU
 * child runs at a time; a model whose NPU child cannot be had is served
 * from its GGUF (gguf) when the registry names one, and the fallback is
 * logged and recorded like any other. */
#ifndef LEMON_BACKENDS_FLM_H
#define LEMON_BACKENDS_FLM_H

#include "backends/backends.h"

#define BACKENDS_MAX_FLM_MODELS 16

struct backends_flm_model {
	char name[BACKENDS_NAME_MAX]; /* FastFlowLM's model name */
	char gguf[BACKENDS_NAME_MAX]; /* the same model as GGUF, "" none */
};

struct backends_flm_opts {
	char exe[4096];	   /* flm; "" when FastFlowLM cannot serve here */
	char refusal[256]; /* with exe "": why (lemon's NPU/flm verdict) */
	int n_models;
	struct backends_flm_model models[BACKENDS_MAX_FLM_MODELS];
};

/* before the first acquire: records the flm models and, when exe is set,
 * adds the "flm" candidate (never used for GGUF models). INVALID_ARG for a
 * bad model name, TOO_LARGE when no candidate slot is left. */
int backends_flm_setup(struct backends *b, const struct backends_flm_opts *o,
		       struct lemon_err *err);

/* a registry flm model a request can name here: on the NPU (npu true)
 * when the flm candidate is usable, else through its GGUF (gguf) when
 * that is in the store. A model that can be served neither way is left
 * out, as clients (OpenAI SDKs, Open WebUI, ollama) offer every listed
 * model and have no field for "listed but refused"; doctor and
 * /api/v1/health say why. */
struct backends_flm_listed {
	char name[BACKENDS_NAME_MAX];
	char gguf[BACKENDS_NAME_MAX]; /* with npu false: what serves it */
	bool npu;
};

/* the flm models that can be served here, up to cap; returns the count */
int backends_flm_list(struct backends *b, struct backends_flm_listed *out,
		      int cap);

#endif
