/* libarchive, loaded on first use (see util/lazylib.h for why) */
#include <stdarg.h>
#include <stdio.h>

#include <archive.h>
#include <archive_entry.h>

#include "provision/provision-private.h"
#include "util/lazylib.h"

static const char *const archive_sonames[] = { "libarchive.so.13", NULL };

/* process-wide dlopen cache: the one piece of static state, no logic */
static struct lemon_lazylib archive_lib = LEMON_LAZYLIB_INIT(archive_sonames, "libarchive13");
#define LAZY_LIB archive_lib

int provision_archive_load(struct lemon_err *err)
{
	return lemon_lazylib_open(&archive_lib, err);
}

LEMON_LAZY_FN(struct archive *, archive_read_new, (void), (), NULL)
LEMON_LAZY_FN(int, archive_read_free, (struct archive *a), (a), ARCHIVE_FATAL)
LEMON_LAZY_FN(int, archive_errno, (struct archive *a), (a), 0)
LEMON_LAZY_FN(const char *, archive_error_string, (struct archive *a), (a),
	      "libarchive not loaded")
LEMON_LAZY_FN(int, archive_read_support_format_zip, (struct archive *a), (a), ARCHIVE_FATAL)
LEMON_LAZY_FN(int, archive_read_support_format_tar, (struct archive *a), (a), ARCHIVE_FATAL)
LEMON_LAZY_FN(int, archive_read_support_filter_gzip, (struct archive *a), (a), ARCHIVE_FATAL)
LEMON_LAZY_FN(int, archive_read_support_filter_xz, (struct archive *a), (a), ARCHIVE_FATAL)
LEMON_LAZY_FN(int, archive_read_support_filter_zstd, (struct archive *a), (a), ARCHIVE_FATAL)
LEMON_LAZY_FN(int, archive_read_open_filename,
	      (struct archive *a, const char *path, size_t block), (a, path, block),
	      ARCHIVE_FATAL)
LEMON_LAZY_FN(int, archive_read_open,
	      (struct archive *a, void *data, archive_open_callback *o,
	       archive_read_callback *r, archive_close_callback *c),
	      (a, data, o, r, c), ARCHIVE_FATAL)
LEMON_LAZY_FN(int, archive_read_next_header,
	      (struct archive *a, struct archive_entry **e), (a, e), ARCHIVE_FATAL)
LEMON_LAZY_FN(int, archive_read_data_block,
	      (struct archive *a, const void **buf, size_t *len, la_int64_t *off),
	      (a, buf, len, off), ARCHIVE_FATAL)
LEMON_LAZY_FN(la_int64_t, archive_entry_size, (struct archive_entry *e), (e), 0)
LEMON_LAZY_FN(int, archive_entry_size_is_set, (struct archive_entry *e), (e), 0)
LEMON_LAZY_FN(const char *, archive_entry_pathname, (struct archive_entry *e), (e), NULL)
LEMON_LAZY_FN(const char *, archive_entry_symlink, (struct archive_entry *e), (e), NULL)
LEMON_LAZY_FN(const char *, archive_entry_hardlink, (struct archive_entry *e), (e), NULL)
LEMON_LAZY_FN(__LA_MODE_T, archive_entry_perm, (struct archive_entry *e), (e), 0)
LEMON_LAZY_FN(__LA_MODE_T, archive_entry_filetype, (struct archive_entry *e), (e), 0)

/* the message is formatted here so only a plain "%s" crosses over */
void archive_set_error(struct archive *a, int code, const char *fmt, ...)
{
	void (*fn)(struct archive *, int, const char *, ...) =
		(void (*)(struct archive *, int, const char *, ...))lemon_lazylib_sym(&archive_lib, "archive_set_error");
	char msg[512];
	va_list ap;

	if (fn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(a, code, "%s", msg);
}
