/* The second smoke test of a new backend bundle, after its `llama-server
 * --version`: when a small model is installed, the new llama-server loads
 * it on a loopback port and must answer GET /health with 200 within 30 s,
 * before the bundle replaces the current version (provision_opts.smoke).
 * A build that starts but cannot serve (a missing CPU feature, a broken
 * backend library) is refused here while the version it was to replace
 * still works. It lives in the CLI because it needs both layers: the
 * model store (backends) and the install (provision). */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/backends.h"
#include "cli/cli.h"
#include "util/str.h"

#define HEALTH_MODEL_MAX (64ull << 20) /* a model this small loads in a second */
#define HEALTH_TIMEOUT_MS 30000

extern char **environ;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* the smallest installed model, if it is small enough; false when none */
static bool small_model(char *name, size_t cap, char *path, size_t pcap)
{
	struct backends_model *m = calloc(256, sizeof(*m));
	int n = 0, i, best = -1;
	bool ok = false;

	if (m != NULL && backends_list_models(NULL, m, 256, &n, NULL) == 0)
		for (i = 0; i < n; i++)
			if (m[i].size <= HEALTH_MODEL_MAX &&
			    (best < 0 || m[i].size < m[best].size))
				best = i;
	if (best >= 0 && lemon_str_copy(name, cap, m[best].name) &&
	    backends_model_path(NULL, name, path, pcap, NULL) == 0)
		ok = true;
	free(m);
	return ok;
}

/* a loopback port nobody listens on now */
static int pick_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* true when GET /health on port answers 200 */
static bool healthy(int port)
{
	static const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				  "Connection: close\r\n\r\n";
	char buf[64] = "";
	ssize_t r;
	int fd = backends_connect(port, 200, NULL);
	bool ok;

	if (fd < 0)
		return false;
	ok = send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof(req) - 1);
	if (ok) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		ok = poll(&p, 1, 1000) == 1 && (r = read(fd, buf, sizeof(buf) - 1)) > 12;
		ok = ok && strncmp(buf, "HTTP/1.1 200", 12) == 0;
	}
	close(fd);
	return ok;
}

static void stop(pid_t pid)
{
	int i, status;

	kill(pid, SIGTERM);
	for (i = 0; i < 30; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(100000);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/* waits for 200 from /health, or the child's end, or the time limit */
static int wait_healthy(pid_t pid, int port, const char *model,
			struct lemon_err *err)
{
	double end = now_ms() + HEALTH_TIMEOUT_MS;
	int status;

	while (now_ms() < end) {
		if (healthy(port))
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "llama-server with model %s ended (%s %d) before "
					     "answering /health", model,
					     WIFSIGNALED(status) ? "signal" : "status",
					     WIFSIGNALED(status) ? WTERMSIG(status) :
					     WEXITSTATUS(status));
		usleep(100000);
	}
	stop(pid);
	return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			     "llama-server with model %s did not answer /health within %d s",
			     model, HEALTH_TIMEOUT_MS / 1000);
}

int cli_backend_health(void *ctx, const char *exe, struct lemon_err *err)
{
	char model[BACKENDS_NAME_MAX], path[4096], port_s[16];
	char *argv[] = { (char *)exe, "-m", path, "--host", "127.0.0.1", "--port",
			 port_s, "-c", "256", "--no-webui", NULL };
	posix_spawn_file_actions_t fa;
	FILE *log;
	int port, rc;
	pid_t pid;

	(void)ctx;
	if (!small_model(model, sizeof(model), path, sizeof(path)))
		return 0; /* nothing small to load: --version was the test */
	port = pick_port();
	if (port < 0)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "no free loopback port");
	snprintf(port_s, sizeof(port_s), "%d", port);
	/* its log goes to an unlinked temporary file: not wanted, only kept
	 * off lemon's terminal */
	log = tmpfile();
	if (log == NULL)
		return lemon_err_errno(err, errno, "creating a temporary file");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fileno(log), 1);
	posix_spawn_file_actions_adddup2(&fa, fileno(log), 2);
	rc = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	fclose(log);
	if (rc != 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA, "cannot run %s: %s",
				     exe, strerror(rc));
	rc = wait_healthy(pid, port, model, err);
	if (rc == 0) {
		stop(pid);
		printf("smoke test: the new llama-server served model %s (/health 200)\n",
		       model);
	}
	return rc;
}
