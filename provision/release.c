/* A publisher's release listing: the JSON GitHub's REST API answers for
 * GET /repos/{owner}/{repo}/releases/tags/{tag}, reduced to what an
 * install needs per asset (name, size, download URL, the SHA-256 GitHub
 * computed at upload). The bytes come from the network or a cache file,
 * so nothing in them is trusted: the size is bounded by the caller, every
 * kept value is checked for form, and an asset name never reaches a file
 * name unchecked. Choosing the asset for a backend target (its pinned
 * name, else the target's declared pattern) is here too: both are pure
 * functions of the bytes, fuzzed by tests/fuzz/fuzz_provision_github.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "provision/provision-private.h"
#include "util/str.h"

#define SIZE_MAX_EXACT 9007199254740992.0 /* 2^53: a double's exact range */

/* printable ASCII without space, '/' and '\\', not "." or ".." (GitHub
 * replaces other characters when an asset is uploaded) */
static bool name_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '/' || s[i] == '\\')
			return false;
	return i > 0 && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static bool url_ok(const char *s)
{
	size_t i;

	if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
		return false;
	for (i = 0; s[i]; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

bool provision_sha256_hex(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 64;
}

/* "digest": absent or null (uploaded before GitHub computed digests),
 * "sha256:<64 hex>", or another algorithm's "<alg>:..." (not usable, so
 * unknown); anything else is not a digest */
static int asset_digest(const cJSON *d, struct provision_release_asset *x)
{
	const char *v, *colon;

	x->sha256[0] = 0;
	if (d == NULL || cJSON_IsNull(d))
		return 0;
	if (!cJSON_IsString(d))
		return -1;
	v = d->valuestring;
	if (strncmp(v, "sha256:", 7) == 0)
		return provision_sha256_hex(v + 7) &&
		       lemon_str_copy(x->sha256, sizeof(x->sha256), v + 7) ? 0 : -1;
	colon = strchr(v, ':');
	return colon != NULL && colon != v ? 0 : -1;
}

/* one entry of "assets"; 1 when it is kept, 0 when skipped (an upload
 * that never finished), -1 when malformed */
static int parse_asset(const cJSON *it, struct provision_release_asset *x)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(it, "size");
	const cJSON *url = cJSON_GetObjectItemCaseSensitive(it, "browser_download_url");
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(it, "state");
	double d;

	if (!cJSON_IsObject(it) || !cJSON_IsString(name) || !cJSON_IsNumber(size) ||
	    !cJSON_IsString(url))
		return -1;
	if (state != NULL && !cJSON_IsString(state))
		return -1;
	if (state != NULL && strcmp(state->valuestring, "uploaded") != 0)
		return 0;
	d = size->valuedouble;
	if (!(d >= 0 && d <= SIZE_MAX_EXACT) || (double)(uint64_t)d != d)
		return -1;
	if (!name_ok(name->valuestring) ||
	    !lemon_str_copy(x->name, sizeof(x->name), name->valuestring) ||
	    !url_ok(url->valuestring) ||
	    !lemon_str_copy(x->url, sizeof(x->url), url->valuestring) ||
	    asset_digest(cJSON_GetObjectItemCaseSensitive(it, "digest"), x) < 0)
		return -1;
	x->size = (uint64_t)d;
	return 1;
}

static int parse_assets(const cJSON *assets, struct provision_release *r,
			const char *what, struct lemon_err *err)
{
	const cJSON *it;
	int n = cJSON_GetArraySize(assets), i, k = 0, rc;

	if (n > PROVISION_RELEASE_MAX_ASSETS)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "%s: more than %d assets", what,
				     PROVISION_RELEASE_MAX_ASSETS);
	r->assets = calloc(n > 0 ? (size_t)n : 1, sizeof(*r->assets));
	if (r->assets == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	cJSON_ArrayForEach(it, assets) {
		rc = parse_asset(it, &r->assets[r->n]);
		if (rc < 0)
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "%s: asset %d is malformed (name, size, "
					     "browser_download_url or digest)", what, k);
		k++;
		if (rc == 0)
			continue;
		for (i = 0; i < r->n; i++)
			if (strcmp(r->assets[i].name, r->assets[r->n].name) == 0)
				return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
						     "%s: asset %s listed twice", what,
						     r->assets[i].name);
		r->n++;
	}
	return 0;
}

int provision_release_parse(const char *text, size_t len, const char *tag,
			    const char *what, struct provision_release *r,
			    struct lemon_err *err)
{
	const cJSON *tname, *assets;
	cJSON *root;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (len > PROVISION_RELEASE_MAX_BYTES)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "%s: larger than %u bytes", what,
				     PROVISION_RELEASE_MAX_BYTES);
	root = cJSON_ParseWithLength(text, len);
	tname = cJSON_GetObjectItemCaseSensitive(root, "tag_name");
	assets = cJSON_GetObjectItemCaseSensitive(root, "assets");
	if (!cJSON_IsObject(root) || !cJSON_IsString(tname) || !cJSON_IsArray(assets))
		lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			      "%s: not a release (no \"tag_name\" and \"assets\")", what);
	else if (strcmp(tname->valuestring, tag) != 0)
		lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			      "%s: the release listed is not tag %s", what, tag);
	else if (lemon_str_copy(r->tag, sizeof(r->tag), tag))
		rc = parse_assets(assets, r, what, err);
	else
		lemon_err_set(err, LEMON_ERR_INVALID_ARG, "tag too long");
	cJSON_Delete(root);
	if (rc < 0)
		provision_release_free(r);
	return rc;
}

void provision_release_free(struct provision_release *r)
{
	free(r->assets);
	r->assets = NULL;
	r->n = 0;
}

/* words naming an accelerator in llama.cpp's and Lemonade's asset names;
 * a CPU build carries none of them, a GPU build only its own */
static const char *const accel_words[] = {
	"vulkan", "rocm", "cuda", "cudart", "hip", "sycl", "opencl", "musa",
	"cann", "openvino", "kompute", "metal", "npu", "hexagon", "kleidiai",
	NULL,
};

static bool word_is_accel(const char *w, size_t n, const char *own)
{
	size_t i, k;

	for (i = 0; accel_words[i]; i++) {
		k = strlen(accel_words[i]);
		/* "cuda12" and "rocm6.4" name the accelerator too */
		if (n >= k && strncmp(w, accel_words[i], k) == 0 &&
		    (own[0] == 0 || strncmp(w, own, strlen(own)) != 0))
			return true;
	}
	return false;
}

bool provision_release_matches(const struct compat_backend_asset *a,
			       const char *name)
{
	size_t flen = strlen(a->format), nlen = strlen(name), wl;
	size_t alen = strlen(a->match_accel);
	bool os = false, arch = false, accel = false, fam = false;
	const char *w, *end, *dash;

	if (a->match_os[0] == 0 || nlen <= flen + 1 ||
	    strcmp(name + nlen - flen, a->format) != 0 ||
	    name[nlen - flen - 1] != '.')
		return false;
	end = name + nlen - flen - 1;
	for (w = name; w < end; w = dash + 1) {
		dash = memchr(w, '-', (size_t)(end - w));
		if (dash == NULL)
			dash = end;
		wl = (size_t)(dash - w);
		os |= lemon_slice_eq(w, wl, a->match_os);
		arch |= lemon_slice_eq(w, wl, a->match_arch);
		fam |= a->family[0] && lemon_slice_eq(w, wl, a->family);
		accel |= alen && wl >= alen && strncmp(w, a->match_accel, alen) == 0;
		if (word_is_accel(w, wl, a->match_accel))
			return false;
	}
	return os && arch && (alen == 0 || accel) && (a->family[0] == 0 || fam);
}

void provision_release_pattern(const struct compat_backend_asset *a, char *out,
			       size_t cap)
{
	snprintf(out, cap, "os=%s arch=%s accel=%s%s%s format=%s", a->match_os,
		 a->match_arch, a->match_accel[0] ? a->match_accel : "none",
		 a->family[0] ? " family=" : "", a->family, a->format);
}

/* "a, b, c" into out, cut with "..." when it does not fit */
static void name_list(const struct provision_release *r,
		      const struct compat_backend_asset *a, bool only_matching,
		      char *out, size_t cap)
{
	size_t o = 0;
	int i, n;

	out[0] = 0;
	for (i = 0; i < r->n; i++) {
		if (only_matching && !provision_release_matches(a, r->assets[i].name))
			continue;
		n = snprintf(out + o, cap - o, "%s%s", o ? ", " : "",
			     r->assets[i].name);
		if (n < 0 || (size_t)n >= cap - o) {
			if (cap > 4)
				memcpy(out + cap - 4, "...", 4);
			return;
		}
		o += (size_t)n;
	}
}

int provision_release_pick(const struct provision_release *r,
			   const struct compat_backend_asset *a,
			   const char *pinned, const char *what, int *idx,
			   struct lemon_err *err)
{
	char pat[160], list[200];
	int i, found = -1, n = 0;

	*idx = -1;
	for (i = 0; i < r->n; i++)
		if (strcmp(r->assets[i].name, pinned) == 0) {
			*idx = i;
			return 0;
		}
	provision_release_pattern(a, pat, sizeof(pat));
	for (i = 0; a->match_os[0] && i < r->n; i++)
		if (provision_release_matches(a, r->assets[i].name)) {
			found = i;
			n++;
		}
	if (n == 1) {
		*idx = found;
		return 0;
	}
	if (n > 1) {
		name_list(r, a, true, list, sizeof(list));
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s has no asset %s and %d match %s: %s", what,
				     pinned, n, pat, list);
	}
	name_list(r, a, false, list, sizeof(list));
	return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			     "%s has no asset %s%s%s; it has: %s", what, pinned,
			     a->match_os[0] ? " and none matches " : "",
			     a->match_os[0] ? pat : "", r->n ? list : "(none)");
}
