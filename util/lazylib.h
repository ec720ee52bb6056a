/* load a shared library on first use.
 *
 * libcurl and libarchive pull in some forty libraries
 * (GnuTLS, Kerberos, LDAP, ICU, libstdc++, ...) whose relocation costs more
 * than all of `lemon doctor`'s own work. Only the commands that download,
 * unpack or serve need them, so those layers reach them through stubs that
 * dlopen the library the first time one of its functions is called. */
#ifndef LEMON_UTIL_LAZYLIB_H
#define LEMON_UTIL_LAZYLIB_H

#include <pthread.h>

#include "util/err.h"

/* define one with LEMON_LAZYLIB_INIT; the fields after package are the
 * loader's, set once under once */
struct lemon_lazylib {
	const char *const *sonames; /* tried in order, NULL-terminated */
	const char *package;        /* Debian package that ships it */
	void *handle;
	int loads; /* times the sonames were tried: 1 after the first use */
	char error[200];
	pthread_once_t once;
};

#define LEMON_LAZYLIB_INIT(sonames, package) \
	{ (sonames), (package), NULL, 0, "", PTHREAD_ONCE_INIT }

/* opens the library once, however many threads ask at the same time;
 * NOT_FOUND naming the soname and package (every later call too) */
int lemon_lazylib_open(struct lemon_lazylib *lib, struct lemon_err *err);

/* the address of a symbol, NULL when the library or symbol is missing */
void *lemon_lazylib_sym(struct lemon_lazylib *lib, const char *name);

/* defines a stub `ret name params` that forwards `args` to the library's
 * own function, or returns `fail` when the library cannot be loaded; the
 * including file defines LAZY_LIB as its struct lemon_lazylib */
#define LEMON_LAZY_FN(ret, name, params, args, fail)                     \
	ret name params                                                  \
	{                                                                \
		ret(*fn) params =                                        \
			(ret(*) params)lemon_lazylib_sym(&LAZY_LIB, #name); \
		return fn != NULL ? fn args : (fail);                    \
	}

#define LEMON_LAZY_VOID(name, params, args)                              \
	void name params                                                 \
	{                                                                \
		void(*fn) params =                                       \
			(void(*) params)lemon_lazylib_sym(&LAZY_LIB, #name); \
		if (fn != NULL)                                          \
			fn args;                                         \
	}

#endif
