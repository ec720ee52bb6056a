/* shared between the files of backends/ only */
#ifndef LEMON_BACKENDS_PRIVATE_H
#define LEMON_BACKENDS_PRIVATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "backends/backends.h"

/* a spawned child: its pid (== its process group) and log pipe */
struct backends_proc {
	pid_t pid;
	int log_fd; /* read end of the child's stdout+stderr, -1 when closed */
};

struct backends_spawn {
	const char *exe;
	const char *model_path;
	const char *alias;
	const char *env_extra; /* "NAME=value" or "" */
	int port;
	int ctx_size;
	int parallel;     /* 0: llama-server's default */
	int n_gpu_layers; /* -1: llama-server's default */
	const char *device; /* --device, "" or NULL: llama-server's choice */
	bool embeddings;
	bool reranking;
	bool flm; /* `flm serve` (backends/flm.c), not llama-server */
	const char *rpc;          /* --rpc H:P,...; NULL or "": none */
	const char *tensor_split; /* --tensor-split with rpc or split_layer */
	bool split_layer; /* --split-mode layer over the --device list */
};

/* forks and execs llama-server in its own process group with the parent
 * death signal set; fds other than 0..2 are closed in the child */
int backends_spawn_child(const struct backends_spawn *s,
			 struct backends_proc *out, struct lemon_err *err);

/* a free loopback TCP port (bound and released; the child binds it next) */
int backends_free_port(int *port, struct lemon_err *err);

/* GET /health on 127.0.0.1:port: the HTTP status, or -1 when unreachable */
int backends_http_status(int port, const char *path, int timeout_ms);

/* the installed llama-server of a candidate, provisioning it when missing
 * (counted in b's install counts); called without b->mu held */
int backends_resolve_exe(struct backends *b, struct backends_candidate *c,
			 struct lemon_err *err);

/* "exited with status N" / "killed by signal N" */
void backends_describe_status(int status, char *out, size_t cap);

/* a split model's directory: the path of its first part
 * ("*-00001-of-NNNNN.gguf") and the bytes of all parts; -1 when none
 * (backends/store.c) */
int backends_split_first(const char *dir, char *out, size_t cap,
			 uint64_t *total);

/* name (n bytes, a file name or a path) ends like a split model's first
 * part, "-00001-of-NNNNN.gguf" (llama.cpp's naming; backends/store.c) */
bool backends_split_is_first(const char *name, size_t n);

/* the bytes a load reads for the model at path (backends_model_path's
 * answer): the file's, or every part's when path is the first part of a
 * split model; 0 when it cannot be read */
uint64_t backends_model_file_bytes(const char *path);

/* ---- supervisor state (supervise.c, api.c) ---- */
#include <pthread.h>
#include <stdint.h>

#define BACKENDS_SUP_MAX_CHILDREN BACKENDS_MAX_CHILDREN
#define BACKENDS_SUP_MAX_HISTORY BACKENDS_MAX_FALLBACKS
#define BACKENDS_SUP_TERM_MS 3000 /* SIGTERM to SIGKILL */
#define BACKENDS_SUP_REAP_MS 2000 /* SIGKILL to giving up on the exit */
#define BACKENDS_SUP_LOGQ (64u << 10) /* log bytes queued at most */

enum backends_sup_state {
	BACKENDS_SUP_UNUSED = 0, /* free slot */
	BACKENDS_SUP_IDLE,       /* known model, no process (never started or died) */
	BACKENDS_SUP_WANT,       /* a request wants it started */
	BACKENDS_SUP_STARTING,   /* forked, waiting for /health */
	BACKENDS_SUP_READY,
	BACKENDS_SUP_STOPPING,   /* SIGTERM sent, waiting for the exit */
	BACKENDS_SUP_FAILED,     /* every candidate failed; reason says why */
};

struct backends_sup_child {
	enum backends_sup_state state;
	char model[BACKENDS_NAME_MAX];
	enum backends_role role;
	int cand;           /* index into opts.cand */
	int port;
	unsigned gen;       /* unique per start (struct backends' gen_seq) */
	int leases;         /* requests in flight on this start: never evicted */
	bool unload;        /* free the slot once it exited */
	int64_t deadline;   /* start timeout, monotonic ms */
	int64_t start_allowed_ms; /* what the deadline allowed */
	int64_t kill_at;    /* STOPPING: SIGKILL when not gone by then; 0: sent */
	int64_t failed_at;
	int fail_code;      /* FAILED: the lemon_err code a request gets */
	bool model_fault;   /* STARTING: the log says the model cannot load */
	char fault_line[400]; /* that line */
	char kill_reason[400]; /* a start killed on its deadline: why */
	int64_t last_used;  /* monotonic ms of the last release, for LRU/idle */
	int n_gpu_layers;   /* of the running child, -1: all/default */
	int slots;          /* the running child's --parallel */
	int crashes;        /* exits while ready since the slot was taken */
	int hold;           /* STARTING: its pair lock's fd + 1 (store-private.h:
			     * no pull publishes while it loads); 0: none */
	/* its planned share of each of its candidate's GPUs (index 0: the
	 * candidate's own device; cand.gpus order when it spans several) */
	uint64_t gpu_used[BACKENDS_MAX_SPLIT_GPUS];
	bool rpc_wait;      /* WANT: waits for the workers' holders it evicted */
	/* bit i: b->o.workers[i] is in its --rpc list (an rpc-server serves
	 * one client at a time); never read back from placement, which is
	 * display text and cut short for long lists */
	unsigned workers;
	char placement[400]; /* across workers or GPUs: what the plan said */
	struct backends_proc proc;
	char reason[400];
	char line[1024];
	size_t line_len;
	char last_line[1024];
	char error_line[1024]; /* the last line while starting that names a
				* failure (backends_sup_error_line) */
};

struct backends_sup_fallback {
	int64_t when;
	char model[BACKENDS_NAME_MAX];
	char from[16];
	char to[16];        /* "" when nothing was left */
	char reason[400];
};

struct backends {
	struct backends_opts o;
	char data_dir[4096];
	FILE *log;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool thread_started;
	bool stop;
	atomic_bool pulls_cancelled; /* backends_cancel_pulls (pull.c) */
	unsigned gen_seq;   /* last start generation handed out */
	int wake[2];        /* self-pipe that wakes the supervisor's poll */
	bool cand_failed[BACKENDS_MAX_CANDIDATES];
	struct backends_sup_child child[BACKENDS_SUP_MAX_CHILDREN];
	int n_hist;
	struct backends_sup_fallback hist[BACKENDS_SUP_MAX_HISTORY];
	/* log lines waiting for the writer thread (logq.c); qmu is a leaf
	 * lock: nothing else is taken while it is held */
	pthread_mutex_t qmu;
	pthread_cond_t qcv;   /* the writer waits for lines */
	pthread_cond_t qdone; /* flushers wait for them to be written */
	pthread_t logthr;
	bool logthr_started;
	bool log_stop;
	uint64_t logq_in;     /* bytes queued, in all */
	uint64_t logq_out;    /* bytes written, in all */
	size_t logq_len;
	unsigned long logq_dropped;
	char logq[BACKENDS_SUP_LOGQ];
	char logout[BACKENDS_SUP_LOGQ];
	/* the last lines queued, for backends_log_read (GET /api/v1/logs),
	 * under qmu: logring_end bytes went in, the last BACKENDS_SUP_LOGQ kept */
	char logring[BACKENDS_SUP_LOGQ];
	uint64_t logring_end;
	struct backends_flm_state *flm; /* backends/flm.c; NULL: none */
	/* the workers as last probed (workers.c), under mu */
	struct backends_worker_state {
		bool checked;
		struct backends_worker_info info;
	} wstate[BACKENDS_MAX_WORKERS];
	/* the workers' refresher (workers.c): every 30 s, or sooner when
	 * kicked (GET /api/v1/health); under mu */
	pthread_cond_t wcv;
	pthread_t wthread;
	bool wthread_started;
	bool wkick;         /* a refresh is asked for */
	bool wbusy;         /* a refresh is running */
	int64_t wlast;      /* monotonic ms of the last refresh's end */
	/* every bundle install made through b (install.c), under mu */
	struct backends_install_counts installs;
};

/* how a placement is made (place.c) */
enum backends_place_mode {
	/* a start: the workers are probed now; a worker held by another
	 * model's idle child is freed by evicting that child (least recently
	 * used first), one held by a child with requests in flight is BUSY */
	BACKENDS_PLACE_FOR_START,
	/* before a load starts anything: the workers are left to the start
	 * (a model too large here passes when there are any) */
	BACKENDS_PLACE_FOR_CHECK,
	/* the plans route: the workers as last probed, held ones counted as
	 * free (what a load would get once they are) */
	BACKENDS_PLACE_FOR_PLAN,
};

/* a model placed across workers (workers.c) */
struct backends_rpc_placement {
	int n_workers;
	uint64_t need;
	int ctx;
	int ngl;
	char rpc[BACKENDS_MAX_WORKERS * 72];
	char tensor_split[BACKENDS_MAX_WORKERS * 24];
	char placement[400];
	unsigned workers; /* bit i: b->o.workers[i] is in rpc */
	int slots; /* backends_rpc_default_slots of the workers used */
	/* FOR_START: the idle children (slot, start generation) holding
	 * workers of this placement, to be unloaded before it starts */
	int n_evict;
	int evict[BACKENDS_MAX_WORKERS];
	unsigned evict_gen[BACKENDS_MAX_WORKERS];
};

/* places the model m (which did not fit in local bytes here) across the
 * reachable workers in proportion to their free memory (FOR_START probes
 * them first); TOO_LARGE naming the sizes when it does not fit with them
 * either, BUSY when the workers it needs are held by children with
 * requests in flight. Called without mu held. */
int backends_rpc_plan(struct backends *b, const struct backends_gguf_info *m,
		      const char *model, uint64_t local,
		      enum backends_place_mode mode,
		      struct backends_rpc_placement *out, struct lemon_err *err);

/* a worker as a placement sees it (workers_pick.c) */
struct backends_worker_slot {
	bool up;            /* reachable at the last probe */
	uint64_t free_bytes;
	int holder;         /* the child slot whose --rpc uses it; -1: none */
	bool idle;          /* that holder may be unloaded: ready, no lease */
	int64_t last_used;  /* that holder's last release (monotonic ms) */
};

/* the workers a placement uses (indices into the worker list, in its
 * order) and the idle holders to unload first */
struct backends_worker_choice {
	int n;
	int w[BACKENDS_MAX_WORKERS];
	uint64_t total; /* their free bytes */
	int n_evict;
	int evict[BACKENDS_MAX_WORKERS]; /* child slots */
};

/* the choice for a model needing need bytes with local bytes on this
 * machine: the free workers when they are enough; else also the workers
 * of idle holders, one holder at a time, least recently used first,
 * until need <= total + local: only those holders are unloaded (when
 * even all of them are not enough, the choice has them all and the
 * caller refuses the model) */
void backends_workers_choose(const struct backends_worker_slot *s, int n,
			     uint64_t need, uint64_t local,
			     struct backends_worker_choice *out);

/* the running child whose --rpc uses worker wi: an rpc-server serves one
 * client at a time, so a second child on it would hang in its load; NULL
 * when free. mu is held */
struct backends_sup_child *backends_workers_holder(struct backends *b, int wi);

/* backends_workers_choose over b's workers as last probed (FOR_PLAN: each
 * reachable one counted as free); busy gets the workers held by children
 * that stay, for a message. mu is held */
void backends_workers_pick(struct backends *b, enum backends_place_mode mode,
			   uint64_t need, uint64_t local,
			   struct backends_worker_choice *out, char *busy,
			   size_t cap);

/* starts the workers' refresher thread when there are workers; stops and
 * joins it (b->stop set first) */
int backends_workers_start(struct backends *b, struct lemon_err *err);
void backends_workers_stop(struct backends *b);

/* what is free for a model on candidate ci (place.c): RAM, the first
 * GPU's memory and each spanned GPU's, less what the other loaded
 * children of that candidate were planned to hold there (all_free: not
 * less). self: the child being started (left out); NULL: every child of
 * model is left out */
struct backends_place_in {
	int ci;
	struct backends_candidate cand; /* gpus[].free_bytes: what is left */
	uint64_t ram;
	uint64_t vram; /* the first GPU's left (1 when none left); 0: CPU */
};

/* the plan a start uses and the plans route shows */
struct backends_placement {
	struct backends_fit fit;       /* the child's -c and --n-gpu-layers */
	bool on_gpus;                  /* mg: a split, or another single GPU */
	struct backends_split_plan mg;
	struct backends_rpc_placement rp; /* rp.n_workers > 0: on workers */
	uint64_t used[BACKENDS_MAX_SPLIT_GPUS]; /* bytes per GPU, as gpu_used */
	char text[400];                /* placement for health and plans */
};

/* mu is held */
void backends_place_snapshot(struct backends *b, int ci,
			     const struct backends_sup_child *self,
			     const char *model, bool all_free,
			     struct backends_place_in *in);

/* where the model file at path goes (mu not held): on the candidate's
 * first GPU (or the CPU), else over its GPUs (backends/multigpu.c), else
 * across the workers; TOO_LARGE naming the sizes over everything tried
 * when it fits nowhere */
int backends_place(struct backends *b, const struct backends_place_in *in,
		   const char *path, const char *model,
		   enum backends_place_mode mode, struct backends_placement *out,
		   struct lemon_err *err);

/* the placement onto the child about to start: its spawn (context,
 * layers, devices or --rpc, tensor split), its planned bytes per GPU and
 * its placement text, said in the log. mu is held */
void backends_place_apply(struct backends *b, struct backends_sup_child *c,
			  const struct backends_place_in *in,
			  const struct backends_placement *pl,
			  struct backends_spawn *s);

/* unloads the idle children holding the workers rp needs and puts c back
 * to WANT until they have exited (rpc_wait), or fails c BUSY when one of
 * them took a request meanwhile. mu is held */
void backends_place_evict(struct backends *b, struct backends_sup_child *c,
			  const struct backends_rpc_placement *rp);

/* true while a child placed across workers is stopping. mu is held */
bool backends_place_rpc_stopping(const struct backends *b);

/* queues "lemon: <line>" for the log (any thread, with or without mu) */
void backends_sup_log(struct backends *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* queues n bytes of whole lines for the log */
void backends_sup_emit(struct backends *b, const char *text, size_t n);
/* starts the log writer thread */
int backends_sup_log_start(struct backends *b, struct lemon_err *err);
/* waits up to wait_ms for the lines queued so far to be written; never
 * with mu held */
void backends_sup_log_flush(struct backends *b, int wait_ms);
/* writes what is queued and ends the writer; false when it is stuck (a
 * log nobody reads) after 2 s: then b must not be freed */
bool backends_sup_log_stop(struct backends *b);
void backends_sup_wake(struct backends *b);
/* appends to the fallback history (oldest dropped); to < 0: none left */
void backends_sup_record_fallback(struct backends *b, const char *model, int from,
			 int to, const char *reason);
int backends_sup_start_thread(struct backends *b, struct lemon_err *err);
/* SIGTERM to a running child (SIGKILL follows if it has not exited
 * within BACKENDS_SUP_TERM_MS), or frees a child without a process;
 * unload: free its slot once reaped. The lock is held. */
void backends_sup_stop_child(struct backends *b, struct backends_sup_child *c,
			     bool unload);
/* stops every child within bounded time (SIGTERM, SIGKILL, reap) */
void backends_sup_stop_all(struct backends *b);
int64_t backends_sup_now_ms(void);
/* true when a line of llama-server's log says the model file cannot be
 * loaded (the model's fault, not the backend's); out then gets the line
 * from its message on, absolute paths cut to their last part (fault.c) */
bool backends_sup_model_fault(const char *line, char *out, size_t cap);

/* true for a line that names a failure ("error", "failed", "invalid"...) */
bool backends_sup_error_line(const char *line);

/* the candidate a load starts on: the first that has not failed (api.c);
 * the lock is held */
int backends_sup_first_cand(struct backends *b);

/* creates a directory and its parents (models.c) */
int backends_mkdirs(const char *path, struct lemon_err *err);

#endif
