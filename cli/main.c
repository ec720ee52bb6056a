/* lemon's entry point: dispatches to the command table below */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct cli_command commands[] = {
	{ "doctor", cli_cmd_doctor, "diagnose drivers, firmware, permissions and pick the backend" },
	{ "system-info", cli_cmd_system_info, "print the detection report as JSON" },
	{ "install-backend", cli_cmd_install_backend, "download, verify and install a llama.cpp backend" },
	{ "backends", cli_cmd_backends, "list installed and available backends and the selected one" },
	{ "uninstall-backend", cli_cmd_uninstall_backend, "remove an installed backend" },
	{ "serve", cli_cmd_serve, "serve the OpenAI-compatible API over supervised llama-server" },
	{ "pull", cli_cmd_pull, "pull a model from the registry (NAME) or import one (--file PATH NAME)" },
	{ "rm", cli_cmd_rm, "remove a local model" },
	{ "list", cli_cmd_list, "list the local models" },
	{ "run", cli_cmd_run, "chat with a model through the running server" },
	{ "ps", cli_cmd_ps, "list the models the running server has loaded" },
	{ "status", cli_cmd_status, "say whether a server runs, where, and what it has loaded" },
	{ "stop", cli_cmd_stop, "ask the running server to shut down" },
	{ "worker", cli_cmd_worker, "lend this machine to a head lemon serve --workers (llama.cpp rpc-server)" },
};

static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: lemon <command> [options]\n\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-18s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nrun 'lemon <command> --help' for a command's options\n");
}

int cli_fail(const struct lemon_err *err)
{
	fprintf(stderr, "lemon: %s\n", err->msg);
	switch (err->code) {
	case LEMON_ERR_INVALID_ARG:
		return CLI_EXIT_USAGE;
	default:
		return CLI_EXIT_DEGRADED;
	}
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "help") == 0 && argc > 2) {
		/* `lemon help COMMAND` is `lemon COMMAND --help` */
		char help[] = "--help";
		char *args[] = { argv[2], help, NULL };

		for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			if (strcmp(argv[2], commands[i].name) == 0)
				return commands[i].run(2, args);
		fprintf(stderr, "lemon: unknown command '%s'\n", argv[2]);
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("lemon %s\n", LEMON_VERSION);
		return CLI_EXIT_OK;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "lemon: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
