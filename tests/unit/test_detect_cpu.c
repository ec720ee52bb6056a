/* detect/cpu.c: /proc/cpuinfo and /proc/meminfo parsers and the cpu probe.
 *
 * Inputs are in the kernel's exact cpuinfo layout (tab before the colon,
 * one block per logical processor). The Ryzen AI Max+ 395 (Strix Halo,
 * Zen 5, family 26 model 112) and Xeon Platinum 8480+ (Sapphire Rapids)
 * blocks carry the flag lists those CPUs report in public linux-hardware.org
 * probes, shortened to the fields lemon reads plus their neighbours. The
 * live test reads this machine's own files and checks them against CPUID and
 * sysinfo(2), which are independent of the parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <cmocka.h>

#include "detect/detect.h"
#include "tree.h"
#include "run_tree.h"

static const char zen5_flags[] =
	"fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat "
	"pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb "
	"rdtscp lm constant_tsc rep_good amd_lbr_v2 nopl xtopology nonstop_tsc "
	"cpuid extd_apicid aperfmperf rapl pni pclmulqdq monitor ssse3 fma cx16 "
	"sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand lahf_lm "
	"cmp_legacy svm extapic cr8_legacy abm sse4a misalignsse 3dnowprefetch "
	"osvw ibs skinit wdt tce topoext perfctr_core perfctr_nb bpext "
	"perfctr_llc mwaitx cpb cat_l3 cdp_l3 hw_pstate ssbd mba perfmon_v2 "
	"ibrs ibpb stibp ibrs_enhanced vmmcall fsgsbase tsc_adjust bmi1 avx2 "
	"smep bmi2 erms invpcid cqm rdt_a avx512f avx512dq rdseed adx smap "
	"avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt "
	"xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc cqm_mbm_total "
	"cqm_mbm_local user_shstk avx_vnni avx512_bf16 clzero irperf "
	"xsaveerptr rdpru wbnoinvd cppc arat npt lbrv svm_lock nrip_save "
	"tsc_scale vmcb_clean flushbyasid decodeassists pausefilter "
	"pfthreshold v_vmsave_vmload vgif x2avic v_spec_ctrl vnmi avx512vbmi "
	"umip pku ospke avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni "
	"avx512_bitalg avx512_vpopcntdq rdpid bus_lock_detect movdiri "
	"movdir64b overflow_recov succor smca fsrm avx512_vp2intersect "
	"flush_l1d amd_lbr_pmc_freeze";

static const char spr_flags[] =
	"fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat "
	"pse36 clflush dts acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx "
	"pdpe1gb rdtscp lm constant_tsc art arch_perfmon pebs bts rep_good "
	"nopl xtopology nonstop_tsc cpuid aperfmperf tsc_known_freq pni "
	"pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 sdbg fma cx16 "
	"xtpr pdcm pcid dca sse4_1 sse4_2 x2apic movbe popcnt "
	"tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm abm "
	"3dnowprefetch cpuid_fault epb cat_l3 cat_l2 cdp_l3 invpcid_single "
	"intel_ppin cdp_l2 ssbd mba ibrs ibpb stibp ibrs_enhanced tpr_shadow "
	"flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 avx2 smep bmi2 "
	"erms invpcid cqm rdt_a avx512f avx512dq rdseed adx smap avx512ifma "
	"clflushopt clwb intel_pt avx512cd sha_ni avx512bw avx512vl xsaveopt "
	"xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc cqm_mbm_total "
	"cqm_mbm_local split_lock_detect avx_vnni avx512_bf16 wbnoinvd dtherm "
	"ida arat pln pts hfi vnmi avx512vbmi umip pku ospke waitpkg "
	"avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg tme "
	"avx512_vpopcntdq la57 rdpid bus_lock_detect cldemote movdiri "
	"movdir64b enqcmd fsrm md_clear serialize tsxldtrk pconfig arch_lbr "
	"ibt amx_bf16 avx512_fp16 amx_tile amx_int8 flush_l1d "
	"arch_capabilities";

/* n blocks in the kernel's layout; the caller frees the result */
static char *cpuinfo_blocks(int n, const char *vendor, int family, int model,
			    const char *name, const char *flags, int cores)
{
	size_t cap = (size_t)n * 4096, len = 0;
	char *buf = malloc(cap);
	int i;

	assert_non_null(buf);
	for (i = 0; i < n; i++) {
		int w = snprintf(buf + len, cap - len,
			"processor\t: %d\n"
			"vendor_id\t: %s\n"
			"cpu family\t: %d\n"
			"model\t\t: %d\n"
			"model name\t: %s\n"
			"stepping\t: 0\n"
			"cpu MHz\t\t: 2994.000\n"
			"cache size\t: 1024 KB\n"
			"physical id\t: 0\n"
			"siblings\t: %d\n"
			"core id\t\t: %d\n"
			"cpu cores\t: %d\n"
			"apicid\t\t: %d\n"
			"fpu\t\t: yes\n"
			"fpu_exception\t: yes\n"
			"cpuid level\t: 16\n"
			"wp\t\t: yes\n"
			"flags\t\t: %s\n"
			"bugs\t\t: spectre_v1 spectre_v2 spec_store_bypass\n"
			"bogomips\t: 5988.98\n"
			"clflush size\t: 64\n"
			"cache_alignment\t: 64\n"
			"address sizes\t: 48 bits physical, 48 bits virtual\n"
			"power management: ts ttp tm hwpstate cpb eff_freq_ro\n"
			"\n",
			i, vendor, family, model, name, n, i % cores, cores, i,
			flags);
		assert_true(w > 0 && (size_t)w < cap - len);
		len += (size_t)w;
	}
	return buf;
}

static void assert_flags(const struct detect_cpu *cpu, const char *const *want,
			 int n)
{
	int i;

	assert_int_equal(cpu->n_flags, n);
	for (i = 0; i < n; i++)
		assert_string_equal(cpu->flags[i], want[i]);
}

static void test_strix_halo(void **state)
{
	static const char *const want[] = {
		"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
		"avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni",
	};
	struct lemon_err err = { 0 };
	struct detect_cpu cpu;
	bool hv = true;
	char *buf;

	(void)state;
	buf = cpuinfo_blocks(32, "AuthenticAMD", 26, 112,
			     "AMD RYZEN AI MAX+ 395 w/ Radeon 8060S",
			     zen5_flags, 16);
	assert_int_equal(detect_cpuinfo_parse(buf, strlen(buf), &cpu, &hv, &err), 0);
	assert_string_equal(cpu.model, "AMD RYZEN AI MAX+ 395 w/ Radeon 8060S");
	assert_string_equal(cpu.vendor, "AuthenticAMD");
	assert_true(cpu.has_cores);
	assert_int_equal(cpu.cores, 32);
	assert_false(hv);
	assert_flags(&cpu, want, 11);
	free(buf);
}

static void test_xeon_amx_order(void **state)
{
	/* the kernel prints amx_bf16 before amx_tile; lemon's order is fixed */
	static const char *const want[] = {
		"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
		"avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni",
		"amx_tile", "amx_bf16", "amx_int8",
	};
	struct lemon_err err = { 0 };
	struct detect_cpu cpu;
	bool hv = true;
	char *buf;

	(void)state;
	buf = cpuinfo_blocks(4, "GenuineIntel", 6, 143,
			     "Intel(R) Xeon(R) Platinum 8480+", spr_flags, 2);
	assert_int_equal(detect_cpuinfo_parse(buf, strlen(buf), &cpu, &hv, &err), 0);
	assert_string_equal(cpu.model, "Intel(R) Xeon(R) Platinum 8480+");
	assert_string_equal(cpu.vendor, "GenuineIntel");
	assert_int_equal(cpu.cores, 4);
	assert_false(hv);
	assert_flags(&cpu, want, 14);
	free(buf);
}

static void test_vm_hypervisor_and_exact_tokens(void **state)
{
	/* a VM's block; near-miss names must not count as wanted flags */
	static const char vm[] =
		"processor\t: 0\n"
		"vendor_id\t: AuthenticAMD\n"
		"model name\t: AMD EPYC\n"
		"flags\t\t: fpu sse2 avx512_fp16 avx2x xavx hypervisor pti        vmmcall avx2\n"
		"\n";
	static const char *const want[] = { "avx2" };
	struct lemon_err err = { 0 };
	struct detect_cpu cpu;
	bool hv = false;

	(void)state;
	assert_int_equal(detect_cpuinfo_parse(vm, sizeof(vm) - 1, &cpu, &hv, &err), 0);
	assert_true(hv);
	assert_int_equal(cpu.cores, 1);
	assert_flags(&cpu, want, 1);
	/* hypervisor may be NULL */
	assert_int_equal(detect_cpuinfo_parse(vm, sizeof(vm) - 1, &cpu, NULL, &err), 0);
}

static void test_arm_and_empty(void **state)
{
	/* arm64 cpuinfo has no model name, vendor_id or flags line */
	static const char arm[] =
		"processor\t: 0\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd evtstrm aes\n"
		"CPU implementer\t: 0x41\nCPU part\t: 0xd0c\n\n"
		"processor\t: 1\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd evtstrm aes\n\n";
	struct lemon_err err = { 0 };
	struct detect_cpu cpu;
	bool hv = true;

	(void)state;
	assert_int_equal(detect_cpuinfo_parse(arm, sizeof(arm) - 1, &cpu, &hv, &err), 0);
	assert_string_equal(cpu.model, "");
	assert_int_equal(cpu.cores, 2);
	assert_int_equal(cpu.n_flags, 0);
	assert_false(hv);
	assert_int_equal(detect_cpuinfo_parse("", 0, &cpu, &hv, &err), 0);
	assert_false(cpu.has_cores);
}

static void expect_cpuinfo_error(const char *text, enum lemon_err_code code)
{
	struct lemon_err err = { 0 };
	struct detect_cpu cpu;
	bool hv;

	assert_int_equal(detect_cpuinfo_parse(text, strlen(text), &cpu, &hv, &err), -1);
	assert_int_equal(err.code, code);
	assert_true(err.msg[0] != '\0');
}

static void test_cpuinfo_errors(void **state)
{
	char longname[300];

	(void)state;
	expect_cpuinfo_error("processor\t: zero\n", LEMON_ERR_INVALID_DATA);
	expect_cpuinfo_error("processor\t: \n", LEMON_ERR_INVALID_DATA);
	expect_cpuinfo_error("processor\t: 65536\n", LEMON_ERR_INVALID_DATA);
	expect_cpuinfo_error("processor\t: 123456789012345678901234567890123\n",
			     LEMON_ERR_INVALID_DATA);
	snprintf(longname, sizeof(longname), "model name\t: %0200d\n", 7);
	expect_cpuinfo_error(longname, LEMON_ERR_INVALID_DATA);
	expect_cpuinfo_error("vendor_id\t: AuthenticAMDAuthenticAMDAuthenticAMD\n",
			     LEMON_ERR_INVALID_DATA);
}

static void test_meminfo(void **state)
{
	static const char mi[] =
		"MemTotal:       24683620 kB\nMemFree:        23584816 kB\n";
	struct lemon_err err = { 0 };
	uint64_t total = 0;

	(void)state;
	assert_int_equal(detect_meminfo_parse(mi, sizeof(mi) - 1, &total, &err), 0);
	assert_true(total == 24683620ull * 1024);
	/* the bound itself (1 PiB) is accepted */
	assert_int_equal(detect_meminfo_parse("MemTotal: 1099511627776 kB", 26,
					      &total, &err), 0);
	assert_true(total == (1ull << 50));
}

static void expect_meminfo_error(const char *text, enum lemon_err_code code)
{
	struct lemon_err err = { 0 };
	uint64_t total = 77;

	assert_int_equal(detect_meminfo_parse(text, strlen(text), &total, &err), -1);
	assert_int_equal(err.code, code);
	assert_true(total == 77);
}

static void test_meminfo_errors(void **state)
{
	(void)state;
	expect_meminfo_error("MemFree: 1 kB\n", LEMON_ERR_INVALID_DATA);
	expect_meminfo_error("", LEMON_ERR_INVALID_DATA);
	expect_meminfo_error("MemTotal: 16 GB\n", LEMON_ERR_INVALID_DATA);
	expect_meminfo_error("MemTotal: kB\n", LEMON_ERR_INVALID_DATA);
	expect_meminfo_error("MemTotal: 12x4 kB\n", LEMON_ERR_INVALID_DATA);
	expect_meminfo_error("MemTotal: 1099511627777 kB\n", LEMON_ERR_INVALID_DATA);
	expect_meminfo_error("MemTotal: 99999999999999999999999999999999999 kB\n",
			     LEMON_ERR_INVALID_DATA);
}

static void test_probe_sysroot(void **state)
{
	static struct detect_report r;
	char dir[64];
	char *buf;

	(void)state;
	tree_new(dir);
	buf = cpuinfo_blocks(32, "AuthenticAMD", 26, 112,
			     "AMD RYZEN AI MAX+ 395 w/ Radeon 8060S",
			     zen5_flags, 16);
	tree_write(dir, "proc/cpuinfo", buf);
	free(buf);
	tree_write(dir, "proc/meminfo",
		   "MemTotal:       131072000 kB\nMemFree:         1000 kB\n");
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "cpu"), -1);
	assert_string_equal(r.cpu.model, "AMD RYZEN AI MAX+ 395 w/ Radeon 8060S");
	assert_int_equal(r.cpu.cores, 32);
	assert_int_equal(r.cpu.n_flags, 11);
	assert_false(r.host.hypervisor);
	assert_true(r.host.has_ram);
	assert_true(r.host.ram_bytes == 131072000ull * 1024);
	detect_report_free(&r);

	/* broken meminfo: the CPU facts survive, the error is recorded */
	tree_write(dir, "proc/meminfo", "MemTotal: lots kB\n");
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "cpu"), LEMON_ERR_INVALID_DATA);
	assert_int_equal(r.cpu.cores, 32);
	assert_false(r.host.has_ram);
	detect_report_free(&r);
	tree_remove(dir);
}

static void test_probe_missing_and_too_large(void **state)
{
	static struct detect_report r;
	size_t big = (1u << 20) + 10, i;
	char dir[64];
	char *buf;

	(void)state;
	tree_new(dir);
	tree_write(dir, "proc/cmdline", "ro quiet\n");
	/* missing files are unknown facts, not errors */
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "cpu"), -1);
	assert_false(r.cpu.has_cores);
	assert_string_equal(r.cpu.model, "");
	assert_false(r.host.has_ram);
	detect_report_free(&r);

	/* cpuinfo over the 1 MiB cap */
	buf = malloc(big + 1);
	assert_non_null(buf);
	for (i = 0; i < big; i++)
		buf[i] = (i % 64 == 63) ? '\n' : 'x';
	buf[big] = '\0';
	tree_write(dir, "proc/cpuinfo", buf);
	free(buf);
	tree_write(dir, "proc/meminfo", "MemTotal: 1024 kB\n");
	run_tree(dir, &r);
	assert_int_equal(probe_error(&r, "cpu"), LEMON_ERR_TOO_LARGE);
	assert_false(r.cpu.has_cores);
	assert_true(r.host.has_ram);
	assert_true(r.host.ram_bytes == 1024ull * 1024);
	detect_report_free(&r);
	tree_remove(dir);
}

static void test_probe_live(void **state)
{
	static struct detect_report r;
	struct sysinfo si;

	(void)state;
	run_tree(NULL, &r);
	assert_int_equal(probe_error(&r, "cpu"), -1);
	assert_true(r.cpu.has_cores);
	assert_int_equal(r.cpu.cores, (int)sysconf(_SC_NPROCESSORS_ONLN));
	assert_int_equal(sysinfo(&si), 0);
	assert_true(r.host.has_ram);
	assert_true(r.host.ram_bytes == (uint64_t)si.totalram * si.mem_unit);
#if defined(__x86_64__) || defined(__i386__)
	{
		/* CPUID answers independently of the kernel's text */
		unsigned a = 0, b = 0, c = 0, d = 0;
		bool seen_avx2 = false, seen_avx = false, seen_fma = false;
		int i;

		assert_true(__get_cpuid(1, &a, &b, &c, &d));
		assert_int_equal(r.host.hypervisor, (c >> 31) & 1);
		for (i = 0; i < r.cpu.n_flags; i++) {
			seen_avx2 |= strcmp(r.cpu.flags[i], "avx2") == 0;
			seen_avx |= strcmp(r.cpu.flags[i], "avx") == 0;
			seen_fma |= strcmp(r.cpu.flags[i], "fma") == 0;
		}
		__builtin_cpu_init();
		assert_int_equal(seen_avx2, __builtin_cpu_supports("avx2") != 0);
		assert_int_equal(seen_avx, __builtin_cpu_supports("avx") != 0);
		assert_int_equal(seen_fma, __builtin_cpu_supports("fma") != 0);
		assert_true(r.cpu.vendor[0] != '\0');
	}
#endif
	detect_report_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strix_halo),
		cmocka_unit_test(test_xeon_amx_order),
		cmocka_unit_test(test_vm_hypervisor_and_exact_tokens),
		cmocka_unit_test(test_arm_and_empty),
		cmocka_unit_test(test_cpuinfo_errors),
		cmocka_unit_test(test_meminfo),
		cmocka_unit_test(test_meminfo_errors),
		cmocka_unit_test(test_probe_sysroot),
		cmocka_unit_test(test_probe_missing_and_too_large),
		cmocka_unit_test(test_probe_live),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
