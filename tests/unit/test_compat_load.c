/* Unit tests of compat/load.c and compat/load-npu.c: every shipped compat
 * file loads, and crafted bad files (written into a mkdtemp copy of the
 * data directory) fail with INVALID_DATA naming the file and the entry. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "compat/compat.h"
#include "tree.h"

static const char *const shipped[] = {
	"gpus.json", "gpus-local.json", "gc-ip.json", "rocm.json",
	"npus.json", "kmsg.json", "kmsg-local.json", "nvidia.json",
	"flm.json",
};

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* a temporary copy of the shipped data directory */
static int setup(void **state)
{
	char tmpl[] = "/tmp/lemon-compat-XXXXXX", path[1024];
	char *dir = mkdtemp(tmpl), *text;
	size_t i;

	assert_non_null(dir);
	dir = strdup(dir);
	for (i = 0; i < sizeof(shipped) / sizeof(shipped[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", LEMON_DATADIR, shipped[i]);
		text = slurp(path);
		tree_write(dir, shipped[i], text);
		free(text);
	}
	*state = dir;
	return 0;
}

static int teardown(void **state)
{
	char path[1024];
	size_t i;

	for (i = 0; i < sizeof(shipped) / sizeof(shipped[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", (char *)*state, shipped[i]);
		unlink(path);
	}
	rmdir(*state);
	free(*state);
	return 0;
}

/* loads dir and expects failure with code, the message naming all of
 * the given fragments */
static void expect_fail(const char *dir, enum lemon_err_code code,
			const char *frag1, const char *frag2)
{
	struct lemon_err err = { 0 };
	struct compat_db *db = NULL;

	assert_int_equal(compat_db_load(dir, &db, &err), -1);
	assert_null(db);
	assert_int_equal(err.code, code);
	if (frag1 && !strstr(err.msg, frag1))
		fail_msg("'%s' not in '%s'", frag1, err.msg);
	if (frag2 && !strstr(err.msg, frag2))
		fail_msg("'%s' not in '%s'", frag2, err.msg);
}

#define GPU_OK                                                                 \
	"{\"gfx\": \"gfx1030\", \"family\": \"RDNA2\", \"kind\": \"dgpu\", "   \
	"\"confidence\": \"medium\", \"source\": \"test\"}"

static void put_local(const char *dir, const char *gpus)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "{\"schema\": 1, \"about\": \"test\", \"gpus\": {%s}}", gpus);
	tree_write(dir, "gpus-local.json", text);
}

static void test_shipped_files_load(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_db *db = NULL;
	struct compat_gpu_entry e;
	char gfx[16];

	(void)state;
	assert_int_equal(compat_db_load(LEMON_DATADIR, &db, &err), 0);
	assert_non_null(db);
	/* one entry from each file answers */
	assert_int_equal(compat_gpu_lookup(db, 0x1586, 0xc1, &e, &err), 0);
	assert_int_equal(compat_gpu_lookup(db, 0x73a8, 0x00, &e, &err), 0);
	assert_string_equal(e.gfx, "gfx1030");
	assert_int_equal(compat_gfx_from_gc_ip(db, "12.0.1", gfx, sizeof(gfx),
					       &err), 0);
	assert_string_equal(gfx, "gfx1201");
	compat_db_free(db);
}

static void test_copy_loads_and_env_dir(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_db *db = NULL;

	assert_int_equal(compat_db_load(*state, &db, &err), 0);
	compat_db_free(db);
	/* NULL dir takes LEMON_COMPAT_DIR: a broken copy there must fail */
	put_local(*state, "\"1002:73a8\": {\"bogus\": 1}");
	setenv("LEMON_COMPAT_DIR", *state, 1);
	expect_fail(NULL, LEMON_ERR_INVALID_DATA, *state, "bogus");
	/* an explicit directory wins over the environment */
	db = NULL;
	assert_int_equal(compat_db_load(LEMON_DATADIR, &db, &err), 0);
	compat_db_free(db);
	unsetenv("LEMON_COMPAT_DIR");
}

static void test_unknown_key(void **state)
{
	put_local(*state, "\"1002:73a8\": {\"gfx\": \"gfx1030\", \"family\": "
			  "\"RDNA2\", \"kind\": \"dgpu\", \"confidence\": "
			  "\"medium\", \"source\": \"t\", \"gfxx\": \"x\"}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA,
		    "gpus-local.json: entry '1002:73a8'", "unknown key 'gfxx'");
}

static void test_duplicate_ids(void **state)
{
	/* repeats an id of the generated gpus.json */
	put_local(*state, "\"1002:73a0\": " GPU_OK);
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry '1002:73a0'",
		    "duplicate id");
	/* the same key twice in one object */
	put_local(*state, "\"1002:7fff\": " GPU_OK ", \"1002:7fff\": " GPU_OK);
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "gpus-local.json",
		    "duplicate");
}

static void test_malformed_ids_and_values(void **state)
{
	put_local(*state, "\"1002:73A8\": " GPU_OK);
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry '1002:73A8'",
		    "malformed id");
	put_local(*state, "\"1002:73a8:1\": " GPU_OK);
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry '1002:73a8:1'",
		    "malformed id");
	put_local(*state, "\"1002:73a8\": {\"gfx\": \"gfx10x0\", \"family\": "
			  "\"RDNA2\", \"kind\": \"dgpu\", \"confidence\": "
			  "\"medium\", \"source\": \"t\"}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry '1002:73a8'",
		    "malformed gfx");
	put_local(*state, "\"1002:73a8\": {\"gfx\": \"gfx1030\", \"family\": "
			  "\"RDNA2\", \"kind\": \"cpu\", \"confidence\": "
			  "\"medium\", \"source\": \"t\"}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry '1002:73a8'",
		    "'kind' has unknown value 'cpu'");
	put_local(*state, "\"1002:73a8\": {\"gfx\": 1030, \"family\": "
			  "\"RDNA2\", \"kind\": \"dgpu\", \"confidence\": "
			  "\"medium\", \"source\": \"t\"}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry '1002:73a8'",
		    "'gfx' must be a string");
	put_local(*state, "\"1002:73a8\": {\"gfx\": \"gfx1030\", \"family\": "
			  "\"RDNA2\", \"kind\": \"dgpu\", \"confidence\": "
			  "\"medium\"}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry '1002:73a8'",
		    "missing key 'source'");
	put_local(*state, "\"1002:73a8\": {\"gfx\": \"gfx1030\", \"family\": "
			  "\"RDNA2\", \"kind\": \"dgpu\", \"confidence\": "
			  "\"medium\", \"source\": \"t\", \"names\": {\"C1\": \"x\"}}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry '1002:73a8'",
		    "malformed revision 'C1'");
}

static void test_file_level_errors(void **state)
{
	char path[1024];

	tree_write(*state, "gpus-local.json", "{\"schema\": 1, \"about\": ");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "gpus-local.json",
		    "invalid JSON");
	tree_write(*state, "gpus-local.json",
		   "{\"schema\": 2, \"about\": \"t\", \"gpus\": {}}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "gpus-local.json",
		    "unsupported schema 2");
	tree_write(*state, "gpus-local.json",
		   "{\"schema\": 1, \"about\": \"t\", \"gpus\": {}, \"x\": 1}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "gpus-local.json",
		    "unknown key 'x'");
	tree_write(*state, "gpus-local.json", "{\"schema\": 1, \"about\": \"t\"}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "gpus-local.json",
		    "missing key 'gpus'");
	snprintf(path, sizeof(path), "%s/gpus-local.json", (char *)*state);
	unlink(path);
	expect_fail(*state, LEMON_ERR_NOT_FOUND, "gpus-local.json", NULL);
}

static void test_gc_and_rocm_errors(void **state)
{
	tree_write(*state, "gc-ip.json",
		   "{\"schema\": 1, \"about\": \"t\", \"gc_ip\": {\"11.5.1\": "
		   "{\"gfx\": \"gfx1150\", \"gfx_target_version\": 110501, "
		   "\"confidence\": \"high\", \"source\": \"t\"}}}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry '11.5.1'",
		    "disagrees with gfx_target_version 110501");
	tree_write(*state, "gc-ip.json",
		   "{\"schema\": 1, \"about\": \"t\", \"gc_ip\": {\"11.5\": "
		   "{\"gfx\": \"gfx1150\", \"gfx_target_version\": 110500, "
		   "\"confidence\": \"high\", \"source\": \"t\"}}}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry '11.5'",
		    "malformed GC IP");
	tree_write(*state, "gc-ip.json",
		   "{\"schema\": 1, \"about\": \"t\", \"gc_ip\": {}}");
	tree_write(*state, "rocm.json",
		   "{\"schema\": 1, \"about\": \"t\", \"targets\": {\"gfx1031\": "
		   "{\"family\": \"gfx103X\", \"prebuilt\": true, "
		   "\"hsa_override\": \"10.3\", \"override_family\": \"gfx103X\", "
		   "\"source\": \"t\"}}}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry 'gfx1031'",
		    "malformed hsa_override");
	tree_write(*state, "rocm.json",
		   "{\"schema\": 1, \"about\": \"t\", \"targets\": {\"gfx1031\": "
		   "{\"family\": \"gfx103X\", \"prebuilt\": \"yes\", "
		   "\"source\": \"t\"}}}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry 'gfx1031'",
		    "'prebuilt' must be true or false");
}

#define NPU_DEV                                                                \
	"\"devices\": {\"1022:17f0:10\": {\"generation\": \"npu4\", \"xdna\": " \
	"\"XDNA 2\", \"firmware_dir\": \"amdnpu/17f0_10\", \"fastflowlm\": "   \
	"true, \"confidence\": \"high\", \"source\": \"t\"}}"

static void put_npus(const char *dir, const char *devices, const char *rules,
		     const char *fwv)
{
	char text[4096];

	snprintf(text, sizeof(text),
		 "{\"schema\": 1, \"about\": \"t\", %s, \"driver_protocols\": {%s}, "
		 "\"firmware_names\": {}, \"firmware_versions\": {%s}, "
		 "\"iommu_rules\": {}}",
		 devices, rules, fwv);
	tree_write(dir, "npus.json", text);
}

static void test_npu_errors(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_db *db = NULL;

	put_npus(*state, NPU_DEV, "", "");
	assert_int_equal(compat_db_load(*state, &db, &err), 0);
	compat_db_free(db);

	/* an IOMMU rule names what happens without the IOMMU in the words
	 * lemon knows */
	tree_write(*state, "npus.json",
		   "{\"schema\": 1, \"about\": \"t\", " NPU_DEV
		   ", \"driver_protocols\": {}, \"firmware_names\": {}, "
		   "\"firmware_versions\": {}, \"iommu_rules\": {\"r\": "
		   "{\"driver\": \"in-tree\", \"kernel_min\": \"6.14\", "
		   "\"without_iommu\": \"works\", \"message\": \"m\", "
		   "\"fix\": \"f\", \"confidence\": \"low\", \"source\": \"s\"}}}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "npus.json: entry 'r'",
		    "without_iommu");

	/* a product name that does not fit is refused, never cut (one came
	 * out as "... Gorgon Point 1-3 on ") */
	{
		char dev[1024], name[300];

		memset(name, 'x', sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		snprintf(dev, sizeof(dev),
			 "\"devices\": {\"1022:17f0:10\": {\"generation\": "
			 "\"npu4\", \"xdna\": \"XDNA 2\", \"product\": \"%s\", "
			 "\"firmware_dir\": \"amdnpu/17f0_10\", \"fastflowlm\": "
			 "true, \"confidence\": \"high\", \"source\": \"t\"}}",
			 name);
		put_npus(*state, dev, "", "");
		expect_fail(*state, LEMON_ERR_INVALID_DATA,
			    "npus.json: entry '1022:17f0:10'",
			    "'product' longer than");
	}

	put_npus(*state, NPU_DEV,
		 "\"r\": {\"generation\": \"npu9\", \"driver\": \"in-tree\", "
		 "\"kernel_min\": \"6.14\", \"accepts\": [\"6.12\"], "
		 "\"confidence\": \"high\", \"source\": \"t\"}",
		 "");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "npus.json: entry 'r'",
		    "unknown generation 'npu9'");
	put_npus(*state, NPU_DEV,
		 "\"r\": {\"generation\": \"npu4\", \"driver\": \"out-of-tree\", "
		 "\"kernel_min\": \"6.14\", \"accepts\": [\"6.12\"], "
		 "\"confidence\": \"high\", \"source\": \"t\"}",
		 "");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry 'r'",
		    "out-of-tree rules take no kernel window");
	put_npus(*state, NPU_DEV,
		 "\"r\": {\"generation\": \"npu4\", \"driver\": \"in-tree\", "
		 "\"kernel_min\": \"6.14\", \"accepts\": [\"6\"], "
		 "\"confidence\": \"high\", \"source\": \"t\"}",
		 "");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry 'r'", "accepts");
	put_npus(*state,
		 "\"devices\": {\"1022:17f0:10\": {\"generation\": \"npu4\", "
		 "\"xdna\": \"XDNA 2\", \"firmware_dir\": \"amdnpu/17f0_10/\", "
		 "\"fastflowlm\": true, \"confidence\": \"high\", \"source\": \"t\"}}",
		 "", "");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry '1022:17f0:10'",
		    "malformed firmware_dir");
	put_npus(*state, NPU_DEV, "",
		 "\"amdnpu/17f0_10/1.0.63\": {\"protocol\": \"6\", "
		 "\"confidence\": \"high\", \"source\": \"t\"}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA,
		    "entry 'amdnpu/17f0_10/1.0.63'", "malformed key");
}

static void test_kmsg_errors(void **state)
{
	tree_write(*state, "kmsg-local.json",
		   "{\"schema\": 1, \"about\": \"t\", \"patterns\": {\"x-y\": "
		   "{\"match\": [\"major {maj}\"], \"meaning\": \"m\", "
		   "\"severity\": \"error\", \"confidence\": \"high\", "
		   "\"source\": \"t\"}}}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry 'x-y'",
		    "malformed template");
	tree_write(*state, "kmsg-local.json",
		   "{\"schema\": 1, \"about\": \"t\", \"patterns\": {\"npu-sva\": "
		   "{\"match\": [\"abc\"], \"meaning\": \"m\", "
		   "\"severity\": \"error\", \"confidence\": \"high\", "
		   "\"source\": \"t\"}}}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA,
		    "kmsg-local.json: entry 'npu-sva'", "duplicate id");
	tree_write(*state, "kmsg-local.json",
		   "{\"schema\": 1, \"about\": \"t\", \"patterns\": {\"x-y\": "
		   "{\"match\": [], \"meaning\": \"m\", "
		   "\"severity\": \"fatal\", \"confidence\": \"high\", "
		   "\"source\": \"t\"}}}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "entry 'x-y'",
		    "'severity' has unknown value 'fatal'");
}

/* only the topics the hardware needs are loaded; the others find nothing */
static void test_topics(void **state)
{
	struct detect_report *rep = calloc(1, sizeof(*rep));
	struct compat_gpu_entry g;
	struct compat_npu_entry n;
	struct lemon_err err = { 0 };
	struct compat_db *db;

	(void)state;
	assert_int_equal(compat_topics_for(rep), 0);
	rep->n_gpus = 1;
	rep->gpus[0].pci.vendor = 0x10de;
	assert_int_equal(compat_topics_for(rep), COMPAT_TOPIC_NVIDIA);
	rep->gpus[0].pci.vendor = 0x1002;
	assert_int_equal(compat_topics_for(rep), COMPAT_TOPIC_GPU);
	rep->n_npus = 1;
	assert_int_equal(compat_topics_for(rep), COMPAT_TOPIC_GPU | COMPAT_TOPIC_NPU);
	free(rep);

	assert_int_equal(compat_db_load_topics(NULL, COMPAT_TOPIC_NPU, &db, &err), 0);
	assert_int_equal(compat_npu_lookup(db, 0x1022, 0x17f0, 0x11, &n, &err), 0);
	assert_string_equal(n.generation, "npu5");
	assert_int_equal(compat_gpu_lookup(db, 0x1586, 0xc1, &g, &err), -1);
	assert_int_equal(err.code, LEMON_ERR_NOT_FOUND);
	compat_db_free(db);
	lemon_err_clear(&err);
	assert_int_equal(compat_db_load_topics(NULL, COMPAT_TOPIC_GPU, &db, &err), 0);
	assert_int_equal(compat_gpu_lookup(db, 0x1586, 0xc1, &g, &err), 0);
	assert_string_equal(g.gfx, "gfx1151");
	compat_db_free(db);
}

#define FLM_HEAD "{\"schema\": 1, \"about\": \"t\", \"runtimes\": "
#define FLM_KEYS                                                               \
	"\"version_source\": \"s\", \"generations_source\": \"s\", "         \
	"\"firmware_min\": \"1.1\", \"firmware_fix\": \"f\", "               \
	"\"kernel_min\": \"6.17\", \"source\": \"s\", \"install\": \"i\", "  \
	"\"install_source\": \"s\", \"memlock_fix\": \"m\", "            \
	"\"memlock_source\": \"s\", \"confidence\": \"high\""

/* flm.json (compat/flm.c) through the same checker */
static void test_flm_errors(void **state)
{
	struct lemon_err err = { 0 };
	struct compat_db *db = NULL;

	tree_write(*state, "flm.json",
		   FLM_HEAD "{\"fastflowlm\": {\"min_version\": \"0.9.44\", "
			    "\"generations\": [\"npu4\"], " FLM_KEYS "}}}");
	assert_int_equal(compat_db_load(*state, &db, &err), 0);
	compat_db_free(db);

	tree_write(*state, "flm.json",
		   FLM_HEAD "{\"fastflowlm\": {\"min_version\": \"0.9\", "
			    "\"generations\": [\"npu4\"], " FLM_KEYS "}}}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA,
		    "flm.json: entry 'fastflowlm'", "min_version");
	tree_write(*state, "flm.json",
		   FLM_HEAD "{\"fastflowlm\": {\"min_version\": \"0.9.44\", "
			    "\"generations\": [], " FLM_KEYS "}}}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "flm.json", "generations");
	tree_write(*state, "flm.json",
		   FLM_HEAD "{\"other\": {\"min_version\": \"0.9.44\", "
			    "\"generations\": [\"npu4\"], " FLM_KEYS "}}}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "flm.json: entry 'other'",
		    "unknown runtime");
	tree_write(*state, "flm.json",
		   FLM_HEAD "{\"fastflowlm\": {\"min_version\": \"0.9.44\", "
			    "\"generations\": [\"npu4\"], \"sha265\": \"x\", " FLM_KEYS
			    "}}}");
	expect_fail(*state, LEMON_ERR_INVALID_DATA, "flm.json", "sha265");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shipped_files_load),
		cmocka_unit_test(test_topics),
		cmocka_unit_test_setup_teardown(test_copy_loads_and_env_dir,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_ids, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_malformed_ids_and_values,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_level_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gc_and_rocm_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_npu_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kmsg_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_flm_errors, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
