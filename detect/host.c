/* host facts: kernel release and command line */
#include <string.h>

#include "detect/detect-private.h"
#include "util/str.h"

int detect_host_probe(struct detect_ctx *ctx, struct lemon_err *err)
{
	struct detect_host *host = &ctx->report->host;
	struct lemon_err e1 = { 0 };
	size_t len;

	if (detect_read_attr(ctx->root, DETECT_BASE_PROC, "sys/kernel/osrelease",
			     host->kernel, sizeof(host->kernel), &e1) < 0)
		host->kernel[0] = '\0';
	if (detect_root_read(ctx->root, DETECT_BASE_PROC, "cmdline",
			     host->cmdline, sizeof(host->cmdline), &len,
			     err) < 0) {
		host->cmdline[0] = '\0';
		return -1;
	}
	/* the kernel ends the line with a newline; keep one trimmed line */
	while (len > 0 && (host->cmdline[len - 1] == '\n' ||
			   host->cmdline[len - 1] == ' '))
		host->cmdline[--len] = '\0';
	if (e1.code != LEMON_OK)
		*err = e1;
	return e1.code != LEMON_OK ? -1 : 0;
}
