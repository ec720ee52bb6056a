/* libFuzzer target for provision/release.c: any bytes as GitHub's release
 * JSON either give assets whose names are usable as file names, whose
 * digests are 64 lower-case hex digits or empty and whose sizes are whole
 * byte counts, and a choice of asset inside the list; or fail with a code
 * the parser documents. Never a crash, a leak or an undefined cast. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compat/compat.h"
#include "provision/provision-private.h"
#include "util/str.h"

static void target(struct compat_backend_asset *a, const char *kind,
		   const char *family, const char *format)
{
	memset(a, 0, sizeof(*a));
	lemon_str_copy(a->kind, sizeof(a->kind), kind);
	lemon_str_copy(a->family, sizeof(a->family), family);
	lemon_str_copy(a->format, sizeof(a->format), format);
	lemon_str_copy(a->match_os, sizeof(a->match_os), "ubuntu");
	lemon_str_copy(a->match_arch, sizeof(a->match_arch), "x64");
	if (strcmp(kind, "cpu") != 0)
		lemon_str_copy(a->match_accel, sizeof(a->match_accel), kind);
}

static void check_pick(const struct provision_release *r,
		       const struct compat_backend_asset *a, const char *pinned)
{
	struct lemon_err err = { 0 };
	int idx;

	if (provision_release_pick(r, a, pinned, "release b1", &idx, &err) < 0) {
		if (err.code != LEMON_ERR_NOT_FOUND && err.code != LEMON_ERR_INVALID_DATA)
			abort();
		return;
	}
	if (idx < 0 || idx >= r->n)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct compat_backend_asset cpu, rocm;
	struct provision_release r;
	struct lemon_err err = { 0 };
	size_t k;
	int i;

	if (provision_release_parse((const char *)data, size, "b1", "release b1", &r,
				    &err) < 0) {
		if (err.code != LEMON_ERR_INVALID_DATA && err.code != LEMON_ERR_TOO_LARGE &&
		    err.code != LEMON_ERR_INTERNAL)
			abort();
		return 0;
	}
	for (i = 0; i < r.n; i++) {
		const struct provision_release_asset *x = &r.assets[i];

		if (x->name[0] == 0 || strchr(x->name, '/') != NULL ||
		    strcmp(x->name, "..") == 0 || x->size > (1ull << 53) ||
		    (strncmp(x->url, "https://", 8) != 0 &&
		     strncmp(x->url, "http://", 7) != 0))
			abort();
		for (k = 0; x->sha256[k]; k++)
			if (!((x->sha256[k] >= '0' && x->sha256[k] <= '9') ||
			      (x->sha256[k] >= 'a' && x->sha256[k] <= 'f')))
				abort();
		if (k != 0 && k != 64)
			abort();
	}
	target(&cpu, "cpu", "", "tar.gz");
	target(&rocm, "rocm", "gfx110X", "zip");
	check_pick(&r, &cpu, "llama-b1-bin-ubuntu-x64.tar.gz");
	check_pick(&r, &rocm, "llama-b1-ubuntu-rocm-gfx110X-x64.zip");
	provision_release_free(&r);
	return 0;
}
