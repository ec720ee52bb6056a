/* detect/cuda.c, detect/kmod.c and detect/nodes.c for NVIDIA: the PCI bus
 * id parser (cuDeviceGetPCIBusId's text), and recorded trees: the nvidia
 * module's version, nvidia_uvm and nouveau, the driver's device nodes and
 * their access, a recording without node data, and the CUDA probe being
 * skipped under a sysroot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "detect/detect.h"
#include "tree.h"

static void test_bus_id(void **state)
{
	struct lemon_err err = {0};
	char bdf[16];

	(void)state;
	/* the driver's form: 8-digit domain, upper-case hex */
	assert_int_equal(detect_cuda_parse_bus_id("00000000:0A:00.0", 16, bdf,
						  sizeof(bdf), &err),
			 0);
	assert_string_equal(bdf, "0000:0a:00.0");
	assert_int_equal(detect_cuda_parse_bus_id("0001:c1:1f.7", 12, bdf,
						  sizeof(bdf), &err),
			 0);
	assert_string_equal(bdf, "0001:c1:1f.7");
	/* a length shorter than the text: only that much is read */
	assert_int_equal(detect_cuda_parse_bus_id("0000:01:00.0trailing", 12,
						  bdf, sizeof(bdf), &err),
			 0);
	assert_string_equal(bdf, "0000:01:00.0");
	assert_int_equal(detect_cuda_parse_bus_id("0000:01:00", 10, bdf,
						  sizeof(bdf), &err),
			 -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA);
	lemon_err_clear(&err);
	assert_int_equal(detect_cuda_parse_bus_id("0000:01:20.0", 12, bdf,
						  sizeof(bdf), &err),
			 -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA); /* device > 31 */
	lemon_err_clear(&err);
	assert_int_equal(detect_cuda_parse_bus_id("0000:100:00.0", 13, bdf,
						  sizeof(bdf), &err),
			 -1);
	assert_int_equal(err.code, LEMON_ERR_INVALID_DATA); /* bus > 0xff */
	lemon_err_clear(&err);
	assert_int_equal(
		detect_cuda_parse_bus_id(":01:00.0", 8, bdf, sizeof(bdf), &err),
		-1);
	lemon_err_clear(&err);
	assert_int_equal(detect_cuda_parse_bus_id("0000:01:00.8", 12, bdf,
						  sizeof(bdf), &err),
			 -1);
	lemon_err_clear(&err);
	assert_int_equal(
		detect_cuda_parse_bus_id("", 0, bdf, sizeof(bdf), &err), -1);
	lemon_err_clear(&err);
	assert_int_equal(
		detect_cuda_parse_bus_id("0000:01:00.0", 12, bdf, 8, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_TOO_LARGE);
}

/* one NVIDIA GPU at 0000:01:00.0 bound to drv */
static void write_gpu(const char *dir, const char *drv)
{
	const char *dev = "sys/devices/pci0000:00/0000:01:00.0";
	char rel[160], target[160];

	snprintf(rel, sizeof(rel), "%s/vendor", dev);
	tree_write(dir, rel, "0x10de\n");
	snprintf(rel, sizeof(rel), "%s/device", dev);
	tree_write(dir, rel, "0x2684\n");
	snprintf(rel, sizeof(rel), "%s/class", dev);
	tree_write(dir, rel, "0x030000\n");
	snprintf(rel, sizeof(rel), "%s/revision", dev);
	tree_write(dir, rel, "0xa1\n");
	snprintf(rel, sizeof(rel), "sys/bus/pci/drivers/%s/new_id", drv);
	tree_write(dir, rel, "");
	snprintf(rel, sizeof(rel), "%s/driver", dev);
	snprintf(target, sizeof(target), "../../../bus/pci/drivers/%s", drv);
	tree_link(dir, rel, target);
	tree_link(dir, "sys/bus/pci/devices/0000:01:00.0",
		  "../../../devices/pci0000:00/0000:01:00.0");
	tree_write(dir, "etc/group", "root:x:0:\nvideo:x:44:\n");
	tree_write(dir, "proc/self/status",
		   "Uid:\t1000\t1000\t1000\t1000\nGid:"
		   "\t1000\t1000\t1000\t1000\nGroups:\t1000\n");
}

static void run(const char *dir, struct detect_report *rep)
{
	struct detect_options opts = {.vulkan = false};
	struct lemon_err err = {0};
	struct lemon_root *root;

	assert_int_equal(detect_root_new(dir, &root, &err), 0);
	assert_int_equal(detect_run(root, &opts, rep, &err), 0);
	detect_root_free(root);
}

static void test_driver_tree(void **state)
{
	struct detect_report *rep = calloc(1, sizeof(*rep));
	const struct detect_node *n;
	char dir[64];

	(void)state;
	tree_new(dir);
	write_gpu(dir, "nvidia");
	tree_write(dir, "sys/module/nvidia/initstate", "live\n");
	tree_write(dir, "sys/module/nvidia/version", "580.95.05\n");
	tree_write(dir, "sys/module/nvidia_uvm/initstate", "live\n");
	tree_write(dir, "dev/nvidiactl", "");
	tree_write(dir, "dev/nvidia0", "");
	tree_write(dir, "dev/nvidia-uvm", "");
	tree_write(dir, "dev/nvidia-uvm-tools", "");
	/* nvidia0 closed to others, as with NVreg_DeviceFileMode=0660 */
	tree_write(
		dir, "dev/.lemon-stat",
		"/dev/nvidiactl 666 0 0\n/dev/nvidia0 660 0 44\n/dev/nvidia-uvm "
		"666 0 0\n");
	run(dir, rep);
	assert_int_equal(rep->n_gpus, 1);
	assert_string_equal(rep->gpus[0].pci.driver, "nvidia");
	assert_int_equal(rep->gpus[0].cuda_index, -1);
	assert_false(rep->gpus[0].has_vram);
	assert_true(rep->kmod_nvidia.loaded);
	assert_string_equal(rep->kmod_nvidia.version, "580.95.05");
	assert_true(rep->kmod_nvidia_uvm.loaded);
	assert_false(rep->kmod_nouveau.loaded);
	assert_false(rep->cuda.probed);
	assert_string_equal(rep->cuda.skipped_why, "sysroot");
	assert_true(rep->nodes_recorded);
	n = detect_find_node(rep, "nvidiactl");
	assert_non_null(n);
	assert_true(n->exists && n->readable && n->writable);
	n = detect_find_node(rep, "nvidia-uvm");
	assert_non_null(n);
	assert_true(n->exists && n->readable && n->writable);
	n = detect_find_node(rep, "nvidia0");
	assert_non_null(n);
	assert_true(n->exists);
	assert_false(n->readable);
	assert_string_equal(n->group, "video");
	/* only nvidia<digits> are GPU nodes */
	assert_null(detect_find_node(rep, "nvidia-uvm-tools"));
	detect_report_free(rep);
	tree_remove(dir);
	free(rep);
}

static void test_nouveau_tree(void **state)
{
	struct detect_report *rep = calloc(1, sizeof(*rep));
	const struct detect_node *n;
	char dir[64];

	(void)state;
	tree_new(dir);
	write_gpu(dir, "nouveau");
	tree_write(dir, "sys/module/nouveau/initstate", "live\n");
	tree_write(dir, "dev/.lemon-stat", "");
	run(dir, rep);
	assert_string_equal(rep->gpus[0].pci.driver, "nouveau");
	assert_true(rep->kmod_nouveau.loaded);
	assert_false(rep->kmod_nvidia.loaded);
	assert_string_equal(rep->kmod_nvidia.version, "");
	/* the NVIDIA driver is not bound and left no control node: its nodes
	 * are not checked at all */
	assert_null(detect_find_node(rep, "nvidiactl"));
	detect_report_free(rep);
	tree_remove(dir);

	/* bound to nvidia, nodes not recorded (no dev/.lemon-stat): the
	 * nodes are checked, and the report says they were not recorded */
	tree_new(dir);
	write_gpu(dir, "nvidia");
	memset(rep, 0, sizeof(*rep));
	run(dir, rep);
	assert_false(rep->nodes_recorded);
	n = detect_find_node(rep, "nvidia-uvm");
	assert_non_null(n);
	assert_false(n->exists);
	detect_report_free(rep);
	tree_remove(dir);
	free(rep);
}

/* a worker's --device names its share of the GPUs: the free memory of
 * those CUDA ordinals, not of the first GPU */
static void test_cuda_free_of(void **state)
{
	struct detect_cuda cu = { .n_devices = 2 };
	uint64_t n = 0;

	(void)state;
	cu.devices[0].has_free = true;
	cu.devices[0].free_bytes = 100;
	cu.devices[1].has_free = true;
	cu.devices[1].free_bytes = 7;
	assert_int_equal(detect_cuda_free_of(&cu, "CUDA1", &n), 0);
	assert_int_equal(n, 7);
	assert_int_equal(detect_cuda_free_of(&cu, "CUDA0,CUDA1", &n), 0);
	assert_int_equal(n, 107);
	n = 0;
	assert_int_equal(detect_cuda_free_of(&cu, "CUDA2", &n), -1);
	assert_int_equal(detect_cuda_free_of(&cu, "Vulkan0", &n), -1);
	assert_int_equal(detect_cuda_free_of(&cu, "CUDA", &n), -1);
	assert_int_equal(detect_cuda_free_of(&cu, "CUDA0,", &n), 0);
	assert_int_equal(detect_cuda_free_of(&cu, "CUDA-1", &n), -1);
	assert_int_equal(detect_cuda_free_of(&cu, "CUDA99999999999999999999", &n), -1);
	cu.devices[1].has_free = false;
	assert_int_equal(detect_cuda_free_of(&cu, "CUDA1", &n), -1);
	assert_int_equal(n, 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bus_id),
		cmocka_unit_test(test_cuda_free_of),
		cmocka_unit_test(test_driver_tree),
		cmocka_unit_test(test_nouveau_tree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
