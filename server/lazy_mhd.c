/* libmicrohttpd, loaded on first use (see util/lazylib.h for why) */
#include <stdarg.h>
#include <stdint.h>

#include <microhttpd.h>

#include "server/server-private.h"
#include "util/lazylib.h"

static const char *const mhd_sonames[] = { "libmicrohttpd.so.12", NULL };

/* process-wide dlopen cache: the one piece of static state, no logic */
static struct lemon_lazylib mhd_lib = { mhd_sonames, "libmicrohttpd12", NULL, 0, "" };
#define LAZY_LIB mhd_lib

int server_mhd_load(struct lemon_err *err)
{
	return lemon_lazylib_open(&mhd_lib, err);
}

LEMON_LAZY_FN(enum MHD_Result, MHD_add_response_header,
	      (struct MHD_Response *r, const char *h, const char *v), (r, h, v), MHD_NO)
LEMON_LAZY_FN(enum MHD_Result, MHD_queue_response,
	      (struct MHD_Connection *c, unsigned int status, struct MHD_Response *r),
	      (c, status, r), MHD_NO)
LEMON_LAZY_VOID(MHD_destroy_response, (struct MHD_Response *r), (r))
LEMON_LAZY_FN(const char *, MHD_lookup_connection_value,
	      (struct MHD_Connection *c, enum MHD_ValueKind k, const char *key),
	      (c, k, key), NULL)
LEMON_LAZY_FN(struct MHD_Response *, MHD_create_response_from_buffer,
	      (size_t size, void *buf, enum MHD_ResponseMemoryMode mode),
	      (size, buf, mode), NULL)
LEMON_LAZY_FN(struct MHD_Response *, MHD_create_response_from_callback,
	      (uint64_t size, size_t block, MHD_ContentReaderCallback crc, void *cls,
	       MHD_ContentReaderFreeCallback crfc),
	      (size, block, crc, cls, crfc), NULL)
LEMON_LAZY_VOID(MHD_stop_daemon, (struct MHD_Daemon *d), (d))
LEMON_LAZY_FN(MHD_socket, MHD_quiesce_daemon, (struct MHD_Daemon *d), (d), MHD_INVALID_SOCKET)

/* the option list is passed on through the library's own va_list entry */
struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port,
				    MHD_AcceptPolicyCallback apc, void *apc_cls,
				    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	struct MHD_Daemon *(*fn)(unsigned int, uint16_t, MHD_AcceptPolicyCallback,
				 void *, MHD_AccessHandlerCallback, void *, va_list) =
		(struct MHD_Daemon * (*)(unsigned int, uint16_t, MHD_AcceptPolicyCallback,
					 void *, MHD_AccessHandlerCallback, void *, va_list))
			lemon_lazylib_sym(&mhd_lib, "MHD_start_daemon_va");
	struct MHD_Daemon *d;
	va_list ap;

	if (fn == NULL)
		return NULL;
	va_start(ap, dh_cls);
	d = fn(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}
