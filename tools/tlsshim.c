/* tlsshim.c: the `tlsshim` command's entry point: the overview help and the dispatch to one
 * subcommand (cmd_*.c). Exit codes, for every subcommand: 0 success, 1 a failed check, 2 bad usage. */
#include "tools/cli.h"

#include <stdio.h>
#include <string.h>

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
    {"run", cmd_run, "run a program with TLS added by the policy (checks the program and the policy first)"},
    {"check", cmd_check, "report every error and warning in a policy, with file, line and column"},
    {"explain", cmd_explain, "show which rule matches HOST:PORT and the options the library would use"},
    {"probe", cmd_probe, "connect to HOST:PORT as the library would and show the TLS session and chain"},
    {"certs", cmd_certs, "make a test CA, server and client certificate, and the policy line to trust them"},
    {"audit", cmd_audit, "run a program observe-only: log what it connects to, suggest a policy"},
    {"enable", cmd_enable, "write a systemd drop-in that gives a service the library and a policy"},
    {"disable", cmd_disable, "remove the drop-in tlsshim enable wrote"},
    {"version", cmd_version, "show the tlsshim and wolfSSL versions and whether AES-NI is in use"},
};

static void overview(FILE *f)
{
	fprintf(f,
		"usage: tlsshim COMMAND [OPTIONS] [ARGS]\n\n"
		"Adds TLS to the TCP connections of unmodified programs, as a policy says.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(
	    f,
	    "\n'tlsshim COMMAND --help' describes a command; man tlsshim and man tlsshim-policy say more.\n"
	    "Exit status: 0 success, 1 a failed check, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		overview(stderr);
		return CLI_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		if (strcmp(cmd, "help") == 0 && argc > 2) {
			char *help_argv[] = {argv[2], "--help", NULL};
			for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
				if (strcmp(argv[2], subcommands[i].name) == 0)
					return subcommands[i].run(2, help_argv);
			fprintf(stderr, "tlsshim: unknown command '%s'\n", argv[2]);
			return CLI_USAGE;
		}
		overview(stdout);
		return CLI_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0)
		return cmd_version(1, argv + 1);
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (strcmp(cmd, subcommands[i].name) == 0)
			return subcommands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "tlsshim: unknown command '%s'\n\n", cmd);
	overview(stderr);
	return CLI_USAGE;
}
