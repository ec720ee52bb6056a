/* one model across the GPUs of one machine: when it is larger than the
 * free memory of the largest GPU, llama-server gets --split-mode layer,
 * --device with the GPUs of that vendor and a --tensor-split in proportion
 * to each one's free memory. Planning only: the devices and their free
 * memory come from detection (CUDA numbers them under the
 * CUDA_VISIBLE_DEVICES the child inherits, so the variable is honoured by
 * what the caller passes), and --device narrows the set */
#include <stdio.h>
#include <string.h>

#include "backends/backends.h"
#include "util/str.h"

#define MIB (1024.0 * 1024.0)

/* "CUDA1" -> "CUDA": the vendor part of a llama.cpp device name */
static size_t vendor_len(const char *dev)
{
	size_t n = strlen(dev);

	while (n > 0 && dev[n - 1] >= '0' && dev[n - 1] <= '9')
		n--;
	return n;
}

static bool listed(const char *list, const char *dev)
{
	size_t n = strlen(dev);
	const char *p = list;

	while ((p = strstr(p, dev)) != NULL) {
		if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
			return true;
		p += n;
	}
	return false;
}

int backends_multigpu_plan(const struct backends_gguf_info *m,
			   const char *name, int ctx, uint64_t ram,
			   const struct backends_gpu_mem *gpus, int n_gpus,
			   const char *only, struct backends_split_plan *out,
			   struct lemon_err *err)
{
	const struct backends_gpu_mem *use[BACKENDS_MAX_SPLIT_GPUS];
	struct backends_fit fit;
	uint64_t total = 0, best = 0;
	size_t dpos = 0, tpos = 0, vlen = 0;
	int i, n = 0, largest = -1, at[BACKENDS_MAX_SPLIT_GPUS];

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n_gpus && n < BACKENDS_MAX_SPLIT_GPUS; i++) {
		const struct backends_gpu_mem *g = &gpus[i];

		/* a GPU that other children have filled takes no layers */
		if (g->device[0] == 0 || g->free_bytes < (1u << 20) ||
		    (only && only[0] && !listed(only, g->device)))
			continue;
		/* one vendor: the first GPU kept names it */
		if (n == 0)
			vlen = vendor_len(g->device);
		else if (vendor_len(g->device) != vlen ||
			 strncmp(g->device, use[0]->device, vlen) != 0)
			continue;
		at[n] = i;
		use[n++] = g;
	}
	if (n == 0)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "no GPU%s%s to place model '%s' on",
				     only && only[0] ? " among " : "",
				     only && only[0] ? only : "", name);
	for (i = 0; i < n; i++) {
		total += use[i]->free_bytes;
		if (largest < 0 || use[i]->free_bytes > best) {
			best = use[i]->free_bytes;
			largest = i;
		}
	}
	/* on the largest GPU alone when it holds the whole model: a split
	 * costs a transfer between devices on every token */
	if (backends_fit_plan(m, name, ctx, 0, best ? best : 1, &fit, NULL) == 0 &&
	    !fit.partial) {
		out->n_devices = 1;
		lemon_str_copy(out->devices, sizeof(out->devices), use[largest]->device);
		out->idx[0] = at[largest];
		out->bytes[0] = fit.need;
	} else {
		if (backends_fit_plan(m, name, ctx, ram, total ? total : 1, &fit, err) < 0)
			return -1;
		out->n_devices = n;
		out->split = n > 1;
		for (i = 0; i < n; i++) {
			out->idx[i] = at[i];
			/* the GPUs' part of the model, in their proportions */
			out->bytes[i] = (uint64_t)((double)(fit.need < total ? fit.need : total) *
						   ((double)use[i]->free_bytes / (double)total));
			dpos += (size_t)snprintf(out->devices + dpos,
						 sizeof(out->devices) - dpos, "%s%s",
						 i ? "," : "", use[i]->device);
			tpos += (size_t)snprintf(out->tensor_split + tpos,
						 sizeof(out->tensor_split) - tpos,
						 "%s%llu", i ? "," : "",
						 (unsigned long long)(use[i]->free_bytes >> 20));
		}
	}
	out->fit = fit;
	if (out->split)
		snprintf(out->text, sizeof(out->text),
			 "--split-mode layer --device %.150s --tensor-split %.150s (MiB free), %s%d layers on the GPUs, -c %d; needs about %.0f MiB of %.0f MiB free",
			 out->devices, out->tensor_split,
			 fit.partial ? "partial offload: " : "", fit.ngl, fit.ctx,
			 fit.need / MIB, total / MIB);
	else
		snprintf(out->text, sizeof(out->text),
			 "--device %.150s, %s%d layers, -c %d; needs about %.0f MiB of %.0f MiB free",
			 out->devices, fit.partial ? "partial offload: " : "",
			 fit.ngl, fit.ctx, fit.need / MIB,
			 (out->n_devices == 1 ? best : total) / MIB);
	return 0;
}

/* the GPUs of the candidate's vendor it may span, under the names its
 * child will see them by. CUDA: as detected (the probe ran under the
 * CUDA_VISIBLE_DEVICES the child inherits). Vulkan: ggml numbers the
 * devices listed in GGML_VK_VISIBLE_DEVICES in that order, so the child
 * is shown exactly these (a list the user set is left alone: no span).
 * ROCm: HIP numbers the GPUs that ROCR_VISIBLE_DEVICES,
 * HIP_VISIBLE_DEVICES or CUDA_VISIBLE_DEVICES leave, which detection
 * does not know: with any of them set, no span */
void backends_multigpu_span(struct backends_candidate *c,
			    const struct backends_gpu_seen *g, int n,
			    bool vk_user_list, bool rocm_hidden)
{
	size_t epos = 0;
	int i, k = 0, with_vk = 0;
	bool cuda = strcmp(c->kind, "cuda") == 0;
	bool vulkan = strcmp(c->kind, "vulkan") == 0;
	bool rocm = strcmp(c->kind, "rocm") == 0;
	uint16_t vendor = 0;

	c->n_gpus = 0;
	c->split_env[0] = 0;
	if ((!cuda && !vulkan && !rocm) || (vulkan && vk_user_list) ||
	    (rocm && rocm_hidden))
		return;
	for (i = 0; i < n && k < BACKENDS_MAX_SPLIT_GPUS; i++) {
		if (g[i].igpu || (cuda && strncmp(g[i].device, "CUDA", 4) != 0)) {
			if (i == 0)
				return; /* the candidate's own GPU: never spanned */
			continue;
		}
		if (k == 0)
			vendor = g[i].vendor;
		else if (g[i].vendor != vendor)
			continue; /* one vendor */
		if (cuda)
			lemon_str_copy(c->gpus[k].device,
				       sizeof(c->gpus[k].device), g[i].device);
		else
			snprintf(c->gpus[k].device, sizeof(c->gpus[k].device),
				 "%s%u", vulkan ? "Vulkan" : "ROCm",
				 (unsigned)k % 100u); /* k < 16: bounded for gcc */
		c->gpus[k].free_bytes = g[i].free_bytes;
		if (vulkan && g[i].vk_index >= 0) {
			with_vk++;
			epos += (size_t)snprintf(c->split_env + epos,
						 sizeof(c->split_env) - epos,
						 "%s%d",
						 k ? "," : "GGML_VK_VISIBLE_DEVICES=",
						 g[i].vk_index);
			if (epos >= sizeof(c->split_env)) {
				c->split_env[0] = 0;
				return; /* too many to name: no span */
			}
		}
		k++;
	}
	/* Vulkan without the loader's list (no probe): ggml's own order,
	 * assumed to be detection's; with it for some GPUs only: no span */
	if (vulkan && with_vk != 0 && with_vk != k) {
		c->split_env[0] = 0;
		return;
	}
	c->n_gpus = k >= 2 ? k : 0;
	if (c->n_gpus == 0)
		c->split_env[0] = 0;
}
