/* cli.h: what the `tlsshim` subcommands share: the version, exit codes, messages and usage errors,
 * where the policy comes from (--policy/--rule or the environment), HOST:PORT destinations and how the
 * library would treat them (matching rule, verify name, SNI), and finding the library beside the
 * command. One subcommand per file (cmd_*.c); tlsshim.c dispatches. */
#ifndef TLSSHIM_CLI_H
#define TLSSHIM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

/* TLSSHIM_VERSION (from debian/changelog) and TLSSHIM_MULTIARCH come from the Makefile. */
#ifndef TLSSHIM_VERSION
#error "TLSSHIM_VERSION must be defined (the Makefile takes it from debian/changelog)"
#endif

/* Exit codes shared by every subcommand. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* ---- subcommands (argv[0] is the subcommand's name) ---- */
int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_certs(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_enable(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_disable(int argc, char **argv);

/* ---- messages (cli.c) ---- */

/* "tlsshim: ..." on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "tlsshim CMD: ..." and a pointer to --help on stderr; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- where the policy comes from (cli_policy.c) ---- */

struct cli_policy_src {
	const char *file; /* --policy FILE, or TLSSHIM_POLICY */
	char *rules;	  /* the --rule values joined with ';', or TLSSHIM_RULES (owned) */
	bool from_env;	  /* neither --policy nor --rule was given: the environment's policy */
};

/* Appends one --rule. Returns 0, or -1 when out of memory. */
int cli_policy_add_rule(struct cli_policy_src *s, const char *rule);
/* The --policy/--rule options every subcommand shares: handles getopt's option `opt` (argument arg).
 * Returns 1 when it was one of them, 0 when not, -1 after printing an error (out of memory). */
int cli_policy_option(struct cli_policy_src *s, int opt, const char *arg);
/* When neither --policy nor --rule was given, takes TLSSHIM_POLICY and TLSSHIM_RULES (empty = unset). */
void cli_policy_use_env_if_unset(struct cli_policy_src *s);
bool cli_policy_is_empty(const struct cli_policy_src *s);
/* policy_load on the source; prints "FILE:LINE:COL: error: ..." and returns -1 on failure. */
int cli_policy_load(const struct cli_policy_src *s, struct policy *p);
void cli_policy_src_free(struct cli_policy_src *s);
/* "TLSSHIM_RULES:2" or "policy.conf:7" for a rule. */
void cli_rule_where(const struct policy_rule *r, char *buf, size_t len);

/* ---- destinations (cli_dest.c) ---- */

#define CLI_MAX_ADDRS 16

struct cli_dest {
	char host[256];	   /* as given, without brackets */
	bool host_is_name; /* a name (not an address literal): the library would remember it */
	uint16_t port;
	size_t n_addrs;
	int family[CLI_MAX_ADDRS];
	uint8_t addr[CLI_MAX_ADDRS][16];
	char addr_text[CLI_MAX_ADDRS][46];
};

/* Parses HOST:PORT or [IPv6]:PORT. Returns 0, or -1 with a sentence in err. */
int cli_parse_dest(const char *arg, struct cli_dest *d, char *err, size_t errlen);
/* Resolves d->host with getaddrinfo (as a program would). Returns 0, or -1 with the resolver's
 * message in err (d->n_addrs is then 0). */
int cli_resolve_dest(struct cli_dest *d, char *err, size_t errlen);
/* The rule the library would apply to address i of d (i == d->n_addrs: no address, name only). */
const struct policy_rule *cli_match(const struct policy *p, const struct cli_dest *d, size_t i);

/* Who the library would verify and what SNI it would send (preload/connect.c connect_tls()). */
struct cli_peer {
	const char *name; /* the DNS name to verify, or NULL: the address below (IP SAN) */
	int family;	  /* the address to verify when name is NULL */
	uint8_t addr[16];
	char addr_text[46];
	const char *sni;      /* NULL: no SNI */
	const char *why_name; /* where the name (or address) came from, for people */
};
void cli_peer_for(const struct policy_rule *r, const char *remembered, int family, const uint8_t *addr,
		  struct cli_peer *out);

/* ---- what the loader would do with a program (cli_loader.c) ---- */

/* Why the dynamic loader would not preload the library into the program at path (a sentence without
 * the final period), or "" in why when it would: static, setuid/setgid, file capabilities, another ELF
 * class or machine; a "#!" script is judged by its interpreter. root ("" or NULL for /) is prefixed to
 * path and to interpreters, for a program inside another root. */
void cli_loader_refusal(const char *root, const char *path, char *why, size_t len);
/* The LD_PRELOAD value with lib first (after sanitizer runtimes, which must stay first), the entries
 * of old (':' or space separated, may be NULL) after it, and any copy of a libtlsshim.so in old dropped
 * (loading two would interpose twice). Returns a malloc'd string, or NULL when out of memory. */
char *cli_preload_value(const char *lib, const char *old);
/* Finds an executable regular file on PATH the way execvp does (empty entries mean "."); a name with a
 * '/' is taken as it is. Returns 0 with the path in out, or -1. */
int cli_find_program(const char *prog, char *out, size_t len);

/* ---- small helpers (cli.c) ---- */

/* The library beside the command: DIR/libtlsshim.so, then DIR/../lib/tlsshim/libtlsshim.so, then the
 * packaged DIR/../lib/MULTIARCH/tlsshim/libtlsshim.so, where DIR holds the running executable. Returns 0 with
 * the path, or -1 with the places looked at in buf. */
int cli_find_library(char *buf, size_t len);
/* Standard base64 with padding. out needs 4 * ((n + 2) / 3) + 1 bytes. */
void cli_base64(const uint8_t *in, size_t n, char *out);
/* True for an IPv4 or IPv6 literal. */
bool cli_is_ip_literal(const char *s);
/* True when argv holds -h or --help before any "--". */
bool cli_wants_help(int argc, char **argv);

#endif
