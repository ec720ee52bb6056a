/* the commands that talk to a running `lemon serve` over HTTP: `lemon run
 * MODEL` (a chat through /api/chat, printed as it streams, /bye to quit;
 * stdin need not be a terminal), `lemon ps`, `lemon status` and `lemon
 * stop`. Each says plainly when no server answers and how to start one. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "server/server.h"
#include "util/str.h"

#define CL_ANSWER_MAX (16u << 20)

/* the server's address as lemon serve would pick it, then --host/--port;
 * the remaining arguments are moved to the front of argv */
static int target(int *argc, char **argv, struct cli_target *t,
		  struct lemon_err *err)
{
	struct server_config c;
	int i, n = 1;

	server_config_defaults(&c);
	if (server_config_load_file(&c, NULL, err) < 0 ||
	    server_config_load_env(&c, err) < 0)
		return -1;
	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			/* the options end: the rest (kept with its "--") is names */
			while (i < *argc)
				argv[n++] = argv[i++];
			break;
		}
		if ((strcmp(argv[i], "--host") == 0 || strcmp(argv[i], "--port") == 0) &&
		    i + 1 < *argc) {
			if (server_config_set(&c, argv[i] + 2, argv[i + 1], err) < 0)
				return -1;
			i++;
		} else {
			argv[n++] = argv[i];
		}
	}
	*argc = n;
	/* a server listening on every address is reached over loopback */
	lemon_str_copy(t->host, sizeof(t->host),
		       strcmp(c.host, "0.0.0.0") == 0 ? "127.0.0.1" : c.host);
	t->port = c.port;
	lemon_str_copy(t->api_key, sizeof(t->api_key), c.api_key);
	return 0;
}

/* one JSON request; the parsed answer (any status) in *out */
static int call(const struct cli_target *t, const char *method,
		const char *path, const char *body, cJSON **out,
		unsigned *status, struct lemon_err *err)
{
	struct cli_http h;
	char *ans;

	*out = NULL;
	if (cli_http_request(t, method, path, body, &h, err) < 0)
		return -1;
	ans = cli_http_read_all(&h, CL_ANSWER_MAX);
	*status = h.status;
	cli_http_close(&h);
	if (ans == NULL)
		return lemon_err_set(err, LEMON_ERR_NETWORK,
				     "the server's answer to %s broke off", path);
	*out = cJSON_Parse(ans);
	free(ans);
	if (*out == NULL)
		return lemon_err_set(err, LEMON_ERR_NETWORK,
				     "the server's answer to %s is not JSON", path);
	return 0;
}

/* the message of an error answer in either shape (Ollama or OpenAI) */
static const char *error_text(const cJSON *o)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");

	if (cJSON_IsString(e))
		return e->valuestring;
	return cJSON_IsString(m) ? m->valuestring : "unknown error";
}

static int usage_err(const char *usage)
{
	fprintf(stderr, "usage: %s\n", usage);
	return CLI_EXIT_USAGE;
}

static bool want_help(int argc, char **argv, const char *usage)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: %s\n", usage);
			return true;
		}
	return false;
}

/* ---- lemon run ---------------------------------------------------------- */

struct chat_out {
	char *text; /* the assistant's answer so far */
	size_t len, cap;
	bool done;
	char error[512];
};

static int add_text(struct chat_out *c, const char *s)
{
	size_t n = strlen(s);
	char *p;

	if (c->len + n + 1 > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 1024;

		while (cap < c->len + n + 1)
			cap *= 2;
		p = realloc(c->text, cap);
		if (p == NULL)
			return -1;
		c->text = p;
		c->cap = cap;
	}
	memcpy(c->text + c->len, s, n + 1);
	c->len += n;
	return 0;
}

/* one NDJSON line of /api/chat: print its text at once */
static void chat_line(struct chat_out *c, const char *line, size_t len)
{
	cJSON *o = cJSON_ParseWithLength(line, len);
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "message");
	const cJSON *txt = cJSON_GetObjectItemCaseSensitive(m, "content");

	if (o == NULL)
		return;
	if (cJSON_GetObjectItemCaseSensitive(o, "error")) {
		lemon_str_copy(c->error, sizeof(c->error), error_text(o));
	} else if (cJSON_IsString(txt) && txt->valuestring[0]) {
		fputs(txt->valuestring, stdout);
		fflush(stdout);
		add_text(c, txt->valuestring);
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "done")))
		c->done = true;
	cJSON_Delete(o);
}

/* sends the conversation, prints the answer as it streams and adds it to
 * the conversation */
static int chat_turn(const struct cli_target *t, const char *model,
		     cJSON *msgs, int64_t max_tokens, struct lemon_err *err)
{
	struct chat_out c = { 0 };
	struct cli_http h;
	cJSON *req = cJSON_CreateObject(), *m;
	char *body, buf[8192], line[65536];
	size_t ll = 0;
	ssize_t n;
	int rc = 0;

	cJSON_AddStringToObject(req, "model", model);
	cJSON_AddItemReferenceToObject(req, "messages", msgs);
	cJSON_AddBoolToObject(req, "stream", true);
	if (max_tokens >= 0)
		cJSON_AddNumberToObject(cJSON_AddObjectToObject(req, "options"),
					"num_predict", (double)max_tokens);
	body = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	if (body == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	rc = cli_http_request(t, "POST", "/api/chat", body, &h, err);
	free(body);
	if (rc < 0)
		return -1;
	if (h.status != 200) {
		char *ans = cli_http_read_all(&h, CL_ANSWER_MAX);
		cJSON *o = ans ? cJSON_Parse(ans) : NULL;

		lemon_err_set(err, h.status == 404 ? LEMON_ERR_NOT_FOUND : LEMON_ERR_NETWORK,
			      "%s", o ? error_text(o) : "the server refused the request");
		cJSON_Delete(o);
		free(ans);
		cli_http_close(&h);
		return -1;
	}
	while (!c.done && (n = cli_http_read(&h, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				chat_line(&c, line, ll);
				ll = 0;
			} else if (ll < sizeof(line)) {
				line[ll++] = buf[i];
			}
		}
	}
	cli_http_close(&h);
	printf("\n");
	fflush(stdout);
	if (c.error[0])
		rc = lemon_err_set(err, LEMON_ERR_NETWORK, "%s", c.error);
	else if (!c.done)
		rc = lemon_err_set(err, LEMON_ERR_NETWORK, "the answer broke off");
	if (rc == 0) {
		m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "role", "assistant");
		cJSON_AddStringToObject(m, "content", c.text ? c.text : "");
		cJSON_AddItemToArray(msgs, m);
	}
	free(c.text);
	return rc;
}

/* loads the model first so a missing one is reported before any prompt */
static int load_model(const struct cli_target *t, const char *model,
		      struct lemon_err *err)
{
	cJSON *req = cJSON_CreateObject(), *ans = NULL;
	unsigned status = 0;
	char *body;
	int rc;

	cJSON_AddStringToObject(req, "model", model);
	cJSON_AddArrayToObject(req, "messages");
	cJSON_AddBoolToObject(req, "stream", false);
	body = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	if (body == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	rc = call(t, "POST", "/api/chat", body, &ans, &status, err);
	free(body);
	if (rc == 0 && status == 404)
		rc = lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				   "model '%s' is not on the server; pull it with: lemon pull %s",
				   model, model);
	else if (rc == 0 && status != 200)
		rc = lemon_err_set(err, LEMON_ERR_BROKEN_SYSTEM, "cannot load '%s': %s",
				   model, error_text(ans));
	cJSON_Delete(ans);
	return rc;
}

static void add_user(cJSON *msgs, const char *text)
{
	cJSON *m = cJSON_CreateObject();

	cJSON_AddStringToObject(m, "role", "user");
	cJSON_AddStringToObject(m, "content", text);
	cJSON_AddItemToArray(msgs, m);
}

static int run_loop(const struct cli_target *t, const char *model, cJSON *msgs,
		    int64_t max_tokens, struct lemon_err *err)
{
	bool tty = isatty(STDIN_FILENO);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	for (;;) {
		if (tty) {
			printf(">>> ");
			fflush(stdout);
		}
		n = getline(&line, &cap, stdin);
		if (n < 0)
			break;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		if (n == 0)
			continue;
		if (strcmp(line, "/bye") == 0)
			break;
		add_user(msgs, line);
		if (chat_turn(t, model, msgs, max_tokens, err) < 0) {
			/* a failed turn is dropped; at a terminal the chat goes on */
			cJSON_DeleteItemFromArray(msgs, cJSON_GetArraySize(msgs) - 1);
			rc = -1;
			if (!tty)
				break;
			fprintf(stderr, "lemon: %s\n", err->msg);
			memset(err, 0, sizeof(*err));
		}
	}
	if (tty && n < 0)
		printf("\n");
	free(line);
	return rc;
}

int cli_cmd_run(int argc, char **argv)
{
	static const char usage[] =
		"lemon run [--host H] [--port P] [--max-tokens N] [--] MODEL [PROMPT...]\n"
		"  chats with MODEL through the running server; reads prompts from stdin\n"
		"  one a line (/bye or end of input ends the chat) unless PROMPT is given;\n"
		"  --max-tokens caps each answer (default: until the model stops); '--'\n"
		"  ends the options (a MODEL never starts with '-')";
	struct lemon_err err = { 0 };
	struct cli_target t;
	int64_t max_tokens = -1;
	uint64_t v;
	cJSON *msgs;
	int rc, i;

	if (want_help(argc, argv, usage))
		return CLI_EXIT_OK;
	if (target(&argc, argv, &t, &err) < 0)
		return cli_fail(&err);
	if (argc > 2 && strcmp(argv[1], "--max-tokens") == 0) {
		if (lemon_parse_u64(argv[2], strlen(argv[2]), 10, 1u << 30, &v, &err) < 0)
			return cli_fail(&err);
		max_tokens = (int64_t)v;
		argv[2] = argv[0];
		argv += 2;
		argc -= 2;
	}
	if (argc > 2 && strcmp(argv[1], "--") == 0) {
		argv[1] = argv[0];
		argv++;
		argc--;
	} else if (argc < 2 || argv[1][0] == '-') {
		return usage_err(usage);
	}
	/* refused here, not only by the server: the name came from argv */
	if (!backends_model_name_valid(argv[1])) {
		lemon_err_set(&err, LEMON_ERR_INVALID_ARG, "invalid model name '%.64s': %s",
			      argv[1], BACKENDS_NAME_RULE);
		return cli_fail(&err);
	}
	if (load_model(&t, argv[1], &err) < 0)
		return cli_fail(&err);
	msgs = cJSON_CreateArray();
	if (argc > 2) {
		char prompt[8192] = "";
		size_t len = 0;

		for (i = 2; i < argc && len + 1 < sizeof(prompt); i++) {
			int w = snprintf(prompt + len, sizeof(prompt) - len, "%s%s",
					 i > 2 ? " " : "", argv[i]);

			if (w < 0)
				break;
			len += (size_t)w;
		}
		add_user(msgs, prompt);
		rc = chat_turn(&t, argv[1], msgs, max_tokens, &err);
	} else {
		rc = run_loop(&t, argv[1], msgs, max_tokens, &err);
	}
	cJSON_Delete(msgs);
	if (rc < 0 && err.msg[0])
		return cli_fail(&err);
	return rc < 0 ? CLI_EXIT_DEGRADED : CLI_EXIT_OK;
}

/* ---- lemon ps, status, stop --------------------------------------------- */

static int health(const struct cli_target *t, cJSON **h, struct lemon_err *err)
{
	unsigned status = 0;

	if (call(t, "GET", "/api/v1/health", NULL, h, &status, err) < 0)
		return -1;
	if (status != 200) {
		lemon_err_set(err, status == 401 ? LEMON_ERR_PERMISSION : LEMON_ERR_NETWORK,
			      "the server on %s:%d answered %u: %s", t->host, t->port,
			      status, error_text(*h));
		cJSON_Delete(*h);
		*h = NULL;
		return -1;
	}
	return 0;
}

/* the shared start of ps, status and stop: --help, the server address, and
 * no further arguments; true when the command must return rc at once */
static bool no_arg_command(int argc, char **argv, const char *usage,
			   struct cli_target *t, int *rc)
{
	struct lemon_err err = { 0 };

	if (want_help(argc, argv, usage)) {
		*rc = CLI_EXIT_OK;
		return true;
	}
	if (target(&argc, argv, t, &err) < 0) {
		*rc = cli_fail(&err);
		return true;
	}
	if (argc != 1) {
		*rc = usage_err(usage);
		return true;
	}
	return false;
}

static const char *str_or(const cJSON *o, const char *k, const char *dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : dflt;
}

int cli_cmd_ps(int argc, char **argv)
{
	static const char usage[] = "lemon ps [--host H] [--port P]\n"
				    "  lists the models the running server has loaded";
	struct lemon_err err = { 0 };
	int rc;
	struct cli_target t;
	const cJSON *it;
	cJSON *h = NULL;

	if (no_arg_command(argc, argv, usage, &t, &rc))
		return rc;
	if (health(&t, &h, &err) < 0)
		return cli_fail(&err);
	printf("%-32s %-10s %-8s %-10s %8s %6s\n", "MODEL", "ROLE", "BACKEND",
	       "STATE", "PID", "PORT");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(h, "loaded")) {
		printf("%-32s %-10s %-8s %-10s %8.0f %6.0f\n",
		       str_or(it, "model", "?"), str_or(it, "role", "?"),
		       str_or(it, "backend", "?"), str_or(it, "state", "?"),
		       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "pid")),
		       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "port")));
		/* placed across `lemon worker`s: where */
		if (cJSON_GetObjectItemCaseSensitive(it, "placement"))
			printf("  placed: %s\n", str_or(it, "placement", "?"));
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(h, "workers")) {
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(it, "free_bytes");

		printf("worker %s %s", str_or(it, "address", "?"), str_or(it, "state", "?"));
		if (cJSON_IsNumber(f))
			printf(" %s %.0f MiB free", str_or(it, "backend", "?"),
			       f->valuedouble / 1048576.0);
		if (cJSON_GetObjectItemCaseSensitive(it, "error"))
			printf(": %s", str_or(it, "error", "?"));
		printf("\n");
	}
	cJSON_Delete(h);
	return CLI_EXIT_OK;
}

int cli_cmd_status(int argc, char **argv)
{
	static const char usage[] = "lemon status [--host H] [--port P]\n"
				    "  says whether a lemon server runs there and what it has loaded";
	struct lemon_err err = { 0 };
	int rc;
	struct cli_target t;
	const cJSON *it;
	cJSON *h = NULL;
	int n = 0;

	if (no_arg_command(argc, argv, usage, &t, &rc))
		return rc;
	if (health(&t, &h, &err) < 0)
		return cli_fail(&err);
	printf("lemon %s is running on http://%s:%d\n", str_or(h, "version", "?"),
	       t.host, t.port);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(h, "loaded"))
		n++;
	printf("models loaded: %d", n);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(h, "loaded"))
		printf("%s%s (%s, %s)", it == cJSON_GetObjectItemCaseSensitive(h, "loaded")->child ?
					": " : ", ",
		       str_or(it, "model", "?"), str_or(it, "backend", "?"),
		       str_or(it, "state", "?"));
	printf("\nbackends:");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(h, "candidates"))
		printf(" %s%s", str_or(it, "backend", "?"),
		       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "failed")) ?
			       " (failed)" : "");
	printf("\n");
	cJSON_Delete(h);
	return CLI_EXIT_OK;
}

int cli_cmd_stop(int argc, char **argv)
{
	static const char usage[] = "lemon stop [--host H] [--port P]\n"
				    "  asks the running server to shut down and waits until it has";
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	struct lemon_err err = { 0 };
	int rc;
	struct cli_target t;
	unsigned status = 0;
	cJSON *ans = NULL;
	int i, fd;

	if (no_arg_command(argc, argv, usage, &t, &rc))
		return rc;
	if (call(&t, "POST", "/api/v1/shutdown", NULL, &ans, &status, &err) < 0)
		return cli_fail(&err);
	if (status != 200) {
		lemon_err_set(&err, LEMON_ERR_PERMISSION, "the server on %s:%d refused to stop: %s",
			      t.host, t.port, error_text(ans));
		cJSON_Delete(ans);
		return cli_fail(&err);
	}
	cJSON_Delete(ans);
	/* the children are stopped before the listener goes: wait for it */
	for (i = 0; i < 300; i++) {
		fd = cli_http_connect(&t, NULL);
		if (fd < 0) {
			printf("lemon server on %s:%d stopped\n", t.host, t.port);
			return CLI_EXIT_OK;
		}
		close(fd);
		nanosleep(&ts, NULL);
	}
	lemon_err_set(&err, LEMON_ERR_BUSY, "the server on %s:%d is still running after 30 s",
		      t.host, t.port);
	return cli_fail(&err);
}
