/* NVIDIA GPUs as the CUDA driver sees them: the driver's CUDA version,
 * and per device its name, compute capability, total and free memory and
 * PCI address (to match the sysfs device). libcuda.so.1 comes with the
 * NVIDIA driver; it is dlopen'ed, never linked, so a machine without it
 * still runs lemon and reports the missing library as a fact. No CUDA
 * header is needed: the few entry points are declared below with the
 * types of the driver API (CUresult and CUdevice are int, a context is a
 * pointer). Under a sysroot the probe is skipped: a recorded tree has no
 * driver to ask. Like the Vulkan probe it can block inside a driver;
 * `lemon serve` runs detection in a child with a deadline for that. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "detect/detect-private.h"
#include "util/str.h"

/* cuDeviceGetAttribute attributes (CUdevice_attribute in cuda.h) */
#define CU_ATTR_CC_MAJOR 75
#define CU_ATTR_CC_MINOR 76

typedef int (*cu_init_fn)(unsigned flags);
typedef int (*cu_version_fn)(int *version);
typedef int (*cu_count_fn)(int *count);
typedef int (*cu_get_fn)(int *dev, int ordinal);
typedef int (*cu_name_fn)(char *name, int len, int dev);
typedef int (*cu_attr_fn)(int *value, int attr, int dev);
typedef int (*cu_total_fn)(size_t *bytes, int dev);
typedef int (*cu_bus_fn)(char *id, int len, int dev);
typedef int (*cu_retain_fn)(void **ctx, int dev);
typedef int (*cu_release_fn)(int dev);
typedef int (*cu_set_fn)(void *ctx);
typedef int (*cu_mem_fn)(size_t *free_bytes, size_t *total_bytes);
typedef int (*cu_errname_fn)(int result, const char **name);

struct cu_fns {
	cu_init_fn init;
	cu_version_fn version;
	cu_count_fn count;
	cu_get_fn get;
	cu_name_fn name;
	cu_attr_fn attr;
	cu_total_fn total;
	cu_bus_fn bus;
	cu_retain_fn retain;
	cu_release_fn release;
	cu_set_fn set;
	cu_mem_fn mem;
	cu_errname_fn errname; /* optional */
};

int detect_cuda_free_of(const struct detect_cuda *cu, const char *devices,
			uint64_t *free_bytes)
{
	const char *p = devices, *end;
	uint64_t n, sum = 0;
	size_t len;

	/* llama.cpp's names: CUDA<ordinal>, the ordinal under the same
	 * CUDA_VISIBLE_DEVICES the probe saw */
	while (*p) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		if (len <= 4 || strncmp(p, "CUDA", 4) != 0 ||
		    lemon_parse_u64(p + 4, len - 4, 10, DETECT_MAX_CUDA - 1, &n,
				    NULL) < 0 ||
		    (int)n >= cu->n_devices || !cu->devices[n].has_free)
			return -1;
		sum += cu->devices[n].free_bytes;
		p += len;
		if (*p == ',')
			p++;
	}
	if (sum == 0)
		return -1;
	*free_bytes = sum;
	return 0;
}

int detect_cuda_parse_bus_id(const char *buf, size_t len, char *bdf, size_t cap,
			     struct lemon_err *err)
{
	const char *c1, *c2, *dot;
	uint64_t dom, bus, dev, fn;

	c1 = memchr(buf, ':', len);
	c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - buf)) : NULL;
	dot = c2 ? memchr(c2 + 1, '.', len - (size_t)(c2 + 1 - buf)) : NULL;
	if (dot == NULL || c1 == buf ||
	    lemon_parse_u64(buf, (size_t)(c1 - buf), 16, 0xffff, &dom, NULL) ||
	    lemon_parse_u64(c1 + 1, (size_t)(c2 - c1 - 1), 16, 0xff, &bus,
			    NULL) ||
	    lemon_parse_u64(c2 + 1, (size_t)(dot - c2 - 1), 16, 0x1f, &dev,
			    NULL) ||
	    lemon_parse_u64(dot + 1, len - (size_t)(dot + 1 - buf), 16, 7, &fn,
			    NULL))
		return lemon_err_set(
			err, LEMON_ERR_INVALID_DATA,
			"PCI bus id '%.*s' is not domain:bus:device.function",
			(int)(len > 40 ? 40 : len), buf);
	if (cap < 13)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "no room for a PCI address");
	snprintf(bdf, cap, "%04x:%02x:%02x.%x", (unsigned)dom, (unsigned)bus,
		 (unsigned)dev, (unsigned)fn);
	return 0;
}

static void cu_msg(const struct cu_fns *f, const char *what, int r, char *out,
		   size_t cap)
{
	const char *name = NULL;

	if (f->errname == NULL || f->errname(r, &name) != 0 || name == NULL)
		name = "unknown error";
	snprintf(out, cap, "%s failed: %s (%d)", what, name, r);
}

#define SYM(lib, f, field, type, name) ((f)->field = (type)dlsym((lib), (name)))

static bool load_fns(void *lib, struct cu_fns *f)
{
	SYM(lib, f, init, cu_init_fn, "cuInit");
	SYM(lib, f, version, cu_version_fn, "cuDriverGetVersion");
	SYM(lib, f, count, cu_count_fn, "cuDeviceGetCount");
	SYM(lib, f, get, cu_get_fn, "cuDeviceGet");
	SYM(lib, f, name, cu_name_fn, "cuDeviceGetName");
	SYM(lib, f, attr, cu_attr_fn, "cuDeviceGetAttribute");
	SYM(lib, f, total, cu_total_fn, "cuDeviceTotalMem_v2");
	SYM(lib, f, bus, cu_bus_fn, "cuDeviceGetPCIBusId");
	SYM(lib, f, retain, cu_retain_fn, "cuDevicePrimaryCtxRetain");
	SYM(lib, f, release, cu_release_fn, "cuDevicePrimaryCtxRelease_v2");
	if (f->release == NULL)
		SYM(lib, f, release, cu_release_fn,
		    "cuDevicePrimaryCtxRelease");
	SYM(lib, f, set, cu_set_fn, "cuCtxSetCurrent");
	SYM(lib, f, mem, cu_mem_fn, "cuMemGetInfo_v2");
	SYM(lib, f, errname, cu_errname_fn, "cuGetErrorName");
	return f->init && f->version && f->count && f->get && f->name &&
	       f->attr && f->total && f->bus && f->retain && f->release &&
	       f->set && f->mem;
}

/* free memory needs a context: the primary one is retained, made current,
 * asked, and released again so that the probe leaves nothing behind */
static void free_memory(const struct cu_fns *f, int dev,
			struct detect_cuda_device *d)
{
	size_t free_b = 0, total_b = 0;
	void *ctx = NULL;
	int r;

	r = f->retain(&ctx, dev);
	if (r != 0) {
		cu_msg(f, "cuDevicePrimaryCtxRetain", r, d->error,
		       sizeof(d->error));
		return;
	}
	r = f->set(ctx);
	if (r == 0)
		r = f->mem(&free_b, &total_b);
	if (r == 0) {
		d->has_free = true;
		d->free_bytes = free_b;
	} else {
		cu_msg(f, "cuMemGetInfo_v2", r, d->error, sizeof(d->error));
	}
	f->set(NULL);
	f->release(dev);
}

static void describe(const struct cu_fns *f, int ordinal,
		     struct detect_cuda_device *d)
{
	char bus[32] = "";
	size_t total = 0;
	int dev, r;

	memset(d, 0, sizeof(*d));
	d->cc_major = d->cc_minor = -1;
	r = f->get(&dev, ordinal);
	if (r != 0) {
		cu_msg(f, "cuDeviceGet", r, d->error, sizeof(d->error));
		return;
	}
	if (f->name(d->name, (int)sizeof(d->name), dev) != 0)
		d->name[0] = '\0';
	d->name[sizeof(d->name) - 1] = '\0';
	if (f->attr(&d->cc_major, CU_ATTR_CC_MAJOR, dev) != 0 ||
	    f->attr(&d->cc_minor, CU_ATTR_CC_MINOR, dev) != 0)
		d->cc_major = d->cc_minor = -1;
	if (f->total(&total, dev) == 0) {
		d->has_total = true;
		d->total_bytes = total;
	}
	if (f->bus(bus, (int)sizeof(bus), dev) == 0) {
		bus[sizeof(bus) - 1] = '\0';
		if (detect_cuda_parse_bus_id(bus, strlen(bus), d->bdf,
					     sizeof(d->bdf), NULL) < 0)
			d->bdf[0] = '\0';
	}
	free_memory(f, dev, d);
}

static void run_driver(const struct cu_fns *f, struct detect_cuda *cu)
{
	int r, n = 0, i;

	r = f->init(0);
	if (r != 0) {
		/* CUDA_ERROR_NO_DEVICE (100) and friends: the library is
		 * there, the driver or the device is not usable */
		cu_msg(f, "cuInit", r, cu->error, sizeof(cu->error));
		return;
	}
	if (f->version(&cu->driver_version) == 0)
		cu->has_driver_version = true;
	r = f->count(&n);
	if (r != 0) {
		cu_msg(f, "cuDeviceGetCount", r, cu->error, sizeof(cu->error));
		return;
	}
	for (i = 0; i < n && i < DETECT_MAX_CUDA; i++)
		describe(f, i, &cu->devices[cu->n_devices++]);
}

/* links each NVIDIA PCI GPU to the CUDA device at the same address; the
 * driver's total memory is the GPU's VRAM (sysfs has none for NVIDIA) */
static void match_gpus(struct detect_report *rep)
{
	struct detect_gpu *gpu;
	int g, d;

	for (g = 0; g < rep->n_gpus; g++) {
		gpu = &rep->gpus[g];
		gpu->cuda_index = -1;
		for (d = 0; d < rep->cuda.n_devices; d++)
			if (gpu->pci.vendor == 0x10de &&
			    strcmp(rep->cuda.devices[d].bdf, gpu->pci.bdf) == 0)
				gpu->cuda_index = d;
		if (gpu->cuda_index >= 0 &&
		    rep->cuda.devices[gpu->cuda_index].has_total) {
			gpu->has_vram = true;
			gpu->vram_bytes =
				rep->cuda.devices[gpu->cuda_index].total_bytes;
		}
	}
}

static bool has_nvidia(const struct detect_report *rep)
{
	int i;

	for (i = 0; i < rep->n_gpus; i++)
		if (rep->gpus[i].pci.vendor == 0x10de)
			return true;
	return false;
}

int detect_cuda_probe(struct detect_ctx *ctx, struct lemon_err *err)
{
	struct detect_cuda *cu = &ctx->report->cuda;
	struct cu_fns f = {0};
	void *lib;

	(void)err;
	memset(cu, 0, sizeof(*cu));
	match_gpus(ctx->report);
	if (ctx->opts != NULL && ctx->opts->no_cuda) {
		lemon_str_copy(cu->skipped_why, sizeof(cu->skipped_why),
			       "--no-cuda");
		return 0;
	}
	if (!detect_root_is_live(ctx->root)) {
		lemon_str_copy(cu->skipped_why, sizeof(cu->skipped_why),
			       "sysroot");
		return 0;
	}
	/* loading the driver library costs time and memory for nothing on a
	 * machine without an NVIDIA GPU */
	if (!has_nvidia(ctx->report)) {
		lemon_str_copy(cu->skipped_why, sizeof(cu->skipped_why),
			       "no NVIDIA GPU");
		return 0;
	}
	cu->probed = true;
	/* RTLD_NODELETE: after cuInit the driver runs threads of its own in
	 * the library's code, so dlclose must not unmap it */
	lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (lib == NULL) {
		snprintf(cu->error, sizeof(cu->error),
			 "CUDA driver library libcuda.so.1 not found: %s",
			 dlerror());
		return 0;
	}
	cu->library = true;
	if (!load_fns(lib, &f))
		lemon_str_copy(
			cu->error, sizeof(cu->error),
			"libcuda.so.1 lacks a CUDA driver API entry point lemon needs");
	else
		run_driver(&f, cu);
	dlclose(lib);
	match_gpus(ctx->report);
	return 0;
}
