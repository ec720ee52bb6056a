/* libcurl, loaded on first use (see util/lazylib.h for why) */
#define CURL_DISABLE_TYPECHECK 1
#include <stdarg.h>

#include <curl/curl.h>

#include "provision/provision-private.h"
#include "util/lazylib.h"

static const char *const curl_sonames[] = { "libcurl.so.4", "libcurl-gnutls.so.4", NULL };

/* process-wide dlopen cache: the one piece of static state, no logic */
static struct lemon_lazylib curl_lib = LEMON_LAZYLIB_INIT(curl_sonames, "libcurl4");
#define LAZY_LIB curl_lib

int provision_curl_load(struct lemon_err *err)
{
	return lemon_lazylib_open(&curl_lib, err);
}

LEMON_LAZY_FN(CURL *, curl_easy_init, (void), (), NULL)
LEMON_LAZY_VOID(curl_easy_cleanup, (CURL *h), (h))
LEMON_LAZY_VOID(curl_easy_reset, (CURL *h), (h))
LEMON_LAZY_FN(CURLcode, curl_easy_pause, (CURL *h, int mask), (h, mask),
	      CURLE_FAILED_INIT)
LEMON_LAZY_FN(CURLcode, curl_easy_perform, (CURL *h), (h), CURLE_FAILED_INIT)
LEMON_LAZY_FN(const char *, curl_easy_strerror, (CURLcode c), (c), "libcurl not loaded")
LEMON_LAZY_FN(CURLM *, curl_multi_init, (void), (), NULL)
LEMON_LAZY_FN(CURLMcode, curl_multi_add_handle, (CURLM *m, CURL *h), (m, h),
	      CURLM_INTERNAL_ERROR)
LEMON_LAZY_FN(CURLMcode, curl_multi_remove_handle, (CURLM *m, CURL *h), (m, h),
	      CURLM_INTERNAL_ERROR)
LEMON_LAZY_FN(CURLMcode, curl_multi_perform, (CURLM *m, int *running),
	      (m, running), CURLM_INTERNAL_ERROR)
LEMON_LAZY_FN(CURLMcode, curl_multi_poll,
	      (CURLM *m, struct curl_waitfd extra[], unsigned int n, int ms, int *numfds),
	      (m, extra, n, ms, numfds), CURLM_INTERNAL_ERROR)
LEMON_LAZY_FN(CURLMsg *, curl_multi_info_read, (CURLM *m, int *left), (m, left), NULL)
LEMON_LAZY_FN(struct curl_slist *, curl_slist_append,
	      (struct curl_slist *l, const char *s), (l, s), NULL)
LEMON_LAZY_VOID(curl_slist_free_all, (struct curl_slist *l), (l))
LEMON_LAZY_FN(CURLMcode, curl_multi_cleanup, (CURLM *m), (m), CURLM_INTERNAL_ERROR)

/* setopt's one variadic argument is a long, a pointer, a function pointer
 * or a curl_off_t, told apart by the option number's type range */
CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	CURLcode (*fn)(CURL *, CURLoption, ...) =
		(CURLcode(*)(CURL *, CURLoption, ...))lemon_lazylib_sym(&curl_lib, "curl_easy_setopt");
	CURLcode rc;
	va_list ap;

	if (fn == NULL)
		return CURLE_FAILED_INIT;
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = fn(h, opt, va_arg(ap, long));
	else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
		rc = fn(h, opt, va_arg(ap, void *));
	else if (opt < CURLOPTTYPE_OFF_T)
		rc = fn(h, opt, va_arg(ap, void (*)(void)));
	else if (opt < CURLOPTTYPE_BLOB)
		rc = fn(h, opt, va_arg(ap, curl_off_t));
	else
		rc = fn(h, opt, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

/* getinfo's variadic argument is always a pointer to the result */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	CURLcode (*fn)(CURL *, CURLINFO, ...) =
		(CURLcode(*)(CURL *, CURLINFO, ...))lemon_lazylib_sym(&curl_lib, "curl_easy_getinfo");
	CURLcode rc;
	va_list ap;

	if (fn == NULL)
		return CURLE_FAILED_INIT;
	va_start(ap, info);
	rc = fn(h, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}
