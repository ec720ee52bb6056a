/* kernel modules that decide the GPU and NPU paths: amdgpu (ROCm, Vulkan),
 * amdxdna (NPU), nvidia and nvidia_uvm (CUDA needs both; the nvidia
 * module's version file is the driver version) and nouveau (which
 * keeps the NVIDIA driver from binding). "Loaded" and the module version come from /sys/module, so
 * a recorded tree answers them; "available" (is there a .ko or a built-in
 * entry for this kernel) comes from the libkmod module index of the kernel
 * release the host probe found, under the sysroot when there is one. When
 * no index can be read the answer is unknown, never "missing". */
#include <libkmod.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "detect/detect-private.h"
#include "util/str.h"

static void quiet_log(void *data, int priority, const char *file, int line,
		      const char *fn, const char *format, va_list args)
{
	/* libkmod logs missing index files to stderr; for us they only mean
	 * "unknown", which the report already says */
	(void)data;
	(void)priority;
	(void)file;
	(void)line;
	(void)fn;
	(void)format;
	(void)args;
}

/* loaded / builtin / version from <root>/sys/module/<name> */
static int read_sysfs(const struct lemon_root *root, struct detect_kmod *km,
		      struct lemon_err *err)
{
	struct lemon_err e = { 0 };
	char rel[96], state[32];

	snprintf(rel, sizeof(rel), "module/%s/initstate", km->name);
	if (detect_read_attr(root, DETECT_BASE_SYS, rel, state, sizeof(state),
			     &e) == 0) {
		/* "coming" and "going" are transitions, not usable modules */
		km->loaded = strcmp(state, "live") == 0;
	} else if (e.code == LEMON_ERR_NOT_FOUND) {
		/* built-in modules get a directory (for their parameters)
		 * but no initstate */
		snprintf(rel, sizeof(rel), "module/%s", km->name);
		if (detect_root_exists(root, DETECT_BASE_SYS, rel)) {
			km->loaded = true;
			km->builtin = true;
			km->has_available = true;
			km->available = true;
		}
	} else {
		*err = e;
		return -1;
	}

	e = (struct lemon_err){ 0 };
	snprintf(rel, sizeof(rel), "module/%s/version", km->name);
	if (detect_read_attr(root, DETECT_BASE_SYS, rel, km->version,
			     sizeof(km->version), &e) < 0) {
		km->version[0] = '\0';
		if (e.code != LEMON_ERR_NOT_FOUND) {
			*err = e;
			return -1;
		}
	}
	return 0;
}

/* available / path from the module index; leaves has_available untouched
 * when the index gives no answer */
static void read_index(struct kmod_ctx *kctx, const char *rootdir,
		       struct detect_kmod *km)
{
	size_t rootlen = strlen(rootdir);
	struct kmod_module *mod = NULL;
	const char *path;

	if (kmod_module_new_from_name_lookup(kctx, km->name, &mod) < 0)
		return;
	km->has_available = true;
	if (mod == NULL) {
		/* a built-in module seen in sysfs outranks a stale index */
		km->available = km->builtin;
		return;
	}
	km->available = true;
	/* a module found in modules.dep has a path; one found only in the
	 * built-in lists has none. Deciding it this way (rather than with
	 * kmod_module_get_initstate) never consults the live /sys, which
	 * would be wrong under a sysroot. */
	path = kmod_module_get_path(mod);
	if (path != NULL) {
		/* report the path as the recorded machine sees it */
		if (rootlen > 0 && strncmp(path, rootdir, rootlen) == 0)
			path += rootlen;
		lemon_str_copy(km->path, sizeof(km->path), path);
	}
	else
		km->builtin = true;
	kmod_module_unref(mod);
}

static struct kmod_ctx *open_index(const struct detect_ctx *ctx,
				   struct lemon_err *err)
{
	/* under a sysroot the host's modprobe.d must not leak in */
	static const char *const no_config[] = { NULL };
	const char *kernel = ctx->report->host.kernel;
	struct kmod_ctx *kctx;
	char dir[1024], index[160];

	if (kernel[0] == '\0' || strchr(kernel, '/') != NULL)
		return NULL;
	/* libkmod answers "not found" when the index files are missing, so
	 * make sure there is an index before trusting its answers */
	snprintf(index, sizeof(index), "%s/modules.dep.bin", kernel);
	if (!detect_root_exists(ctx->root, DETECT_BASE_MODULES, index))
		return NULL;
	if (detect_root_is_live(ctx->root)) {
		kctx = kmod_new(NULL, NULL);
	} else {
		if (detect_root_path(ctx->root, DETECT_BASE_MODULES, kernel,
				     dir, sizeof(dir), err) < 0)
			return NULL;
		kctx = kmod_new(dir, no_config);
	}
	if (kctx != NULL)
		kmod_set_log_fn(kctx, quiet_log, NULL);
	return kctx;
}

int detect_kmod_probe(struct detect_ctx *ctx, struct lemon_err *err)
{
	struct detect_kmod *mods[] = { &ctx->report->kmod_amdgpu,
				       &ctx->report->kmod_amdxdna,
				       &ctx->report->kmod_nvidia,
				       &ctx->report->kmod_nvidia_uvm,
				       &ctx->report->kmod_nouveau };
	static const char *const names[] = { "amdgpu", "amdxdna", "nvidia",
					     "nvidia_uvm", "nouveau" };
	const size_t n = sizeof(names) / sizeof(names[0]);
	struct lemon_err e = { 0 };
	struct kmod_ctx *kctx;
	size_t i;
	int rc = 0;

	for (i = 0; i < n; i++) {
		memset(mods[i], 0, sizeof(*mods[i]));
		lemon_str_copy(mods[i]->name, sizeof(mods[i]->name), names[i]);
		if (read_sysfs(ctx->root, mods[i], &e) < 0 && rc == 0) {
			*err = e;
			rc = -1;
		}
	}
	/* the index is optional: a failure to open it only leaves
	 * "available" unknown, so its error is not reported */
	e = (struct lemon_err){ 0 };
	kctx = open_index(ctx, &e);
	if (kctx == NULL)
		return rc;
	for (i = 0; i < n; i++)
		read_index(kctx, detect_root_dir(ctx->root), mods[i]);
	kmod_unref(kctx);
	return rc;
}
