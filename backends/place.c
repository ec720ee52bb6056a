/* where a model goes, decided once for the start of its child and for
 * the plans route (GET /api/v1/plans) and the check before a load, so
 * that what the user is shown is what a load does: on the candidate's
 * first GPU (or the CPU) when it fits there, else over the candidate's
 * GPUs of one vendor (backends/multigpu.c: split by layers, or another
 * GPU alone), else across the `lemon worker`s (backends/workers.c). What
 * is free on each GPU is what detection saw less the shares the other
 * loaded children were planned to hold there, so a second model does not
 * get a split that overcommits the GPUs. Also what the supervisor does
 * with a placement: the child's spawn from it, and the idle holders of
 * the workers it needs unloaded first. */
#include <stdio.h>
#include <string.h>

#include "backends/backends-private.h"
#include "util/str.h"

#define MIB (1024.0 * 1024.0)

void backends_place_snapshot(struct backends *b, int ci,
			     const struct backends_sup_child *self,
			     const char *model, bool all_free,
			     struct backends_place_in *in)
{
	uint64_t used[BACKENDS_MAX_SPLIT_GPUS] = { 0 };
	int i, k;

	memset(in, 0, sizeof(*in));
	in->ci = ci;
	in->cand = b->o.cand[ci];
	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++) {
		const struct backends_sup_child *o = &b->child[i];

		if (all_free || o == self || o->proc.pid <= 0 || o->cand != ci ||
		    (self == NULL && strcmp(o->model, model) == 0))
			continue;
		for (k = 0; k < BACKENDS_MAX_SPLIT_GPUS; k++)
			used[k] += o->gpu_used[k];
	}
	/* RAM in total: other children's shares may be paged out, so they
	 * never make a model refused */
	in->ram = b->o.ram_bytes;
	/* a GPU candidate with none left gets 1 byte so that the plan still
	 * treats it as a GPU (no layers offloaded) */
	in->vram = in->cand.vram_bytes;
	if (in->vram)
		in->vram = in->vram > used[0] ? in->vram - used[0] : 1;
	for (k = 0; k < in->cand.n_gpus && k < BACKENDS_MAX_SPLIT_GPUS; k++) {
		struct backends_gpu_mem *g = &in->cand.gpus[k];

		g->free_bytes = g->free_bytes > used[k] ? g->free_bytes - used[k] : 0;
	}
}

/* over the candidate's GPUs when the first one alone is too small: a
 * split, or the whole model on another GPU that holds it; 1 when used,
 * 0 when not (err then holds the sizes over every GPU when even they
 * and the RAM are too small) */
static int over_gpus(const struct backends *b, const struct backends_place_in *in,
		     const struct backends_gguf_info *info, const char *model,
		     bool refused, struct backends_placement *out,
		     struct lemon_err *err)
{
	struct backends_split_plan *mg = &out->mg;
	struct lemon_err e2 = { 0 };
	int i;

	if (backends_multigpu_plan(info, model, b->o.ctx_size, in->ram,
				   in->cand.gpus, in->cand.n_gpus, NULL, mg,
				   &e2) < 0) {
		if (refused && e2.code == LEMON_ERR_TOO_LARGE)
			*err = e2;
		return 0;
	}
	if (!mg->split && (mg->n_devices != 1 || mg->idx[0] == 0))
		return 0; /* the first GPU after all: the caller's plan */
	lemon_err_clear(err);
	out->on_gpus = true;
	out->fit = mg->fit;
	for (i = 0; i < mg->n_devices; i++)
		out->used[mg->idx[i]] = mg->bytes[i];
	if (mg->split)
		snprintf(out->text, sizeof(out->text),
			 "split-mode layer over %.150s, tensor split %.150s",
			 mg->devices, mg->tensor_split);
	else
		snprintf(out->text, sizeof(out->text), "on %.150s", mg->devices);
	return 1;
}

int backends_place(struct backends *b, const struct backends_place_in *in,
		   const char *path, const char *model,
		   enum backends_place_mode mode, struct backends_placement *out,
		   struct lemon_err *err)
{
	struct backends_gguf_info info;
	struct backends_fit *fit = &out->fit;
	int rc;

	memset(out, 0, sizeof(*out));
	if (backends_gguf_read_model(path, &info, err) < 0)
		return -1;
	rc = backends_fit_plan(&info, model, b->o.ctx_size, in->ram, in->vram,
			       fit, err);
	if (rc < 0 && err->code != LEMON_ERR_TOO_LARGE)
		return -1;
	if (in->cand.n_gpus > 1 && (rc < 0 || fit->partial) &&
	    over_gpus(b, in, &info, model, rc < 0, out, err))
		return 0;
	if (rc == 0) {
		if (in->vram)
			out->used[0] = fit->partial && fit->need > in->vram ?
					       in->vram : fit->need;
		return 0;
	}
	/* too large for this machine: across the workers, when there are
	 * any (placed anew on each start, so a lost worker is left out) */
	if (b->o.n_workers == 0)
		return -1;
	if (mode == BACKENDS_PLACE_FOR_CHECK) {
		lemon_err_clear(err);
		return 0; /* the start asks the workers */
	}
	lemon_err_clear(err);
	if (backends_rpc_plan(b, &info, model, in->vram ? in->vram : in->ram,
			      mode, &out->rp, err) < 0)
		return -1;
	out->fit.ctx = out->rp.ctx;
	out->fit.ngl = out->rp.ngl;
	out->fit.need = out->rp.need;
	lemon_str_copy(out->text, sizeof(out->text), out->rp.placement);
	return 0;
}

/* the idle children a placement across workers needs gone (an
 * rpc-server serves one model at a time) are unloaded and the start is
 * tried again once they have exited; one that took a request meanwhile
 * makes the start BUSY. The lock is held */
void backends_place_evict(struct backends *b, struct backends_sup_child *c,
			  const struct backends_rpc_placement *rp)
{
	int i;

	for (i = 0; i < rp->n_evict; i++) {
		struct backends_sup_child *h = &b->child[rp->evict[i]];

		if (h->gen != rp->evict_gen[i] || h->state != BACKENDS_SUP_READY ||
		    h->leases > 0) {
			snprintf(c->reason, sizeof(c->reason),
				 "model '%s' needs the workers '%s' holds, which took a request meanwhile",
				 c->model, h->model);
			c->fail_code = LEMON_ERR_BUSY;
			c->state = BACKENDS_SUP_FAILED;
			c->failed_at = backends_sup_now_ms();
			pthread_cond_broadcast(&b->cv);
			return;
		}
	}
	for (i = 0; i < rp->n_evict; i++) {
		struct backends_sup_child *h = &b->child[rp->evict[i]];

		backends_sup_log(b, "unloading %s (idle, holding the workers) to place %s",
			h->model, c->model);
		backends_sup_stop_child(b, h, true);
	}
	c->state = BACKENDS_SUP_WANT;
	c->rpc_wait = true;
}

/* true while a child placed across workers is stopping: a start that
 * evicted one waits for it to let go of the rpc-servers */
bool backends_place_rpc_stopping(const struct backends *b)
{
	int i;

	for (i = 0; i < BACKENDS_SUP_MAX_CHILDREN; i++)
		if (b->child[i].state == BACKENDS_SUP_STOPPING &&
		    b->child[i].proc.pid > 0 && b->child[i].workers != 0)
			return true;
	return false;
}

/* fills the spawn from the placement and says where it goes */
void backends_place_apply(struct backends *b, struct backends_sup_child *c,
			  const struct backends_place_in *in,
			  const struct backends_placement *pl,
			  struct backends_spawn *s)
{
	const struct backends_candidate *cand = &in->cand;
	int k;

	s->ctx_size = pl->fit.ctx;
	s->n_gpu_layers = pl->fit.ngl;
	c->n_gpu_layers = pl->fit.n_gpu_layers;
	memcpy(c->gpu_used, pl->used, sizeof(c->gpu_used));
	lemon_str_copy(c->placement, sizeof(c->placement), pl->text);
	c->workers = pl->rp.n_workers > 0 ? pl->rp.workers : 0;
	if (pl->fit.partial && !pl->on_gpus)
		backends_sup_log(b, "%s needs about %.0f MiB, more than the %.0f MiB of VRAM free: %d of its layers on %s, the rest in RAM",
			c->model, pl->fit.need / 1048576.0, in->vram / 1048576.0,
			pl->fit.n_gpu_layers, cand->kind);
	if (pl->on_gpus) {
		s->device = pl->mg.devices;
		s->split_layer = pl->mg.split;
		s->tensor_split = pl->mg.split ? pl->mg.tensor_split : NULL;
		if (cand->split_env[0])
			s->env_extra = cand->split_env;
		backends_sup_log(b, "%s needs about %.0f MiB, more than the %.0f MiB free on %s: %s",
			c->model, pl->fit.need / 1048576.0,
			cand->gpus[0].free_bytes / 1048576.0, cand->gpus[0].device,
			pl->mg.text);
	}
	if (pl->rp.n_workers > 0) {
		if (b->o.parallel <= 0) {
			s->parallel = pl->rp.slots;
			c->slots = s->parallel;
		}
		s->rpc = pl->rp.rpc;
		s->tensor_split = pl->rp.tensor_split;
		for (k = 0; k < BACKENDS_MAX_SPLIT_GPUS; k++)
			c->gpu_used[k] = 0;
		backends_sup_log(b, "%s needs about %.0f MiB, more than this machine has: placed %s",
			c->model, pl->rp.need / 1048576.0, pl->rp.placement);
	}
}
