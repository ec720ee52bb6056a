/* server: lemon's HTTP front end (its own HTTP/1.1 server, one thread per
 * connection so a blocking upstream read streams each event to the client
 * as it arrives). OpenAI routes are proxied to the supervised llama-server
 * children; /api/v1 routes report health, system info and the last
 * request's stats and load or unload models. Also the serve configuration:
 * defaults, then the config file, then the environment; the CLI applies
 * flags last. */
#ifndef LEMON_SERVER_H
#define LEMON_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "backends/backends.h"
#include "util/err.h"

struct server_config {
	char host[64];         /* "127.0.0.1" */
	int port;              /* 8000 */
	char api_key[256];     /* "" = no authentication */
	/* origins (comma-separated, "*" = any) whose pages may call the API
	 * and get CORS headers; "" = none, only the server's own */
	char cors_origin[1024];
	char backend[16];      /* "auto", "rocm", "vulkan", "cpu" */
	int ctx_size;          /* 0 = the model's */
	char mirror[512];      /* "" = provision's default */
	size_t max_body;       /* request body limit, bytes (413 above) */
	size_t max_image_body; /* the same for the routes that take images */
	int timeout_s;         /* request body deadline, keep-alive idle time */
	int header_timeout_s;  /* request head deadline (total, not idle) */
	int upstream_timeout_s; /* longest wait for the backend's next bytes */
	int max_conns;
	int max_conns_per_client; /* from one client address */
	char workers[600];     /* `lemon worker`s, "HOST:PORT,..."; "" none */
};

void server_config_defaults(struct server_config *c);

/* reads a JSON object of the keys above (host, port, api_key, api_key_file
 * (the key from a file's first line), cors_origin, backend, ctx_size,
 * mirror, max_body, max_image_body, timeout, header_timeout, upstream_timeout, max_conns,
 * max_conns_per_client); path NULL: $XDG_CONFIG_HOME/lemon/config.json (or
 * ~/.config/lemon/config.json). A missing file is not an error; unknown
 * keys and bad values are INVALID_DATA naming the file and key. */
int server_config_load_file(struct server_config *c, const char *path,
			    struct lemon_err *err);

/* LEMON_HOST, LEMON_PORT, LEMON_API_KEY, LEMON_API_KEY_FILE,
 * LEMON_CORS_ORIGIN, LEMON_BACKEND, LEMON_CTX_SIZE, LEMON_MIRROR,
 * LEMON_MAX_BODY, LEMON_MAX_IMAGE_BODY, LEMON_TIMEOUT, LEMON_HEADER_TIMEOUT,
 * LEMON_UPSTREAM_TIMEOUT, LEMON_MAX_CONNS, LEMON_MAX_CONNS_PER_CLIENT;
 * INVALID_ARG names the variable */
int server_config_load_env(struct server_config *c, struct lemon_err *err);

/* sets one key by its config-file name from a string (used by env and
 * flags); INVALID_ARG for an unknown key or bad value */
int server_config_set(struct server_config *c, const char *key,
		      const char *val, struct lemon_err *err);

struct server;

/* starts listening; b and data_dir are borrowed, system_info (the doctor
 * JSON, may be NULL) is copied */
int server_start(const struct server_config *c, struct backends *b,
		 const char *data_dir, const char *system_info,
		 struct server **out, struct lemon_err *err);

/* stops accepting new connections; idle keep-alive connections end,
 * in-flight responses continue and their connections close after them */
void server_quiesce(struct server *s);

/* stops accepting, ends every connection (its socket is shut down) and
 * waits up to 10 s for the connection threads, then frees; s may be NULL.
 * -1 when a thread was still busy (inside a route, e.g. blocked on a
 * backend): s is then left allocated, and what the routes use (the
 * backends) must not be freed either */
int server_stop(struct server *s);

#endif
