/* cmd_run.c: `tlsshim run [--policy FILE] [--rule RULE]... [--log LEVEL] -- PROGRAM ARGS...`.
 * Owns everything between the command line and execv: loading the policy first (a broken policy would
 * make every connect fail inside the program), finding PROGRAM on PATH, refusing programs the dynamic
 * loader would not preload into (static, setuid/setgid, file capabilities, another ELF class), and
 * building the environment: LD_PRELOAD (our library first, sanitizer runtimes kept in front),
 * TLSSHIM_POLICY, TLSSHIM_RULES (the --rule values first, then an inherited TLSSHIM_RULES) and
 * TLSSHIM_LOG. */
#include "tools/cli.h"

#include <elf.h>
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
#include <sys/xattr.h>

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

#define MAX_SCRIPT_DEPTH 4

/* Finds an executable regular file on PATH the way execvp does (empty entries mean "."). */
static int find_program(const char *prog, char *out, size_t len)
{
	if (strchr(prog, '/')) {
		snprintf(out, len, "%s", prog);
		return access(out, F_OK) == 0 ? 0 : -1;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		struct stat st;
		if (n == 0)
			snprintf(out, len, "./%s", prog);
		else
			snprintf(out, len, "%.*s/%s", (int)n, p, prog);
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return 0;
		if (!end)
			break;
		p = end;
	}
	return -1;
}

/* Why the dynamic loader would not preload into path (a sentence), or "" when it would. Follows "#!"
 * to the interpreter, which is the program the kernel really starts. */
static void loader_refusal(const char *path, int depth, char *why, size_t len)
{
	why[0] = '\0';
	struct stat st;
	if (stat(path, &st) != 0)
		return; /* execv will report it */
	if (st.st_mode & (S_ISUID | S_ISGID)) {
		snprintf(
		    why, len,
		    "%s is %s (mode %04o): the dynamic loader ignores LD_PRELOAD for setuid and setgid "
		    "programs "
		    "(secure-execution mode), so the shim would silently not load and its connections would "
		    "stay plain. Run a copy without the bit (e.g. cp %s /tmp/ and run that) if it works "
		    "unprivileged, or put a TLS proxy such as stunnel in front of its connections",
		    path, (st.st_mode & S_ISUID) ? "setuid" : "setgid", (unsigned)(st.st_mode & 07777), path);
		return;
	}
	if (getxattr(path, "security.capability", NULL, 0) > 0) {
		snprintf(
		    why, len,
		    "%s has file capabilities (see getcap): the dynamic loader ignores LD_PRELOAD for it "
		    "(secure-execution mode), so the shim would silently not load. Run a copy without "
		    "capabilities, or put a TLS proxy such as stunnel in front of its connections",
		    path);
		return;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	unsigned char buf[4096];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	if (n >= 2 && buf[0] == '#' && buf[1] == '!') {
		close(fd);
		if (depth >= MAX_SCRIPT_DEPTH)
			return;
		size_t i = 2, e;
		while (i < (size_t)n && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		for (e = i; e < (size_t)n && buf[e] != ' ' && buf[e] != '\t' && buf[e] != '\n'; e++)
			;
		char interp[PATH_MAX];
		if (e == i || e - i >= sizeof(interp))
			return;
		memcpy(interp, buf + i, e - i);
		interp[e - i] = '\0';
		char inner[1024];
		loader_refusal(interp, depth + 1, inner, sizeof(inner));
		if (inner[0])
			if (snprintf(why, len, "%s is a script run by %s, and %s", path, interp, inner) < 0)
				why[0] = '\0';
		return;
	}
	if (n < (ssize_t)EI_NIDENT || memcmp(buf, ELFMAG, SELFMAG) != 0) {
		close(fd);
		return; /* not ELF: binfmt_misc or execv will decide */
	}
	bool has_interp = false;
	if (buf[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr eh;
		if (n < (ssize_t)sizeof(eh)) {
			close(fd);
			return;
		}
		memcpy(&eh, buf, sizeof(eh));
		for (unsigned i = 0; i < eh.e_phnum && i < 4096; i++) {
			Elf64_Phdr ph;
			if (eh.e_phentsize < sizeof(ph) ||
			    pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
				sizeof(ph))
				break;
			if (ph.p_type == PT_INTERP)
				has_interp = true;
		}
	} else {
		close(fd);
		snprintf(
		    why, len,
		    "%s is a %s program: the 64-bit tlsshim library cannot load into it (the loader would "
		    "skip it with a warning and the connections would stay plain). Use a 64-bit build of "
		    "the program",
		    path, buf[EI_CLASS] == ELFCLASS32 ? "32-bit" : "non-64-bit");
		return;
	}
	close(fd);
	if (!has_interp)
		snprintf(
		    why, len,
		    "%s is statically linked: it has no dynamic loader, so LD_PRELOAD cannot load the shim "
		    "into it and its connections would silently stay plain. Use a dynamically linked build "
		    "of "
		    "the program, or put a TLS proxy such as stunnel in front of its connections",
		    path);
}

/* Sanitizer runtimes must stay first in LD_PRELOAD. */
static bool is_sanitizer_runtime(const char *item, size_t n)
{
	const char *base = item;
	for (size_t i = 0; i < n; i++)
		if (item[i] == '/')
			base = item + i + 1;
	size_t bn = n - (size_t)(base - item);
	return (bn >= 7 && strncmp(base, "libasan", 7) == 0) ||
	       (bn >= 15 && strncmp(base, "libclang_rt.asan", 15) == 0) ||
	       (bn >= 7 && strncmp(base, "libtsan", 7) == 0) ||
	       (bn >= 8 && strncmp(base, "libubsan", 8) == 0);
}

/* LD_PRELOAD with lib first (after sanitizer runtimes), the inherited entries after it, and any
 * inherited copy of a libtlsshim.so dropped (loading two would interpose twice). */
static char *build_preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	size_t cap = strlen(lib) + (old ? strlen(old) : 0) + 4;
	char *front = calloc(1, cap), *back = calloc(1, cap), *out = calloc(1, cap);
	if (!front || !back || !out) {
		free(front);
		free(back);
		free(out);
		return NULL;
	}
	for (const char *p = old; p && *p;) {
		size_t n = strcspn(p, ": ");
		if (n > 0) {
			char *dst = is_sanitizer_runtime(p, n) ? front : back;
			bool ours = n >= 13 && strncmp(p + n - 13, "libtlsshim.so", 13) == 0;
			if (!ours) {
				if (*dst)
					strcat(dst, ":");
				strncat(dst, p, n);
			}
		}
		p += n;
		if (*p)
			p++;
	}
	snprintf(out, cap, "%s%s%s%s%s", front, *front ? ":" : "", lib, *back ? ":" : "", back);
	free(front);
	free(back);
	return out;
}

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
	if (find_program(argv[optind], prog, sizeof(prog)) != 0) {
		cli_error("%s: command not found%s", argv[optind],
			  strchr(argv[optind], '/') ? "" : " on PATH");
		rc = 127;
		goto out;
	}
	char why[2048];
	loader_refusal(prog, 0, why, sizeof(why));
	if (why[0]) {
		fprintf(stderr, "tlsshim run: refusing to run: %s.\n", why);
		goto out;
	}

	char *preload = build_preload(lib);
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
