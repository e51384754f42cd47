/* internal.h: declarations shared between the policy/ sources (hosts.c, options.c, parse.c,
 * match.c, format.c). Not part of the public contract in policy.h; nothing outside policy/ and its
 * unit tests should include it. Every symbol here is prefixed pol_ to stay clear of preload/. */
#ifndef TLSSHIM_POLICY_INTERNAL_H
#define TLSSHIM_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

#define POL_MAX_LINE	 4096u		/* bytes in one line (one rule of TLSSHIM_RULES) */
#define POL_MAX_FILE	 (1024u * 1024) /* bytes in a policy file */
#define POL_RULES_SOURCE "TLSSHIM_RULES"

/* ---- hosts.c: host names and IP literals ---- */

/* LDH labels of 1-63 bytes, <= 253 bytes in all, one optional trailing dot. */
bool pol_hostname_ok(const char *s, size_t n);
/* Strict dotted quad: four decimal parts 0-255, no leading zeros, nothing else. */
bool pol_parse_ipv4(const char *s, size_t n, uint8_t out[4]);
/* An IPv6 literal without brackets or zone (inet_pton syntax). */
bool pol_parse_ipv6(const char *s, size_t n, uint8_t out[16]);
/* ::ffff:a.b.c.d */
bool pol_is_v4_mapped(const uint8_t a[16]);
/* Only digits and dots, at least one digit (so it must be an IPv4 literal, not a name). */
bool pol_digits_dots(const char *s, size_t n);
/* Lower-cased copy without one trailing dot; NULL when out of memory. */
char *pol_lower_dup(const char *s, size_t n);
/* Writes s for an error message: printable ASCII as is, other bytes as \xNN, cut to about max
 * bytes with "..." appended. Always NUL-terminates (cap > 0). Returns out. */
char *pol_quote(char *out, size_t cap, const char *s, size_t n, size_t max);
static inline int pol_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* ---- options.c: the tls option table ---- */

enum pol_opt_id {
	POL_OPT_NAME,
	POL_OPT_SNI,
	POL_OPT_CA_FILE,
	POL_OPT_CA_DIR,
	POL_OPT_MIN_VERSION,
	POL_OPT_MAX_VERSION,
	POL_OPT_CIPHERS,
	POL_OPT_ALPN,
	POL_OPT_HANDSHAKE_TIMEOUT,
	POL_OPT_VERIFY,
	POL_OPT_CERT,
	POL_OPT_KEY,
	POL_OPT_KEY_PASSWORD_FILE,
	POL_OPT_PIN_SHA256,
	POL_OPT_CRL_FILE,
	POL_OPT_CRL_DIR,
	POL_OPT_OCSP_STAPLING,
	POL_OPT_TRUNCATION,
	POL_OPT_SESSION_RESUMPTION,
	/* serve rules only (serve.c) */
	POL_OPT_CLIENT_CA,
	POL_OPT_CLIENT_AUTH,
	POL_OPT_ALLOW,
	POL_OPT_SESSION_TICKETS,
	POL_OPT_SESSION_TICKET_KEY_FILE,
	POL_OPT_PLAIN_FROM,
	POL_OPT_COALESCE,
	POL_OPT_STARTTLS,
	POL_OPT_PROXY,
	POL_OPT_PROXY_USER_FILE,
	POL_OPT_GROUPS,
	POL_OPT_COUNT
};

/* Why a value was refused: off is the byte offset inside the value the message is about. */
struct pol_opt_err {
	size_t off;
	char msg[200];
};

struct pol_opt_def {
	const char *key;
	const char *expect; /* what a valid value looks like, for messages */
	/* Parses value v (n > 0 bytes, NUL-terminated) into o. Returns 0, or -1 with *e filled. */
	int (*parse)(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
		     struct pol_opt_err *e);
	/* Copies this key's setting from src into dst (a `defaults` value into a rule). Returns 0 or
	 * -1 when out of memory. */
	int (*copy)(const struct pol_opt_def *d, struct policy_tls_opts *dst,
		    const struct policy_tls_opts *src);
	size_t off;  /* the field in struct policy_tls_opts, for the generic parsers and copiers */
	size_t size; /* its size, for the generic copier */
};

extern const struct pol_opt_def pol_opts[POL_OPT_COUNT];

/* The row for key (n bytes), or NULL. */
const struct pol_opt_def *pol_opt_find(const char *key, size_t n);
/* "name, sni, ca-file, ...": the keys rules of `action` take (POLICY_PLAIN: every key, for defaults). */
char *pol_opt_list(char *buf, size_t cap, enum policy_action action);
/* Built-in defaults: everything unset, verify on, 10 s handshake timeout, resumption on. */
void pol_opts_init(struct policy_tls_opts *o);
void pol_opts_free(struct policy_tls_opts *o);
/* Strict RFC 4648 base64 (standard alphabet, padding required, no whitespace, canonical).
 * Returns the decoded length, or -1 if s is not valid base64 or would decode to more than cap.
 * With out NULL it only validates and counts (cap is ignored). */
long pol_base64_decode(const char *s, size_t n, uint8_t *out, size_t cap);

/* ---- serve.c: what serve rules add ---- */

/* Whether rules of action a take option id (defaults lines take every option, and apply each to the
 * rules that take it). Options not named in serve.c belong to tls rules only. */
bool pol_opt_allowed(enum pol_opt_id id, enum policy_action a);
/* The parsers and copiers of the serve-only rows of the option table. */
int pol_parse_client_auth(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
			  struct pol_opt_err *e);
int pol_parse_allow(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
		    struct pol_opt_err *e);
int pol_parse_plain_from(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
			 struct pol_opt_err *e);
int pol_parse_coalesce(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
		       struct pol_opt_err *e);
int pol_parse_tickets(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
		      struct pol_opt_err *e);
int pol_copy_allow(const struct pol_opt_def *d, struct policy_tls_opts *dst,
		   const struct policy_tls_opts *src);
int pol_copy_plain_from(const struct pol_opt_def *d, struct policy_tls_opts *dst,
			const struct policy_tls_opts *src);
/* name= on a serve rule: the SNI name it answers, an exact host name or *.suffix (stored lower-case,
 * *.suffix kept as written); an IP literal is an error (SNI never carries one). */
int pol_serve_parse_name(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
			 struct pol_opt_err *e);
/* The checks on a serve rule's merged options (mask: keys the rule set itself; cols: where). Resolves
 * client-auth's default and the serve default of truncation=. Returns 0, or -1 with *col and msg. */
int pol_serve_check(struct policy_tls_opts *o, uint32_t mask, uint32_t defs_mask, const unsigned *cols,
		    unsigned action_col, unsigned *col, char *msg, size_t cap);
/* One address or network of a list (allow= IP entries, plain-from=): a.b.c.d[/N], [v6][/N] or v6[/N];
 * host bits set are an error. base: v's offset in the option value, for e->off; what: "plain-from=". */
int pol_serve_parse_net(const char *v, size_t n, struct policy_net *out, struct pol_opt_err *e, size_t base,
			const char *what);
void pol_serve_opts_init(struct policy_serve_opts *s);
void pol_serve_opts_free(struct policy_serve_opts *s);

/* ---- match.c ---- */

/* Whether one rule's host and port pattern matches (family/addr normalised: IPv4-mapped as IPv4;
 * name/nlen: the remembered name without trailing dot, or NULL). */
bool pol_rule_matches(const struct policy_rule *r, int family, const uint8_t *addr, const char *name,
		      size_t nlen, uint16_t port, policy_name_has_addr_fn resolve, void *resolve_ctx);

#endif
