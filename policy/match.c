/* match.c: policy_match, the one question the policy answers at connect time: which rule, if any,
 * applies to this destination. Rules are tried in order and the first match wins. Nothing here
 * allocates or writes: the policy is frozen, so concurrent callers need no lock.
 *
 * Semantics (documented for the README):
 *  - An IPv4-mapped IPv6 destination (::ffff:a.b.c.d) is matched as the IPv4 address a.b.c.d, and
 *    is passed to the resolve callback as AF_INET with 4 bytes.
 *  - ADDR and CIDR rules match only addresses of the same family after that normalisation (so
 *    [::]/0 matches every IPv6 destination but no IPv4 one).
 *  - NAME rules match when the destination's remembered name equals the rule's name (ASCII
 *    case-insensitively, ignoring one trailing dot); otherwise, when the destination address is
 *    known and a resolve callback was given, when the callback says the rule's name resolves to
 *    that address. The callback is only asked for rules whose port range already matched.
 *  - SUFFIX rules (*.example.com, stored as ".example.com") match only on the remembered name,
 *    which must end in ".example.com" and have at least one byte before it (any depth).
 *  - A destination whose family is neither AF_INET nor AF_INET6, or whose addr is NULL, has no
 *    known address: only ANY, NAME (by remembered name) and SUFFIX rules can match it.
 *  - serve rules are skipped: they answer accepted connections (serve.c), never a connect. */
#include <string.h>
#include <sys/socket.h>

#include "policy/internal.h"

/* Length of a name without one trailing dot. */
static size_t name_len(const char *s)
{
	size_t n = strlen(s);

	return n > 1 && s[n - 1] == '.' ? n - 1 : n;
}

static bool ascii_case_eq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (pol_lower((unsigned char)a[i]) != pol_lower((unsigned char)b[i]))
			return false;
	return true;
}

/* The first prefix bits of a and b agree. */
static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	return rest == 0 || ((a[full] ^ b[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

bool pol_rule_matches(const struct policy_rule *r, int family, const uint8_t *addr, const char *name,
		      size_t nlen, uint16_t port, policy_name_has_addr_fn resolve, void *resolve_ctx)
{
	unsigned max_bits = family == AF_INET ? 32 : 128;
	size_t hlen;

	if (port < r->port_lo || port > r->port_hi)
		return false;
	switch (r->host_kind) {
	case POLICY_HOST_ANY:
		return true;
	case POLICY_HOST_ADDR:
	case POLICY_HOST_CIDR:
		return addr && r->family == family &&
		       prefix_eq(r->addr, addr,
				 r->host_kind == POLICY_HOST_CIDR && r->prefix_len < max_bits ? r->prefix_len
											      : max_bits);
	case POLICY_HOST_NAME:
		if (!r->host)
			return false;
		hlen = strlen(r->host);
		if (name && nlen == hlen && ascii_case_eq(name, r->host, hlen))
			return true;
		return addr && resolve && resolve(resolve_ctx, r->host, family, addr);
	case POLICY_HOST_SUFFIX:
		if (!r->host || !name)
			return false;
		hlen = strlen(r->host);
		return nlen > hlen && ascii_case_eq(name + nlen - hlen, r->host, hlen);
	}
	return false;
}

const struct policy_rule *policy_match(const struct policy *p, const struct policy_dest *d,
				       policy_name_has_addr_fn resolve, void *resolve_ctx)
{
	const uint8_t *addr = NULL;
	int family = 0;
	const char *name = NULL;
	size_t nlen = 0, i;

	if (!p || !d || !p->rules)
		return NULL;
	if (d->addr && d->family == AF_INET) {
		family = AF_INET;
		addr = d->addr;
	} else if (d->addr && d->family == AF_INET6) {
		family = AF_INET6;
		addr = d->addr;
		if (pol_is_v4_mapped(addr)) {
			family = AF_INET;
			addr += 12;
		}
	}
	if (d->name) {
		name = d->name;
		nlen = name_len(name);
	}

	for (i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];

		/* serve rules form their own list (serve.c): a connect never matches one */
		if (r->action != POLICY_SERVE &&
		    pol_rule_matches(r, family, addr, name, nlen, d->port, resolve, resolve_ctx))
			return r;
	}
	return NULL;
}
