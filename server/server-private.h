/* shared between the files of server/ only */
#ifndef LEMON_SERVER_PRIVATE_H
#define LEMON_SERVER_PRIVATE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <sys/types.h>
#include <pthread.h>
#include <stdint.h>

#include "server/body.h"
#include "server/server.h"

/* lemon's own HTTP/1.1 server (server/http.c) as the routes see it: a
 * request (struct server_conn) answered by queueing one response, made
 * from a buffer or from a content reader that may block (streaming). The
 * names follow the libmicrohttpd calls they replaced. */
enum server_result { SERVER_NO = 0, SERVER_YES = 1 };

struct server_conn;
struct server_response;

enum server_respmem {
	SERVER_RESPMEM_PERSISTENT, /* the buffer outlives the response */
	SERVER_RESPMEM_MUST_COPY,
};

/* a content reader's size when it is not known in advance: the response
 * goes out with chunked transfer encoding (HTTP/1.1) or until close */
#define SERVER_SIZE_UNKNOWN UINT64_MAX
/* what a content reader returns at the end of the body, and when the body
 * broke off (the connection is then closed without a proper end) */
#define SERVER_READER_END_OF_STREAM ((ssize_t)-1)
#define SERVER_READER_END_WITH_ERROR ((ssize_t)-2)

/* fills at most max bytes at offset pos; >0 bytes written (sent at once),
 * 0 means "nothing yet, call again", or one of the two ends above */
typedef ssize_t (*server_reader_fn)(void *cls, uint64_t pos, char *buf,
				    size_t max);
typedef void (*server_reader_free_fn)(void *cls);

struct server_response *server_response_from_buffer(size_t len, void *buf,
						    enum server_respmem mode);
/* block: the largest piece asked of the reader at once; free_cb (may be
 * NULL) runs when the response is done with, sent or not */
struct server_response *server_response_from_callback(uint64_t size, size_t block,
						      server_reader_fn reader,
						      void *cls,
						      server_reader_free_fn free_cb);
enum server_result server_response_add_header(struct server_response *r,
					      const char *name,
					      const char *value);
/* the connection keeps its own reference: destroy after queueing */
enum server_result server_queue_response(struct server_conn *c, unsigned status,
					 struct server_response *r);
void server_response_destroy(struct server_response *r);
/* a request header's value (case-insensitive name), NULL when absent */
const char *server_conn_header(struct server_conn *c, const char *name);

/* the HTTP/1.x request head (server/http1_request.c), parsed in place:
 * fields are NUL-terminated inside the caller's buffer */
#define SERVER_HTTP1_LINE_MAX 8192     /* request line; longer: 414 */
#define SERVER_HTTP1_HEAD_MAX 32768    /* whole head; larger: 431 */
#define SERVER_HTTP1_HEADERS_MAX 100   /* more fields: 431 */

struct server_http1_header {
	const char *name;
	const char *value; /* without surrounding spaces */
};

struct server_http1_request {
	char method[16];
	char *target; /* the path, without the query */
	char *query;  /* after '?', or NULL */
	int minor;    /* HTTP/1.<minor> */
	struct server_http1_header headers[SERVER_HTTP1_HEADERS_MAX];
	int n_headers;
	const char *host;   /* NULL when absent (HTTP/1.0 only) */
	bool has_length;
	uint64_t length;    /* Content-Length */
	bool chunked;       /* Transfer-Encoding: chunked */
	bool close;         /* Connection: close */
	bool keep_alive;    /* the connection may carry another request */
	bool expect_continue;
	size_t skipped;     /* empty lines before the request line */
	/* on error: the status to answer (400, 413, 414, 417, 431, 501,
	 * 505) and a fixed message */
	unsigned status;
	const char *why;
};

/* > 0: the head is complete and that many bytes long; 0: more bytes are
 * needed (every limit already holds for what is there); -1: refused, see
 * r->status and r->why */
int server_http1_parse_request(char *buf, size_t len,
			       struct server_http1_request *r);
/* a header's value by case-insensitive name (the first), or NULL */
const char *server_http1_header(const struct server_http1_request *r,
				const char *name);

struct server_stats {
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
	struct server_http *http; /* listener and connections (server/http.c) */
	pthread_mutex_t mu; /* guards last */
	struct server_stats last;
};

/* one request: its body, kept up to cfg.max_body */
struct server_req {
	bool started;
	bool too_large;
	int64_t t0; /* monotonic ms at the first call */
	char *body;
	size_t len;
	size_t cap;
};

/* what server_response_from_* build (server/http_response.c) */
struct server_response {
	int refs;
	char *body; /* a buffer response */
	size_t len;
	bool owned;
	uint64_t size; /* a reader's, or SERVER_SIZE_UNKNOWN */
	size_t block;
	server_reader_fn reader;
	void *cls;
	server_reader_free_fn free_cb;
	struct {
		char *p;
		size_t len, cap;
	} hdr;	    /* "Name: value\r\n" lines */
	bool close; /* the route asked for Connection: close */
};

/* one client connection (server/http_conn.c); the routes see it through
 * server_conn_header and the fields of req */
struct server_conn {
	struct server *s;
	int fd;
	uint32_t peer; /* IPv4 address, network order */
	struct server_conn *next, *prev;
	int64_t accepted; /* monotonic ms */
	int64_t idle_deadline;
	char *buf; /* the head, and bytes after it */
	size_t len, used, cap;
	bool fresh;     /* no request answered yet */
	bool keep;      /* keep-alive after this response */
	bool head_only; /* HEAD: the body is left out */
	struct server_http1_request req;
	struct server_response *resp;
	unsigned status;
};

/* the listener and its connections (server/http_listen.c) */
struct server_http {
	int lfd;
	int wake[2]; /* written to end the accept thread */
	pthread_t accept_thread;
	bool accepting;
	pthread_mutex_t mu; /* guards the list, n_conns and draining */
	pthread_cond_t cv;  /* a connection ended */
	struct server_conn *conns;
	int n_conns;
	bool draining;
};

struct server_conn *server_conn_new(struct server *s, int fd, uint32_t peer);
/* serves requests until the connection ends; the socket stays open
 * for server_conn_free (after the connection left the server's list) */
void server_conn_run(struct server_conn *c);
void server_conn_free(struct server_conn *c);

/* server/http.c: a request whose head and body are in, checked (Host,
 * Origin, key, Content-Type) and routed; a response is queued on c */
void server_dispatch(struct server_conn *c, struct server_req *req);
/* an error of the HTTP layer (parse, deadline, size, caps) as JSON in the
 * shape of the route family the target belongs to */
void server_send_http_error(struct server_conn *c, unsigned status,
			    const char *why);
/* the CORS headers for a request whose Origin is an allowed one */
void server_cors_headers(struct server_conn *c, struct server_response *r);
/* "/" and "/api/..." other than "/api/v1/...": Ollama's error shape */
bool server_is_ollama_route(const char *path);
/* an error message as it may go into a JSON body: valid UTF-8 (bad bytes
 * become U+FFFD) and no absolute data path (the data directory becomes
 * "<data>", $HOME "~") */
void server_clean_message(const struct server *s, const char *in, char *out,
			  size_t cap);

int64_t server_now_ms(void);

/* queue a JSON body (copied) with CORS headers */
enum server_result server_send_json(struct server *s, struct server_conn *conn,
			      unsigned status, const char *json);

/* the OpenAI error shape: {"error":{"message","type","param","code"}} */
enum server_result server_send_error(struct server *s, struct server_conn *conn,
			       unsigned status, const char *type,
			       const char *code, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* the same, naming the request field at fault in "param" (NULL or "":
 * null) */
enum server_result server_send_param_error(struct server *s, struct server_conn *conn,
					   unsigned status, const char *type, const char *param,
					   const char *code, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

/* maps a lemon error to an HTTP status and error body */
enum server_result server_send_lemon_err(struct server *s,
				   struct server_conn *conn,
				   const struct lemon_err *err);


/* POST /v1/chat/completions, /v1/completions, /v1/embeddings */
enum server_result server_proxy(struct server *s, struct server_conn *conn,
			  const char *url, struct server_req *req);

/* GET /v1/models, /api/v1/{health,system-info,stats}, POST load/unload
 * and shutdown (raises SIGTERM once answered); the Ollama routes */
enum server_result server_api(struct server *s, struct server_conn *conn,
			const char *url, const char *method,
			struct server_req *req);

/* an upstream request to a llama-server child for the routes that
 * translate (server/ollama.c): leases the child for model and role, sends
 * req's body to url and reads the response head; the body is then read
 * with server_upstream_read (>0 bytes, 0 at its end, -1 when it broke off).
 * load_ns: the time spent getting a ready child. Stats are recorded as for
 * the proxied routes. */
struct server_upstream;

int server_upstream_open(struct server *s, const char *url, const char *model,
		      enum backends_role role, const struct server_req *req,
		      struct server_upstream **out, unsigned *status,
		      int64_t *load_ns, struct lemon_err *err);
ssize_t server_upstream_read(struct server_upstream *u, char *out, size_t max);
void server_upstream_close(struct server_upstream *u);

/* the Ollama routes (server/ollama.c): GET /, /api/... other than
 * /api/v1/... */
enum server_result server_ollama(struct server *s, struct server_conn *conn,
			   const char *url, const char *method,
			   struct server_req *req);

/* shared by server/ollama.c and server/ollama_chat.c: Ollama's error shape
 * {"error":"..."}, the lemon error code mapped to its HTTP status, a body
 * parsed for a valid "model" (or "name") resolved against the store (a
 * ":latest" tag is dropped when only the bare name exists; NULL with the
 * error response queued in *rc), RFC 3339 UTC times (unix_s < 0: now) */
enum server_result server_ollama_send(struct server *s, struct server_conn *conn,
				unsigned status, cJSON *body);
enum server_result server_ollama_error(struct server *s, struct server_conn *conn,
				 unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
enum server_result server_ollama_lemon_err(struct server *s,
				     struct server_conn *conn,
				     const struct lemon_err *err);
cJSON *server_ollama_parse(struct server *s, struct server_conn *conn,
			const struct server_req *req, enum server_body_route route,
			char *model, size_t cap, enum server_result *rc);
void server_ollama_time(char *out, size_t cap, int64_t unix_s, long usec);
int64_t server_ollama_now_ns(void);

/* POST /api/pull and DELETE /api/delete (ollama true: NDJSON progress,
 * Ollama's error shape), POST /api/v1/pull (progress as server-sent
 * events) and /api/v1/delete (server/ollama_pull.c) */
enum server_result server_pull(struct server *s, struct server_conn *conn,
			 const struct server_req *req, bool ollama);
enum server_result server_delete(struct server *s, struct server_conn *conn,
			   const struct server_req *req, bool ollama);

/* POST /api/chat (chat true) and /api/generate (server/ollama_chat.c) */
enum server_result server_ollama_generate(struct server *s,
				    struct server_conn *conn,
				    const struct server_req *req, bool chat);

void server_stats_record(struct server *s, const struct server_stats *st);

/* ---- request bodies and child errors (server/body.c, server/body_reply.c) ---- */

/* req's body validated for route (server_body_parse): the parsed root,
 * which the caller frees, or NULL with a 400 queued in *rc, in the
 * route family's error shape and naming the field at fault */
cJSON *server_body_request(struct server *s, struct server_conn *conn,
			   const struct server_req *req, enum server_body_route route,
			   enum server_result *rc);

/* a child's answer with an error status, re-shaped for the client:
 * the same status (a 4xx stays the client's fault; outside 400-599 it is
 * a 502), the child's message when body[0..len) is its JSON error,
 * OpenAI's shape or (ollama) Ollama's */
enum server_result server_child_error(struct server *s, struct server_conn *conn, bool ollama,
				      unsigned status, const char *body, size_t len);

#endif
