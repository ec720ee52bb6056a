/* installed.json: the record of which backend bundles are installed, in
 * which directory, from which asset and with which SHA-256. Readers never
 * see a half-written file: it is only ever replaced whole, durably, by
 * lemon_write_atomic, and only under the install lock. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "provision/provision-private.h"
#include "util/fs.h"
#include "util/str.h"

#define STATE_FILE "installed.json"
#define STATE_MAX_BYTES (1 << 20)

static bool copy_str(const cJSON *o, const char *key, char *dst, size_t cap,
		     bool required)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	dst[0] = 0;
	if (v == NULL || cJSON_IsNull(v))
		return !required;
	return cJSON_IsString(v) && lemon_str_copy(dst, cap, v->valuestring);
}

/* a relative name inside the backends directory: one plain component */
static bool plain_name(const char *s)
{
	return s[0] && s[0] != '.' && strchr(s, '/') == NULL;
}

static int parse_entry(const cJSON *o, const char *dir,
		       struct provision_installed *e, const char *path,
		       struct lemon_err *err)
{
	char rel_dir[256], rel_exe[1024];
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(o, "installed_at");
	const cJSON *prev = cJSON_GetObjectItemCaseSensitive(o, "previous");

	memset(e, 0, sizeof(*e));
	if (!cJSON_IsObject(o) ||
	    !copy_str(o, "name", e->name, sizeof(e->name), true) ||
	    !copy_str(o, "kind", e->kind, sizeof(e->kind), true) ||
	    !copy_str(o, "family", e->family, sizeof(e->family), false) ||
	    !copy_str(o, "version", e->version, sizeof(e->version), true) ||
	    !copy_str(o, "asset", e->asset, sizeof(e->asset), true) ||
	    !copy_str(o, "sha256", e->sha256, sizeof(e->sha256), false) ||
	    !copy_str(o, "dir", rel_dir, sizeof(rel_dir), true) ||
	    !copy_str(o, "exe", rel_exe, sizeof(rel_exe), true) ||
	    !plain_name(rel_dir) || rel_exe[0] == '/' || strstr(rel_exe, "..") ||
	    !cJSON_IsNumber(at) || (prev != NULL && !cJSON_IsBool(prev)))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: malformed entry", path);
	e->installed_at = (int64_t)at->valuedouble;
	e->previous = cJSON_IsTrue(prev);
	if (snprintf(e->dir, sizeof(e->dir), "%s/%s", dir, rel_dir) >= (int)sizeof(e->dir) ||
	    snprintf(e->exe, sizeof(e->exe), "%s/%s", e->dir, rel_exe) >= (int)sizeof(e->exe))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "%s: path too long", path);
	provision_state_check(e);
	return 0;
}

int provision_state_read(const char *backends_dir, struct provision_installed *out,
		    int cap, int *n, struct lemon_err *err)
{
	char path[4096];
	const cJSON *list, *it;
	cJSON *root;
	char *text;

	*n = 0;
	snprintf(path, sizeof(path), "%s/%s", backends_dir, STATE_FILE);
	if (lemon_read_file(path, STATE_MAX_BYTES, true, &text, NULL, err) < 0)
		return -1;
	if (text == NULL)
		return 0;
	root = cJSON_Parse(text);
	free(text);
	list = root ? cJSON_GetObjectItemCaseSensitive(root, "backends") : NULL;
	if (!cJSON_IsArray(list)) {
		cJSON_Delete(root);
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: not a lemon installed.json", path);
	}
	cJSON_ArrayForEach(it, list) {
		if (*n >= cap) {
			cJSON_Delete(root);
			return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
					     "%s: more than %d entries", path, cap);
		}
		if (parse_entry(it, backends_dir, &out[*n], path, err) < 0) {
			cJSON_Delete(root);
			return -1;
		}
		(*n)++;
	}
	cJSON_Delete(root);
	return 0;
}

/* moves a corrupt installed.json to installed.json.corrupt-<unix time>
 * (never over an earlier one), so the next install writes a fresh file and
 * the bad bytes stay for a bug report; aside receives the new name */
static bool move_aside(const char *backends_dir, char *aside, size_t cap)
{
	char path[4096];
	long long now = (long long)time(NULL);
	int i, m;

	snprintf(path, sizeof(path), "%s/%s", backends_dir, STATE_FILE);
	for (i = 0; i < 10; i++) {
		m = i == 0 ? snprintf(aside, cap, "%s.corrupt-%lld", path, now) :
			     snprintf(aside, cap, "%s.corrupt-%lld.%d", path, now, i);
		if (m < 0 || (size_t)m >= cap)
			return false;
		if (renameat2(AT_FDCWD, path, AT_FDCWD, aside, RENAME_NOREPLACE) == 0) {
			lemon_fsync_dir(backends_dir, NULL);
			return true;
		}
		if (errno != EEXIST)
			return false;
	}
	return false;
}

int provision_state_load(const char *backends_dir, bool locked,
			 struct provision_installed *out, int cap, int *n,
			 struct lemon_err *err)
{
	struct lemon_err why = { 0 };
	char aside[4200];
	bool moved = false;

	if (provision_state_read(backends_dir, out, cap, n, &why) == 0)
		return 0;
	if (why.code != LEMON_ERR_INVALID_DATA && why.code != LEMON_ERR_TOO_LARGE)
		return lemon_err_set(err, why.code, "%s", why.msg);
	*n = 0;
	if (locked)
		moved = move_aside(backends_dir, aside, sizeof(aside));
	fprintf(stderr, "lemon: %s; treating it as no backends installed%s%s\n",
		why.msg, moved ? "; moved it to " : "", moved ? aside : "");
	return 0;
}

static cJSON *entry_json(const char *backends_dir,
			 const struct provision_installed *e)
{
	size_t blen = strlen(backends_dir), dlen = strlen(e->dir);
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || strncmp(e->dir, backends_dir, blen) != 0 ||
	    e->dir[blen] != '/' || strncmp(e->exe, e->dir, dlen) != 0 ||
	    e->exe[dlen] != '/') {
		cJSON_Delete(o);
		return NULL;
	}
	cJSON_AddStringToObject(o, "name", e->name);
	cJSON_AddStringToObject(o, "kind", e->kind);
	if (e->family[0])
		cJSON_AddStringToObject(o, "family", e->family);
	cJSON_AddStringToObject(o, "version", e->version);
	cJSON_AddStringToObject(o, "asset", e->asset);
	if (e->sha256[0])
		cJSON_AddStringToObject(o, "sha256", e->sha256);
	else
		cJSON_AddNullToObject(o, "sha256");
	cJSON_AddStringToObject(o, "dir", e->dir + blen + 1);
	cJSON_AddStringToObject(o, "exe", e->exe + dlen + 1);
	cJSON_AddNumberToObject(o, "installed_at", (double)e->installed_at);
	/* only kept versions carry it: a current entry reads the same to an
	 * older lemon */
	if (e->previous)
		cJSON_AddTrueToObject(o, "previous");
	return o;
}

int provision_state_write(const char *backends_dir,
		     const struct provision_installed *list, int n,
		     struct lemon_err *err)
{
	cJSON *root = cJSON_CreateObject(), *arr, *o;
	char *text;
	int i, rc;

	if (root == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	cJSON_AddNumberToObject(root, "schema", 1);
	arr = cJSON_AddArrayToObject(root, "backends");
	for (i = 0; i < n; i++) {
		o = entry_json(backends_dir, &list[i]);
		if (o == NULL) {
			cJSON_Delete(root);
			return lemon_err_set(err, LEMON_ERR_INTERNAL,
					     "entry %s lies outside %s", list[i].name,
					     backends_dir);
		}
		cJSON_AddItemToArray(arr, o);
	}
	text = cJSON_Print(root);
	cJSON_Delete(root);
	if (text == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	rc = lemon_write_atomic(backends_dir, STATE_FILE, text, strlen(text), err);
	free(text);
	return rc;
}

void provision_state_check(struct provision_installed *e)
{
	struct stat st;

	e->works = false;
	if (stat(e->exe, &st) < 0)
		snprintf(e->problem, sizeof(e->problem), "%s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(e->problem, sizeof(e->problem), "not a regular file");
	else if (access(e->exe, X_OK) < 0)
		snprintf(e->problem, sizeof(e->problem), "not executable");
	else
		e->works = true;
}
