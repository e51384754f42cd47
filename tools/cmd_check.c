/* cmd_check.c: `tlsshim check [--strict] [--json] [FILE]`: every error in a policy (the parser stops at
 * the first one, so each failing rule is blanked and the text parsed again, at most MAX_ERRORS times)
 * and the lint warnings on what parses: shadowed rules, verify=off, missing or unreadable files, names
 * that are not host names, tls rules that can only verify an address, and alpn= offering h2.
 * Output: "FILE:LINE:COL: error|warning: ..." lines and a summary, or one JSON object. */
#include "tools/check_serve.h"
#include "tools/cli.h"
#include "tools/policy_text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: tlsshim check [--strict] [--json] [FILE]\n\n"
    "Reports every error in the policy FILE (or, without FILE, in the policy the environment names:\n"
    "TLSSHIM_RULES, then TLSSHIM_POLICY) as FILE:LINE:COL, and lint warnings: rules shadowed by an\n"
    "earlier rule, verify=off, CA/cert/key/password/CRL files that are missing or unreadable, name= or\n"
    "sni= values that are not host names, tls rules for addresses with no name= (only IP SAN\n"
    "verification is then possible), and alpn= lists offering h2.\n\n"
    "  --strict  warnings fail the check too (exit 1)\n"
    "  --json    one JSON object: {\"ok\", \"rules\", \"errors\": [...], \"warnings\": [...]}, each item "
    "with\n"
    "            file, line, column, code and message\n\n"
    "Exit status: 0 no errors (and, with --strict, no warnings), 1 otherwise, 2 bad usage.\n";

#define MAX_ERRORS 100
#define LAST_LINE  UINT_MAX /* sorts after every real line; printed without a position */
#define POLICY_MAX (1024 * 1024)

struct diag {
	char file[256];
	unsigned line, col;
	bool error;
	const char *code;
	char msg[600];
	size_t src, seq; /* for sorting: source order, then discovery order */
};

struct diags {
	struct diag *v;
	size_t n, cap;
};

static void add_diag(struct diags *d, size_t src, const char *file, unsigned line, unsigned col, bool error,
		     const char *code, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
static void add_diag(struct diags *d, size_t src, const char *file, unsigned line, unsigned col, bool error,
		     const char *code, const char *fmt, ...)
{
	for (size_t i = 0; i < d->n; i++) /* a warning from a defaults line is reported once */
		if (!error && !d->v[i].error && d->v[i].line == line && d->v[i].col == col &&
		    strcmp(d->v[i].code, code) == 0 && strcmp(d->v[i].file, file) == 0)
			return;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct diag *v = realloc(d->v, cap * sizeof(*v));
		if (!v)
			return;
		d->v = v;
		d->cap = cap;
	}
	struct diag *x = &d->v[d->n];
	snprintf(x->file, sizeof(x->file), "%s", file);
	x->line = line;
	x->col = col;
	x->error = error;
	x->code = code;
	x->src = src;
	x->seq = d->n++;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->msg, sizeof(x->msg), fmt, ap);
	va_end(ap);
}

static int diag_order(const void *a, const void *b)
{
	const struct diag *x = a, *y = b;
	if (x->src != y->src)
		return x->src < y->src ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Reads a policy file with the limits policy_load applies. */
static char *read_policy_file(const char *path, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open the policy file: %s", strerror(errno));
		return NULL;
	}
	struct stat st;
	char *buf = NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen,
			 "the policy is not a regular file (expected a file, or a symlink to one)");
		goto fail;
	}
	if (st.st_size > POLICY_MAX) {
		snprintf(err, errlen, "the policy file is larger than 1 MiB (%lld bytes)",
			 (long long)st.st_size);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	size_t n = 0;
	while (buf && n < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	close(fd);
	*len = n;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

/* Parses one source into p, collecting every error: each failing rule is blanked and the whole text
 * parsed again (so `defaults` keep their meaning), until it parses or MAX_ERRORS were found. */
static void parse_collecting(struct ptext *t, size_t src, struct policy *p, struct diags *d)
{
	for (int round = 0; round <= MAX_ERRORS; round++) {
		struct policy trial = {0};
		struct policy_error err;
		int r = policy_parse(&trial, t->text, t->len, t->name, t->rules_mode, &err);
		policy_free(&trial);
		if (r == 0) {
			policy_parse(p, t->text, t->len, t->name, t->rules_mode, &err);
			return;
		}
		add_diag(d, src, err.source, err.line, err.column, true, "syntax", "%s", err.message);
		if (err.line == 0 || !ptext_blank(t, err.line))
			return; /* nothing left to skip: stop here */
		if (round == MAX_ERRORS)
			add_diag(d, src, t->name, LAST_LINE, 0, true, "too-many",
				 "more than %d errors; stopping here", MAX_ERRORS);
	}
}

/* ---- lint ---- */

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	if (memcmp(a, b, full) != 0)
		return false;
	return rest == 0 || ((a[full] ^ b[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Every destination b matches, a matches too (by pattern; name resolution aside). */
static bool rule_covers(const struct policy_rule *a, const struct policy_rule *b)
{
	if (a->port_lo > b->port_lo || a->port_hi < b->port_hi)
		return false;
	switch (a->host_kind) {
	case POLICY_HOST_ANY:
		return true;
	case POLICY_HOST_NAME:
		return b->host_kind == POLICY_HOST_NAME && strcmp(a->host, b->host) == 0;
	case POLICY_HOST_SUFFIX:
		if (b->host_kind == POLICY_HOST_SUFFIX)
			return ends_with(b->host, a->host);
		return b->host_kind == POLICY_HOST_NAME && strlen(b->host) > strlen(a->host) - 1 &&
		       ends_with(b->host, a->host);
	case POLICY_HOST_ADDR:
	case POLICY_HOST_CIDR:
		return (b->host_kind == POLICY_HOST_ADDR || b->host_kind == POLICY_HOST_CIDR) &&
		       a->family == b->family && a->prefix_len <= b->prefix_len &&
		       prefix_eq(a->addr, b->addr, a->prefix_len);
	}
	return false;
}

struct lint {
	struct ptext *texts;
	size_t n_texts;
	struct diags *d;
};

static size_t text_of(const struct lint *l, const struct policy_rule *r)
{
	for (size_t i = 0; i < l->n_texts; i++)
		if (r->source && strcmp(l->texts[i].name, r->source) == 0)
			return i;
	return 0;
}

/* Where option key of rule r was set: in the rule itself, else on the last `defaults` line before it. */
static void option_loc(const struct lint *l, const struct policy_rule *r, const char *key, unsigned *line,
		       unsigned *col)
{
	const struct ptext *t = &l->texts[text_of(l, r)];
	*line = r->line;
	*col = ptext_option_col(t, r->line, key);
	if (*col)
		return;
	for (unsigned n = r->line; n-- > 1;) {
		if (!ptext_is_defaults(t, n))
			continue;
		unsigned c = ptext_option_col(t, n, key);
		if (c) {
			*line = n;
			*col = c;
			return;
		}
	}
	*col = 1;
}

static void warn_opt(const struct lint *l, const struct policy_rule *r, const char *key, const char *code,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void warn_opt(const struct lint *l, const struct policy_rule *r, const char *key, const char *code,
		     const char *fmt, ...)
{
	unsigned line, col;
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	option_loc(l, r, key, &line, &col);
	size_t src = text_of(l, r);
	add_diag(l->d, src, l->texts[src].name, line, col, false, code, "%s", msg);
}

static void check_path(const struct lint *l, const struct policy_rule *r, const char *key, const char *path,
		       bool want_dir)
{
	struct stat st;
	if (!path)
		return;
	if (stat(path, &st) != 0) {
		warn_opt(l, r, key, "missing-file", "%s=%s: does not exist", key, path);
		return;
	}
	if (want_dir && !S_ISDIR(st.st_mode))
		warn_opt(l, r, key, "missing-file", "%s=%s: is not a directory", key, path);
	else if (!want_dir && S_ISDIR(st.st_mode))
		warn_opt(l, r, key, "missing-file", "%s=%s: is a directory, not a file", key, path);
	else if (access(path, want_dir ? R_OK | X_OK : R_OK) != 0)
		warn_opt(l, r, key, "unreadable-file", "%s=%s: is not readable by this user", key, path);
}

/* A name the certificate check could match: LDH labels and a top-level label that is not all digits. */
static bool plausible_host_name(const char *name)
{
	if (!policy_valid_hostname(name))
		return false;
	size_t n = strlen(name);
	if (n > 0 && name[n - 1] == '.')
		n--;
	size_t start = n;
	while (start > 0 && name[start - 1] != '.')
		start--;
	for (size_t i = start; i < n; i++)
		if (name[i] < '0' || name[i] > '9')
			return true;
	return false;
}

static bool alpn_offers_h2(const char *alpn)
{
	for (const char *p = alpn; p && *p;) {
		size_t n = strcspn(p, ",");
		if (n == 2 && memcmp(p, "h2", 2) == 0)
			return true;
		p += n;
		if (*p)
			p++;
	}
	return false;
}

/* Two serve rules that can be candidates of one connection (their patterns overlap). */
static bool serve_rules_overlap(const struct policy_rule *a, const struct policy_rule *b)
{
	if (a->port_hi < b->port_lo || b->port_hi < a->port_lo)
		return false;
	return rule_covers(a, b) || rule_covers(b, a) || a->host_kind == POLICY_HOST_ANY ||
	       b->host_kind == POLICY_HOST_ANY || a->host_kind == POLICY_HOST_NAME ||
	       b->host_kind == POLICY_HOST_NAME;
}

static bool same_plain_from(const struct policy_serve_opts *a, const struct policy_serve_opts *b)
{
	return a->n_plain_from == b->n_plain_from &&
	       (a->n_plain_from == 0 ||
		memcmp(a->plain_from, b->plain_from, a->n_plain_from * sizeof(*a->plain_from)) == 0);
}

static void lint_serve(const struct lint *l, const struct policy *p, size_t j)
{
	const struct policy_rule *r = &p->rules[j];
	const struct policy_tls_opts *o = &r->tls;
	char msg[600], where[300];
	check_path(l, r, "cert", o->cert, false);
	check_path(l, r, "key", o->key, false);
	check_path(l, r, "key-password-file", o->key_password_file, false);
	check_path(l, r, "crl-file", o->crl_file, false);
	check_path(l, r, "session-ticket-key-file", o->serve.ticket_key_file, false);
	if (o->serve.client_ca) {
		struct stat st;
		bool dir = stat(o->serve.client_ca, &st) == 0 && S_ISDIR(st.st_mode);
		check_path(l, r, "client-ca", o->serve.client_ca, dir);
	}
	if (o->cert && o->key && access(o->cert, R_OK) == 0 && access(o->key, R_OK) == 0 &&
	    check_serve_key_mismatch(o, msg, sizeof(msg)))
		warn_opt(l, r, "key", "key-mismatch", "%s", msg);
	if (o->cert && access(o->cert, R_OK) == 0) {
		int days = check_serve_days_left(o->cert);
		if (days != CHECK_SERVE_NO_DATE && days < 0)
			warn_opt(l, r, "cert", "cert-expired", "cert=%s expired %d day%s ago", o->cert, -days,
				 days == -1 ? "" : "s");
		else if (days != CHECK_SERVE_NO_DATE && days < CHECK_SERVE_EXPIRY_WARN_DAYS)
			warn_opt(l, r, "cert", "cert-expiring", "cert=%s expires in %d day%s (less than %d)",
				 o->cert, days, days == 1 ? "" : "s", CHECK_SERVE_EXPIRY_WARN_DAYS);
	}
	char all[600] = ""; /* one warning for the rule's allow= (a line and column carry one) */
	for (unsigned i = 0; i < o->serve.n_allow; i++) {
		char one[280];
		if (!check_serve_allow_entry(&o->serve.allow[i], one, sizeof(one)))
			continue;
		size_t used = strlen(all);
		if (used + 3 < sizeof(all))
			snprintf(all + used, sizeof(all) - used, "%s%.280s", used ? "; " : "", one);
	}
	if (all[0])
		warn_opt(l, r, "allow", "bad-allow", "%s", all);
	/* SNI candidates: the first matching rule decides plain-from= and the ClientHello's deadline. */
	for (size_t k = 0; k < j; k++) {
		const struct policy_rule *d = &p->rules[k];
		if (d->action != POLICY_SERVE || !serve_rules_overlap(d, r))
			continue;
		cli_rule_where(d, where, sizeof(where));
		if (d->tls.handshake_timeout_ms != o->handshake_timeout_ms)
			warn_opt(
			    l, r, "handshake-timeout", "sni-disagree",
			    "handshake-timeout=%u ms differs from the earlier candidate at %s (%u ms): for "
			    "connections both match, the default's applies until the ClientHello is in",
			    o->handshake_timeout_ms, where, d->tls.handshake_timeout_ms);
		if (!same_plain_from(&d->tls.serve, &o->serve))
			warn_opt(l, r, "plain-from", "sni-disagree",
				 "plain-from= differs from the earlier candidate at %s: for connections both "
				 "match, "
				 "the default's is decided at accept, before any ClientHello",
				 where);
		break;
	}
}

/* The port where a starttls= protocol is TLS from the first byte (no upgrade dialogue), or 0. */
static unsigned implicit_tls_port(enum policy_starttls s)
{
	switch (s) {
	case POLICY_STARTTLS_SMTP:
		return 465;
	case POLICY_STARTTLS_IMAP:
		return 993;
	case POLICY_STARTTLS_POP3:
		return 995;
	case POLICY_STARTTLS_LDAP:
		return 636;
	default:
		return 0;
	}
}

/* The proxy of a proxy= rule as a one-destination rule, for rule_covers. false when it is not one. */
static bool proxy_as_rule(const struct policy_tls_opts *o, struct policy_rule *out)
{
	memset(out, 0, sizeof(*out));
	if (o->proxy == POLICY_PROXY_NONE || !o->proxy_host)
		return false;
	out->action = POLICY_PLAIN;
	out->port_lo = out->port_hi = o->proxy_port;
	uint8_t a6[16];
	if (inet_pton(AF_INET, o->proxy_host, out->addr) == 1) {
		out->host_kind = POLICY_HOST_ADDR;
		out->family = AF_INET;
		out->prefix_len = 32;
	} else if (inet_pton(AF_INET6, o->proxy_host, a6) == 1) {
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		out->host_kind = POLICY_HOST_ADDR;
		if (memcmp(a6, mapped, 12) == 0) { /* matched as IPv4, as the policy stores it */
			out->family = AF_INET;
			memcpy(out->addr, a6 + 12, 4);
			out->prefix_len = 32;
		} else {
			out->family = AF_INET6;
			memcpy(out->addr, a6, 16);
			out->prefix_len = 128;
		}
	} else {
		out->host_kind = POLICY_HOST_NAME;
		out->host = o->proxy_host; /* borrowed: lower-case, as parsed */
	}
	return true;
}

/* starttls= on the protocol's implicit-TLS port, and a deny rule covering the proxy of a proxy= rule. */
static void lint_dialogue(const struct lint *l, const struct policy *p, const struct policy_rule *r)
{
	const struct policy_tls_opts *o = &r->tls;
	unsigned port = implicit_tls_port(o->starttls);
	if (port && r->port_lo <= port && port <= r->port_hi) {
		char range[64] = "";
		if (r->port_lo != r->port_hi)
			snprintf(range, sizeof(range), " (the rule's ports %u-%u include it)", r->port_lo,
				 r->port_hi);
		warn_opt(l, r, "starttls", "implicit-tls-port",
			 "starttls=%s on port %u%s: that is the implicit-TLS port of the protocol (TLS from "
			 "the first byte, no upgrade), so the dialogue fails there; use a rule without "
			 "starttls= for port %u",
			 policy_starttls_name(o->starttls), port, range, port);
	}
	struct policy_rule px;
	if (!proxy_as_rule(o, &px))
		return;
	/* The first tls/plain/deny rule matching the proxy's address decides a direct connect to it
	 * (by pattern; a proxy host name is not resolved here). */
	for (size_t k = 0; k < p->n_rules; k++) {
		const struct policy_rule *d = &p->rules[k];
		if (d->action == POLICY_SERVE || !rule_covers(d, &px))
			continue;
		if (d->action == POLICY_DENY) {
			char where[300], pat[300];
			cli_rule_where(d, where, sizeof(where));
			policy_rule_pattern(d, pat, sizeof(pat));
			warn_opt(
			    l, r, "proxy", "proxy-denied",
			    "proxy=%s://%s:%u is covered by the deny rule at %s (deny %s): this rule's "
			    "connections still reach the proxy (the connection to the proxy is not matched "
			    "against the policy again), but the program's own connections to it are refused",
			    policy_proxy_name(o->proxy), o->proxy_host, o->proxy_port, where, pat);
		}
		break;
	}
}

static void lint_rule(const struct lint *l, const struct policy *p, size_t j)
{
	const struct policy_rule *r = &p->rules[j];
	size_t src = text_of(l, r);
	const struct ptext *t = &l->texts[src];
	unsigned host_col = ptext_token_col(t, r->line, 1);
	char where[300], pat[300];

	for (size_t k = 0; k < j; k++) {
		/* serve rules are their own list; a later serve rule with its own name= is an SNI candidate
		 */
		if ((p->rules[k].action == POLICY_SERVE) != (r->action == POLICY_SERVE) ||
		    (r->action == POLICY_SERVE && r->tls.name &&
		     (!p->rules[k].tls.name || strcmp(p->rules[k].tls.name, r->tls.name) != 0)))
			continue;
		if (!rule_covers(&p->rules[k], r))
			continue;
		cli_rule_where(&p->rules[k], where, sizeof(where));
		policy_rule_pattern(&p->rules[k], pat, sizeof(pat));
		add_diag(
		    l->d, src, t->name, r->line, host_col ? host_col : 1, false, "shadowed",
		    "this rule never applies: the earlier rule at %s (%s %s) matches every destination it "
		    "matches, and the first match wins",
		    where, policy_action_name(p->rules[k].action), pat);
		break;
	}
	if (r->action == POLICY_SERVE) {
		lint_serve(l, p, j);
		return;
	}
	if (r->action != POLICY_TLS)
		return;
	const struct policy_tls_opts *o = &r->tls;
	if (o->verify == POLICY_VERIFY_OFF)
		warn_opt(l, r, "verify", "verify-off",
			 "verify=off: the server's certificate is not checked; anyone on the path can read "
			 "and change "
			 "these connections");
	check_path(l, r, "ca-file", o->ca_file, false);
	check_path(l, r, "ca-dir", o->ca_dir, true);
	check_path(l, r, "cert", o->cert, false);
	check_path(l, r, "key", o->key, false);
	check_path(l, r, "key-password-file", o->key_password_file, false);
	check_path(l, r, "crl-file", o->crl_file, false);
	check_path(l, r, "crl-dir", o->crl_dir, true);
	if (o->name && !cli_is_ip_literal(o->name) && !plausible_host_name(o->name))
		warn_opt(
		    l, r, "name", "bad-name",
		    "name=%s is not a valid host name (its last label is all digits), so no certificate can "
		    "match it",
		    o->name);
	if (o->sni && !plausible_host_name(o->sni))
		warn_opt(l, r, "sni", "bad-name",
			 "sni=%s is not a valid host name (its last label is all digits)", o->sni);
	if (o->verify == POLICY_VERIFY_ON && !o->name &&
	    (r->host_kind == POLICY_HOST_ADDR || r->host_kind == POLICY_HOST_CIDR ||
	     r->host_kind == POLICY_HOST_ANY)) {
		policy_rule_pattern(r, pat, sizeof(pat));
		add_diag(l->d, src, t->name, r->line, host_col ? host_col : 1, false, "no-name",
			 "tls %s has no name=: when the program connects to an address it did not resolve "
			 "from a host name, only the address can be verified (IP SAN), and when it resolved "
			 "several names to the address without connecting through one getaddrinfo result, "
			 "the connect is refused (EACCES); add name=HOST if the server's certificate names a "
			 "host",
			 pat);
	}
	lint_dialogue(l, p, r);
	if (o->alpn && alpn_offers_h2(o->alpn))
		warn_opt(l, r, "alpn", "alpn-h2",
			 "alpn=%s offers h2: if the server picks it, the program must speak HTTP/2, but most "
			 "wrapped "
			 "programs speak HTTP/1.1 in clear; offer http/1.1 only unless the program speaks h2",
			 o->alpn);
}

/* ---- output ---- */

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			printf("\\n");
		else if (c == '\t')
			printf("\\t");
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_list(const struct diags *d, bool errors)
{
	bool first = true;
	printf("[");
	for (size_t i = 0; i < d->n; i++) {
		const struct diag *x = &d->v[i];
		if (x->error != errors)
			continue;
		printf("%s\n    {\"file\": ", first ? "" : ",");
		json_string(x->file);
		printf(", \"line\": %u, \"column\": %u, \"code\": ", x->line == LAST_LINE ? 0 : x->line,
		       x->col);
		json_string(x->code);
		printf(", \"message\": ");
		json_string(x->msg);
		printf("}");
		first = false;
	}
	printf("%s]", first ? "" : "\n  ");
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {{"strict", no_argument, NULL, 's'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	bool strict = false, json = false;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			strict = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return CLI_OK;
		default:
			return cli_usage_error("check", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind > 1)
		return cli_usage_error("check", "expected at most one FILE");

	struct cli_policy_src src = {0};
	if (optind < argc)
		src.file = argv[optind];
	else
		cli_policy_use_env_if_unset(&src);
	if (cli_policy_is_empty(&src))
		return cli_usage_error(
		    "check", "no policy to check: give FILE, or set TLSSHIM_POLICY or TLSSHIM_RULES");

	struct ptext texts[2];
	size_t n_texts = 0;
	struct diags d = {0};
	struct policy p = {0};
	if (src.rules) {
		char *copy = strdup(src.rules);
		if (copy && ptext_init(&texts[n_texts], "TLSSHIM_RULES", copy, strlen(copy), true) == 0) {
			parse_collecting(&texts[n_texts], n_texts, &p, &d);
			n_texts++;
		}
	}
	if (src.file) {
		char err[300];
		size_t len = 0;
		char *text = read_policy_file(src.file, &len, err, sizeof(err));
		if (!text)
			add_diag(&d, n_texts, src.file, 0, 0, true, "file", "%s", err);
		else if (ptext_init(&texts[n_texts], src.file, text, len, false) == 0) {
			parse_collecting(&texts[n_texts], n_texts, &p, &d);
			n_texts++;
		}
	}
	struct lint l = {texts, n_texts, &d};
	for (size_t j = 0; j < p.n_rules; j++)
		lint_rule(&l, &p, j);
	qsort(d.v, d.n, sizeof(*d.v), diag_order);

	size_t n_err = 0, n_warn = 0;
	for (size_t i = 0; i < d.n; i++)
		d.v[i].error ? n_err++ : n_warn++;
	bool ok = n_err == 0 && (!strict || n_warn == 0);
	if (json) {
		printf("{\n  \"ok\": %s,\n  \"strict\": %s,\n  \"rules\": %zu,\n  \"errors\": ",
		       ok ? "true" : "false", strict ? "true" : "false", p.n_rules);
		json_list(&d, true);
		printf(",\n  \"warnings\": ");
		json_list(&d, false);
		printf("\n}\n");
	} else {
		for (size_t i = 0; i < d.n; i++) {
			const struct diag *x = &d.v[i];
			if (x->line && x->line != LAST_LINE)
				printf("%s:%u:%u: %s: %s [%s]\n", x->file, x->line, x->col,
				       x->error ? "error" : "warning", x->msg, x->code);
			else
				printf("%s: %s: %s\n", x->file, x->error ? "error" : "warning", x->msg);
		}
		printf("%s%s%s: %zu rule%s, %zu error%s, %zu warning%s%s\n", src.rules ? "TLSSHIM_RULES" : "",
		       src.rules && src.file ? " + " : "", src.file ? src.file : "", p.n_rules,
		       p.n_rules == 1 ? "" : "s", n_err, n_err == 1 ? "" : "s", n_warn,
		       n_warn == 1 ? "" : "s", !ok && n_err == 0 ? " (failing: --strict)" : "");
	}
	policy_free(&p);
	for (size_t i = 0; i < n_texts; i++)
		ptext_free(&texts[i]);
	free(d.v);
	cli_policy_src_free(&src);
	return ok ? CLI_OK : CLI_FAILED;
}
