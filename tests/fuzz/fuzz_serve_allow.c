/* fuzz_serve_allow.c: libFuzzer target for the serve side of policy/: serve option parsing (every
 * serve rule the input holds), the allow= matcher and the SNI pick. The input is a SAN line followed by
 * policy text:
 *
 *     <d|u|e|i><SAN value>\n          d DNS, u URI, e email, i an IP address in text form
 *     <policy text...>
 *
 * For each serve rule: policy_allow_match on the SAN is compared with a slow reference matcher written
 * here from the documented semantics; every allow= entry is written back with policy_allow_format and
 * must parse back to the same entry; policy_serve_pick with the SAN as SNI must return a candidate
 * whose name= matches it (or the default). */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static bool ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

static bool in_net(const struct policy_net *net, int family, const uint8_t *a)
{
	for (unsigned i = 0; i < net->prefix_len; i++) {
		unsigned bit = 7 - i % 8;
		if (((net->addr[i / 8] >> bit) & 1) != ((a[i / 8] >> bit) & 1))
			return false;
	}
	return net->family == family;
}

/* The reference: the documented semantics, entry by entry. */
static int ref_match(const struct policy_serve_opts *o, enum policy_san_type t, const char *v, size_t n, int family,
		     const uint8_t *addr)
{
	if (t == POLICY_SAN_DNS) {
		if (memchr(v, '*', n))
			return -1;
		if (n > 1 && v[n - 1] == '.')
			n--;
	}
	if (t != POLICY_SAN_IP && (n == 0 || memchr(v, 0, n)))
		return -1;
	for (unsigned i = 0; i < o->n_allow; i++) {
		const struct policy_allow *a = &o->allow[i];
		size_t k = a->text ? strlen(a->text) : 0;
		bool hit = false;

		switch (a->kind) {
		case POLICY_ALLOW_DNS:
			hit = t == POLICY_SAN_DNS && k == n && ieq(a->text, v, n);
			break;
		case POLICY_ALLOW_DNS_SUFFIX:
			hit = t == POLICY_SAN_DNS && n > k && ieq(a->text, v + (n - k), k);
			break;
		case POLICY_ALLOW_URI:
			hit = t == POLICY_SAN_URI && k == n && memcmp(a->text, v, n) == 0;
			break;
		case POLICY_ALLOW_URI_PREFIX:
			hit = t == POLICY_SAN_URI && n > k && memcmp(a->text, v, k) == 0;
			break;
		case POLICY_ALLOW_EMAIL: {
			const char *at = t == POLICY_SAN_EMAIL ? memchr(v, '@', n) : NULL;
			if (at && k == n) {
				size_t l = (size_t)(at - v) + 1;
				hit = memcmp(a->text, v, l) == 0 && ieq(a->text + l, v + l, n - l);
			}
			break;
		}
		case POLICY_ALLOW_IP:
			hit = t == POLICY_SAN_IP && addr && in_net(&a->net, family, addr);
			break;
		}
		if (hit)
			return (int)i;
	}
	return -1;
}

static void check_round_trip(const struct policy_allow *a)
{
	/* Room for the longest entry the fuzzer can write (inputs are at most 8192 bytes): a shorter buffer
	 * would cut an entry (an email's long local part before its '@') and make it parse as another kind. */
	char text[8400], one[8300];
	struct policy q = {0};
	struct policy_error e;

	policy_allow_format(a, one, sizeof(one));
	snprintf(text, sizeof(text), "serve *:1 cert=/c key=/k client-ca=/ca allow=%s", one);
	if (policy_parse(&q, text, strlen(text), "rt", false, &e) != 0) {
		fprintf(stderr, "allow entry [%s] does not parse back: %s\n", one, e.message);
		abort();
	}
	const struct policy_allow *b = &q.rules[0].tls.serve.allow[0];
	if (q.rules[0].tls.serve.n_allow != 1 || b->kind != a->kind ||
	    (a->text && strcmp(a->text, b->text) != 0) ||
	    (!a->text && (a->net.family != b->net.family || a->net.prefix_len != b->net.prefix_len ||
			  memcmp(a->net.addr, b->net.addr, 16) != 0))) {
		fprintf(stderr, "allow entry [%s] changed on the way back\n", one);
		abort();
	}
	policy_free(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *nl = memchr(text, '\n', size);
	struct policy p = {0};
	struct policy_error e;
	char san[512];
	uint8_t addr[16];
	int family = 0;
	enum policy_san_type type;

	if (!nl || nl == text || (size_t)(nl - text) > sizeof(san))
		return 0;
	size_t sn = (size_t)(nl - text) - 1;
	memcpy(san, text + 1, sn);
	san[sn] = '\0';
	switch (text[0]) {
	case 'd':
		type = POLICY_SAN_DNS;
		break;
	case 'u':
		type = POLICY_SAN_URI;
		break;
	case 'e':
		type = POLICY_SAN_EMAIL;
		break;
	case 'i':
		type = POLICY_SAN_IP;
		if (inet_pton(AF_INET, san, addr) == 1)
			family = AF_INET;
		else if (inet_pton(AF_INET6, san, addr) == 1)
			family = AF_INET6;
		else
			return 0;
		break;
	default:
		return 0;
	}
	size_t rest = size - (size_t)(nl - text) - 1;
	if (policy_parse(&p, nl + 1, rest, "fuzz", false, &e) != 0) {
		policy_free(&p);
		return 0;
	}
	const struct policy_rule *cands[64];
	size_t nc = 0;
	for (size_t i = 0; i < p.n_rules; i++) {
		const struct policy_rule *r = &p.rules[i];
		const struct policy_serve_opts *o = &r->tls.serve;
		if (r->action != POLICY_SERVE)
			continue;
		if (!r->tls.cert || !r->tls.key)
			abort(); /* the parser promises both */
		if (o->n_allow && !o->client_ca)
			abort();
		int got, want;
		if (type == POLICY_SAN_IP) {
			size_t alen = family == AF_INET ? 4 : 16;
			uint8_t norm[16];
			int nf = family;
			memcpy(norm, addr, 16);
			if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((struct in6_addr *)addr)) {
				nf = AF_INET;
				memmove(norm, addr + 12, 4);
			}
			got = policy_allow_match(o, type, addr, alen);
			want = ref_match(o, type, NULL, 0, nf, norm);
			if (policy_serve_plain_from(o, family, addr) !=
			    policy_serve_plain_from(o, nf, norm)) /* mapped and plain agree */
				abort();
		} else {
			got = policy_allow_match(o, type, san, sn);
			want = ref_match(o, type, san, sn, 0, NULL);
		}
		if (got != want) {
			fprintf(stderr, "allow match of [%s]: got %d, reference %d\n", san, got, want);
			abort();
		}
		for (unsigned k = 0; k < o->n_allow; k++)
			check_round_trip(&o->allow[k]);
		if (nc < 64)
			cands[nc++] = r;
	}
	if (nc) {
		const struct policy_rule *r = policy_serve_pick(cands, nc, san);
		if (!r)
			abort();
		if (r != cands[0] && (!r->tls.name || !sn))
			abort(); /* only a name= can move the pick off the default */
	}
	policy_free(&p);
	return 0;
}
