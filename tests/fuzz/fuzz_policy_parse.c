/* fuzz_policy_parse.c: libFuzzer target for the policy grammar (policy_parse, policy_load's
 * TLSSHIM_RULES path, policy_rule_pattern). The input is policy text, parsed once as a file and
 * once as TLSSHIM_RULES. Besides crashes, leaks and UB, it aborts when a parsed policy breaks an
 * invariant of policy.h, when an error has no sensible position, or when a rule's pattern written
 * by policy_rule_pattern does not parse back to the same selection. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                          \
	do {                                                                                                 \
		if (!(cond)) {                                                                               \
			fprintf(stderr, "invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
			abort();                                                                             \
		}                                                                                            \
	} while (0)

static bool lower_no_trailing_dot(const char *s)
{
	size_t n = strlen(s), i;

	for (i = 0; i < n; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			return false;
	return n > 0 && s[n - 1] != '.';
}

static void check_rule(const struct policy *p, const struct policy_rule *r)
{
	const struct policy_tls_opts *o = &r->tls;
	unsigned bits = r->family == AF_INET ? 32 : 128, i;

	CHECK(r->action == POLICY_PLAIN || r->action == POLICY_TLS || r->action == POLICY_DENY ||
	      r->action == POLICY_SERVE);
	CHECK(r->port_lo <= r->port_hi);
	CHECK(r->line >= 1);
	CHECK(r->source == p->sources[p->n_sources - 1]);
	switch (r->host_kind) {
	case POLICY_HOST_ANY:
		CHECK(!r->host);
		break;
	case POLICY_HOST_NAME:
		CHECK(r->host && policy_valid_hostname(r->host) && lower_no_trailing_dot(r->host));
		break;
	case POLICY_HOST_SUFFIX:
		CHECK(r->host && r->host[0] == '.' && policy_valid_hostname(r->host + 1));
		CHECK(lower_no_trailing_dot(r->host));
		break;
	case POLICY_HOST_ADDR:
	case POLICY_HOST_CIDR:
		CHECK(!r->host);
		CHECK(r->family == AF_INET || r->family == AF_INET6);
		CHECK(r->prefix_len <= bits);
		CHECK(r->host_kind == POLICY_HOST_CIDR || r->prefix_len == bits);
		if (r->family == AF_INET6)
			CHECK(memcmp(r->addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) != 0);
		for (i = r->prefix_len; i < bits; i++)
			CHECK(!(r->addr[i / 8] & (0x80 >> (i % 8))));
		break;
	default:
		CHECK(!"host kind");
	}
	/* groups=: known groups only, each once, at most the maximum; none on plain/deny rules */
	CHECK(o->n_groups <= POLICY_MAX_GROUPS);
	CHECK(o->n_groups == 0 || r->action == POLICY_TLS || r->action == POLICY_SERVE);
	for (unsigned g = 0; g < o->n_groups; g++) {
		CHECK(policy_group_name(o->groups[g]) != NULL);
		for (unsigned h = 0; h < g; h++)
			CHECK(o->groups[h] != o->groups[g]);
	}
	if (r->action == POLICY_SERVE) { /* a server's own certificate and key are required */
		CHECK(o->cert && o->key);
		CHECK(!o->key_password_file || o->key);
		CHECK(o->handshake_timeout_ms >= 1 && o->handshake_timeout_ms <= 300000);
		return;
	}
	if (r->action != POLICY_TLS) {
		CHECK(!o->name && !o->sni && !o->ca_file && !o->alpn && !o->cert && o->n_pins == 0);
		return;
	}
	CHECK(o->handshake_timeout_ms >= 1 && o->handshake_timeout_ms <= 300000);
	CHECK(o->n_pins <= POLICY_MAX_PINS);
	CHECK(o->min_version == 0 || o->min_version == 12 || o->min_version == 13);
	CHECK(o->max_version == 0 || o->max_version == 12 || o->max_version == 13);
	CHECK(!o->min_version || !o->max_version || o->min_version <= o->max_version);
	CHECK(o->verify != POLICY_VERIFY_PIN_ONLY || o->n_pins > 0);
	CHECK(!o->cert == !o->key);
	CHECK(!o->key_password_file || o->key);
	CHECK(!(o->sni && o->sni_off));
	CHECK(!o->sni || (policy_valid_hostname(o->sni) && lower_no_trailing_dot(o->sni)));
	CHECK(!o->name || o->name[0]);
	CHECK(!o->alpn || (o->alpn[0] && o->alpn[0] != ',' && o->alpn[strlen(o->alpn) - 1] != ','));
	CHECK(!o->ciphers || o->ciphers[0]);
}

/* The pattern of r parses back to the same selection. */
static void check_round_trip(const struct policy_rule *r)
{
	char pat[600], text[620];
	struct policy q = {0};
	struct policy_error e;
	const struct policy_rule *s;
	int n;

	policy_rule_pattern(r, pat, sizeof(pat));
	n = snprintf(text, sizeof(text), "deny %s", pat);
	CHECK(n > 0 && (size_t)n < sizeof(text));
	if (policy_parse(&q, text, (size_t)n, "round-trip", false, &e) != 0) {
		fprintf(stderr, "pattern '%s' does not parse: %s (column %u)\n", pat, e.message, e.column);
		abort();
	}
	CHECK(q.n_rules == 1);
	s = &q.rules[0];
	CHECK(s->host_kind == r->host_kind);
	CHECK(s->port_lo == r->port_lo && s->port_hi == r->port_hi);
	CHECK(!s->host == !r->host);
	CHECK(!s->host || strcmp(s->host, r->host) == 0);
	if (r->host_kind == POLICY_HOST_ADDR || r->host_kind == POLICY_HOST_CIDR) {
		CHECK(s->family == r->family && s->prefix_len == r->prefix_len);
		CHECK(memcmp(s->addr, r->addr, r->family == AF_INET ? 4 : 16) == 0);
	}
	policy_free(&q);
}

static void run(const char *text, size_t len, bool rules)
{
	const char *src = rules ? "TLSSHIM_RULES" : "fuzz.policy";
	struct policy p = {0};
	struct policy_error e;
	size_t i;
	int rc;

	rc = policy_parse(&p, text, len, src, rules, &e);
	CHECK(rc == 0 || rc == -1);
	if (rc < 0) {
		CHECK(strcmp(e.source, src) == 0);
		CHECK(e.line >= 1);
		CHECK(e.column >= 1 && e.column <= 4097);
		CHECK(e.message[0] && memchr(e.message, '\0', sizeof(e.message)));
	}
	CHECK(p.n_sources == 1);
	for (i = 0; i < p.n_rules; i++) {
		check_rule(&p, &p.rules[i]);
		check_round_trip(&p.rules[i]);
		if (i > 0)
			CHECK(p.rules[i].line > p.rules[i - 1].line);
	}

	/* policy_load takes TLSSHIM_RULES as a C string: same rules, same verdict. */
	if (rules && !memchr(text, '\0', len)) {
		struct policy l;
		struct policy_error le;
		char *s = malloc(len + 1);

		CHECK(s);
		memcpy(s, text, len);
		s[len] = '\0';
		CHECK(policy_load(&l, s, NULL, &le) == rc);
		CHECK(rc < 0 ? l.n_rules == 0 && le.line == e.line && le.column == e.column
			     : l.n_rules == p.n_rules);
		policy_free(&l);
		free(s);
	}
	policy_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so that reading one byte too far is caught. */
	char *text = malloc(size ? size : 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	run(text, size, false);
	run(text, size, true);
	free(text);
	return 0;
}
