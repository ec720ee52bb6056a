/* `lemon doctor` and `lemon system-info` */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "doctor/doctor.h"

struct doctor_args {
	bool json;
	bool vulkan;
	bool no_cuda;
	const char *sysroot;
	const char *compat_dir;
};

static void doctor_usage(FILE *out, const char *cmd)
{
	fprintf(out,
		"usage: lemon %s [--json] [--no-vulkan] [--no-cuda] [--sysroot DIR] [--compat-dir DIR]\n"
		"  --json          print the machine-readable report (schema 1)\n"
		"  --no-vulkan     skip the Vulkan probe\n"
		"  --no-cuda       skip the CUDA driver probe (libcuda.so.1)\n"
		"  --sysroot DIR   read every machine file from DIR (also LEMON_SYSROOT)\n"
		"  --compat-dir DIR  read the compatibility data from DIR (also LEMON_COMPAT_DIR)\n"
		"exit status: 0 the recommended path is fully usable, 1 problems degrade it, 2 usage error\n",
		cmd);
}

/* returns -1 and prints usage on a bad argument, 1 for --help */
static int parse_args(int argc, char **argv, struct doctor_args *a)
{
	int i;

	a->vulkan = true;
	a->sysroot = getenv("LEMON_SYSROOT");
	a->compat_dir = NULL;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			a->json = true;
		} else if (strcmp(argv[i], "--no-vulkan") == 0) {
			a->vulkan = false;
		} else if (strcmp(argv[i], "--no-cuda") == 0) {
			a->no_cuda = true;
		} else if (strcmp(argv[i], "--sysroot") == 0 && i + 1 < argc) {
			a->sysroot = argv[++i];
		} else if (strncmp(argv[i], "--sysroot=", 10) == 0) {
			a->sysroot = argv[i] + 10;
		} else if (strcmp(argv[i], "--compat-dir") == 0 && i + 1 < argc) {
			a->compat_dir = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0 ||
			   strcmp(argv[i], "-h") == 0) {
			doctor_usage(stdout, argv[0]);
			return 1;
		} else {
			fprintf(stderr, "lemon %s: unknown or incomplete option '%s'\n",
				argv[0], argv[i]);
			doctor_usage(stderr, argv[0]);
			return -1;
		}
	}
	return 0;
}

static int run_doctor(const struct doctor_args *a, bool always_zero)
{
	struct detect_options opts = { .vulkan = a->vulkan,
					.no_cuda = a->no_cuda };
	char flm[4096];
	struct lemon_err err = { 0 };
	struct lemon_root *root = NULL;
	struct doctor_result *res;
	int rc;

	opts.flm_installed = cli_flm_installed(NULL, flm, sizeof(flm));
	res = calloc(1, sizeof(*res));
	if (res == NULL) {
		fprintf(stderr, "lemon: out of memory\n");
		return CLI_EXIT_DEGRADED;
	}
	if (detect_root_new(a->sysroot, &root, &err) < 0 ||
	    doctor_run_detect_first(root, a->compat_dir, &opts, res, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (a->json) {
		char *s = doctor_to_json(res, true);

		if (s == NULL) {
			fprintf(stderr, "lemon: out of memory\n");
			rc = CLI_EXIT_DEGRADED;
			doctor_result_free(res);
			goto out;
		}
		printf("%s\n", s);
		free(s);
	} else {
		doctor_print_text(res, stdout, isatty(STDOUT_FILENO) &&
						       getenv("NO_COLOR") == NULL);
	}
	rc = !always_zero && doctor_degraded(res) ? CLI_EXIT_DEGRADED : CLI_EXIT_OK;
	doctor_result_free(res);
out:
	free(res);
	detect_root_free(root);
	return rc;
}

int cli_cmd_doctor(int argc, char **argv)
{
	struct doctor_args a = { 0 };
	int p = parse_args(argc, argv, &a);

	if (p != 0)
		return p > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	return run_doctor(&a, false);
}

int cli_cmd_system_info(int argc, char **argv)
{
	struct doctor_args a = { 0 };
	int p = parse_args(argc, argv, &a);

	if (p != 0)
		return p > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	a.json = true;
	return run_doctor(&a, true);
}
