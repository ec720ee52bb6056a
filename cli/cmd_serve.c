/* `lemon serve`: configuration (flags over
 * environment over config file), detection to order the backend
 * candidates (run in a child: cli/serve_detect.c), first-run
 * provisioning, then the HTTP server until SIGINT or SIGTERM */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backends.h"
#include "cli/cli.h"
#include "cli/serve-private.h"
#include "doctor/doctor.h"
#include "server/server.h"
#include "util/str.h"

struct serve_args {
	struct server_config cfg;
	const char *sysroot;
	const char *compat_dir;
	const char *config;
	const char *data_dir;
	int max_loaded;     /* 0: as many as fit */
	int idle_timeout_s; /* 0: never */
	int parallel;       /* 0: backends' default (per device) */
	struct cli_devices devices; /* --device; n 0: lemon chooses */
};

static void serve_usage(FILE *out)
{
	fprintf(out,
		"usage: lemon serve [--host 127.0.0.1] [--port 8000] [--backend auto|cuda|rocm|vulkan|cpu]\n"
		"                   [--ctx-size N] [--api-key KEY | --api-key-file PATH] [--mirror URL]\n"
		"                   [--cors-origin ORIGINS] [--max-body BYTES] [--max-image-body BYTES]\n"
		"                   [--timeout S]\n"
		"                   [--header-timeout S] [--max-conns N] [--max-conns-per-client N]\n"
		"                   [--config FILE] [--data-dir DIR]\n"
		"                   [--sysroot DIR] [--compat-dir DIR] [--max-loaded N]\n"
		"                   [--idle-timeout S] [--parallel N] [--workers HOST:PORT[,...]]\n"
		"                   [--device DEV[,DEV...]]\n"
		"--device: the GPU(s) to use, by llama.cpp's names (CUDA1, Vulkan0: see\n"
		"llama-server --list-devices); default: the one detection recommends\n"
		"--workers: `lemon worker`s; a model too large for this machine is split across\n"
		"their free memory (llama.cpp RPC; LEMON_WORKERS, config key workers)\n"
		"--api-key-file: the key is the first line of PATH (not visible in ps, unlike --api-key)\n"
		"--cors-origin: comma-separated origins whose web pages may call the API (default none;\n"
		"* allows any); requests from other origins get 403\n"
		"--max-body: request body limit (default 1 MiB); --max-image-body: the limit of the\n"
		"routes whose bodies carry images (chat, responses, messages, /api/chat, /api/generate;\n"
		"default 32 MiB)\n"
		"--timeout: seconds for a request body (default 30); --header-timeout: for a request\n"
		"head (default 10); --max-conns (1024), --max-conns-per-client (256): connection caps\n"
		"--max-loaded: models loaded per kind (chat, embeddings), least recently used\n"
		"unloaded first (default: as many as fit); --idle-timeout: unload a model unused\n"
		"for S seconds (default: never); --parallel: slots per llama-server (default 4)\n"
		"settings come from flags, then LEMON_HOST, LEMON_PORT, LEMON_BACKEND, LEMON_CTX_SIZE,\n"
		"LEMON_API_KEY, LEMON_API_KEY_FILE, LEMON_MIRROR, LEMON_CORS_ORIGIN, LEMON_MAX_BODY,\n"
		"LEMON_MAX_IMAGE_BODY, LEMON_TIMEOUT, LEMON_HEADER_TIMEOUT, LEMON_MAX_CONNS, LEMON_MAX_CONNS_PER_CLIENT, then\n"
		"$XDG_CONFIG_HOME/lemon/config.json; LEMON_LLAMA_SERVER_{CUDA,ROCM,VULKAN,CPU} name an\n"
		"explicit llama-server per backend\n");
}

static const struct {
	const char *flag;
	const char *key;
} serve_flags[] = {
	{ "--host", "host" },       { "--port", "port" },
	{ "--backend", "backend" }, { "--ctx-size", "ctx_size" },
	{ "--api-key", "api_key" }, { "--mirror", "mirror" },
	{ "--cors-origin", "cors_origin" }, { "--max-body", "max_body" },
	{ "--timeout", "timeout" }, { "--api-key-file", "api_key_file" },
	{ "--header-timeout", "header_timeout" }, { "--max-conns", "max_conns" },
	{ "--max-conns-per-client", "max_conns_per_client" },
	{ "--workers", "workers" },
	{ "--max-image-body", "max_image_body" },
};

/* --max-loaded 1..8, --idle-timeout 0..86400 s, --parallel 1..64 */
static int parse_count(const char *flag, const char *v, struct serve_args *a,
		       struct lemon_err *err)
{
	uint64_t n;
	uint64_t max = strcmp(flag, "--max-loaded") == 0 ? 8 :
		       strcmp(flag, "--parallel") == 0 ? 64 : 86400;

	if (lemon_parse_u64(v, strlen(v), 10, max, &n, err) < 0 ||
	    (n == 0 && strcmp(flag, "--idle-timeout") != 0)) {
		lemon_err_clear(err);
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "%s '%s': expected %s..%llu", flag, v,
				     strcmp(flag, "--idle-timeout") == 0 ? "0" : "1",
				     (unsigned long long)max);
	}
	if (strcmp(flag, "--max-loaded") == 0)
		a->max_loaded = (int)n;
	else if (strcmp(flag, "--parallel") == 0)
		a->parallel = (int)n;
	else
		a->idle_timeout_s = (int)n;
	return 0;
}

/* the config file and env first (so flags win), then the flags */
static int parse_serve(int argc, char **argv, struct serve_args *a,
		       struct lemon_err *err)
{
	size_t k;
	int i;

	for (i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--config") == 0)
			a->config = argv[i + 1];
	a->sysroot = getenv("LEMON_SYSROOT");
	server_config_defaults(&a->cfg);
	if (server_config_load_file(&a->cfg, a->config, err) < 0 ||
	    server_config_load_env(&a->cfg, err) < 0)
		return -1;
	for (i = 1; i < argc; i++) {
		const char *f = argv[i];

		if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0)
			return 1;
		if (i + 1 >= argc)
			return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
					     "unknown or incomplete option '%s'", f);
		for (k = 0; k < sizeof(serve_flags) / sizeof(serve_flags[0]); k++)
			if (strcmp(f, serve_flags[k].flag) == 0)
				break;
		if (k < sizeof(serve_flags) / sizeof(serve_flags[0])) {
			if (server_config_set(&a->cfg, serve_flags[k].key,
					      argv[++i], err) < 0)
				return -1;
		} else if (strcmp(f, "--sysroot") == 0) {
			a->sysroot = argv[++i];
		} else if (strcmp(f, "--compat-dir") == 0) {
			a->compat_dir = argv[++i];
		} else if (strcmp(f, "--data-dir") == 0) {
			a->data_dir = argv[++i];
		} else if (strcmp(f, "--device") == 0) {
			if (cli_serve_devices(argv[++i], &a->devices, err) < 0)
				return -1;
		} else if (strcmp(f, "--config") == 0) {
			i++;
		} else if (strcmp(f, "--max-loaded") == 0 ||
			   strcmp(f, "--idle-timeout") == 0 ||
			   strcmp(f, "--parallel") == 0) {
			if (parse_count(f, argv[++i], a, err) < 0)
				return -1;
		} else {
			return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
					     "unknown option '%s'", f);
		}
	}
	return 0;
}

static void add_cand(struct backends_opts *o, const char *kind,
		     const char *target, const char *env)
{
	struct backends_candidate *c;
	char var[64];
	const char *exe;
	int i;

	for (i = 0; i < o->n_candidates; i++)
		if (strcmp(o->cand[i].kind, kind) == 0)
			return;
	if (o->n_candidates == BACKENDS_MAX_CANDIDATES)
		return;
	c = &o->cand[o->n_candidates++];
	memset(c, 0, sizeof(*c));
	lemon_str_copy(c->kind, sizeof(c->kind), kind);
	lemon_str_copy(c->target, sizeof(c->target), target ? target : "");
	lemon_str_copy(c->env, sizeof(c->env), env ? env : "");
	/* a GPU bundle must run on a GPU: until detection names the device,
	 * the first one of its kind (refined in set_mem) */
	if (strcmp(kind, "cuda") == 0)
		lemon_str_copy(c->device, sizeof(c->device), "CUDA0");
	else if (strcmp(kind, "vulkan") == 0)
		lemon_str_copy(c->device, sizeof(c->device), "Vulkan0");
	snprintf(var, sizeof(var), "LEMON_LLAMA_SERVER_%s",
		 strcmp(kind, "rocm") == 0 ? "ROCM" :
		 strcmp(kind, "cuda") == 0 ? "CUDA" :
		 strcmp(kind, "vulkan") == 0 ? "VULKAN" : "CPU");
	exe = getenv(var);
	if (exe == NULL && strcmp(kind, "cpu") == 0)
		exe = getenv("LEMON_LLAMA_SERVER");
	if (exe)
		lemon_str_copy(c->exe, sizeof(c->exe), exe);
}

/* auto: the doctor's usable candidates in order; forced: that backend,
 * then the ones after it in the cuda/rocm -> vulkan -> cpu chain (a
 * forced GPU backend falls back to Vulkan, never to the other vendor's) */
static void build_candidates(const char *backend,
			     const struct compat_choice *ch,
			     struct backends_opts *o)
{
	static const char *chain[] = { "cuda", "rocm", "vulkan", "cpu" };
	int i, k, start = 0;

	if (strcmp(backend, "auto") == 0) {
		for (i = 0; ch && i < ch->n; i++)
			if (ch->c[i].usable)
				add_cand(o, ch->c[i].backend, ch->c[i].target,
					 ch->c[i].env);
		add_cand(o, "cpu", NULL, NULL);
		return;
	}
	for (k = 0; k < 4; k++)
		if (strcmp(backend, chain[k]) == 0)
			start = k;
	for (k = start; k < 4; k++) {
		const struct compat_candidate *best = NULL;

		if (k == 1 && start == 0)
			continue; /* cuda falls back to vulkan, not rocm */
		for (i = 0; ch && i < ch->n; i++)
			if (strcmp(ch->c[i].backend, chain[k]) == 0 &&
			    (best == NULL || (!best->usable && ch->c[i].usable)))
				best = &ch->c[i];
		add_cand(o, chain[k], best ? best->target : NULL,
			 best ? best->env : NULL);
	}
}

/* a backend left out (its probe hung): the others keep their order */
static void drop_candidate(struct backends_opts *o, const char *kind)
{
	int i, k = 0;

	for (i = 0; i < o->n_candidates; i++)
		if (strcmp(o->cand[i].kind, kind) != 0)
			o->cand[k++] = o->cand[i];
	o->n_candidates = k;
	if (k == 0)
		add_cand(o, "cpu", NULL, NULL);
}

/* the backends get the memory of the device each candidate runs on (the
 * largest where several match) and the device of the first match */
static void set_mem(const struct compat_choice *ch, const struct cli_serve_mem *mem,
		    struct backends_opts *o)
{
	struct backends_gpu_seen seen[BACKENDS_MAX_SPLIT_GPUS];
	bool named;
	int i, k, n, first, g;

	o->ram_bytes = mem->ram;
	for (k = 0; k < o->n_candidates; k++) {
		struct backends_candidate *c = &o->cand[k];

		named = false;
		n = 0;
		first = -1;
		for (i = 0; ch && i < ch->n && i < COMPAT_MAX_CANDIDATES; i++) {
			if (strcmp(ch->c[i].backend, c->kind) != 0 ||
			    strcmp(ch->c[i].target, c->target) != 0)
				continue;
			if (first < 0 && mem->vram[i] > 0)
				first = mem->gpu_of[i];
			if (mem->vram[i] > 0 && n < BACKENDS_MAX_SPLIT_GPUS &&
			    strcmp(c->kind, "vulkan") != 0) {
				memset(&seen[n], 0, sizeof(seen[n]));
				lemon_str_copy(seen[n].device, sizeof(seen[n].device),
					       mem->device[i]);
				seen[n].vk_index = mem->vk_index[i];
				seen[n].vendor = mem->vendor[i];
				seen[n].igpu = mem->igpu[i];
				seen[n++].free_bytes = mem->vram[i];
			}
			if (mem->vram[i] > c->vram_bytes)
				c->vram_bytes = mem->vram[i];
			if (named || mem->device[i][0] == 0)
				continue;
			named = true;
			lemon_str_copy(c->device, sizeof(c->device),
				       mem->device[i]);
			if (c->env[0] == 0)
				lemon_str_copy(c->env, sizeof(c->env),
					       mem->env[i]);
			if (mem->vram_free[i])
				fprintf(stderr, "lemon: %s plans with the %.0f MiB the driver reports free on %s\n",
					c->kind, mem->vram[i] / 1048576.0,
					mem->device[i]);
		}
		/* Vulkan: its GPU, then every other one detection saw (the
		 * span keeps those of the first one's vendor) */
		if (strcmp(c->kind, "vulkan") == 0 && first >= 0) {
			seen[n++] = mem->gpu[first];
			for (g = 0; g < mem->n_gpus && n < BACKENDS_MAX_SPLIT_GPUS; g++)
				if (g != first && mem->gpu[g].free_bytes > 0)
					seen[n++] = mem->gpu[g];
		}
		/* a model too large for the first GPU may span the others
		 * of its vendor (HIP hides those its variables name) */
		backends_multigpu_span(c, seen, n,
				       getenv("GGML_VK_VISIBLE_DEVICES") != NULL,
				       getenv("ROCR_VISIBLE_DEVICES") != NULL ||
				       getenv("HIP_VISIBLE_DEVICES") != NULL ||
				       getenv("CUDA_VISIBLE_DEVICES") != NULL);
		if (c->n_gpus > 1)
			fprintf(stderr, "lemon: %s may split a model over %d GPUs%s%s\n",
				c->kind, c->n_gpus, c->split_env[0] ? " with " : "",
				c->split_env);
	}
}

/* LEMON_START_TIMEOUT_MS: how long a child may take to become healthy */
static int start_timeout_ms(void)
{
	const char *v = getenv("LEMON_START_TIMEOUT_MS");
	uint64_t n;

	if (v && lemon_parse_u64(v, strlen(v), 10, 3600000, &n, NULL) == 0 && n)
		return (int)n;
	return 0;
}

static int wait_for_signal(const sigset_t *set)
{
	int sig = 0;

	while (sigwait(set, &sig) != 0)
		;
	return sig;
}

static int serve(struct serve_args *a, const sigset_t *sigs)
{
	struct backends_opts bo = { 0 };
	struct lemon_err err = { 0 };
	struct compat_choice *choice = calloc(1, sizeof(*choice));
	struct cli_serve_mem mem = { 0 };
	struct backends *b = NULL;
	struct server *srv = NULL;
	char data_dir[4096];
	char *sysinfo;
	bool have, no_vulkan;
	int rc = CLI_EXIT_OK, sig, lock_fd = -1;

	if (choice == NULL)
		return CLI_EXIT_DEGRADED;
	/* first: a second server on the same data directory starts nothing */
	if (backends_lock_data_dir(a->data_dir, &lock_fd, &err) < 0) {
		free(choice);
		return cli_fail(&err);
	}
	sysinfo = cli_serve_detect(a->sysroot, a->compat_dir, a->data_dir, lock_fd,
				   choice, &mem, &have, &no_vulkan);
	build_candidates(a->cfg.backend, have ? choice : NULL, &bo);
	if (no_vulkan)
		drop_candidate(&bo, "vulkan");
	set_mem(have ? choice : NULL, &mem, &bo);
	cli_apply_devices(&a->devices, mem.gpu, mem.n_gpus, &bo);
	free(choice);
	bo.data_dir = a->data_dir;
	bo.mirror = a->cfg.mirror[0] ? a->cfg.mirror : NULL;
	bo.compat_dir = a->compat_dir;
	bo.ctx_size = a->cfg.ctx_size;
	bo.start_timeout_ms = start_timeout_ms();
	bo.max_loaded = a->max_loaded;
	bo.idle_timeout_s = a->idle_timeout_s;
	bo.parallel = a->parallel;
	if (a->cfg.workers[0] &&
	    backends_workers_parse_list(a->cfg.workers, &bo, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	/* threads start with SIGINT/SIGTERM blocked so only sigwait below
	 * sees them; during the first-run install (no children yet) the
	 * default action still ends lemon at once */
	pthread_sigmask(SIG_BLOCK, sigs, NULL);
	if (backends_data_dir(a->data_dir, data_dir, sizeof(data_dir), &err) < 0 ||
	    backends_new(&bo, &b, &err) < 0 ||
	    cli_serve_flm(b, sysinfo, a->compat_dir, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	pthread_sigmask(SIG_UNBLOCK, sigs, NULL);
	rc = backends_prepare(b, &err);
	pthread_sigmask(SIG_BLOCK, sigs, NULL);
	/* said at once: a worker that cannot be used is reported, not found
	 * out on the first large model */
	if (rc == 0)
		backends_workers_refresh(b);
	if (rc < 0 || server_start(&a->cfg, b, data_dir, sysinfo, &srv, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	fprintf(stderr, "lemon: listening on http://%s:%d (backend %s)\n",
		a->cfg.host, a->cfg.port, a->cfg.backend);
	sig = wait_for_signal(sigs);
	fprintf(stderr, "lemon: %s, shutting down\n", strsignal(sig));
	/* a download must not hold up the exit: cancelled, its .part kept */
	backends_cancel_pulls(b);
	server_quiesce(srv);
out:
	/* the children go first so that in-flight streams end and the HTTP
	 * server's stop does not wait for them; b is freed only once no
	 * connection thread can use it */
	backends_shutdown(b);
	/* a connection thread still inside a route after the stop deadline
	 * keeps using b: then both are left to the process's exit */
	if (server_stop(srv) == 0)
		backends_free(b);
	free(sysinfo);
	if (lock_fd >= 0)
		close(lock_fd);
	return rc;
}

int cli_cmd_serve(int argc, char **argv)
{
	struct lemon_err err = { 0 };
	struct serve_args *a = calloc(1, sizeof(*a));
	sigset_t sigs;
	int p, rc;

	if (a == NULL)
		return CLI_EXIT_DEGRADED;
	p = parse_serve(argc, argv, a, &err);
	if (p != 0) {
		if (p > 0)
			serve_usage(stdout);
		else
			cli_fail(&err), serve_usage(stderr);
		free(a);
		return p > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	/* one connection thread per stream: without a cap glibc gives many of
	 * them their own malloc arena, which stays resident after the load */
	mallopt(M_ARENA_MAX, 2);
	signal(SIGPIPE, SIG_IGN);
	rc = serve(a, &sigs);
	free(a);
	return rc;
}
