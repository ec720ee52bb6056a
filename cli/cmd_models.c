/* `lemon pull NAME` (from the model registry), `lemon pull --file PATH
 * NAME`, `lemon rm NAME` and `lemon list`: the store is changed directly,
 * so they work whether or not a server runs.
 * Progress is a one-line bar when stderr is a terminal and JSON lines on
 * stdout otherwise, one object per event, for scripts and tests. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/backends.h"
#include "cli/cli.h"

struct bar_state {
	bool tty;  /* draw a bar */
	bool json; /* else JSON lines; neither: quiet */
	bool drawn;
	double t0;
	const char *last_status;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void json_line(const struct provision_pull_progress *p)
{
	printf("{\"status\":\"%s\",\"model\":\"%s\"", p->status, p->model);
	/* file names come from the registry, checked to [A-Za-z0-9._-] */
	if (p->file)
		printf(",\"file\":\"%s\",\"part\":%d,\"parts\":%d", p->file,
		       p->part, p->n_parts);
	if (p->digest)
		printf(",\"digest\":\"%s\"", p->digest);
	printf(",\"completed\":%llu,\"total\":%llu,\"all_completed\":%llu,\"all_total\":%llu}\n",
	       (unsigned long long)p->completed, (unsigned long long)p->total,
	       (unsigned long long)p->all_completed,
	       (unsigned long long)p->all_total);
	fflush(stdout);
}

static void bar(struct bar_state *b, const struct provision_pull_progress *p)
{
	double el = now_s() - b->t0, mib = 1024.0 * 1024.0;
	uint64_t done = p->all_total ? p->all_completed : p->completed;
	uint64_t total = p->all_total ? p->all_total : p->total;
	int width = 30, fill = 0, i;
	char line[64];

	if (strcmp(p->status, "downloading") != 0) {
		if (b->last_status && strcmp(b->last_status, p->status) == 0)
			return;
		if (b->drawn)
			fputc('\n', stderr);
		b->drawn = false;
		fprintf(stderr, "%s%s%s\n", p->status, p->digest ? " " : "",
			p->digest ? p->digest : "");
		b->last_status = p->status;
		return;
	}
	b->last_status = p->status;
	if (total)
		fill = (int)((double)done * width / (double)total);
	for (i = 0; i < width; i++)
		line[i] = i < fill ? '#' : '.';
	line[width] = 0;
	fprintf(stderr, "\r%.32s [%d/%d] [%s] %.1f / %.1f MiB  %.1f MiB/s   ",
		p->file ? p->file : p->model, p->part, p->n_parts, line,
		(double)done / mib, (double)total / mib,
		el > 0 ? (double)done / mib / el : 0.0);
	b->drawn = true;
}

static void on_progress(void *ctx, const struct provision_pull_progress *p)
{
	struct bar_state *b = ctx;

	if (b->tty)
		bar(b, p);
	else if (b->json)
		json_line(p);
}

static void pull_usage(FILE *out)
{
	fprintf(out,
		"usage: lemon pull [--data-dir DIR] [--progress auto|bar|json|none] [--] NAME\n"
		"       lemon pull [--data-dir DIR] --file PATH [--mmproj PROJ] [--] NAME\n"
		"  NAME from the model registry (compat/models.json merged with\n"
		"  $XDG_CONFIG_HOME/lemon/models.json) is downloaded from\n"
		"  $HF_ENDPOINT (default https://huggingface.co), HF_TOKEN sent when set;\n"
		"  --file imports a local GGUF file as NAME instead, and --mmproj its\n"
		"  vision projector (a CLIP GGUF) beside it. A NAME never starts with\n"
		"  '-' or '.'. --progress: a bar (auto: when\n"
		"  stderr is a terminal), JSON lines on stderr (auto: otherwise) or none\n");
}

struct model_args {
	const char *name;
	const char *data_dir;
	const char *file; /* pull --file PATH */
	const char *mmproj; /* pull --file PATH --mmproj PROJ */
	const char *progress; /* pull --progress MODE */
};

/* [--data-dir DIR] [--file PATH] [--] NAME in any order. Before "--",
 * anything that starts with '-' is an option and an unknown one is a
 * usage error, never a name. Model names never start with '-'
 * (backends_model_name_valid), but an older lemon allowed it: `lemon rm
 * -- -rf` removes such an entry, and pull refuses such a name after "--"
 * as the store does. Returns 0, 1 for --help, -1 for a usage error. */
static int model_args(int argc, char **argv, bool with_file,
		      struct model_args *a)
{
	bool opts = true;
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (opts && s[0] == '-') {
			if (strcmp(s, "--") == 0)
				opts = false;
			else if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0)
				return 1;
			else if (strcmp(s, "--data-dir") == 0 && i + 1 < argc)
				a->data_dir = argv[++i];
			else if (with_file && strcmp(s, "--file") == 0 && i + 1 < argc)
				a->file = argv[++i];
			else if (with_file && strcmp(s, "--mmproj") == 0 && i + 1 < argc)
				a->mmproj = argv[++i];
			else if (with_file && strcmp(s, "--progress") == 0 && i + 1 < argc)
				a->progress = argv[++i];
			else
				return -1;
		} else if (a->name == NULL) {
			a->name = s;
		} else {
			return -1;
		}
	}
	return a->name ? 0 : -1;
}

static int pull_file(const struct model_args *a)
{
	struct backends_gguf_info info;
	struct lemon_err err = { 0 };

	if (a->mmproj ? backends_pull_file_mmproj(a->data_dir, a->file, a->mmproj,
						  a->name, &info, &err) < 0 :
			backends_pull_file(a->data_dir, a->file, a->name, &info,
					   &err) < 0)
		return cli_fail(&err);
	printf("%s: GGUF v%u, %s, %llu tensors\n", a->name, info.version,
	       info.arch[0] ? info.arch : "unknown architecture",
	       (unsigned long long)info.n_tensors);
	if (a->mmproj)
		printf("%s: vision projector imported\n", a->name);
	return CLI_EXIT_OK;
}

int cli_cmd_pull(int argc, char **argv)
{
	struct bar_state b = { 0 };
	struct lemon_err err = { 0 };
	struct model_args a;
	int p = model_args(argc, argv, true, &a);

	if (p != 0) {
		pull_usage(p > 0 ? stdout : stderr);
		return p > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	if (a.file)
		return pull_file(&a);
	if (a.progress == NULL || strcmp(a.progress, "auto") == 0) {
		b.tty = isatty(STDERR_FILENO);
		b.json = !b.tty;
	} else if (strcmp(a.progress, "bar") == 0 || strcmp(a.progress, "json") == 0) {
		b.tty = a.progress[0] == 'b';
		b.json = !b.tty;
	} else if (strcmp(a.progress, "none") != 0) {
		pull_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	b.t0 = now_s();
	if (backends_pull_model(a.data_dir, a.name, on_progress, &b, &err) < 0) {
		if (b.drawn)
			fputc('\n', stderr);
		return cli_fail(&err);
	}
	if (b.tty)
		fprintf(stderr, "pulled %s\n", a.name);
	return CLI_EXIT_OK;
}

int cli_cmd_rm(int argc, char **argv)
{
	struct lemon_err err = { 0 };
	struct model_args a;
	int p = model_args(argc, argv, false, &a);

	if (p != 0) {
		fprintf(p > 0 ? stdout : stderr,
			"usage: lemon rm [--data-dir DIR] [--] NAME\n"
			"  removes the model NAME from the local store; '--' ends the\n"
			"  options, for an entry an older lemon stored under a NAME that\n"
			"  starts with '-' (no longer accepted anywhere else)\n");
		return p > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	if (backends_delete_model(a.data_dir, a.name, &err) < 0)
		return cli_fail(&err);
	printf("deleted %s\n", a.name);
	return CLI_EXIT_OK;
}

int cli_cmd_list(int argc, char **argv)
{
	struct lemon_err err = { 0 };
	struct backends_model m[256];
	int n = 0, i;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: lemon list\n  lists the local models and their sizes\n");
		return CLI_EXIT_OK;
	}
	if (argc != 1) {
		fprintf(stderr, "usage: lemon list\n");
		return CLI_EXIT_USAGE;
	}
	if (backends_list_models(NULL, m, 256, &n, &err) < 0)
		return cli_fail(&err);
	for (i = 0; i < n; i++)
		printf("%-40s %10.1f MiB\n", m[i].name,
		       (double)m[i].size / (1024.0 * 1024.0));
	return CLI_EXIT_OK;
}
