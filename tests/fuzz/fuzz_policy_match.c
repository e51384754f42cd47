/* fuzz_policy_match.c: libFuzzer target for policy_match. The input is a destination line followed
 * by policy text:
 *
 *     <address or -> <port> <name or -> [flags]\n
 *     <policy text...>
 *
 * flags: 'r' gives policy_match a (deterministic, fake) resolve callback; 'R' parses the policy as
 * TLSSHIM_RULES instead of a file. The verdict of policy_match is compared with a slow reference
 * matcher written independently here from the documented semantics, for that destination and for
 * destinations derived from each rule (port, prefix and name edges). */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Says yes for some (name, address) pairs, deterministically. */
static bool fake_resolve(void *ctx, const char *name, int family, const uint8_t *addr)
{
	unsigned h = 2166136261u, i, n = family == AF_INET ? 4 : 16;

	if (family != AF_INET && family != AF_INET6)
		abort();
	++*(unsigned *)ctx;
	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	for (i = 0; i < n; i++)
		h = (h ^ addr[i]) * 16777619u;
	return (h & 3) == 0;
}

/* Lower-cased copy without one trailing dot. */
static void lower_copy(char *out, size_t cap, const char *s)
{
	size_t n = strlen(s), i;

	if (n > 1 && s[n - 1] == '.')
		n--;
	if (n >= cap)
		n = cap - 1;
	for (i = 0; i < n; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	out[n] = '\0';
}

static bool bit(const uint8_t *a, unsigned i)
{
	return (a[i / 8] >> (7 - i % 8)) & 1;
}

/* The reference matcher: obvious rather than fast. */
static const struct policy_rule *ref_match(const struct policy *p, const struct policy_dest *d,
					   bool use_resolve, unsigned *calls)
{
	uint8_t a[16];
	int fam = 0;
	bool have_addr = false;
	char name[4096];
	size_t i;
	unsigned k;

	if (d->addr && (d->family == AF_INET || d->family == AF_INET6)) {
		have_addr = true;
		fam = d->family;
		memcpy(a, d->addr, fam == AF_INET ? 4 : 16);
		if (fam == AF_INET6) {
			bool mapped = a[10] == 0xff && a[11] == 0xff;

			for (k = 0; k < 10; k++)
				mapped = mapped && a[k] == 0;
			if (mapped) {
				fam = AF_INET;
				memmove(a, a + 12, 4);
			}
		}
	}
	if (d->name)
		lower_copy(name, sizeof(name), d->name);

	for (i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];
		bool hit = false;

		if (r->action == POLICY_SERVE) /* serve rules answer accepted connections only */
			continue;
		if (d->port < r->port_lo || d->port > r->port_hi)
			continue;
		switch (r->host_kind) {
		case POLICY_HOST_ANY:
			hit = true;
			break;
		case POLICY_HOST_ADDR:
		case POLICY_HOST_CIDR:
			if (have_addr && r->family == fam) {
				unsigned bits = r->host_kind == POLICY_HOST_ADDR ? (fam == AF_INET ? 32 : 128)
										 : r->prefix_len;

				hit = true;
				for (k = 0; k < bits; k++)
					hit = hit && bit(a, k) == bit(r->addr, k);
			}
			break;
		case POLICY_HOST_NAME:
			hit = d->name && strcmp(name, r->host) == 0;
			if (!hit && have_addr && use_resolve)
				hit = fake_resolve(calls, r->host, fam, a);
			break;
		case POLICY_HOST_SUFFIX: {
			size_t nl, hl = strlen(r->host);

			if (!d->name)
				break;
			nl = strlen(name);
			hit = nl > hl && strcmp(name + nl - hl, r->host) == 0;
			break;
		}
		}
		if (hit)
			return r;
	}
	return NULL;
}

static void compare(const struct policy *p, const struct policy_dest *d, bool resolve)
{
	unsigned calls = 0, ref_calls = 0;
	const struct policy_rule *got = policy_match(p, d, resolve ? fake_resolve : NULL, &calls);
	const struct policy_rule *want = ref_match(p, d, resolve, &ref_calls);

	if (got != want || calls != ref_calls) {
		fprintf(stderr, "policy_match gave rule %td, the reference %td (resolver calls %u vs %u)\n",
			got ? got - p->rules : (ptrdiff_t)-1, want ? want - p->rules : (ptrdiff_t)-1, calls,
			ref_calls);
		abort();
	}
}

/* Destinations at the edges of rule r: its port range +-1, its address with the bits around the
 * prefix flipped (also as IPv4-mapped IPv6), its name in upper case, one label deeper, glued onto
 * another label, and shortened. */
static void compare_edges(const struct policy *p, const struct policy_rule *r, const struct policy_dest *base,
			  bool resolve)
{
	struct policy_dest d = *base;
	unsigned bits = r->family == AF_INET ? 32 : 128;
	uint8_t a[16], m[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	char name[600];
	int k, i;

	for (i = 0; i < 4; i++) {
		if ((i == 2 && r->port_lo == 0) || (i == 3 && r->port_hi == 65535))
			continue;
		d.port = (uint16_t)(i == 0   ? r->port_lo
				    : i == 1 ? r->port_hi
				    : i == 2 ? r->port_lo - 1
					     : r->port_hi + 1);
		compare(p, &d, resolve);
	}
	d.port = r->port_lo;

	if (r->host_kind == POLICY_HOST_ADDR || r->host_kind == POLICY_HOST_CIDR) {
		for (k = (int)r->prefix_len - 2; k <= (int)r->prefix_len + 1; k++) {
			memcpy(a, r->addr, bits / 8);
			if (k >= 0 && k < (int)bits)
				a[k / 8] ^= (uint8_t)(0x80 >> (k % 8));
			d.family = r->family;
			d.addr = a;
			compare(p, &d, resolve);
			if (r->family == AF_INET) {
				memcpy(m + 12, a, 4);
				d.family = AF_INET6;
				d.addr = m;
				compare(p, &d, resolve);
			}
		}
		d.family = base->family;
		d.addr = base->addr;
	}

	if ((r->host_kind == POLICY_HOST_NAME || r->host_kind == POLICY_HOST_SUFFIX) && r->host) {
		const char *h = r->host, *bare = h[0] == '.' ? h + 1 : h;

		for (i = 0; i < 5; i++) {
			if (i == 0)
				snprintf(name, sizeof(name), "%s", h);
			else if (i == 1)
				snprintf(name, sizeof(name), "%s.", h);
			else if (i == 2)
				snprintf(name, sizeof(name), "x.%s", bare);
			else if (i == 3)
				snprintf(name, sizeof(name), "x%s", bare);
			else
				snprintf(name, sizeof(name), "%s", h + 1);
			if (i == 1)
				for (k = 0; name[k]; k++)
					if (name[k] >= 'a' && name[k] <= 'z')
						name[k] = (char)(name[k] - 'a' + 'A');
			d.name = name;
			compare(p, &d, resolve);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *nl = memchr(data, '\n', size);
	char head[256], ip[128] = "-", name[200] = "-", flags[16] = "";
	unsigned port = 0;
	uint8_t addr[16];
	struct policy_dest d = {0, NULL, 0, NULL};
	struct policy p = {0};
	struct policy_error e;
	size_t hlen = nl ? (size_t)(nl - text) : size, body, i;
	char *copy;
	bool rules, resolve;

	if (hlen >= sizeof(head))
		return 0;
	memcpy(head, text, hlen);
	head[hlen] = '\0';
	if (strlen(head) != hlen || sscanf(head, "%127s %u %199s %15s", ip, &port, name, flags) < 2)
		return 0;
	rules = strchr(flags, 'R') != NULL;
	resolve = strchr(flags, 'r') != NULL;
	if (inet_pton(AF_INET, ip, addr) == 1)
		d.family = AF_INET;
	else if (inet_pton(AF_INET6, ip, addr) == 1)
		d.family = AF_INET6;
	if (d.family)
		d.addr = addr;
	d.port = (uint16_t)port;
	d.name = strcmp(name, "-") ? name : NULL;

	/* An exact-size copy, so that reading one byte too far is caught. */
	body = nl ? size - hlen - 1 : 0;
	copy = malloc(body ? body : 1);
	if (!copy)
		return 0;
	memcpy(copy, nl ? nl + 1 : "", body);
	policy_parse(&p, copy, body, "fuzz", rules, &e); /* on error, the rules before it are kept */
	compare(&p, &d, resolve);
	for (i = 0; i < p.n_rules && i < 32; i++)
		compare_edges(&p, &p.rules[i], &d, resolve);
	policy_free(&p);
	free(copy);
	return 0;
}
