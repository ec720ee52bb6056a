/* The safe unpacker. It writes each archive entry itself with the *at()
 * calls relative to the target directory's descriptor, opening every path
 * component with O_NOFOLLOW, so nothing can be written through a symlink;
 * it refuses absolute names, "..", symlinks whose target leaves the tree,
 * hardlinks to anything but a regular file already unpacked, device files,
 * FIFOs and sockets, and stops at a byte and entry budget. libarchive is
 * only used to read. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "provision/provision-private.h"
#include "util/str.h"

#define UNPACK_MAX_DEPTH 64
#define UNPACK_PATH_MAX 1024

/* a cleaned relative path: components without "", "." */
struct rel_path {
	char buf[UNPACK_PATH_MAX];
	int n;
	char *comp[UNPACK_MAX_DEPTH];
};

/* splits name into components; refuses absolute paths and ".."; "." and
 * empty components vanish (tar writes "./x") */
static int split_path(const char *name, struct rel_path *p, const char *what,
		      struct lemon_err *err)
{
	char *s, *c;

	p->n = 0;
	if (name == NULL || name[0] == 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: entry without a name", what);
	if (name[0] == '/')
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: absolute path '%s' refused", what, name);
	if (!lemon_str_copy(p->buf, sizeof(p->buf), name))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: path longer than %d bytes: %.64s...",
				     what, UNPACK_PATH_MAX, name);
	for (s = p->buf; s != NULL; s = c) {
		c = strchr(s, '/');
		if (c != NULL)
			*c++ = 0;
		if (s[0] == 0 || strcmp(s, ".") == 0)
			continue;
		if (strcmp(s, "..") == 0)
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "%s: path with '..' refused: %s",
					     what, name);
		if (p->n >= UNPACK_MAX_DEPTH)
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "%s: path deeper than %d: %s", what,
					     UNPACK_MAX_DEPTH, name);
		p->comp[p->n++] = s;
	}
	return 0;
}

/* a symlink target must stay inside the tree when resolved from the
 * link's directory (depth = components above it). Allowed: leading ".."
 * within that depth, then plain names; a ".." after a name could climb
 * out through a symlinked directory, so it is refused. */
static int check_symlink_target(const char *target, int depth,
				const char *name, const char *what,
				struct lemon_err *err)
{
	const char *s = target, *e;
	int up = 0;
	bool named = false;
	size_t len;

	if (target == NULL || target[0] == 0 || target[0] == '/')
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: symlink %s -> %s points outside the bundle",
				     what, name, target ? target : "");
	while (*s) {
		e = strchr(s, '/');
		len = e ? (size_t)(e - s) : strlen(s);
		if (len == 2 && s[0] == '.' && s[1] == '.') {
			if (named || ++up > depth)
				return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
						     "%s: symlink %s -> %s points outside the bundle",
						     what, name, target);
		} else if (len > 0 && !(len == 1 && s[0] == '.')) {
			named = true;
		}
		s += len;
		while (*s == '/')
			s++;
	}
	return 0;
}

/* opens (creating with mkdir when asked) the directory holding the last
 * component, never following a symlink; returns the fd or -1 */
static int open_parent(int root, const struct rel_path *p, bool create,
		       const char *what, struct lemon_err *err)
{
	int fd = dup(root), next, i;

	if (fd < 0)
		return provision_err_errno(err, errno, "dup", NULL);
	for (i = 0; i + 1 < p->n; i++) {
		next = openat(fd, p->comp[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			      O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, p->comp[i], 0755) < 0 && errno != EEXIST) {
				provision_err_errno(err, errno, "creating directory",
					       p->comp[i]);
				close(fd);
				return -1;
			}
			next = openat(fd, p->comp[i], O_RDONLY | O_DIRECTORY |
				      O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			if (errno == ELOOP || errno == ENOTDIR)
				lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					      "%s: path goes through a symlink or file: %s",
					      what, p->comp[i]);
			else
				provision_err_errno(err, errno, "opening directory",
					       p->comp[i]);
			close(fd);
			return -1;
		}
		close(fd);
		fd = next;
	}
	return fd;
}

/* removes whatever an earlier entry of the same name left (not a dir) */
static int clear_name(int dir, const char *name, const char *what,
		      struct lemon_err *err)
{
	struct stat st;

	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : provision_err_errno(err, errno, "stat", name);
	if (S_ISDIR(st.st_mode))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: entry %s replaces a directory", what, name);
	if (unlinkat(dir, name, 0) < 0)
		return provision_err_errno(err, errno, "removing", name);
	return 0;
}

static int write_file(struct archive *ar, int dir, const char *name,
		      mode_t mode, uint64_t *budget, const char *what,
		      struct lemon_err *err)
{
	const void *buf;
	size_t size;
	int64_t off;
	ssize_t w;
	size_t done;
	int fd, r;

	if (clear_name(dir, name, what, err) < 0)
		return -1;
	fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return provision_err_errno(err, errno, "creating", name);
	while ((r = archive_read_data_block(ar, &buf, &size, &off)) == ARCHIVE_OK) {
		if (size > *budget) {
			close(fd);
			return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
					     "%s: unpacked size exceeds the limit at %s",
					     what, name);
		}
		*budget -= size;
		for (done = 0; done < size; done += (size_t)w) {
			w = pwrite(fd, (const char *)buf + done, size - done,
				   (off_t)off + (off_t)done);
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w < 0) {
				provision_err_errno(err, errno, "writing", name);
				close(fd);
				return -1;
			}
		}
	}
	if (r != ARCHIVE_EOF) {
		close(fd);
		return provision_err_archive(err, ar, what);
	}
	/* keep the execute bits, never setuid/setgid/sticky or group/other
	 * write */
	if (fchmod(fd, (mode & 0755) | 0600) < 0 || close(fd) < 0)
		return provision_err_errno(err, errno, "finishing", name);
	return 0;
}

static int make_hardlink(int root, int dir, const char *name,
			 const char *target, const char *what,
			 struct lemon_err *err)
{
	struct rel_path t;
	struct stat st;
	int tdir, rc;

	if (split_path(target, &t, what, err) < 0 || t.n == 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: hardlink %s -> %s points outside the bundle",
				     what, name, target);
	tdir = open_parent(root, &t, false, what, err);
	if (tdir < 0)
		return -1;
	if (fstatat(tdir, t.comp[t.n - 1], &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode)) {
		close(tdir);
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: hardlink %s -> %s: target is not a file unpacked before it",
				     what, name, target);
	}
	rc = clear_name(dir, name, what, err);
	if (rc == 0 && linkat(tdir, t.comp[t.n - 1], dir, name, 0) < 0)
		rc = provision_err_errno(err, errno, "linking", name);
	close(tdir);
	return rc;
}

static int make_dir(int dir, const char *base, const char *name,
		    const char *what, struct lemon_err *err)
{
	struct stat st;

	if (mkdirat(dir, base, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return provision_err_errno(err, errno, "creating directory", name);
	if (fstatat(dir, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: directory %s replaces a file or link",
				     what, name);
	return 0;
}

static int one_entry(struct archive *ar, struct archive_entry *ent, int root,
		     uint64_t *budget, const char *what, struct lemon_err *err)
{
	const char *name = archive_entry_pathname(ent);
	const char *hl = archive_entry_hardlink(ent);
	mode_t type = archive_entry_filetype(ent);
	struct rel_path p;
	const char *base;
	int dir, rc = 0;

	if (split_path(name, &p, what, err) < 0)
		return -1;
	if (p.n == 0)
		return 0; /* the archive's "./" itself */
	if (hl == NULL && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: %s is a device file, FIFO or socket: refused",
				     what, name);
	if (archive_entry_size_is_set(ent) && archive_entry_size(ent) > 0 &&
	    (uint64_t)archive_entry_size(ent) > *budget)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "%s: %s declares %" PRId64 " bytes, over the size limit",
				     what, name, (int64_t)archive_entry_size(ent));
	dir = open_parent(root, &p, true, what, err);
	if (dir < 0)
		return -1;
	base = p.comp[p.n - 1];
	if (hl != NULL) {
		rc = make_hardlink(root, dir, base, hl, what, err);
	} else if (type == AE_IFDIR) {
		rc = make_dir(dir, base, name, what, err);
	} else if (type == AE_IFLNK) {
		const char *t = archive_entry_symlink(ent);

		rc = check_symlink_target(t, p.n - 1, name, what, err);
		if (rc == 0)
			rc = clear_name(dir, base, what, err);
		if (rc == 0 && symlinkat(t, dir, base) < 0)
			rc = provision_err_errno(err, errno, "creating symlink", name);
	} else {
		rc = write_file(ar, dir, base, archive_entry_perm(ent), budget,
				what, err);
	}
	close(dir);
	return rc;
}

struct archive *provision_archive_reader(struct lemon_err *err)
{
	struct archive *ar;

	if (provision_archive_load(err) < 0)
		return NULL;
	ar = archive_read_new();
	if (ar == NULL) {
		lemon_err_set(err, LEMON_ERR_INTERNAL, "archive_read_new failed");
		return NULL;
	}
	archive_read_support_format_tar(ar);
	archive_read_support_format_zip(ar);
	archive_read_support_filter_gzip(ar);
	archive_read_support_filter_xz(ar);
	archive_read_support_filter_zstd(ar);
	return ar;
}

int provision_unpack(struct archive *ar, int dirfd, uint64_t max_bytes,
		const char *what, struct lemon_err *err)
{
	struct archive_entry *ent;
	uint64_t budget = max_bytes ? max_bytes : PROV_UNPACK_DEFAULT_MAX;
	long entries = 0;
	int r;

	for (;;) {
		r = archive_read_next_header(ar, &ent);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return provision_err_archive(err, ar, what);
		if (++entries > PROV_UNPACK_MAX_ENTRIES)
			return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
					     "%s: more than %d entries", what,
					     PROV_UNPACK_MAX_ENTRIES);
		if (one_entry(ar, ent, dirfd, &budget, what, err) < 0)
			return -1;
	}
	if (entries == 0)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "%s: archive holds no entries", what);
	return 0;
}

int provision_unpack_file(const char *archive_path, const char *dest,
			  uint64_t max_bytes, struct lemon_err *err)
{
	struct archive *ar;
	int dirfd, rc;

	dirfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return provision_err_errno(err, errno, "opening", dest);
	ar = provision_archive_reader(err);
	if (ar == NULL) {
		close(dirfd);
		return -1;
	}
	if (archive_read_open_filename(ar, archive_path, 1 << 16) != ARCHIVE_OK)
		rc = archive_errno(ar) == ENOENT ?
		     provision_err_errno(err, ENOENT, "opening", archive_path) :
		     provision_err_archive(err, ar, archive_path);
	else
		rc = provision_unpack(ar, dirfd, max_bytes, archive_path, err);
	archive_read_free(ar);
	close(dirfd);
	return rc;
}
