/* who is asking: uid, gid and supplementary groups of the user whose device
 * access is judged, and the RLIMIT_MEMLOCK soft limit that GPU and NPU
 * runtimes pin buffers against. On the live machine the process's own
 * credentials answer; under a sysroot the recorded /proc/self/status and
 * /proc/self/limits do, so a bug report replays the reporter's user. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "detect/detect-private.h"
#include "util/str.h"

#define USER_MAX_GROUPS ((int)(sizeof(((struct detect_user *)0)->groups) / \
			       sizeof(unsigned)))
#define USER_ID_MAX 0xffffffffull
#define STATUS_CAP 16384u
#define LIMITS_CAP 8192u

/* first whitespace-separated token of a slice */
static void first_token(const char *s, size_t len, const char **tok,
			size_t *tok_len)
{
	size_t i = 0, start;

	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	start = i;
	while (i < len && s[i] != ' ' && s[i] != '\t')
		i++;
	*tok = s + start;
	*tok_len = i - start;
}

static int parse_id(const char *key, const char *val, size_t val_len,
		    unsigned *out, struct lemon_err *err)
{
	const char *tok;
	size_t tok_len;
	uint64_t v;

	/* "Uid: real effective saved fs": access is judged on the real one */
	first_token(val, val_len, &tok, &tok_len);
	if (lemon_parse_u64(tok, tok_len, 10, USER_ID_MAX, &v, err) < 0) {
		lemon_err_prefix(err, "status %s", key);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int parse_groups(const char *val, size_t val_len,
			struct detect_user *out, struct lemon_err *err)
{
	size_t pos = 0;

	out->n_groups = 0;
	while (pos < val_len) {
		const char *tok;
		size_t tok_len;
		uint64_t v;

		first_token(val + pos, val_len - pos, &tok, &tok_len);
		if (tok_len == 0)
			break;
		pos = (size_t)(tok + tok_len - val);
		if (out->n_groups == USER_MAX_GROUPS)
			return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
					     "status Groups lists more than %d groups",
					     USER_MAX_GROUPS);
		if (lemon_parse_u64(tok, tok_len, 10, USER_ID_MAX, &v,
				    err) < 0) {
			lemon_err_prefix(err, "status Groups");
			return -1;
		}
		out->groups[out->n_groups++] = (unsigned)v;
	}
	return 0;
}

int detect_status_parse(const char *buf, size_t len, struct detect_user *out,
			struct lemon_err *err)
{
	bool have_uid = false, have_gid = false;
	const char *line, *key, *val;
	size_t pos = 0, line_len, key_len, val_len;

	out->known = false;
	out->n_groups = 0;
	while (lemon_next_line(buf, len, &pos, &line, &line_len)) {
		if (!lemon_split_kv(line, line_len, ':', &key, &key_len, &val,
				    &val_len))
			continue;
		if (lemon_slice_eq(key, key_len, "Uid")) {
			if (parse_id("Uid", val, val_len, &out->uid, err) < 0)
				return -1;
			have_uid = true;
		} else if (lemon_slice_eq(key, key_len, "Gid")) {
			if (parse_id("Gid", val, val_len, &out->gid, err) < 0)
				return -1;
			have_gid = true;
		} else if (lemon_slice_eq(key, key_len, "Groups")) {
			if (parse_groups(val, val_len, out, err) < 0) {
				out->n_groups = 0;
				return -1;
			}
		}
	}
	if (!have_uid || !have_gid)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "status has no %s line",
				     have_uid ? "Gid" : "Uid");
	out->known = true;
	return 0;
}

int detect_limits_parse_memlock(const char *buf, size_t len,
				struct detect_user *out, struct lemon_err *err)
{
	static const char key[] = "Max locked memory";
	const char *line, *tok;
	size_t pos = 0, line_len, tok_len;
	uint64_t v;

	out->has_memlock = false;
	out->memlock_unlimited = false;
	out->memlock_bytes = 0;
	while (lemon_next_line(buf, len, &pos, &line, &line_len)) {
		if (!lemon_str_has_prefix(line, line_len, key))
			continue;
		/* columns: name, soft limit, hard limit, units */
		first_token(line + sizeof(key) - 1, line_len - (sizeof(key) - 1),
			    &tok, &tok_len);
		if (lemon_slice_eq(tok, tok_len, "unlimited")) {
			out->memlock_unlimited = true;
		} else if (lemon_parse_u64(tok, tok_len, 10, UINT64_MAX, &v,
					   err) < 0) {
			lemon_err_prefix(err, "limits Max locked memory");
			return -1;
		} else {
			out->memlock_bytes = v;
		}
		out->has_memlock = true;
		return 0;
	}
	return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			     "limits has no Max locked memory line");
}

bool detect_group_name(const char *buf, size_t len, unsigned gid, char *out,
		       size_t cap)
{
	const char *line;
	size_t pos = 0, line_len;

	while (lemon_next_line(buf, len, &pos, &line, &line_len)) {
		const char *f[3];
		size_t flen[3], i = 0, n = 0, start = 0;
		uint64_t v;

		if (line_len == 0 || line[0] == '#')
			continue;
		/* name:password:gid:members */
		for (i = 0; i <= line_len && n < 3; i++) {
			if (i < line_len && line[i] != ':')
				continue;
			f[n] = line + start;
			flen[n++] = i - start;
			start = i + 1;
		}
		if (n < 3 || flen[0] == 0 ||
		    lemon_parse_u64(f[2], flen[2], 10, USER_ID_MAX, &v,
				    NULL) < 0 ||
		    v != gid)
			continue;
		/* a truncated name would name the wrong group */
		return lemon_str_copy_n(out, cap, f[0], flen[0]);
	}
	return false;
}

static int live_user(struct detect_user *u, struct lemon_err *err)
{
	gid_t groups[64];
	struct rlimit rl;
	int n, i;

	_Static_assert(sizeof(groups) / sizeof(groups[0]) ==
			       sizeof(u->groups) / sizeof(u->groups[0]),
		       "group arrays differ");
	u->uid = (unsigned)getuid();
	u->gid = (unsigned)getgid();
	n = getgroups(USER_MAX_GROUPS, groups);
	if (n < 0) {
		if (errno == EINVAL)
			return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
					     "user is in more than %d groups",
					     USER_MAX_GROUPS);
		return lemon_err_errno(err, errno, "getgroups");
	}
	for (i = 0; i < n; i++)
		u->groups[i] = (unsigned)groups[i];
	u->n_groups = n;
	u->known = true;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0)
		return lemon_err_errno(err, errno, "getrlimit RLIMIT_MEMLOCK");
	u->has_memlock = true;
	u->memlock_unlimited = rl.rlim_cur == RLIM_INFINITY;
	u->memlock_bytes = u->memlock_unlimited ? 0 : (uint64_t)rl.rlim_cur;
	return 0;
}

int detect_user_probe(struct detect_ctx *ctx, struct lemon_err *err)
{
	struct detect_user *u = &ctx->report->user;
	struct lemon_err e = { 0 };
	char buf[STATUS_CAP];
	size_t len;
	int rc;

	memset(u, 0, sizeof(*u));
	if (detect_root_is_live(ctx->root))
		return live_user(u, err);

	rc = detect_read_proc_optional(ctx->root, "self/status", buf, sizeof(buf), &len, &e);
	if (rc == 0 && detect_status_parse(buf, len, u, &e) < 0)
		rc = -1;
	if (rc < 0)
		*err = e;

	e = (struct lemon_err){ 0 };
	rc = detect_read_proc_optional(ctx->root, "self/limits", buf, LIMITS_CAP, &len, &e);
	if (rc == 0 && detect_limits_parse_memlock(buf, len, u, &e) < 0)
		rc = -1;
	if (rc < 0 && err->code == LEMON_OK)
		*err = e;
	return err->code == LEMON_OK ? 0 : -1;
}
