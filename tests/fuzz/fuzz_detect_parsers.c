/* libFuzzer target for every detect text parser: the first byte picks the
 * parser, the rest is the file content. A crash, leak or sanitizer report is
 * a bug in a bounded parser. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "detect/detect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data + 1;
	size_t len = size > 0 ? size - 1 : 0;
	struct lemon_err err = { 0 };
	char out[128];

	if (size == 0)
		return 0;
	switch (data[0] % 11) {
	case 0: {
		struct detect_kfd_props p;

		detect_kfd_parse_props(buf, len, &p, &err);
		break;
	}
	case 1:
		detect_amdgpu_ids_lookup(buf, len, 0x1586, 0xc1, out, sizeof(out), &err);
		break;
	case 2: {
		struct detect_cpu cpu;
		bool hv;

		memset(&cpu, 0, sizeof(cpu));
		detect_cpuinfo_parse(buf, len, &cpu, &hv, &err);
		break;
	}
	case 3: {
		uint64_t total;

		detect_meminfo_parse(buf, len, &total, &err);
		break;
	}
	case 4: {
		struct detect_user u;

		memset(&u, 0, sizeof(u));
		detect_status_parse(buf, len, &u, &err);
		break;
	}
	case 5: {
		struct detect_user u;

		memset(&u, 0, sizeof(u));
		detect_limits_parse_memlock(buf, len, &u, &err);
		break;
	}
	case 6:
		detect_group_name(buf, len, 992, out, sizeof(out));
		break;
	case 7: {
		struct detect_iommu io;

		memset(&io, 0, sizeof(io));
		detect_cmdline_parse_iommu(buf, len, &io);
		break;
	}
	case 8:
		detect_firmware_version_from_blob(buf, len, out, sizeof(out));
		break;
	case 9:
		detect_kmsg_relevant(buf, len);
		break;
	case 10:
		detect_cuda_parse_bus_id(buf, len, out, sizeof(out), &err);
		break;
	}
	return 0;
}
