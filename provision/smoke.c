/* The smoke test a new bundle passes before it becomes the current
 * version: its llama-server runs and answers --version (flm: `flm
 * version`, the target's "smoke" argument) within a time limit. A bundle
 * built for another glibc, missing a library or truncated in a way its
 * archive did not show fails here, while the version it was to replace
 * still works. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "provision/provision-private.h"
#include "util/str.h"

#define SMOKE_TIMEOUT_MS 15000

extern char **environ;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* reads the child's output (the first bytes kept, the rest drained) until
 * it closes the pipe or the time is up; false on time-out */
static bool drain(int fd, char *out, size_t cap, size_t *len)
{
	double end = now_ms() + SMOKE_TIMEOUT_MS;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[4096];
	ssize_t r;
	size_t take;

	for (;;) {
		int left = (int)(end - now_ms());

		if (left <= 0)
			return false;
		if (poll(&p, 1, left) < 0 && errno != EINTR)
			return false;
		r = read(fd, buf, sizeof(buf));
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return true;
		take = *len + (size_t)r < cap ? (size_t)r : cap - *len;
		memcpy(out + *len, buf, take);
		*len += take;
	}
}

/* the first non-empty line of the output, for the message */
static void first_line(char *out, size_t len)
{
	char *s = out, *nl;

	out[len] = 0;
	while (*s == '\n' || *s == '\r')
		s++;
	nl = strpbrk(s, "\r\n");
	if (nl)
		*nl = 0;
	memmove(out, s, strlen(s) + 1);
}

int provision_smoke_start(const char *exe, const char *arg,
			  struct provision_smoke *sm, struct lemon_err *err)
{
	char *argv[] = { (char *)exe, (char *)arg, NULL };
	posix_spawn_file_actions_t fa;
	int pfd[2], rc;

	memset(sm, 0, sizeof(*sm));
	sm->fd = -1;
	sm->arg = arg;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return provision_err_errno(err, errno, "creating a pipe", NULL);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	rc = posix_spawn(&sm->pid, exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (rc != 0) {
		close(pfd[0]);
		sm->pid = 0;
		sm->spawn_errno = rc;
		return 0; /* reported by provision_smoke_finish */
	}
	sm->fd = pfd[0];
	return 0;
}

int provision_smoke_finish(struct provision_smoke *sm, const char *what,
			   struct lemon_err *err)
{
	const char *arg = sm->arg;
	char out[512];
	size_t len = 0;
	int status = 0;
	bool done;

	if (sm->pid <= 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "smoke test: cannot run %s %s: %s", what, arg,
				     strerror(sm->spawn_errno ? sm->spawn_errno : EINVAL));
	done = drain(sm->fd, out, sizeof(out) - 1, &len);
	close(sm->fd);
	sm->fd = -1;
	if (!done)
		kill(sm->pid, SIGKILL);
	while (waitpid(sm->pid, &status, 0) < 0 && errno == EINTR)
		;
	sm->pid = 0;
	first_line(out, len);
	if (!done)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "smoke test: %s %s did not finish within %d s",
				     what, arg, SMOKE_TIMEOUT_MS / 1000);
	if (WIFSIGNALED(status))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "smoke test: %s %s was killed by signal %d: %s",
				     what, arg, WTERMSIG(status), out);
	if (WEXITSTATUS(status) != 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "smoke test: %s %s exited with status %d: %s",
				     what, arg, WEXITSTATUS(status), out);
	return 0;
}
