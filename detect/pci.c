/* PCI devices through libpci, pointed at the sysroot's sysfs.
 *
 * libpci's sysfs method reads <root>/sys/bus/pci/devices/<BDF>/{vendor,
 * device,class,revision,subsystem_*} and the driver link, so the same code
 * path serves the live machine, a recorded tree and a umockdev testbed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pci/pci.h>

#include "detect/detect-private.h"
#include "util/str.h"

static void pci_quiet(char *msg, ...)
{
	/* libpci warnings (e.g. a recorded tree without config files) are
	 * not lemon's to print */
	(void)msg;
}

static void fill_one(struct pci_dev *d, struct detect_pci *out)
{
	const char *drv;

	pci_fill_info(d, PCI_FILL_IDENT | PCI_FILL_CLASS | PCI_FILL_CLASS_EXT |
				 PCI_FILL_SUBSYS | PCI_FILL_DRIVER);
	memset(out, 0, sizeof(*out));
	snprintf(out->bdf, sizeof(out->bdf), "%04x:%02x:%02x.%d",
		 (unsigned)d->domain & 0xffff, d->bus, d->dev, d->func);
	out->vendor = d->vendor_id;
	out->device = d->device_id;
	out->subsys_vendor = d->subsys_vendor_id;
	out->subsys_device = d->subsys_id;
	out->revision = d->rev_id;
	out->class_code = ((uint32_t)d->device_class << 8) | d->prog_if;
	drv = pci_get_string_property(d, PCI_FILL_DRIVER);
	if (drv != NULL)
		lemon_str_copy(out->driver, sizeof(out->driver), drv);
}

/* pci.ids names only for GPUs that amdgpu.ids and compat do not name:
 * loading the 1.3 MB database costs more than the rest of detection */
static void name_foreign_gpus(struct detect_ctx *ctx, struct pci_access *pacc)
{
	struct detect_report *rep = ctx->report;
	char ids[1280];
	bool loaded = false;
	int i;

	for (i = 0; i < rep->n_pci; i++) {
		struct detect_pci *p = &rep->pci[i];

		if (!detect_pci_is_gpu(p) || p->vendor == 0x1002)
			continue;
		if (!loaded) {
			if (detect_root_path(ctx->root, DETECT_BASE_HWDATA,
					     "pci.ids", ids, sizeof(ids), NULL) < 0 ||
			    !detect_root_exists(ctx->root, DETECT_BASE_HWDATA,
						"pci.ids"))
				return;
			pci_set_name_list_path(pacc, ids, 0);
			loaded = true;
		}
		if (pci_lookup_name(pacc, p->name, sizeof(p->name),
				    PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS,
				    p->vendor, p->device) == NULL)
			p->name[0] = '\0';
	}
}

static int cmp_bdf(const void *a, const void *b)
{
	return strcmp(((const struct detect_pci *)a)->bdf,
		      ((const struct detect_pci *)b)->bdf);
}

int detect_pci_probe(struct detect_ctx *ctx, struct lemon_err *err)
{
	struct detect_report *rep = ctx->report;
	char path[1280];
	struct pci_access *pacc;
	struct pci_dev *d;

	if (detect_root_path(ctx->root, DETECT_BASE_SYS, "bus/pci", path,
			     sizeof(path), err) < 0)
		return -1;
	/* libpci treats a missing sysfs tree as fatal and exits; a VM without
	 * PCI or a sparse recording is not an error for lemon */
	if (!detect_root_exists(ctx->root, DETECT_BASE_SYS, "bus/pci/devices"))
		return 0;
	pacc = pci_alloc();
	if (pacc == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL,
				     "libpci: out of memory");
	pacc->warning = pci_quiet;
	pacc->debug = pci_quiet;
	pacc->method = PCI_ACCESS_SYS_BUS_PCI;
	pci_set_param(pacc, "sysfs.path", path);
	pci_init(pacc);
	pci_scan_bus(pacc);
	for (d = pacc->devices; d != NULL; d = d->next) {
		if (rep->n_pci >= DETECT_MAX_PCI)
			break;
		fill_one(d, &rep->pci[rep->n_pci++]);
	}
	qsort(rep->pci, (size_t)rep->n_pci, sizeof(rep->pci[0]), cmp_bdf);
	name_foreign_gpus(ctx, pacc);
	pci_cleanup(pacc);
	return 0;
}
