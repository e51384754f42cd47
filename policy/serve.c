/* serve.c: what serve rules add to the policy language: which options each action takes, the serve-only
 * option parsers (client-auth=, plain-from=, session-tickets=, name= as an SNI pattern), the checks made
 * on a serve rule after `defaults` were merged, and the server-side questions: which serve rules are the
 * candidates of an accepted connection, which one its SNI picks, whether a listener is served, whether a
 * peer is plain-from=. The allow= list lives in allow.c. Like the rest of policy/: no sockets, no globals.
 *
 * Semantics (documented for the README):
 *  - serve rules are a separate first-match list: policy_match (connect) never returns one, and these
 *    functions never look at tls/plain/deny rules.
 *  - A serve rule's host:port pattern is matched against the local address of an accepted connection
 *    (the address the client reached), with the same rules as a connect destination.
 *  - name= on a serve rule is the SNI name it answers: an exact host name or *.suffix (at any depth,
 *    never the bare suffix), compared case-insensitively without a trailing dot. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/cursor.h"
#include "policy/internal.h"

__attribute__((format(printf, 3, 4))) static int fail(struct pol_opt_err *e, size_t off, const char *fmt, ...)
{
	va_list ap;

	e->off = off;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- which action takes which option ---- */

bool pol_opt_allowed(enum pol_opt_id id, enum policy_action a)
{
	bool serve_only = false, both = false;

	switch (id) {
	case POL_OPT_CLIENT_CA:
	case POL_OPT_CLIENT_AUTH:
	case POL_OPT_ALLOW:
	case POL_OPT_SESSION_TICKETS:
	case POL_OPT_SESSION_TICKET_KEY_FILE:
	case POL_OPT_PLAIN_FROM:
	case POL_OPT_COALESCE:
		serve_only = true;
		break;
	case POL_OPT_NAME:
	case POL_OPT_MIN_VERSION:
	case POL_OPT_MAX_VERSION:
	case POL_OPT_CIPHERS:
	case POL_OPT_ALPN:
	case POL_OPT_HANDSHAKE_TIMEOUT:
	case POL_OPT_CERT:
	case POL_OPT_KEY:
	case POL_OPT_KEY_PASSWORD_FILE:
	case POL_OPT_CRL_FILE:
	case POL_OPT_TRUNCATION:
	case POL_OPT_GROUPS:
		both = true;
		break;
	default: /* every other option (and any added later) is for tls rules */
		break;
	}
	switch (a) {
	case POLICY_TLS:
		return !serve_only;
	case POLICY_SERVE:
		return serve_only || both;
	case POLICY_PLAIN: /* a defaults line: every option */
		return true;
	default:
		return false;
	}
}

/* ---- parsers ---- */

int pol_parse_client_auth(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
			  struct pol_opt_err *e)
{
	static const char *const words[] = {"none", "optional", "require"};
	static const enum policy_client_auth vals[] = {POLICY_CLIENT_AUTH_NONE, POLICY_CLIENT_AUTH_OPTIONAL,
						       POLICY_CLIENT_AUTH_REQUIRE};
	char q[64];

	for (size_t i = 0; i < 3; i++)
		if (strlen(words[i]) == n && memcmp(words[i], v, n) == 0) {
			o->serve.client_auth = vals[i];
			return 0;
		}
	return fail(e, 0, "invalid client-auth value '%s' (expected %s)", pol_quote(q, sizeof(q), v, n, 40),
		    d->expect);
}

/* A two-word option (on/off, auto/off): *out = true for `yes`, false for "off". */
static int parse_switch(const struct pol_opt_def *d, const char *v, size_t n, struct pol_opt_err *e,
			const char *yes, bool *out)
{
	char q[64];

	if (strlen(yes) == n && memcmp(v, yes, n) == 0)
		*out = true;
	else if (n == 3 && memcmp(v, "off", 3) == 0)
		*out = false;
	else
		return fail(e, 0, "invalid %s value '%s' (expected %s)", d->key,
			    pol_quote(q, sizeof(q), v, n, 40), d->expect);
	return 0;
}

int pol_parse_coalesce(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
		       struct pol_opt_err *e)
{
	return parse_switch(d, v, n, e, "auto", &o->serve.coalesce);
}

int pol_parse_tickets(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
		      struct pol_opt_err *e)
{
	return parse_switch(d, v, n, e, "on", &o->serve.session_tickets);
}

int pol_serve_parse_name(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
			 struct pol_opt_err *e)
{
	uint8_t a[16];
	char q[64], *low;
	size_t skip = n >= 2 && v[0] == '*' && v[1] == '.' ? 2 : 0;

	if (pol_digits_dots(v, n) || pol_parse_ipv6(v, n, a) ||
	    (n >= 2 && v[0] == '[' && pol_parse_ipv6(v + 1, n - 2, a)))
		return fail(e, 0,
			    "name= on a serve rule is the SNI name it answers, and SNI never carries an IP "
			    "address (expected a host name or *.suffix)");
	if (!pol_hostname_ok(v + skip, n - skip))
		return fail(e, skip, "invalid name= '%s' on a serve rule (expected a host name or *.suffix)",
			    pol_quote(q, sizeof(q), v, n, 40));
	low = pol_lower_dup(v, n);
	if (!low)
		return fail(e, 0, "out of memory");
	free(o->name);
	o->name = low;
	return 0;
}

/* Parses one address or network: a.b.c.d, a.b.c.d/N, [v6], [v6]/N or a bare v6 (with /N). */
static int parse_net(const char *v, size_t n, struct policy_net *out, struct pol_opt_err *e, size_t base,
		     const char *what)
{
	const char *slash = memchr(v, '/', n);
	size_t alen = slash ? (size_t)(slash - v) : n;
	const char *a = v;
	uint8_t buf[16];
	unsigned long prefix = 0;
	char q[64];

	if (alen >= 2 && a[0] == '[' && a[alen - 1] == ']') {
		a++;
		alen -= 2;
	}
	memset(out, 0, sizeof(*out));
	if (pol_parse_ipv4(a, alen, buf)) {
		out->family = AF_INET;
		memcpy(out->addr, buf, 4);
		out->prefix_len = 32;
	} else if (pol_parse_ipv6(a, alen, buf)) {
		if (pol_is_v4_mapped(buf)) {
			out->family = AF_INET;
			memcpy(out->addr, buf + 12, 4);
			out->prefix_len = 32;
		} else {
			out->family = AF_INET6;
			memcpy(out->addr, buf, 16);
			out->prefix_len = 128;
		}
	} else {
		return fail(e, base,
			    "invalid address '%s' in %s (expected e.g. 127.0.0.1, 10.0.0.0/8, [::1])",
			    pol_quote(q, sizeof(q), v, n, 40), what);
	}
	if (slash) {
		struct cursor c = cur_make(v, alen + (a != v ? 2 : 0) + 1, n);
		unsigned max = out->family == AF_INET ? 32 : 128;
		bool mapped = out->family == AF_INET && a != v && memchr(a, ':', alen);

		if (!cur_take_uint(&c, mapped ? 128 : max, &prefix) || !cur_done(&c))
			return fail(e, base + (size_t)(slash - v) + 1,
				    "invalid prefix length in %s (expected 0-%u)", what, mapped ? 128 : max);
		if (mapped) {
			if (prefix < 96)
				return fail(e, base,
					    "%s: an IPv4-mapped network needs a prefix of 96 or more", what);
			prefix -= 96;
		}
		out->prefix_len = (unsigned)prefix;
		for (unsigned i = 0; i < (out->family == AF_INET ? 4u : 16u); i++) {
			unsigned bits = out->prefix_len > i * 8 ? out->prefix_len - i * 8 : 0;
			if (bits < 8 && (out->addr[i] & (uint8_t) ~(0xff00u >> bits)))
				return fail(
				    e, base,
				    "network '%s' in %s has host bits set (expected its network address)",
				    pol_quote(q, sizeof(q), v, n, 40), what);
		}
	}
	return 0;
}

int pol_serve_parse_net(const char *v, size_t n, struct policy_net *out, struct pol_opt_err *e, size_t base,
			const char *what)
{
	return parse_net(v, n, out, e, base, what);
}

int pol_parse_plain_from(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
			 struct pol_opt_err *e)
{
	struct policy_net nets[POLICY_MAX_PLAIN_FROM];
	unsigned count = 0;
	struct cursor c = cur_make(v, 0, n);

	for (;;) {
		size_t item = c.pos, comma = cur_find(&c, ',');

		if (comma == item)
			return fail(e, item, "empty item in plain-from= (expected %s)", d->expect);
		if (count == POLICY_MAX_PLAIN_FROM)
			return fail(e, item, "too many plain-from= networks (at most %d)",
				    POLICY_MAX_PLAIN_FROM);
		if (parse_net(v + item, comma - item, &nets[count], e, item, "plain-from=") < 0)
			return -1;
		count++;
		cur_skip(&c, comma - item);
		if (!cur_eat(&c, ','))
			break;
	}
	struct policy_net *copy = malloc(count * sizeof(*copy));
	if (!copy)
		return fail(e, 0, "out of memory");
	memcpy(copy, nets, count * sizeof(*copy));
	free(o->serve.plain_from);
	o->serve.plain_from = copy;
	o->serve.n_plain_from = count;
	return 0;
}

int pol_copy_plain_from(const struct pol_opt_def *d, struct policy_tls_opts *dst,
			const struct policy_tls_opts *src)
{
	struct policy_net *copy = NULL;

	if (src->serve.n_plain_from) {
		copy = malloc(src->serve.n_plain_from * sizeof(*copy));
		if (!copy)
			return -1;
		memcpy(copy, src->serve.plain_from, src->serve.n_plain_from * sizeof(*copy));
	}
	free(dst->serve.plain_from);
	dst->serve.plain_from = copy;
	dst->serve.n_plain_from = src->serve.n_plain_from;
	return 0;
}

void pol_serve_opts_init(struct policy_serve_opts *s)
{
	memset(s, 0, sizeof(*s));
	s->session_tickets = true;
	s->coalesce = true;
}

void pol_serve_opts_free(struct policy_serve_opts *s)
{
	for (unsigned i = 0; i < s->n_allow; i++)
		free(s->allow[i].text);
	free(s->allow);
	free(s->plain_from);
	free(s->client_ca);
	free(s->ticket_key_file);
	s->allow = NULL;
	s->plain_from = NULL;
	s->client_ca = s->ticket_key_file = NULL;
	s->n_allow = s->n_plain_from = 0;
}

/* ---- checks after merging ---- */

__attribute__((format(printf, 5, 6))) static int check_fail(unsigned *col, unsigned at, char *msg, size_t cap,
							    const char *fmt, ...)
{
	va_list ap;

	*col = at;
	va_start(ap, fmt);
	vsnprintf(msg, cap, fmt, ap);
	va_end(ap);
	return -1;
}

int pol_serve_check(struct policy_tls_opts *o, uint32_t mask, uint32_t defs_mask, const unsigned *cols,
		    unsigned action_col, unsigned *col, char *msg, size_t cap)
{
	struct policy_serve_opts *s = &o->serve;
#define AT(id)	(cols[id] ? cols[id] : action_col)
#define VIA(id) ((mask & (1u << (id))) ? "" : " (after applying defaults)")

	if (!(mask & (1u << POL_OPT_TRUNCATION)) && !(defs_mask & (1u << POL_OPT_TRUNCATION)))
		o->truncation = POLICY_TRUNCATION_ALLOW; /* clients that just close are common */
	if (!o->cert || !o->key)
		return check_fail(col,
				  o->cert  ? AT(POL_OPT_CERT)
				  : o->key ? AT(POL_OPT_KEY)
					   : action_col,
				  msg, cap,
				  "serve rules need cert= and key= (the certificate to present; missing %s)",
				  !o->cert && !o->key ? "both"
				  : o->cert	      ? "key="
						      : "cert=");
	if (o->min_version && o->max_version && o->min_version > o->max_version)
		return check_fail(col, AT(POL_OPT_MAX_VERSION), msg, cap,
				  "min-version=1.%d is above max-version=1.%d%s", o->min_version % 10,
				  o->max_version % 10, VIA(POL_OPT_MAX_VERSION));
	if (o->name && (strchr(o->name, ':') || pol_digits_dots(o->name, strlen(o->name))))
		return check_fail(col, AT(POL_OPT_NAME), msg, cap,
				  "name= on a serve rule is an SNI name, never an IP address%s",
				  VIA(POL_OPT_NAME));
	if (s->client_auth == POLICY_CLIENT_AUTH_UNSET)
		s->client_auth = s->client_ca ? POLICY_CLIENT_AUTH_REQUIRE : POLICY_CLIENT_AUTH_NONE;
	if (!s->client_ca && s->client_auth != POLICY_CLIENT_AUTH_NONE)
		return check_fail(
		    col, AT(POL_OPT_CLIENT_AUTH), msg, cap,
		    "client-auth=%s needs client-ca= (the CAs that client certificates are verified "
		    "against)%s",
		    s->client_auth == POLICY_CLIENT_AUTH_REQUIRE ? "require" : "optional",
		    VIA(POL_OPT_CLIENT_AUTH));
	if (s->n_allow && !s->client_ca)
		return check_fail(
		    col, AT(POL_OPT_ALLOW), msg, cap,
		    "allow= needs client-ca= (identities come from verified client certificates)%s",
		    VIA(POL_OPT_ALLOW));
	if (s->n_allow && s->client_auth == POLICY_CLIENT_AUTH_NONE)
		return check_fail(
		    col, AT(POL_OPT_CLIENT_AUTH), msg, cap,
		    "allow= with client-auth=none would refuse every client (set client-auth=require "
		    "or optional)%s",
		    VIA(POL_OPT_CLIENT_AUTH));
	if (o->crl_file && !s->client_ca)
		return check_fail(
		    col, AT(POL_OPT_CRL_FILE), msg, cap,
		    "crl-file= on a serve rule checks client certificates: it needs client-ca=%s",
		    VIA(POL_OPT_CRL_FILE));
	if (s->ticket_key_file && !s->session_tickets)
		return check_fail(col, AT(POL_OPT_SESSION_TICKET_KEY_FILE), msg, cap,
				  "session-ticket-key-file= with session-tickets=off: remove one of them%s",
				  VIA(POL_OPT_SESSION_TICKET_KEY_FILE));
	return 0;
#undef AT
#undef VIA
}

/* ---- the server-side questions ---- */

static void normalise(int *family, const uint8_t **addr)
{
	if (*addr && *family == AF_INET6 && pol_is_v4_mapped(*addr)) {
		*family = AF_INET;
		*addr += 12;
	} else if (*family != AF_INET && *family != AF_INET6) {
		*addr = NULL;
	}
}

size_t policy_serve_candidates(const struct policy *p, const struct policy_dest *local,
			       policy_name_has_addr_fn resolve, void *resolve_ctx,
			       const struct policy_rule **out, size_t max)
{
	size_t n = 0;
	int family;
	const uint8_t *addr;

	if (!p || !local)
		return 0;
	family = local->family;
	addr = local->addr;
	normalise(&family, &addr);
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];
		const char *name = local->name;
		size_t nlen = name ? strlen(name) : 0;

		if (name && nlen > 1 && name[nlen - 1] == '.')
			nlen--;
		if (r->action != POLICY_SERVE ||
		    !pol_rule_matches(r, family, addr, name, nlen, local->port, resolve, resolve_ctx))
			continue;
		if (n < max && out)
			out[n] = r;
		n++;
	}
	return n;
}

/* Does sni (any case, maybe a trailing dot) equal name, or end in it for a "*.suffix" name? */
static bool sni_matches(const char *name, const char *sni)
{
	size_t n = strlen(sni), k;

	if (n > 1 && sni[n - 1] == '.')
		n--;
	if (name[0] == '*' && name[1] == '.') {
		k = strlen(name + 1); /* ".suffix" */
		if (n <= k)
			return false;
		sni += n - k;
		n = k;
		name++;
	} else if (strlen(name) != n) {
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (pol_lower((unsigned char)sni[i]) != (unsigned char)name[i])
			return false;
	return true;
}

const struct policy_rule *policy_serve_pick(const struct policy_rule *const *cands, size_t n, const char *sni)
{
	if (n == 0)
		return NULL;
	if (sni && *sni)
		for (size_t i = 0; i < n; i++)
			if (cands[i]->tls.name && sni_matches(cands[i]->tls.name, sni))
				return cands[i];
	return cands[0];
}

static bool addr_unspecified(int family, const uint8_t *addr)
{
	static const uint8_t zero[16];

	return !addr || memcmp(addr, zero, family == AF_INET ? 4 : 16) == 0;
}

bool policy_serve_listener(const struct policy *p, int family, const uint8_t *addr, uint16_t port,
			   bool v6only, policy_name_has_addr_fn resolve, void *resolve_ctx)
{
	if (!p)
		return false;
	normalise(&family, &addr);
	bool any = addr_unspecified(family, addr);
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (r->action != POLICY_SERVE || port < r->port_lo || port > r->port_hi)
			continue;
		if (!any) {
			if (pol_rule_matches(r, family, addr, NULL, 0, port, resolve, resolve_ctx))
				return true;
			continue;
		}
		/* A wildcard listener: any rule that can match one of the addresses it accepts. */
		if (r->host_kind == POLICY_HOST_ADDR || r->host_kind == POLICY_HOST_CIDR) {
			if (r->family == family || (family == AF_INET6 && !v6only && r->family == AF_INET))
				return true;
			continue;
		}
		return true; /* * or a name (resolved to a local address) */
	}
	return false;
}

bool policy_serve_plain_from(const struct policy_serve_opts *o, int family, const uint8_t *addr)
{
	if (!o)
		return false;
	normalise(&family, &addr);
	if (!addr)
		return false;
	for (unsigned i = 0; i < o->n_plain_from; i++) {
		const struct policy_net *n = &o->plain_from[i];
		unsigned full = n->prefix_len / 8, rest = n->prefix_len % 8;

		if (n->family != family || memcmp(n->addr, addr, full) != 0)
			continue;
		if (rest == 0 || ((n->addr[full] ^ addr[full]) & (uint8_t)(0xff00u >> rest)) == 0)
			return true;
	}
	return false;
}
