/* firmware files under /lib/firmware and their versions.
 *
 * linux-firmware ships NPU firmware as a stable name (npu.sbin) linked to a
 * versioned blob (npu.sbin.1.0.0.63), often compressed (.zst/.xz); the blob
 * also carries a "Release x.y.z.w" tag we can read when uncompressed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/detect-private.h"
#include "util/str.h"

static bool is_version_char(char c)
{
	return (c >= '0' && c <= '9') || c == '.';
}

/* a dotted version of 2 to 4 numeric parts */
static bool valid_version(const char *s, size_t len)
{
	uint32_t parts[4];
	size_t i;

	for (i = 0; i < len; i++)
		if (!is_version_char(s[i]))
			return false;
	return lemon_parse_version(s, len, parts, 4, NULL) >= 2;
}

bool detect_firmware_version_from_name(const char *name, char *out, size_t cap)
{
	const char *p = strstr(name, ".sbin.");
	size_t len;

	if (p == NULL)
		return false;
	p += strlen(".sbin.");
	len = strlen(p);
	/* drop a compression suffix */
	if (len > 4 && strcmp(p + len - 4, ".zst") == 0)
		len -= 4;
	else if (len > 3 && strcmp(p + len - 3, ".xz") == 0)
		len -= 3;
	if (!valid_version(p, len))
		return false;
	return lemon_str_copy_n(out, cap, p, len);
}

bool detect_firmware_version_from_blob(const char *buf, size_t len, char *out,
				       size_t cap)
{
	static const char tag[] = "Release ";
	size_t i;

	for (i = 0; i + sizeof(tag) - 1 < len; i++) {
		size_t start, end;

		if (memcmp(buf + i, tag, sizeof(tag) - 1) != 0)
			continue;
		start = i + sizeof(tag) - 1;
		end = start;
		while (end < len && end - start < 32 &&
		       is_version_char(buf[end]))
			end++;
		while (end > start && buf[end - 1] == '.')
			end--;
		if (valid_version(buf + start, end - start))
			return lemon_str_copy_n(out, cap, buf + start,
						end - start);
	}
	return false;
}

int detect_firmware_find(const struct lemon_root *root, const char *dir,
			 const char *name, struct detect_firmware *out,
			 struct lemon_err *err)
{
	static const char *const suffixes[] = { "", ".zst", ".xz" };
	char rel[256];
	size_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(rel, sizeof(rel), "%s/%s%s", dir, name, suffixes[i]);
		if (detect_root_exists(root, DETECT_BASE_FIRMWARE, rel))
			break;
	}
	if (i == sizeof(suffixes) / sizeof(suffixes[0]))
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "no firmware %s/%s", dir, name);
	lemon_str_copy(out->file, sizeof(out->file), rel);
	out->compressed = i > 0;
	if (detect_root_link_name(root, DETECT_BASE_FIRMWARE, rel, out->target,
				  sizeof(out->target), NULL) == 0)
		detect_firmware_version_from_name(out->target, out->version,
						  sizeof(out->version));
	if (out->version[0] == '\0' && !out->compressed) {
		size_t cap = 4u << 20, len;
		char *buf = malloc(cap);

		if (buf != NULL &&
		    detect_root_read(root, DETECT_BASE_FIRMWARE, rel, buf, cap,
				     &len, NULL) == 0)
			detect_firmware_version_from_blob(buf, len, out->version,
							  sizeof(out->version));
		free(buf);
	}
	return 0;
}
