/* cmd_run.c: `tlsshim run [--policy FILE] [--rule RULE]... [--log LEVEL] -- PROGRAM ARGS...`.
 * Owns everything between the command line and execv: loading the policy first (a broken policy would
 * make every connect fail inside the program), finding PROGRAM on PATH, refusing programs the dynamic
 * loader would not preload into (static, setuid/setgid, file capabilities, another ELF class), and
 * building the environment: LD_PRELOAD (our library first, sanitizer runtimes kept in front),
 * TLSSHIM_POLICY, TLSSHIM_RULES (the --rule values first, then an inherited TLSSHIM_RULES) and
 * TLSSHIM_LOG. */
#include "tools/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: tlsshim run [--policy FILE] [--rule RULE]... [--log LEVEL] -- PROGRAM [ARGS...]\n\n"
    "Runs PROGRAM with the tlsshim library preloaded, so its TCP connections get TLS as the policy says.\n"
    "The policy is checked first; statically linked and setuid programs are refused, because the\n"
    "library would silently not load into them.\n\n"
    "  --policy FILE  the policy file (sets TLSSHIM_POLICY; default: the inherited TLSSHIM_POLICY)\n"
    "  --rule RULE    a rule, e.g. 'tls localhost:8443 ca-file=ca.pem' (repeatable; the rules are joined\n"
    "                 with ';' and put before an inherited TLSSHIM_RULES, so they match first)\n"
    "  --log LEVEL    error, warn, info or debug (sets TLSSHIM_LOG)\n\n"
    "Exit status: PROGRAM's; 1 when the policy or PROGRAM is refused, 2 on bad usage,\n"
    "126 when PROGRAM cannot be executed, 127 when it is not found.\n";

static bool valid_level(const char *s)
{
	static const char *const levels[] = {"error", "warn", "info", "debug"};
	for (size_t i = 0; i < 4; i++)
		if (strcasecmp(s, levels[i]) == 0)
			return true;
	return false;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {{"policy", required_argument, NULL, 'p'},
					     {"rule", required_argument, NULL, 'r'},
					     {"log", required_argument, NULL, 'l'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct cli_policy_src cli = {0};
	const char *log_level = NULL;
	int c, rc = CLI_FAILED;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+p:r:l:h", opts, NULL)) != -1) {
		int handled = cli_policy_option(&cli, c, optarg);
		if (handled < 0)
			goto out;
		if (handled > 0)
			continue;
		switch (c) {
		case 'l':
			log_level = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			rc = CLI_OK;
			goto out;
		default:
			rc =
			    cli_usage_error("run", "unknown option or missing value: '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (optind >= argc) {
		rc = cli_usage_error("run",
				     "missing the program to run (tlsshim run [options] -- PROGRAM ARGS...)");
		goto out;
	}
	if (log_level && !valid_level(log_level)) {
		rc = cli_usage_error("run", "--log %s is not a level; use error, warn, info or debug",
				     log_level);
		goto out;
	}

	/* The policy the program will get: --rule first, then the inherited rules; --policy or the inherited
	 * file. */
	const char *env_rules = getenv("TLSSHIM_RULES"), *env_file = getenv("TLSSHIM_POLICY");
	if (env_rules && *env_rules && cli.rules && cli_policy_add_rule(&cli, env_rules) != 0) {
		cli_error("out of memory");
		goto out;
	}
	if (!cli.rules && env_rules && *env_rules)
		cli.rules = strdup(env_rules);
	if (!cli.file && env_file && *env_file)
		cli.file = env_file;
	if (cli_policy_is_empty(&cli)) {
		rc = cli_usage_error("run",
				     "no policy: give --policy FILE or --rule RULE (or set TLSSHIM_POLICY or "
				     "TLSSHIM_RULES); without one every connection stays plain");
		goto out;
	}
	struct policy pol;
	if (cli_policy_load(&cli, &pol) != 0) {
		cli_error("not running %s: fix the policy first", argv[optind]);
		goto out;
	}
	policy_free(&pol);

	char lib[PATH_MAX * 2 + 64];
	if (cli_find_library(lib, sizeof(lib)) != 0) {
		cli_error("the tlsshim library is not beside the command (looked for %s); reinstall tlsshim",
			  lib);
		goto out;
	}
	if (strpbrk(lib, ": ")) {
		cli_error(
		    "the library path %s contains ':' or a space, which LD_PRELOAD cannot express; install "
		    "tlsshim elsewhere",
		    lib);
		goto out;
	}

	char prog[PATH_MAX];
	if (cli_find_program(argv[optind], prog, sizeof(prog)) != 0) {
		cli_error("%s: command not found%s", argv[optind],
			  strchr(argv[optind], '/') ? "" : " on PATH");
		rc = 127;
		goto out;
	}
	char why[2048];
	cli_loader_refusal("", prog, why, sizeof(why));
	if (why[0]) {
		fprintf(stderr, "tlsshim run: refusing to run: %s.\n", why);
		goto out;
	}

	char *preload = cli_preload_value(lib, getenv("LD_PRELOAD"));
	char abs_policy[PATH_MAX];
	if (!preload || setenv("LD_PRELOAD", preload, 1) != 0 ||
	    (cli.rules && setenv("TLSSHIM_RULES", cli.rules, 1) != 0) ||
	    (cli.file &&
	     setenv("TLSSHIM_POLICY", realpath(cli.file, abs_policy) ? abs_policy : cli.file, 1) != 0) ||
	    (log_level && setenv("TLSSHIM_LOG", log_level, 1) != 0)) {
		free(preload);
		cli_error("out of memory setting the environment");
		goto out;
	}
	free(preload);
	execv(prog, argv + optind);
	int e = errno;
	cli_error("cannot execute %s: %s", prog, strerror(e));
	rc = e == ENOENT ? 127 : 126;
out:
	cli_policy_src_free(&cli);
	return rc;
}
