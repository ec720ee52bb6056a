/* `lemon pull NAME` (from the model registry) and `lemon rm NAME`: the
 * store is changed directly, so they work whether or not a server runs.
 * Progress is a one-line bar when stderr is a terminal and JSON lines on
 * stdout otherwise, one object per event, for scripts and tests. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/backends.h"
#include "cli/cli.h"

struct bar_state {
	bool tty;
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
	else
		json_line(p);
}

static void pull_usage(FILE *out)
{
	fprintf(out,
		"usage: lemon pull NAME [--data-dir DIR]\n"
		"       lemon pull --file PATH NAME\n"
		"  NAME from the model registry (compat/models.json merged with\n"
		"  $XDG_CONFIG_HOME/lemon/models.json) is downloaded from\n"
		"  $HF_ENDPOINT (default https://huggingface.co), HF_TOKEN sent when set;\n"
		"  --file imports a local GGUF file instead\n");
}

int cli_pull_registry(int argc, char **argv)
{
	struct bar_state b = { 0 };
	struct lemon_err err = { 0 };
	const char *name = NULL, *data_dir = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			pull_usage(stdout);
			return CLI_EXIT_OK;
		} else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
			data_dir = argv[++i];
		} else if (argv[i][0] != '-' && name == NULL) {
			name = argv[i];
		} else {
			pull_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (name == NULL) {
		pull_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	b.tty = isatty(STDERR_FILENO);
	b.t0 = now_s();
	if (backends_pull_model(data_dir, name, on_progress, &b, &err) < 0) {
		if (b.drawn)
			fputc('\n', stderr);
		return cli_fail(&err);
	}
	if (b.tty)
		fprintf(stderr, "pulled %s\n", name);
	return CLI_EXIT_OK;
}

int cli_cmd_rm(int argc, char **argv)
{
	struct lemon_err err = { 0 };
	const char *data_dir = NULL;

	if (argc == 4 && strcmp(argv[2], "--data-dir") == 0)
		data_dir = argv[3];
	else if (argc != 2 || argv[1][0] == '-') {
		fprintf(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
			"usage: lemon rm NAME [--data-dir DIR]\n"
			"  removes the model NAME from the local store\n");
		return argc == 2 && strcmp(argv[1], "--help") == 0 ? CLI_EXIT_OK :
		       CLI_EXIT_USAGE;
	}
	if (backends_delete_model(data_dir, argv[1], &err) < 0)
		return cli_fail(&err);
	printf("deleted %s\n", argv[1]);
	return CLI_EXIT_OK;
}
