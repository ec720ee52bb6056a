/* IOMMU state: the NPU needs SVA/PASID from the AMD IOMMU, so a disabled
 * IOMMU hides it; ROCm works with the IOMMU on (iommu=pt is common) */
#include <string.h>

#include "detect/detect-private.h"
#include "util/str.h"

void detect_cmdline_parse_iommu(const char *buf, size_t len,
				struct detect_iommu *out)
{
	size_t i = 0;

	while (i < len) {
		size_t start, wlen;

		while (i < len && (buf[i] == ' ' || buf[i] == '\n'))
			i++;
		start = i;
		while (i < len && buf[i] != ' ' && buf[i] != '\n')
			i++;
		wlen = i - start;
		if (lemon_slice_eq(buf + start, wlen, "amd_iommu=off"))
			out->cmdline_amd_iommu_off = true;
		else if (lemon_slice_eq(buf + start, wlen, "iommu=off"))
			out->cmdline_iommu_off = true;
		else if (lemon_slice_eq(buf + start, wlen, "iommu=pt"))
			out->cmdline_iommu_pt = true;
	}
}

int detect_iommu_probe(struct detect_ctx *ctx, struct lemon_err *err)
{
	struct detect_iommu *io = &ctx->report->iommu;
	struct detect_names names;

	(void)err;
	detect_cmdline_parse_iommu(ctx->report->host.cmdline,
				   strlen(ctx->report->host.cmdline), io);
	if (detect_root_list(ctx->root, DETECT_BASE_SYS, "class/iommu", &names,
			     NULL) == 0) {
		io->has_units = true;
		io->units = (int)names.count;
		detect_names_free(&names);
	}
	if (detect_root_list(ctx->root, DETECT_BASE_SYS, "kernel/iommu_groups",
			     &names, NULL) == 0) {
		io->has_groups = true;
		io->groups = (int)names.count;
		detect_names_free(&names);
	}
	return 0;
}
