/* policy.h: the policy language. Text in, a frozen rule set out, and one question answered:
 * "what does the policy say about this destination?" Pure C: no sockets, no hooks, no globals.
 * The preload library builds one struct policy at load time and never changes it afterwards,
 * so readers need no lock. */
#ifndef TLSSHIM_POLICY_H
#define TLSSHIM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* tls, plain and deny rules answer connect(); serve rules answer listen()/accept() only: two separate
 * first-match lists in one policy (policy_match never returns a serve rule). */
enum policy_action { POLICY_PLAIN = 0, POLICY_TLS, POLICY_DENY, POLICY_SERVE };

enum policy_host_kind {
	POLICY_HOST_ANY,    /* '*' */
	POLICY_HOST_NAME,   /* exact name, compared case-insensitively */
	POLICY_HOST_SUFFIX, /* '*.suffix': one or more labels before suffix */
	POLICY_HOST_ADDR,   /* IPv4 literal or [IPv6] */
	POLICY_HOST_CIDR,   /* 10.0.0.0/8 or [fd00::]/8 */
};

enum policy_verify { POLICY_VERIFY_ON = 0, POLICY_VERIFY_OFF, POLICY_VERIFY_PIN_ONLY };
enum policy_ocsp { POLICY_OCSP_PREFER = 0, POLICY_OCSP_REQUIRE, POLICY_OCSP_OFF };
enum policy_truncation { POLICY_TRUNCATION_ERROR = 0, POLICY_TRUNCATION_ALLOW };
/* starttls=: the plaintext upgrade dialogue run between the TCP connect and the handshake. */
enum policy_starttls {
	POLICY_STARTTLS_NONE = 0,
	POLICY_STARTTLS_SMTP,
	POLICY_STARTTLS_IMAP,
	POLICY_STARTTLS_POP3,
	POLICY_STARTTLS_POSTGRES,
	POLICY_STARTTLS_LDAP,
};
/* proxy=: the egress proxy the TCP connection goes through (socks5h:// is stored as SOCKS5). */
enum policy_proxy { POLICY_PROXY_NONE = 0, POLICY_PROXY_HTTP, POLICY_PROXY_SOCKS5 };

#define POLICY_MAX_PINS			    8
#define POLICY_MAX_ALLOW		    64 /* allow= entries per rule */
#define POLICY_MAX_PLAIN_FROM		    32 /* plain-from= networks per rule */
#define POLICY_MAX_GROUPS		    8  /* groups= entries per rule */
#define POLICY_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u

/* ---- serve rules (the server side) ---- */

enum policy_client_auth {
	POLICY_CLIENT_AUTH_UNSET = 0, /* resolved after merging: require with client-ca=, else none */
	POLICY_CLIENT_AUTH_NONE,
	POLICY_CLIENT_AUTH_OPTIONAL,
	POLICY_CLIENT_AUTH_REQUIRE,
};

/* One allow= entry: a client identity, matched against the client certificate's SANs (never the CN). */
enum policy_allow_kind {
	POLICY_ALLOW_DNS,	 /* exact DNS SAN (text: lower-case, no trailing dot) */
	POLICY_ALLOW_DNS_SUFFIX, /* *.suffix (text: ".suffix"): any DNS SAN ending in it, at any depth */
	POLICY_ALLOW_URI,	 /* exact URI SAN (text: as written) */
	POLICY_ALLOW_URI_PREFIX, /* URI/ *: any URI SAN below it (text: the URI with its trailing '/') */
	POLICY_ALLOW_EMAIL,	 /* rfc822Name SAN: local part exact, domain case-insensitive */
	POLICY_ALLOW_IP,	 /* iPAddress SAN inside addr/prefix_len (an address is a /32 or /128) */
};

/* An address or network (allow= IP entries, plain-from=). IPv4-mapped IPv6 is stored as IPv4. */
struct policy_net {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix_len;
};

struct policy_allow {
	enum policy_allow_kind kind;
	char *text; /* DNS/URI/EMAIL kinds (owned); NULL for IP */
	struct policy_net net;
};

/* Options only serve rules take. */
struct policy_serve_opts {
	char *client_ca;		     /* client-ca= : a file or a directory of CA certificates */
	enum policy_client_auth client_auth; /* client-auth=require|optional|none */
	unsigned n_allow;		     /* allow= */
	struct policy_allow *allow;	     /* n_allow entries (owned) */
	bool session_tickets;		     /* session-tickets=on|off (default on) */
	char *ticket_key_file;		     /* session-ticket-key-file= */
	unsigned n_plain_from;		     /* plain-from= */
	struct policy_net *plain_from;	     /* n_plain_from networks (owned) */
	bool coalesce;			     /* coalesce=auto|off (default auto): preload/cork.h */
};

/* TLS options of one rule (after `defaults` were applied). Strings are NUL-terminated, owned by the
 * policy, NULL when unset. Versions are 12 or 13 (0 = unset: the library applies min 1.2, max 1.3). */
struct policy_tls_opts {
	char *name;	   /* name= : the name to verify (and send as SNI) */
	char *sni;	   /* sni=NAME (NULL: same as the verify name) */
	bool sni_off;	   /* sni=off */
	char *ca_file;	   /* ca-file= (NULL and no ca_dir: the system trust store) */
	char *ca_dir;	   /* ca-dir= */
	int min_version;   /* min-version= */
	int max_version;   /* max-version= */
	char *ciphers;	   /* ciphers= : colon-separated suite names, as given */
	char *alpn;	   /* alpn= : comma-separated protocol list, as given */
	unsigned n_groups; /* groups= : key-exchange groups in preference order (0: the default) */
	uint16_t groups[POLICY_MAX_GROUPS]; /* TLS NamedGroup code points (RFC 8446 4.2.7), e.g. 29 X25519 */
	unsigned handshake_timeout_ms;	    /* handshake-timeout= (e.g. 10, 10s, 500ms); default 10 s */
	enum policy_verify verify;	    /* verify=on|off|pin-only */
	char *cert;			    /* cert= client certificate (PEM or DER) */
	char *key;			    /* key= client key */
	char *key_password_file;	    /* key-password-file= */
	unsigned n_pins;		    /* pin-sha256= (comma-separated, may repeat) */
	uint8_t pins[POLICY_MAX_PINS][32];
	char *crl_file;			   /* crl-file= */
	char *crl_dir;			   /* crl-dir= */
	enum policy_ocsp ocsp_stapling;	   /* ocsp-stapling=require|prefer|off */
	enum policy_truncation truncation; /* truncation=error|allow */
	bool session_resumption;	   /* session-resumption=on|off (default on) */
	struct policy_serve_opts serve;	   /* serve rules only (policy/serve.c) */
	enum policy_starttls starttls;	   /* starttls=smtp|imap|pop3|postgres|ldap */
	enum policy_proxy proxy;	   /* proxy=http://HOST:PORT | socks5://HOST:PORT */
	char *proxy_host;		   /* the proxy's host: a lower-case name or an address (no []) */
	uint16_t proxy_port;		   /* the proxy's port (required) */
	char *proxy_user_file;		   /* proxy-user-file= : "user:password" for Basic / SOCKS5 */
};

struct policy_rule {
	enum policy_action action;
	enum policy_host_kind host_kind;
	char *host; /* NAME: lower-case name without trailing dot; SUFFIX: ".suffix" (leading dot kept) */
	int family; /* ADDR/CIDR: AF_INET or AF_INET6 (IPv4-mapped IPv6 is stored as AF_INET) */
	uint8_t addr[16];	    /* ADDR/CIDR: network byte order, 4 or 16 bytes used */
	unsigned prefix_len;	    /* CIDR: prefix length; ADDR: 32 or 128 */
	uint16_t port_lo, port_hi;  /* inclusive; '*' is 0-65535 */
	struct policy_tls_opts tls; /* meaningful for POLICY_TLS and POLICY_SERVE only */
	const char *source;	    /* "TLSSHIM_RULES" or the policy file's path (owned by the policy) */
	unsigned line; /* 1-based line (for TLSSHIM_RULES: 1-based index of the ';'-separated rule) */
};

struct policy {
	struct policy_rule *rules;
	size_t n_rules;
	char **sources; /* owned source names, freed with the policy */
	size_t n_sources;
};

/* Where and why parsing stopped. column is 1-based (byte offset in the line + 1). */
struct policy_error {
	char source[256];
	unsigned line;
	unsigned column;
	char message[512];
};

/* Parses rules from text and appends them to p. source names the text in errors and in rules.
 * rules_mode: true for TLSSHIM_RULES syntax (rules separated by ';' or newlines), false for a file
 * (one rule a line, '#' comments). Returns 0, or -1 with *err filled (p keeps the rules parsed before).
 * A `defaults` line applies to the tls rules after it within the same text. */
int policy_parse(struct policy *p, const char *text, size_t len, const char *source, bool rules_mode,
		 struct policy_error *err);

/* Builds the process policy: TLSSHIM_RULES' rules first (when rules_text is not NULL), then the file's
 * (when file_path is not NULL). Refuses files that are not regular, larger than 1 MiB, or contain NUL
 * bytes. Returns 0 or -1 with *err filled; on failure *p is emptied. */
int policy_load(struct policy *p, const char *rules_text, const char *file_path, struct policy_error *err);

void policy_free(struct policy *p);

/* A destination as the connect hook sees it. */
struct policy_dest {
	int family;	     /* AF_INET or AF_INET6 (IPv4-mapped IPv6 is matched as IPv4) */
	const uint8_t *addr; /* 4 or 16 bytes, network order */
	uint16_t port;	     /* host order */
	const char *name;    /* the name the program resolved this address from, or NULL */
};

/* Asks the caller whether host name `name` resolves to the destination's address (used for NAME rules
 * when the destination's remembered name is not that name: curl's own 'localhost', c-ares, ...).
 * May be NULL: then NAME rules match remembered names only. */
typedef bool (*policy_name_has_addr_fn)(void *ctx, const char *name, int family, const uint8_t *addr);

/* First matching tls/plain/deny rule, or NULL (which means plain). Never a serve rule. */
const struct policy_rule *policy_match(const struct policy *p, const struct policy_dest *d,
				       policy_name_has_addr_fn resolve, void *resolve_ctx);

/* ---- the server side (policy/serve.c, policy/allow.c) ---- */

/* The serve rules that match an accepted connection's local address (the one the client reached), in
 * policy order: its SNI candidates; the first is the default. Stores up to max of them in out and
 * returns how many match (possibly more than max). */
size_t policy_serve_candidates(const struct policy *p, const struct policy_dest *local,
			       policy_name_has_addr_fn resolve, void *resolve_ctx,
			       const struct policy_rule **out, size_t max);

/* The candidate a ClientHello's SNI picks: the first whose name= matches sni (exact or *.suffix,
 * case-insensitive, trailing dot ignored); the default (cands[0]) for no SNI or an unknown name.
 * NULL only when n == 0. */
const struct policy_rule *policy_serve_pick(const struct policy_rule *const *cands, size_t n,
					    const char *sni);

/* Whether a listener bound to family/addr/port is served: some serve rule can match connections on it.
 * An unspecified address (0.0.0.0, ::) accepts connections to many local addresses: then any serve rule
 * of a family it accepts (:: accepts IPv4 too unless v6only) and a matching port makes it served. */
bool policy_serve_listener(const struct policy *p, int family, const uint8_t *addr, uint16_t port,
			   bool v6only, policy_name_has_addr_fn resolve, void *resolve_ctx);

/* plain-from=: whether peer family/addr is one of the rule's plain networks. */
bool policy_serve_plain_from(const struct policy_serve_opts *o, int family, const uint8_t *addr);

/* Subject alternative name types a client certificate can carry, for allow=. */
enum policy_san_type { POLICY_SAN_DNS, POLICY_SAN_URI, POLICY_SAN_EMAIL, POLICY_SAN_IP };

/* The index of the first allow= entry that SAN value v (n bytes; for POLICY_SAN_IP 4 or 16 raw bytes)
 * matches, or -1. A DNS SAN containing '*' matches nothing: a wildcard is not an identity. */
int policy_allow_match(const struct policy_serve_opts *o, enum policy_san_type type, const void *v, size_t n);

/* Writes an allow= entry back as it would be written in a policy. */
void policy_allow_format(const struct policy_allow *a, char *buf, size_t len);

/* Helpers shared with the CLI. */
const char *policy_action_name(enum policy_action a);
/* Writes "host:port" of a rule as it would be written in a policy (e.g. "[::1]:8443", "*.corp:8000-8100"). */
void policy_rule_pattern(const struct policy_rule *r, char *buf, size_t len);
/* The name groups= writes for a NamedGroup code point ("X25519", "P-256", "P-384", "P-521", the spelling
 * of OpenSSL's -groups), or NULL for one the policy does not take. */
const char *policy_group_name(uint16_t group);
/* "smtp", "imap", ... ("" for none), and "http" / "socks5" ("" for none). */
const char *policy_starttls_name(enum policy_starttls s);
const char *policy_proxy_name(enum policy_proxy p);
/* Checks a DNS host name (LDH labels, 1-63 bytes each, <= 253 total, optional trailing dot). */
bool policy_valid_hostname(const char *name);

#endif
