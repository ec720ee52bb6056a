/* Deciding what to fetch: backend names ("llamacpp:rocm:gfx1101") to
 * manifest entries, the install directory layout, and the plan for one
 * install: version, asset, URL and the SHA-256 and size to hold the bytes
 * to, from a mirror's manifest.json, else from compat's manifest checked
 * against the publisher's release listing (github.c), which also supplies
 * the digest compat lacks and finds an asset whose name drifted. */
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
	/* FastFlowLM: one build for every XDNA2 NPU, named by its backend */
	if (strcmp(name, "flm") == 0) {
		if (compat_backend_find(bm, "npu", NULL, out, err) < 0) {
			lemon_err_prefix(err, "backend '%s'", name);
			return -1;
		}
		return 0;
	}
	if (strncmp(name, "llamacpp:", 9) != 0)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "unknown backend name '%s' (want llamacpp:cpu, "
				     "llamacpp:vulkan, llamacpp:rocm[:gfxNNNN], "
				     "llamacpp:cuda[:sm_NN] or flm)", name);
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

/* every asset of a release on stderr: the error message holds only as
 * many as fit in it */
static void list_assets(const struct provision_release *r, const char *what)
{
	int i;

	fprintf(stderr, "lemon: %s holds %d asset%s:\n", what, r->n,
		r->n == 1 ? "" : "s");
	for (i = 0; i < r->n; i++)
		fprintf(stderr, "  %s\n", r->assets[i].name);
}

/* the publisher's asset for the plan: its name (the pinned one, else the
 * one the target's pattern picks, said aloud), URL, size and digest; a
 * digest or size pinned in compat/backends.json must agree with it */
static int take_asset(const struct compat_backend_asset *a,
		      const struct provision_release *rel, const char *what,
		      bool https, struct provision_plan *p, bool *unavailable,
		      struct lemon_err *err)
{
	const struct provision_release_asset *x;
	char pat[160];
	int idx;

	if (provision_release_pick(rel, a, p->asset, what, &idx, err) < 0) {
		list_assets(rel, what);
		*unavailable = true;
		return -1;
	}
	x = &rel->assets[idx];
	if (strcmp(x->name, p->asset) != 0) {
		provision_release_pattern(a, pat, sizeof(pat));
		fprintf(stderr, "lemon: %s has no asset %s; taking %s, the one asset "
			"matching %s\n", what, p->asset, x->name, pat);
	}
	if (https && strncmp(x->url, "https://", 8) != 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: %s would be downloaded without TLS", what,
				     x->name);
	if (p->sha256[0] && x->sha256[0] && strcmp(p->sha256, x->sha256) != 0)
		return lemon_err_set(err, LEMON_ERR_CHECKSUM,
				     "%s: publisher digest %s disagrees with pinned %s "
				     "(compat/backends.json)",
				     x->name, x->sha256, p->sha256);
	if (p->size && x->size != p->size)
		return lemon_err_set(err, LEMON_ERR_CHECKSUM,
				     "%s: the publisher lists %llu bytes, compat/backends.json "
				     "pins %llu; refusing it", x->name,
				     (unsigned long long)x->size,
				     (unsigned long long)p->size);
	if (p->sha256[0] == 0 && x->sha256[0]) {
		lemon_str_copy(p->sha256, sizeof(p->sha256), x->sha256);
		lemon_str_copy(p->digest_from, sizeof(p->digest_from), "publisher");
	}
	if (x->size)
		p->size = x->size;
	if (!lemon_str_copy(p->asset, sizeof(p->asset), x->name) ||
	    !lemon_str_copy(p->url, sizeof(p->url), x->url))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "%s: asset name or URL too long", what);
	return 0;
}

/* asks the publisher (GitHub's release listing) for the asset's digest
 * and size; *asked is false when there is no publisher to ask (another
 * host, or LEMON_GITHUB_API=none) */
static int plan_publisher(const struct compat_backend_asset *a,
			  const struct provision_opts *o,
			  struct provision_plan *p, bool *asked,
			  bool *unavailable, struct lemon_err *err)
{
	char api[512], repo[128], url[1024], what[256], tag[64];
	struct provision_release rel;
	struct lemon_err e = { 0 };
	int rc;

	*asked = false;
	if (!provision_github_api(api, sizeof(api)) ||
	    !provision_github_repo(a->url, repo, sizeof(repo)))
		return 0;
	/* FastFlowLM tags v0.9.44 and names its asset 0.9.44 */
	if (compat_backend_tag(a, p->version, tag, sizeof(tag), err) < 0)
		return -1;
	*asked = true;
	snprintf(what, sizeof(what), "release %s of %s", tag, repo);
	if (provision_github_release(api, repo, tag, &rel, url, sizeof(url),
				     &e) < 0) {
		if (e.code == LEMON_ERR_NOT_FOUND)
			*unavailable = true;
		/* a pinned digest still holds the bytes, and --insecure-skip-verify
		 * asked for none: neither needs the listing */
		if (e.code != LEMON_ERR_NOT_FOUND && e.code != LEMON_ERR_INVALID_DATA &&
		    (p->sha256[0] || o->insecure_skip_verify)) {
			fprintf(stderr, "lemon: %s; going on with the %s\n", e.msg,
				p->sha256[0] ? "sha256 pinned in compat/backends.json" :
				"pinned asset name, unverified");
			*asked = false;
			return 0;
		}
		return lemon_err_set(err, e.code, "%s", e.msg);
	}
	rc = take_asset(a, &rel, what, strncmp(api, "https://", 8) == 0, p,
			unavailable, err);
	provision_release_free(&rel);
	return rc;
}

static int plan_pinned(const struct compat_backend_asset *a,
		       const struct provision_opts *o, struct provision_plan *p,
		       bool *asked, bool *unavailable, struct lemon_err *err)
{
	const char *ver = o->version && o->version[0] ? o->version : a->version;

	if (!lemon_str_copy(p->version, sizeof(p->version), ver))
		return lemon_err_set(err, LEMON_ERR_INVALID_ARG, "version too long");
	if (compat_backend_expand(a, p->version, p->asset, sizeof(p->asset),
				  p->url, sizeof(p->url), p->exe,
				  sizeof(p->exe), err) < 0)
		return -1;
	/* the manifest's digest belongs to the pinned version only */
	if (strcmp(p->version, a->version) == 0) {
		lemon_str_copy(p->sha256, sizeof(p->sha256), a->sha256);
		p->size = a->size;
		lemon_str_copy(p->digest_from, sizeof(p->digest_from), "pinned");
	}
	return plan_publisher(a, o, p, asked, unavailable, err);
}

int provision_plan_make(const struct compat_backend_asset *a,
		   const struct provision_opts *o, struct provision_plan *p,
		   bool *unavailable, struct lemon_err *err)
{
	const char *mirror = o->mirror;
	bool asked = false;

	memset(p, 0, sizeof(*p));
	if (mirror == NULL || mirror[0] == 0)
		mirror = getenv("LEMON_MIRROR");
	if (mirror && mirror[0]) {
		if (plan_mirror(a, o, mirror, p, unavailable, err) < 0)
			return -1;
		lemon_str_copy(p->digest_from, sizeof(p->digest_from), "manifest");
	} else if (plan_pinned(a, o, p, &asked, unavailable, err) < 0) {
		return -1;
	}
	if (p->sha256[0] && !provision_sha256_hex(p->sha256))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "sha256 for %s is not 64 lower-case hex digits",
				     p->asset);
	if (p->sha256[0] == 0 && !o->insecure_skip_verify) {
		*unavailable = true;
		return lemon_err_set(err, LEMON_ERR_CHECKSUM,
				     "no known sha256 for %s (%s): "
				     "install from a mirror whose manifest.json lists it, "
				     "or pass --insecure-skip-verify", p->asset,
				     p->from_mirror ? "the mirror lists none" :
				     asked ? "not pinned, and its publisher's release lists no digest" :
				     "not pinned, and no publisher release listing was read");
	}
	if (snprintf(p->dirname, sizeof(p->dirname), "%s-%s-%s", a->backend,
		     a->target, p->version) >= (int)sizeof(p->dirname))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "version too long");
	return 0;
}
