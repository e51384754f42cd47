/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cmd_audit.c: `tlsshim audit [--policy FILE] [--rule RULE]... [--output FILE] -- PROGRAM ARGS...` and
 * `tlsshim audit [--output FILE] --from LOG`. Runs PROGRAM with the library in observe-only mode
 * (TLSSHIM_MODE=audit: preload/audit.c logs every TCP connect and changes nothing), collecting the
 * connect lines of PROGRAM and every process it starts through TLSSHIM_AUDIT_FILE; or reads those lines
 * from a log (a service's TLSSHIM_LOG_FILE, or journalctl output). Then prints a summary per destination
 * and a suggested policy covering what was seen, ready for `tlsshim check`. */
#include "tools/cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

static const char usage[] =
    "usage: tlsshim audit [--policy FILE] [--rule RULE]... [--output FILE] -- PROGRAM [ARGS...]\n"
    "       tlsshim audit [--output FILE] --from LOG\n\n"
    "Runs PROGRAM with the tlsshim library in observe-only mode (TLSSHIM_MODE=audit): every TCP connect\n"
    "is logged with the destination, the name the program resolved, the rule that would match and what\n"
    "it would do, and nothing is changed: no connection is made TLS or refused. At the end, a summary per\n"
    "destination and a suggested policy covering every destination seen, ready for `tlsshim check`.\n"
    "Accepted connections are listed too, per port, with a commented serve line to fill in.\n"
    "--from LOG reads the 'tlsshim: audit: connect' and 'accept' lines of a service run with "
    "TLSSHIM_MODE=audit\n"
    "instead (its TLSSHIM_LOG_FILE, or `journalctl -u SERVICE | tlsshim audit --from -`).\n\n"
    "  --policy FILE, --rule RULE  the policy to compare with (what would happen under it)\n"
    "  --output FILE               write the suggested policy to FILE (default: after the summary)\n"
    "  --from LOG                  read connect lines from LOG ('-' for standard input)\n\n"
    "Exit status: PROGRAM's (the report is printed in any case); 1 when the policy is broken or PROGRAM\n"
    "is refused, or --from found no connect line; 2 on bad usage.\n";

#define AUDIT_MARK	  "tlsshim: audit: connect "
#define AUDIT_ACCEPT_MARK "tlsshim: audit: accept "
#define MAX_SEEN	  4096
#define MAX_LISTENERS	  256

struct seen {
	char host[260];	 /* the name, or the address ("[v6]" bracketed) */
	char port[8];	 /* as text */
	char addrs[200]; /* the addresses seen for it, comma separated */
	char action[32]; /* what the policy would do: tls, plain, deny, refused-policy-error */
	char rule[300];	 /* "none" or FILE:LINE */
	unsigned long count;
};

/* Accepted connections, by the port they reached (the local address of the accept). */
struct listener {
	char port[8];
	char locals[200]; /* the local addresses seen, comma separated */
	char action[32];  /* serve or plain (what the policy would do) */
	char rule[300];
	unsigned long count;
};

struct report {
	struct seen *s;
	size_t n;
	unsigned long lines;
	struct listener l[MAX_LISTENERS];
	size_t n_l;
	unsigned long accepts;
};

/* The value of key= in line (up to the next space; for "rule=" the rest of the line). */
static bool field(const char *line, const char *key, char *out, size_t len, bool rest)
{
	const char *p = strstr(line, key);
	if (!p)
		return false;
	p += strlen(key);
	size_t n = rest ? strcspn(p, "\r\n") : strcspn(p, " \r\n");
	if (rest) { /* the library may add a note in parentheses after the rule */
		const char *note = strstr(p, " (");
		if (note && (size_t)(note - p) < n)
			n = (size_t)(note - p);
	}
	if (n >= len)
		n = len - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* Appends item to a comma-separated list unless it is there (or the list is full). */
static void add_to_list(char *list, size_t size, const char *item)
{
	char tok[90], wrapped[210];
	snprintf(tok, sizeof(tok), ",%s,", item);
	snprintf(wrapped, sizeof(wrapped), ",%s,", list);
	if (strstr(wrapped, tok) || strlen(list) + strlen(item) + 2 >= size)
		return;
	if (list[0])
		strcat(list, ",");
	strcat(list, item);
}

static void add_accept(struct report *r, const char *m)
{
	char local[80], action[32], rule[300];
	if (!field(m, " local=", local, sizeof(local), false) ||
	    !field(m, " action=", action, sizeof(action), false) ||
	    !field(m, " rule=", rule, sizeof(rule), true))
		return;
	char *colon = strrchr(local, ':');
	if (!colon)
		return;
	*colon = '\0';
	const char *port = colon + 1;
	r->accepts++;
	size_t i;
	for (i = 0; i < r->n_l; i++)
		if (strcmp(r->l[i].port, port) == 0)
			break;
	if (i == r->n_l) {
		if (r->n_l >= MAX_LISTENERS)
			return;
		memset(&r->l[i], 0, sizeof(r->l[i]));
		snprintf(r->l[i].port, sizeof(r->l[i].port), "%s", port);
		r->n_l++;
	}
	struct listener *l = &r->l[i];
	l->count++;
	snprintf(l->action, sizeof(l->action), "%s", action);
	snprintf(l->rule, sizeof(l->rule), "%s", rule);
	add_to_list(l->locals, sizeof(l->locals), local);
}

static void add_line(struct report *r, const char *line)
{
	const char *a = strstr(line, AUDIT_ACCEPT_MARK);
	if (a) {
		add_accept(r, a + strlen(AUDIT_ACCEPT_MARK) - 1);
		return;
	}
	const char *m = strstr(line, AUDIT_MARK);
	if (!m)
		return;
	char dest[80], name[260], action[32], rule[300];
	if (!field(m, " dest=", dest, sizeof(dest), false) ||
	    !field(m, " name=", name, sizeof(name), false) ||
	    !field(m, " action=", action, sizeof(action), false) ||
	    !field(m, " rule=", rule, sizeof(rule), true))
		return;
	char *colon = strrchr(dest, ':');
	if (!colon)
		return;
	*colon = '\0';
	const char *port = colon + 1, *addr = dest;
	const char *host = strcmp(name, "-") != 0 ? name : addr;
	r->lines++;
	size_t i;
	for (i = 0; i < r->n; i++)
		if (strcmp(r->s[i].host, host) == 0 && strcmp(r->s[i].port, port) == 0)
			break;
	if (i == r->n) {
		if (r->n >= MAX_SEEN)
			return;
		memset(&r->s[i], 0, sizeof(r->s[i]));
		snprintf(r->s[i].host, sizeof(r->s[i].host), "%s", host);
		snprintf(r->s[i].port, sizeof(r->s[i].port), "%s", port);
		r->n++;
	}
	struct seen *s = &r->s[i];
	s->count++;
	snprintf(s->action, sizeof(s->action), "%s", action);
	snprintf(s->rule, sizeof(s->rule), "%s", rule);
	add_to_list(s->addrs, sizeof(s->addrs), addr); /* the addresses behind a name, each once */
}

/* The (commented) serve line suggested for one port that accepted connections: a serve rule needs the
 * server's own certificate and key, which an audit cannot know. */
static void accept_suggestion(const struct listener *l, char *out, size_t len)
{
	char hp[40], note[400];
	snprintf(hp, sizeof(hp), "*:%s", l->port);
	if (strcmp(l->action, "serve") == 0)
		snprintf(note, sizeof(note), "served today by rule %s: copy that rule's options here",
			 l->rule);
	else
		snprintf(note, sizeof(note),
			 "plain today; to serve TLS here, uncomment with the server's certificate and key");
	snprintf(out, len,
		 "# serve %-32s cert=/etc/tlsshim/SERVER.pem key=/etc/tlsshim/SERVER.key  # %lu accept%s on "
		 "%s; %s",
		 hp, l->count, l->count == 1 ? "" : "s", l->locals, note);
}

static int read_lines(struct report *r, FILE *f)
{
	char line[4096];
	while (fgets(line, sizeof(line), f))
		add_line(r, line);
	return 0;
}

/* The rule line suggested for one destination. */
static void suggestion(const struct seen *s, char *out, size_t len)
{
	const char *action = "tls", *why;
	char note[400];
	if (strcmp(s->action, "tls") == 0) {
		snprintf(note, sizeof(note), "tls today by rule %s: copy that rule's options here", s->rule);
	} else if (strcmp(s->action, "deny") == 0) {
		action = "deny";
		snprintf(note, sizeof(note), "denied today by rule %s", s->rule);
	} else if (strcmp(s->action, "plain") == 0 && strcmp(s->rule, "none") != 0) {
		action = "plain";
		snprintf(note, sizeof(note), "plain today by rule %s", s->rule);
	} else {
		snprintf(note, sizeof(note), "no rule today (plain)%s",
			 s->host[0] == '[' || (s->host[0] >= '0' && s->host[0] <= '9')
			     ? "; no name was resolved: the certificate needs this IP address, or add name="
			     : "");
	}
	why = note;
	char hp[300];
	snprintf(hp, sizeof(hp), "%s:%s", s->host, s->port);
	snprintf(out, len, "%-5s %-40s # %lu connect%s; %s", action, hp, s->count, s->count == 1 ? "" : "s",
		 why);
}

static int print_report(const struct report *r, const char *what, const char *output)
{
	fprintf(stderr,
		"tlsshim audit: %s: %lu TCP connect%s to %zu destination%s (observed only: nothing was "
		"changed)\n",
		what, r->lines, r->lines == 1 ? "" : "s", r->n, r->n == 1 ? "" : "s");
	for (size_t i = 0; i < r->n; i++)
		fprintf(stderr, "  %s:%s  (%s)  %lu connect%s, would %s (rule %s)\n", r->s[i].host,
			r->s[i].port, r->s[i].addrs, r->s[i].count, r->s[i].count == 1 ? "" : "s",
			r->s[i].action, r->s[i].rule);
	if (r->accepts)
		fprintf(stderr, "tlsshim audit: %s: %lu accepted connection%s on %zu port%s\n", what,
			r->accepts, r->accepts == 1 ? "" : "s", r->n_l, r->n_l == 1 ? "" : "s");
	for (size_t i = 0; i < r->n_l; i++)
		fprintf(stderr, "  port %s  (%s)  %lu accept%s, would %s (rule %s)\n", r->l[i].port,
			r->l[i].locals, r->l[i].count, r->l[i].count == 1 ? "" : "s", r->l[i].action,
			r->l[i].rule);
	FILE *f = stderr;
	if (output) {
		f = fopen(output, "we");
		if (!f) {
			cli_error("cannot write %s: %s", output, strerror(errno));
			return -1;
		}
	} else {
		fprintf(stderr, "\nSuggested policy (save it, then `tlsshim check FILE`):\n");
	}
	char date[64];
	time_t now = time(NULL);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&now));
	fprintf(
	    f,
	    "# Suggested by tlsshim audit (%s) from %lu connects of %s.\n"
	    "# Every destination seen is listed. Add the options your servers need (ca-file=, name=), and\n"
	    "# 'deny *:*' last if nothing else may leave in clear. Check it with: tlsshim check FILE\n",
	    date, r->lines, what);
	for (size_t i = 0; i < r->n; i++) {
		char line[900];
		suggestion(&r->s[i], line, sizeof(line));
		fprintf(f, "%s\n", line);
	}
	if (r->n_l)
		fprintf(f, "# Accepted connections (serve rules are consulted for these only):\n");
	for (size_t i = 0; i < r->n_l; i++) {
		char line[900];
		accept_suggestion(&r->l[i], line, sizeof(line));
		fprintf(f, "%s\n", line);
	}
	if (output) {
		if (fclose(f) != 0) {
			cli_error("cannot write %s: %s", output, strerror(errno));
			return -1;
		}
		fprintf(stderr,
			"tlsshim audit: suggested policy written to %s (check it: tlsshim check %s)\n",
			output, output);
	}
	return 0;
}

/* Runs the program in audit mode; returns its exit status (128+N for a signal), or -1. */
static int run_program(char **argv, const struct cli_policy_src *cli, const char *audit_file)
{
	char lib[PATH_MAX * 2 + 64], prog[PATH_MAX], why[2048];
	if (cli_find_library(lib, sizeof(lib)) != 0) {
		cli_error("the tlsshim library is not beside the command (looked for %s); reinstall tlsshim",
			  lib);
		return -1;
	}
	if (cli_find_program(argv[0], prog, sizeof(prog)) != 0) {
		cli_error("%s: command not found%s", argv[0], strchr(argv[0], '/') ? "" : " on PATH");
		return -1;
	}
	cli_loader_refusal("", prog, why, sizeof(why));
	if (why[0]) {
		fprintf(stderr, "tlsshim audit: refusing to run: %s (nothing could be observed).\n", why);
		return -1;
	}
	char *preload = cli_preload_value(lib, getenv("LD_PRELOAD"));
	char abs_policy[PATH_MAX];
	if (!preload || setenv("LD_PRELOAD", preload, 1) != 0 || setenv("TLSSHIM_MODE", "audit", 1) != 0 ||
	    setenv("TLSSHIM_AUDIT_FILE", audit_file, 1) != 0 ||
	    (cli->rules && setenv("TLSSHIM_RULES", cli->rules, 1) != 0) ||
	    (cli->file &&
	     setenv("TLSSHIM_POLICY", realpath(cli->file, abs_policy) ? abs_policy : cli->file, 1) != 0)) {
		free(preload);
		cli_error("out of memory setting the environment");
		return -1;
	}
	free(preload);
	pid_t pid = fork();
	if (pid < 0) {
		cli_error("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		execv(prog, argv);
		fprintf(stderr, "tlsshim: cannot execute %s: %s\n", prog, strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	/* Ctrl-C and the like go to the program (same process group); we stay for the report. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int cmd_audit(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"policy", required_argument, NULL, 'p'}, {"rule", required_argument, NULL, 'r'},
	    {"output", required_argument, NULL, 'o'}, {"from", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0}};
	struct cli_policy_src cli = {0};
	const char *output = NULL, *from = NULL;
	int c, rc = CLI_FAILED;
	struct report r = {0};
	char audit_file[] = "/tmp/tlsshim-audit-XXXXXX";
	int afd = -1;
	bool made_file = false;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+p:r:o:f:h", opts, NULL)) != -1) {
		int handled = cli_policy_option(&cli, c, optarg);
		if (handled < 0)
			goto out;
		if (handled > 0)
			continue;
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			rc = CLI_OK;
			goto out;
		default:
			rc = cli_usage_error("audit", "unknown option or missing value: '%s'",
					     argv[optind - 1]);
			goto out;
		}
	}
	if (!from && optind >= argc) {
		rc = cli_usage_error(
		    "audit", "missing the program to run (tlsshim audit [options] -- PROGRAM ARGS...)");
		goto out;
	}
	if (from && optind < argc) {
		rc = cli_usage_error("audit", "--from reads a log: give no program with it");
		goto out;
	}
	r.s = calloc(MAX_SEEN, sizeof(*r.s));
	if (!r.s) {
		cli_error("out of memory");
		goto out;
	}
	if (from) {
		FILE *f = strcmp(from, "-") == 0 ? stdin : fopen(from, "re");
		if (!f) {
			cli_error("cannot read %s: %s", from, strerror(errno));
			goto out;
		}
		read_lines(&r, f);
		if (f != stdin)
			fclose(f);
		if (r.lines == 0 && r.accepts == 0) {
			cli_error(
			    "%s holds no '%s' or '%s' line (was the service run with TLSSHIM_MODE=audit?)",
			    from, AUDIT_MARK, AUDIT_ACCEPT_MARK);
			goto out;
		}
		rc = print_report(&r, from, output) == 0 ? CLI_OK : CLI_FAILED;
		goto out;
	}
	cli_policy_use_env_if_unset(&cli);
	if (!cli_policy_is_empty(&cli)) {
		struct policy pol;
		if (cli_policy_load(&cli, &pol) != 0) {
			cli_error("not auditing %s: fix the policy first", argv[optind]);
			goto out;
		}
		policy_free(&pol);
	}
	afd = mkstemp(audit_file);
	if (afd < 0) {
		cli_error("cannot create %s: %s", audit_file, strerror(errno));
		goto out;
	}
	made_file = true;
	int status = run_program(argv + optind, &cli, audit_file);
	if (status < 0)
		goto out;
	FILE *f = fdopen(afd, "r");
	if (f) {
		afd = -1;
		read_lines(&r, f);
		fclose(f);
	}
	fputc('\n', stderr);
	if (print_report(&r, argv[optind], output) != 0)
		goto out;
	rc = status;
out:
	if (afd >= 0)
		close(afd);
	if (made_file)
		unlink(audit_file);
	free(r.s);
	cli_policy_src_free(&cli);
	return rc;
}
