/* the file-system steps lemon's crash safety rests on, in one place:
 * directory creation, tree removal that never follows symlinks, directory
 * fsync, durable atomic file replacement, a directory swap that never
 * leaves the target missing, and a bounded whole-file read. The
 * provisioner, the model store and the compat loaders all use these. */
#ifndef LEMON_UTIL_FS_H
#define LEMON_UTIL_FS_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* creates dir and its parents (mode 0755), accepting directories that
 * exist, even where this user could not have created them. Returns 0, or
 * the errno of the first failure with that component's path in failed
 * (ENAMETOOLONG when dir does not fit); callers turn it into their error. */
int lemon_mkdirs(const char *dir, char *failed, size_t failed_cap);

/* removes path; a directory with everything under it. Symlinks are
 * removed, never followed, at any depth: every step is openat/unlinkat on
 * a descriptor opened with O_NOFOLLOW, so a directory swapped for a
 * symlink mid-way is not entered. A missing path is success. Returns 0 or
 * -1 with err naming the entry that could not be removed. */
int lemon_rm_tree(const char *path, struct lemon_err *err);

/* makes the entries of dir (names created, renamed, removed) durable;
 * file systems that cannot fsync a directory (EINVAL) count as done */
int lemon_fsync_dir(const char *dir, struct lemon_err *err);

/* makes every file and directory under dir durable (starts write-back of
 * all files first, then waits for each, then the directories) */
int lemon_sync_tree(const char *dir, struct lemon_err *err);

/* replaces dir/name with data, durably and atomically: readers see the old
 * or the new file, whole, never a mix, even across a crash. Writes a
 * unique temp file in dir (mode 0644), fsyncs it, renames it over name and
 * fsyncs dir; the temp file is removed on every failure. */
int lemon_write_atomic(const char *dir, const char *name, const void *data,
		       size_t len, struct lemon_err *err);

/* renames the directory staging to final. When final exists it is
 * exchanged atomically (renameat2 RENAME_EXCHANGE) so final names a whole
 * tree at every instant, and *swapped is set: the old tree is then at
 * staging for the caller to remove. Where the file system lacks
 * RENAME_EXCHANGE the old tree is moved aside first (a short window
 * without final) and moved back if the new one cannot be put in place. */
int lemon_swap_into_place(const char *staging, const char *final,
			  bool *swapped, struct lemon_err *err);

/* reads a whole regular file of at most max bytes into one NUL-terminated
 * heap buffer (*out, the caller frees it; *len its length, may be NULL).
 * Refuses what is not a regular file (a FIFO is never opened for a
 * blocking read) with INVALID_DATA and a larger file with TOO_LARGE. A
 * missing file is NOT_FOUND, or, with missing_ok, success with *out NULL. */
int lemon_read_file(const char *path, size_t max, bool missing_ok, char **out,
		    size_t *len, struct lemon_err *err);

#endif
