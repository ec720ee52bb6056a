/* the command-line front end: one file per command group; only the CLI maps
 * error codes to exit statuses */
#ifndef LEMON_CLI_H
#define LEMON_CLI_H

#include "util/err.h"

/* exit statuses shared by every command */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_DEGRADED = 1, /* doctor: problems degrade the path; others: failure */
	CLI_EXIT_USAGE = 2,
};

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;
};

/* maps an error to an exit status and prints "lemon: <message>" */
int cli_fail(const struct lemon_err *err);

int cli_cmd_doctor(int argc, char **argv);      /* cli/cmd_doctor.c */
int cli_cmd_system_info(int argc, char **argv); /* cli/cmd_doctor.c */
int cli_cmd_install_backend(int argc, char **argv);   /* cli/cmd_backend.c */
int cli_cmd_backends(int argc, char **argv);          /* cli/cmd_backend.c */
int cli_cmd_uninstall_backend(int argc, char **argv); /* cli/cmd_backend.c */
int cli_cmd_serve(int argc, char **argv); /* cli/cmd_serve.c */
int cli_cmd_pull(int argc, char **argv);  /* cli/cmd_serve.c */
int cli_cmd_list(int argc, char **argv);  /* cli/cmd_serve.c */
int cli_pull_registry(int argc, char **argv); /* cli/cmd_models.c */
int cli_cmd_rm(int argc, char **argv);        /* cli/cmd_models.c */

#endif
