/* one error type for all of lemon: a closed code list plus the innermost,
 * specific message; callers only prepend context on the way up */
#ifndef LEMON_UTIL_ERR_H
#define LEMON_UTIL_ERR_H

#include <stddef.h>

enum lemon_err_code {
	LEMON_OK = 0,
	LEMON_ERR_NOT_FOUND,
	LEMON_ERR_PERMISSION,
	LEMON_ERR_BROKEN_SYSTEM,
	LEMON_ERR_INVALID_DATA,
	LEMON_ERR_INVALID_ARG,
	LEMON_ERR_UNSUPPORTED_HW,
	LEMON_ERR_NETWORK,
	LEMON_ERR_CHECKSUM,
	LEMON_ERR_IO,
	LEMON_ERR_NO_SPACE,
	LEMON_ERR_TOO_LARGE,
	LEMON_ERR_BUSY,
	LEMON_ERR_INTERNAL,
};

#define LEMON_ERR_MSG_MAX 256

struct lemon_err {
	enum lemon_err_code code;
	char msg[LEMON_ERR_MSG_MAX];
};

/* sets code and message unless an error is already recorded (first, i.e.
 * innermost, message wins); err may be NULL; always returns -1 */
int lemon_err_set(struct lemon_err *err, enum lemon_err_code code,
		  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* prepends "context: " to an existing message, truncating at the end */
void lemon_err_prefix(struct lemon_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* records errno as a code (ENOENT -> NOT_FOUND, EACCES -> PERMISSION, ...)
 * with "what: strerror" as message; returns -1 */
int lemon_err_errno(struct lemon_err *err, int errnum, const char *what);

/* the same for a file-system step on a path ("writing", "/d/f"), in the
 * words a user acts on: "disk full: writing /d/f: free some space and
 * retry", "permission denied: ...", "read-only file system: ..."; path
 * may be NULL; returns -1 */
int lemon_err_errno_path(struct lemon_err *err, int errnum, const char *what,
			 const char *path);

enum lemon_err_code lemon_err_code_from_errno(int errnum);
const char *lemon_err_code_name(enum lemon_err_code code);
void lemon_err_clear(struct lemon_err *err);

#endif
