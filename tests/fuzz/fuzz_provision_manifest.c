/* libFuzzer target for provision/manifest.c: any bytes as a mirror's
 * manifest.json either give a plan whose version is usable in file names
 * and whose size is a whole byte count, or fail with a code the parser
 * documents; never a crash, never an undefined cast */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compat/compat.h"
#include "provision/provision-private.h"
#include "util/str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct compat_backend_asset a;
	struct provision_opts o = { 0 };
	struct provision_plan p;
	struct lemon_err err = { 0 };
	bool unavailable = false;

	memset(&a, 0, sizeof(a));
	lemon_str_copy(a.name, sizeof(a.name), "llamacpp:cpu");
	lemon_str_copy(a.version, sizeof(a.version), "b1");
	lemon_str_copy(a.asset, sizeof(a.asset), "llama-{version}-bin-ubuntu-x64.tar.gz");
	lemon_str_copy(a.url, sizeof(a.url), "https://example.invalid/{version}/{asset}");
	lemon_str_copy(a.exe, sizeof(a.exe), "llama-{version}/llama-server");
	if (provision_plan_from_manifest(&a, &o, "http://127.0.0.1:9", (const char *)data,
					 size, &p, &unavailable, &err) < 0) {
		if (err.code != LEMON_ERR_INVALID_DATA && err.code != LEMON_ERR_NOT_FOUND &&
		    err.code != LEMON_ERR_INVALID_ARG && err.code != LEMON_ERR_TOO_LARGE)
			abort();
		return 0;
	}
	if (!compat_version_ok(p.version) || p.size > (1ull << 53) ||
	    strstr(p.asset, "/") != NULL)
		abort();
	return 0;
}
