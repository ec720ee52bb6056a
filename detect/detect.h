/* detect: the facts this machine reports about its CPUs, GPUs and NPUs.
 *
 * Every file is read through struct lemon_root so that a recorded tree
 * (--sysroot DIR) replays exactly what a live machine would show. detect only
 * records raw facts; mapping ids to gfx targets, families and verdicts is
 * compat's job (hardware facts are data, never C tables).
 *
 * A fact is either known or unknown: every optional number carries a has_*
 * flag and every optional string is "" when unknown (JSON null, never 0). */
#ifndef LEMON_DETECT_H
#define LEMON_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* ---- sysroot ---------------------------------------------------------- */

struct lemon_root;

/* the trees lemon reads; their literal paths live only in detect/root.c */
enum detect_base {
	DETECT_BASE_SYS,      /* /sys */
	DETECT_BASE_PROC,     /* /proc */
	DETECT_BASE_DEV,      /* /dev */
	DETECT_BASE_FIRMWARE, /* /lib/firmware */
	DETECT_BASE_MODULES,  /* /lib/modules */
	DETECT_BASE_LIBDRM,   /* /usr/share/libdrm */
	DETECT_BASE_ETC,      /* /etc */
	DETECT_BASE_HWDATA,   /* /usr/share/misc (pci.ids) */
};

/* sysroot NULL or "" means the live machine. The caller owns *out and frees
 * it with detect_root_free. Fails with NOT_FOUND if the sysroot is missing. */
int detect_root_new(const char *sysroot, struct lemon_root **out,
		    struct lemon_err *err);
void detect_root_free(struct lemon_root *root);
bool detect_root_is_live(const struct lemon_root *root);
/* "" on the live machine */
const char *detect_root_dir(const struct lemon_root *root);

/* the path of base/rel as the user knows it, without the sysroot */
void detect_root_display(enum detect_base base, const char *rel, char *out,
			 size_t cap);

/* host path of base/rel into out; TOO_LARGE if it does not fit */
int detect_root_path(const struct lemon_root *root, enum detect_base base,
		     const char *rel, char *out, size_t cap,
		     struct lemon_err *err);

/* reads the whole file into buf (NUL-terminated, *len without the NUL).
 * NOT_FOUND when missing, TOO_LARGE when longer than cap-1 bytes. */
int detect_root_read(const struct lemon_root *root, enum detect_base base,
		     const char *rel, char *buf, size_t cap, size_t *len,
		     struct lemon_err *err);

/* last path component of a symlink's target (e.g. a `driver` link) */
int detect_root_link_name(const struct lemon_root *root, enum detect_base base,
			  const char *rel, char *out, size_t cap,
			  struct lemon_err *err);

bool detect_root_exists(const struct lemon_root *root, enum detect_base base,
			const char *rel);

struct detect_names {
	char **names; /* sorted, owned */
	size_t count;
};

/* the most entries detect_root_list returns; no directory lemon reads
 * comes near it */
#define DETECT_LIST_MAX 65536

/* entries of a directory except "." and ".."; NOT_FOUND when missing,
 * TOO_LARGE (with nothing to free) above DETECT_LIST_MAX entries */
int detect_root_list(const struct lemon_root *root, enum detect_base base,
		     const char *rel, struct detect_names *out,
		     struct lemon_err *err);
void detect_names_free(struct detect_names *names);

/* ---- facts ------------------------------------------------------------ */

#define DETECT_MAX_PCI 128
#define DETECT_MAX_GPUS 16
#define DETECT_MAX_VIRTUAL_DISPLAYS 4
#define DETECT_MAX_NPUS 8
#define DETECT_MAX_NODES 24
#define DETECT_MAX_VK 16
#define DETECT_MAX_KMSG 256
#define DETECT_MAX_CPU_FLAGS 24
#define DETECT_MAX_PROBE_ERRORS 16
#define DETECT_MAX_CUDA 16

struct detect_pci {
	char bdf[16]; /* "0000:c5:00.0" */
	uint16_t vendor;
	uint16_t device;
	uint16_t subsys_vendor;
	uint16_t subsys_device;
	uint8_t revision;
	uint32_t class_code; /* 24 bits: class, subclass, prog-if */
	char driver[32];     /* bound kernel driver, "" when unbound */
	char name[128];      /* pci.ids name, looked up for non-AMD GPUs only */
};

/* what libdrm_amdgpu's queries answered for one GPU (live only) */
struct detect_libdrm_gpu {
	bool queried;            /* amdgpu_device_initialize succeeded */
	char error[160];         /* why not: open or initialize failure */
	uint32_t drm_minor;      /* the DRM interface minor version */
	bool has_info;           /* amdgpu_query_gpu_info */
	uint32_t family_id;      /* AMDGPU_FAMILY_*: 143 is GC 11.5 */
	uint32_t chip_external_rev;
	uint32_t chip_rev;
	bool has_vram;           /* amdgpu_query_heap_info(VRAM) */
	uint64_t vram_heap;      /* bytes usable for buffers */
	uint64_t vram_used;
	bool has_gtt;            /* amdgpu_query_heap_info(GTT) */
	uint64_t gtt_heap;       /* on an APU: system memory the GPU can map */
	uint64_t gtt_used;
	char marketing_name[128]; /* amdgpu_get_marketing_name, "" if none */
};

struct detect_gpu {
	struct detect_pci pci;
	/* KFD topology node whose location matches this device */
	bool has_kfd;
	uint32_t kfd_gfx_target_version; /* decimal, e.g. 110501 */
	/* the node carries cwsr_size and ctl_stack_size (the CWSR fix) */
	bool kfd_cwsr;
	int kfd_node;
	/* amdgpu ip_discovery GC IP version, "" when not exposed */
	char gc_ip[16]; /* "11.5.1" */
	bool has_vram;
	uint64_t vram_bytes;
	bool has_gtt;
	uint64_t gtt_bytes;
	char render_node[24]; /* "renderD128" */
	char card_node[24];   /* "card0" */
	char marketing_name[128]; /* libdrm amdgpu.ids, "" when unknown */
	struct detect_libdrm_gpu libdrm; /* live only, see detect_libdrm */
	/* where vram_bytes was read: "amdgpu" (mem_info_vram_total), "xe"
	 * (tile<N>/physical_vram_size_bytes, summed), "i915" (the backport
	 * driver's cardN/lmem_total_bytes; mainline i915 publishes none) */
	char vram_source[16];
	/* NVIDIA: the CUDA driver's device with this PCI address, -1 when
	 * none (not probed, no libcuda, or the driver does not list it) */
	int cuda_index;
};

struct detect_npu {
	struct detect_pci pci;
	char accel_node[24];  /* "accel0", "" when no node was created */
	char fw_version[48];  /* sysfs fw_version attribute, if any */
	char vbnv[64];        /* sysfs vbnv attribute, if any */
};

struct detect_kmod {
	char name[32];
	bool loaded;           /* /sys/module/<name> with initstate live */
	bool has_available;    /* whether "available" is known */
	bool available;        /* found in the module index or built in */
	bool builtin;
	char version[64];      /* module version, "" when none */
	char path[256];        /* .ko path from the module index */
};

/* a device node and what the current user may do with it */
struct detect_node {
	char rel[40];          /* under the dev tree: kfd, dri/renderD128 */
	char path[48];         /* as the user sees it, for messages */
	bool exists;
	bool has_mode;
	unsigned mode;         /* permission bits */
	unsigned uid;
	unsigned gid;
	char group[32];        /* group name of gid, "" when unknown */
	bool readable;
	bool writable;
};

struct detect_iommu {
	bool cmdline_amd_iommu_off; /* amd_iommu=off */
	bool cmdline_iommu_off;     /* iommu=off */
	bool cmdline_iommu_pt;      /* iommu=pt */
	bool has_units;
	int units; /* entries in /sys/class/iommu */
	bool has_groups;
	int groups; /* entries in /sys/kernel/iommu_groups */
};

struct detect_cpu {
	char model[128];
	bool has_cores;
	int cores;    /* logical processors */
	char vendor[32];
	int n_flags;
	char flags[DETECT_MAX_CPU_FLAGS][20]; /* the ones that matter for llama.cpp */
};

struct detect_user {
	bool known;
	unsigned uid;
	unsigned gid;
	int n_groups;
	unsigned groups[64];
	bool has_memlock;
	bool memlock_unlimited;
	uint64_t memlock_bytes; /* soft limit */
};

struct detect_host {
	char kernel[96];   /* osrelease, "" when unknown */
	char cmdline[2048];
	bool has_ram;
	uint64_t ram_bytes;
	bool hypervisor;   /* cpuinfo "hypervisor" flag */
};

enum detect_vk_type {
	DETECT_VK_OTHER = 0,
	DETECT_VK_INTEGRATED,
	DETECT_VK_DISCRETE,
	DETECT_VK_VIRTUAL,
	DETECT_VK_CPU,
};

struct detect_vk_device {
	char name[256];
	uint32_t vendor_id;
	uint32_t device_id;
	char driver[64];  /* "radv", "amdvlk", "nvidia", "lavapipe", ... */
	char driver_info[128];
	enum detect_vk_type type;
	uint32_t api_version; /* VK_MAKE_API_VERSION packing */
	/* VK_EXT_pci_bus_info: the PCI function the driver runs on, so the
	 * device is matched to its PCI device by address, not only by
	 * vendor/device id ("" when the driver does not say) */
	char pci_bdf[16];
};

struct detect_vulkan {
	bool probed;        /* false with --no-vulkan or under a sysroot */
	char skipped_why[64];
	bool loader;        /* libvulkan could be opened */
	char error[160];    /* why the loader or instance failed */
	int n_devices;
	struct detect_vk_device devices[DETECT_MAX_VK];
};

/* one device as the CUDA driver (libcuda.so.1) reports it */
struct detect_cuda_device {
	char name[128];     /* cuDeviceGetName */
	char bdf[16];       /* cuDeviceGetPCIBusId, normalized "0000:01:00.0" */
	int cc_major;       /* compute capability (attributes 75, 76) */
	int cc_minor;
	bool has_total;
	uint64_t total_bytes; /* cuDeviceTotalMem_v2 */
	bool has_free;
	uint64_t free_bytes;  /* cuMemGetInfo_v2 in the primary context */
	char error[128];      /* what failed for this device, "" when nothing */
};

/* the live-only libdrm_amdgpu probe (dlopen'ed); skipped under a sysroot
 * and on machines without an amdgpu-bound GPU */
struct detect_libdrm {
	bool probed;
	char skipped_why[32];
	bool library;     /* libdrm_amdgpu.so.1 could be opened */
	char error[160];  /* why the library could not be used */
};

/* the live-only CUDA driver probe; skipped under a sysroot */
struct detect_cuda {
	bool probed;          /* false under a sysroot or with --no-cuda */
	char skipped_why[64];
	bool library;         /* libcuda.so.1 could be opened */
	char error[192];      /* why the library or cuInit failed */
	bool has_driver_version;
	int driver_version;   /* cuDriverGetVersion: 12080 is CUDA 12.8 */
	int n_devices;
	struct detect_cuda_device devices[DETECT_MAX_CUDA];
};

struct detect_kmsg {
	bool readable;
	char error[128];
	int n_lines;
	char *lines[DETECT_MAX_KMSG]; /* owned; only driver-relevant lines */
};

struct detect_probe_error {
	char probe[16];
	struct lemon_err err;
};

struct detect_report {
	bool live;
	struct detect_host host;
	struct detect_cpu cpu;
	struct detect_user user;
	int n_pci;
	struct detect_pci pci[DETECT_MAX_PCI];
	int n_gpus;
	struct detect_gpu gpus[DETECT_MAX_GPUS];
	/* virtual display adapters (QEMU bochs/cirrus/QXL, virtio-gpu, VMware
	 * SVGA, Hyper-V): listed apart, never counted as a GPU */
	int n_virtual_displays;
	struct detect_pci virtual_displays[DETECT_MAX_VIRTUAL_DISPLAYS];
	int n_npus;
	struct detect_npu npus[DETECT_MAX_NPUS];
	bool kfd_present; /* /sys/class/kfd/kfd/topology exists */
	struct detect_kmod kmod_amdgpu;
	struct detect_kmod kmod_amdxdna;
	struct detect_kmod kmod_nvidia;     /* version: the NVIDIA driver's */
	struct detect_kmod kmod_nvidia_uvm; /* CUDA's unified memory module */
	struct detect_kmod kmod_nouveau;
	struct detect_iommu iommu;
	int n_nodes;
	struct detect_node nodes[DETECT_MAX_NODES];
	/* live, or a recorded tree with dev/.lemon-stat: a node that is not
	 * there is missing; in an older recording it was never recorded */
	bool nodes_recorded;
	struct detect_vulkan vulkan;
	struct detect_cuda cuda;
	struct detect_libdrm libdrm;
	struct detect_kmsg kmsg;
	int n_probe_errors;
	struct detect_probe_error probe_errors[DETECT_MAX_PROBE_ERRORS];
};

struct detect_options {
	bool vulkan;  /* run the Vulkan probe (ignored under a sysroot) */
	bool no_cuda; /* skip the CUDA driver probe (always under a sysroot) */
	/* the flm `lemon install-backend flm` installed (the CLI reads it
	 * from provision's state, a layer above); NULL: none */
	const char *flm_installed;
};

/* runs every probe in order; a failing probe is recorded in
 * report->probe_errors and the others still run. Returns -1 only when the
 * report cannot be produced at all. Free with detect_report_free. */
int detect_run(const struct lemon_root *root, const struct detect_options *opts,
	       struct detect_report *report, struct lemon_err *err);
void detect_report_free(struct detect_report *report);

/* lookups over a finished report */
/* a checked device node by its name under the dev tree ("kfd",
 * "dri/renderD128", "accel/accel0"); NULL when it was not checked */
const struct detect_node *detect_find_node(const struct detect_report *report,
					   const char *rel);
bool detect_pci_is_gpu(const struct detect_pci *pci);
/* an emulated display adapter of a hypervisor, not an inference GPU */
bool detect_pci_is_virtual_display(const struct detect_pci *pci);
bool detect_pci_is_npu(const struct detect_pci *pci);
const char *detect_vendor_name(uint16_t vendor);
const char *detect_vk_type_name(enum detect_vk_type type);

/* the free memory the CUDA driver reported for llama.cpp device names
 * ("CUDA1", "CUDA0,CUDA1": the sum); -1 when a name is not CUDA<n> of a
 * probed device with its free memory known */
int detect_cuda_free_of(const struct detect_cuda *cu, const char *devices,
			uint64_t *free_bytes);

/* ---- firmware files (the directory comes from compat data) ------------ */

struct detect_firmware {
	char file[256];    /* path as the kernel would load it, e.g. amdnpu/17f0_10/npu.sbin */
	char target[128];  /* symlink target's last component, "" if not a link */
	char version[48];  /* from the versioned name or the blob's "Release" tag */
	bool compressed;   /* .zst / .xz variant */
};

/* looks for <dir>/<name>{,.zst,.xz} under /lib/firmware; NOT_FOUND when none */
int detect_firmware_find(const struct lemon_root *root, const char *dir,
			 const char *name, struct detect_firmware *out,
			 struct lemon_err *err);

/* ---- pure parsers (buffer in, struct out; unit-tested and fuzzed) ----- */

/* KFD topology node properties: "key value" lines */
struct detect_kfd_props {
	bool has_gfx_target_version;
	uint32_t gfx_target_version;
	bool has_location;
	uint32_t location_id; /* bus << 8 | devfn */
	uint32_t domain;
	uint32_t vendor_id;
	uint32_t device_id;
	uint32_t simd_count;
	/* the CWSR save-area sizes, only on kernels with the fix that added
	 * them (gfx1151 needs it: 6.18.4+ or a backport) */
	bool has_cwsr_size;
	bool has_ctl_stack_size;
	uint32_t cwsr_size;
	uint32_t ctl_stack_size;
};
int detect_kfd_parse_props(const char *buf, size_t len,
			   struct detect_kfd_props *out, struct lemon_err *err);

/* libdrm_amdgpu's entry points, resolved from a dlopen'ed library
 * (libdrm.c): amdgpu_device_initialize, _deinitialize,
 * amdgpu_query_gpu_info, amdgpu_query_heap_info, amdgpu_get_marketing_name */
struct detect_libdrm_fns {
	void *init, *deinit, *gpu_info, *heap_info, *marketing_name;
};
/* -1 when the library lacks one of them */
int detect_libdrm_load(void *lib, struct detect_libdrm_fns *f);
/* opens the render node at path and asks the kernel; -1 with out->error
 * when it cannot be opened or is not an amdgpu device */
int detect_libdrm_query_node(const struct detect_libdrm_fns *f,
			     const char *path, struct detect_libdrm_gpu *out);

/* libdrm amdgpu.ids: finds the name for (device, revision) */
int detect_amdgpu_ids_lookup(const char *buf, size_t len, uint16_t device,
			     uint8_t revision, char *name, size_t cap,
			     struct lemon_err *err);

/* /proc/cmdline */
void detect_cmdline_parse_iommu(const char *buf, size_t len,
				struct detect_iommu *out);

/* /proc/cpuinfo */
int detect_cpuinfo_parse(const char *buf, size_t len, struct detect_cpu *out,
			 bool *hypervisor, struct lemon_err *err);

/* /proc/meminfo MemTotal in bytes */
int detect_meminfo_parse(const char *buf, size_t len, uint64_t *total,
			 struct lemon_err *err);

/* /proc/self/status Uid/Gid/Groups and /proc/self/limits memlock */
int detect_status_parse(const char *buf, size_t len, struct detect_user *out,
			struct lemon_err *err);
int detect_limits_parse_memlock(const char *buf, size_t len,
				struct detect_user *out, struct lemon_err *err);

/* /etc/group: name of gid */
bool detect_group_name(const char *buf, size_t len, unsigned gid, char *out,
		       size_t cap);

/* a dmesg text line (optionally "[ 1.23] " prefixed): true when relevant */
bool detect_kmsg_relevant(const char *line, size_t len);

/* cuDeviceGetPCIBusId text ("00000000:01:00.0", upper-case hex) ->
 * "0000:01:00.0"; INVALID_DATA when it is not domain:bus:dev.fn */
int detect_cuda_parse_bus_id(const char *buf, size_t len, char *bdf,
			     size_t cap, struct lemon_err *err);

/* firmware version from a versioned file name ("npu.sbin.1.0.0.63") */
bool detect_firmware_version_from_name(const char *name, char *out, size_t cap);
/* firmware version from a blob's embedded "Release x.y.z.w" tag */
bool detect_firmware_version_from_blob(const char *buf, size_t len, char *out,
				       size_t cap);

#endif
