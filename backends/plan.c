/* the memory plan of a stored model, for GET /api/v1/plans and the web
 * app's Models page: the placement its start would make now
 * (backends_place, the same function the start uses: the first usable
 * candidate's GPU, its GPUs split by layers, the workers as last
 * probed), so the page says "too large" exactly when a load would be
 * refused and otherwise shows the devices or workers it would use */
#include <stdlib.h>
#include <string.h>

#include "backends/backends-private.h"
#include "backends/flm-private.h"
#include "util/str.h"

const char *backends_place_name(enum backends_place p) {
  switch (p) {
  case BACKENDS_PLACE_GPU:
    return "gpu";
  case BACKENDS_PLACE_PARTIAL:
    return "partial";
  case BACKENDS_PLACE_CPU:
    return "cpu";
  case BACKENDS_PLACE_NPU:
    return "npu";
  case BACKENDS_PLACE_TOO_LARGE:
    return "too_large";
  case BACKENDS_PLACE_SPLIT:
    return "split";
  case BACKENDS_PLACE_WORKERS:
    return "workers";
  }
  return "cpu";
}

/* the placement into the route's shape */
static void describe(const struct backends_placement *pl,
                     struct backends_model_plan *out) {
  out->need = pl->fit.need;
  out->ctx = pl->fit.ctx;
  lemon_str_copy(out->placement, sizeof(out->placement), pl->text);
  if (pl->rp.n_workers > 0) {
    out->place = BACKENDS_PLACE_WORKERS;
    out->gpu_layers = pl->rp.ngl;
    lemon_str_copy(out->rpc, sizeof(out->rpc), pl->rp.rpc);
    lemon_str_copy(out->tensor_split, sizeof(out->tensor_split),
                   pl->rp.tensor_split);
    return;
  }
  if (pl->on_gpus)
    lemon_str_copy(out->devices, sizeof(out->devices), pl->mg.devices);
  if (pl->on_gpus && pl->mg.split)
    lemon_str_copy(out->tensor_split, sizeof(out->tensor_split),
                   pl->mg.tensor_split);
  if (out->vram == 0)
    out->place = BACKENDS_PLACE_CPU;
  else if (pl->fit.partial) {
    out->place = BACKENDS_PLACE_PARTIAL;
    out->gpu_layers = pl->fit.n_gpu_layers;
  } else if (pl->on_gpus && pl->mg.split)
    out->place = BACKENDS_PLACE_SPLIT;
  else
    out->place = BACKENDS_PLACE_GPU;
  if (out->place == BACKENDS_PLACE_SPLIT ||
      (out->place == BACKENDS_PLACE_PARTIAL && pl->on_gpus))
    out->gpu_layers = pl->fit.ngl;
}

int backends_plan_model(struct backends *b, const char *name,
                        struct backends_model_plan *out,
                        struct lemon_err *err) {
  struct backends_placement *pl;
  struct backends_place_in *in;
  struct backends_gguf_info info;
  char path[4200];
  bool flm;
  int rc;

  memset(out, 0, sizeof(*out));
  pl = malloc(sizeof(*pl) + sizeof(*in));
  if (pl == NULL)
    return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
  in = (struct backends_place_in *)(pl + 1);
  pthread_mutex_lock(&b->mu);
  flm = backends_flm_find(b, name) != NULL;
  backends_place_snapshot(b, backends_sup_first_cand(b), NULL, name, false, in);
  pthread_mutex_unlock(&b->mu);
  lemon_str_copy(out->backend, sizeof(out->backend), in->cand.kind);
  out->vram = in->vram;
  out->ram = in->ram;
  if (flm) {
    free(pl);
    out->place = BACKENDS_PLACE_NPU;
    lemon_str_copy(out->backend, sizeof(out->backend), "flm");
    out->vram = 0;
    return 0;
  }
  /* the header is read without the lock: it may take a while */
  if (backends_model_path(b->data_dir, name, path, sizeof(path), err) < 0 ||
      backends_gguf_read_model(path, &info, err) < 0) {
    free(pl);
    return -1;
  }
  out->layers = info.block_count < 1000000 ? (int)info.block_count : 0;
  rc = backends_place(b, in, path, name, BACKENDS_PLACE_FOR_PLAN, pl, err);
  if (rc < 0 && err->code != LEMON_ERR_TOO_LARGE) {
    free(pl);
    return -1;
  }
  if (rc < 0) {
    out->place = BACKENDS_PLACE_TOO_LARGE;
    out->need = pl->fit.need;
    out->ctx = pl->fit.ctx;
    lemon_str_copy(out->text, sizeof(out->text), err->msg);
    lemon_err_clear(err);
  } else {
    describe(pl, out);
  }
  free(pl);
  return 0;
}
