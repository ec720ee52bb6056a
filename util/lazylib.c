/* dlopen on first use; the handle is a process-wide cache, never closed.
 * The first use may come from several threads at once (the server's
 * request threads pulling a model while another installs a backend), so
 * the load runs under pthread_once: one dlopen, and every caller sees its
 * finished result, never a half-set handle. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "util/lazylib.h"
#include "util/str.h"

/* pthread_once's routine takes no argument: the library being loaded is
 * handed over in a thread-local, set by the thread that calls
 * pthread_once, which is the thread that runs the routine */
static _Thread_local struct lemon_lazylib *loading;

static void load_once(void)
{
	struct lemon_lazylib *lib = loading;
	const char *why;
	int i;

	lib->loads++;
	for (i = 0; lib->sonames[i] != NULL && lib->handle == NULL; i++)
		lib->handle = dlopen(lib->sonames[i], RTLD_NOW | RTLD_LOCAL);
	if (lib->handle == NULL) {
		why = dlerror();
		snprintf(lib->error, sizeof(lib->error),
			 "cannot load %s (%s); install the %s package",
			 lib->sonames[0], why ? why : "not found", lib->package);
	}
}

int lemon_lazylib_open(struct lemon_lazylib *lib, struct lemon_err *err)
{
	loading = lib;
	pthread_once(&lib->once, load_once);
	loading = NULL;
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
