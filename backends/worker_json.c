/* the answer of a `lemon worker` (GET /api/v1/worker), checked strictly:
 * these bytes come from the network, from a peer that may be broken or
 * hostile. Separate from workers.c so the fuzz target links it alone */
#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "backends/backends.h"
#include "util/str.h"

#define MIB (1024.0 * 1024.0)
#define ANSWER_MAX 8192
/* more than any machine has: a claim above it is a broken or hostile
 * worker, not memory to plan with */
#define FREE_MAX (1ull << 50)

static bool str_field(const cJSON *root, const char *key, char *out, size_t cap,
		      bool need)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
	size_t i;

	if (v == NULL)
		return !need;
	if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap)
		return false;
	for (i = 0; v->valuestring[i]; i++)
		if ((unsigned char)v->valuestring[i] < 0x20 ||
		    (unsigned char)v->valuestring[i] > 0x7e)
			return false;
	lemon_str_copy(out, cap, v->valuestring);
	return true;
}

int backends_worker_parse_json(const char *buf, size_t len,
			       struct backends_worker_info *out,
			       struct lemon_err *err)
{
	const cJSON *v, *f;
	cJSON *root;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (len > ANSWER_MAX)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "answer longer than %d bytes", ANSWER_MAX);
	root = cJSON_ParseWithLength(buf, len);
	if (root == NULL || !cJSON_IsObject(root)) {
		lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			      "answer is not a JSON object");
		goto out;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "lemon_worker");
	if (!cJSON_IsNumber(v) || v->valuedouble != 1) {
		lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			      "not a lemon worker (no \"lemon_worker\":1)");
		goto out;
	}
	if (!str_field(root, "backend", out->backend, sizeof(out->backend),
		       true) ||
	    (strcmp(out->backend, "cpu") && strcmp(out->backend, "cuda") &&
	     strcmp(out->backend, "rocm") && strcmp(out->backend, "vulkan")) ||
	    !str_field(root, "device", out->device, sizeof(out->device),
		       false) ||
	    !str_field(root, "version", out->version, sizeof(out->version),
		       false)) {
		lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			      "bad backend, device or version");
		goto out;
	}
	f = cJSON_GetObjectItemCaseSensitive(root, "free_bytes");
	if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble) ||
	    f->valuedouble < 0 || f->valuedouble != floor(f->valuedouble)) {
		lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			      "free_bytes is not a byte count");
		goto out;
	}
	if (f->valuedouble > (double)FREE_MAX) {
		lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			      "claims %.3g bytes free, more than %.0f TiB: not "
			      "believed",
			      f->valuedouble, FREE_MAX / (MIB * MIB));
		goto out;
	}
	out->free_bytes = (uint64_t)f->valuedouble;
	v = cJSON_GetObjectItemCaseSensitive(root, "rpc_running");
	out->rpc_running = cJSON_IsTrue(v);
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}
