/* test helper: runs detection over a sysroot tree (include after cmocka.h
 * and detect/detect.h) */
#ifndef LEMON_TEST_RUN_TREE_H
#define LEMON_TEST_RUN_TREE_H

#include <string.h>

/* the error code a probe recorded, -1 when it recorded none */
static inline int probe_error(const struct detect_report *r, const char *probe)
{
	int i;

	for (i = 0; i < r->n_probe_errors; i++)
		if (strcmp(r->probe_errors[i].probe, probe) == 0)
			return (int)r->probe_errors[i].err.code;
	return -1;
}

/* detection without Vulkan over dir; asserts that it ran */
static inline void run_tree(const char *dir, struct detect_report *r)
{
	struct detect_options opts = { .vulkan = false };
	struct lemon_err err = { 0 };
	struct lemon_root *root;

	assert_int_equal(detect_root_new(dir, &root, &err), 0);
	assert_int_equal(detect_run(root, &opts, r, &err), 0);
	detect_root_free(root);
}

#endif
