/* test_serve_policy.c: unit tests for the serve side of policy/: the serve action and its options,
 * which action takes which option (errors with line and column), `defaults` applying per action, the
 * two separate first-match lists, SNI candidates, served listeners, plain-from= and the allow= matcher.
 * Tables of cases; a failing case names its input. Suites: serve_parse, serve_errors, serve_match,
 * serve_allow. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/policy.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define CK	   "cert=/c.pem key=/k.pem"

static void parse_ok(struct policy *p, const char *text)
{
	struct policy_error e;

	memset(p, 0, sizeof(*p));
	cr_assert_eq(policy_parse(p, text, strlen(text), "t.policy", false, &e), 0,
		     "parsing [%s] failed: %u:%u: %s", text, e.line, e.column, e.message);
}

/* ======================================================================== serve_parse */

Test(serve_parse, defaults_of_a_serve_rule)
{
	struct policy p;

	parse_ok(&p, "serve *:8443 " CK);
	cr_assert_eq(p.n_rules, 1);
	const struct policy_rule *r = &p.rules[0];
	cr_expect_eq(r->action, POLICY_SERVE);
	cr_expect_str_eq(r->tls.cert, "/c.pem");
	cr_expect_str_eq(r->tls.key, "/k.pem");
	cr_expect_eq(r->tls.truncation, POLICY_TRUNCATION_ALLOW, "serve defaults to truncation=allow");
	cr_expect_eq(r->tls.serve.client_auth, POLICY_CLIENT_AUTH_NONE);
	cr_expect(r->tls.serve.session_tickets);
	cr_expect_eq(r->tls.handshake_timeout_ms, 10000);
	cr_expect_null(r->tls.serve.client_ca);
	policy_free(&p);
}

struct serve_opt_case {
	const char *opts; /* after "serve *:1 cert=/c.pem key=/k.pem " */
	const char *check;
};

Test(serve_parse, each_option)
{
	struct policy p;

	parse_ok(&p,
		 "serve *:1 " CK " client-ca=/ca.pem\n"
		 "serve *:2 " CK " client-ca=/ca client-auth=optional\n"
		 "serve *:3 " CK " client-ca=/ca client-auth=none\n"
		 "serve *:4 " CK " session-tickets=off truncation=error coalesce=off\n"
		 "serve *:5 " CK " session-ticket-key-file=/t.key handshake-timeout=500ms\n"
		 "serve *:6 " CK " plain-from=127.0.0.1/32,[::1],10.0.0.0/8,[fd00::]/8\n"
		 "serve *:7 " CK " name=A.Example. alpn=h2,http/1.1 min-version=1.3\n"
		 "serve *:8 " CK " name=*.Corp.Example key-password-file=/pw crl-file=/crl client-ca=/ca\n");
	cr_assert_eq(p.n_rules, 8);
	cr_expect_str_eq(p.rules[0].tls.serve.client_ca, "/ca.pem");
	cr_expect_eq(p.rules[0].tls.serve.client_auth, POLICY_CLIENT_AUTH_REQUIRE,
		     "client-ca= means require");
	cr_expect_eq(p.rules[1].tls.serve.client_auth, POLICY_CLIENT_AUTH_OPTIONAL);
	cr_expect_eq(p.rules[2].tls.serve.client_auth, POLICY_CLIENT_AUTH_NONE);
	cr_expect_not(p.rules[3].tls.serve.session_tickets);
	cr_expect_not(p.rules[3].tls.serve.coalesce, "coalesce=off");
	cr_expect(p.rules[2].tls.serve.coalesce, "coalesce= defaults to auto");
	cr_expect_eq(p.rules[3].tls.truncation, POLICY_TRUNCATION_ERROR);
	cr_expect_str_eq(p.rules[4].tls.serve.ticket_key_file, "/t.key");
	cr_expect_eq(p.rules[4].tls.handshake_timeout_ms, 500);
	cr_expect_eq(p.rules[5].tls.serve.n_plain_from, 4);
	cr_expect_eq(p.rules[5].tls.serve.plain_from[0].family, AF_INET);
	cr_expect_eq(p.rules[5].tls.serve.plain_from[1].family, AF_INET6);
	cr_expect_eq(p.rules[5].tls.serve.plain_from[1].prefix_len, 128);
	cr_expect_eq(p.rules[5].tls.serve.plain_from[2].prefix_len, 8);
	cr_expect_str_eq(p.rules[6].tls.name, "a.example");
	cr_expect_str_eq(p.rules[6].tls.alpn, "h2,http/1.1");
	cr_expect_eq(p.rules[6].tls.min_version, 13);
	cr_expect_str_eq(p.rules[7].tls.name, "*.corp.example");
	cr_expect_str_eq(p.rules[7].tls.crl_file, "/crl");
	policy_free(&p);
}

Test(serve_parse, defaults_apply_per_action)
{
	struct policy p;

	parse_ok(&p, "defaults ca-file=/ca-for-tls client-ca=/ca-for-serve truncation=error alpn=x "
		     "groups=P-256:X25519\n"
		     "tls a:1\n"
		     "serve *:2 " CK "\n"
		     "serve *:3 " CK " groups=P-384\n");
	cr_assert_eq(p.n_rules, 3);
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(p.rules[i].tls.n_groups, 2, "defaults groups= reaches rule %d", i);
		cr_expect_eq(p.rules[i].tls.groups[0], 23);
		cr_expect_eq(p.rules[i].tls.groups[1], 29);
	}
	cr_expect_eq(p.rules[2].tls.n_groups, 1, "a serve rule's own groups= replaces the defaults'");
	cr_expect_eq(p.rules[2].tls.groups[0], 24);
	cr_expect_str_eq(p.rules[0].tls.ca_file, "/ca-for-tls");
	cr_expect_null(p.rules[0].tls.serve.client_ca, "client-ca= never reaches a tls rule");
	cr_expect_null(p.rules[1].tls.ca_file, "ca-file= never reaches a serve rule");
	cr_expect_str_eq(p.rules[1].tls.serve.client_ca, "/ca-for-serve");
	cr_expect_eq(p.rules[1].tls.serve.client_auth, POLICY_CLIENT_AUTH_REQUIRE);
	cr_expect_eq(p.rules[1].tls.truncation, POLICY_TRUNCATION_ERROR,
		     "defaults truncation= reaches serve");
	cr_expect_str_eq(p.rules[0].tls.alpn, "x");
	cr_expect_str_eq(p.rules[1].tls.alpn, "x");
	policy_free(&p);
}

Test(serve_parse, defaults_allow_list_is_copied)
{
	struct policy p;

	parse_ok(&p,
		 "defaults client-ca=/ca allow=a.example,spiffe://corp/ns/*,10.0.0.0/8 plain-from=127.0.0.1\n"
		 "serve *:1 " CK "\n"
		 "serve *:2 " CK " allow=b.example\n");
	cr_assert_eq(p.n_rules, 2);
	cr_expect_eq(p.rules[0].tls.serve.n_allow, 3);
	cr_expect_eq(p.rules[0].tls.serve.n_plain_from, 1);
	cr_expect_eq(p.rules[1].tls.serve.n_allow, 1);
	cr_expect_neq(p.rules[0].tls.serve.allow, p.rules[1].tls.serve.allow);
	policy_free(&p);
}

/* ======================================================================== serve_errors */

struct serve_err_case {
	const char *text;
	unsigned line, col;
	const char *msg; /* a substring */
};

static const struct serve_err_case err_cases[] = {
    /* options of the wrong action, with their column */
    {"tls a:1 client-ca=/x", 1, 9, "option 'client-ca' is for serve rules only (tls rules do not take it)"},
    {"tls a:1 allow=a.example", 1, 9, "option 'allow' is for serve rules only"},
    {"tls a:1 plain-from=127.0.0.1", 1, 9, "option 'plain-from' is for serve rules only"},
    {"tls a:1 session-tickets=on", 1, 9, "option 'session-tickets' is for serve rules only"},
    {"tls a:1 coalesce=auto", 1, 9, "option 'coalesce' is for serve rules only"},
    {"serve *:1 " CK " ca-file=/x", 1, 34,
     "option 'ca-file' is for tls rules only (serve rules do not take it)"},
    {"serve *:1 " CK " verify=off", 1, 34, "option 'verify' is for tls rules only"},
    {"serve *:1 " CK " sni=off", 1, 34, "option 'sni' is for tls rules only"},
    {"serve *:1 " CK " pin-sha256=x", 1, 34, "option 'pin-sha256' is for tls rules only"},
    {"serve *:1 " CK " ocsp-stapling=off", 1, 34, "option 'ocsp-stapling' is for tls rules only"},
    {"serve *:1 " CK " session-resumption=off", 1, 34, "option 'session-resumption' is for tls rules only"},
    {"serve *:1 " CK " bogus=1", 1, 34, "unknown option 'bogus' (expected one of name, min-version"},
    {"serve *:1 " CK " groups=X25519:brainpoolP256r1", 1, 48, "unknown key-exchange group 'brainpoolP256r1'"},
    {"serve *:1 " CK " groups=,", 1, 41, "empty group in groups="},
    /* required and combined options */
    {"serve *:1", 1, 1, "serve rules need cert= and key= (the certificate to present; missing both)"},
    {"serve *:1 cert=/c", 1, 11, "missing key="},
    {"serve *:1 key=/k", 1, 11, "missing cert="},
    {"serve *:1 " CK " client-auth=require", 1, 34, "client-auth=require needs client-ca="},
    {"serve *:1 " CK " client-auth=optional", 1, 34, "client-auth=optional needs client-ca="},
    {"serve *:1 " CK " allow=a.example", 1, 34, "allow= needs client-ca="},
    {"serve *:1 " CK " client-ca=/ca client-auth=none allow=a", 1, 48, "allow= with client-auth=none"},
    {"serve *:1 " CK " crl-file=/crl", 1, 34, "crl-file= on a serve rule checks client certificates"},
    {"serve *:1 " CK " session-tickets=off session-ticket-key-file=/k", 1, 54,
     "session-ticket-key-file= with session-tickets=off"},
    {"serve *:1 " CK " min-version=1.3 max-version=1.2", 1, 50, "min-version=1.3 is above max-version=1.2"},
    {"defaults client-auth=require\nserve *:1 " CK, 2, 1,
     "client-auth=require needs client-ca= (the CAs that client certificates are verified against) (after "
     "applying defaults)"},
    /* values */
    {"serve *:1 " CK " client-auth=maybe", 1, 46,
     "invalid client-auth value 'maybe' (expected require, optional or none)"},
    {"serve *:1 " CK " session-tickets=yes", 1, 50, "invalid session-tickets value 'yes'"},
    {"serve *:1 " CK " coalesce=on", 1, 43, "invalid coalesce value 'on' (expected auto or off)"},
    {"serve *:1 " CK " name=10.0.0.1", 1, 39, "SNI never carries an IP address"},
    {"serve *:1 " CK " name=[::1]", 1, 39, "SNI never carries an IP address"},
    {"serve *:1 " CK " name=a_b", 1, 39, "invalid name= 'a_b' on a serve rule"},
    {"serve *:1 " CK " name=*.", 1, 41, "invalid name="},
    {"serve *:1 " CK " plain-from=", 1, 45, "empty value for plain-from="},
    {"serve *:1 " CK " plain-from=127.0.0.1,,::1", 1, 55, "empty item in plain-from="},
    {"serve *:1 " CK " plain-from=localhost", 1, 45, "invalid address 'localhost' in plain-from="},
    {"serve *:1 " CK " plain-from=10.0.0.1/8", 1, 45, "has host bits set"},
    {"serve *:1 " CK " plain-from=10.0.0.0/33", 1, 54,
     "invalid prefix length in plain-from= (expected 0-32)"},
    {"serve *:1 " CK " plain-from=10.0.0.0/8,[fd00::1]/8", 1, 56, "has host bits set"},
    {"serve *:1 " CK " client-ca=/ca allow=", 1, 54, "empty value for allow="},
    {"serve *:1 " CK " client-ca=/ca allow=a,,b", 1, 56, "empty item in allow="},
    {"serve *:1 " CK " client-ca=/ca allow=a_b.example", 1, 54, "invalid identity 'a_b.example' in allow="},
    {"serve *:1 " CK " client-ca=/ca allow=1nvalid://x", 1, 54, "invalid URI scheme"},
    {"serve *:1 " CK " client-ca=/ca allow=spiffe://", 1, 54, "has nothing after '://'"},
    {"serve *:1 " CK " client-ca=/ca allow=spiffe://corp/*/x", 1, 68,
     "'*' in an allow= URI only as a final '/*'"},
    {"serve *:1 " CK " client-ca=/ca allow=spiffe://*", 1, 63, "'*' in an allow= URI only"},
    {"serve *:1 " CK " client-ca=/ca allow=@corp.example", 1, 54, "invalid email '@corp.example'"},
    {"serve *:1 " CK " client-ca=/ca allow=a@b@c", 1, 54, "invalid email"},
    {"serve *:1 " CK " client-ca=/ca allow=a@bad_domain", 1, 54, "invalid email"},
    {"serve *:1 " CK " client-ca=/ca allow=10.0.0.1/8", 1, 54, "has host bits set"},
    {"serve *:1 " CK " client-ca=/ca allow=*.", 1, 56, "invalid suffix"},
    {"serve *:1 " CK " client-ca=/ca allow=\"a.example,b c\"", 1, 54, "invalid byte 0x20 in allow="},
    /* host patterns */
    {"serve *.corp.example:1 " CK, 1, 7, "serve rules match the local address a client reached"},
    {"plain a:1 client-ca=/x", 1, 11, "options are not allowed on plain rules"},
};

Test(serve_errors, table)
{
	for (size_t i = 0; i < N_ELEMS(err_cases); i++) {
		const struct serve_err_case *c = &err_cases[i];
		struct policy p = {0};
		struct policy_error e;

		int rc = policy_parse(&p, c->text, strlen(c->text), "t.policy", false, &e);
		cr_expect_eq(rc, -1, "[%s] parsed but should fail", c->text);
		if (rc == -1) {
			cr_expect(strstr(e.message, c->msg) != NULL, "[%s] message [%s] lacks [%s]", c->text,
				  e.message, c->msg);
			cr_expect(e.line == c->line && e.column == c->col,
				  "[%s] at %u:%u, expected %u:%u (%s)", c->text, e.line, e.column, c->line,
				  c->col, e.message);
		}
		policy_free(&p);
	}
}

/* ======================================================================== serve_match */

static bool never_resolves(void *ctx, const char *name, int family, const uint8_t *addr)
{
	return false;
}

Test(serve_match, separate_first_match_lists)
{
	struct policy p;
	uint8_t lo[4] = {127, 0, 0, 1};
	struct policy_dest d = {.family = AF_INET, .addr = lo, .port = 8443};
	const struct policy_rule *cands[4];

	parse_ok(&p, "serve *:8443 " CK "\n"
		     "deny *:*\n");
	const struct policy_rule *r = policy_match(&p, &d, NULL, NULL);
	cr_assert_not_null(r);
	cr_expect_eq(r->action, POLICY_DENY, "a connect never matches a serve rule");
	cr_expect_eq(policy_serve_candidates(&p, &d, NULL, NULL, cands, 4), 1);
	cr_expect_eq(cands[0]->action, POLICY_SERVE,
		     "the trailing deny *:* never touches accepted connections");
	d.port = 8444;
	cr_expect_eq(policy_serve_candidates(&p, &d, NULL, NULL, cands, 4), 0);
	policy_free(&p);
}

Test(serve_match, candidates_and_sni)
{
	struct policy p;
	uint8_t lo[4] = {127, 0, 0, 1}, other[4] = {10, 1, 2, 3};
	uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
	struct policy_dest d = {.family = AF_INET, .addr = lo, .port = 443};
	const struct policy_rule *cands[8];

	parse_ok(&p, "serve *:443 name=a.example " CK "\n"
		     "serve *:443 name=*.b.example " CK "\n"
		     "serve 127.0.0.1:443 name=c.example " CK "\n"
		     "serve [::1]:443 " CK "\n");
	size_t n = policy_serve_candidates(&p, &d, never_resolves, NULL, cands, 8);
	cr_assert_eq(n, 3);
	static const struct {
		const char *sni;
		unsigned want; /* index in the policy */
	} picks[] = {
	    {NULL, 0},
	    {"", 0},
	    {"a.example", 0},
	    {"A.EXAMPLE.", 0},
	    {"x.b.example", 1},
	    {"x.y.b.example", 1},
	    {"b.example", 0},
	    {"c.example", 2},
	    {"unknown.example", 0},
	};
	for (size_t i = 0; i < N_ELEMS(picks); i++) {
		const struct policy_rule *r = policy_serve_pick(cands, n, picks[i].sni);
		cr_expect_eq(r, &p.rules[picks[i].want], "sni %s picked rule %ld, expected %u",
			     picks[i].sni ? picks[i].sni : "(none)", (long)(r - p.rules), picks[i].want);
	}
	cr_expect_null(policy_serve_pick(cands, 0, "a.example"));
	d.addr = other;
	cr_expect_eq(policy_serve_candidates(&p, &d, NULL, NULL, cands, 8), 2);
	d.family = AF_INET6;
	d.addr = mapped; /* a mapped local address matches the IPv4 rule */
	cr_expect_eq(policy_serve_candidates(&p, &d, NULL, NULL, cands, 8), 3);
	cr_expect_eq(policy_serve_candidates(&p, &d, NULL, NULL, cands, 1), 3, "the count goes beyond max");
	policy_free(&p);
}

Test(serve_match, served_listeners)
{
	struct policy p;
	uint8_t any4[4] = {0}, any6[16] = {0}, lo4[4] = {127, 0, 0, 1}, ten[4] = {10, 0, 0, 1};
	uint8_t lo6[16] = {0};

	lo6[15] = 1;
	parse_ok(&p, "serve 127.0.0.1:8443 " CK "\n"
		     "serve [::1]:9443 " CK "\n"
		     "serve *:7000-7010 " CK "\n"
		     "tls *:6000\n");
	const struct {
		int family;
		const uint8_t *addr;
		uint16_t port;
		bool v6only, want;
	} cases[] = {
	    {AF_INET, lo4, 8443, false, true},	 {AF_INET, ten, 8443, false, false},
	    {AF_INET, any4, 8443, false, true},	 {AF_INET6, any6, 8443, false, true},
	    {AF_INET6, any6, 8443, true, false}, {AF_INET, any4, 9443, false, false},
	    {AF_INET6, any6, 9443, true, true},	 {AF_INET6, lo6, 9443, false, true},
	    {AF_INET, ten, 7005, false, true},	 {AF_INET, any4, 6000, false, false},
	    {AF_INET, lo4, 8444, false, false},
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++)
		cr_expect_eq(policy_serve_listener(&p, cases[i].family, cases[i].addr, cases[i].port,
						   cases[i].v6only, NULL, NULL),
			     cases[i].want, "listener case %zu", i);
	policy_free(&p);
}

Test(serve_match, plain_from)
{
	struct policy p;
	uint8_t a[16];

	parse_ok(&p, "serve *:1 " CK " plain-from=127.0.0.1,10.0.0.0/8,[::1],[fd00::]/8\n");
	const struct policy_serve_opts *o = &p.rules[0].tls.serve;
	static const struct {
		const char *addr;
		bool want;
	} cases[] = {
	    {"127.0.0.1", true},
	    {"127.0.0.2", false},
	    {"10.255.0.1", true},
	    {"11.0.0.1", false},
	    {"::1", true},
	    {"::2", false},
	    {"fd12::1", true},
	    {"fe00::1", false},
	    {"::ffff:127.0.0.1", true},
	    {"::ffff:10.9.9.9", true},
	    {"::ffff:9.9.9.9", false},
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		int family = strchr(cases[i].addr, ':') ? AF_INET6 : AF_INET;
		cr_assert_eq(inet_pton(family, cases[i].addr, a), 1);
		cr_expect_eq(policy_serve_plain_from(o, family, a), cases[i].want, "plain-from %s",
			     cases[i].addr);
	}
	cr_expect_not(policy_serve_plain_from(NULL, AF_INET, a));
	policy_free(&p);
}

/* ======================================================================== serve_allow */

Test(serve_allow, matcher_table)
{
	struct policy p;

	parse_ok(&p, "serve *:1 " CK
		     " client-ca=/ca allow=app1.internal,*.clients.example,spiffe://corp/ns/prod/sa/api,"
		     "spiffe://corp/ns/dev/*,Ops@Corp.Example,10.1.0.0/16,[fd00::]/8,192.0.2.7\n");
	const struct policy_serve_opts *o = &p.rules[0].tls.serve;
	cr_assert_eq(o->n_allow, 8);
	static const struct {
		enum policy_san_type type;
		const char *v;
		int want;
	} cases[] = {
	    {POLICY_SAN_DNS, "app1.internal", 0},
	    {POLICY_SAN_DNS, "APP1.Internal.", 0},
	    {POLICY_SAN_DNS, "app2.internal", -1},
	    {POLICY_SAN_DNS, "x.app1.internal", -1},
	    {POLICY_SAN_DNS, "a.clients.example", 1},
	    {POLICY_SAN_DNS, "a.b.clients.example", 1},
	    {POLICY_SAN_DNS, "clients.example", -1},
	    {POLICY_SAN_DNS, "*.clients.example", -1}, /* a wildcard SAN is nobody's identity */
	    {POLICY_SAN_DNS, "xclients.example", -1},
	    {POLICY_SAN_URI, "spiffe://corp/ns/prod/sa/api", 2},
	    {POLICY_SAN_URI, "spiffe://corp/ns/prod/sa/api2", -1},
	    {POLICY_SAN_URI, "spiffe://corp/ns/prod/sa/api/x", -1},
	    {POLICY_SAN_URI, "spiffe://corp/ns/dev/sa/x", 3},
	    {POLICY_SAN_URI, "spiffe://corp/ns/dev/", -1},
	    {POLICY_SAN_URI, "spiffe://corp/ns/devx/a", -1},
	    {POLICY_SAN_DNS, "spiffe://corp/ns/prod/sa/api", -1}, /* types never mix */
	    {POLICY_SAN_URI, "app1.internal", -1},
	    {POLICY_SAN_EMAIL, "Ops@corp.example", 4},
	    {POLICY_SAN_EMAIL, "ops@corp.example", -1}, /* the local part is exact */
	    {POLICY_SAN_EMAIL, "Ops@CORP.EXAMPLE", 4},
	    {POLICY_SAN_DNS, "Ops@Corp.Example", -1},
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++)
		cr_expect_eq(policy_allow_match(o, cases[i].type, cases[i].v, strlen(cases[i].v)),
			     cases[i].want, "allow %s", cases[i].v);
	static const struct {
		const char *addr;
		int want;
	} ips[] = {
	    {"10.1.2.3", 5},  {"10.2.0.1", -1},	 {"fd01::5", 6},	 {"fe80::1", -1},
	    {"192.0.2.7", 7}, {"192.0.2.8", -1}, {"::ffff:10.1.9.9", 5},
	};
	uint8_t a[16];
	for (size_t i = 0; i < N_ELEMS(ips); i++) {
		int family = strchr(ips[i].addr, ':') ? AF_INET6 : AF_INET;
		cr_assert_eq(inet_pton(family, ips[i].addr, a), 1);
		cr_expect_eq(policy_allow_match(o, POLICY_SAN_IP, a, family == AF_INET ? 4 : 16), ips[i].want,
			     "allow ip %s", ips[i].addr);
	}
	cr_expect_eq(policy_allow_match(o, POLICY_SAN_IP, a, 5), -1, "an IP SAN is 4 or 16 bytes");
	cr_expect_eq(policy_allow_match(o, POLICY_SAN_DNS, "app1.internal\0x", 15), -1, "embedded NUL");
	cr_expect_eq(policy_allow_match(o, POLICY_SAN_DNS, "", 0), -1);
	cr_expect_eq(policy_allow_match(NULL, POLICY_SAN_DNS, "a", 1), -1);
	policy_free(&p);
}

Test(serve_allow, format_round_trip)
{
	struct policy p, q;
	char text[2048] = "serve *:1 " CK " client-ca=/ca allow=", one[300];

	parse_ok(&p, "serve *:1 " CK " client-ca=/ca allow=a.example,*.b.example,spiffe://c/d,spiffe://c/e/*,"
		     "x@y.example,10.0.0.0/8,[fd00::]/8,192.0.2.1,[::1]\n");
	const struct policy_serve_opts *o = &p.rules[0].tls.serve;
	for (unsigned i = 0; i < o->n_allow; i++) {
		policy_allow_format(&o->allow[i], one, sizeof(one));
		strcat(text, i ? "," : "");
		strcat(text, one);
	}
	parse_ok(&q, text);
	cr_assert_eq(q.rules[0].tls.serve.n_allow, o->n_allow);
	for (unsigned i = 0; i < o->n_allow; i++) {
		const struct policy_allow *a = &o->allow[i], *b = &q.rules[0].tls.serve.allow[i];
		cr_expect_eq(a->kind, b->kind, "entry %u", i);
		if (a->text)
			cr_expect_str_eq(a->text, b->text);
		else
			cr_expect_eq(memcmp(&a->net, &b->net, sizeof(a->net)), 0);
	}
	policy_free(&p);
	policy_free(&q);
}
