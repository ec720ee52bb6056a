/* the driver lines of the kernel log.
 *
 * Failures such as an NPU firmware protocol mismatch or an IOMMU that
 * refuses SVA are only visible in the kernel log. Live, /dev/kmsg is read
 * non-blocking (records "pri,seq,ts,flags;text"); a recorded tree keeps the
 * plain `dmesg` text. Only lines of the drivers lemon cares about are kept. */
#include <stdlib.h>
#include <string.h>

#include "detect/detect-private.h"
#include "util/str.h"

static const char *const relevant_words[] = {
	"amdxdna", "amdgpu", "kfd", "AMD-Vi", "iommu", "IOMMU", "accel",
};

bool detect_kmsg_relevant(const char *line, size_t len)
{
	size_t w;

	for (w = 0; w < sizeof(relevant_words) / sizeof(relevant_words[0]); w++)
		if (memmem(line, len, relevant_words[w],
			   strlen(relevant_words[w])) != NULL)
			return true;
	return false;
}

/* strips the /dev/kmsg record header "6,1234,5678,-;" */
static void strip_record_header(const char **line, size_t *len)
{
	const char *semi = memchr(*line, ';', *len);
	size_t i;

	if (semi == NULL)
		return;
	for (i = 0; *line + i < semi; i++) {
		char c = (*line)[i];

		if (!((c >= '0' && c <= '9') || c == ',' || c == '-' ||
		      c == 'c' || c == '+'))
			return;
	}
	*len -= (size_t)(semi + 1 - *line);
	*line = semi + 1;
}

int detect_kmsg_probe(struct detect_ctx *ctx, struct lemon_err *err)
{
	struct detect_kmsg *km = &ctx->report->kmsg;
	size_t cap = 4u << 20, len, pos = 0, line_len;
	const char *line;
	char *buf;

	buf = malloc(cap);
	if (buf == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	if (detect_root_read(ctx->root, DETECT_BASE_DEV, "kmsg", buf, cap, &len,
			     err) < 0) {
		lemon_str_copy(km->error, sizeof(km->error), err->msg);
		free(buf);
		lemon_err_clear(err);
		return 0; /* an unreadable log (dmesg_restrict) is a fact */
	}
	km->readable = true;
	while (lemon_next_line(buf, len, &pos, &line, &line_len)) {
		if (detect_root_is_live(ctx->root))
			strip_record_header(&line, &line_len);
		if (line_len > 1024 || !detect_kmsg_relevant(line, line_len))
			continue;
		/* keep the newest lines: failures follow the boot chatter */
		if (km->n_lines == DETECT_MAX_KMSG) {
			free(km->lines[0]);
			memmove(km->lines, km->lines + 1,
				(DETECT_MAX_KMSG - 1) * sizeof(km->lines[0]));
			km->n_lines--;
		}
		km->lines[km->n_lines] = strndup(line, line_len);
		if (km->lines[km->n_lines] != NULL)
			km->n_lines++;
	}
	free(buf);
	return 0;
}
