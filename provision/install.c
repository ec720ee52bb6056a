/* One install, start to finish, under the install lock: plan, download
 * while unpacking into a private staging directory (tar.gz is unpacked as
 * it streams in; zip needs its central directory, so it is unpacked after
 * the download), verify SHA-256 and size, check the executable, flush,
 * swap the staging directory into place and record it in installed.json.
 * Any failure before the swap leaves the previous install as it was; the
 * staging directory is private, removed when the install ends (cancelled
 * and failed ones included) and, when a killed install left one, by the
 * next install before it begins. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>

#include "provision/provision-private.h"
#include "util/fs.h"
#include "util/str.h"

struct job {
	const struct compat_backend_asset *a;
	const struct provision_opts *o;
	struct provision_plan plan;
	char bdir[4096];
	char staging[4096];
	char part[4096];
	char final[4096];
	char exe[4096];
	struct provision_meter progress;
	struct provision_fetch *fetch;
	struct provision_gunzip *gz;
	struct lemon_err fetch_err; /* what the archive read callback hit:
				     * download or gzip decoding */
	char got_sha[65];
	uint64_t got_size;
	bool downloaded; /* every byte arrived and was hashed */
	bool smoke_failed; /* the bundle does not run here */
};

static la_ssize_t read_cb(struct archive *ar, void *user, const void **buf)
{
	struct job *j = user;
	size_t len = 0;

	if (provision_gunzip_read(j->gz, buf, &len, &j->fetch_err) < 0) {
		archive_set_error(ar, EIO, "download failed");
		return -1;
	}
	return (la_ssize_t)len;
}

/* compares what arrived with what the manifest promised; a mismatch
 * deletes the download so a retry starts clean */
static int verify(struct job *j, struct lemon_err *err)
{
	if (j->plan.sha256[0] == 0)
		return 0; /* --insecure-skip-verify, warned about earlier */
	if (strcmp(j->got_sha, j->plan.sha256) == 0 &&
	    (j->plan.size == 0 || j->plan.size == j->got_size))
		return 0;
	unlink(j->part);
	if (strcmp(j->got_sha, j->plan.sha256) != 0)
		return lemon_err_set(err, LEMON_ERR_CHECKSUM,
				     "checksum mismatch for %s: expected %s (%s), "
				     "got %s (downloaded file, deleted)",
				     j->plan.asset, j->plan.sha256,
				     j->plan.digest_from, j->got_sha);
	return lemon_err_set(err, LEMON_ERR_CHECKSUM,
			     "size mismatch for %s: expected %llu bytes (%s), got %llu "
			     "(downloaded file, deleted)", j->plan.asset,
			     (unsigned long long)j->plan.size, j->plan.digest_from,
			     (unsigned long long)j->got_size);
}

static int fetch_and_unpack(struct job *j, int sfd, struct lemon_err *err)
{
	struct provision_fetch_opts fo = {
		.url = j->plan.url, .part_path = j->part,
		.expected_size = j->plan.size, .progress = &j->progress,
		.cancel = j->o->cancel,
	};
	struct lemon_err uerr = { 0 };
	struct archive *ar = NULL;
	bool stream = strcmp(j->a->format, "zip") != 0;
	int urc = 0;

	if (provision_fetch_open(&fo, &j->fetch, err) < 0)
		return -1;
	if (stream) {
		if (provision_gunzip_new(j->fetch, &j->gz, err) < 0)
			return -1;
		ar = provision_archive_reader(err);
		if (ar == NULL)
			return -1;
		if (archive_read_open(ar, j, NULL, read_cb, NULL) != ARCHIVE_OK)
			urc = provision_err_archive(&uerr, ar, j->plan.asset);
		else
			urc = provision_unpack(ar, sfd, 0, j->plan.asset, &uerr);
		archive_read_free(ar);
		/* a failed download ends here (the .part stays for resuming);
		 * undecodable bytes are judged by their checksum below */
		if (j->fetch_err.code != LEMON_OK) {
			if (provision_gunzip_source_failed(j->gz))
				return lemon_err_set(err, j->fetch_err.code, "%s",
						     j->fetch_err.msg);
			lemon_err_clear(&uerr);
			urc = lemon_err_set(&uerr, j->fetch_err.code, "%s: %s",
					    j->plan.asset, j->fetch_err.msg);
		}
	}
	/* drain what the unpacker did not need, then judge the bytes: a
	 * tampered file is reported as such, not as a broken archive */
	if (provision_fetch_finish(j->fetch, j->got_sha, &j->got_size, err) < 0)
		return -1;
	j->downloaded = true;
	if (verify(j, err) < 0)
		return -1;
	if (stream && urc < 0) {
		unlink(j->part);
		return lemon_err_set(err, uerr.code, "%s", uerr.msg);
	}
	if (!stream && provision_unpack_file(j->part, j->staging, 0, err) < 0) {
		unlink(j->part);
		return -1;
	}
	return 0;
}

/* the executable is a regular file, and every symlink beside it resolves
 * (a release once shipped links rewritten to nowhere) */
static int check_tree(struct job *j, int sfd, struct lemon_err *err)
{
	char dir[256];
	const char *slash = strrchr(j->plan.exe, '/');
	struct dirent *de;
	struct stat st;
	DIR *d;
	int dfd;

	if (fstatat(sfd, j->plan.exe, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s holds no executable %s", j->plan.asset,
				     j->plan.exe);
	if (fchmodat(sfd, j->plan.exe, 0755, 0) < 0)
		return provision_err_errno(err, errno, "chmod", j->plan.exe);
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - j->plan.exe) : 1,
		 slash ? j->plan.exe : ".");
	dfd = openat(sfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
		if (dfd >= 0)
			close(dfd);
		return provision_err_errno(err, errno, "opening", dir);
	}
	while ((de = readdir(d)) != NULL) {
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode) && fstatat(dfd, de->d_name, &st, 0) < 0) {
			closedir(d);
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "%s: broken symlink %s/%s", j->plan.asset,
					     dir, de->d_name);
		}
	}
	closedir(d);
	return 0;
}

/* installed.json gets the new entry as the current version of its name;
 * the current one before it (another version) is kept for rollback and
 * the one kept before that goes: old_dir receives its directory, to
 * delete afterwards ("" if none) */
static int record(struct job *j, struct provision_result *res, char *old_dir,
		  size_t cap, struct lemon_err *err)
{
	struct provision_installed list[PROVISION_MAX_INSTALLED], *e;
	int n, k;

	if (provision_state_load(j->bdir, true, list, PROVISION_MAX_INSTALLED, &n,
				 err) < 0)
		return -1;
	k = provision_versions_shift(list, n, j->a->name, j->final, old_dir, cap,
				     res->previous, sizeof(res->previous),
				     res->removed, sizeof(res->removed));
	if (k >= PROVISION_MAX_INSTALLED)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "more than %d backends installed", k);
	e = &list[k++];
	memset(e, 0, sizeof(*e));
	lemon_str_copy(e->name, sizeof(e->name), j->a->name);
	lemon_str_copy(e->kind, sizeof(e->kind), j->a->kind);
	lemon_str_copy(e->family, sizeof(e->family), j->a->family);
	lemon_str_copy(e->version, sizeof(e->version), j->plan.version);
	lemon_str_copy(e->asset, sizeof(e->asset), j->plan.asset);
	lemon_str_copy(e->sha256, sizeof(e->sha256), j->plan.sha256);
	lemon_str_copy(e->dir, sizeof(e->dir), j->final);
	lemon_str_copy(e->exe, sizeof(e->exe), j->exe);
	e->installed_at = (int64_t)time(NULL);
	return provision_state_write(j->bdir, list, k, err);
}

/* true when installed.json already has this exact bundle, working */
static bool already_installed(struct job *j, struct provision_result *res)
{
	struct provision_installed list[PROVISION_MAX_INSTALLED];
	struct lemon_err ignore = { 0 };
	int n, i;

	if (provision_state_read(j->bdir, list, PROVISION_MAX_INSTALLED, &n, &ignore) < 0)
		return false;
	for (i = 0; i < n; i++)
		if (strcmp(list[i].name, j->a->name) == 0 && !list[i].previous &&
		    strcmp(list[i].dir, j->final) == 0 && list[i].works &&
		    (j->plan.sha256[0] == 0 ||
		     strcmp(list[i].sha256, j->plan.sha256) == 0)) {
			lemon_str_copy(res->exe, sizeof(res->exe), list[i].exe);
			return true;
		}
	return false;
}

static int paths(struct job *j, struct lemon_err *err)
{
	char sub[4096];

	if (snprintf(j->final, sizeof(j->final), "%s/%s", j->bdir,
		     j->plan.dirname) >= (int)sizeof(j->final) ||
	    snprintf(j->staging, sizeof(j->staging), "%s/.staging/%s", j->bdir,
		     j->plan.dirname) >= (int)sizeof(j->staging) ||
	    snprintf(j->part, sizeof(j->part), "%s/.downloads/%s.part", j->bdir,
		     j->plan.asset) >= (int)sizeof(j->part) ||
	    snprintf(j->exe, sizeof(j->exe), "%s/%s", j->final, j->plan.exe) >=
	    (int)sizeof(j->exe))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "path too long under %s",
				     j->bdir);
	if (snprintf(sub, sizeof(sub), "%s/.downloads", j->bdir) >= (int)sizeof(sub))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "path too long: %s", sub);
	return provision_mkdirs(sub, err);
}

static void warn_insecure(const struct job *j)
{
	fprintf(stderr,
		"\n"
		"**********************************************************************\n"
		"WARNING: --insecure-skip-verify: installing %s WITHOUT checking\n"
		"its SHA-256. Nothing guarantees these bytes are what the publisher\n"
		"released; a tampered or corrupted build would run on this machine.\n"
		"**********************************************************************\n\n",
		j->plan.asset);
}

/* downloads, unpacks and checks the bundle in the staging directory, and
 * makes its files durable */
static int stage_bundle(struct job *j, struct lemon_err *err)
{
	struct provision_smoke sm = { 0 };
	char exe[4200];
	bool smoking = false;
	int sfd, rc;

	if (provision_mkdirs(j->staging, err) < 0)
		return -1;
	sfd = open(j->staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		return provision_err_errno(err, errno, "opening", j->staging);
	provision_progress_init(&j->progress, j->o->progress, j->plan.asset, j->plan.size);
	j->progress.on_progress = j->o->on_progress;
	j->progress.on_resume = j->o->on_resume;
	j->progress.progress_ctx = j->o->progress_ctx;
	rc = fetch_and_unpack(j, sfd, err);
	if (rc == 0)
		rc = check_tree(j, sfd, err);
	/* the smoke test (llama-server --version, before the bundle can
	 * replace the current version) runs while the files are synced */
	if (rc == 0 && snprintf(exe, sizeof(exe), "%s/%s", j->staging,
				j->plan.exe) < (int)sizeof(exe)) {
		rc = provision_smoke_start(exe,
					   j->a->smoke[0] ? j->a->smoke :
					   "--version", &sm, err);
		smoking = rc == 0;
	}
	/* the bundle's bytes must be on disk before its name is; only its own
	 * files are synced (syncfs would also flush the .part, which is
	 * deleted unread, and everyone else's dirty pages) */
	if (rc == 0)
		rc = lemon_sync_tree(j->staging, err);
	if (smoking && provision_smoke_finish(&sm, j->plan.exe,
					      rc == 0 ? err : NULL) < 0 && rc == 0) {
		j->smoke_failed = true;
		rc = -1;
	}
	close(sfd);
	return rc;
}

/* a .part kept from an earlier attempt is resumed; when the whole then
 * fails its checksum, the kept bytes were another file's (the mirror
 * changed the asset since, or a different build was half fetched):
 * verify() has deleted them, and the download starts over once rather
 * than report a checksum mismatch the mirror is not to blame for */
static int stage_with_retry(struct job *j, struct lemon_err *err)
{
	struct lemon_err first = { 0 };
	struct stat st;
	bool resumed = stat(j->part, &st) == 0 && st.st_size > 0;

	if (stage_bundle(j, &first) == 0)
		return 0;
	if (!resumed || !j->downloaded || first.code != LEMON_ERR_CHECKSUM)
		return lemon_err_set(err, first.code, "%s", first.msg);
	fprintf(stderr, "lemon: %s: the bytes kept from an earlier download do not "
		"match; downloading it again\n", j->plan.asset);
	provision_gunzip_free(j->gz);
	provision_fetch_free(j->fetch);
	j->gz = NULL;
	j->fetch = NULL;
	lemon_err_clear(&j->fetch_err);
	j->downloaded = false;
	unlink(j->part);
	if (lemon_rm_tree(j->staging, err) < 0)
		return -1;
	return stage_bundle(j, err);
}

/* the caller's check of the staged bundle, after its --version passed */
static int smoke_hook(struct job *j, struct lemon_err *err)
{
	char exe[4200];

	if (j->o->smoke == NULL)
		return 0;
	if (snprintf(exe, sizeof(exe), "%s/%s", j->staging, j->plan.exe) >=
	    (int)sizeof(exe))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "path too long: %s",
				     j->staging);
	j->smoke_failed = true;
	if (j->o->smoke(j->o->smoke_ctx, exe, err) < 0) {
		lemon_err_prefix(err, "smoke test of %s", j->plan.asset);
		return -1;
	}
	j->smoke_failed = false;
	return 0;
}

static int install_locked(struct job *j, struct provision_result *res,
			  struct lemon_err *err)
{
	char old_dir[4096] = "";
	bool swapped;
	int rc;

	if (provision_plan_make(j->a, j->o, &j->plan, &res->unavailable, err) < 0)
		return -1;
	lemon_str_copy(res->version, sizeof(res->version), j->plan.version);
	lemon_str_copy(res->asset, sizeof(res->asset), j->plan.asset);
	if (paths(j, err) < 0)
		return -1;
	lemon_str_copy(res->dir, sizeof(res->dir), j->final);
	if (!j->o->force && already_installed(j, res)) {
		res->already = true;
		return 0;
	}
	if (j->plan.sha256[0] == 0)
		warn_insecure(j);
	rc = stage_with_retry(j, err);
	/* the new bundle must run before it replaces the current one */
	if (rc == 0)
		rc = smoke_hook(j, err);
	if (rc == 0)
		rc = lemon_swap_into_place(j->staging, j->final, &swapped, err);
	if (rc == 0)
		rc = lemon_fsync_dir(j->bdir, err);
	if (rc == 0)
		rc = record(j, res, old_dir, sizeof(old_dir), err);
	lemon_rm_tree(j->staging, NULL);
	/* a .part is kept only to resume a download that did not finish: once
	 * every byte arrived, a failure (checksum, archive, no executable,
	 * disk) leaves nothing a retry could resume, and a complete .part
	 * would be taken as done and judged again instead of fetched anew */
	if (rc == 0 || j->downloaded)
		unlink(j->part);
	if (rc < 0) {
		/* another backend may serve: this one does not exist or does
		 * not run here */
		if (err->code == LEMON_ERR_NOT_FOUND || j->smoke_failed)
			res->unavailable = true;
		return -1;
	}
	if (old_dir[0] && !provision_versions_drop(old_dir))
		res->removed[0] = 0;
	lemon_str_copy(res->exe, sizeof(res->exe), j->exe);
	return 0;
}

/* the staging directory exists only while an install runs: removed when
 * one ends however it ends (the .part stays in .downloads for a resume),
 * and, under the lock before anything else, when an install that was
 * killed (SIGKILL, a crash, power) left one, which says so */
static int clear_staging(const char *bdir, bool stale, struct lemon_err *err)
{
	char dir[4096];
	struct stat st;

	if (snprintf(dir, sizeof(dir), "%s/.staging", bdir) >= (int)sizeof(dir))
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE, "path too long: %s/.staging",
				     bdir);
	if (lstat(dir, &st) < 0)
		return 0;
	if (stale)
		fprintf(stderr, "lemon: removing %s, left by an install that did not end\n",
			dir);
	return lemon_rm_tree(dir, err);
}

int provision_install(const struct compat_backend_asset *a,
		      const struct provision_opts *opts,
		      struct provision_result *res, struct lemon_err *err)
{
	struct job *j;
	int lock = -1, rc;

	memset(res, 0, sizeof(*res));
	lemon_str_copy(res->name, sizeof(res->name), a->name);
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	j->a = a;
	j->o = opts;
	rc = provision_backends_dir(opts->data_dir, j->bdir, sizeof(j->bdir), err);
	if (rc == 0)
		rc = provision_mkdirs(j->bdir, err);
	if (rc == 0)
		rc = provision_lock(j->bdir, opts->cancel, &lock, err);
	if (rc == 0)
		rc = clear_staging(j->bdir, true, err);
	if (rc == 0) {
		rc = install_locked(j, res, err);
		/* a failure to remove it is not the install's: the next one
		 * tries again */
		clear_staging(j->bdir, false, NULL);
	}
	provision_gunzip_free(j->gz);
	provision_fetch_free(j->fetch);
	provision_unlock(lock);
	free(j);
	if (rc < 0)
		lemon_err_prefix(err, "installing %s", a->name);
	return rc;
}
