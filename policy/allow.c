/* allow.c: the allow= list of serve rules: parsing its entries and matching a client certificate's
 * subject alternative names against them (policy_allow_match). Never the CN.
 *
 * Entry syntax (documented for the README), decided in this order:
 *  - contains "://": a URI SAN: scheme "://" rest, the scheme a letter then letters, digits, '+', '-'
 *    or '.'. Exact (byte for byte), or ending in a slash and a star: any URI SAN that starts with the part
 * before the '*' and has at least one more byte (spiffe://corp/ns/prod/ followed by a star takes every ID
 * below prod/). A '*' anywhere else is an error.
 *  - contains '@': an email (rfc822Name) SAN: local@domain, the local part exact, the domain a host
 *    name compared case-insensitively.
 *  - an IPv4 address, [IPv6] (or bare IPv6), or a network with /N: an iPAddress SAN inside it.
 *  - otherwise a DNS SAN: a host name (exact, case-insensitive, trailing dot ignored) or *.suffix (any
 *    name ending in .suffix at any depth, never the bare suffix). A DNS SAN that itself contains '*'
 *    matches nothing: a wildcard certificate is not one client's identity. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <arpa/inet.h>

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

static bool scheme_ok(const char *s, size_t n)
{
	if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* One entry (v, n bytes, at offset base of the value) into *a. */
static int parse_entry(const char *v, size_t n, size_t base, struct policy_allow *a, struct pol_opt_err *e)
{
	const char *sep = NULL, *at;
	char q[64];

	memset(a, 0, sizeof(*a));
	for (size_t i = 0; i + 3 <= n; i++)
		if (memcmp(v + i, "://", 3) == 0) {
			sep = v + i;
			break;
		}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return fail(e, base + i, "invalid byte 0x%02x in allow= (expected printable ASCII)",
				    (unsigned char)v[i]);
	if (sep) {
		size_t slen = (size_t)(sep - v);
		const char *star = memchr(v, '*', n);

		if (!scheme_ok(v, slen))
			return fail(e, base,
				    "invalid URI scheme in allow= '%s' (expected e.g. spiffe://domain/path)",
				    pol_quote(q, sizeof(q), v, n, 40));
		if (n == slen + 3)
			return fail(e, base, "allow= URI '%s' has nothing after '://'",
				    pol_quote(q, sizeof(q), v, n, 40));
		if (star && (star != v + n - 1 || v[n - 2] != '/' || n - 1 == slen + 3))
			return fail(e, base + (size_t)(star - v),
				    "'*' in an allow= URI only as a final '/*' (any path below it)");
		a->kind = star ? POLICY_ALLOW_URI_PREFIX : POLICY_ALLOW_URI;
		a->text = dup_n(v, star ? n - 1 : n);
		return a->text ? 0 : fail(e, base, "out of memory");
	}
	at = memchr(v, '@', n);
	if (at) {
		size_t local = (size_t)(at - v), dlen = n - local - 1;

		if (local == 0 || memchr(at + 1, '@', dlen) || !pol_hostname_ok(at + 1, dlen) ||
		    (dlen && at[dlen] == '.'))
			return fail(e, base, "invalid email '%s' in allow= (expected local@domain.example)",
				    pol_quote(q, sizeof(q), v, n, 40));
		a->kind = POLICY_ALLOW_EMAIL;
		a->text = dup_n(v, n);
		if (!a->text)
			return fail(e, base, "out of memory");
		for (size_t i = local + 1; i < n; i++)
			a->text[i] = (char)pol_lower((unsigned char)a->text[i]);
		return 0;
	}
	if (memchr(v, ':', n) || memchr(v, '/', n) || v[0] == '[' || pol_digits_dots(v, n)) {
		a->kind = POLICY_ALLOW_IP;
		return pol_serve_parse_net(v, n, &a->net, e, base, "allow=");
	}
	if (n >= 2 && v[0] == '*' && v[1] == '.') {
		if (!pol_hostname_ok(v + 2, n - 2))
			return fail(e, base + 2,
				    "invalid suffix '%s' in allow= (expected e.g. *.clients.example)",
				    pol_quote(q, sizeof(q), v, n, 40));
		a->kind = POLICY_ALLOW_DNS_SUFFIX;
		a->text = pol_lower_dup(v + 1, n - 1);
	} else {
		if (!pol_hostname_ok(v, n))
			return fail(
			    e, base,
			    "invalid identity '%s' in allow= (expected a DNS name, *.suffix, a URI, an "
			    "email, an IP address or a network)",
			    pol_quote(q, sizeof(q), v, n, 40));
		a->kind = POLICY_ALLOW_DNS;
		a->text = pol_lower_dup(v, n);
	}
	return a->text ? 0 : fail(e, base, "out of memory");
}

int pol_parse_allow(const struct pol_opt_def *d, struct policy_tls_opts *o, const char *v, size_t n,
		    struct pol_opt_err *e)
{
	struct policy_allow *list = calloc(POLICY_MAX_ALLOW, sizeof(*list));
	struct cursor c = cur_make(v, 0, n);
	unsigned count = 0;
	int rc = -1;

	if (!list)
		return fail(e, 0, "out of memory");
	for (;;) {
		size_t item = c.pos, comma = cur_find(&c, ',');

		if (comma == item) {
			fail(e, item, "empty item in allow= (expected %s)", d->expect);
			goto out;
		}
		if (count == POLICY_MAX_ALLOW) {
			fail(e, item, "too many allow= entries (at most %d per rule)", POLICY_MAX_ALLOW);
			goto out;
		}
		if (parse_entry(v + item, comma - item, item, &list[count], e) < 0)
			goto out;
		count++;
		cur_skip(&c, comma - item);
		if (!cur_eat(&c, ','))
			break;
	}
	for (unsigned i = 0; i < o->serve.n_allow; i++)
		free(o->serve.allow[i].text);
	free(o->serve.allow);
	o->serve.allow = list;
	o->serve.n_allow = count;
	list = NULL;
	count = 0;
	rc = 0;
out:
	if (list) {
		for (unsigned i = 0; i <= count && i < POLICY_MAX_ALLOW; i++)
			free(list[i].text);
		free(list);
	}
	return rc;
}

int pol_copy_allow(const struct pol_opt_def *d, struct policy_tls_opts *dst,
		   const struct policy_tls_opts *src)
{
	struct policy_allow *list = NULL;
	unsigned n = src->serve.n_allow;

	if (n) {
		list = calloc(n, sizeof(*list));
		if (!list)
			return -1;
		for (unsigned i = 0; i < n; i++) {
			list[i] = src->serve.allow[i];
			if (src->serve.allow[i].text && !(list[i].text = strdup(src->serve.allow[i].text))) {
				for (unsigned k = 0; k < i; k++)
					free(list[k].text);
				free(list);
				return -1;
			}
		}
	}
	for (unsigned i = 0; i < dst->serve.n_allow; i++)
		free(dst->serve.allow[i].text);
	free(dst->serve.allow);
	dst->serve.allow = list;
	dst->serve.n_allow = n;
	return 0;
}

/* ---- matching ---- */

static bool case_eq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (pol_lower((unsigned char)a[i]) != pol_lower((unsigned char)b[i]))
			return false;
	return true;
}

static bool net_contains(const struct policy_net *net, int family, const uint8_t *addr)
{
	unsigned full = net->prefix_len / 8, rest = net->prefix_len % 8;

	if (net->family != family || memcmp(net->addr, addr, full) != 0)
		return false;
	return rest == 0 || ((net->addr[full] ^ addr[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

static bool entry_matches(const struct policy_allow *a, enum policy_san_type type, const char *s, size_t n,
			  int family, const uint8_t *addr)
{
	size_t k;

	switch (a->kind) {
	case POLICY_ALLOW_DNS:
		return type == POLICY_SAN_DNS && strlen(a->text) == n && case_eq(a->text, s, n);
	case POLICY_ALLOW_DNS_SUFFIX:
		k = strlen(a->text);
		return type == POLICY_SAN_DNS && n > k && case_eq(a->text, s + n - k, k);
	case POLICY_ALLOW_URI:
		return type == POLICY_SAN_URI && strlen(a->text) == n && memcmp(a->text, s, n) == 0;
	case POLICY_ALLOW_URI_PREFIX:
		k = strlen(a->text);
		return type == POLICY_SAN_URI && n > k && memcmp(a->text, s, k) == 0;
	case POLICY_ALLOW_EMAIL: {
		const char *at = memchr(s, '@', n);
		size_t local;

		if (type != POLICY_SAN_EMAIL || !at || strlen(a->text) != n)
			return false;
		local = (size_t)(at - s);
		return memcmp(a->text, s, local + 1) == 0 &&
		       case_eq(a->text + local + 1, at + 1, n - local - 1);
	}
	case POLICY_ALLOW_IP:
		return type == POLICY_SAN_IP && addr && net_contains(&a->net, family, addr);
	}
	return false;
}

int policy_allow_match(const struct policy_serve_opts *o, enum policy_san_type type, const void *v, size_t n)
{
	const char *s = v;
	const uint8_t *addr = NULL;
	int family = 0;

	if (!o || !v)
		return -1;
	if (type == POLICY_SAN_IP) {
		if (n == 4) {
			family = AF_INET;
			addr = v;
		} else if (n == 16) {
			family = AF_INET6;
			addr = v;
			if (pol_is_v4_mapped(addr)) {
				family = AF_INET;
				addr += 12;
			}
		} else {
			return -1;
		}
	} else {
		if (n == 0 || memchr(s, '\0', n))
			return -1; /* an embedded NUL is an attack on C string compares */
		if (type == POLICY_SAN_DNS) {
			if (memchr(s, '*', n))
				return -1;
			if (n > 1 && s[n - 1] == '.')
				n--;
		}
	}
	for (unsigned i = 0; i < o->n_allow; i++)
		if (entry_matches(&o->allow[i], type, s, n, family, addr))
			return (int)i;
	return -1;
}

void policy_allow_format(const struct policy_allow *a, char *buf, size_t len)
{
	char txt[INET6_ADDRSTRLEN];

	if (!buf || len == 0)
		return;
	switch (a->kind) {
	case POLICY_ALLOW_DNS:
	case POLICY_ALLOW_URI:
	case POLICY_ALLOW_EMAIL:
		snprintf(buf, len, "%s", a->text);
		return;
	case POLICY_ALLOW_DNS_SUFFIX:
		snprintf(buf, len, "*%s", a->text);
		return;
	case POLICY_ALLOW_URI_PREFIX:
		snprintf(buf, len, "%s*", a->text);
		return;
	case POLICY_ALLOW_IP:
		inet_ntop(a->net.family, a->net.addr, txt, sizeof(txt));
		if (a->net.prefix_len == (a->net.family == AF_INET ? 32u : 128u))
			snprintf(buf, len, a->net.family == AF_INET ? "%s" : "[%s]", txt);
		else
			snprintf(buf, len, a->net.family == AF_INET ? "%s/%u" : "[%s]/%u", txt,
				 a->net.prefix_len);
		return;
	}
	buf[0] = '\0';
}
