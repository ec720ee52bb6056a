/* Deciding what to fetch: backend names ("llamacpp:rocm:gfx1101") to
 * manifest entries, the install directory layout, and the plan for one
 * install: version, asset, URL and the SHA-256 and size to hold the bytes
 * to, from compat's manifest or from a mirror's manifest.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "provision/provision-private.h"
#include "util/str.h"

#define MIRROR_MANIFEST_MAX (4u << 20)

int provision_find(const struct compat_backends *bm, const char *name,
		   const struct compat_backend_asset **out, bool *needs_target,
		   struct lemon_err *err)
{
	char kind[16] = "", target[32] = "";
	const char *rest, *colon;

	*out = NULL;
	*needs_target = false;
	if (strncmp(name, "llamacpp:", 9) != 0)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "unknown backend name '%s' (want llamacpp:cpu, "
				     "llamacpp:vulkan, llamacpp:rocm[:gfxNNNN] or "
				     "llamacpp:cuda[:sm_NN])", name);
	rest = name + 9;
	colon = strchr(rest, ':');
	if (!lemon_str_copy_n(kind, sizeof(kind), rest,
			      colon ? (size_t)(colon - rest) : strlen(rest)) ||
	    (colon && !lemon_str_copy(target, sizeof(target), colon + 1)))
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "unknown backend name '%s'", name);
	/* a GPU build without its target: detection chooses it */
	if ((strcmp(kind, "rocm") == 0 || strcmp(kind, "cuda") == 0) &&
	    target[0] == 0) {
		*needs_target = true;
		return 0;
	}
	if (compat_backend_find(bm, kind, target, out, err) < 0) {
		lemon_err_prefix(err, "backend '%s'", name);
		return -1;
	}
	return 0;
}

int provision_backends_dir(const char *data_dir, char *out, size_t cap,
			   struct lemon_err *err)
{
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	int n;

	if (data_dir && data_dir[0])
		n = snprintf(out, cap, "%s/backends", data_dir);
	else if (xdg && xdg[0] == '/') /* the spec ignores relative values */
		n = snprintf(out, cap, "%s/lemon/backends", xdg);
	else if (home && home[0] == '/')
		n = snprintf(out, cap, "%s/.local/share/lemon/backends", home);
	else
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG,
				     "neither XDG_DATA_HOME nor HOME is set to an absolute path");
	if (n < 0 || (size_t)n >= cap)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "backends directory path too long");
	return 0;
}

static int plan_mirror(const struct compat_backend_asset *a,
		       const struct provision_opts *o, const char *mirror,
		       struct provision_plan *p, bool *unavailable,
		       struct lemon_err *err)
{
	char url[2048], *text = NULL;
	size_t len, mlen = strlen(mirror);
	int rc;

	while (mlen > 0 && mirror[mlen - 1] == '/')
		mlen--;
	snprintf(url, sizeof(url), "%.*s/manifest.json", (int)mlen, mirror);
	if (provision_fetch_small(url, MIRROR_MANIFEST_MAX, &text, &len, err) < 0)
		return -1;
	rc = provision_plan_from_manifest(a, o, mirror, text, len, p,
					  unavailable, err);
	free(text);
	return rc;
}

static bool hex64(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 64;
}

int provision_plan_make(const struct compat_backend_asset *a,
		   const struct provision_opts *o, struct provision_plan *p,
		   bool *unavailable, struct lemon_err *err)
{
	const char *mirror = o->mirror;
	const char *ver;

	memset(p, 0, sizeof(*p));
	if (mirror == NULL || mirror[0] == 0)
		mirror = getenv("LEMON_MIRROR");
	if (mirror && mirror[0]) {
		if (plan_mirror(a, o, mirror, p, unavailable, err) < 0)
			return -1;
	} else {
		ver = o->version && o->version[0] ? o->version : a->version;
		if (!lemon_str_copy(p->version, sizeof(p->version), ver))
			return lemon_err_set(err, LEMON_ERR_INVALID_ARG, "version too long");
		if (compat_backend_expand(a, p->version, p->asset, sizeof(p->asset),
					  p->url, sizeof(p->url), p->exe,
					  sizeof(p->exe), err) < 0)
			return -1;
		/* the manifest's digest belongs to the pinned version only */
		if (strcmp(p->version, a->version) == 0)
			lemon_str_copy(p->sha256, sizeof(p->sha256), a->sha256);
	}
	if (p->sha256[0] && !hex64(p->sha256))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "sha256 for %s is not 64 lower-case hex digits",
				     p->asset);
	if (p->sha256[0] == 0 && !o->insecure_skip_verify) {
		*unavailable = true;
		return lemon_err_set(err, LEMON_ERR_CHECKSUM,
				     "no known sha256 for %s (its publisher ships no checksums): "
				     "install from a mirror whose manifest.json lists it, "
				     "or pass --insecure-skip-verify", p->asset);
	}
	if (snprintf(p->dirname, sizeof(p->dirname), "%s-%s-%s", a->backend,
		     a->target, p->version) >= (int)sizeof(p->dirname))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "version too long");
	return 0;
}
