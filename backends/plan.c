/* the memory plan of a stored model, for the web app's Models page: the
 * same plan a load makes before anything starts (backends_sup_plan with
 * the machine's RAM and the first usable candidate's VRAM), so the page
 * says "too large" exactly when a load would be refused */
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
  }
  return "cpu";
}

int backends_plan_model(struct backends *b, const char *name,
                        struct backends_model_plan *out,
                        struct lemon_err *err) {
  struct backends_gguf_info info;
  struct backends_fit fit;
  char path[4200];
  bool flm;
  int ci;

  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&b->mu);
  flm = backends_flm_find(b, name) != NULL;
  ci = backends_sup_first_cand(b);
  if (ci >= 0 && ci < b->o.n_candidates) {
    lemon_str_copy(out->backend, sizeof(out->backend), b->o.cand[ci].kind);
    out->vram = b->o.cand[ci].vram_bytes;
  }
  out->ram = b->o.ram_bytes;
  pthread_mutex_unlock(&b->mu);
  if (flm) {
    out->place = BACKENDS_PLACE_NPU;
    lemon_str_copy(out->backend, sizeof(out->backend), "flm");
    out->vram = 0;
    return 0;
  }
  /* the header is read without the lock: it may take a while */
  if (backends_model_path(b->data_dir, name, path, sizeof(path), err) < 0 ||
      backends_gguf_read_model(path, &info, err) < 0)
    return -1;
  out->layers = info.block_count < 1000000 ? (int)info.block_count : 0;
  if (backends_fit_plan(&info, name, b->o.ctx_size, out->ram, out->vram, &fit,
                        err) < 0) {
    if (err->code != LEMON_ERR_TOO_LARGE)
      return -1;
    out->place = BACKENDS_PLACE_TOO_LARGE;
    out->need = fit.need;
    out->ctx = fit.ctx;
    lemon_str_copy(out->text, sizeof(out->text), err->msg);
    lemon_err_clear(err);
    return 0;
  }
  out->need = fit.need;
  out->ctx = fit.ctx;
  if (out->vram == 0)
    out->place = BACKENDS_PLACE_CPU;
  else if (fit.partial) {
    out->place = BACKENDS_PLACE_PARTIAL;
    out->gpu_layers = fit.n_gpu_layers;
  } else
    out->place = BACKENDS_PLACE_GPU;
  return 0;
}
