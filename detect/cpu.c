/* CPU and RAM facts: model, vendor, logical processors and the instruction
 * set flags that decide which llama.cpp CPU build runs fastest (AVX2,
 * AVX-512, AMX), plus MemTotal. Parsed from /proc/cpuinfo and /proc/meminfo
 * text so a recorded tree answers exactly as the live machine did. */
#include <stdlib.h>
#include <string.h>

#include "detect/detect-private.h"
#include "util/str.h"

/* reported in this order, whatever order the kernel prints them in */
static const char *const wanted_flags[] = {
	"sse4_2",      "avx",         "avx2",     "fma",      "f16c",
	"avx512f",     "avx512bw",    "avx512vl", "avx512_vnni",
	"avx512_bf16", "avx_vnni",    "amx_tile", "amx_bf16", "amx_int8",
};

#define N_WANTED (sizeof(wanted_flags) / sizeof(wanted_flags[0]))

/* a hypervisor-sized machine has at most a few thousand CPUs; the bound
 * only rejects garbage */
#define CPU_MAX_PROCESSORS 65536u
/* 1 PiB in kB: anything larger is a corrupt meminfo */
#define MEM_MAX_KB (1ull << 40)
#define CPUINFO_CAP (1u << 20)
#define MEMINFO_CAP 16384u

_Static_assert(N_WANTED <= DETECT_MAX_CPU_FLAGS, "flag table exceeds report");

static void scan_flags(const char *s, size_t len, bool found[N_WANTED],
		       bool *hypervisor)
{
	size_t i = 0;

	while (i < len) {
		size_t start, k;

		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		start = i;
		while (i < len && s[i] != ' ' && s[i] != '\t')
			i++;
		if (i == start)
			continue;
		if (lemon_slice_eq(s + start, i - start, "hypervisor"))
			*hypervisor = true;
		for (k = 0; k < N_WANTED; k++)
			if (lemon_slice_eq(s + start, i - start,
					   wanted_flags[k]))
				found[k] = true;
	}
}

/* copies a value that must fit: an over-long value means the text is not
 * what we think it is */
static int copy_value(char *dst, size_t cap, const char *key, const char *v,
		      size_t vlen, struct lemon_err *err)
{
	if (!lemon_str_copy_n(dst, cap, v, vlen))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "cpuinfo %s is %zu bytes, longer than %zu",
				     key, vlen, cap - 1);
	return 0;
}

int detect_cpuinfo_parse(const char *buf, size_t len, struct detect_cpu *out,
			 bool *hypervisor, struct lemon_err *err)
{
	bool found[N_WANTED] = { false };
	bool hv = false, have_flags = false;
	unsigned count = 0;
	const char *line, *key, *val;
	size_t pos = 0, line_len, key_len, val_len, k;

	memset(out, 0, sizeof(*out));
	while (lemon_next_line(buf, len, &pos, &line, &line_len)) {
		if (!lemon_split_kv(line, line_len, ':', &key, &key_len, &val,
				    &val_len))
			continue;
		if (lemon_slice_eq(key, key_len, "processor")) {
			uint64_t id;

			if (lemon_parse_u64(val, val_len, 10,
					    CPU_MAX_PROCESSORS - 1, &id,
					    err) < 0) {
				lemon_err_prefix(err, "cpuinfo processor");
				return -1;
			}
			if (++count > CPU_MAX_PROCESSORS)
				return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
						     "cpuinfo lists more than %u processors",
						     CPU_MAX_PROCESSORS);
		} else if (lemon_slice_eq(key, key_len, "model name")) {
			/* every processor block repeats it: the first wins */
			if (out->model[0] == '\0' &&
			    copy_value(out->model, sizeof(out->model),
				       "model name", val, val_len, err) < 0)
				return -1;
		} else if (lemon_slice_eq(key, key_len, "vendor_id")) {
			if (out->vendor[0] == '\0' &&
			    copy_value(out->vendor, sizeof(out->vendor),
				       "vendor_id", val, val_len, err) < 0)
				return -1;
		} else if (lemon_slice_eq(key, key_len, "flags") && !have_flags) {
			/* the kernel prints the same boot-CPU capabilities in
			 * every block, so the first line is enough */
			have_flags = true;
			scan_flags(val, val_len, found, &hv);
		}
	}
	if (count > 0) {
		out->has_cores = true;
		out->cores = (int)count;
	}
	for (k = 0; k < N_WANTED; k++)
		if (found[k])
			lemon_str_copy(out->flags[out->n_flags++],
				       sizeof(out->flags[0]), wanted_flags[k]);
	if (hypervisor != NULL)
		*hypervisor = hv;
	return 0;
}

int detect_meminfo_parse(const char *buf, size_t len, uint64_t *total,
			 struct lemon_err *err)
{
	const char *line, *key, *val;
	size_t pos = 0, line_len, key_len, val_len;

	while (lemon_next_line(buf, len, &pos, &line, &line_len)) {
		uint64_t kb;

		if (!lemon_split_kv(line, line_len, ':', &key, &key_len, &val,
				    &val_len) ||
		    !lemon_slice_eq(key, key_len, "MemTotal"))
			continue;
		/* the kernel always prints "<n> kB" */
		if (val_len < 3 || !lemon_slice_eq(val + val_len - 3, 3, " kB"))
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "meminfo MemTotal '%.*s' is not in kB",
					     (int)val_len, val);
		if (lemon_parse_u64(val, val_len - 3, 10, MEM_MAX_KB, &kb,
				    err) < 0) {
			lemon_err_prefix(err, "meminfo MemTotal");
			return -1;
		}
		*total = kb * 1024;
		return 0;
	}
	return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			     "meminfo has no MemTotal line");
}

int detect_cpu_probe(struct detect_ctx *ctx, struct lemon_err *err)
{
	struct detect_report *report = ctx->report;
	struct lemon_err e = { 0 };
	char membuf[MEMINFO_CAP];
	uint64_t total;
	size_t len;
	char *buf;
	int rc;

	buf = malloc(CPUINFO_CAP);
	if (buf == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	rc = detect_read_proc_optional(ctx->root, "cpuinfo", buf, CPUINFO_CAP, &len, &e);
	if (rc == 0 && detect_cpuinfo_parse(buf, len, &report->cpu,
					    &report->host.hypervisor, &e) < 0)
		rc = -1;
	free(buf);
	if (rc < 0) {
		memset(&report->cpu, 0, sizeof(report->cpu));
		report->host.hypervisor = false;
		*err = e;
	}

	/* RAM is independent of the CPU facts: still read it */
	e = (struct lemon_err){ 0 };
	rc = detect_read_proc_optional(ctx->root, "meminfo", membuf, sizeof(membuf), &len, &e);
	if (rc == 0 && detect_meminfo_parse(membuf, len, &total, &e) == 0) {
		report->host.has_ram = true;
		report->host.ram_bytes = total;
	} else if (rc != 1) {
		if (err->code == LEMON_OK)
			*err = e;
	}
	return err->code == LEMON_OK ? 0 : -1;
}
