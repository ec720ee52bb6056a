/* Versions of one backend on the machine: installed.json holds at most two
 * per name, the current one (which `lemon serve` starts) and the one it
 * replaced, kept so that `lemon backends rollback NAME` can return to it
 * without a download and so that a child `lemon serve` already runs from
 * the old directory keeps its files. Installing a third drops the oldest.
 * Every change is made under the install lock and written whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "detect/detect.h"
#include "provision/provision-private.h"
#include "util/fs.h"
#include "util/str.h"

int provision_versions_shift(struct provision_installed *list, int n,
			     const char *name, const char *final_dir,
			     char *old_dir, size_t cap, char *prev,
			     size_t prev_cap, char *removed, size_t removed_cap)
{
	bool other_current = false;
	int i, k = 0;

	old_dir[0] = prev[0] = removed[0] = 0;
	for (i = 0; i < n; i++)
		if (strcmp(list[i].name, name) == 0 && !list[i].previous &&
		    strcmp(list[i].dir, final_dir) != 0)
			other_current = true;
	for (i = 0; i < n; i++) {
		struct provision_installed *e = &list[i];

		if (strcmp(e->name, name) != 0) {
			list[k++] = *e;
			continue;
		}
		/* the same directory: the new bundle replaced it in place */
		if (strcmp(e->dir, final_dir) == 0)
			continue;
		if (!e->previous) {
			e->previous = true;
			lemon_str_copy(prev, prev_cap, e->version);
			list[k++] = *e;
			continue;
		}
		/* the kept one: stays only when there is no newer to keep */
		if (other_current) {
			lemon_str_copy(old_dir, cap, e->dir);
			lemon_str_copy(removed, removed_cap, e->version);
			continue;
		}
		lemon_str_copy(prev, prev_cap, e->version);
		list[k++] = *e;
	}
	return k;
}

/* the pid of a process whose executable lies under dir, else 0: a
 * llama-server child of `lemon serve` running from a version about to be
 * dropped (its supervisor restarts it from the same path). Processes are
 * read through the machine root like every machine file. */
static long dir_in_use(const char *dir)
{
	struct lemon_root *root = NULL;
	struct detect_names pids = { 0 };
	char rel[64], path[1280], exe[4096];
	size_t dlen = strlen(dir), i;
	uint64_t pid;
	ssize_t r;
	long found = 0;

	if (detect_root_new(NULL, &root, NULL) < 0)
		return 0;
	if (detect_root_list(root, DETECT_BASE_PROC, "", &pids, NULL) == 0) {
		for (i = 0; i < pids.count && found == 0; i++) {
			if (lemon_parse_u64(pids.names[i], strlen(pids.names[i]), 10,
					    INT32_MAX, &pid, NULL) < 0)
				continue;
			snprintf(rel, sizeof(rel), "%s/exe", pids.names[i]);
			if (detect_root_path(root, DETECT_BASE_PROC, rel, path,
					     sizeof(path), NULL) < 0)
				continue;
			r = readlink(path, exe, sizeof(exe) - 1);
			if (r <= (ssize_t)dlen)
				continue;
			exe[r] = 0;
			if (strncmp(exe, dir, dlen) == 0 && exe[dlen] == '/')
				found = (long)pid;
		}
		detect_names_free(&pids);
	}
	detect_root_free(root);
	return found;
}

bool provision_versions_drop(const char *dir)
{
	long pid = dir_in_use(dir);

	if (pid > 0) {
		fprintf(stderr, "lemon: left %s on disk: process %ld runs from it; "
			"remove it once that process has ended\n", dir, pid);
		return false;
	}
	return lemon_rm_tree(dir, NULL) == 0;
}

static int list_entries(const char *data_dir, bool all,
			struct provision_installed *out, int cap, int *n,
			struct lemon_err *err)
{
	char bdir[4096];
	int i, k = 0;

	*n = 0;
	if (provision_backends_dir(data_dir, bdir, sizeof(bdir), err) < 0)
		return -1;
	/* no lock: a corrupt file is reported, not moved (an install, which
	 * holds the lock, moves it aside) */
	if (provision_state_load(bdir, false, out, cap, n, err) < 0)
		return -1;
	for (i = 0; i < *n; i++)
		if (all || !out[i].previous)
			out[k++] = out[i];
	*n = k;
	return 0;
}

int provision_list(const char *data_dir, struct provision_installed *out,
		   int cap, int *n, struct lemon_err *err)
{
	return list_entries(data_dir, false, out, cap, n, err);
}

int provision_list_all(const char *data_dir, struct provision_installed *out,
		       int cap, int *n, struct lemon_err *err)
{
	return list_entries(data_dir, true, out, cap, n, err);
}

static int rollback_locked(const char *bdir, const char *name,
			   struct provision_installed *now, char *from,
			   size_t from_cap, struct lemon_err *err)
{
	struct provision_installed list[PROVISION_MAX_INSTALLED];
	int n = 0, i, cur = -1, prev = -1;

	if (provision_state_load(bdir, true, list, PROVISION_MAX_INSTALLED, &n,
				 err) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (strcmp(list[i].name, name) != 0)
			continue;
		if (list[i].previous)
			prev = i;
		else
			cur = i;
	}
	if (prev < 0)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "%s has no previous version to roll back to "
				     "(see lemon backends)", name);
	if (!list[prev].works)
		return lemon_err_set(err, LEMON_ERR_BROKEN_SYSTEM,
				     "previous version %s of %s is broken (%s: %s)",
				     list[prev].version, name, list[prev].exe,
				     list[prev].problem);
	list[prev].previous = false;
	if (cur >= 0) {
		list[cur].previous = true;
		lemon_str_copy(from, from_cap, list[cur].version);
	}
	*now = list[prev];
	return provision_state_write(bdir, list, n, err);
}

int provision_rollback(const char *data_dir, const char *name,
		       struct provision_installed *now, char *from, size_t from_cap,
		       struct lemon_err *err)
{
	char bdir[4096];
	int lock = -1, rc;

	from[0] = 0;
	memset(now, 0, sizeof(*now));
	if (provision_backends_dir(data_dir, bdir, sizeof(bdir), err) < 0 ||
	    provision_mkdirs(bdir, err) < 0 || provision_lock(bdir, NULL, &lock, err) < 0)
		return -1;
	rc = rollback_locked(bdir, name, now, from, from_cap, err);
	provision_unlock(lock);
	return rc;
}

int provision_uninstall(const char *data_dir, const char *name,
			struct lemon_err *err)
{
	struct provision_installed list[PROVISION_MAX_INSTALLED];
	char bdir[4096], victims[2][4096];
	const char *base;
	int lock = -1, n = 0, i, k = 0, nv = 0, rc;

	if (provision_backends_dir(data_dir, bdir, sizeof(bdir), err) < 0 ||
	    provision_mkdirs(bdir, err) < 0 || provision_lock(bdir, NULL, &lock, err) < 0)
		return -1;
	rc = provision_state_load(bdir, true, list, PROVISION_MAX_INSTALLED, &n,
				  err);
	/* by name: the backend with its kept version; by directory: that one */
	for (i = 0; rc == 0 && i < n; i++) {
		base = strrchr(list[i].dir, '/');
		if (nv < 2 && (strcmp(list[i].name, name) == 0 ||
			       (base && strcmp(base + 1, name) == 0))) {
			lemon_str_copy(victims[nv++], sizeof(victims[0]), list[i].dir);
			continue;
		}
		list[k++] = list[i];
	}
	if (rc == 0 && nv == 0)
		rc = lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				   "backend '%s' is not installed (see lemon backends)",
				   name);
	/* forget it first: a crash then leaves an unlisted directory, never
	 * a listed one that is half gone */
	if (rc == 0)
		rc = provision_state_write(bdir, list, k, err);
	for (i = 0; rc == 0 && i < nv; i++)
		rc = lemon_rm_tree(victims[i], err);
	provision_unlock(lock);
	return rc;
}
