/* options.c: the tls option table. One row per key: its name, what a valid value looks like, the
 * parser that stores a value into struct policy_tls_opts, and the copier that applies a `defaults`
 * value to a rule. Also the built-in defaults and the strict base64 decoder used by pin-sha256.
 * The grammar (where options appear, duplicates, merging order) lives in parse.c. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/cursor.h"
#include "policy/internal.h"

#define FIELD(o, d, type)  ((type *)(void *)((char *)(o) + (d)->off))
#define CFIELD(o, d, type) ((const type *)(const void *)((const char *)(o) + (d)->off))

__attribute__((format(printf, 3, 4))) static int fail(struct pol_opt_err *e, size_t off, const char *fmt, ...)
{
	va_list ap;

	e->off = off;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int bad_value(const struct pol_opt_def *d, struct pol_opt_err *e, const char *v, size_t n)
{
	char q[64];

	return fail(e, 0, "invalid %s value '%s' (expected %s)", d->key, pol_quote(q, sizeof(q), v, n, 40),
		    d->expect);
}

static int oom(struct pol_opt_err *e)
{
	return fail(e, 0, "out of memory");
}

/* Replaces *dst with a copy of v (n bytes). */
static int set_str(char **dst, const char *v, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		return -1;
	memcpy(s, v, n);
	s[n] = '\0';
	free(*dst);
	*dst = s;
	return 0;
}

/* Index of v in words (a NULL-terminated list), or -1. */
static int word_index(const char *const *words, const char *v, size_t n)
{
	int i;

	for (i = 0; words[i]; i++)
		if (strlen(words[i]) == n && memcmp(words[i], v, n) == 0)
			return i;
	return -1;
}

static bool printable_ascii(int c)
{
	return c > 0x20 && c < 0x7f;
}

static int copy_str(const struct pol_opt_def *d, struct policy_tls_opts *dst,
		    const struct policy_tls_opts *src);

/* ---- parsers ---- */

static int parse_path(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
		      struct pol_opt_err *e)
{
	return set_str(FIELD(o, d, char *), v, n) ? oom(e) : 0;
}

/* name=: a host name (stored lower-case without trailing dot) or an IP literal (stored in the
 * canonical inet_ntop form, brackets removed, IPv4-mapped IPv6 as IPv4). */
static int parse_name(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
		      struct pol_opt_err *e)
{
	uint8_t a[16];
	char txt[INET6_ADDRSTRLEN];
	const char *s = v;
	size_t len = n;

	if (n >= 2 && v[0] == '[' && v[n - 1] == ']') {
		s = v + 1;
		len = n - 2;
		if (!pol_parse_ipv6(s, len, a))
			return bad_value(d, e, v, n);
	} else if (memchr(v, ':', n)) {
		if (!pol_parse_ipv6(s, len, a))
			return bad_value(d, e, v, n);
	} else if (pol_digits_dots(v, n)) {
		if (!pol_parse_ipv4(v, n, a))
			return fail(e, 0, "invalid IPv4 address '%.*s' in name=", (int)(n > 40 ? 40 : n), v);
		return set_str(FIELD(o, d, char *), v, n) ? oom(e) : 0;
	} else {
		char *low;

		if (!pol_hostname_ok(v, n))
			return bad_value(d, e, v, n);
		low = pol_lower_dup(v, n);
		if (!low)
			return oom(e);
		free(o->name);
		o->name = low;
		return 0;
	}
	if (pol_is_v4_mapped(a))
		inet_ntop(AF_INET, a + 12, txt, sizeof(txt));
	else
		inet_ntop(AF_INET6, a, txt, sizeof(txt));
	return set_str(FIELD(o, d, char *), txt, strlen(txt)) ? oom(e) : 0;
}

/* sni=: a host name or the word off. SNI never carries an IP address (RFC 6066). */
static int parse_sni(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
		     struct pol_opt_err *e)
{
	uint8_t a[16];
	char *low;

	if (n == 3 && memcmp(v, "off", 3) == 0) {
		free(o->sni);
		o->sni = NULL;
		o->sni_off = true;
		return 0;
	}
	if (pol_digits_dots(v, n) || pol_parse_ipv6(v, n, a) ||
	    (n >= 2 && v[0] == '[' && pol_parse_ipv6(v + 1, n - 2, a)))
		return fail(e, 0, "sni= takes a host name or off, not an IP address (SNI never carries one)");
	if (!pol_hostname_ok(v, n))
		return bad_value(d, e, v, n);
	low = pol_lower_dup(v, n);
	if (!low)
		return oom(e);
	free(o->sni);
	o->sni = low;
	o->sni_off = false;
	return 0;
}

static int parse_version(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
			 struct pol_opt_err *e)
{
	static const char *const words[] = {"1.2", "1.3", NULL};
	int i = word_index(words, v, n);

	if (i < 0)
		return bad_value(d, e, v, n);
	*FIELD(o, d, int) = 12 + i;
	return 0;
}

static int parse_ciphers(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
			 struct pol_opt_err *e)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!printable_ascii((unsigned char)v[i]))
			return fail(e, i, "invalid byte 0x%02x in ciphers= (expected %s)",
				    (unsigned char)v[i], d->expect);
	return set_str(&o->ciphers, v, n) ? oom(e) : 0;
}

/* alpn=: comma-separated protocol ids of 1-255 printable ASCII bytes each, no empty items. */
static int parse_alpn(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
		      struct pol_opt_err *e)
{
	struct cursor c = cur_make(v, 0, n);

	for (;;) {
		size_t item = c.pos, comma = cur_find(&c, ',');

		if (comma == item)
			return fail(e, item, "empty protocol in alpn= (expected %s)", d->expect);
		if (comma - item > 255)
			return fail(e, item, "alpn= protocol longer than 255 bytes");
		for (; c.pos < comma; cur_next(&c))
			if (!printable_ascii(cur_peek(&c)))
				return fail(e, c.pos,
					    "invalid byte 0x%02x in alpn= (expected printable ASCII)",
					    (unsigned)cur_peek(&c));
		if (!cur_eat(&c, ','))
			break;
	}
	return set_str(&o->alpn, v, n) ? oom(e) : 0;
}

/* groups=: the key-exchange groups this build offers and accepts. The first name of each row is the one
 * OpenSSL's -groups uses (and policy_group_name writes); the others are its common aliases. Names are
 * compared case-insensitively. */
static const struct {
	uint16_t id; /* TLS NamedGroup code point */
	const char *names[4];
} known_groups[] = {
    {29, {"X25519", NULL}},
    {23, {"P-256", "secp256r1", "prime256v1", NULL}},
    {24, {"P-384", "secp384r1", NULL}},
    {25, {"P-521", "secp521r1", NULL}},
};
#define GROUPS_EXPECT "X25519, P-256, P-384 or P-521, separated by ':' or ','"

const char *policy_group_name(uint16_t group)
{
	for (size_t i = 0; i < sizeof(known_groups) / sizeof(known_groups[0]); i++)
		if (known_groups[i].id == group)
			return known_groups[i].names[0];
	return NULL;
}

static bool same_word_ci(const char *a, const char *v, size_t n)
{
	if (strlen(a) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (pol_lower((unsigned char)a[i]) != pol_lower((unsigned char)v[i]))
			return false;
	return true;
}

/* groups=: names in preference order, separated by ':' (as OpenSSL writes them) or ','; no empty item,
 * no group twice. */
static int parse_groups(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
			struct pol_opt_err *e)
{
	uint16_t ids[POLICY_MAX_GROUPS];
	unsigned count = 0;
	size_t item = 0;

	while (item <= n) {
		size_t end = item, k;
		int id = -1;
		char q[64];

		while (end < n && v[end] != ':' && v[end] != ',')
			end++;
		if (end == item)
			return fail(e, item, "empty group in groups= (expected %s)", GROUPS_EXPECT);
		for (k = 0; k < sizeof(known_groups) / sizeof(known_groups[0]) && id < 0; k++)
			for (size_t a = 0; known_groups[k].names[a] && id < 0; a++)
				if (same_word_ci(known_groups[k].names[a], v + item, end - item))
					id = known_groups[k].id;
		if (id < 0)
			return fail(e, item, "unknown key-exchange group '%s' in groups= (expected %s)",
				    pol_quote(q, sizeof(q), v + item, end - item, 40), GROUPS_EXPECT);
		for (k = 0; k < count; k++)
			if (ids[k] == id)
				return fail(e, item, "group %s is listed twice in groups=",
					    policy_group_name((uint16_t)id));
		if (count >= POLICY_MAX_GROUPS)
			return fail(e, item, "too many groups in groups= (at most %d)", POLICY_MAX_GROUPS);
		ids[count++] = (uint16_t)id;
		item = end + 1;
	}
	memcpy(o->groups, ids, sizeof(ids[0]) * count);
	o->n_groups = count;
	return 0;
}

static int copy_groups(const struct pol_opt_def *d, struct policy_tls_opts *dst,
		       const struct policy_tls_opts *src)
{
	dst->n_groups = src->n_groups;
	memcpy(dst->groups, src->groups, sizeof(dst->groups));
	return 0;
}

/* handshake-timeout=: N (seconds), Ns or Nms; 1 ms to 300 s. */
static int parse_timeout(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
			 struct pol_opt_err *e)
{
	struct cursor c = cur_make(v, 0, n);
	unsigned long num, unit, ms;

	if (cur_peek(&c) < '0' || cur_peek(&c) > '9')
		return bad_value(d, e, v, n);
	if (!cur_take_uint(&c, 1000000ul, &num))
		return fail(e, 0, "handshake-timeout= '%.*s' is out of range (expected 1ms to 300s)",
			    (int)(n > 40 ? 40 : n), v);
	if (cur_done(&c) || (cur_left(&c) == 1 && cur_peek(&c) == 's'))
		unit = 1000;
	else if (cur_left(&c) == 2 && cur_peek(&c) == 'm' && cur_peek_at(&c, 1) == 's')
		unit = 1;
	else
		return fail(e, c.pos, "invalid unit in handshake-timeout= (expected %s)", d->expect);
	ms = num * unit;
	if (ms < 1 || ms > 300000)
		return fail(e, 0, "handshake-timeout= '%.*s' is out of range (expected 1ms to 300s)",
			    (int)(n > 40 ? 40 : n), v);
	o->handshake_timeout_ms = (unsigned)ms;
	return 0;
}

static int parse_verify(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
			struct pol_opt_err *e)
{
	static const char *const words[] = {"on", "off", "pin-only", NULL};
	static const enum policy_verify vals[] = {POLICY_VERIFY_ON, POLICY_VERIFY_OFF,
						  POLICY_VERIFY_PIN_ONLY};
	int i = word_index(words, v, n);

	if (i < 0)
		return bad_value(d, e, v, n);
	o->verify = vals[i];
	return 0;
}

static int parse_ocsp(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
		      struct pol_opt_err *e)
{
	static const char *const words[] = {"require", "prefer", "off", NULL};
	static const enum policy_ocsp vals[] = {POLICY_OCSP_REQUIRE, POLICY_OCSP_PREFER, POLICY_OCSP_OFF};
	int i = word_index(words, v, n);

	if (i < 0)
		return bad_value(d, e, v, n);
	o->ocsp_stapling = vals[i];
	return 0;
}

static int parse_truncation(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
			    struct pol_opt_err *e)
{
	static const char *const words[] = {"error", "allow", NULL};
	static const enum policy_truncation vals[] = {POLICY_TRUNCATION_ERROR, POLICY_TRUNCATION_ALLOW};
	int i = word_index(words, v, n);

	if (i < 0)
		return bad_value(d, e, v, n);
	o->truncation = vals[i];
	return 0;
}

static int parse_resumption(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
			    struct pol_opt_err *e)
{
	static const char *const words[] = {"on", "off", NULL};
	int i = word_index(words, v, n);

	if (i < 0)
		return bad_value(d, e, v, n);
	o->session_resumption = i == 0;
	return 0;
}

static const char *const starttls_words[] = {"", "smtp", "imap", "pop3", "postgres", "ldap", NULL};

const char *policy_starttls_name(enum policy_starttls st)
{
	return (unsigned)st < sizeof(starttls_words) / sizeof(starttls_words[0]) - 1 ? starttls_words[st]
										     : "";
}

const char *policy_proxy_name(enum policy_proxy p)
{
	return p == POLICY_PROXY_HTTP ? "http" : p == POLICY_PROXY_SOCKS5 ? "socks5" : "";
}

static int parse_starttls(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
			  struct pol_opt_err *e)
{
	int i = word_index(starttls_words + 1, v, n);

	if (i < 0)
		return bad_value(d, e, v, n);
	o->starttls = (enum policy_starttls)(i + 1);
	return 0;
}

/* proxy=: http://HOST:PORT or socks5://HOST:PORT (socks5h:// is the same: the shim asks the proxy for
 * the name whenever it has one). HOST is a host name, an IPv4 address or [IPv6]; the port is required;
 * nothing may follow it (no path, no user info: credentials come from proxy-user-file=). */
static int parse_proxy(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
		       struct pol_opt_err *e)
{
	static const struct {
		const char *prefix;
		enum policy_proxy kind;
	} schemes[] = {{"http://", POLICY_PROXY_HTTP},
		       {"socks5://", POLICY_PROXY_SOCKS5},
		       {"socks5h://", POLICY_PROXY_SOCKS5}};
	size_t i, pos = 0, host_start, host_len, colon;
	enum policy_proxy kind = POLICY_PROXY_NONE;
	unsigned long port = 0;
	uint8_t a[16];
	char txt[INET6_ADDRSTRLEN], *host;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t k = strlen(schemes[i].prefix);

		if (n > k && memcmp(v, schemes[i].prefix, k) == 0) {
			kind = schemes[i].kind;
			pos = k;
			break;
		}
	}
	if (kind == POLICY_PROXY_NONE)
		return bad_value(d, e, v, n);
	host_start = pos;
	if (v[pos] == '[') {
		const char *close = memchr(v + pos, ']', n - pos);

		if (!close)
			return fail(e, pos, "unterminated [IPv6] address in proxy=");
		host_start = pos + 1;
		host_len = (size_t)(close - v) - host_start;
		if (!pol_parse_ipv6(v + host_start, host_len, a))
			return fail(e, pos, "invalid IPv6 address in proxy=");
		colon = (size_t)(close - v) + 1;
		inet_ntop(AF_INET6, a, txt, sizeof(txt));
		if (pol_is_v4_mapped(a))
			inet_ntop(AF_INET, a + 12, txt, sizeof(txt));
		host = strdup(txt);
	} else {
		const char *c = memchr(v + pos, ':', n - pos);

		if (!c)
			return fail(e, 0, "proxy= needs a port (expected %s)", d->expect);
		colon = (size_t)(c - v);
		host_len = colon - pos;
		if (host_len == 0)
			return fail(e, pos, "proxy= has no host (expected %s)", d->expect);
		if (pol_digits_dots(v + pos, host_len)) {
			if (!pol_parse_ipv4(v + pos, host_len, a))
				return fail(e, pos, "invalid IPv4 address in proxy=");
			host = malloc(host_len + 1);
			if (host) {
				memcpy(host, v + pos, host_len);
				host[host_len] = '\0';
			}
		} else {
			if (!pol_hostname_ok(v + pos, host_len))
				return fail(e, pos, "invalid host name in proxy= (expected %s)", d->expect);
			host = pol_lower_dup(v + pos, host_len);
		}
	}
	if (colon >= n || v[colon] != ':') {
		free(host);
		return fail(e, colon, "proxy= needs a port (expected %s)", d->expect);
	}
	for (i = colon + 1; i < n; i++) {
		if (v[i] < '0' || v[i] > '9' || i - colon > 5) {
			free(host);
			return fail(e, i, "invalid port in proxy= (expected 1-65535 and nothing after it)");
		}
		port = port * 10 + (unsigned long)(v[i] - '0');
	}
	if (i == colon + 1 || port < 1 || port > 65535) {
		free(host);
		return fail(e, colon + 1, "invalid port in proxy= (expected 1-65535)");
	}
	if (!host)
		return oom(e);
	free(o->proxy_host);
	o->proxy_host = host;
	o->proxy = kind;
	o->proxy_port = (uint16_t)port;
	return 0;
}

static int copy_proxy(const struct pol_opt_def *d, struct policy_tls_opts *dst,
		      const struct policy_tls_opts *src)
{
	dst->proxy = src->proxy;
	dst->proxy_port = src->proxy_port;
	return copy_str(d, dst, src);
}

/* pin-sha256=: comma-separated base64 SHA-256 digests, appended to the pins already set on the line. */
static int parse_pins(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
		      struct pol_opt_err *e)
{
	struct cursor c = cur_make(v, 0, n);

	for (;;) {
		size_t item = c.pos, comma = cur_find(&c, ',');
		uint8_t digest[32];
		long len;
		char q[64];

		if (comma == item)
			return fail(e, item, "empty item in pin-sha256= (expected %s)", d->expect);
		len = pol_base64_decode(v + item, comma - item, NULL, 0);
		if (len == 32)
			len = pol_base64_decode(v + item, comma - item, digest, sizeof(digest));
		if (len < 0)
			return fail(e, item, "pin-sha256= '%s' is not valid base64",
				    pol_quote(q, sizeof(q), v + item, comma - item, 48));
		if (len != 32)
			return fail(e, item,
				    "pin-sha256= '%s' decodes to %ld bytes (expected 32: a SHA-256 digest)",
				    pol_quote(q, sizeof(q), v + item, comma - item, 48), len);
		if (o->n_pins >= POLICY_MAX_PINS)
			return fail(e, item, "too many pin-sha256 values (at most %d per rule)",
				    POLICY_MAX_PINS);
		memcpy(o->pins[o->n_pins++], digest, 32);
		cur_skip(&c, comma - item);
		if (!cur_eat(&c, ','))
			break;
	}
	return 0;
}

/* ---- copiers (defaults -> rule) ---- */

static int copy_str(const struct pol_opt_def *d, struct policy_tls_opts *dst,
		    const struct policy_tls_opts *src)
{
	const char *s = *CFIELD(src, d, char *);
	char **t = FIELD(dst, d, char *);

	if (!s) {
		free(*t);
		*t = NULL;
		return 0;
	}
	return set_str(t, s, strlen(s));
}

static int copy_raw(const struct pol_opt_def *d, struct policy_tls_opts *dst,
		    const struct policy_tls_opts *src)
{
	memcpy((char *)dst + d->off, (const char *)src + d->off, d->size);
	return 0;
}

static int copy_sni(const struct pol_opt_def *d, struct policy_tls_opts *dst,
		    const struct policy_tls_opts *src)
{
	dst->sni_off = src->sni_off;
	return copy_str(d, dst, src);
}

static int copy_pins(const struct pol_opt_def *d, struct policy_tls_opts *dst,
		     const struct policy_tls_opts *src)
{
	dst->n_pins = src->n_pins;
	memcpy(dst->pins, src->pins, sizeof(dst->pins));
	return 0;
}

/* ---- the table ---- */

#define ROW(id, k, what, p, c, field)                                                                        \
	[id] = {k,                                                                                           \
		what,                                                                                        \
		p,                                                                                           \
		c,                                                                                           \
		offsetof(struct policy_tls_opts, field),                                                     \
		sizeof(((struct policy_tls_opts *)0)->field)}

#define PATH "a file path"
#define DIR  "a directory path"

const struct pol_opt_def pol_opts[POL_OPT_COUNT] = {
    ROW(POL_OPT_NAME, "name", "a host name or an IP address", parse_name, copy_str, name),
    ROW(POL_OPT_SNI, "sni", "a host name, or off", parse_sni, copy_sni, sni),
    ROW(POL_OPT_CA_FILE, "ca-file", PATH, parse_path, copy_str, ca_file),
    ROW(POL_OPT_CA_DIR, "ca-dir", DIR, parse_path, copy_str, ca_dir),
    ROW(POL_OPT_MIN_VERSION, "min-version", "1.2 or 1.3", parse_version, copy_raw, min_version),
    ROW(POL_OPT_MAX_VERSION, "max-version", "1.2 or 1.3", parse_version, copy_raw, max_version),
    ROW(POL_OPT_CIPHERS, "ciphers", "colon-separated cipher suite names", parse_ciphers, copy_str, ciphers),
    ROW(POL_OPT_ALPN, "alpn", "comma-separated protocols, e.g. h2,http/1.1", parse_alpn, copy_str, alpn),
    ROW(POL_OPT_HANDSHAKE_TIMEOUT, "handshake-timeout", "1ms to 300s, e.g. 10, 10s or 500ms", parse_timeout,
	copy_raw, handshake_timeout_ms),
    ROW(POL_OPT_VERIFY, "verify", "on, off or pin-only", parse_verify, copy_raw, verify),
    ROW(POL_OPT_CERT, "cert", PATH, parse_path, copy_str, cert),
    ROW(POL_OPT_KEY, "key", PATH, parse_path, copy_str, key),
    ROW(POL_OPT_KEY_PASSWORD_FILE, "key-password-file", PATH, parse_path, copy_str, key_password_file),
    ROW(POL_OPT_PIN_SHA256, "pin-sha256", "base64 SHA-256 digests, comma-separated", parse_pins, copy_pins,
	pins),
    ROW(POL_OPT_CRL_FILE, "crl-file", PATH, parse_path, copy_str, crl_file),
    ROW(POL_OPT_CRL_DIR, "crl-dir", DIR, parse_path, copy_str, crl_dir),
    ROW(POL_OPT_OCSP_STAPLING, "ocsp-stapling", "require, prefer or off", parse_ocsp, copy_raw,
	ocsp_stapling),
    ROW(POL_OPT_TRUNCATION, "truncation", "error or allow", parse_truncation, copy_raw, truncation),
    ROW(POL_OPT_SESSION_RESUMPTION, "session-resumption", "on or off", parse_resumption, copy_raw,
	session_resumption),
    /* serve rules (serve.c) */
    ROW(POL_OPT_CLIENT_CA, "client-ca", "a file or directory path", parse_path, copy_str, serve.client_ca),
    ROW(POL_OPT_CLIENT_AUTH, "client-auth", "require, optional or none", pol_parse_client_auth, copy_raw,
	serve.client_auth),
    ROW(POL_OPT_ALLOW, "allow",
	"comma-separated client identities (DNS, *.suffix, URI, URI/*, email, IP, CIDR)", pol_parse_allow,
	pol_copy_allow, serve.allow),
    ROW(POL_OPT_SESSION_TICKETS, "session-tickets", "on or off", pol_parse_tickets, copy_raw,
	serve.session_tickets),
    ROW(POL_OPT_SESSION_TICKET_KEY_FILE, "session-ticket-key-file", PATH, parse_path, copy_str,
	serve.ticket_key_file),
    ROW(POL_OPT_PLAIN_FROM, "plain-from", "comma-separated addresses and networks, e.g. 127.0.0.1/32,[::1]",
	pol_parse_plain_from, pol_copy_plain_from, serve.plain_from),
    ROW(POL_OPT_COALESCE, "coalesce", "auto or off", pol_parse_coalesce, copy_raw, serve.coalesce),
    ROW(POL_OPT_STARTTLS, "starttls", "smtp, imap, pop3, postgres or ldap", parse_starttls, copy_raw,
	starttls),
    ROW(POL_OPT_PROXY, "proxy", "http://HOST:PORT or socks5://HOST:PORT", parse_proxy, copy_proxy,
	proxy_host),
    ROW(POL_OPT_PROXY_USER_FILE, "proxy-user-file", PATH, parse_path, copy_str, proxy_user_file),
    ROW(POL_OPT_GROUPS, "groups", GROUPS_EXPECT, parse_groups, copy_groups, groups),
};

const struct pol_opt_def *pol_opt_find(const char *key, size_t n)
{
	size_t i;

	for (i = 0; i < POL_OPT_COUNT; i++)
		if (strlen(pol_opts[i].key) == n && memcmp(pol_opts[i].key, key, n) == 0)
			return &pol_opts[i];
	return NULL;
}

char *pol_opt_list(char *buf, size_t cap, enum policy_action action)
{
	size_t i, o = 0;

	if (cap == 0)
		return buf;
	buf[0] = '\0';
	for (i = 0; i < POL_OPT_COUNT && o < cap; i++) {
		if (!pol_opt_allowed((enum pol_opt_id)i, action))
			continue;
		int k = snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", pol_opts[i].key);

		if (k < 0)
			break;
		o += (size_t)k;
	}
	return buf;
}

void pol_opts_init(struct policy_tls_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->handshake_timeout_ms = POLICY_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	o->verify = POLICY_VERIFY_ON;
	o->ocsp_stapling = POLICY_OCSP_PREFER;
	o->truncation = POLICY_TRUNCATION_ERROR;
	o->session_resumption = true;
	pol_serve_opts_init(&o->serve);
}

void pol_opts_free(struct policy_tls_opts *o)
{
	char **strs[] = {&o->name,	     &o->sni,
			 &o->ca_file,	     &o->ca_dir,
			 &o->ciphers,	     &o->alpn,
			 &o->cert,	     &o->key,
			 &o->crl_file,	     &o->key_password_file,
			 &o->crl_dir,	     &o->proxy_host,
			 &o->proxy_user_file};
	size_t i;

	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
	pol_serve_opts_free(&o->serve);
}

/* ---- base64 ---- */

static int b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long pol_base64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
	size_t i, o = 0;

	if (n % 4 != 0)
		return -1;
	for (i = 0; i < n; i += 4) {
		unsigned v[4], pad = 0, k;
		unsigned long bits;

		for (k = 0; k < 4; k++) {
			int c = (unsigned char)s[i + k], x;

			if (c == '=') {
				pad++;
				v[k] = 0;
				continue;
			}
			x = b64_value(c);
			if (x < 0 || pad)
				return -1;
			v[k] = (unsigned)x;
		}
		if (pad > 2 || (pad && i + 4 != n))
			return -1;
		/* Canonical: the bits below the last full byte must be zero. */
		if ((pad == 1 && (v[2] & 0x3)) || (pad == 2 && (v[1] & 0xf)))
			return -1;
		if (!out) {
			o += 3 - pad;
			continue;
		}
		if (o + 3 - pad > cap)
			return -1;
		bits =
		    (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 | (unsigned long)v[2] << 6 | v[3];
		out[o++] = (uint8_t)(bits >> 16);
		if (pad < 2)
			out[o++] = (uint8_t)(bits >> 8);
		if (pad < 1)
			out[o++] = (uint8_t)bits;
	}
	return (long)o;
}
