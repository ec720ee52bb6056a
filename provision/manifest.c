/* A mirror's manifest.json: {"version": "b1234", "assets": {"<asset>":
 * {"sha256": "<hex>", "size": N}}}. It comes from whoever runs the
 * mirror, so nothing in it is trusted: the version chosen from it becomes
 * part of file names (the install directory, the .part download) and the
 * size bounds a download. This is the pure parse; resolve.c fetches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "provision/provision-private.h"
#include "util/str.h"

/* the part of name standing for {version} in the asset template, if name
 * fits it; versions never hold '/' or '-' */
static bool template_version(const char *tmpl, const char *name, char *ver,
			     size_t cap)
{
	const char *at = strstr(tmpl, "{version}");
	size_t pre, suf, len, i;

	if (at == NULL)
		return false;
	pre = (size_t)(at - tmpl);
	suf = strlen(at + 9);
	len = strlen(name);
	if (len <= pre + suf || strncmp(name, tmpl, pre) != 0 ||
	    strcmp(name + len - suf, at + 9) != 0)
		return false;
	for (i = pre; i < len - suf; i++)
		if (name[i] == '/' || name[i] == '-')
			return false;
	return lemon_str_copy_n(ver, cap, name + pre, len - suf - pre);
}

/* the manifest's own "version": NULL when it names none; anything else
 * must be a version usable in file names (the value is not echoed: it may
 * hold terminal escapes) */
static int manifest_version(const cJSON *root, const char *url,
			    const char **out, struct lemon_err *err)
{
	const cJSON *mver = cJSON_GetObjectItemCaseSensitive(root, "version");

	*out = NULL;
	if (mver == NULL || cJSON_IsNull(mver))
		return 0;
	if (!cJSON_IsString(mver) || !compat_version_ok(mver->valuestring))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: unusable \"version\" (" COMPAT_VERSION_RULE ")",
				     url);
	*out = mver->valuestring;
	return 0;
}

/* the versions of this asset the mirror lists by name: how many, the
 * first in ver; an asset name giving an unusable version is refused */
static int listed_versions(const struct compat_backend_asset *a,
			   const cJSON *assets, const char *url, char *ver,
			   size_t cap, int *found, struct lemon_err *err)
{
	const cJSON *it;
	char v[32];

	*found = 0;
	cJSON_ArrayForEach(it, assets) {
		if (!template_version(a->asset, it->string, v, sizeof(v)))
			continue;
		if (!compat_version_ok(v))
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "%s: an asset name of %s gives an unusable version (" COMPAT_VERSION_RULE ")",
					     url, a->name);
		if ((*found)++ == 0)
			lemon_str_copy(ver, cap, v);
	}
	return 0;
}

/* picks the version when the user gave none: the pinned one if the mirror
 * has it, else the mirror's own "version" if it has that asset, else the
 * only version of this asset the mirror lists */
static int mirror_version(const struct compat_backend_asset *a,
			  const cJSON *root, const char *mirror, char *ver,
			  size_t cap, bool *unavailable, struct lemon_err *err)
{
	const cJSON *assets = cJSON_GetObjectItemCaseSensitive(root, "assets");
	char asset[128], url[256], exe[128];
	const char *mver;
	int found;

	if (manifest_version(root, mirror, &mver, err) < 0 ||
	    compat_backend_expand(a, a->version, asset, sizeof(asset), url,
				  sizeof(url), exe, sizeof(exe), err) < 0)
		return -1;
	if (cJSON_GetObjectItemCaseSensitive(assets, asset) != NULL)
		return lemon_str_copy(ver, cap, a->version) ? 0 : -1;
	if (mver != NULL &&
	    compat_backend_expand(a, mver, asset, sizeof(asset), url,
				  sizeof(url), exe, sizeof(exe), NULL) == 0 &&
	    cJSON_GetObjectItemCaseSensitive(assets, asset) != NULL)
		return lemon_str_copy(ver, cap, mver) ? 0 : -1;
	if (listed_versions(a, assets, mirror, ver, cap, &found, err) < 0)
		return -1;
	if (found == 1)
		return 0;
	if (found > 1)
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "mirror %s holds several versions of %s: pass --version",
				     mirror, a->name);
	*unavailable = true;
	return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			     "mirror %s has no %s asset (%s for the pinned %s)",
			     mirror, a->name, asset, a->version);
}

/* the largest size a double holds exactly; a JSON number above it (or a
 * fraction, or one below 1) is not a byte count, and casting one beyond
 * 2^64 to uint64_t is undefined */
#define MANIFEST_SIZE_MAX 9007199254740992.0 /* 2^53 */

static int entry_digest_and_size(const cJSON *entry, const char *url,
				 struct provision_plan *p, struct lemon_err *err)
{
	const cJSON *sha = cJSON_GetObjectItemCaseSensitive(entry, "sha256");
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(entry, "size");
	double d;

	if (sha != NULL && !cJSON_IsNull(sha) &&
	    (!cJSON_IsString(sha) ||
	     !lemon_str_copy(p->sha256, sizeof(p->sha256), sha->valuestring)))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: bad sha256 for %s", url, p->asset);
	if (size == NULL || cJSON_IsNull(size))
		return 0; /* unknown: the digest still holds the bytes */
	d = cJSON_IsNumber(size) ? size->valuedouble : -1;
	if (!(d >= 1 && d <= MANIFEST_SIZE_MAX) || (double)(uint64_t)d != d)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: size of %s is not a whole number of bytes from 1 to 2^53",
				     url, p->asset);
	p->size = (uint64_t)d;
	return 0;
}

/* the version the user asked for, or the one the mirror offers */
static int pick_version(const struct compat_backend_asset *a,
			const struct provision_opts *o, const cJSON *root,
			const char *url, struct provision_plan *p,
			bool *unavailable, struct lemon_err *err)
{
	if (o->version == NULL || o->version[0] == 0)
		return mirror_version(a, root, url, p->version,
				      sizeof(p->version), unavailable, err);
	if (!compat_version_ok(o->version) ||
	    !lemon_str_copy(p->version, sizeof(p->version), o->version))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "unusable --version (" COMPAT_VERSION_RULE ")");
	return 0;
}

int provision_plan_from_manifest(const struct compat_backend_asset *a,
				 const struct provision_opts *o,
				 const char *mirror, const char *text,
				 size_t len, struct provision_plan *p,
				 bool *unavailable, struct lemon_err *err)
{
	char url[2048], murl[2048];
	const cJSON *assets, *entry;
	cJSON *root;
	size_t mlen = strlen(mirror);
	int rc = -1;

	memset(p, 0, sizeof(*p));
	while (mlen > 0 && mirror[mlen - 1] == '/')
		mlen--;
	snprintf(murl, sizeof(murl), "%.*s/manifest.json", (int)mlen, mirror);
	root = cJSON_ParseWithLength(text, len);
	assets = root ? cJSON_GetObjectItemCaseSensitive(root, "assets") : NULL;
	if (!cJSON_IsObject(assets)) {
		lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			      "%s: not a mirror manifest (no \"assets\" object)", murl);
		goto out;
	}
	if (pick_version(a, o, root, murl, p, unavailable, err) < 0 ||
	    compat_backend_expand(a, p->version, p->asset, sizeof(p->asset), url,
				  sizeof(url), p->exe, sizeof(p->exe), err) < 0)
		goto out;
	entry = cJSON_GetObjectItemCaseSensitive(assets, p->asset);
	if (!cJSON_IsObject(entry)) {
		*unavailable = true;
		lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			      "mirror %.*s has no %s (not in its manifest.json)",
			      (int)mlen, mirror, p->asset);
		goto out;
	}
	if (entry_digest_and_size(entry, murl, p, err) < 0)
		goto out;
	snprintf(p->url, sizeof(p->url), "%.*s/%s", (int)mlen, mirror, p->asset);
	p->from_mirror = true;
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}
