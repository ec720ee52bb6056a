/* starting llama-server children and talking to them over loopback: the
 * fork/exec with process group, parent-death signal and closed fds, free
 * port selection, the /health probe, and finding (or provisioning) the
 * executable of a backend candidate */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/backends-private.h"
#include "backends/flm-private.h"
#include "provision/provision.h"
#include "util/http1.h"
#include "util/str.h"

extern char **environ;

void backends_describe_status(int status, char *out, size_t cap)
{
	if (WIFEXITED(status))
		snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, cap, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(out, cap, "stopped (status 0x%x)", (unsigned)status);
}

int backends_connect(int port, int timeout_ms, struct lemon_err *err)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct pollfd pfd;
	int fd, soerr = 0;
	socklen_t sl = sizeof(soerr);

	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return lemon_err_errno(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, timeout_ms) != 1) {
			errno = ETIMEDOUT;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 ||
		    soerr != 0) {
			errno = soerr ? soerr : errno;
			goto fail;
		}
	}
	/* the callers use blocking I/O with SO_RCVTIMEO */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
fail:
	lemon_err_set(err, LEMON_ERR_NETWORK, "connecting to 127.0.0.1:%d: %s",
		      port, strerror(errno));
	close(fd);
	return -1;
}

/* the status of a GET; only the head is read (util/http1.h parses it) */
int backends_http_status(int port, const char *path, int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	struct lemon_http1_head head;
	char req[256], resp[4096];
	size_t got = 0;
	int fd, n, rc = LEMON_HTTP1_INCOMPLETE;

	fd = backends_connect(port, timeout_ms, NULL);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
		     path, port);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		close(fd);
		return -1;
	}
	while (rc == LEMON_HTTP1_INCOMPLETE && got < sizeof(resp)) {
		ssize_t r = recv(fd, resp + got, sizeof(resp) - got, 0);

		if (r <= 0)
			break;
		got += (size_t)r;
		rc = lemon_http1_parse_head(resp, got, &head);
	}
	close(fd);
	return rc == LEMON_HTTP1_OK ? (int)head.status : -1;
}

int backends_free_port(int *port, struct lemon_err *err)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lemon_err_errno(err, errno, "socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		lemon_err_errno(err, errno, "binding a loopback port");
		close(fd);
		return -1;
	}
	close(fd);
	*port = ntohs(sa.sin_port);
	return 0;
}

/* only async-signal-safe calls between fork and exec */
static void child_exec(const struct backends_spawn *s, char **argv,
		       char **envp, int out_fd, int in_fd, pid_t parent)
{
	sigset_t none;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
		_exit(127);
	close_range(3, ~0U, 0);
	execve(s->exe, argv, envp);
	_exit(127);
}

/* environ plus the candidate's extra variable; NULL on allocation failure */
static char **child_env(const char *extra)
{
	size_t n = 0, i;
	char **envp;

	while (environ[n])
		n++;
	envp = calloc(n + 2, sizeof(*envp));
	if (envp == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		envp[i] = environ[i];
	if (extra && extra[0])
		envp[n] = (char *)extra;
	return envp;
}

int backends_spawn_child(const struct backends_spawn *s,
			 struct backends_proc *out, struct lemon_err *err)
{
	char port[16], ctx[16], par[16], ngl[16], mmproj[4096];
	const char *argv[36];
	int n = 0, logp[2], inp[2];
	pid_t parent = getpid(), pid;
	char **envp;

	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(ctx, sizeof(ctx), "%d", s->ctx_size);
	if (s->flm) {
		n = backends_flm_argv(s, argv, port, sizeof(port), ctx,
				      sizeof(ctx));
		goto spawn;
	}
	argv[n++] = s->exe;
	argv[n++] = "-m";
	argv[n++] = s->model_path;
	argv[n++] = "--host";
	argv[n++] = "127.0.0.1";
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--alias";
	argv[n++] = s->alias;
	argv[n++] = "--no-webui";
	/* chat templates with tools (Jinja), and /metrics for lemon's own
	 * /metrics to re-export */
	argv[n++] = "--jinja";
	argv[n++] = "--metrics";
	if (s->ctx_size > 0) {
		argv[n++] = "-c";
		argv[n++] = ctx;
	}
	if (s->parallel > 0) {
		snprintf(par, sizeof(par), "%d", s->parallel);
		argv[n++] = "--parallel";
		argv[n++] = par;
		/* one KV cache of the planned -c shared by the slots: a request
		 * may use the whole planned context (not -c / parallel) and the
		 * memory is what was planned */
		argv[n++] = "--kv-unified";
	}
	if (s->n_gpu_layers >= 0) {
		snprintf(ngl, sizeof(ngl), "%d", s->n_gpu_layers);
		argv[n++] = "--n-gpu-layers";
		argv[n++] = ngl;
	}
	if (s->device && s->device[0]) {
		argv[n++] = "--device";
		argv[n++] = s->device;
	}
	if (s->embeddings) {
		argv[n++] = "--embeddings";
		argv[n++] = "--pooling";
		argv[n++] = "mean";
	}
	if (s->reranking)
		argv[n++] = "--reranking";
	/* across workers: llama.cpp's RPC devices, split by free memory */
	if (s->rpc && s->rpc[0]) {
		argv[n++] = "--rpc";
		argv[n++] = s->rpc;
		argv[n++] = "--tensor-split";
		argv[n++] = s->tensor_split;
	} else if (s->split_layer && s->tensor_split && s->tensor_split[0]) {
		/* one model over several GPUs of this machine: whole layers
		 * on each (no row split: it needs peer access), in
		 * proportion to each one's free memory */
		argv[n++] = "--split-mode";
		argv[n++] = "layer";
		argv[n++] = "--tensor-split";
		argv[n++] = s->tensor_split;
	}
	/* a vision projector stored beside the model: the chat child reads
	 * images with it (embedding and rerank children take none) */
	if (!s->embeddings && !s->reranking &&
	    backends_mmproj_beside(s->model_path, mmproj, sizeof(mmproj))) {
		argv[n++] = "--mmproj";
		argv[n++] = mmproj;
	}
	argv[n] = NULL;
spawn:
	envp = child_env(s->env_extra);
	if (envp == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	if (pipe2(logp, O_CLOEXEC) < 0) {
		free(envp);
		return lemon_err_errno(err, errno, "pipe");
	}
	/* the supervisor drains the child's log every 250 ms, not on each
	 * line; a 64 KiB pipe holds about 600 lines, and llama-server's
	 * logger blocks its callers (HTTP threads, main loop) once 512 more
	 * are queued: 1 MiB (an unprivileged process's default maximum)
	 * holds 16 times more. Best effort: the default size still works */
	(void)fcntl(logp[0], F_SETPIPE_SZ, 1 << 20);
	if (pipe2(inp, O_CLOEXEC) < 0) {
		lemon_err_errno(err, errno, "pipe");
		goto fail_log;
	}
	pid = fork();
	if (pid == 0)
		child_exec(s, (char **)argv, envp, logp[1], inp[0], parent);
	if (pid < 0) {
		lemon_err_errno(err, errno, "fork");
		close(inp[0]);
		close(inp[1]);
		goto fail_log;
	}
	/* a second setpgid closes the race with kill(-pid) before the child
	 * ran its own */
	setpgid(pid, pid);
	close(inp[0]);
	close(inp[1]);
	close(logp[1]);
	free(envp);
	out->pid = pid;
	out->log_fd = logp[0];
	fcntl(out->log_fd, F_SETFL, O_NONBLOCK);
	return 0;
fail_log:
	close(logp[0]);
	close(logp[1]);
	free(envp);
	return -1;
}

static bool executable(const char *p)
{
	return p[0] == '/' && access(p, X_OK) == 0;
}

static int provision_candidate(struct backends *b, struct backends_candidate *c,
			       struct lemon_err *err)
{
	const struct backends_opts *o = &b->o;
	/* cancelled with the pulls at shutdown: the supervisor's own
	 * install of a fallback's bundle would otherwise hold the
	 * supervisor thread, and the server's stop, until the download
	 * ended (the .part stays for the next one) */
	struct provision_opts po = { .mirror = o->mirror,
				     .data_dir = o->data_dir,
				     .cancel = &b->pulls_cancelled };
	const struct compat_backend_asset *a = NULL;
	struct compat_backends *bm = NULL;
	struct provision_result *res;
	char name[48];
	bool needs_target = false;
	int rc = -1;

	res = calloc(1, sizeof(*res));
	if (res == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	if (c->target[0])
		snprintf(name, sizeof(name), "llamacpp:%s:%s", c->kind, c->target);
	else
		snprintf(name, sizeof(name), "llamacpp:%s", c->kind);
	if (compat_backends_load(o->compat_dir, &bm, err) == 0 &&
	    provision_find(bm, name, &a, &needs_target, err) == 0 &&
	    backends_install(b, a, &po, res, err) == 0) {
		lemon_str_copy(c->exe, sizeof(c->exe), res->exe);
		rc = 0;
	} else if (needs_target) {
		lemon_err_set(err, LEMON_ERR_INVALID_ARG,
			      "%s needs a gfx target", name);
	}
	/* provision_install names the backend in its messages already */
	compat_backends_free(bm);
	free(res);
	return rc;
}

int backends_resolve_exe(struct backends *b, struct backends_candidate *c,
			 struct lemon_err *err)
{
	const struct backends_opts *o = &b->o;
	struct provision_installed *inst;
	int n = 0, i;

	if (c->exe[0]) {
		if (executable(c->exe))
			return 0;
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "%s is not an executable file", c->exe);
	}
	inst = calloc(PROVISION_MAX_INSTALLED, sizeof(*inst));
	if (inst == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	if (provision_list(o->data_dir, inst, PROVISION_MAX_INSTALLED, &n,
			   err) < 0)
		n = 0;
	lemon_err_clear(err);
	for (i = 0; i < n; i++) {
		if (strcmp(inst[i].kind, c->kind) != 0 || !inst[i].works)
			continue;
		if (c->target[0] && strcmp(inst[i].family, c->target) != 0)
			continue;
		if (executable(inst[i].exe)) {
			lemon_str_copy(c->exe, sizeof(c->exe), inst[i].exe);
			free(inst);
			return 0;
		}
	}
	free(inst);
	return provision_candidate(b, c, err);
}
