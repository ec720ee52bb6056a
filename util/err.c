/* error recording: first message wins so the innermost failure is kept */
#include "util/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int lemon_err_set(struct lemon_err *err, enum lemon_err_code code,
		  const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err->code != LEMON_OK)
		return -1;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

void lemon_err_prefix(struct lemon_err *err, const char *fmt, ...)
{
	char prefix[LEMON_ERR_MSG_MAX];
	char joined[2 * LEMON_ERR_MSG_MAX + 2];
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(joined, sizeof(joined), "%s: %s", prefix, err->msg);
	/* the end of an over-long message is dropped, never the context */
	memcpy(err->msg, joined, sizeof(err->msg) - 1);
	err->msg[sizeof(err->msg) - 1] = '\0';
}

enum lemon_err_code lemon_err_code_from_errno(int errnum)
{
	switch (errnum) {
	case ENOENT:
	case ENOTDIR:
		return LEMON_ERR_NOT_FOUND;
	case EACCES:
	case EPERM:
	case EROFS:
		return LEMON_ERR_PERMISSION;
	case ENOSPC:
	case EDQUOT:
		return LEMON_ERR_NO_SPACE;
	case EFBIG:
	case ENAMETOOLONG:
		return LEMON_ERR_TOO_LARGE;
	case EINVAL:
		return LEMON_ERR_INVALID_ARG;
	case EBUSY:
	case EWOULDBLOCK:
		return LEMON_ERR_BUSY;
	default:
		return LEMON_ERR_IO;
	}
}

int lemon_err_errno(struct lemon_err *err, int errnum, const char *what)
{
	return lemon_err_set(err, lemon_err_code_from_errno(errnum), "%s: %s",
			     what, strerror(errnum));
}

int lemon_err_errno_path(struct lemon_err *err, int errnum, const char *what,
			 const char *path)
{
	const char *p = path ? path : "";
	const char *sep = path ? " " : "";

	switch (errnum) {
	case ENOSPC:
	case EDQUOT:
		return lemon_err_set(err, LEMON_ERR_NO_SPACE,
				     "disk full: %s%s%s: free some space and retry",
				     what, sep, p);
	case EACCES:
	case EPERM:
		return lemon_err_set(err, LEMON_ERR_PERMISSION,
				     "permission denied: %s%s%s", what, sep, p);
	case EROFS:
		return lemon_err_set(err, LEMON_ERR_PERMISSION,
				     "read-only file system: %s%s%s", what, sep, p);
	case ENOMEM:
		return lemon_err_set(err, LEMON_ERR_INTERNAL,
				     "out of memory: %s%s%s", what, sep, p);
	default:
		return lemon_err_set(err, lemon_err_code_from_errno(errnum),
				     "%s%s%s: %s", what, sep, p, strerror(errnum));
	}
}

const char *lemon_err_code_name(enum lemon_err_code code)
{
	switch (code) {
	case LEMON_OK:
		return "ok";
	case LEMON_ERR_NOT_FOUND:
		return "not-found";
	case LEMON_ERR_PERMISSION:
		return "permission";
	case LEMON_ERR_BROKEN_SYSTEM:
		return "broken-system";
	case LEMON_ERR_INVALID_DATA:
		return "invalid-data";
	case LEMON_ERR_INVALID_ARG:
		return "invalid-argument";
	case LEMON_ERR_UNSUPPORTED_HW:
		return "unsupported-hardware";
	case LEMON_ERR_NETWORK:
		return "network";
	case LEMON_ERR_CHECKSUM:
		return "checksum";
	case LEMON_ERR_IO:
		return "io";
	case LEMON_ERR_NO_SPACE:
		return "no-space";
	case LEMON_ERR_TOO_LARGE:
		return "too-large";
	case LEMON_ERR_BUSY:
		return "busy";
	case LEMON_ERR_INTERNAL:
		return "internal";
	}
	return "unknown";
}

void lemon_err_clear(struct lemon_err *err)
{
	if (err == NULL)
		return;
	err->code = LEMON_OK;
	err->msg[0] = '\0';
}
