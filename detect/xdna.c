/* AMD XDNA NPUs: the PCI function, whether amdxdna created an accel node,
 * and the firmware facts the driver exposes in sysfs */
#include <stdio.h>
#include <string.h>

#include "detect/detect-private.h"
#include "util/str.h"

static void read_accel_node(struct detect_ctx *ctx, struct detect_npu *npu)
{
	struct detect_names names;
	char rel[96];
	size_t i;

	snprintf(rel, sizeof(rel), "bus/pci/devices/%s/accel", npu->pci.bdf);
	if (detect_root_list(ctx->root, DETECT_BASE_SYS, rel, &names, NULL) < 0)
		return;
	for (i = 0; i < names.count; i++) {
		if (strncmp(names.names[i], "accel", 5) == 0) {
			lemon_str_copy(npu->accel_node,
				       sizeof(npu->accel_node), names.names[i]);
			break;
		}
	}
	detect_names_free(&names);
}

int detect_npu_probe(struct detect_ctx *ctx, struct lemon_err *err)
{
	struct detect_report *rep = ctx->report;
	char rel[128];
	int i;

	(void)err;
	for (i = 0; i < rep->n_pci && rep->n_npus < DETECT_MAX_NPUS; i++) {
		struct detect_npu *npu;

		if (!detect_pci_is_npu(&rep->pci[i]))
			continue;
		npu = &rep->npus[rep->n_npus++];
		memset(npu, 0, sizeof(*npu));
		npu->pci = rep->pci[i];
		read_accel_node(ctx, npu);
		snprintf(rel, sizeof(rel), "bus/pci/devices/%s/fw_version",
			 npu->pci.bdf);
		detect_read_attr(ctx->root, DETECT_BASE_SYS, rel,
				 npu->fw_version, sizeof(npu->fw_version), NULL);
		snprintf(rel, sizeof(rel), "bus/pci/devices/%s/vbnv",
			 npu->pci.bdf);
		detect_read_attr(ctx->root, DETECT_BASE_SYS, rel, npu->vbnv,
				 sizeof(npu->vbnv), NULL);
	}
	return 0;
}
