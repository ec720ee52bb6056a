/* shared by the files of doctor/ only */
#ifndef LEMON_DOCTOR_PRIVATE_H
#define LEMON_DOCTOR_PRIVATE_H

#include "doctor/doctor.h"

/* one check family: inspects the result and appends zero or more checks */
struct doctor_checker {
	const char *name;
	void (*run)(struct doctor_result *res);
};

/* appends a check; silently drops it when the table is full */
struct doctor_check *doctor_add(struct doctor_result *res, const char *section,
				const char *id, enum doctor_status status,
				const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

void doctor_check_system(struct doctor_result *res); /* checks_system.c */
void doctor_check_gpu(struct doctor_result *res);    /* checks_gpu.c */
void doctor_check_npu(struct doctor_result *res);    /* checks_npu.c */
void doctor_check_nvidia(struct doctor_result *res); /* checks_nvidia.c */

/* one check for a device node's access (id, e.g. "kfd-access"); returns
 * true when the user can open it (checks_gpu.c) */
bool doctor_check_node(struct doctor_result *res, const char *section,
		       const char *id, const char *rel);
void doctor_check_vulkan(struct doctor_result *res); /* checks_system.c */
void doctor_check_backend(struct doctor_result *res); /* checks_gpu.c */

/* human-readable byte count, "16.0 GiB" */
void doctor_format_bytes(uint64_t bytes, char *out, size_t cap);

#endif
