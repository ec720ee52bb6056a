/* libdrm's amdgpu interface on a live machine: for each amdgpu-bound GPU
 * whose render node this user can open, the kernel is asked through
 * libdrm_amdgpu (dlopen'ed, never linked, like libvulkan and libcuda) for
 * the chip family and external revision, the VRAM and GTT heaps with their
 * current usage, and libdrm's marketing name, as Mesa's ac_gpu_info asks.
 * Only the types of <libdrm/amdgpu.h> are used. Under a sysroot the probe
 * is skipped: sysfs is the replay path; the doctor compares both when both
 * answered. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libdrm/amdgpu.h>
#include <libdrm/amdgpu_drm.h>

#include "detect/detect-private.h"
#include "util/str.h"

int detect_libdrm_load(void *lib, struct detect_libdrm_fns *f)
{
	memset(f, 0, sizeof(*f));
	f->init = dlsym(lib, "amdgpu_device_initialize");
	f->deinit = dlsym(lib, "amdgpu_device_deinitialize");
	f->gpu_info = dlsym(lib, "amdgpu_query_gpu_info");
	f->heap_info = dlsym(lib, "amdgpu_query_heap_info");
	f->marketing_name = dlsym(lib, "amdgpu_get_marketing_name");
	return f->init && f->deinit && f->gpu_info && f->heap_info &&
			       f->marketing_name ?
		       0 :
		       -1;
}

typedef int (*init_fn)(int, uint32_t *, uint32_t *, amdgpu_device_handle *);
typedef int (*deinit_fn)(amdgpu_device_handle);
typedef int (*gpu_info_fn)(amdgpu_device_handle, struct amdgpu_gpu_info *);
typedef int (*heap_info_fn)(amdgpu_device_handle, uint32_t, uint32_t,
			    struct amdgpu_heap_info *);
typedef const char *(*name_fn)(amdgpu_device_handle);

static void query_device(const struct detect_libdrm_fns *f,
			 amdgpu_device_handle dev, struct detect_libdrm_gpu *out)
{
	struct amdgpu_gpu_info info;
	struct amdgpu_heap_info heap;
	const char *name;

	memset(&info, 0, sizeof(info));
	if (((gpu_info_fn)f->gpu_info)(dev, &info) == 0) {
		out->has_info = true;
		out->family_id = info.family_id;
		out->chip_external_rev = info.chip_external_rev;
		out->chip_rev = info.chip_rev;
	}
	memset(&heap, 0, sizeof(heap));
	if (((heap_info_fn)f->heap_info)(dev, AMDGPU_GEM_DOMAIN_VRAM, 0,
					  &heap) == 0) {
		out->has_vram = true;
		out->vram_heap = heap.heap_size;
		out->vram_used = heap.heap_usage;
	}
	memset(&heap, 0, sizeof(heap));
	if (((heap_info_fn)f->heap_info)(dev, AMDGPU_GEM_DOMAIN_GTT, 0,
					  &heap) == 0) {
		out->has_gtt = true;
		out->gtt_heap = heap.heap_size;
		out->gtt_used = heap.heap_usage;
	}
	name = ((name_fn)f->marketing_name)(dev);
	if (name != NULL)
		lemon_str_copy(out->marketing_name, sizeof(out->marketing_name),
			       name);
}

int detect_libdrm_query_node(const struct detect_libdrm_fns *f,
			     const char *path, struct detect_libdrm_gpu *out)
{
	amdgpu_device_handle dev = NULL;
	uint32_t major = 0, minor = 0;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(out->error, sizeof(out->error), "cannot open %s: %s",
			 path, strerror(errno));
		return -1;
	}
	rc = ((init_fn)f->init)(fd, &major, &minor, &dev);
	if (rc != 0) {
		snprintf(out->error, sizeof(out->error),
			 "amdgpu_device_initialize on %s failed: %s", path,
			 strerror(rc < 0 ? -rc : rc));
		close(fd);
		return -1;
	}
	out->queried = true;
	out->drm_minor = minor;
	query_device(f, dev, out);
	((deinit_fn)f->deinit)(dev);
	close(fd);
	return 0;
}

static bool has_amdgpu(const struct detect_report *r)
{
	int i;

	for (i = 0; i < r->n_gpus; i++)
		if (strcmp(r->gpus[i].pci.driver, "amdgpu") == 0 &&
		    r->gpus[i].render_node[0])
			return true;
	return false;
}

int detect_libdrm_probe(struct detect_ctx *ctx, struct lemon_err *err)
{
	struct detect_libdrm *ld = &ctx->report->libdrm;
	struct detect_libdrm_fns f;
	char rel[48], path[1280];
	void *lib;
	int i;

	(void)err;
	memset(ld, 0, sizeof(*ld));
	if (!detect_root_is_live(ctx->root)) {
		lemon_str_copy(ld->skipped_why, sizeof(ld->skipped_why),
			       "sysroot");
		return 0;
	}
	if (!has_amdgpu(ctx->report)) {
		lemon_str_copy(ld->skipped_why, sizeof(ld->skipped_why),
			       "no amdgpu-bound GPU");
		return 0;
	}
	ld->probed = true;
	lib = dlopen("libdrm_amdgpu.so.1", RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		snprintf(ld->error, sizeof(ld->error),
			 "libdrm_amdgpu.so.1 not found: %s", dlerror());
		return 0;
	}
	ld->library = true;
	if (detect_libdrm_load(lib, &f) < 0) {
		lemon_str_copy(ld->error, sizeof(ld->error),
			       "libdrm_amdgpu.so.1 lacks an entry point lemon needs");
		dlclose(lib);
		return 0;
	}
	for (i = 0; i < ctx->report->n_gpus; i++) {
		struct detect_gpu *g = &ctx->report->gpus[i];

		if (strcmp(g->pci.driver, "amdgpu") != 0 || !g->render_node[0])
			continue;
		snprintf(rel, sizeof(rel), "dri/%s", g->render_node);
		if (detect_root_path(ctx->root, DETECT_BASE_DEV, rel, path,
				     sizeof(path), NULL) < 0)
			continue;
		detect_libdrm_query_node(&f, path, &g->libdrm);
	}
	dlclose(lib);
	return 0;
}
