/* `lemon install-backend`, `lemon backends [rollback NAME]` and `lemon
 * uninstall-backend`: argument parsing, the walk over detection's
 * candidates for `auto` (taking the next one when a bundle is unavailable,
 * and saying why), the listing of installed (current and kept), pinned
 * and selected backends, and the return to the kept version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "doctor/doctor.h"
#include "provision/provision.h"
#include "util/str.h"

struct install_args {
	const char *name;
	const char *sysroot;
	const char *compat_dir;
	struct provision_opts opts;
};

static void install_usage(FILE *out)
{
	fprintf(out,
		"usage: lemon install-backend [auto|llamacpp:cpu|llamacpp:vulkan|llamacpp:rocm[:gfxNNNN]|\n"
		"         llamacpp:cuda[:sm_NN]|flm]\n"
		"         [--version V] [--mirror URL] [--force] [--insecure-skip-verify]\n"
		"         [--progress auto|bar|json|none] [--sysroot DIR] [--compat-dir DIR]\n"
		"  auto (default)  install the best backend detection recommends, falling back\n"
		"                  to the next candidate when a bundle is unavailable\n"
		"  flm             the FastFlowLM NPU runtime (serves recipe \"flm\" models)\n"
		"  --version V     install release V instead of the pinned one\n"
		"  --mirror URL    fetch <URL>/<asset> and check it against <URL>/manifest.json\n"
		"                  (also LEMON_MIRROR)\n"
		"  --force         reinstall even when installed and working\n"
		"  --insecure-skip-verify  install without a known SHA-256 (dangerous)\n");
}

static int parse_progress(const char *s, enum provision_progress *out)
{
	static const char *const names[] = { "auto", "bar", "json", "none" };
	int i;

	for (i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum provision_progress)i;
			return 0;
		}
	return -1;
}

/* returns 1 for --help, -1 on a usage error */
static int parse_install(int argc, char **argv, struct install_args *a)
{
	const char *env = getenv("LEMON_PROGRESS");
	bool named = false;
	int i;

	a->name = "auto";
	a->sysroot = getenv("LEMON_SYSROOT");
	a->opts.smoke = cli_backend_health;
	if (env && parse_progress(env, &a->opts.progress) < 0)
		a->opts.progress = PROVISION_PROGRESS_AUTO;
	for (i = 1; i < argc; i++) {
		const char *o = argv[i];
		bool more = i + 1 < argc;

		if (strcmp(o, "--version") == 0 && more)
			a->opts.version = argv[++i];
		else if (strcmp(o, "--mirror") == 0 && more)
			a->opts.mirror = argv[++i];
		else if (strcmp(o, "--force") == 0)
			a->opts.force = true;
		else if (strcmp(o, "--insecure-skip-verify") == 0)
			a->opts.insecure_skip_verify = true;
		else if (strcmp(o, "--progress") == 0 && more &&
			 parse_progress(argv[i + 1], &a->opts.progress) == 0)
			i++;
		else if (strcmp(o, "--sysroot") == 0 && more)
			a->sysroot = argv[++i];
		else if (strcmp(o, "--compat-dir") == 0 && more)
			a->compat_dir = argv[++i];
		else if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0)
			return 1;
		else if (o[0] != '-' && !named) {
			a->name = o;
			named = true;
		}
		else {
			fprintf(stderr, "lemon install-backend: unknown or incomplete option '%s'\n", o);
			return -1;
		}
	}
	return 0;
}

static void print_done(const struct provision_result *r)
{
	if (r->already)
		printf("%s %s is already installed in %s (--force reinstalls)\n",
		       r->name, r->version, r->dir);
	else
		printf("installed %s %s in %s\n", r->name, r->version, r->dir);
	printf("%s: %s\n", strcmp(r->name, "flm") == 0 ? "flm" : "llama-server",
	       r->exe);
	if (r->previous[0])
		printf("kept %s %s: 'lemon backends rollback %s' returns to it\n",
		       r->name, r->previous, r->name);
	if (r->removed[0])
		printf("removed %s %s (two versions are kept)\n", r->name,
		       r->removed);
}

static int detect_choice(const struct install_args *a, struct doctor_result *res,
			 struct compat_db **db, struct lemon_err *err)
{
	struct detect_options dopts = { .vulkan = true };
	struct lemon_root *root = NULL;
	int rc;

	if (detect_root_new(a->sysroot, &root, err) < 0)
		return -1;
	rc = compat_db_load(a->compat_dir, db, err);
	if (rc == 0)
		rc = doctor_run(root, *db, &dopts, res, err);
	detect_root_free(root);
	return rc;
}

/* walks the ordered candidates; only_kind "rocm" for "llamacpp:rocm",
 * "cuda" for "llamacpp:cuda", NULL for auto */
static int install_auto(const struct install_args *a,
			const struct compat_backends *bm, const char *only_kind,
			struct lemon_err *err)
{
	struct doctor_result *res = calloc(1, sizeof(*res));
	const struct compat_backend_asset *asset;
	struct provision_result r;
	struct compat_db *db = NULL;
	const struct compat_candidate *c;
	char label[48];
	int i, rc = -1;

	if (res == NULL)
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	if (detect_choice(a, res, &db, err) < 0)
		goto out;
	for (i = 0; i < res->choice.n; i++) {
		struct lemon_err e = { 0 };

		c = &res->choice.c[i];
		snprintf(label, sizeof(label), "%s%s%s", c->backend,
			 c->target[0] ? ":" : "", c->target);
		if (only_kind && strcmp(c->backend, only_kind) != 0)
			continue;
		if (!c->usable) {
			printf("skip %s: %s\n", label, c->reason);
			continue;
		}
		if (compat_backend_find(bm, c->backend, c->target, &asset, &e) < 0) {
			printf("skip %s: %s\n", label, e.msg);
			continue;
		}
		printf("trying %s (%s): %s\n", asset->name, label, c->reason);
		fflush(stdout);
		if (provision_install(asset, &a->opts, &r, &e) == 0) {
			print_done(&r);
			rc = 0;
			goto out;
		}
		if (!r.unavailable) {
			lemon_err_set(err, e.code, "%s", e.msg);
			goto out;
		}
		printf("skip %s: unavailable: %s\n", asset->name, e.msg);
	}
	lemon_err_set(err, LEMON_ERR_NOT_FOUND, "no %s%sbackend could be installed "
		      "(see the reasons above)",
		      only_kind ? (strcmp(only_kind, "cuda") == 0 ? "CUDA" : "ROCm") : "",
		      only_kind ? " " : "");
out:
	if (res->db != NULL)
		doctor_result_free(res);
	free(res);
	compat_db_free(db);
	return rc;
}

int cli_cmd_install_backend(int argc, char **argv)
{
	struct install_args a = { 0 };
	const struct compat_backend_asset *asset = NULL;
	struct compat_backends *bm = NULL;
	struct provision_result r;
	struct lemon_err err = { 0 };
	bool needs_target = false;
	int p = parse_install(argc, argv, &a), rc;

	if (p != 0) {
		install_usage(p > 0 ? stdout : stderr);
		return p > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	if (compat_backends_load(a.compat_dir, &bm, &err) < 0)
		return cli_fail(&err);
	if (strcmp(a.name, "auto") == 0)
		rc = install_auto(&a, bm, NULL, &err);
	else if (provision_find(bm, a.name, &asset, &needs_target, &err) < 0)
		rc = -1;
	else if (needs_target)
		rc = install_auto(&a, bm,
				  strstr(a.name, ":cuda") ? "cuda" : "rocm", &err);
	else {
		/* the health check serves a GGUF with llama-server; flm's
		 * smoke test is `flm version` (the NPU may be absent) */
		if (strcmp(asset->backend, "flm") == 0)
			a.opts.smoke = NULL;
		if ((rc = provision_install(asset, &a.opts, &r, &err)) == 0)
			print_done(&r);
	}
	compat_backends_free(bm);
	return rc < 0 ? cli_fail(&err) : CLI_EXIT_OK;
}

const char *cli_flm_installed(const char *data_dir, char *buf, size_t cap)
{
	struct provision_installed *inst =
		calloc(PROVISION_MAX_INSTALLED, sizeof(*inst));
	struct lemon_err err = { 0 };
	const char *found = NULL;
	int i, n = 0;

	/* an unreadable installed.json leaves flm to LEMON_FLM and PATH;
	 * `lemon backends` is where that error is shown */
	if (inst != NULL &&
	    provision_list(data_dir, inst, PROVISION_MAX_INSTALLED, &n, &err) == 0)
		for (i = 0; i < n && found == NULL; i++)
			if (strcmp(inst[i].name, "flm") == 0 && inst[i].works &&
			    lemon_str_copy(buf, cap, inst[i].exe))
				found = buf;
	free(inst);
	return found;
}

/* which installed backend `lemon serve` would use, and why */
static void print_selected(const struct install_args *a,
			   const struct compat_backends *bm,
			   const struct provision_installed *inst, int n)
{
	struct doctor_result *res = calloc(1, sizeof(*res));
	const struct compat_backend_asset *asset;
	const struct compat_candidate *c, *first = NULL;
	struct compat_db *db = NULL;
	struct lemon_err err = { 0 };
	int i, k;

	if (res == NULL || detect_choice(a, res, &db, &err) < 0) {
		printf("\nselected: unknown (detection failed: %s)\n", err.msg);
		goto out;
	}
	for (i = 0; i < res->choice.n; i++) {
		struct lemon_err e = { 0 };

		c = &res->choice.c[i];
		if (!c->usable ||
		    compat_backend_find(bm, c->backend, c->target, &asset, &e) < 0)
			continue;
		if (first == NULL)
			first = c;
		for (k = 0; k < n; k++)
			if (strcmp(inst[k].name, asset->name) == 0 && inst[k].works)
				break;
		if (k < n) {
			printf("\nselected: %s %s (%s)\n", asset->name, inst[k].version,
			       c->reason);
			if (first != c)
				printf("  better: %s%s%s is not installed (%s); "
				       "run 'lemon install-backend auto'\n", first->backend,
				       first->target[0] ? ":" : "", first->target,
				       first->reason);
			goto out;
		}
	}
	printf("\nselected: none installed%s%s%s%s\n",
	       first ? "; recommended " : "", first ? first->backend : "",
	       first && first->target[0] ? ":" : "", first ? first->target : "");
	printf("  run 'lemon install-backend auto'\n");
out:
	if (res && res->db)
		doctor_result_free(res);
	free(res);
	compat_db_free(db);
}

static void print_installed(const struct provision_installed *all, int n)
{
	int i, k;

	printf("installed:\n");
	for (i = 0, k = 0; i < n; i++) {
		if (all[i].previous)
			continue;
		k++;
		printf("  %-24s %-10s %-8s %s%s%s\n", all[i].name, all[i].version,
		       all[i].works ? "ok" : "BROKEN", all[i].exe,
		       all[i].works ? "" : ": ", all[i].works ? "" : all[i].problem);
	}
	if (k == 0)
		printf("  (none)\n");
	for (i = 0; i < n; i++)
		if (all[i].previous)
			printf("  %-24s %-10s kept for rollback%s%s ('lemon backends "
			       "rollback %s')\n", all[i].name, all[i].version,
			       all[i].works ? "" : ", BROKEN: ",
			       all[i].works ? "" : all[i].problem, all[i].name);
}

/* the pinned release of each target against the installed one */
static void print_available(const struct compat_backends *bm,
			    const struct provision_installed *inst, int n)
{
	const struct compat_backend_asset *a;
	int i, k;

	printf("\navailable (pinned):\n");
	for (i = 0; i < bm->n; i++) {
		a = &bm->a[i];
		for (k = 0; k < n; k++)
			if (strcmp(inst[k].name, a->name) == 0)
				break;
		printf("  %-24s %-10s %s", a->name, a->version,
		       a->sha256[0] ? "sha256 pinned" :
		       strncmp(a->url, "https://github.com/", 19) == 0 ?
		       "sha256 from the publisher's release listing" :
		       "no sha256 known (needs --mirror or --insecure-skip-verify)");
		/* the installed release may differ from the pinned one (a
		 * mirror's own version, a rollback, an older pin) */
		if (k < n && strcmp(inst[k].version, a->version) == 0)
			printf(", installed: %s, up to date\n", inst[k].version);
		else if (k < n)
			printf(", installed: %s, update available: 'lemon install-backend "
			       "%s'\n", inst[k].version, a->name);
		else
			printf("\n");
	}
}

static int cmd_rollback(int argc, char **argv)
{
	struct provision_installed now;
	struct lemon_err err = { 0 };
	char from[32];

	if (argc != 3 || argv[2][0] == '-') {
		fprintf(stderr, "usage: lemon backends rollback NAME   (a name from 'lemon backends')\n");
		return CLI_EXIT_USAGE;
	}
	if (provision_rollback(NULL, argv[2], &now, from, sizeof(from), &err) < 0)
		return cli_fail(&err);
	printf("rolled back %s from %s to %s\n", now.name, from[0] ? from : "(none)",
	       now.version);
	printf("llama-server: %s\n", now.exe);
	printf("a running 'lemon serve' keeps the version it started with until it "
	       "is restarted\n");
	return CLI_EXIT_OK;
}

int cli_cmd_backends(int argc, char **argv)
{
	struct provision_installed *all, inst[PROVISION_MAX_INSTALLED];
	struct install_args a = { 0 };
	struct compat_backends *bm = NULL;
	struct lemon_err err = { 0 };
	int n = 0, i, k = 0;

	if (argc >= 2 && strcmp(argv[1], "rollback") == 0)
		return cmd_rollback(argc, argv);
	a.sysroot = getenv("LEMON_SYSROOT");
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--sysroot") == 0 && i + 1 < argc) {
			a.sysroot = argv[++i];
		} else if (strcmp(argv[i], "--compat-dir") == 0 && i + 1 < argc) {
			a.compat_dir = argv[++i];
		} else {
			fprintf(strcmp(argv[i], "--help") ? stderr : stdout,
				"usage: lemon backends [--sysroot DIR] [--compat-dir DIR]\n"
				"       lemon backends rollback NAME\n");
			return strcmp(argv[i], "--help") ? CLI_EXIT_USAGE : CLI_EXIT_OK;
		}
	}
	all = calloc(PROVISION_MAX_INSTALLED, sizeof(*all));
	if (all == NULL) {
		lemon_err_set(&err, LEMON_ERR_INTERNAL, "out of memory");
		return cli_fail(&err);
	}
	if (compat_backends_load(a.compat_dir, &bm, &err) < 0 ||
	    provision_list_all(NULL, all, PROVISION_MAX_INSTALLED, &n, &err) < 0) {
		compat_backends_free(bm);
		free(all);
		return cli_fail(&err);
	}
	for (i = 0; i < n; i++)
		if (!all[i].previous)
			inst[k++] = all[i];
	print_installed(all, n);
	print_available(bm, inst, k);
	print_selected(&a, bm, inst, k);
	compat_backends_free(bm);
	free(all);
	return CLI_EXIT_OK;
}

int cli_cmd_uninstall_backend(int argc, char **argv)
{
	struct lemon_err err = { 0 };

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
			"usage: lemon uninstall-backend NAME   (a name from 'lemon backends')\n");
		return argc == 2 && strcmp(argv[1], "--help") == 0 ? CLI_EXIT_OK :
		       CLI_EXIT_USAGE;
	}
	if (provision_uninstall(NULL, argv[1], &err) < 0)
		return cli_fail(&err);
	printf("removed %s\n", argv[1]);
	return CLI_EXIT_OK;
}
