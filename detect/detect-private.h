/* shared by the files of detect/ only; nothing outside detect/ includes it */
#ifndef LEMON_DETECT_PRIVATE_H
#define LEMON_DETECT_PRIVATE_H

#include "detect/detect.h"

/* what every probe gets: the sysroot to read through, the options, and the
 * report it fills. Probes run in the order of the table in detect.c; a later
 * probe may use what an earlier one recorded (gpu needs pci). */
struct detect_ctx {
	const struct lemon_root *root;
	const struct detect_options *opts;
	struct detect_report *report;
};

struct detect_probe {
	const char *name;
	int (*run)(struct detect_ctx *ctx, struct lemon_err *err);
};

int detect_host_probe(struct detect_ctx *ctx, struct lemon_err *err);   /* host.c */
int detect_cpu_probe(struct detect_ctx *ctx, struct lemon_err *err);    /* cpu.c */
int detect_user_probe(struct detect_ctx *ctx, struct lemon_err *err);   /* user.c */
int detect_pci_probe(struct detect_ctx *ctx, struct lemon_err *err);    /* pci.c */
int detect_kfd_probe(struct detect_ctx *ctx, struct lemon_err *err);    /* kfd.c */
int detect_gpu_probe(struct detect_ctx *ctx, struct lemon_err *err);    /* gpu.c: drm nodes, vram, ip_discovery, names */
int detect_npu_probe(struct detect_ctx *ctx, struct lemon_err *err);    /* xdna.c */
int detect_kmod_probe(struct detect_ctx *ctx, struct lemon_err *err);   /* kmod.c */
int detect_iommu_probe(struct detect_ctx *ctx, struct lemon_err *err);  /* iommu.c */
int detect_nodes_probe(struct detect_ctx *ctx, struct lemon_err *err);  /* nodes.c */
int detect_kmsg_probe(struct detect_ctx *ctx, struct lemon_err *err);   /* kmsg.c */
int detect_cuda_probe(struct detect_ctx *ctx, struct lemon_err *err);   /* cuda.c */
int detect_libdrm_probe(struct detect_ctx *ctx, struct lemon_err *err); /* libdrm.c */
int detect_vulkan_probe(struct detect_ctx *ctx, struct lemon_err *err); /* vulkan.c */

/* small read helpers over lemon_root for sysfs attributes */
/* reads a one-line attribute into out (trimmed); NOT_FOUND when missing */
int detect_read_attr(const struct lemon_root *root, enum detect_base base,
		     const char *rel, char *out, size_t cap,
		     struct lemon_err *err);
/* reads a /proc file; a missing one leaves the fact unknown (returns 1,
 * err untouched), other failures return -1 with err set */
int detect_read_proc_optional(const struct lemon_root *root, const char *rel,
			      char *buf, size_t cap, size_t *len,
			      struct lemon_err *err);
/* reads a numeric attribute (base 10 or 16) with an explicit maximum */
int detect_read_u64(const struct lemon_root *root, enum detect_base base,
		    const char *rel, int num_base, uint64_t max, uint64_t *out,
		    struct lemon_err *err);

#endif
