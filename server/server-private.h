/* shared between the files of server/ only */
#ifndef LEMON_SERVER_PRIVATE_H
#define LEMON_SERVER_PRIVATE_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>

#include "server/server.h"

struct srv_stats {
	bool valid;
	char model[BACKENDS_NAME_MAX];
	char backend[16];
	char endpoint[32];
	bool stream;
	bool ok;
	double ttft_ms;      /* request arrival to first generated text */
	double total_ms;
	double tokens_per_second;
	int64_t prompt_tokens;
	int64_t completion_tokens;
};

struct server {
	struct server_config cfg;
	struct backends *b;
	char data_dir[4096];
	char *sysinfo;
	struct MHD_Daemon *d;
	pthread_mutex_t mu; /* guards last */
	struct srv_stats last;
};

/* one request: its body, kept up to cfg.max_body */
struct srv_req {
	bool started;
	bool too_large;
	int64_t t0; /* monotonic ms at the first call */
	char *body;
	size_t len;
	size_t cap;
};

int64_t srv_now_ms(void);

/* queue a JSON body (copied) with CORS headers */
enum MHD_Result srv_send_json(struct server *s, struct MHD_Connection *conn,
			      unsigned status, const char *json);

/* the OpenAI error shape: {"error":{"message","type","param","code"}} */
enum MHD_Result srv_send_error(struct server *s, struct MHD_Connection *conn,
			       unsigned status, const char *type,
			       const char *code, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* maps a lemon error to an HTTP status and error body */
enum MHD_Result srv_send_lemon_err(struct server *s,
				   struct MHD_Connection *conn,
				   const struct lemon_err *err);

void srv_add_cors(struct server *s, struct MHD_Response *r);

/* POST /v1/chat/completions, /v1/completions, /v1/embeddings */
enum MHD_Result srv_proxy(struct server *s, struct MHD_Connection *conn,
			  const char *url, struct srv_req *req);

/* GET /v1/models, /api/v1/{health,system-info,stats}, POST load/unload */
enum MHD_Result srv_api(struct server *s, struct MHD_Connection *conn,
			const char *url, const char *method,
			struct srv_req *req);

void srv_stats_record(struct server *s, const struct srv_stats *st);

/* libmicrohttpd is opened on first use (lazy_mhd.c) */
int server_mhd_load(struct lemon_err *err);

#endif
