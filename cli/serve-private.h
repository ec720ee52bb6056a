/* shared by `lemon serve`'s files only (cli/cmd_serve.c,
 * cli/serve_detect.c) */
#ifndef LEMON_CLI_SERVE_PRIVATE_H
#define LEMON_CLI_SERVE_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backends.h"
#include "compat/compat.h"
#include "detect/detect.h"

/* what detection says about memory, passed from the detection child with
 * the choice: RAM, and the VRAM of each choice candidate's GPU */
struct cli_serve_mem {
	uint64_t ram;
	uint64_t vram[COMPAT_MAX_CANDIDATES];
	bool vram_free[COMPAT_MAX_CANDIDATES]; /* the driver's free memory */
	char device[COMPAT_MAX_CANDIDATES][16]; /* llama.cpp's device name */
	char env[COMPAT_MAX_CANDIDATES][64];    /* selecting that device */
	int vk_index[COMPAT_MAX_CANDIDATES];    /* in the Vulkan loader's list */
	uint16_t vendor[COMPAT_MAX_CANDIDATES];
	bool igpu[COMPAT_MAX_CANDIDATES];
	int gpu_of[COMPAT_MAX_CANDIDATES]; /* into gpu[]; -1: none */
	/* every GPU detection saw: the choice names one Vulkan candidate
	 * (the first GPU), which may span the others of its vendor */
	int n_gpus;
	struct backends_gpu_seen gpu[DETECT_MAX_GPUS];
};

/* detection (cli/serve_detect.c) in a child given up after
 * LEMON_DETECT_TIMEOUT_MS (default 20 s), then once more without the CUDA
 * and Vulkan probes (*no_vulkan: the Vulkan candidate is to be left
 * out): the backend choice and memory (*have: known) and the doctor's
 * JSON for /api/v1/system-info (NULL when detection failed: the CPU
 * path). lock_fd: the data directory's lock, closed in the child */
char *cli_serve_detect(const char *sysroot, const char *compat_dir,
		       const char *data_dir, int lock_fd,
		       struct compat_choice *choice, struct cli_serve_mem *mem,
		       bool *have, bool *no_vulkan);

#endif
