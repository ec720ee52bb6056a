/* small file-system helpers shared by the layers that write files */
#ifndef LEMON_UTIL_FS_H
#define LEMON_UTIL_FS_H

#include <stddef.h>

/* creates dir and its parents (mode 0755), accepting directories that
 * exist, even where this user could not have created them. Returns 0, or
 * the errno of the first failure with that component's path in failed
 * (ENAMETOOLONG when dir does not fit); callers turn it into their error. */
int lemon_mkdirs(const char *dir, char *failed, size_t failed_cap);

#endif
