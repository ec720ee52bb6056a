/* libFuzzer target for server/body.c and server/body_json.c, the request
 * body validation exactly as the route handlers run it: the first byte
 * picks the route, the rest is the body. Any bytes are either accepted
 * (and then cJSON reads one object from them) or refused with a named
 * fault and a message that is itself valid UTF-8 without control
 * characters (it is echoed into a JSON error body). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct server_body_err e;
	enum server_body_route route;
	const char *body;
	char clipped[sizeof(e.msg)];
	cJSON *root;

	if (size == 0)
		return 0;
	route = (enum server_body_route)(data[0] % (SERVER_BODY_OLLAMA_SHOW + 1));
	body = (const char *)data + 1;
	root = server_body_parse(body, size - 1, route, &e);
	if (root != NULL) {
		if (e.fault != SERVER_BODY_OK || !cJSON_IsObject(root))
			abort();
		cJSON_Delete(root);
		return 0;
	}
	if (e.fault == SERVER_BODY_OK || e.msg[0] == 0 ||
	    strcmp(server_body_fault_code(e.fault), "invalid_request") == 0 ||
	    e.offset > size - 1 || memchr(e.param, 0, sizeof(e.param)) == NULL)
		abort();
	server_body_clip(clipped, sizeof(clipped), e.msg, strlen(e.msg));
	if (strcmp(clipped, e.msg) != 0)
		abort();
	return 0;
}
