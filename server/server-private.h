/* shared between the files of server/ only */
#ifndef LEMON_SERVER_PRIVATE_H
#define LEMON_SERVER_PRIVATE_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
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

/* what /metrics counts (server/stats.c), guarded by server.mu: bounded
 * tables, so a client cannot grow lemon's memory with new label values
 * (routes are the table's rows, models the store's names) */
#define SERVER_ROUTE_LABEL_MAX 64 /* a route's name in metrics */
#define SERVER_METRICS_REQ_MAX 256
#define SERVER_METRICS_MODEL_MAX 64
#define SERVER_METRICS_BUCKETS 11 /* the last is +Inf */

struct server_metrics_hist {
	uint64_t bucket[SERVER_METRICS_BUCKETS]; /* not cumulative */
	double sum;
	uint64_t count;
};

struct server_metrics {
	int n_req;
	struct {
		char route[SERVER_ROUTE_LABEL_MAX];
		unsigned code;
		uint64_t n;
	} req[SERVER_METRICS_REQ_MAX];
	int n_model;
	struct {
		char model[BACKENDS_NAME_MAX];
		char backend[16];
		uint64_t prompt_tokens, completion_tokens;
		struct server_metrics_hist ttft, tps;
	} model[SERVER_METRICS_MODEL_MAX];
	int pulls_active;
	uint64_t pulls_total;
	uint64_t pull_bytes;
	/* backend installs are counted by backends/ (every install the
	 * process makes, not only the API's): backends_snapshot's installs */
};

struct server {
	struct server_config cfg;
	struct backends *b;
	char data_dir[4096];
	char *sysinfo;
	struct server_http *http; /* listener and connections (server/http.c) */
	pthread_mutex_t mu; /* guards last and metrics */
	struct server_stats last;
	struct server_metrics metrics;
	atomic_bool installing; /* a POST /api/v1/backends/install runs */
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
	size_t max_body; /* this request's body limit (its route's) */
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

/* the error shapes clients parse: OpenAI {"error":{"message","type",
 * "param","code"}}, Ollama {"error":"..."}, Anthropic {"type":"error",
 * "error":{"type","message"}} */
enum server_shape {
	SERVER_SHAPE_OPENAI,
	SERVER_SHAPE_OLLAMA,
	SERVER_SHAPE_ANTHROPIC,
};

/* ---- routing (server/http.c: checks and dispatch; server/routes.c: the
 * table) ---- */

struct server_route;

/* one routed request as a handler sees it */
struct server_call {
	struct server *s;
	struct server_conn *c;
	struct server_req *req;
	const struct server_route *rt;
	const char *method; /* HEAD reads as GET */
	const char *path;
	const char *tail; /* SERVER_ROUTE_TAIL: the segment after the row's path */
};

typedef enum server_result (*server_handler_fn)(const struct server_call *k);

#define SERVER_ROUTE_PREFIXED 1u /* under /api/v0/, /api/v1/, /v0/ and /v1/ */
#define SERVER_ROUTE_TAIL 2u	 /* path is a prefix; one more segment follows */
#define SERVER_ROUTE_OPEN 4u	 /* GET without the API key (the web app's files, /live) */
#define SERVER_ROUTE_IMAGES 8u	 /* the body may carry images: cfg.max_image_body */

struct server_route {
	const char *method; /* "GET" (HEAD too), "POST", "DELETE" */
	const char *path;   /* without the prefix for SERVER_ROUTE_PREFIXED */
	unsigned flags;
	enum server_shape shape;
	server_handler_fn fn;
	/* forwarded routes: the child's path, the body's checks, the role */
	const char *upstream;
	enum server_body_route body;
	enum backends_role role;
};

/* the row for (method, path): NULL when no row has the path; a row of
 * the path with another method sets *other_method (a 405) */
const struct server_route *server_route_find(const char *method, const char *path,
					     const char **tail, bool *other_method);
/* the body limit of a request: cfg.max_image_body (or max_body when that
 * is larger) for the routes whose bodies carry base64 images (chat,
 * responses, Anthropic messages, Ollama chat and generate), max_body for
 * every other path, routed or not */
size_t server_route_body_limit(const struct server_config *cfg, const char *method,
			       const char *path);
/* the error shape for a path, routed or not */
enum server_shape server_route_shape(const char *path);
/* the route's name in metrics: "/v1/chat/completions" whatever prefix
 * was used, "other" for NULL (so labels stay a bounded set) */
void server_route_label(const struct server_route *r, char *out, size_t cap);

/* the checks a request head alone decides (Host, Origin, an OPTIONS
 * preflight, the key, Content-Type), made before its body is read: false
 * when the request is answered already (a refusal, in its route's error
 * shape, or the preflight's 204) and counted for /metrics; the caller
 * then never reads the body */
bool server_admit(struct server_conn *c);
/* a request that server_admit let through, its body in, routed; a
 * response is queued on c */
void server_dispatch(struct server_conn *c, struct server_req *req);
/* an error of the HTTP layer (parse, deadline, size, caps) as JSON in the
 * shape of the route family the target belongs to */
void server_send_http_error(struct server_conn *c, unsigned status,
			    const char *why);

/* ---- responses (server/http_response.c, server/respond.c): the leaves
 * every handler calls ---- */

/* the CORS headers for a request whose Origin is an allowed one */
void server_cors_headers(struct server_conn *c, struct server_response *r);
/* o is in the comma-separated cors_origin list ("*": any) */
bool server_origin_listed(const struct server *s, const char *o);
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

/* an error in the given shape; code is OpenAI's "code" (other shapes
 * have none) */
enum server_result server_send_shaped(struct server *s, struct server_conn *conn,
				      enum server_shape shape, unsigned status, const char *code,
				      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* the HTTP status of a lemon error, the same for every shape */
unsigned server_err_status(enum lemon_err_code code);

/* a lemon error as server_err_status's status and an error body */
enum server_result server_send_lemon_err_shaped(struct server *s, struct server_conn *conn,
						enum server_shape shape,
						const struct lemon_err *err);
/* the same in the OpenAI shape */
enum server_result server_send_lemon_err(struct server *s,
				   struct server_conn *conn,
				   const struct lemon_err *err);

/* ---- handlers ---- */

/* a forwarded route (rt->upstream): the body checked for rt->body, a
 * child of rt->role leased, the request sent unchanged and the answer
 * streamed back (server/proxy.c) */
enum server_result server_proxy(struct server *s, struct server_conn *conn,
				const struct server_route *rt, struct server_req *req);

/* lemon's own routes (server/api.c): GET models, models/{id}, health,
 * system-info, stats, /live; POST load, unload, shutdown (raises SIGTERM
 * once answered) */
enum server_result server_api_models(const struct server_call *k);
enum server_result server_api_model(const struct server_call *k);
enum server_result server_api_health(const struct server_call *k);
enum server_result server_api_sysinfo(const struct server_call *k);
enum server_result server_api_stats(const struct server_call *k);
enum server_result server_api_load(const struct server_call *k);
enum server_result server_api_unload(const struct server_call *k);
enum server_result server_api_shutdown(const struct server_call *k);
enum server_result server_api_live(const struct server_call *k);

/* GET /api/v1/plans and plans/{model}: each stored model's memory plan
 * (server/plans.c) */
enum server_result server_plans_route(const struct server_call *k);
/* GET /api/v1/backends: installed and pinned bundles; POST
 * /api/v1/backends/install: one install at a time, progress as SSE
 * (server/backends_route.c) */
enum server_result server_backends_route(const struct server_call *k);
enum server_result server_backends_install(const struct server_call *k);

/* GET /api/v1/logs: lemon's log lines as server-sent events (server/logs.c) */
enum server_result server_logs_route(const struct server_call *k);

/* GET /metrics (server/metrics_route.c) */
enum server_result server_metrics_route(const struct server_call *k);

/* an upstream request to a llama-server child (server/upstream.c): leases
 * the child for model and role, sends req's body to url and reads the
 * response head (status, content type into ctype); the body is then read
 * with server_upstream_read (>0 bytes, 0 at its end, -1 when it broke
 * off). load_ns: the time spent getting a ready child. Stats and metrics
 * are recorded as the body is read. -1 with err when no child could be
 * had (err's code says why), -2 when its answer never came or is not
 * HTTP (NETWORK). ctype (may be NULL) gets the answer's Content-Type. */
struct server_upstream;

int server_upstream_open(struct server *s, const char *url, const char *model,
			 enum backends_role role, const struct server_req *req,
			 struct server_upstream **out, unsigned *status, char *ctype, size_t cap,
			 int64_t *load_ns, struct lemon_err *err);
ssize_t server_upstream_read(struct server_upstream *u, char *out, size_t max);
void server_upstream_close(struct server_upstream *u);
/* the answer is server-sent events; its body size (SERVER_SIZE_UNKNOWN
 * when not known); the model; whether the client asked for a stream (for
 * the stats); ends the stats early (an error answer: not ok) */
bool server_upstream_sse(const struct server_upstream *u);
uint64_t server_upstream_size(const struct server_upstream *u);
const char *server_upstream_model(const struct server_upstream *u);
void server_upstream_set_stream(struct server_upstream *u, bool stream);
void server_upstream_finish(struct server_upstream *u, bool ok);
/* GET path of the child listening on port (no lease: for /metrics and
 * /props): the body, NUL-terminated, which the caller frees, or NULL when
 * it does not answer 200 within 2 s or sends more than max bytes */
char *server_child_get(int port, const char *path, size_t max);

/* the Ollama routes (server/ollama.c) */
enum server_result server_ollama_root(const struct server_call *k);
enum server_result server_ollama_version(const struct server_call *k);
enum server_result server_ollama_tags(const struct server_call *k);
enum server_result server_ollama_ps(const struct server_call *k);
enum server_result server_ollama_show(const struct server_call *k);
enum server_result server_ollama_embed(const struct server_call *k);
enum server_result server_ollama_embeddings(const struct server_call *k);

/* the web app (server/ui.c): its files under /ui/ (GET /ui, /ui/ and
 * /ui/{file}); / answers a browser asking for HTML with a redirect there
 * and anyone else as server_ollama_root */
struct server_ui_file {
	const char *name;
	const unsigned char *data;
	size_t len;
};
/* generated by scripts/embed-ui.sh; ends with a NULL name */
extern const struct server_ui_file server_ui_files[];
enum server_result server_ui_asset(const struct server_call *k);
enum server_result server_ui_root(const struct server_call *k);
bool server_ui_wants_html(struct server_conn *c);
/* the request may go without the API key: a GET of an OPEN row, or a
 * browser's GET / that is only redirected */
bool server_ui_open(const struct server_call *k);

/* Ollama's error shape {"error":"..."} with the status server_err_status
 * gives (server/respond.c), and a body queued (freed here) */
enum server_result server_ollama_send(struct server *s, struct server_conn *conn,
				unsigned status, cJSON *body);
enum server_result server_ollama_error(struct server *s, struct server_conn *conn,
				 unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
enum server_result server_ollama_lemon_err(struct server *s,
				     struct server_conn *conn,
				     const struct lemon_err *err);

/* shared by the Ollama handlers (server/ollama_common.c): a body parsed
 * for a valid "model" (or "name") resolved against the store (a ":latest"
 * tag is dropped when only the bare name exists; NULL with the error
 * response queued in *rc), RFC 3339 UTC times (unix_s < 0: now) */
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

/* Ollama's tool calls to and from OpenAI's (server/ollama_tools.c) */
#define SERVER_OLLAMA_CALLS_MAX 32
#define SERVER_OLLAMA_ARGS_MAX (1u << 20) /* one call's arguments text */

/* the calls of a replayed conversation, for the tool messages' ids */
struct server_ollama_ids {
	int next; /* the next call_<n> */
	int n;
	struct {
		int n;
		char name[128];
		bool answered;
	} open[SERVER_OLLAMA_CALLS_MAX];
};

void server_ollama_ids_init(struct server_ollama_ids *ids);
/* one Ollama message as OpenAI's: role, content, tool_calls with ids and
 * arguments as text, a tool message's tool_call_id and name (the caller
 * frees it) */
cJSON *server_ollama_message_to_openai(const cJSON *m, struct server_ollama_ids *ids);

/* msg's string content and Ollama's images (base64 strings) as OpenAI
 * content parts (text, then image_url data: URLs) in msg; -1 with *err
 * set for an image that is not a base64 string (server/ollama_images.c) */
int server_ollama_images_to_parts(cJSON *msg, const cJSON *images,
				  const char **err);

/* the child's streamed tool-call deltas gathered by index */
struct server_ollama_calls {
	int n;
	struct {
		char name[128];
		char *args; /* the arguments text so far */
		size_t len;
	} call[SERVER_OLLAMA_CALLS_MAX];
};

/* adds one delta's "tool_calls" array; -1 for an index out of range or
 * arguments beyond SERVER_OLLAMA_ARGS_MAX */
int server_ollama_calls_delta(struct server_ollama_calls *acc, const cJSON *deltas);
/* Ollama's tool_calls array: [{"function":{"name","arguments":{...}}}] */
cJSON *server_ollama_calls_json(const struct server_ollama_calls *acc);
void server_ollama_calls_free(struct server_ollama_calls *acc);

/* POST /api/chat (chat true) and /api/generate (server/ollama_chat.c) */
enum server_result server_ollama_generate(struct server *s,
				    struct server_conn *conn,
				    const struct server_req *req, bool chat);

/* ---- what was served (server/stats.c): the last request for
 * /api/v1/stats, and the counters and histograms of /metrics ---- */
void server_stats_record(struct server *s, const struct server_stats *st);
/* one answered request: route is server_route_label's, code the status */
void server_metrics_request(struct server *s, const char *route, unsigned code);
/* a pull started (delta 1) or ended (-1); bytes received so far added */
void server_metrics_pull(struct server *s, int delta, uint64_t bytes);
/* the histogram bucket bounds of ttft (seconds) and tps (tokens/s) */
extern const double server_metrics_ttft_le[SERVER_METRICS_BUCKETS - 1];
extern const double server_metrics_tps_le[SERVER_METRICS_BUCKETS - 1];

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
 * in the route's shape */
enum server_result server_child_error(struct server *s, struct server_conn *conn,
				      enum server_shape shape,
				      unsigned status, const char *body, size_t len);

#endif
