/* backends: the local model store and the supervision of llama-server
 * children. Models are GGUF files under $XDG_DATA_HOME/lemon/models, named
 * by validated names. Each loaded (model, role) pair runs as one
 * llama-server child on a free loopback port, started from the installed
 * backend of the first candidate that works (ROCm -> Vulkan -> CPU,
 * provisioned on demand), health-checked before use and restarted on the
 * next request after it dies. A supervisor thread forks every child (so
 * the parent-death signal is tied to a thread that lives as long as
 * lemon), reaps with non-blocking waitpid and prefixes child log lines into
 * lemon's log. Several models can be loaded at once (--max-loaded per role,
 * least recently used unloaded first, --idle-timeout), each child serving
 * concurrent requests in its --parallel slots. Before a model is started its
 * GGUF header gives the memory it needs: on a GPU that is too small part
 * of its layers are offloaded, and a model that fits nowhere is refused. */
#ifndef LEMON_BACKENDS_H
#define LEMON_BACKENDS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "provision/provision.h"
#include "util/err.h"

#define BACKENDS_NAME_MAX 64 /* model names: 1..63 of [A-Za-z0-9._:-] */
/* the rule of backends_model_name_valid, as messages state it */
#define BACKENDS_NAME_RULE \
	"use 1-63 of A-Z a-z 0-9 . _ : - not starting with '-' or '.', without '..'"
#define BACKENDS_MAX_CANDIDATES 8
#define BACKENDS_MAX_CHILDREN 8   /* (model, role) children at once */
#define BACKENDS_MAX_FALLBACKS 16 /* fallback history kept */

/* ---- local models (backends/models.c, backends/gguf.c) ---------------- */

/* true for 1..63 characters of [A-Za-z0-9._:-], not starting with '.' or
 * '-' and never "..": a name can never leave the models directory, nor
 * be taken for an option where it meets a command line. The store still
 * removes an entry an older lemon accepted with a leading '-'
 * (backends_delete_model); nothing else takes such a name. */
bool backends_model_name_valid(const char *name);

/* lemon's data directory: data_dir when given, else $XDG_DATA_HOME/lemon,
 * else $HOME/.local/share/lemon; INVALID_ARG when none can be formed */
int backends_data_dir(const char *data_dir, char *out, size_t cap,
		      struct lemon_err *err);

/* "<data>/models/<name>.gguf"; INVALID_ARG for a bad name, NOT_FOUND when
 * the file does not exist */
int backends_model_path(const char *data_dir, const char *name, char *out,
			size_t cap, struct lemon_err *err);

struct backends_gguf_info {
	uint32_t version;   /* 2 or 3 */
	uint64_t n_tensors;
	uint64_t n_kv;
	char arch[32];      /* general.architecture, "" when absent */
	uint64_t header_len; /* bytes up to the end of the tensor infos */
	/* "<arch>.*" keys; 0 when absent */
	uint64_t context_length;
	uint64_t block_count;
	uint64_t embedding_length;
	uint64_t head_count;
	uint64_t head_count_kv;
	bool has_file_type;
	uint32_t file_type;  /* general.file_type (quantization) */
	bool has_chat_template;
	uint64_t chat_template_off; /* file offset of tokenizer.chat_template's */
	uint64_t chat_template_len; /* text, and its length in bytes */
	uint32_t alignment;  /* general.alignment, 32 when absent */
	uint64_t n_params;   /* elements over all tensors */
	uint64_t tensor_bytes; /* sum of the tensors' sizes */
	uint64_t layer_bytes;  /* the part in "blk.N.*" tensors */
	uint64_t data_len;   /* end of the last tensor in the data section */
};

/* parses a GGUF header from (buf, len) with every length and count checked
 * against the buffer: INVALID_DATA for a bad magic, version, value type,
 * tensor type, dimension, offset or truncation (naming the offset) */
int backends_gguf_parse(const unsigned char *buf, size_t len,
			struct backends_gguf_info *out, struct lemon_err *err);

/* the least size of a file with this header: where its data section
 * starts (the header's end rounded up to the alignment) plus the extent of
 * its tensors; the header alone when it has no tensors */
uint64_t backends_gguf_min_size(const struct backends_gguf_info *info);

/* INVALID_DATA "truncated gguf: its tensors need N bytes, the file has M"
 * when size is below backends_gguf_min_size: a cut-off download or copy */
int backends_gguf_check_size(const struct backends_gguf_info *info,
			     uint64_t size, struct lemon_err *err);

/* "Q4_K_M" for a general.file_type value, "unknown" otherwise */
const char *backends_gguf_ftype_name(uint32_t file_type);

/* parses the header of the GGUF file at path, reading only as much of the
 * file as the header takes (at most 256 MiB); IO when it cannot be read */
int backends_gguf_read_file(const char *path, struct backends_gguf_info *out,
			    struct lemon_err *err);

/* the chat template text recorded in info (read from path by
 * backends_gguf_read_file), NUL-terminated in *out for the caller to free;
 * NOT_FOUND when the model has none, INVALID_DATA when it is longer than
 * max bytes or holds a NUL, IO when the file no longer has it */
int backends_gguf_read_template(const char *path,
				const struct backends_gguf_info *info,
				size_t max, char **out, struct lemon_err *err);

/* backends_gguf_read_file, and for the first part of a split model
 * ("-00001-of-0000N.gguf") the tensors of every part added up */
int backends_gguf_read_model(const char *path, struct backends_gguf_info *out,
			     struct lemon_err *err);

/* memory plan for one model on one device (backends/fit.c) */
struct backends_fit {
	uint64_t need;       /* weights + context + compute, estimated */
	uint64_t weights;
	uint64_t context;    /* KV cache for the context size */
	int n_gpu_layers;    /* -1: every layer on the device (or CPU only) */
	bool partial;        /* part of the layers stay in RAM */
	int ctx;             /* the context given to the child (-c) */
	int ngl;             /* the --n-gpu-layers the child gets: 0 on a CPU */
};

/* llama-server --parallel when the user gave none: on a GPU, decoding is
 * bound by reading the weights once per step, so a step that serves 16
 * sequences costs about what one costs and 16 slots multiply the
 * throughput under load (bench/gpu.sh measures it); the slots share one
 * KV cache of the planned context (--kv-unified), so they cost no memory
 * beyond the compute buffers. A small GPU gets fewer (its compute
 * buffers matter), the CPU 4: there each sequence costs its own compute */
int backends_default_slots(uint64_t vram);

/* how long a starting child may take to answer /health: base_ms (serve's
 * start timeout) plus the time to read model_bytes at 100 MiB/s, the pace
 * of a slow disk or of a gigabit link to an RPC worker. A fixed minute
 * killed healthy loads of a 40 GB model (over 6 minutes at that pace);
 * Ollama's load timeout is 5 minutes for the same reason */
int64_t backends_start_allowance_ms(int64_t base_ms, uint64_t model_bytes);

/* plans where a model goes: everything on the GPU when it fits in vram,
 * else the layers that fit (partial offload), else TOO_LARGE naming the
 * sizes when it fits nowhere. vram 0: a CPU backend; ram 0: unknown (no
 * check). ctx 0: 4096; either way clamped to the model's trained context.
 * The child is started with exactly out->ctx and out->ngl. */
int backends_fit_plan(const struct backends_gguf_info *m, const char *name,
		      int ctx, uint64_t ram, uint64_t vram,
		      struct backends_fit *out, struct lemon_err *err);

/* ---- several GPUs of one machine (backends/multigpu.c) ---- */
#define BACKENDS_MAX_SPLIT_GPUS 16
struct backends_gpu_mem {
	char device[16];     /* llama.cpp's name: "CUDA0", "ROCm1", "Vulkan0" */
	uint64_t free_bytes; /* what its driver reports free (else its size) */
};

struct backends_split_plan {
	int n_devices;          /* 1: one GPU, no split */
	bool split;             /* --split-mode layer over devices */
	char devices[BACKENDS_MAX_SPLIT_GPUS * 17];      /* --device */
	char tensor_split[BACKENDS_MAX_SPLIT_GPUS * 21]; /* MiB free each */
	struct backends_fit fit; /* over the devices' memory together */
	char text[600];         /* the plan, for the log and the user */
	/* per device used: its index in the gpus given and the bytes of
	 * the model planned on it (in proportion to its free memory) */
	int idx[BACKENDS_MAX_SPLIT_GPUS];
	uint64_t bytes[BACKENDS_MAX_SPLIT_GPUS];
};

/* the model on the largest GPU alone when it fits there; else split by
 * layers over every GPU of the first listed GPU's vendor (only: a
 * --device list, "" or NULL for all) that has at least 1 MiB free, in
 * proportion to their free memory, partially offloaded when even
 * together they are too small;
 * TOO_LARGE when it fits nowhere with ram; NOT_FOUND without a GPU */
int backends_multigpu_plan(const struct backends_gguf_info *m,
			   const char *name, int ctx, uint64_t ram,
			   const struct backends_gpu_mem *gpus, int n_gpus,
			   const char *only, struct backends_split_plan *out,
			   struct lemon_err *err);

/* imports the GGUF file at src as name: src must be a regular file (a
 * FIFO or device is refused with INVALID_ARG, never opened for a blocking
 * read); its bytes are copied into the store, and the copy (not src) is
 * checked (header, and not shorter than its tensors: INVALID_DATA naming
 * both sizes), made durable and published; an existing model of that name
 * is replaced. BUSY while a pull of name runs. */
int backends_pull_file(const char *data_dir, const char *src,
		       const char *name, struct backends_gguf_info *info,
		       struct lemon_err *err);

/* imports the vision projector GGUF at src (architecture "clip") as
 * <models>/NAME.mmproj.gguf beside model name, like backends_pull_file;
 * INVALID_DATA for a GGUF that is not a projector */
int backends_pull_mmproj(const char *data_dir, const char *src,
			 const char *name, struct lemon_err *err);
/* both at once (`lemon pull --file PATH --mmproj PROJ NAME`): under one
 * hold of the name's lock, both copies checked before either is
 * published, and published together (the model first) while no start of
 * name is loading, so no child opens the new model with the old projector */
int backends_pull_file_mmproj(const char *data_dir, const char *src,
			      const char *mmsrc, const char *name,
			      struct backends_gguf_info *info,
			      struct lemon_err *err);

/* true when model_path (backends_model_path's answer) has a vision
 * projector, its path then in out: "<model_path less .gguf>.mmproj.gguf"
 * for a file model, "NAME.mmproj.gguf" beside the directory for a split
 * model's first part NAME/x-00001-of-N.gguf */
bool backends_mmproj_beside(const char *model_path, char *out, size_t cap);

/* true when model name in the store has a vision projector */
bool backends_model_has_mmproj(const char *data_dir, const char *name);

struct backends_model {
	char name[BACKENDS_NAME_MAX];
	uint64_t size;
	int64_t mtime;
};

/* the models in the store, sorted by name; at most cap */
int backends_list_models(const char *data_dir, struct backends_model *out,
			 int cap, int *n, struct lemon_err *err);

/* ---- supervision (backends/supervise.c, backends/spawn.c) ------------- */

struct backends_candidate {
	char kind[16];   /* "rocm", "vulkan", "cpu" */
	char target[16]; /* rocm family ("gfx110X"), "" otherwise */
	char env[64];    /* extra "NAME=value" for the child, "" when none */
	/* the llama.cpp device the child must run on ("CUDA0", "Vulkan0"),
	 * passed as --device so that a GPU bundle that finds no GPU fails
	 * (and lemon falls back, saying why) instead of silently running
	 * on the CPU; "" for the CPU candidate; serve --device may name
	 * several: "CUDA0,CUDA1" */
	char device[64];
	char exe[4096];  /* llama-server to run; "" to find or provision it */
	uint64_t vram_bytes; /* the device's memory; 0: CPU or unknown */
	/* the GPUs of this vendor the child may span (llama-server
	 * --split-mode layer) when the model does not fit `device` alone:
	 * their llama.cpp names as seen under split_env, and free memory;
	 * fewer than 2: no split */
	int n_gpus;
	struct backends_gpu_mem gpus[BACKENDS_MAX_SPLIT_GPUS];
	char split_env[64]; /* the child's env for a split ("": env) */
};

/* one GPU detection saw for a candidate's backend */
struct backends_gpu_seen {
	char device[16];     /* CUDA: llama.cpp's name ("CUDA1"); else "" */
	int vk_index;        /* in the Vulkan loader's list; -1: unknown */
	uint16_t vendor;     /* PCI vendor id */
	bool igpu;           /* never spanned */
	uint64_t free_bytes; /* free (else total) memory */
};

/* fills c->gpus, c->n_gpus (0 unless at least two) and c->split_env
 * from the GPUs detection saw for c's backend, in order (the first: the
 * one c runs on; an iGPU there: no span): discrete GPUs of its vendor, named as the child will see them (Vulkan:
 * Vulkan0.. under GGML_VK_VISIBLE_DEVICES of their loader indices; ROCm:
 * ROCm0..). No span for Vulkan when the user set GGML_VK_VISIBLE_DEVICES
 * (vk_user_list), nor for ROCm when a *_VISIBLE_DEVICES variable hides
 * GPUs from HIP (rocm_hidden) */
void backends_multigpu_span(struct backends_candidate *c,
			    const struct backends_gpu_seen *g, int n,
			    bool vk_user_list, bool rocm_hidden);

/* a `lemon worker` (backends/workers.c): its rpc-server's address and its
 * lemon endpoint's port */
#define BACKENDS_MAX_WORKERS 8
struct backends_worker_addr {
	char host[64]; /* an IP address */
	int port;      /* rpc-server */
	int api_port;  /* GET /api/v1/worker: port + 1 */
};

struct backends_opts {
	const char *data_dir;   /* NULL: backends_data_dir's default */
	const char *mirror;     /* passed to the provision layer */
	const char *compat_dir; /* NULL: the built-in compat data */
	int ctx_size;           /* llama-server -c, shared by the slots; 0: 4096;
				 * never above the model's trained context */
	int start_timeout_ms;   /* 0: 60000 */
	int n_candidates;       /* tried in order */
	struct backends_candidate cand[BACKENDS_MAX_CANDIDATES];
	FILE *log;              /* NULL: stderr */
	uint64_t ram_bytes;     /* the machine's RAM; 0: unknown (no check) */
	int parallel;           /* llama-server --parallel; 0: chosen per
				 * device (backends_default_slots) */
	int max_loaded;         /* children per role; 0: as many as fit */
	int idle_timeout_s;     /* unload after this long unused; 0: never */
	/* a model that fits nowhere here is placed across these workers'
	 * free memory (llama-server --rpc --tensor-split) */
	int n_workers;
	struct backends_worker_addr workers[BACKENDS_MAX_WORKERS];
};

/* "HOST:PORT[,HOST:PORT...]" into o->workers; INVALID_ARG when malformed */
int backends_workers_parse_list(const char *s, struct backends_opts *o,
				struct lemon_err *err);

/* what a worker's endpoint says; error "" when it is usable */
struct backends_worker_info {
	char backend[16];
	char device[64];
	char version[32];
	uint64_t free_bytes;
	bool rpc_running;
	char error[256]; /* why it is not used */
};

/* the JSON of GET /api/v1/worker, checked strictly (untrusted bytes):
 * INVALID_DATA unless an object with "lemon_worker":1, a known backend,
 * printable short strings and free_bytes an integer in 0..2^50 */
int backends_worker_parse_json(const char *buf, size_t len,
			       struct backends_worker_info *out,
			       struct lemon_err *err);

/* slots for a model placed on workers when --parallel is not given: its
 * layers run there, so the workers' devices decide (the smallest free
 * memory of n GPU workers, as backends_default_slots), not the head's own
 * candidate (a CPU head gave a model on two H200 workers 4 slots); any
 * CPU worker among them: the CPU's 4 */
int backends_rpc_default_slots(const struct backends_worker_info *w, int n);

/* asks the worker (connect and answer each within timeout_ms), then,
 * with check_rpc, checks that its rpc-server's port accepts connections
 * (not while one of lemon's children uses it: an rpc-server serves one
 * client at a time and queues one more, so further probes would wait out
 * their timeout and call a busy worker unusable); NETWORK when
 * unreachable or silent, INVALID_DATA on a bad answer */
int backends_worker_probe(const struct backends_worker_addr *w, int timeout_ms,
			  bool check_rpc, struct backends_worker_info *out,
			  struct lemon_err *err);

enum backends_role {
	BACKENDS_CHAT = 0, /* completions and chat */
	BACKENDS_EMBED,    /* a child started with --embeddings */
	BACKENDS_RERANK,   /* a child started with --reranking */
};

struct backends;

/* copies opts and starts the supervisor thread; free with backends_free */
int backends_new(const struct backends_opts *opts, struct backends **out,
		 struct lemon_err *err);

/* makes sure the first candidate that can be had is installed (first run:
 * provisions it); candidates that cannot be installed are recorded as
 * fallbacks. BROKEN_SYSTEM when none can be. */
int backends_prepare(struct backends *b, struct lemon_err *err);

struct backends_lease {
	int port;         /* loopback port of the ready child */
	int slot;
	unsigned gen;     /* start generation, for backends_report_dead */
	char backend[16]; /* the kind it runs on */
};

/* returns a ready child for (model, role), loading it when needed and
 * waiting up to the start timeout; concurrent requests for a model being
 * loaded wait for that one child. The lease counts as a request in flight
 * until backends_release or backends_report_dead: a child with leases is
 * never unloaded for another model or for idleness. When max_loaded
 * children of the role are loaded, the least recently used one without
 * leases is unloaded first; when every one has leases it waits up to the
 * start timeout for one to be released. INVALID_ARG: bad name; NOT_FOUND:
 * no such model; INVALID_DATA: not a valid GGUF, or llama-server cannot
 * load the file (the backend stays in use for other models); TOO_LARGE:
 * it fits in neither RAM nor VRAM (nothing is started, the message names
 * the sizes); BUSY: no child could be had in time (every loaded one busy)
 * or shutting down; BROKEN_SYSTEM: every candidate failed (the message
 * says why). On failure lease->port is 0. */
int backends_acquire(struct backends *b, const char *model,
		     enum backends_role role, struct backends_lease *lease,
		     struct lemon_err *err);

/* the caller could not talk to the lease's child: the lease is released
 * and the child, unless its /health still answers, killed so that the
 * next backends_acquire starts a new one */
void backends_report_dead(struct backends *b, struct backends_lease *l);

/* a request on this lease has finished: the lease is released (a second
 * release of the same lease does nothing), and the child's idle time (and
 * its place in the LRU order) counts from now */
void backends_release(struct backends *b, struct backends_lease *l);

/* loads (both roles are separate; load starts the chat child); the
 * lease is released before it returns: it holds no request */
int backends_load(struct backends *b, const char *model,
		  struct backends_lease *lease, struct lemon_err *err);

/* stops every child of the model; NOT_FOUND when none is loaded */
int backends_unload(struct backends *b, const char *model,
		    struct lemon_err *err);

struct backends_child_status {
	char model[BACKENDS_NAME_MAX];
	enum backends_role role;
	char state[12];   /* idle, queued, loading, ready, stopping, failed */
	char backend[16]; /* the candidate it runs (or last ran) on */
	int pid;          /* loading or ready; 0 otherwise */
	int port;
	int64_t idle_s;   /* ready: seconds since its last request; -1 */
	int n_gpu_layers; /* ready with part of the layers offloaded; -1 */
	int slots;        /* its --parallel; 0 when not started */
	int leases;       /* requests in flight */
	int crashes;      /* exits while ready since loaded (each restarts) */
	char error[400];  /* failed: why */
	char placement[400]; /* on workers: "rpc H:P,..., tensor split ..."; "" */
};

struct backends_fallback_status {
	int64_t time;     /* seconds since the epoch */
	char model[BACKENDS_NAME_MAX]; /* "" when no model (preparing) */
	char from[16];
	char to[16];      /* "" when nothing was left */
	char reason[400];
};

struct backends_candidate_status {
	char backend[16];
	char device[64]; /* llama.cpp's --device for it, "" for none */
	char exe[4096];
	bool failed;
};

/* the bundle installs this process has made through its backends object
 * (backends/install.c): the first run's, a fallback candidate's bundle
 * provisioned on demand, and those backends_install was asked for */
struct backends_install_counts {
	int in_progress;
	uint64_t completed; /* installed their bundle */
	uint64_t failed;    /* failed, or were cancelled */
	uint64_t bytes;     /* downloaded (a download that starts over counts again) */
};

/* provision_install of a with opts (opts->on_progress, when set, still
 * gets every step), counted in b's install counts: in progress while it
 * runs, then completed or failed, its bytes as they arrive. Fails as
 * provision_install does. */
int backends_install(struct backends *b, const struct compat_backend_asset *a,
		     const struct provision_opts *opts, struct provision_result *res,
		     struct lemon_err *err);

/* a consistent copy of the supervisor's state (about 50 KiB: allocate it) */
struct backends_status {
	int max_loaded;
	int idle_timeout_s;
	int parallel;
	int n_children;
	struct backends_child_status child[BACKENDS_MAX_CHILDREN];
	int n_fallbacks; /* oldest first */
	struct backends_fallback_status fallback[BACKENDS_MAX_FALLBACKS];
	int n_candidates;
	struct backends_candidate_status cand[BACKENDS_MAX_CANDIDATES];
	int n_workers; /* as last checked */
	struct backends_worker_addr worker[BACKENDS_MAX_WORKERS];
	struct backends_worker_info worker_info[BACKENDS_MAX_WORKERS];
	bool worker_checked[BACKENDS_MAX_WORKERS];
	struct backends_install_counts installs;
};

/* probes every worker now (bounded, without the lock held) and records
 * what they said for backends_snapshot; lost and found workers are logged */
void backends_workers_refresh(struct backends *b);

/* asks the workers' refresher (which otherwise probes them every 30 s)
 * to probe them now, at most every 2 s and never while a round runs;
 * returns at once: the next snapshot shows what it found */
void backends_workers_kick(struct backends *b);

/* fills out under the supervisor's lock */
void backends_snapshot(struct backends *b, struct backends_status *out);

/* where a model of the store would go if it were loaded now, by the
 * placement its start makes (backends/place.c: the first usable
 * candidate's GPU, its GPUs together, the workers as last probed; what
 * other loaded models hold on the GPUs left out): the web app's Models
 * page shows it (plan.c) */
enum backends_place {
	BACKENDS_PLACE_GPU,       /* every layer on the GPU (devices: which) */
	BACKENDS_PLACE_PARTIAL,   /* gpu_layers of layers on the GPU(s) */
	BACKENDS_PLACE_CPU,       /* a CPU candidate: all in RAM */
	BACKENDS_PLACE_NPU,       /* a FastFlowLM model: no GGUF plan */
	BACKENDS_PLACE_TOO_LARGE, /* refused: text says why */
	BACKENDS_PLACE_SPLIT,     /* split by layers over devices */
	BACKENDS_PLACE_WORKERS,   /* across the workers in rpc */
};

struct backends_model_plan {
	enum backends_place place;
	char backend[16];   /* the candidate's kind: "vulkan", "cpu" */
	int gpu_layers;     /* PARTIAL: layers on the GPU */
	int layers;         /* the model's layer count, 0 unknown */
	int ctx;            /* the context it would get */
	uint64_t need;      /* estimated bytes (0 for NPU) */
	uint64_t ram, vram; /* what the plan was made against */
	char text[LEMON_ERR_MSG_MAX]; /* TOO_LARGE: the refusal */
	char devices[BACKENDS_MAX_SPLIT_GPUS * 17]; /* --device, "" default */
	char rpc[BACKENDS_MAX_WORKERS * 72];        /* WORKERS: --rpc */
	char tensor_split[BACKENDS_MAX_SPLIT_GPUS * 21]; /* SPLIT, WORKERS */
	char placement[400]; /* SPLIT, WORKERS, GPU elsewhere: as health says */
};

/* the plan for model name: NOT_FOUND when it is not in the store, IO or
 * INVALID_DATA when its header cannot be read */
int backends_plan_model(struct backends *b, const char *name,
			struct backends_model_plan *out, struct lemon_err *err);
/* "gpu", "partial", "cpu", "npu", "too_large", "split", "workers" */
const char *backends_place_name(enum backends_place p);

/* lemon's recent log lines (its supervisor's and the children's, the last
 * 64 KiB) from byte *pos on, at most cap into out; *pos moves past them
 * (first to the oldest byte kept when older ones were overwritten).
 * Returns the bytes copied, 0 when nothing new came */
size_t backends_log_read(struct backends *b, uint64_t *pos, char *out, size_t cap);

/* stops the supervisor and the children (SIGTERM to each process group,
 * SIGKILL after 3 s, reaped within 2 s more or reported and left);
 * backends_acquire answers BUSY from then on while releases stay valid.
 * For shutdown before the HTTP server stops; b may be NULL */
void backends_shutdown(struct backends *b);

/* backends_shutdown, then frees: only once nothing uses b any more (after
 * the HTTP server has stopped); b may be NULL */
void backends_free(struct backends *b);

/* takes the data directory's lock file (<data>/lemon.lock, created with
 * the directory when missing) for as long as *fd stays open: a second
 * `lemon serve` on the same data directory gets BUSY naming the directory
 * and the pid of the server holding it */
int backends_lock_data_dir(const char *data_dir, int *fd,
			   struct lemon_err *err);

/* connects a TCP socket (close-on-exec) to 127.0.0.1:port; -1 with err */
int backends_connect(int port, int timeout_ms, struct lemon_err *err);

/* ---- registry pull and delete (backends/pull.c) ------------------------
 * For the CLI and the HTTP routes (POST /api/v1/pull, /api/pull,
 * /api/v1/delete, DELETE /api/delete). */

/* pulls the registry model name (compat_models_load: shipped models.json
 * merged with the user's) into the store: downloads into
 * <data>/models/.pull-<name>/ (kept across failures so a retry resumes),
 * checks every file with the GGUF header parser, then publishes atomically
 * as <data>/models/<name>.gguf, or for a split model as the directory
 * <data>/models/<name>/ holding all parts under their split names (the
 * path llama-server gets is the first part). progress (may be NULL) sees
 * every step, ending with status "success". INVALID_ARG: bad name;
 * NOT_FOUND: not in the registry or not on the server; BUSY: a pull of
 * the same name (or an import or delete of it) is running; CHECKSUM:
 * digest mismatch (nothing published, the download starts afresh next
 * time); INVALID_DATA: not a GGUF, or shorter than its header's tensors;
 * NETWORK. What is published is the very file that was hashed and checked
 * (see backends/store.c). data_dir NULL: the default data directory. */
int backends_pull_model(const char *data_dir, const char *name,
			provision_pull_cb progress, void *ctx,
			struct lemon_err *err);

/* backends_pull_model into b's data directory, for the server: it ends
 * promptly with BUSY once backends_cancel_pulls(b) was called (the .part
 * files stay, so the next pull resumes) */
int backends_pull(struct backends *b, const char *name,
		  provision_pull_cb progress, void *ctx, struct lemon_err *err);

/* cancels the pulls running through backends_pull(b) and refuses new ones:
 * the server calls it first when it shuts down, so that no download holds
 * up the exit. Safe from any thread; b may be NULL. */
void backends_cancel_pulls(struct backends *b);

/* true once backends_cancel_pulls(b) was called: a pull that then failed
 * with BUSY was cancelled by it (the server says so in the pull's last
 * event instead of the download's own words) */
bool backends_pulls_cancelled(const struct backends *b);

/* removes the model name from the store (file, split directory and any
 * unfinished pull) under the name's pull lock; INVALID_ARG for a bad name,
 * NOT_FOUND when absent, BUSY while a pull or an import of the name runs
 * (it is refused, not waited for). Unloading a running child first is the
 * caller's job. A name an older lemon accepted with a leading '-' is
 * taken here, and only here, so that such an entry can be removed; the
 * server's routes refuse it before (only `lemon rm -- NAME` reaches it). */
int backends_delete_model(const char *data_dir, const char *name,
			  struct lemon_err *err);

/* ---- end of registry pull and delete ----------------------------------- */

#endif
