/* cuda_probe: runs detect/cuda.c's probe alone on a live machine and prints
 * what it found, for checking the probe on a GPU machine where lemon's
 * libraries (libpci, libkmod, cJSON...) are not installed. It needs only
 * libc and libdl:
 *
 *   cc -std=c11 -D_GNU_SOURCE -I. -o cuda_probe tests/tools/cuda_probe.c \
 *      detect/cuda.c detect/root.c util/str.c util/err.c -ldl
 *
 * The NVIDIA PCI display devices are read from sysfs through the sysroot
 * object, as detect/gpu.c would list them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/detect-private.h"
#include "util/str.h"

static void add_gpus(const struct lemon_root *root, struct detect_report *rep)
{
	struct detect_names names;
	uint64_t vendor, cls;
	char rel[128];
	size_t i;

	if (detect_root_list(root, DETECT_BASE_SYS, "bus/pci/devices", &names,
			     NULL) < 0)
		return;
	for (i = 0; i < names.count && rep->n_gpus < DETECT_MAX_GPUS; i++) {
		struct detect_gpu *g;

		snprintf(rel, sizeof(rel), "bus/pci/devices/%s/vendor",
			 names.names[i]);
		if (detect_read_u64(root, DETECT_BASE_SYS, rel, 16, 0xffff,
				    &vendor, NULL) < 0 ||
		    vendor != 0x10de)
			continue;
		snprintf(rel, sizeof(rel), "bus/pci/devices/%s/class",
			 names.names[i]);
		if (detect_read_u64(root, DETECT_BASE_SYS, rel, 16, 0xffffff,
				    &cls, NULL) < 0 ||
		    (cls >> 16) != 0x03)
			continue;
		g = &rep->gpus[rep->n_gpus++];
		g->pci.vendor = 0x10de;
		lemon_str_copy(g->pci.bdf, sizeof(g->pci.bdf), names.names[i]);
	}
	detect_names_free(&names);
}

int main(void)
{
	static struct detect_report rep;
	struct detect_options opts = {0};
	struct lemon_err err = {0};
	struct lemon_root *root;
	struct detect_ctx ctx;
	int i;

	if (detect_root_new(NULL, &root, &err) < 0) {
		fprintf(stderr, "cuda_probe: %s\n", err.msg);
		return 1;
	}
	add_gpus(root, &rep);
	ctx = (struct detect_ctx){root, &opts, &rep};
	detect_cuda_probe(&ctx, &err);
	printf("pci_nvidia_gpus %d\nprobed %d\nskipped %s\nlibrary %d\nerror %s\n",
	       rep.n_gpus, rep.cuda.probed, rep.cuda.skipped_why,
	       rep.cuda.library, rep.cuda.error);
	if (rep.cuda.has_driver_version)
		printf("driver_version %d\n", rep.cuda.driver_version);
	for (i = 0; i < rep.cuda.n_devices; i++) {
		const struct detect_cuda_device *d = &rep.cuda.devices[i];

		printf("device %d: name '%s' pci %s cc %d.%d total %llu free %llu error '%s'\n",
		       i, d->name, d->bdf, d->cc_major, d->cc_minor,
		       d->has_total ? (unsigned long long)d->total_bytes : 0ULL,
		       d->has_free ? (unsigned long long)d->free_bytes : 0ULL,
		       d->error);
	}
	for (i = 0; i < rep.n_gpus; i++)
		printf("gpu %s cuda_index %d vram %llu\n", rep.gpus[i].pci.bdf,
		       rep.gpus[i].cuda_index,
		       rep.gpus[i].has_vram
			       ? (unsigned long long)rep.gpus[i].vram_bytes
			       : 0ULL);
	detect_root_free(root);
	return 0;
}
