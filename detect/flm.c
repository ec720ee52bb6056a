/* finds flm and asks it its version. The answer is read from the child's
 * output with a deadline, so a hung or chatty flm cannot stall doctor. */
#include "detect/flm.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/str.h"

#define FLM_OUT_MAX 4096
#define FLM_TIMEOUT_MS 5000

bool detect_flm_parse_version(const char *text, size_t len, char *out,
			      size_t cap)
{
	size_t i = 0, j;
	uint32_t parts[4];
	int n;

	while (i < len) {
		if (text[i] < '0' || text[i] > '9') {
			i++;
			continue;
		}
		j = i;
		while (j < len &&
		       ((text[j] >= '0' && text[j] <= '9') || text[j] == '.'))
			j++;
		while (j > i && text[j - 1] == '.')
			j--;
		n = lemon_parse_version(text + i, j - i, parts, 4, NULL);
		if (n >= 2) {
			snprintf(out, cap, "%u.%u.%u", parts[0], parts[1],
				 n >= 3 ? parts[2] : 0);
			return true;
		}
		i = j + 1;
	}
	return false;
}

static bool find_on_path(char *out, size_t cap)
{
	const char *path = getenv("PATH"), *p, *end;

	if (path == NULL)
		return false;
	for (p = path; *p; p = *end ? end + 1 : end) {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		if (end == p)
			continue;
		if (snprintf(out, cap, "%.*s/flm", (int)(end - p), p) <
			    (int)cap &&
		    access(out, X_OK) == 0)
			return true;
	}
	return false;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* runs `path version`, collecting at most FLM_OUT_MAX bytes */
static int run_version(const char *path, char *buf, size_t cap, size_t *len,
		       char *why, size_t why_cap)
{
	int fds[2], status = 0;
	long deadline = now_ms() + FLM_TIMEOUT_MS;
	pid_t pid;
	ssize_t r;

	*len = 0;
	if (pipe(fds) < 0) {
		snprintf(why, why_cap, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(why, why_cap, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		char *argv[] = { (char *)path, (char *)"version", NULL };

		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execv(path, argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd pfd = { fds[0], POLLIN, 0 };
		long left = deadline - now_ms();

		int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			kill(pid, SIGKILL);
			snprintf(why, why_cap, "'%.80s version' did not answer",
				 path);
			break;
		}
		if (*len + 1 >= cap) {
			kill(pid, SIGKILL);
			break;
		}
		r = read(fds[0], buf + *len, cap - 1 - *len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		*len += (size_t)r;
	}
	buf[*len] = '\0';
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (why[0] == '\0' && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		snprintf(why, why_cap, "'%.80s version' failed (status %d)",
			 path, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return why[0] ? -1 : 0;
}

void detect_flm_probe(struct detect_flm *out, const char *installed)
{
	const char *env = getenv("LEMON_FLM");
	char buf[FLM_OUT_MAX];
	size_t len;

	memset(out, 0, sizeof(*out));
	if (env != NULL) {
		if (env[0] == '\0' || access(env, X_OK) != 0)
			return;
		lemon_str_copy(out->path, sizeof(out->path), env);
	} else if (installed != NULL && installed[0] &&
		   access(installed, X_OK) == 0) {
		/* the pinned version lemon installed wins over a stray one */
		lemon_str_copy(out->path, sizeof(out->path), installed);
	} else if (!find_on_path(out->path, sizeof(out->path))) {
		out->path[0] = '\0';
		return;
	}
	out->found = true;
	if (run_version(out->path, buf, sizeof(buf), &len, out->error,
			sizeof(out->error)) < 0)
		return;
	if (!detect_flm_parse_version(buf, len, out->version,
				      sizeof(out->version)))
		snprintf(out->error, sizeof(out->error),
			 "'%.80s version' named no version", out->path);
}
