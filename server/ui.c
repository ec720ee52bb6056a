/* the web app (server/ui/): its files, embedded at build time by
 * scripts/embed-ui.sh, served under /ui/ with their content type and
 * headers that keep the page to this origin (CSP default-src 'self', no
 * framing, no sniffing). The files carry no secret, so they load without
 * the API key: the page asks for the key once and sends it on each API
 * call. A browser asking / for HTML is sent to /ui/; API clients asking
 * / still get the Ollama answer. */
#include <string.h>

#include "server/server-private.h"

#define UI_CSP                                                                                     \
	"default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src "                 \
	"'self'; "                                                                                 \
	"script-src 'self'; object-src 'none'; base-uri 'none'; form-action "                      \
	"'self'; "                                                                                 \
	"frame-ancestors 'none'"

/* by the name's extension; the app has no other kinds of file */
static const char *ui_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".svg", "image/svg+xml" },
		{ ".json", "application/json" },
	};
	size_t i;

	for (i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

static void ui_headers(struct server_response *r)
{
	server_response_add_header(r, "Content-Security-Policy", UI_CSP);
	server_response_add_header(r, "X-Content-Type-Options", "nosniff");
	server_response_add_header(r, "X-Frame-Options", "DENY");
	server_response_add_header(r, "Referrer-Policy", "no-referrer");
	server_response_add_header(r, "Cross-Origin-Opener-Policy", "same-origin");
	server_response_add_header(r, "Cross-Origin-Resource-Policy", "same-origin");
	/* the files change with the binary: revalidating is cheap on loopback */
	server_response_add_header(r, "Cache-Control", "no-cache");
}

static enum server_result ui_send(struct server_conn *c, unsigned status, const char *type,
				  const void *body, size_t len, const char *location)
{
	struct server_response *r =
		server_response_from_buffer(len, (void *)body, SERVER_RESPMEM_PERSISTENT);
	enum server_result rc;

	if (r == NULL)
		return SERVER_NO;
	server_response_add_header(r, "Content-Type", type);
	if (location)
		server_response_add_header(r, "Location", location);
	ui_headers(r);
	rc = server_queue_response(c, status, r);
	server_response_destroy(r);
	return rc;
}

static const struct server_ui_file *ui_find(const char *name)
{
	const struct server_ui_file *f;

	for (f = server_ui_files; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

enum server_result server_ui_asset(const struct server_call *k)
{
	static const char missing[] = "not found\n";
	const char *name = k->tail ? k->tail : "index.html";
	const struct server_ui_file *f;

	if (strcmp(name, "config.json") == 0) {
		/* whether to ask for the key before the first call (a 401 is
		 * logged as an error in the browser's console); never the key */
		const char *cfg = k->s->cfg.api_key[0] ?
					  "{\"api_key\":true,\"version\":\"" LEMON_VERSION "\"}" :
					  "{\"api_key\":false,\"version\":\"" LEMON_VERSION "\"}";

		return ui_send(k->c, 200, "application/json", cfg, strlen(cfg), NULL);
	}
	if (strcmp(k->path, "/ui") == 0)
		return ui_send(k->c, 308, "text/plain; charset=utf-8", "", 0, "/ui/");
	f = ui_find(name);
	if (f == NULL)
		return ui_send(k->c, 404, "text/plain; charset=utf-8", missing, sizeof(missing) - 1,
			       NULL);
	return ui_send(k->c, 200, ui_type(f->name), f->data, f->len, NULL);
}

bool server_ui_wants_html(struct server_conn *c)
{
	const char *a = server_conn_header(c, "Accept");

	return a != NULL && strstr(a, "text/html") != NULL;
}

bool server_ui_open(const struct server_call *k)
{
	if (k->rt == NULL || strcmp(k->method, "GET") != 0)
		return false;
	if (k->rt->flags & SERVER_ROUTE_OPEN)
		return true;
	return strcmp(k->path, "/") == 0 && server_ui_wants_html(k->c);
}

enum server_result server_ui_root(const struct server_call *k)
{
	if (server_ui_wants_html(k->c))
		return ui_send(k->c, 302, "text/plain; charset=utf-8", "", 0, "/ui/");
	return server_ollama_root(k);
}
