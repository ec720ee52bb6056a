/* `lemon serve`'s detection (moved out of cli/cmd_serve.c, unchanged):
 * run in a short-lived child with a deadline (a driver that hangs in its
 * probe hangs only the child; the retry leaves out the CUDA and Vulkan
 * probes), the backend choice and what it says about memory passed back
 * over a pipe with /api/v1/system-info's JSON */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/serve-private.h"
#include "doctor/doctor.h"
#include "util/str.h"

#define DETECT_ANSWER_MAX (8u << 20)

/* where detection looks: the paths of serve's arguments */
struct where {
	const char *sysroot;
	const char *compat_dir;
	const char *data_dir;
};

/* the llama.cpp device of a CUDA or Vulkan candidate. CUDA numbers the
 * devices the driver probe saw (under the same CUDA_VISIBLE_DEVICES and
 * CUDA_DEVICE_ORDER the child inherits). ggml's Vulkan numbers only the
 * GPUs it keeps, which on a hybrid machine may put the iGPU first: the
 * child is shown just this GPU's Vulkan device, by its index in the
 * loader's list, unless the user chose with GGML_VK_VISIBLE_DEVICES */
static void note_device(const struct detect_report *rep,
			const struct detect_gpu *gpu, const char *backend,
			char *device, char *env, int *vk)
{
	int d;

	*vk = -1;
	if (strcmp(backend, "cuda") == 0 && gpu->cuda_index >= 0) {
		snprintf(device, 16, "CUDA%d", gpu->cuda_index);
		return;
	}
	if (strcmp(backend, "vulkan") != 0)
		return;
	snprintf(device, 16, "Vulkan0");
	if (getenv("GGML_VK_VISIBLE_DEVICES"))
		return;
	/* by PCI address where the driver gives one, else by id */
	for (d = 0; d < rep->vulkan.n_devices; d++)
		if (strcmp(rep->vulkan.devices[d].pci_bdf, gpu->pci.bdf) == 0) {
			snprintf(env, 64, "GGML_VK_VISIBLE_DEVICES=%d", d);
			*vk = d;
			return;
		}
	for (d = 0; d < rep->vulkan.n_devices; d++)
		if (rep->vulkan.devices[d].vendor_id == gpu->pci.vendor &&
		    rep->vulkan.devices[d].device_id == gpu->pci.device) {
			snprintf(env, 64, "GGML_VK_VISIBLE_DEVICES=%d", d);
			*vk = d;
			return;
		}
}

/* RAM and, per candidate, the memory of the GPU it runs on: what its
 * driver reports free when it does (CUDA), so that memory other
 * programs hold is not planned for, else the device's size */
static void note_mem(const struct doctor_result *res, struct cli_serve_mem *mem)
{
	const struct detect_cuda *cu = &res->report.cuda;
	const struct detect_gpu *gpu;
	bool igpu;
	int i, g, v;

	memset(mem, 0, sizeof(*mem));
	if (res->report.host.has_ram)
		mem->ram = res->report.host.ram_bytes;
	for (g = 0; g < res->report.n_gpus && g < DETECT_MAX_GPUS; g++) {
		char dev[16] = "", env[64] = "";

		gpu = &res->report.gpus[g];
		mem->gpu[g].vendor = gpu->pci.vendor;
		for (v = 0; v < res->view.n_gpus; v++)
			if (res->view.gpus[v].index == g)
				mem->gpu[g].igpu = strcmp(res->view.gpus[v].kind, "igpu") == 0;
		note_device(&res->report, gpu, "vulkan", dev, env, &mem->gpu[g].vk_index);
		if (gpu->has_vram)
			mem->gpu[g].free_bytes = gpu->vram_bytes;
		/* a CUDA GPU by its driver ordinal, with what is free on it */
		if (gpu->cuda_index >= 0 && gpu->cuda_index < cu->n_devices) {
			snprintf(mem->gpu[g].device, sizeof(mem->gpu[g].device),
				 "CUDA%d", gpu->cuda_index);
			if (cu->devices[gpu->cuda_index].has_free)
				mem->gpu[g].free_bytes =
					cu->devices[gpu->cuda_index].free_bytes;
		}
		mem->n_gpus = g + 1;
	}
	for (i = 0; i < res->choice.n && i < COMPAT_MAX_CANDIDATES; i++) {
		mem->vk_index[i] = -1;
		mem->gpu_of[i] = -1;
		g = res->choice.c[i].gpu_index; /* into report.gpus */
		if (g < 0 || g >= res->report.n_gpus)
			continue;
		igpu = g < DETECT_MAX_GPUS && mem->gpu[g].igpu;
		mem->gpu_of[i] = g < DETECT_MAX_GPUS ? g : -1;
		gpu = &res->report.gpus[g];
		mem->vendor[i] = gpu->pci.vendor;
		mem->igpu[i] = igpu;
		note_device(&res->report, gpu, res->choice.c[i].backend,
			    mem->device[i], mem->env[i], &mem->vk_index[i]);
		if (gpu->cuda_index >= 0 && gpu->cuda_index < cu->n_devices &&
		    cu->devices[gpu->cuda_index].has_free) {
			mem->vram[i] = cu->devices[gpu->cuda_index].free_bytes;
			mem->vram_free[i] = true;
			continue;
		}
		if (gpu->has_vram)
			mem->vram[i] = gpu->vram_bytes;
		/* an APU's carve-out is small; it also maps system memory */
		if (igpu && gpu->has_gtt)
			mem->vram[i] += gpu->gtt_bytes;
	}
}

/* detection for the candidate order and /api/v1/system-info; a failure
 * leaves the CPU path and a null system-info */
static char *detect_here(const struct where *a, bool vulkan,
			 struct compat_choice *choice, struct cli_serve_mem *mem,
			 bool *have)
{
	/* the retry after a hang leaves out both probes that load a driver */
	struct detect_options dopts = { .vulkan = vulkan, .no_cuda = !vulkan };
	struct lemon_err err = { 0 };
	struct lemon_root *root = NULL;
	struct compat_db *db = NULL;
	struct doctor_result *res = calloc(1, sizeof(*res));
	char *json = NULL, flm[4096];

	*have = false;
	dopts.flm_installed = cli_flm_installed(a->data_dir, flm, sizeof(flm));
	if (res && detect_root_new(a->sysroot, &root, &err) == 0 &&
	    compat_db_load(a->compat_dir, &db, &err) == 0 &&
	    doctor_run(root, db, &dopts, res, &err) == 0) {
		*choice = res->choice;
		note_mem(res, mem);
		*have = true;
		json = doctor_to_json(res, false);
		doctor_result_free(res);
	} else {
		fprintf(stderr, "lemon: detection failed (%s); using the CPU backend\n",
			err.msg);
	}
	free(res);
	compat_db_free(db);
	detect_root_free(root);
	return json;
}

static bool write_full(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		c += w;
		n -= (size_t)w;
	}
	return true;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* reads the child's answer: the choice and memory structs, then the JSON
 * to EOF; *late when the deadline passed first */
static char *read_answer(int fd, int64_t deadline, struct compat_choice *choice,
			 struct cli_serve_mem *mem, bool *have, bool *late)
{
	size_t len = 0, cap = 65536, head;
	char *buf = malloc(cap + 1), *p;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int left;

	if (buf == NULL)
		return NULL;
	for (;;) {
		left = (int)(deadline - mono_ms());
		if (left <= 0 || poll(&pfd, 1, left) == 0) {
			*late = true;
			break;
		}
		n = read(fd, buf + len, cap - len);
		if (n == 0)
			break;
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			if (cap >= DETECT_ANSWER_MAX || (p = realloc(buf, cap * 2 + 1)) == NULL)
				break;
			buf = p;
			cap *= 2;
		}
	}
	head = 1 + sizeof(*choice) + sizeof(*mem);
	if (*late || len < head || buf[0] != 1) {
		free(buf);
		return NULL;
	}
	memcpy(choice, buf + 1, sizeof(*choice));
	memcpy(mem, buf + 1 + sizeof(*choice), sizeof(*mem));
	*have = true;
	memmove(buf, buf + head, len - head);
	buf[len - head] = 0;
	return buf;
}

/* LEMON_DETECT_TIMEOUT_MS: how long detection may take (default 20 s) */
static int detect_timeout_ms(void)
{
	const char *v = getenv("LEMON_DETECT_TIMEOUT_MS");
	uint64_t n;

	if (v && lemon_parse_u64(v, strlen(v), 10, 600000, &n, NULL) == 0 && n)
		return (int)n;
	return 20000;
}

/* a detection child past its deadline: killed, reaped if it goes within
 * 2 s (one stuck in a driver may not even die; it is left behind) */
static void end_child(pid_t pid, bool kill_it)
{
	int64_t deadline = mono_ms() + 2000;
	int status;

	if (kill_it)
		kill(pid, SIGKILL);
	for (;;) {
		pid_t r = waitpid(pid, &status, kill_it ? WNOHANG : 0);

		if (r == pid || (r < 0 && errno != EINTR) || mono_ms() > deadline)
			return;
		if (r == 0)
			usleep(20000);
	}
}

/* detection runs in a short-lived child: probing Vulkan loads the ICDs
 * (llvmpipe pulls in all of LLVM) and libpci, which would otherwise stay
 * mapped in the long-running server for nothing; and a driver that hangs
 * in the probe hangs only the child, which is given up at the deadline */
static char *detect_child(const struct where *a, bool vulkan, int ms,
			  int lock_fd, struct compat_choice *choice,
			  struct cli_serve_mem *mem, bool *have, bool *late)
{
	int fds[2];
	char *json;
	pid_t pid;

	*have = false;
	*late = false;
	if (pipe2(fds, O_CLOEXEC) < 0 || (pid = fork()) < 0)
		return detect_here(a, vulkan, choice, mem, have);
	if (pid == 0) {
		char ok;

		/* a child stuck in a driver must not keep the data
		 * directory's lock after lemon is gone */
		close(lock_fd);
		close(fds[0]);
		json = detect_here(a, vulkan, choice, mem, have);
		ok = *have && json != NULL;
		if (write_full(fds[1], &ok, 1) && ok &&
		    write_full(fds[1], choice, sizeof(*choice)) &&
		    write_full(fds[1], mem, sizeof(*mem)))
			write_full(fds[1], json, strlen(json));
		_exit(0);
	}
	close(fds[1]);
	json = read_answer(fds[0], mono_ms() + ms, choice, mem, have, late);
	close(fds[0]);
	end_child(pid, *late);
	return json;
}

char *cli_serve_detect(const char *sysroot, const char *compat_dir,
		       const char *data_dir, int lock_fd,
		       struct compat_choice *choice, struct cli_serve_mem *mem,
		       bool *have, bool *no_vulkan)
{
	const struct where w = { sysroot, compat_dir, data_dir }, *a = &w;
	int ms = detect_timeout_ms();
	bool late;
	char *json = detect_child(a, true, ms, lock_fd, choice, mem, have, &late);

	*no_vulkan = late;
	if (!late)
		return json;
	fprintf(stderr, "lemon: detection did not finish within %d ms (a hanging GPU, CUDA or Vulkan driver?); detecting again without the CUDA and Vulkan probes\n",
		ms);
	json = detect_child(a, false, ms, lock_fd, choice, mem, have, &late);
	if (late)
		fprintf(stderr, "lemon: detection without Vulkan did not finish within %d ms either; using the CPU backend\n",
			ms);
	else
		fprintf(stderr, "lemon: continuing without Vulkan: the vulkan backend is not used\n");
	return json;
}
