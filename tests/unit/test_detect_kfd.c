/* detect/kfd.c: KFD topology properties parser and node matching.
 * The properties text is the format of a real gfx1151 node (Strix Halo,
 * kernel 6.14; key list of drivers/gpu/drm/amd/amdkfd/kfd_topology.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "detect/detect.h"
#include "tree.h"

static const char gpu_props[] =
	"cpu_cores_count 0\nsimd_count 80\nmem_banks_count 1\ncaches_count 140\n"
	"io_links_count 1\np2p_links_count 0\ncpu_core_id_base 0\nsimd_id_base 2147487744\n"
	"max_waves_per_simd 16\nlds_size_in_kb 64\ngds_size_in_kb 0\nnum_gws 64\n"
	"wave_front_size 32\narray_count 4\nsimd_arrays_per_engine 2\ncu_per_simd_array 10\n"
	"simd_per_cu 2\nmax_slots_scratch_cu 32\ngfx_target_version 110501\nvendor_id 4098\n"
	"device_id 5510\nlocation_id 50432\ndomain 0\ndrm_render_minor 128\n"
	"hive_id 0\nnum_sdma_engines 2\nnum_sdma_xgmi_engines 0\nnum_sdma_queues_per_engine 6\n"
	"num_cp_queues 8\nmax_engine_clk_fclk 2000\nmax_engine_clk_ccompute 5187\n"
	"local_mem_size 0\nfw_version 31\ncapability 1166713472\ndebug_prop 1495\n"
	"sdma_fw_version 14\nunique_id 0\nnum_xcc 1\nmax_engine_clk_ccompute 5187\n";

static void test_parse_gpu_node(void **state)
{
	struct detect_kfd_props p;
	struct lemon_err err = { 0 };

	(void)state;
	assert_int_equal(detect_kfd_parse_props(gpu_props, strlen(gpu_props), &p, &err), 0);
	assert_true(p.has_gfx_target_version);
	assert_int_equal(p.gfx_target_version, 110501);
	assert_true(p.has_location);
	assert_int_equal(p.location_id, 50432); /* 0xc500: bus c5, devfn 0 */
	assert_int_equal(p.vendor_id, 4098);
	assert_int_equal(p.device_id, 5510);
	assert_int_equal(p.simd_count, 80);
	/* this node text predates the CWSR fix */
	assert_false(p.has_cwsr_size);
	assert_false(p.has_ctl_stack_size);
}

static void test_parse_cwsr(void **state)
{
	const char fixed[] = "gfx_target_version 110501\nlocation_id 50432\n"
			     "cwsr_size 4231168\nctl_stack_size 20480\n";
	const char half[] = "gfx_target_version 110501\ncwsr_size 4231168\n";
	struct detect_kfd_props p;
	struct lemon_err err = { 0 };

	(void)state;
	assert_int_equal(detect_kfd_parse_props(fixed, strlen(fixed), &p, &err), 0);
	assert_true(p.has_cwsr_size);
	assert_true(p.has_ctl_stack_size);
	assert_int_equal(p.cwsr_size, 4231168);
	assert_int_equal(p.ctl_stack_size, 20480);
	assert_int_equal(detect_kfd_parse_props(half, strlen(half), &p, &err), 0);
	assert_true(p.has_cwsr_size);
	assert_false(p.has_ctl_stack_size);
}

static void test_parse_rejects_bad_number(void **state)
{
	const char bad[] = "gfx_target_version 11x501\n";
	const char huge[] = "location_id 99999999999\n";
	struct detect_kfd_props p;
	struct lemon_err err = { 0 };

	(void)state;
	assert_int_equal(detect_kfd_parse_props(bad, strlen(bad), &p, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	assert_non_null(strstr(err.msg, "gfx_target_version"));
	lemon_err_clear(&err);
	assert_int_equal(detect_kfd_parse_props(huge, strlen(huge), &p, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
}

static void test_probe_matches_gpu(void **state)
{
	struct detect_options opts = { .vulkan = false };
	struct lemon_err err = { 0 };
	struct detect_report *rep = calloc(1, sizeof(*rep));
	struct lemon_root *root;
	char dir[64];

	(void)state;
	tree_new(dir);
	tree_write(dir, "sys/bus/pci/devices/0000:c5:00.0/vendor", "0x1002\n");
	tree_write(dir, "sys/bus/pci/devices/0000:c5:00.0/device", "0x1586\n");
	tree_write(dir, "sys/bus/pci/devices/0000:c5:00.0/class", "0x030000\n");
	tree_write(dir, "sys/bus/pci/devices/0000:c5:00.0/revision", "0xc1\n");
	tree_write(dir, "sys/bus/pci/drivers/amdgpu/.keep", "");
	tree_link(dir, "sys/bus/pci/devices/0000:c5:00.0/driver", "../../drivers/amdgpu");
	tree_write(dir, "sys/class/kfd/kfd/topology/nodes/0/properties",
		   "cpu_cores_count 32\nsimd_count 0\ngfx_target_version 0\nlocation_id 0\ndomain 0\n");
	tree_write(dir, "sys/class/kfd/kfd/topology/nodes/1/properties", gpu_props);
	assert_int_equal(detect_root_new(dir, &root, &err), 0);
	assert_int_equal(detect_run(root, &opts, rep, &err), 0);
	assert_int_equal(rep->n_gpus, 1);
	assert_true(rep->kfd_present);
	assert_string_equal(rep->gpus[0].pci.bdf, "0000:c5:00.0");
	assert_string_equal(rep->gpus[0].pci.driver, "amdgpu");
	assert_true(rep->gpus[0].has_kfd);
	assert_int_equal(rep->gpus[0].kfd_gfx_target_version, 110501);
	assert_int_equal(rep->gpus[0].kfd_node, 1);
	detect_report_free(rep);
	detect_root_free(root);
	free(rep);
	tree_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_gpu_node),
		cmocka_unit_test(test_parse_cwsr),
		cmocka_unit_test(test_parse_rejects_bad_number),
		cmocka_unit_test(test_probe_matches_gpu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
