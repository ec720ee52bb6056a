/* backends/plan.c: backends_plan_model, the memory plan of a stored model
 * for the web app's Models page, against GGUF headers of known shapes in
 * a real store and a real supervisor (backends_new) with given RAM and
 * candidates: the whole model on a large GPU, part of its layers on a
 * small one, the CPU when it is the only candidate, too large when it
 * fits nowhere; a missing model and a bad name are errors */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/backends.h"

#define GIB (1ull << 30)

struct buf {
  unsigned char b[16384];
  size_t n;
};

static char root[64];

static void put(struct buf *b, const void *p, size_t n) {
  assert_true(b->n + n <= sizeof(b->b));
  memcpy(b->b + b->n, p, n);
  b->n += n;
}

static void u32(struct buf *b, uint32_t v) {
  unsigned char x[4] = {v, v >> 8, v >> 16, v >> 24};

  put(b, x, 4);
}

static void u64(struct buf *b, uint64_t v) {
  u32(b, (uint32_t)v);
  u32(b, (uint32_t)(v >> 32));
}

static void str(struct buf *b, const char *s) {
  u64(b, strlen(s));
  put(b, s, strlen(s));
}

static void kv_u32(struct buf *b, const char *k, uint32_t v) {
  str(b, k);
  u32(b, 4);
  u32(b, v);
}

/* a llama header of layers f16 ffn tensors (embd x ffn each), written
 * as a sparse file of its full size to <root>/models/<name>.gguf */
static void write_model(const char *name, uint32_t layers, uint32_t embd,
                        uint32_t ffn) {
  struct buf *b = calloc(1, sizeof(*b));
  char path[256], t[32];
  uint64_t off = 0;
  uint32_t i;
  int fd;

  assert_non_null(b);
  put(b, "GGUF", 4);
  u32(b, 3);
  u64(b, layers);
  u64(b, 6);
  str(b, "general.architecture");
  u32(b, 8);
  str(b, "llama");
  kv_u32(b, "llama.block_count", layers);
  kv_u32(b, "llama.context_length", 4096);
  kv_u32(b, "llama.embedding_length", embd);
  kv_u32(b, "llama.attention.head_count", 32);
  kv_u32(b, "llama.attention.head_count_kv", 8);
  for (i = 0; i < layers; i++) {
    snprintf(t, sizeof(t), "blk.%u.ffn_up.weight", i);
    str(b, t);
    u32(b, 2);
    u64(b, embd);
    u64(b, ffn);
    u32(b, 1); /* f16 */
    u64(b, off);
    off += (uint64_t)embd * ffn * 2;
  }
  while (b->n % 32)
    put(b, "", 1);
  snprintf(path, sizeof(path), "%s/models/%s.gguf", root, name);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, b->b, b->n), (ssize_t)b->n);
  assert_int_equal(ftruncate(fd, (off_t)(b->n + off)), 0);
  close(fd);
  free(b);
}

static int setup(void **state) {
  char models[96];

  (void)state;
  snprintf(root, sizeof(root), "/tmp/lemon-plan-XXXXXX");
  assert_non_null(mkdtemp(root));
  snprintf(models, sizeof(models), "%s/models", root);
  assert_int_equal(mkdir(models, 0755), 0);
  write_model("small", 32, 4096, 11008); /* about 2.75 GiB */
  write_model("huge", 80, 8192, 28672);  /* about 35 GiB */
  return 0;
}

static int teardown(void **state) {
  char cmd[128];

  (void)state;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
  return system(cmd) == 0 ? 0 : -1;
}

/* a supervisor with a GPU of vram (0: the CPU alone) before the CPU */
static struct backends *sup(uint64_t ram, uint64_t vram, FILE *log) {
  struct backends_opts o = {0};
  struct backends *b = NULL;
  struct lemon_err err = {0};
  int n = 0;

  o.data_dir = root;
  o.log = log;
  o.ram_bytes = ram;
  if (vram) {
    snprintf(o.cand[n].kind, sizeof(o.cand[n].kind), "vulkan");
    snprintf(o.cand[n].device, sizeof(o.cand[n].device), "Vulkan0");
    o.cand[n++].vram_bytes = vram;
  }
  snprintf(o.cand[n++].kind, sizeof(o.cand[0].kind), "cpu");
  o.n_candidates = n;
  assert_int_equal(backends_new(&o, &b, &err), 0);
  return b;
}

static void test_places(void **state) {
  FILE *log = fopen("/dev/null", "w");
  struct backends_model_plan p;
  struct lemon_err err = {0};
  struct backends *b;

  (void)state;
  assert_non_null(log);
  /* a 16 GiB GPU holds the small model whole */
  b = sup(32 * GIB, 16 * GIB, log);
  assert_int_equal(backends_plan_model(b, "small", &p, &err), 0);
  assert_int_equal(p.place, BACKENDS_PLACE_GPU);
  assert_string_equal(backends_place_name(p.place), "gpu");
  assert_string_equal(p.backend, "vulkan");
  assert_int_equal(p.layers, 32);
  assert_int_equal(p.ctx, 4096);
  assert_true(p.need > 2 * GIB && p.need < 16 * GIB);
  assert_true(p.vram == 16 * GIB && p.ram == 32 * GIB);
  /* the 35 GiB one: part of its layers on it, the rest in RAM */
  assert_int_equal(backends_plan_model(b, "huge", &p, &err), 0);
  assert_int_equal(p.place, BACKENDS_PLACE_PARTIAL);
  assert_string_equal(backends_place_name(p.place), "partial");
  assert_int_equal(p.layers, 80);
  assert_true(p.gpu_layers > 0 && p.gpu_layers < 80);
  /* nothing was started for a plan */
  assert_int_equal(backends_plan_model(b, "nosuch", &p, &err), -1);
  assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
  lemon_err_clear(&err);
  assert_int_equal(backends_plan_model(b, "../etc/passwd", &p, &err), -1);
  assert_int_equal(err.code, LEMON_ERR_INVALID_ARG);
  lemon_err_clear(&err);
  backends_free(b);

  /* a 1 GiB GPU: the small model partly; the huge one fits in neither
   * the 8 GiB of RAM nor the GPU: refused, with the planner's words */
  b = sup(8 * GIB, 1 * GIB, log);
  assert_int_equal(backends_plan_model(b, "small", &p, &err), 0);
  assert_int_equal(p.place, BACKENDS_PLACE_PARTIAL);
  assert_true(p.gpu_layers > 0 && p.gpu_layers < 32);
  assert_int_equal(backends_plan_model(b, "huge", &p, &err), 0);
  assert_int_equal(p.place, BACKENDS_PLACE_TOO_LARGE);
  assert_string_equal(backends_place_name(p.place), "too_large");
  assert_non_null(strstr(p.text, "model 'huge' needs about"));
  assert_non_null(strstr(p.text, "8192 MiB of RAM and 1024 MiB of VRAM"));
  assert_int_equal(err.code, LEMON_OK);
  backends_free(b);

  /* the CPU alone */
  b = sup(32 * GIB, 0, log);
  assert_int_equal(backends_plan_model(b, "small", &p, &err), 0);
  assert_int_equal(p.place, BACKENDS_PLACE_CPU);
  assert_string_equal(p.backend, "cpu");
  assert_true(p.vram == 0 && p.gpu_layers == 0 && p.need > 2 * GIB);
  backends_free(b);
  fclose(log);
}

/* a supervisor whose ROCm candidate spans two GPUs of vram each */
static struct backends *sup2(uint64_t ram, uint64_t vram, FILE *log) {
  struct backends_opts o = {0};
  struct backends *b = NULL;
  struct lemon_err err = {0};

  o.data_dir = root;
  o.log = log;
  o.ram_bytes = ram;
  snprintf(o.cand[0].kind, sizeof(o.cand[0].kind), "rocm");
  snprintf(o.cand[0].exe, sizeof(o.cand[0].exe), "/bin/false");
  o.cand[0].vram_bytes = vram;
  o.cand[0].n_gpus = 2;
  snprintf(o.cand[0].gpus[0].device, sizeof(o.cand[0].gpus[0].device),
           "ROCm0");
  snprintf(o.cand[0].gpus[1].device, sizeof(o.cand[0].gpus[1].device),
           "ROCm1");
  o.cand[0].gpus[0].free_bytes = vram;
  o.cand[0].gpus[1].free_bytes = vram;
  snprintf(o.cand[1].kind, sizeof(o.cand[1].kind), "cpu");
  snprintf(o.cand[1].exe, sizeof(o.cand[1].exe), "/bin/false");
  o.n_candidates = 2;
  assert_int_equal(backends_new(&o, &b, &err), 0);
  return b;
}

/* the plan is the placement a start makes: a model larger than one GPU
 * and the RAM is split over both GPUs (not "too large"), with the devices
 * and tensor split the child would get; one too large for both GPUs and
 * the RAM is refused with those sizes, by the plan and before a load
 * starts (or evicts) anything */
static void test_places_split(void **state) {
  FILE *log = fopen("/dev/null", "w");
  struct backends_model_plan p;
  struct backends_status *st = calloc(1, sizeof(*st));
  struct backends_lease l;
  struct lemon_err err = {0};
  struct backends *b;

  (void)state;
  assert_non_null(log);
  assert_non_null(st);
  b = sup2(8 * GIB, 24 * GIB, log);
  assert_int_equal(backends_plan_model(b, "huge", &p, &err), 0);
  assert_string_equal(backends_place_name(p.place), "split");
  assert_string_equal(p.backend, "rocm");
  assert_string_equal(p.devices, "ROCm0,ROCm1");
  assert_string_equal(p.tensor_split, "24576,24576");
  assert_int_equal(p.gpu_layers, 81);
  assert_string_equal(p.placement,
                      "split-mode layer over ROCm0,ROCm1, tensor split 24576,24576");
  /* the small one fits the first GPU: no split, no device list */
  assert_int_equal(backends_plan_model(b, "small", &p, &err), 0);
  assert_int_equal(p.place, BACKENDS_PLACE_GPU);
  assert_string_equal(p.devices, "");
  backends_free(b);

  b = sup2(8 * GIB, 8 * GIB, log);
  assert_int_equal(backends_plan_model(b, "huge", &p, &err), 0);
  assert_int_equal(p.place, BACKENDS_PLACE_TOO_LARGE);
  assert_non_null(strstr(p.text, "8192 MiB of RAM and 16384 MiB of VRAM"));
  assert_int_equal(backends_acquire(b, "huge", BACKENDS_CHAT, &l, &err), -1);
  assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
  assert_non_null(strstr(err.msg, "8192 MiB of RAM and 16384 MiB of VRAM"));
  backends_snapshot(b, st);
  assert_int_equal(st->n_children, 0); /* nothing was placed for it */
  backends_free(b);
  free(st);
  fclose(log);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_places),
      cmocka_unit_test(test_places_split),
  };

  return cmocka_run_group_tests(tests, setup, teardown);
}
