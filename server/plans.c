/* GET /api/v1/plans and /api/v1/plans/{model}: where each stored model
 * would go if it were loaded now (on the GPU, partly offloaded, split
 * over the GPUs, across the workers, on the CPU, on the NPU, or too large
 * here), as the load places it (backends_plan_model); the web app's
 * Models page shows it. Read only: nothing is started, evicted or probed
 * for it */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-private.h"

#define PLANS_MAX_MODELS 256
#define MIB (1024.0 * 1024.0)

/* one line for people: the same words in the page and in a curl answer */
static void summary(const struct backends_model_plan *p, char *out,
                    size_t cap) {
  switch (p->place) {
  case BACKENDS_PLACE_GPU:
    snprintf(out, cap, "fits on the GPU (%s, %.0f MiB)", p->backend,
             p->need / MIB);
    break;
  case BACKENDS_PLACE_PARTIAL:
    snprintf(out, cap, "partial offload (%d of %d layers on %s)", p->gpu_layers,
             p->layers, p->backend);
    break;
  case BACKENDS_PLACE_CPU:
    snprintf(out, cap, "CPU (%.0f MiB of RAM)", p->need / MIB);
    break;
  case BACKENDS_PLACE_NPU:
    snprintf(out, cap, "NPU (FastFlowLM)");
    break;
  case BACKENDS_PLACE_TOO_LARGE:
    snprintf(out, cap, "too large: %s", p->text);
    break;
  case BACKENDS_PLACE_SPLIT:
    snprintf(out, cap, "split over %.150s (%s, tensor split %.150s, %.0f MiB)",
             p->devices, p->backend, p->tensor_split, p->need / MIB);
    break;
  case BACKENDS_PLACE_WORKERS:
    snprintf(out, cap, "across workers %.300s (tensor split %.150s, %.0f MiB)",
             p->rpc, p->tensor_split, p->need / MIB);
    break;
  }
}

static cJSON *plan_json(const char *name, const struct backends_model_plan *p) {
  cJSON *o = cJSON_CreateObject();
  char line[LEMON_ERR_MSG_MAX + 512];

  if (o == NULL)
    return NULL;
  summary(p, line, sizeof(line));
  cJSON_AddStringToObject(o, "id", name);
  cJSON_AddStringToObject(o, "plan", backends_place_name(p->place));
  cJSON_AddStringToObject(o, "backend", p->backend);
  cJSON_AddNumberToObject(o, "gpu_layers", p->gpu_layers);
  cJSON_AddNumberToObject(o, "layers", p->layers);
  cJSON_AddNumberToObject(o, "ctx", p->ctx);
  cJSON_AddNumberToObject(o, "need_bytes", (double)p->need);
  cJSON_AddNumberToObject(o, "ram_bytes", (double)p->ram);
  cJSON_AddNumberToObject(o, "vram_bytes", (double)p->vram);
  cJSON_AddStringToObject(o, "summary", line);
  /* where exactly, as the start would place it */
  if (p->devices[0])
    cJSON_AddStringToObject(o, "devices", p->devices);
  if (p->rpc[0])
    cJSON_AddStringToObject(o, "rpc", p->rpc);
  if (p->tensor_split[0])
    cJSON_AddStringToObject(o, "tensor_split", p->tensor_split);
  if (p->placement[0])
    cJSON_AddStringToObject(o, "placement", p->placement);
  return o;
}

static enum server_result send_root(struct server *s, struct server_conn *conn,
                                    cJSON *root) {
  char *out = root ? cJSON_PrintUnformatted(root) : NULL;
  enum server_result rc;

  cJSON_Delete(root);
  if (out == NULL)
    return server_send_error(s, conn, 500, "server_error", NULL,
                             "out of memory");
  rc = server_send_json(s, conn, 200, out);
  free(out);
  return rc;
}

/* one model's plan, or an error in the OpenAI shape (404 when missing) */
static enum server_result one(struct server *s, struct server_conn *conn,
                              const char *name) {
  struct backends_model_plan p;
  struct lemon_err err = {0};

  if (backends_plan_model(s->b, name, &p, &err) < 0)
    return server_send_lemon_err(s, conn, &err);
  return send_root(s, conn, plan_json(name, &p));
}

/* every stored model; one whose header cannot be read is listed with
 * "plan": null and the reason, so one bad file does not hide the rest */
static enum server_result all(struct server *s, struct server_conn *conn) {
  struct lemon_err err = {0};
  struct backends_model *m = calloc(PLANS_MAX_MODELS, sizeof(*m));
  struct backends_model_plan p;
  char msg[LEMON_ERR_MSG_MAX];
  cJSON *root, *data;
  int n = 0, i;

  if (m == NULL)
    return SERVER_NO;
  if (backends_list_models(s->data_dir, m, PLANS_MAX_MODELS, &n, &err) < 0) {
    free(m);
    return server_send_lemon_err(s, conn, &err);
  }
  root = cJSON_CreateObject();
  data = root ? cJSON_AddArrayToObject(root, "data") : NULL;
  for (i = 0; i < n && data; i++) {
    cJSON *o;

    lemon_err_clear(&err);
    if (backends_plan_model(s->b, m[i].name, &p, &err) == 0) {
      cJSON_AddItemToArray(data, plan_json(m[i].name, &p));
      continue;
    }
    /* the reason names the file: the data directory is cleaned out of
     * it, as from every other error message */
    server_clean_message(s, err.msg, msg, sizeof(msg));
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", m[i].name);
    cJSON_AddNullToObject(o, "plan");
    cJSON_AddStringToObject(o, "summary", msg);
    cJSON_AddItemToArray(data, o);
  }
  free(m);
  return send_root(s, conn, root);
}

enum server_result server_plans_route(const struct server_call *k) {
  return k->tail ? one(k->s, k->c, k->tail) : all(k->s, k->c);
}
