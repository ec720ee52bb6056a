/* the command-line front end: one file per command group; only the CLI maps
 * error codes to exit statuses */
#ifndef LEMON_CLI_H
#define LEMON_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"
#include "util/http1.h"

/* exit statuses shared by every command */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_DEGRADED = 1, /* doctor: problems degrade the path; others: failure */
	CLI_EXIT_USAGE = 2,
};

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;
};

/* maps an error to an exit status and prints "lemon: <message>" */
int cli_fail(const struct lemon_err *err);

int cli_cmd_doctor(int argc, char **argv);      /* cli/cmd_doctor.c */
int cli_cmd_system_info(int argc, char **argv); /* cli/cmd_doctor.c */
int cli_cmd_install_backend(int argc, char **argv);   /* cli/cmd_backend.c */
int cli_cmd_backends(int argc, char **argv);          /* cli/cmd_backend.c */
int cli_cmd_uninstall_backend(int argc, char **argv); /* cli/cmd_backend.c */
/* provision_opts.smoke: a new bundle serves the smallest installed model
 * (if one under 64 MiB is) on loopback (cli/backend_health.c) */
int cli_backend_health(void *ctx, const char *exe, struct lemon_err *err);
/* the flm `lemon install-backend flm` installed under data_dir (NULL: the
 * default), copied to buf; NULL when none works. cli/cmd_backend.c */
const char *cli_flm_installed(const char *data_dir, char *buf, size_t cap);
int cli_cmd_serve(int argc, char **argv); /* cli/cmd_serve.c */
/* the registry's flm models and the NPU verdict into b (cli/serve_flm.c) */
struct backends;
int cli_serve_flm(struct backends *b, const char *sysinfo,
		  const char *compat_dir, struct lemon_err *err);
int cli_cmd_pull(int argc, char **argv);  /* cli/cmd_models.c */
int cli_cmd_list(int argc, char **argv);  /* cli/cmd_models.c */
int cli_cmd_rm(int argc, char **argv);    /* cli/cmd_models.c */
int cli_cmd_run(int argc, char **argv);    /* cli/cmd_client.c */
int cli_cmd_ps(int argc, char **argv);     /* cli/cmd_client.c */
int cli_cmd_status(int argc, char **argv); /* cli/cmd_client.c */
int cli_cmd_stop(int argc, char **argv);   /* cli/cmd_client.c */
int cli_cmd_worker(int argc, char **argv); /* cli/cmd_worker.c */

/* ---- the HTTP client of the commands above (cli/client_http.c) ---- */

/* where the server is: --host/--port over LEMON_HOST/LEMON_PORT over the
 * config file, as lemon serve reads them; the API key likewise */
struct cli_target {
	char host[64];
	int port;
	char api_key[256];
};

struct cli_http {
	int fd;
	unsigned status;
	struct lemon_http1_reader body; /* the body's framing (util/http1.h) */
	size_t pos, len;
	char buf[16384];
};

/* a connected socket; NOT_FOUND "no lemon server is running on H:P; start
 * one with: lemon serve" when nothing answers */
int cli_http_connect(const struct cli_target *t, struct lemon_err *err);

/* sends one request (body may be NULL) and reads the response head */
int cli_http_request(const struct cli_target *t, const char *method,
		     const char *path, const char *body, struct cli_http *h,
		     struct lemon_err *err);

/* the next body bytes as they arrive: >0, 0 at the end, -1 broken off */
ssize_t cli_http_read(struct cli_http *h, char *out, size_t max);

/* the rest of the body, NUL-terminated; NULL when broken or over max */
char *cli_http_read_all(struct cli_http *h, size_t max);

void cli_http_close(struct cli_http *h);

struct backends_gpu_seen;
struct backends_opts;

/* serve --device (cli/serve_device.c): llama.cpp device names of one
 * backend kind */
#define CLI_MAX_DEVICES 8
struct cli_devices {
	int n;
	char kind[16];  /* "cuda", "vulkan", "rocm" */
	char list[64];  /* as given: "CUDA1", "Vulkan0,Vulkan1" */
	int cuda[CLI_MAX_DEVICES]; /* CUDA ordinals */
};
int cli_serve_devices(const char *v, struct cli_devices *out,
		      struct lemon_err *err);
/* the chosen devices onto the candidates of their kind; gpus: every GPU
 * detection saw (CUDA ones named "CUDA<n>" with their free memory) */
void cli_apply_devices(const struct cli_devices *d,
		       const struct backends_gpu_seen *gpus, int n_gpus,
		       struct backends_opts *o);

#endif
