/* device nodes and whether the current user may open them: /dev/kfd,
 * the GPUs' DRM render nodes, the NPUs' accel nodes, and the NVIDIA
 * driver's own nodes (nvidiactl, nvidia<N> per GPU, nvidia-uvm, which
 * CUDA opens besides the render node the Vulkan driver may use).
 *
 * Live: stat(2) for owner and mode, access(2) for the verdict (it honours
 * ACLs and capabilities). Under a sysroot the owners come from the recorded
 * dev/.lemon-stat and the verdict from the mode bits against the recorded
 * user, as the kernel decides for a user without ACLs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "detect/detect-private.h"
#include "util/str.h"

struct stat_line {
	unsigned mode, uid, gid;
};

/* "<path> 660 0 992" lines as `stat -c '%n %a %u %g'` prints them */
static bool find_stat_line(const char *buf, size_t len, const char *path,
			   struct stat_line *out)
{
	const char *line;
	size_t pos = 0, line_len, plen = strlen(path);

	while (lemon_next_line(buf, len, &pos, &line, &line_len)) {
		const char *f[4];
		size_t fl[4], i = 0, n = 0;
		uint64_t v[3];

		while (n < 4 && i < line_len) {
			while (i < line_len && line[i] == ' ')
				i++;
			f[n] = line + i;
			while (i < line_len && line[i] != ' ')
				i++;
			fl[n] = (size_t)(line + i - f[n]);
			if (fl[n] > 0)
				n++;
		}
		if (n != 4 || fl[0] != plen || memcmp(f[0], path, plen) != 0)
			continue;
		if (lemon_parse_u64(f[1], fl[1], 8, 07777, &v[0], NULL) < 0 ||
		    lemon_parse_u64(f[2], fl[2], 10, 0xffffffffu, &v[1], NULL) < 0 ||
		    lemon_parse_u64(f[3], fl[3], 10, 0xffffffffu, &v[2], NULL) < 0)
			return false;
		out->mode = (unsigned)v[0];
		out->uid = (unsigned)v[1];
		out->gid = (unsigned)v[2];
		return true;
	}
	return false;
}

static bool user_in_group(const struct detect_user *u, unsigned gid)
{
	int i;

	if (u->gid == gid)
		return true;
	for (i = 0; i < u->n_groups; i++)
		if (u->groups[i] == gid)
			return true;
	return false;
}

static void judge_recorded(const struct detect_user *u, struct detect_node *n)
{
	unsigned bits;

	if (!u->known || u->uid == 0) {
		n->readable = n->writable = u->uid == 0 && u->known;
		return;
	}
	if (u->uid == n->uid)
		bits = (n->mode >> 6) & 7;
	else if (user_in_group(u, n->gid))
		bits = (n->mode >> 3) & 7;
	else
		bits = n->mode & 7;
	n->readable = (bits & 4) != 0;
	n->writable = (bits & 2) != 0;
}

static void check_node(struct detect_ctx *ctx, const char *rel,
		       const char *stats, size_t stats_len, const char *groups,
		       size_t groups_len)
{
	struct detect_report *rep = ctx->report;
	struct detect_node *n;
	char host_path[1280];
	struct stat st;

	if (rep->n_nodes >= DETECT_MAX_NODES)
		return;
	n = &rep->nodes[rep->n_nodes++];
	memset(n, 0, sizeof(*n));
	lemon_str_copy(n->rel, sizeof(n->rel), rel);
	detect_root_display(DETECT_BASE_DEV, rel, n->path, sizeof(n->path));
	if (detect_root_path(ctx->root, DETECT_BASE_DEV, rel, host_path,
			     sizeof(host_path), NULL) < 0)
		return;
	n->exists = stat(host_path, &st) == 0;
	if (!n->exists)
		return;
	if (detect_root_is_live(ctx->root)) {
		n->has_mode = true;
		n->mode = st.st_mode & 07777;
		n->uid = st.st_uid;
		n->gid = st.st_gid;
		n->readable = access(host_path, R_OK) == 0;
		n->writable = access(host_path, W_OK) == 0;
	} else {
		struct stat_line sl;

		if (find_stat_line(stats, stats_len, n->path, &sl)) {
			n->has_mode = true;
			n->mode = sl.mode;
			n->uid = sl.uid;
			n->gid = sl.gid;
			judge_recorded(&rep->user, n);
		}
	}
	if (n->has_mode && groups_len > 0)
		detect_group_name(groups, groups_len, n->gid, n->group,
				  sizeof(n->group));
}

static bool nvidia_minor_name(const char *n)
{
	size_t i;

	if (strncmp(n, "nvidia", 6) != 0 || n[6] == '\0')
		return false;
	for (i = 6; n[i]; i++)
		if (n[i] < '0' || n[i] > '9')
			return false;
	return i < 12;
}

/* the NVIDIA nodes, checked when an NVIDIA GPU is bound to nvidia or the
 * driver left its control node: nvidiactl and nvidia-uvm always (a missing
 * one is the finding), nvidia<N> as many as exist */
static void check_nvidia(struct detect_ctx *ctx, const char *stats,
			 size_t stats_len, const char *groups, size_t groups_len)
{
	struct detect_report *rep = ctx->report;
	struct detect_names names;
	bool bound = false;
	size_t k;
	int i;

	for (i = 0; i < rep->n_gpus; i++)
		if (rep->gpus[i].pci.vendor == 0x10de &&
		    strcmp(rep->gpus[i].pci.driver, "nvidia") == 0)
			bound = true;
	if (!bound && !detect_root_exists(ctx->root, DETECT_BASE_DEV, "nvidiactl"))
		return;
	check_node(ctx, "nvidiactl", stats, stats_len, groups, groups_len);
	check_node(ctx, "nvidia-uvm", stats, stats_len, groups, groups_len);
	if (detect_root_list(ctx->root, DETECT_BASE_DEV, "", &names, NULL) < 0)
		return;
	for (k = 0; k < names.count; k++)
		if (nvidia_minor_name(names.names[k]))
			check_node(ctx, names.names[k], stats, stats_len, groups,
				   groups_len);
	detect_names_free(&names);
}

int detect_nodes_probe(struct detect_ctx *ctx, struct lemon_err *err)
{
	struct detect_report *rep = ctx->report;
	char stats[8192], rel[64];
	char *groups;
	size_t stats_len = 0, groups_len = 0, gcap = 256 * 1024;
	int i;

	(void)err;
	rep->nodes_recorded = detect_root_is_live(ctx->root) ||
			      detect_root_exists(ctx->root, DETECT_BASE_DEV,
						 ".lemon-stat");
	if (!detect_root_is_live(ctx->root) &&
	    detect_root_read(ctx->root, DETECT_BASE_DEV, ".lemon-stat", stats,
			     sizeof(stats), &stats_len, NULL) < 0)
		stats_len = 0;
	groups = malloc(gcap);
	if (groups == NULL ||
	    detect_root_read(ctx->root, DETECT_BASE_ETC, "group", groups, gcap,
			     &groups_len, NULL) < 0)
		groups_len = 0;
	if (rep->kfd_present || detect_root_exists(ctx->root, DETECT_BASE_DEV, "kfd"))
		check_node(ctx, "kfd", stats, stats_len, groups, groups_len);
	for (i = 0; i < rep->n_gpus; i++) {
		if (rep->gpus[i].render_node[0] == '\0')
			continue;
		snprintf(rel, sizeof(rel), "dri/%s", rep->gpus[i].render_node);
		check_node(ctx, rel, stats, stats_len, groups, groups_len);
	}
	for (i = 0; i < rep->n_npus; i++) {
		if (rep->npus[i].accel_node[0] == '\0')
			continue;
		snprintf(rel, sizeof(rel), "accel/%s", rep->npus[i].accel_node);
		check_node(ctx, rel, stats, stats_len, groups, groups_len);
	}
	check_nvidia(ctx, stats, stats_len, groups, groups_len);
	free(groups);
	return 0;
}
