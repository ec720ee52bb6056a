/* dlopen on first use; the handle is a process-wide cache, never closed */
#include <dlfcn.h>
#include <stdio.h>

#include "util/lazylib.h"
#include "util/str.h"

int lemon_lazylib_open(struct lemon_lazylib *lib, struct lemon_err *err)
{
	int i;

	if (!lib->tried) {
		lib->tried = 1;
		for (i = 0; lib->sonames[i] != NULL && lib->handle == NULL; i++)
			lib->handle = dlopen(lib->sonames[i], RTLD_NOW | RTLD_LOCAL);
		if (lib->handle == NULL) {
			const char *why = dlerror();

			snprintf(lib->error, sizeof(lib->error),
				 "cannot load %s (%s); install the %s package",
				 lib->sonames[0], why ? why : "not found",
				 lib->package);
		}
	}
	if (lib->handle == NULL)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND, "%s", lib->error);
	return 0;
}

void *lemon_lazylib_sym(struct lemon_lazylib *lib, const char *name)
{
	if (lemon_lazylib_open(lib, NULL) < 0)
		return NULL;
	return dlsym(lib->handle, name);
}
