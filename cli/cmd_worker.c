/* `lemon worker`: one machine's memory lent to a head `lemon serve` through
 * llama.cpp's rpc-server. Detection picks the backend (the doctor's usable
 * candidates in order, CPU last, as serve does), the bundle is provisioned
 * like serve's, its rpc-server is supervised (restarted with a backoff), and
 * a small HTTP endpoint beside it (GET /api/v1/worker) tells the head what
 * the worker runs on and how much memory it has free, so the head can plan.
 * rpc-server has no authentication: anyone who reaches its port can make
 * it allocate memory and run code paths on untrusted input, so the worker
 * binds loopback unless --host is given explicitly, and says so when it is
 * not loopback */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/backends.h"
#include "cli/cli.h"
#include "doctor/doctor.h"
#include "util/str.h"

struct worker {
	const char *host;    /* rpc-server's and the endpoint's address */
	bool host_given;     /* --host on the command line */
	int port, api_port;  /* rpc-server; the lemon endpoint (port + 1) */
	const char *device;  /* --device: passed to rpc-server as -d */
	uint64_t mem_limit;  /* --mem-limit: the most offered; 0 none */
	const char *backend; /* auto or one kind */
	const char *sysroot, *compat_dir, *data_dir, *mirror;
	/* what was chosen */
	struct backends_candidate cand;
	char rpc[4096];    /* the bundle's rpc-server */
	uint64_t gpu_free; /* GPU candidate: its memory at detection */
	struct lemon_root *root;
	/* shared with the endpoint thread */
	pthread_mutex_t mu;
	int rpc_pid; /* 0 while not running */
	int restarts;
	atomic_int stop;
	int listen_fd;
};

static void worker_usage(FILE *out)
{
	fprintf(out,
		"usage: lemon worker [--host 127.0.0.1] [--port 50052] "
		"[--api-port PORT+1]\n"
		"                    [--device DEV[,DEV]] [--mem-limit BYTES] "
		"[--backend auto|cuda|rocm|vulkan|cpu]\n"
		"                    [--data-dir DIR] [--mirror URL] "
		"[--sysroot "
		"DIR] [--compat-dir DIR]\n"
		"runs llama.cpp's rpc-server from the best backend bundle for "
		"this machine, for a head\n"
		"started with: lemon serve --workers HOST:PORT. GET "
		"http://HOST:API-PORT/api/v1/worker\n"
		"answers the backend and free memory (JSON).\n"
		"rpc-server has NO authentication: it binds 127.0.0.1 unless "
		"--host is given; on any\n"
		"other address, allow only the head through a firewall (see "
		"the "
		"README)\n");
}

static bool is_loopback(const char *host)
{
	return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
	       strcmp(host, "localhost") == 0;
}

static int parse_port(const char *flag, const char *v, int *out,
		      struct lemon_err *err)
{
	uint64_t n;

	if (lemon_parse_u64(v, strlen(v), 10, 65535, &n, err) < 0 || n == 0) {
		lemon_err_clear(err);
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "%s '%s': expected 1..65535", flag, v);
	}
	*out = (int)n;
	return 0;
}

static int parse_worker(int argc, char **argv, struct worker *w,
			struct lemon_err *err)
{
	uint64_t n;
	int i;

	w->host = "127.0.0.1";
	w->port = 50052;
	w->backend = "auto";
	w->sysroot = getenv("LEMON_SYSROOT");
	w->mirror = getenv("LEMON_MIRROR");
	for (i = 1; i < argc; i++) {
		const char *f = argv[i], *v;

		if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0)
			return 1;
		if (i + 1 >= argc)
			return lemon_err_set(
				err, LEMON_ERR_INVALID_ARG,
				"unknown or incomplete option '%s'", f);
		v = argv[++i];
		if (strcmp(f, "--host") == 0) {
			w->host = v;
			w->host_given = true;
		} else if (strcmp(f, "--port") == 0) {
			if (parse_port(f, v, &w->port, err) < 0)
				return -1;
		} else if (strcmp(f, "--api-port") == 0) {
			if (parse_port(f, v, &w->api_port, err) < 0)
				return -1;
		} else if (strcmp(f, "--device") == 0) {
			w->device = v;
		} else if (strcmp(f, "--mem-limit") == 0) {
			if (lemon_parse_u64(v, strlen(v), 10, UINT64_MAX / 2,
					    &n, err) < 0 ||
			    n == 0) {
				lemon_err_clear(err);
				return lemon_err_set(
					err, LEMON_ERR_INVALID_ARG,
					"--mem-limit '%s': expected bytes > 0",
					v);
			}
			w->mem_limit = n;
		} else if (strcmp(f, "--backend") == 0) {
			w->backend = v;
		} else if (strcmp(f, "--data-dir") == 0) {
			w->data_dir = v;
		} else if (strcmp(f, "--mirror") == 0) {
			w->mirror = v;
		} else if (strcmp(f, "--sysroot") == 0) {
			w->sysroot = v;
		} else if (strcmp(f, "--compat-dir") == 0) {
			w->compat_dir = v;
		} else {
			return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
					     "unknown option '%s'", f);
		}
	}
	if (w->api_port == 0)
		w->api_port = w->port < 65535 ? w->port + 1 : w->port - 1;
	if (w->api_port == w->port)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "--api-port must differ from --port");
	if (strlen(w->host) >= 64 || strpbrk(w->host, " /,") != NULL)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "--host '%s': expected an address",
				     w->host);
	if (w->device && (strlen(w->device) >= 128 || w->device[0] == '-'))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "--device '%s': expected DEV[,DEV]",
				     w->device);
	/* the default is loopback, and only the command line may widen it:
	 * no environment variable or config file opens an unauthenticated
	 * port by accident */
	if (!w->host_given && !is_loopback(w->host))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "refusing to bind %s without --host",
				     w->host);
	if (strcmp(w->backend, "auto") != 0 &&
	    strcmp(w->backend, "cuda") != 0 &&
	    strcmp(w->backend, "rocm") != 0 &&
	    strcmp(w->backend, "vulkan") != 0 && strcmp(w->backend, "cpu") != 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "--backend '%s': expected auto, cuda, "
				     "rocm, vulkan or cpu",
				     w->backend);
	return 0;
}

/* MemAvailable of /proc/meminfo, in bytes; 0 when unknown */
static uint64_t mem_available(const char *buf, size_t len)
{
	const char *line, *key, *val;
	size_t pos = 0, line_len, key_len, val_len;
	uint64_t kb;

	while (lemon_next_line(buf, len, &pos, &line, &line_len)) {
		if (!lemon_split_kv(line, line_len, ':', &key, &key_len, &val,
				    &val_len) ||
		    !lemon_slice_eq(key, key_len, "MemAvailable"))
			continue;
		if (val_len < 3 ||
		    !lemon_slice_eq(val + val_len - 3, 3, " kB") ||
		    lemon_parse_u64(val, val_len - 3, 10, 1ull << 40, &kb,
				    NULL) < 0)
			return 0;
		return kb * 1024;
	}
	return 0;
}

/* what this worker offers now: the CPU's available RAM read live, a GPU's
 * memory as detection saw it; never above --mem-limit */
static uint64_t free_now(struct worker *w)
{
	char buf[8192];
	size_t len;
	uint64_t n = w->gpu_free;

	if (strcmp(w->cand.kind, "cpu") == 0) {
		n = 0;
		if (detect_root_read(w->root, DETECT_BASE_PROC, "meminfo", buf,
				     sizeof(buf), &len, NULL) == 0)
			n = mem_available(buf, len);
	}
	if (w->mem_limit && n > w->mem_limit)
		n = w->mem_limit;
	return n;
}

static void add_cand(struct backends_opts *o, const char *kind,
		     const char *target, const char *env)
{
	struct backends_candidate *c;
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
}

/* detection's usable candidates (those of --backend when forced), CPU
 * last; each GPU one with its first device and that device's memory */
static int detect_candidates(struct worker *w, struct backends_opts *o,
			     uint64_t *vram, struct lemon_err *err)
{
	struct detect_options dopts = {.vulkan = true};
	struct doctor_result *res = calloc(1, sizeof(*res));
	struct compat_db *db = NULL;
	const struct detect_cuda *cu;
	int i, g;

	if (res == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	if (compat_db_load(w->compat_dir, &db, err) < 0 ||
	    doctor_run(w->root, db, &dopts, res, err) < 0) {
		fprintf(stderr,
			"lemon: detection failed (%s); using the CPU backend\n",
			err->msg);
		lemon_err_clear(err);
		res->choice.n = 0;
	}
	cu = &res->report.cuda;
	for (i = 0; i < res->choice.n; i++) {
		const struct compat_candidate *c = &res->choice.c[i];

		if (!c->usable || (strcmp(w->backend, "auto") != 0 &&
				   strcmp(w->backend, c->backend) != 0))
			continue;
		add_cand(o, c->backend, c->target, c->env);
		g = c->gpu_index;
		if (g < 0 || g >= res->report.n_gpus ||
		    o->n_candidates > BACKENDS_MAX_CANDIDATES)
			continue;
		/* --device CUDA<n>: that device's free memory (the first
		 * GPU's is another GPU's on a machine of several) */
		if (w->device && strcmp(c->backend, "cuda") == 0 &&
		    detect_cuda_free_of(cu, w->device,
					&vram[o->n_candidates - 1]) == 0)
			continue;
		if (res->report.gpus[g].cuda_index >= 0 &&
		    res->report.gpus[g].cuda_index < cu->n_devices &&
		    cu->devices[res->report.gpus[g].cuda_index].has_free)
			vram[o->n_candidates - 1] =
				cu->devices[res->report.gpus[g].cuda_index]
					.free_bytes;
		else if (res->report.gpus[g].has_vram)
			vram[o->n_candidates - 1] =
				res->report.gpus[g].vram_bytes;
	}
	add_cand(o, "cpu", NULL, NULL);
	doctor_result_free(res);
	free(res);
	compat_db_free(db);
	return 0;
}

/* provisions the candidates as serve does and keeps the first installed
 * one whose bundle has an rpc-server */
static int choose_bundle(struct worker *w, struct lemon_err *err)
{
	struct backends_opts o = {0};
	struct backends_status *st = calloc(1, sizeof(*st));
	struct backends *b = NULL;
	uint64_t vram[BACKENDS_MAX_CANDIDATES] = {0};
	struct stat sb;
	char *slash;
	int i, k, rc = -1;

	if (st == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	if (detect_candidates(w, &o, vram, err) < 0)
		goto out;
	o.data_dir = w->data_dir;
	o.mirror = w->mirror;
	o.compat_dir = w->compat_dir;
	if (backends_new(&o, &b, err) < 0 || backends_prepare(b, err) < 0)
		goto out;
	backends_snapshot(b, st);
	for (i = 0; i < st->n_candidates && rc < 0; i++) {
		if (st->cand[i].failed || st->cand[i].exe[0] == 0)
			continue;
		lemon_str_copy(w->rpc, sizeof(w->rpc), st->cand[i].exe);
		slash = strrchr(w->rpc, '/');
		if (slash == NULL ||
		    (size_t)(slash - w->rpc) + 12 >= sizeof(w->rpc))
			continue;
		memcpy(slash + 1, "rpc-server", 11);
		if (stat(w->rpc, &sb) < 0 || !S_ISREG(sb.st_mode) ||
		    !(sb.st_mode & S_IXUSR)) {
			fprintf(stderr,
				"lemon: the %s bundle has no rpc-server (%s)\n",
				st->cand[i].backend, w->rpc);
			continue;
		}
		for (k = 0; k < o.n_candidates; k++)
			if (strcmp(o.cand[k].kind, st->cand[i].backend) == 0) {
				w->cand = o.cand[k];
				w->gpu_free = vram[k];
			}
		rc = 0;
	}
	if (rc < 0)
		lemon_err_set(err, LEMON_ERR_BROKEN_SYSTEM,
			      "no installed backend bundle has an rpc-server");
out:
	backends_shutdown(b);
	backends_free(b);
	free(st);
	return rc;
}

static int start_rpc(struct worker *w)
{
	char port[8];
	const char *argv[10];
	int n = 0;
	pid_t pid;

	snprintf(port, sizeof(port), "%d", w->port);
	argv[n++] = "rpc-server";
	argv[n++] = "-H";
	argv[n++] = w->host;
	argv[n++] = "-p";
	argv[n++] = port;
	if (w->device) {
		argv[n++] = "-d";
		argv[n++] = w->device;
	}
	argv[n] = NULL;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* a worker killed outright takes its rpc-server with it */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (w->cand.env[0])
			putenv(w->cand.env);
		execv(w->rpc, (char *const *)argv);
		_exit(127);
	}
	setpgid(pid, pid);
	return pid;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = write(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int64_t now_ms(void);

/* one request per connection, its head read for at most 2 s in all: the
 * one endpoint thread serves every client in turn, so a client dripping
 * bytes must not hold it (the head's probes would time out) */
static void answer(struct worker *w, int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char req[2048], body[1024], out[1400];
	size_t len = 0;
	ssize_t r;
	int pid, restarts;
	int64_t deadline = now_ms() + 2000, left;
	const char *status = "404 Not Found";

	while (len < sizeof(req) - 1 && !memmem(req, len, "\r\n\r\n", 4)) {
		left = deadline - now_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return;
		r = read(fd, req + len, sizeof(req) - 1 - len);
		if (r <= 0)
			return;
		len += (size_t)r;
	}
	pthread_mutex_lock(&w->mu);
	pid = w->rpc_pid;
	restarts = w->restarts;
	pthread_mutex_unlock(&w->mu);
	if (len > 24 && memcmp(req, "GET /api/v1/worker ", 19) == 0) {
		status = "200 OK";
		snprintf(body, sizeof(body),
			 "{\"lemon_worker\":1,\"version\":\"%s\",\"backend\":"
			 "\"%s\","
			 "\"device\":\"%s\",\"rpc_port\":%d,\"rpc_running\":%s,"
			 "\"restarts\":%d,\"free_bytes\":%llu,\"mem_limit\":%"
			 "llu}\n",
			 LEMON_VERSION, w->cand.kind,
			 w->device ? w->device : w->cand.device, w->port,
			 pid > 0 ? "true" : "false", restarts,
			 (unsigned long long)free_now(w),
			 (unsigned long long)w->mem_limit);
	} else {
		snprintf(body, sizeof(body), "{\"error\":\"not found\"}\n");
	}
	snprintf(out, sizeof(out),
		 "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		 status, strlen(body), body);
	write_all(fd, out, strlen(out));
}

static void *api_thread(void *arg)
{
	struct worker *w = arg;
	struct pollfd pfd = {.fd = w->listen_fd, .events = POLLIN};
	int fd;

	while (!w->stop) {
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		fd = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		answer(w, fd);
		close(fd);
	}
	return NULL;
}

static int listen_api(struct worker *w, struct lemon_err *err)
{
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
	struct sockaddr_in a4 = {.sin_family = AF_INET};
	const char *h =
		strcmp(w->host, "localhost") == 0 ? "127.0.0.1" : w->host;
	int one = 1, fd = -1, rc;

	if (inet_pton(AF_INET, h, &a4.sin_addr) == 1) {
		a4.sin_port = htons((uint16_t)w->api_port);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&a4, sizeof(a4));
	} else if (inet_pton(AF_INET6, h, &a6.sin6_addr) == 1) {
		a6.sin6_port = htons((uint16_t)w->api_port);
		fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&a6, sizeof(a6));
	} else {
		return lemon_err_set(
			err, LEMON_ERR_INVALID_ARG,
			"--host '%s': expected an IPv4 or IPv6 address",
			w->host);
	}
	if (rc < 0 || listen(fd, 16) < 0) {
		if (fd >= 0)
			close(fd);
		return lemon_err_set(err, LEMON_ERR_BUSY,
				     "cannot listen on %s:%d: %s", w->host,
				     w->api_port, strerror(errno));
	}
	w->listen_fd = fd;
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* restarts rpc-server when it exits: after 0.5 s, doubling up to 30 s,
 * back to 0.5 s once a run lasted a minute; until SIGINT or SIGTERM */
static void supervise(struct worker *w, const sigset_t *sigs)
{
	struct timespec tick = {0, 200 * 1000000};
	int64_t started = 0, next = 0, backoff = 500;
	int status, pid = 0;

	for (;;) {
		if (sigtimedwait(sigs, NULL, &tick) > 0)
			break;
		if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr,
				"lemon: rpc-server (pid %d) exited (%s %d); "
				"restarting in %lld ms\n",
				pid, WIFSIGNALED(status) ? "signal" : "status",
				WIFSIGNALED(status) ? WTERMSIG(status)
						    : WEXITSTATUS(status),
				(long long)backoff);
			if (now_ms() - started > 60000)
				backoff = 500;
			next = now_ms() + backoff;
			backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
			pid = 0;
			pthread_mutex_lock(&w->mu);
			w->rpc_pid = 0;
			w->restarts++;
			pthread_mutex_unlock(&w->mu);
		}
		if (pid == 0 && now_ms() >= next) {
			pid = start_rpc(w);
			started = now_ms();
			if (pid < 0) {
				pid = 0;
				next = started + backoff;
				continue;
			}
			pthread_mutex_lock(&w->mu);
			w->rpc_pid = pid;
			pthread_mutex_unlock(&w->mu);
		}
	}
	if (pid > 0) {
		kill(-pid, SIGTERM);
		for (int i = 0; i < 30 && waitpid(pid, &status, WNOHANG) == 0;
		     i++)
			usleep(100000);
		kill(-pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
}

int cli_cmd_worker(int argc, char **argv)
{
	struct lemon_err err = {0};
	struct worker *w = calloc(1, sizeof(*w));
	pthread_t th;
	sigset_t sigs;
	int p;

	if (w == NULL)
		return CLI_EXIT_DEGRADED;
	p = parse_worker(argc, argv, w, &err);
	if (p != 0) {
		if (p > 0)
			worker_usage(stdout);
		else
			cli_fail(&err), worker_usage(stderr);
		free(w);
		return p > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&w->mu, NULL);
	w->listen_fd = -1;
	if (!is_loopback(w->host))
		fprintf(stderr,
			"lemon: WARNING: rpc-server has no authentication: "
			"anyone who reaches "
			"%s:%d can use this machine's memory and compute; keep "
			"it on a trusted "
			"network and allow only the head through the "
			"firewall\n",
			w->host, w->port);
	if (detect_root_new(w->sysroot, &w->root, &err) < 0 ||
	    choose_bundle(w, &err) < 0 || listen_api(w, &err) < 0) {
		p = cli_fail(&err);
		detect_root_free(w->root);
		free(w);
		return p;
	}
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (pthread_create(&th, NULL, api_thread, w) != 0) {
		close(w->listen_fd);
		detect_root_free(w->root);
		free(w);
		return CLI_EXIT_DEGRADED;
	}
	fprintf(stderr,
		"lemon: worker on %s backend: rpc-server on %s:%d, worker info "
		"on "
		"http://%s:%d/api/v1/worker\n",
		w->cand.kind, w->host, w->port, w->host, w->api_port);
	supervise(w, &sigs);
	w->stop = 1;
	pthread_join(th, NULL);
	close(w->listen_fd);
	detect_root_free(w->root);
	pthread_mutex_destroy(&w->mu);
	free(w);
	return CLI_EXIT_OK;
}
