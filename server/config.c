/* serve configuration: built-in defaults, overridden by the config file,
 * then by the environment (the CLI applies its flags last). Every value is
 * parsed with an explicit maximum. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-private.h"
#include "util/fs.h"
#include "util/str.h"

void server_config_defaults(struct server_config *c)
{
	memset(c, 0, sizeof(*c));
	lemon_str_copy(c->host, sizeof(c->host), "127.0.0.1");
	c->port = 8000;
	/* no CORS by default: a page the user visits must not drive the
	 * server (issue 9); cors_origin names the ones that may */
	lemon_str_copy(c->backend, sizeof(c->backend), "auto");
	c->max_body = 1024 * 1024;
	/* chat bodies with base64 images: a few photos (server/routes.c) */
	c->max_image_body = 32 * 1024 * 1024;
	c->timeout_s = 30;
	c->header_timeout_s = 10;
	c->upstream_timeout_s = 600;
	c->max_conns = 1024;
	/* a quarter of the connections: one local client (a batch job, the
	 * 256-stream benchmark) still fits, a runaway one leaves the rest */
	c->max_conns_per_client = 256;
}

static int set_str(char *dst, size_t cap, const char *key, const char *val,
		   struct lemon_err *err)
{
	if (!lemon_str_copy(dst, cap, val))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "%s: value longer than %zu bytes", key, cap - 1);
	return 0;
}

/* the key from the first line of a file (trailing CR/LF dropped), so it
 * is not on the command line where ps shows it; read with util/fs's
 * bounded reader, which refuses a FIFO or device instead of blocking */
#define KEY_FILE_MAX 65536

static int set_key_file(struct server_config *c, const char *path,
			struct lemon_err *err)
{
	char *buf = NULL;
	size_t n = 0, i;

	if (path[0] == 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG, "api_key_file: empty path");
	if (lemon_read_file(path, KEY_FILE_MAX, false, &buf, &n, err) < 0) {
		lemon_err_prefix(err, "api_key_file");
		return -1;
	}
	for (i = 0; i < n && buf[i] != '\n'; i++)
		;
	if (i > 0 && buf[i - 1] == '\r')
		i--;
	buf[i] = 0;
	if (i == 0) {
		free(buf);
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "api_key_file %s: the first line is empty", path);
	}
	if (i >= sizeof(c->api_key)) {
		free(buf);
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "api_key_file %s: key longer than %zu bytes", path,
				     sizeof(c->api_key) - 1);
	}
	for (n = 0; n < i; n++)
		if ((unsigned char)buf[n] < 0x21 || buf[n] == 0x7f) {
			free(buf);
			return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
					     "api_key_file %s: the key holds a space or control character",
					     path);
		}
	memcpy(c->api_key, buf, i + 1);
	free(buf);
	return 0;
}

static int set_num(uint64_t *out, const char *key, const char *val,
		   uint64_t min, uint64_t max, struct lemon_err *err)
{
	if (lemon_parse_u64(val, strlen(val), 10, max, out, NULL) < 0 ||
	    *out < min)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "%s: '%.40s' is not a number in %llu..%llu",
				     key, val, (unsigned long long)min,
				     (unsigned long long)max);
	return 0;
}

int server_config_set(struct server_config *c, const char *key,
		      const char *val, struct lemon_err *err)
{
	uint64_t n;

	if (strcmp(key, "host") == 0)
		return set_str(c->host, sizeof(c->host), key, val, err);
	if (strcmp(key, "api_key") == 0)
		return set_str(c->api_key, sizeof(c->api_key), key, val, err);
	if (strcmp(key, "api_key_file") == 0)
		return set_key_file(c, val, err);
	if (strcmp(key, "cors_origin") == 0)
		return set_str(c->cors_origin, sizeof(c->cors_origin), key, val, err);
	if (strcmp(key, "workers") == 0)
		return set_str(c->workers, sizeof(c->workers), key, val, err);
	if (strcmp(key, "mirror") == 0)
		return set_str(c->mirror, sizeof(c->mirror), key, val, err);
	if (strcmp(key, "backend") == 0) {
		if (strcmp(val, "auto") && strcmp(val, "rocm") &&
		    strcmp(val, "vulkan") && strcmp(val, "cpu") &&
		    strcmp(val, "cuda"))
			return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
					     "backend: '%.40s' is not auto, cuda, rocm, vulkan or cpu",
					     val);
		return set_str(c->backend, sizeof(c->backend), key, val, err);
	}
	if (strcmp(key, "port") == 0) {
		if (set_num(&n, key, val, 1, 65535, err) < 0)
			return -1;
		c->port = (int)n;
	} else if (strcmp(key, "ctx_size") == 0) {
		if (set_num(&n, key, val, 0, 1 << 24, err) < 0)
			return -1;
		c->ctx_size = (int)n;
	} else if (strcmp(key, "max_body") == 0) {
		if (set_num(&n, key, val, 1024, 1ULL << 30, err) < 0)
			return -1;
		c->max_body = (size_t)n;
	} else if (strcmp(key, "max_image_body") == 0) {
		if (set_num(&n, key, val, 1024, 1ULL << 30, err) < 0)
			return -1;
		c->max_image_body = (size_t)n;
	} else if (strcmp(key, "timeout") == 0) {
		if (set_num(&n, key, val, 1, 3600, err) < 0)
			return -1;
		c->timeout_s = (int)n;
	} else if (strcmp(key, "header_timeout") == 0) {
		if (set_num(&n, key, val, 1, 3600, err) < 0)
			return -1;
		c->header_timeout_s = (int)n;
	} else if (strcmp(key, "max_conns_per_client") == 0) {
		if (set_num(&n, key, val, 1, 65536, err) < 0)
			return -1;
		c->max_conns_per_client = (int)n;
	} else if (strcmp(key, "upstream_timeout") == 0) {
		if (set_num(&n, key, val, 1, 86400, err) < 0)
			return -1;
		c->upstream_timeout_s = (int)n;
	} else if (strcmp(key, "max_conns") == 0) {
		if (set_num(&n, key, val, 1, 65536, err) < 0)
			return -1;
		c->max_conns = (int)n;
	} else {
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "unknown setting '%.40s'", key);
	}
	return 0;
}

static const struct {
	const char *env;
	const char *key;
} env_keys[] = {
	{ "LEMON_HOST", "host" },
	{ "LEMON_PORT", "port" },
	{ "LEMON_API_KEY", "api_key" },
	{ "LEMON_API_KEY_FILE", "api_key_file" },
	{ "LEMON_CORS_ORIGIN", "cors_origin" },
	{ "LEMON_BACKEND", "backend" },
	{ "LEMON_CTX_SIZE", "ctx_size" },
	{ "LEMON_MIRROR", "mirror" },
	{ "LEMON_MAX_BODY", "max_body" },
	{ "LEMON_MAX_IMAGE_BODY", "max_image_body" },
	{ "LEMON_TIMEOUT", "timeout" },
	{ "LEMON_UPSTREAM_TIMEOUT", "upstream_timeout" },
	{ "LEMON_MAX_CONNS", "max_conns" },
	{ "LEMON_MAX_CONNS_PER_CLIENT", "max_conns_per_client" },
	{ "LEMON_HEADER_TIMEOUT", "header_timeout" },
	{ "LEMON_WORKERS", "workers" },
};

int server_config_load_env(struct server_config *c, struct lemon_err *err)
{
	size_t i;

	for (i = 0; i < sizeof(env_keys) / sizeof(env_keys[0]); i++) {
		const char *v = getenv(env_keys[i].env);

		if (v == NULL)
			continue;
		if (server_config_set(c, env_keys[i].key, v, err) < 0) {
			lemon_err_prefix(err, "%s", env_keys[i].env);
			return -1;
		}
	}
	return 0;
}

static int read_small(const char *path, char *buf, size_t cap, size_t *len,
		      struct lemon_err *err)
{
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return errno == ENOENT ? 1 : lemon_err_errno(err, errno, path);
	*len = fread(buf, 1, cap, f);
	fclose(f);
	if (*len == cap)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "%s: larger than %zu bytes", path, cap - 1);
	buf[*len] = 0;
	return 0;
}

static int apply_item(struct server_config *c, const cJSON *it,
		      struct lemon_err *err)
{
	char num[32];

	if (cJSON_IsString(it))
		return server_config_set(c, it->string, it->valuestring, err);
	if (cJSON_IsNumber(it) && it->valuedouble >= 0 &&
	    it->valuedouble < 1e15) {
		snprintf(num, sizeof(num), "%.0f", it->valuedouble);
		return server_config_set(c, it->string, num, err);
	}
	return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			     "%s: not a string or number", it->string);
}

int server_config_load_file(struct server_config *c, const char *path,
			    struct lemon_err *err)
{
	char def[4096], buf[65536];
	const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	const cJSON *it;
	size_t len = 0;
	cJSON *root;
	int rc;

	if (path == NULL) {
		if (x && x[0] == '/')
			snprintf(def, sizeof(def), "%s/lemon/config.json", x);
		else if (home && home[0] == '/')
			snprintf(def, sizeof(def), "%s/.config/lemon/config.json", home);
		else
			return 0;
		path = def;
	}
	rc = read_small(path, buf, sizeof(buf), &len, err);
	if (rc != 0)
		return rc > 0 ? 0 : -1;
	root = cJSON_ParseWithLength(buf, len);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: not a JSON object", path);
	}
	rc = 0;
	cJSON_ArrayForEach(it, root) {
		if (apply_item(c, it, err) < 0) {
			if (err)
				err->code = LEMON_ERR_INVALID_DATA;
			lemon_err_prefix(err, "%s", path);
			rc = -1;
			break;
		}
	}
	cJSON_Delete(root);
	return rc;
}
