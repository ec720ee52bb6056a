/* test helper: builds small sysroot trees in a temporary directory */
#ifndef LEMON_TEST_TREE_H
#define LEMON_TEST_TREE_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline void tree_mkdirs(const char *path)
{
	char tmp[1024];
	size_t i;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (i = 1; tmp[i] != '\0'; i++) {
		if (tmp[i] != '/')
			continue;
		tmp[i] = '\0';
		mkdir(tmp, 0755);
		tmp[i] = '/';
	}
	mkdir(tmp, 0755);
}

/* writes dir/rel with content, creating parents */
static inline void tree_write(const char *dir, const char *rel, const char *content)
{
	char path[1024], parent[1024];
	char *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	*slash = '\0';
	tree_mkdirs(parent);
	f = fopen(path, "w");
	if (f == NULL) {
		perror(path);
		abort();
	}
	fputs(content, f);
	fclose(f);
}

static inline void tree_link(const char *dir, const char *rel, const char *target)
{
	char path[1024], parent[1024];
	char *slash;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	*slash = '\0';
	tree_mkdirs(parent);
	if (symlink(target, path) != 0) {
		perror(path);
		abort();
	}
}

static inline int tree_rm_one(const char *p, const struct stat *sb, int flag,
			      struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static inline void tree_remove(const char *dir)
{
	nftw(dir, tree_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkdtemp under TMPDIR; the buffer must hold 64 bytes */
static inline void tree_new(char *dir)
{
	const char *t = getenv("TMPDIR");

	snprintf(dir, 64, "%s/lemon-test-XXXXXX", t ? t : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		abort();
	}
}

#endif
