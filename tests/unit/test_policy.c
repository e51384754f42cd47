/* test_policy.c: unit tests for policy/ (the policy language): grammar, options, defaults, errors
 * with their line and column, TLSSHIM_RULES splitting, matching, loading files and hostile input.
 * Most tests walk a table of cases; a failing case names its input. Suites: policy_parse,
 * policy_errors, policy_match, policy_load, policy_format. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"

#define PIN_EMPTY  "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" /* SHA-256(""): e3b0c442... */
#define PIN_ABC	   "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=" /* SHA-256("abc"): ba7816bf... */
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char example_policy[] =
    "defaults ca-file=/etc/ssl/certs/ca-certificates.crt min-version=1.2\n"
    "tls   api.example.com:443\n"
    "tls   10.1.2.3:6380        name=redis.internal ca-file=/etc/tls/internal-ca.pem\n"
    "tls   *.corp.example:*     alpn=h2,http/1.1\n"
    "tls   [::1]:8443           name=localhost\n"
    "tls   127.0.0.1:9000       name=svc sni=off\n"
    "plain 127.0.0.1:*\n"
    "deny  *:25\n";

/* Parses text into *p (file syntax unless rules); asserts success. */
static void parse_ok(struct policy *p, const char *text, bool rules)
{
	struct policy_error e;
	int rc;

	memset(p, 0, sizeof(*p));
	rc = policy_parse(p, text, strlen(text), rules ? "TLSSHIM_RULES" : "test.policy", rules, &e);
	cr_assert_eq(rc, 0, "parsing [%s] failed: %s:%u:%u: %s", text, e.source, e.line, e.column, e.message);
}

/* Renders the setting of one key of o, for comparing with a table. */
static void render_opt(const struct policy_tls_opts *o, const char *key, char *b, size_t n)
{
	static const char *const verify[] = {"on", "off", "pin-only"};
	static const char *const ocsp[] = {"prefer", "require", "off"};
	const struct {
		const char *key;
		const char *val;
	} strs[] = {
	    {"name", o->name},
	    {"sni", o->sni_off ? "off" : o->sni},
	    {"ca-file", o->ca_file},
	    {"ca-dir", o->ca_dir},
	    {"ciphers", o->ciphers},
	    {"alpn", o->alpn},
	    {"cert", o->cert},
	    {"key", o->key},
	    {"key-password-file", o->key_password_file},
	    {"crl-file", o->crl_file},
	    {"crl-dir", o->crl_dir},
	    {"verify", verify[o->verify]},
	    {"ocsp-stapling", ocsp[o->ocsp_stapling]},
	    {"truncation", o->truncation == POLICY_TRUNCATION_ALLOW ? "allow" : "error"},
	    {"session-resumption", o->session_resumption ? "on" : "off"},
	    {"starttls", policy_starttls_name(o->starttls)},
	    {"proxy-user-file", o->proxy_user_file},
	};
	size_t i, k;

	for (i = 0; i < N_ELEMS(strs); i++) {
		if (!strcmp(key, strs[i].key)) {
			snprintf(b, n, "%s", strs[i].val ? strs[i].val : "(null)");
			return;
		}
	}
	if (!strcmp(key, "proxy")) {
		snprintf(b, n, "%s|%s|%u", policy_proxy_name(o->proxy),
			 o->proxy_host ? o->proxy_host : "(null)", (unsigned)o->proxy_port);
		return;
	}
	if (!strcmp(key, "min-version")) {
		snprintf(b, n, "%d", o->min_version);
	} else if (!strcmp(key, "max-version")) {
		snprintf(b, n, "%d", o->max_version);
	} else if (!strcmp(key, "handshake-timeout")) {
		snprintf(b, n, "%u", o->handshake_timeout_ms);
	} else if (!strcmp(key, "groups")) {
		k = (size_t)snprintf(b, n, "%u", o->n_groups);
		for (i = 0; i < o->n_groups && k + 8 < n; i++)
			k += (size_t)snprintf(b + k, n - k, ":%u", (unsigned)o->groups[i]);
	} else if (!strcmp(key, "pin-sha256")) {
		k = (size_t)snprintf(b, n, "%u", o->n_pins);
		for (i = 0; i < o->n_pins && k + 6 < n; i++)
			k += (size_t)snprintf(b + k, n - k, ":%02x%02x", o->pins[i][0], o->pins[i][1]);
	} else {
		snprintf(b, n, "unknown key %s", key);
	}
}

/* ======================================================================== policy_parse */

Test(policy_parse, example_policy)
{
	struct policy p;
	const struct policy_rule *r;

	parse_ok(&p, example_policy, false);
	cr_assert_eq(p.n_rules, 7);
	cr_assert_eq(p.n_sources, 1);
	cr_expect_str_eq(p.sources[0], "test.policy");

	r = &p.rules[0];
	cr_expect_eq(r->action, POLICY_TLS);
	cr_expect_eq(r->host_kind, POLICY_HOST_NAME);
	cr_expect_str_eq(r->host, "api.example.com");
	cr_expect_eq(r->port_lo, 443);
	cr_expect_eq(r->port_hi, 443);
	cr_expect_eq(r->line, 2);
	cr_expect_eq(r->source, p.sources[0]);
	cr_expect_str_eq(r->tls.ca_file, "/etc/ssl/certs/ca-certificates.crt");
	cr_expect_eq(r->tls.min_version, 12);
	cr_expect_eq(r->tls.max_version, 0);
	cr_expect_null(r->tls.name);

	r = &p.rules[1];
	cr_expect_eq(r->host_kind, POLICY_HOST_ADDR);
	cr_expect_eq(r->family, AF_INET);
	cr_expect_eq(r->prefix_len, 32);
	cr_expect(memcmp(r->addr, "\x0a\x01\x02\x03", 4) == 0);
	cr_expect_str_eq(r->tls.name, "redis.internal");
	cr_expect_str_eq(r->tls.ca_file, "/etc/tls/internal-ca.pem");
	cr_expect_eq(r->tls.min_version, 12);

	r = &p.rules[2];
	cr_expect_eq(r->host_kind, POLICY_HOST_SUFFIX);
	cr_expect_str_eq(r->host, ".corp.example");
	cr_expect_eq(r->port_lo, 0);
	cr_expect_eq(r->port_hi, 65535);
	cr_expect_str_eq(r->tls.alpn, "h2,http/1.1");

	r = &p.rules[3];
	cr_expect_eq(r->family, AF_INET6);
	cr_expect_eq(r->prefix_len, 128);
	cr_expect(memcmp(r->addr, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16) == 0);
	cr_expect_str_eq(r->tls.name, "localhost");

	r = &p.rules[4];
	cr_expect(r->tls.sni_off);
	cr_expect_null(r->tls.sni);
	cr_expect_str_eq(r->tls.name, "svc");

	r = &p.rules[5];
	cr_expect_eq(r->action, POLICY_PLAIN);
	cr_expect_null(r->tls.ca_file, "defaults apply to tls rules only");
	cr_expect_eq(r->port_lo, 0);

	r = &p.rules[6];
	cr_expect_eq(r->action, POLICY_DENY);
	cr_expect_eq(r->host_kind, POLICY_HOST_ANY);
	cr_expect_eq(r->port_lo, 25);
	cr_expect_eq(r->line, 8);
	policy_free(&p);
	cr_expect_eq(p.n_rules, 0);
	cr_expect_null(p.rules);
}

struct host_case {
	const char *pattern; /* as written after "tls " */
	enum policy_host_kind kind;
	const char *host; /* NAME/SUFFIX */
	int family;	  /* ADDR/CIDR */
	const char *addr; /* ADDR/CIDR, as inet_pton text */
	unsigned prefix;
	unsigned lo, hi;
	const char *canonical; /* policy_rule_pattern() */
};

static const struct host_case host_cases[] = {
    {"api.example.com:443", POLICY_HOST_NAME, "api.example.com", 0, NULL, 0, 443, 443, "api.example.com:443"},
    {"API.Example.COM.:443", POLICY_HOST_NAME, "api.example.com", 0, NULL, 0, 443, 443,
     "api.example.com:443"},
    {"localhost", POLICY_HOST_NAME, "localhost", 0, NULL, 0, 0, 65535, "localhost:*"},
    {"xn--bcher-kva.example:1", POLICY_HOST_NAME, "xn--bcher-kva.example", 0, NULL, 0, 1, 1,
     "xn--bcher-kva.example:1"},
    {"a-b.c-d:65535", POLICY_HOST_NAME, "a-b.c-d", 0, NULL, 0, 65535, 65535, "a-b.c-d:65535"},
    {"*.corp.example:*", POLICY_HOST_SUFFIX, ".corp.example", 0, NULL, 0, 0, 65535, "*.corp.example:*"},
    {"*.Corp.Example.:8000-8100", POLICY_HOST_SUFFIX, ".corp.example", 0, NULL, 0, 8000, 8100,
     "*.corp.example:8000-8100"},
    {"*.com", POLICY_HOST_SUFFIX, ".com", 0, NULL, 0, 0, 65535, "*.com:*"},
    {"*", POLICY_HOST_ANY, NULL, 0, NULL, 0, 0, 65535, "*:*"},
    {"*:*", POLICY_HOST_ANY, NULL, 0, NULL, 0, 0, 65535, "*:*"},
    {"*:25", POLICY_HOST_ANY, NULL, 0, NULL, 0, 25, 25, "*:25"},
    {"*:1-65535", POLICY_HOST_ANY, NULL, 0, NULL, 0, 1, 65535, "*:1-65535"},
    {"*:7-7", POLICY_HOST_ANY, NULL, 0, NULL, 0, 7, 7, "*:7"},
    {"*:00443", POLICY_HOST_ANY, NULL, 0, NULL, 0, 443, 443, "*:443"},
    {"10.1.2.3:6380", POLICY_HOST_ADDR, NULL, AF_INET, "10.1.2.3", 32, 6380, 6380, "10.1.2.3:6380"},
    {"0.0.0.0", POLICY_HOST_ADDR, NULL, AF_INET, "0.0.0.0", 32, 0, 65535, "0.0.0.0:*"},
    {"255.255.255.255:1", POLICY_HOST_ADDR, NULL, AF_INET, "255.255.255.255", 32, 1, 1, "255.255.255.255:1"},
    {"[::1]:8443", POLICY_HOST_ADDR, NULL, AF_INET6, "::1", 128, 8443, 8443, "[::1]:8443"},
    {"[2001:DB8::A]", POLICY_HOST_ADDR, NULL, AF_INET6, "2001:db8::a", 128, 0, 65535, "[2001:db8::a]:*"},
    {"[::ffff:10.1.2.3]:443", POLICY_HOST_ADDR, NULL, AF_INET, "10.1.2.3", 32, 443, 443, "10.1.2.3:443"},
    {"[::ffff:a01:203]", POLICY_HOST_ADDR, NULL, AF_INET, "10.1.2.3", 32, 0, 65535, "10.1.2.3:*"},
    {"10.0.0.0/8", POLICY_HOST_CIDR, NULL, AF_INET, "10.0.0.0", 8, 0, 65535, "10.0.0.0/8:*"},
    {"10.0.0.0/8:443", POLICY_HOST_CIDR, NULL, AF_INET, "10.0.0.0", 8, 443, 443, "10.0.0.0/8:443"},
    {"0.0.0.0/0", POLICY_HOST_CIDR, NULL, AF_INET, "0.0.0.0", 0, 0, 65535, "0.0.0.0/0:*"},
    {"192.168.1.128/25", POLICY_HOST_CIDR, NULL, AF_INET, "192.168.1.128", 25, 0, 65535,
     "192.168.1.128/25:*"},
    {"1.2.3.4/32", POLICY_HOST_CIDR, NULL, AF_INET, "1.2.3.4", 32, 0, 65535, "1.2.3.4/32:*"},
    {"[fd00::]/8", POLICY_HOST_CIDR, NULL, AF_INET6, "fd00::", 8, 0, 65535, "[fd00::]/8:*"},
    {"[fd00::]/8:80-81", POLICY_HOST_CIDR, NULL, AF_INET6, "fd00::", 8, 80, 81, "[fd00::]/8:80-81"},
    {"[::]/0", POLICY_HOST_CIDR, NULL, AF_INET6, "::", 0, 0, 65535, "[::]/0:*"},
    {"[2001:db8::]/127", POLICY_HOST_CIDR, NULL, AF_INET6, "2001:db8::", 127, 0, 65535, "[2001:db8::]/127:*"},
    {"[::ffff:10.0.0.0]/104", POLICY_HOST_CIDR, NULL, AF_INET, "10.0.0.0", 8, 0, 65535, "10.0.0.0/8:*"},
    {"[::ffff:0:0]/96", POLICY_HOST_CIDR, NULL, AF_INET, "0.0.0.0", 0, 0, 65535, "0.0.0.0/0:*"},
};

Test(policy_parse, host_patterns)
{
	size_t i;

	for (i = 0; i < N_ELEMS(host_cases); i++) {
		const struct host_case *c = &host_cases[i];
		const struct policy_rule *r;
		struct policy p;
		char text[256], pat[128];
		uint8_t a[16];

		snprintf(text, sizeof(text), "tls %s", c->pattern);
		parse_ok(&p, text, false);
		cr_assert_eq(p.n_rules, 1, "%s", c->pattern);
		r = &p.rules[0];
		cr_expect_eq(r->host_kind, c->kind, "%s: kind %d", c->pattern, r->host_kind);
		if (c->host)
			cr_expect_str_eq(r->host, c->host, "%s", c->pattern);
		else
			cr_expect_null(r->host, "%s", c->pattern);
		if (c->addr) {
			cr_assert_eq(inet_pton(c->family, c->addr, a), 1);
			cr_expect_eq(r->family, c->family, "%s", c->pattern);
			cr_expect(memcmp(r->addr, a, c->family == AF_INET ? 4 : 16) == 0, "%s: address",
				  c->pattern);
			cr_expect_eq(r->prefix_len, c->prefix, "%s: prefix %u", c->pattern, r->prefix_len);
		}
		cr_expect_eq(r->port_lo, c->lo, "%s: lo %u", c->pattern, r->port_lo);
		cr_expect_eq(r->port_hi, c->hi, "%s: hi %u", c->pattern, r->port_hi);
		policy_rule_pattern(r, pat, sizeof(pat));
		cr_expect_str_eq(pat, c->canonical, "%s", c->pattern);
		policy_free(&p);
	}
}

Test(policy_parse, long_names)
{
	char label63[64], name253[254], text[640];
	struct policy p;

	memset(label63, 'a', 63);
	label63[63] = '\0';
	/* 4 labels of 63 + 3 dots = 255 > 253; 3 labels of 63 + 61 + dots = 253. */
	snprintf(name253, sizeof(name253), "%s.%s.%s.%.61s", label63, label63, label63, label63);
	cr_assert_eq(strlen(name253), 253);
	snprintf(text, sizeof(text), "tls %s:1 name=%s. sni=%s", name253, label63, name253);
	parse_ok(&p, text, false);
	cr_expect_str_eq(p.rules[0].host, name253);
	cr_expect_str_eq(p.rules[0].tls.name, label63);
	cr_expect_str_eq(p.rules[0].tls.sni, name253);
	policy_free(&p);
}

struct opt_case {
	const char *opts; /* after "tls h:1 " */
	const char *key;
	const char *want; /* render_opt() of key */
};

static const struct opt_case opt_cases[] = {
    /* built-in defaults */
    {"", "name", "(null)"},
    {"", "sni", "(null)"},
    {"", "min-version", "0"},
    {"", "max-version", "0"},
    {"", "handshake-timeout", "10000"},
    {"", "verify", "on"},
    {"", "ocsp-stapling", "prefer"},
    {"", "truncation", "error"},
    {"", "session-resumption", "on"},
    {"", "pin-sha256", "0"},
    /* each key */
    {"name=Redis.Internal.", "name", "redis.internal"},
    {"name=10.1.2.3", "name", "10.1.2.3"},
    {"name=[::1]", "name", "::1"},
    {"name=2001:DB8::1", "name", "2001:db8::1"},
    {"name=[::ffff:10.1.2.3]", "name", "10.1.2.3"},
    {"sni=off", "sni", "off"},
    {"sni=Front.Example", "sni", "front.example"},
    {"ca-file=/etc/tls/ca.pem", "ca-file", "/etc/tls/ca.pem"},
    {"ca-dir=/etc/ssl/certs", "ca-dir", "/etc/ssl/certs"},
    {"min-version=1.2", "min-version", "12"},
    {"min-version=1.3", "min-version", "13"},
    {"max-version=1.2", "max-version", "12"},
    {"max-version=1.3", "max-version", "13"},
    {"min-version=1.2 max-version=1.2", "max-version", "12"},
    {"ciphers=TLS13-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256", "ciphers",
     "TLS13-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"},
    {"alpn=h2,http/1.1", "alpn", "h2,http/1.1"},
    {"alpn=h2", "alpn", "h2"},
    {"groups=X25519", "groups", "1:29"},
    {"groups=P-256:X25519", "groups", "2:23:29"},
    {"groups=P-256,X25519", "groups", "2:23:29"},
    {"groups=P-521:P-384:P-256:X25519", "groups", "4:25:24:23:29"},
    {"groups=secp256r1", "groups", "1:23"},
    {"groups=prime256v1", "groups", "1:23"},
    {"groups=secp384r1:secp521r1", "groups", "2:24:25"},
    {"groups=x25519:p-256", "groups", "2:29:23"},
    {"groups=PRIME256V1", "groups", "1:23"},
    {"groups=\"X25519:P-256\"", "groups", "2:29:23"},
    {"handshake-timeout=10", "handshake-timeout", "10000"},
    {"handshake-timeout=10s", "handshake-timeout", "10000"},
    {"handshake-timeout=500ms", "handshake-timeout", "500"},
    {"handshake-timeout=1ms", "handshake-timeout", "1"},
    {"handshake-timeout=300", "handshake-timeout", "300000"},
    {"handshake-timeout=300s", "handshake-timeout", "300000"},
    {"handshake-timeout=300000ms", "handshake-timeout", "300000"},
    {"verify=on", "verify", "on"},
    {"verify=off", "verify", "off"},
    {"verify=pin-only pin-sha256=" PIN_EMPTY, "verify", "pin-only"},
    {"cert=/c.pem key=/k.pem", "cert", "/c.pem"},
    {"cert=/c.pem key=/k.pem", "key", "/k.pem"},
    {"key=/k.pem cert=/c.pem key-password-file=/pw", "key-password-file", "/pw"},
    {"pin-sha256=" PIN_EMPTY, "pin-sha256", "1:e3b0"},
    {"pin-sha256=" PIN_EMPTY "," PIN_ABC, "pin-sha256", "2:e3b0:ba78"},
    {"pin-sha256=" PIN_ABC " pin-sha256=" PIN_EMPTY, "pin-sha256", "2:ba78:e3b0"},
    {"crl-file=/crl.pem", "crl-file", "/crl.pem"},
    {"crl-dir=/crls", "crl-dir", "/crls"},
    {"ocsp-stapling=require", "ocsp-stapling", "require"},
    {"ocsp-stapling=prefer", "ocsp-stapling", "prefer"},
    {"ocsp-stapling=off", "ocsp-stapling", "off"},
    {"truncation=error", "truncation", "error"},
    {"truncation=allow", "truncation", "allow"},
    {"session-resumption=on", "session-resumption", "on"},
    {"session-resumption=off", "session-resumption", "off"},
    {"", "starttls", ""},
    {"", "proxy", "|(null)|0"},
    {"starttls=smtp", "starttls", "smtp"},
    {"starttls=imap", "starttls", "imap"},
    {"starttls=pop3", "starttls", "pop3"},
    {"starttls=postgres", "starttls", "postgres"},
    {"starttls=ldap", "starttls", "ldap"},
    {"proxy=http://Proxy.Corp:3128", "proxy", "http|proxy.corp|3128"},
    {"proxy=socks5://10.0.0.1:1080", "proxy", "socks5|10.0.0.1|1080"},
    {"proxy=socks5h://gw:1", "proxy", "socks5|gw|1"},
    {"proxy=http://[::1]:65535", "proxy", "http|::1|65535"},
    {"proxy=http://[::ffff:10.0.0.1]:8080", "proxy", "http|10.0.0.1|8080"},
    {"proxy=http://p:1 proxy-user-file=/u", "proxy-user-file", "/u"},
    /* quoted values */
    {"ca-file=\"/my certs/ca.pem\"", "ca-file", "/my certs/ca.pem"},
    {"ca-file=\"a;b#c\"", "ca-file", "a;b#c"},
    {"ca-file=\"q\\\"x\\\\y\"", "ca-file", "q\"x\\y"},
    {"ca-file=\"\tx\"", "ca-file", "\tx"},
    {"name=\"svc\"", "name", "svc"},
    {"alpn=\"h2\"  # comment", "alpn", "h2"},
    /* non-UTF-8 and '=' in paths are kept as they are */
    {"ca-file=/etc/\xff\xfe.pem", "ca-file", "/etc/\xff\xfe.pem"},
    {"ca-file=/a=b", "ca-file", "/a=b"},
    {"ca-file=/a\\b", "ca-file", "/a\\b"},
};

Test(policy_parse, options)
{
	size_t i;

	for (i = 0; i < N_ELEMS(opt_cases); i++) {
		const struct opt_case *c = &opt_cases[i];
		struct policy p;
		char text[512], got[256];

		snprintf(text, sizeof(text), "tls h:1 %s", c->opts);
		parse_ok(&p, text, false);
		cr_assert_eq(p.n_rules, 1);
		render_opt(&p.rules[0].tls, c->key, got, sizeof(got));
		cr_expect_str_eq(got, c->want, "[%s] %s: got %s", c->opts, c->key, got);
		policy_free(&p);
	}
}

Test(policy_parse, pins_exact_bytes_and_limit)
{
	static const uint8_t empty_sha[32] = {
	    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
	    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
	char text[1024];
	struct policy p;
	unsigned i;

	strcpy(text, "tls h:1 pin-sha256=" PIN_EMPTY);
	for (i = 1; i < POLICY_MAX_PINS; i++)
		strcat(text, i % 2 ? " pin-sha256=" PIN_ABC : "," PIN_EMPTY);
	parse_ok(&p, text, false);
	cr_expect_eq(p.rules[0].tls.n_pins, POLICY_MAX_PINS);
	cr_expect(memcmp(p.rules[0].tls.pins[0], empty_sha, 32) == 0);
	policy_free(&p);
}

Test(policy_parse, alpn_item_lengths)
{
	char text[700], item[256];
	struct policy p;
	struct policy_error e;

	memset(item, 'p', 255);
	item[255] = '\0';
	snprintf(text, sizeof(text), "tls h:1 alpn=h2,%s", item);
	parse_ok(&p, text, false);
	cr_expect_eq(strlen(p.rules[0].tls.alpn), 3 + 255);
	policy_free(&p);

	snprintf(text, sizeof(text), "tls h:1 alpn=h2,%sp", item);
	cr_assert_eq(policy_parse(&p, text, strlen(text), "f", false, &e), -1);
	cr_expect_eq(e.column, 17);
	cr_expect(strstr(e.message, "longer than 255"), "%s", e.message);
	policy_free(&p);
}

Test(policy_parse, defaults_merging)
{
	struct policy p;
	const struct policy_tls_opts *o;

	parse_ok(&p,
		 "tls before:1\n"
		 "defaults ca-file=/ca1 min-version=1.2 alpn=h2 pin-sha256=" PIN_EMPTY "\n"
		 "tls a:1\n"
		 "tls b:1 ca-file=/own alpn=x\n"
		 "plain c:1\n"
		 "defaults ca-file=/ca2 verify=pin-only pin-sha256=" PIN_ABC "\n"
		 "tls d:1\n"
		 "tls e:1 pin-sha256=" PIN_EMPTY "," PIN_EMPTY "\n"
		 "defaults cert=/c\n"
		 "tls f:1 key=/k\n",
		 false);
	cr_assert_eq(p.n_rules, 7);

	o = &p.rules[0].tls; /* before any defaults */
	cr_expect_null(o->ca_file);
	cr_expect_eq(o->min_version, 0);

	o = &p.rules[1].tls; /* a: all from defaults */
	cr_expect_str_eq(o->ca_file, "/ca1");
	cr_expect_eq(o->min_version, 12);
	cr_expect_str_eq(o->alpn, "h2");
	cr_expect_eq(o->n_pins, 1);
	cr_expect_eq(o->pins[0][0], 0xe3);

	o = &p.rules[2].tls; /* b: rule options override */
	cr_expect_str_eq(o->ca_file, "/own");
	cr_expect_str_eq(o->alpn, "x");
	cr_expect_eq(o->min_version, 12);

	cr_expect_null(p.rules[3].tls.ca_file, "plain rules take no defaults");

	o = &p.rules[4].tls; /* d: second defaults replaces the keys it names, keeps the others */
	cr_expect_str_eq(o->ca_file, "/ca2");
	cr_expect_eq(o->verify, POLICY_VERIFY_PIN_ONLY);
	cr_expect_eq(o->min_version, 12);
	cr_expect_str_eq(o->alpn, "h2");
	cr_expect_eq(o->n_pins, 1, "a later defaults' pins replace the earlier ones");
	cr_expect_eq(o->pins[0][0], 0xba);

	o = &p.rules[5].tls; /* e: the rule's pins replace the defaults' pins */
	cr_expect_eq(o->n_pins, 2);
	cr_expect_eq(o->pins[0][0], 0xe3);
	cr_expect_eq(o->pins[1][0], 0xe3);

	o = &p.rules[6].tls; /* f: cert from defaults + key from the rule pass the together-check */
	cr_expect_str_eq(o->cert, "/c");
	cr_expect_str_eq(o->key, "/k");

	/* sni: a defaults' name or off is inherited as a whole, and a rule's sni= replaces both. */
	policy_free(&p);
	parse_ok(&p,
		 "defaults sni=off\ntls a:1\ntls b:1 sni=front.example\n"
		 "defaults sni=edge.example\ntls c:1\ntls d:1 sni=off\n",
		 false);
	cr_assert_eq(p.n_rules, 4);
	cr_expect(p.rules[0].tls.sni_off);
	cr_expect_null(p.rules[0].tls.sni);
	cr_expect_not(p.rules[1].tls.sni_off);
	cr_expect_str_eq(p.rules[1].tls.sni, "front.example");
	cr_expect_not(p.rules[2].tls.sni_off);
	cr_expect_str_eq(p.rules[2].tls.sni, "edge.example");
	cr_expect(p.rules[3].tls.sni_off);
	cr_expect_null(p.rules[3].tls.sni);
	policy_free(&p);
}

Test(policy_parse, defaults_are_copies)
{
	struct policy p;

	parse_ok(&p, "defaults ca-file=/ca1 alpn=h2\ntls a:1\ndefaults ca-file=/ca2\ntls b:1\n", false);
	/* Strings are copies: freeing one rule's cannot touch another's. */
	cr_expect_str_eq(p.rules[0].tls.ca_file, "/ca1");
	cr_expect_str_eq(p.rules[1].tls.ca_file, "/ca2");
	cr_expect_neq(p.rules[0].tls.alpn, p.rules[1].tls.alpn);
	cr_expect_str_eq(p.rules[1].tls.alpn, "h2");
	policy_free(&p);
}

Test(policy_parse, defaults_stay_within_one_text)
{
	struct policy p;
	struct policy_error e;

	parse_ok(&p, "defaults ca-file=/a", true);
	cr_assert_eq(policy_parse(&p, "tls x:1", 7, "file", false, &e), 0);
	cr_assert_eq(p.n_rules, 1);
	cr_expect_null(p.rules[0].tls.ca_file);
	cr_expect_eq(p.n_sources, 2);
	cr_expect_str_eq(p.rules[0].source, "file");
	policy_free(&p);
}

Test(policy_parse, comments_blank_lines_crlf)
{
	struct policy p;

	parse_ok(&p,
		 "# a policy\n"
		 "\n"
		 "   \t  \n"
		 "tls a:1   # trailing comment with \"quotes\" and ; and # \xff\n"
		 "#tls b:1\n"
		 "tls c:2\r\n"
		 "\ttls\td:3\t\r\n"
		 "plain e:4",
		 false);
	cr_assert_eq(p.n_rules, 4);
	cr_expect_eq(p.rules[0].line, 4);
	cr_expect_str_eq(p.rules[1].host, "c");
	cr_expect_eq(p.rules[1].line, 6);
	cr_expect_str_eq(p.rules[2].host, "d");
	cr_expect_eq(p.rules[2].line, 7);
	cr_expect_eq(p.rules[3].action, POLICY_PLAIN);
	policy_free(&p);

	parse_ok(&p, "", false);
	cr_expect_eq(p.n_rules, 0);
	policy_free(&p);
	parse_ok(&p, "\n\n# only comments\n", false);
	cr_expect_eq(p.n_rules, 0);
	policy_free(&p);
}

Test(policy_parse, rules_mode_splitting_and_numbering)
{
	struct policy p;

	parse_ok(&p, "tls a:1;;tls b:2 ; plain c:3\ndeny d:4;# note; tls e:5 # c; tls f:6 ca-file=\"x;y\";",
		 true);
	cr_assert_eq(p.n_rules, 6);
	cr_expect_eq(p.rules[0].line, 1);
	cr_expect_eq(p.rules[1].line, 3);
	cr_expect_eq(p.rules[2].line, 4);
	cr_expect_eq(p.rules[2].action, POLICY_PLAIN);
	cr_expect_eq(p.rules[3].line, 5, "a newline separates rules too");
	cr_expect_str_eq(p.rules[4].host, "e", "a comment ends at the ';'");
	cr_expect_eq(p.rules[4].line, 7);
	cr_expect_str_eq(p.rules[5].tls.ca_file, "x;y");
	cr_expect_eq(p.rules[5].line, 8);
	cr_expect_str_eq(p.rules[0].source, "TLSSHIM_RULES");
	policy_free(&p);

	parse_ok(&p, "defaults alpn=h2;tls a:1", true);
	cr_expect_str_eq(p.rules[0].tls.alpn, "h2");
	policy_free(&p);
}

Test(policy_parse, error_keeps_rules_before)
{
	struct policy p;
	struct policy_error e;
	const char *t = "tls a:1\ntls b:2\nbogus\ntls c:3\n";

	memset(&p, 0, sizeof(p));
	cr_assert_eq(policy_parse(&p, t, strlen(t), "f", false, &e), -1);
	cr_expect_eq(p.n_rules, 2);
	cr_expect_eq(e.line, 3);
	policy_free(&p);

	/* NULL arguments */
	cr_expect_eq(policy_parse(NULL, "tls a", 5, "f", false, &e), -1);
	memset(&p, 0, sizeof(p));
	cr_expect_eq(policy_parse(&p, NULL, 0, NULL, false, NULL), 0);
	cr_expect_eq(policy_parse(&p, NULL, 3, NULL, true, &e), -1);
	cr_expect_str_eq(e.source, "TLSSHIM_RULES");
	policy_free(&p);
	policy_free(&p);
	policy_free(NULL);
}

Test(policy_parse, valid_hostname)
{
	static const struct {
		const char *name;
		bool ok;
	} cases[] = {
	    {"example.com", true},
	    {"EXAMPLE.com.", true},
	    {"a", true},
	    {"a.", true},
	    {"1.2.3.4", true},
	    {"xn--p1ai", true},
	    {"a-b", true},
	    {"", false},
	    {".", false},
	    {".a", false},
	    {"a..b", false},
	    {"-a", false},
	    {"a-", false},
	    {"a-.b", false},
	    {"a.-b", false},
	    {"a_b", false},
	    {"a b", false},
	    {"a..", false},
	    {"bücher.de", false},
	    {"a\xff", false},
	    {"*.example.com", false},
	    {"a:1", false},
	    {"[::1]", false},
	};
	char label[80], name[300];
	size_t i;

	for (i = 0; i < N_ELEMS(cases); i++)
		cr_expect_eq(policy_valid_hostname(cases[i].name), cases[i].ok, "%s", cases[i].name);
	cr_expect_not(policy_valid_hostname(NULL));

	memset(label, 'x', sizeof(label));
	label[63] = '\0';
	cr_expect(policy_valid_hostname(label));
	label[63] = 'x';
	label[64] = '\0';
	cr_expect_not(policy_valid_hostname(label), "64-byte label");

	/* 253 bytes is the longest name; a trailing dot does not count. */
	memset(name, 'a', sizeof(name));
	for (i = 1; i < 253; i += 2)
		name[i] = '.';
	name[253] = '\0';
	cr_expect(policy_valid_hostname(name));
	name[253] = '.';
	name[254] = '\0';
	cr_expect(policy_valid_hostname(name));
	name[253] = 'a';
	cr_expect_not(policy_valid_hostname(name), "254 bytes");
}

/* ======================================================================== policy_errors */

struct err_case {
	const char *text;
	bool rules;
	unsigned line, col;
	const char *msg; /* a substring of the message */
};

#define F false
#define R true

static const struct err_case err_cases[] = {
    /* actions and structure */
    {"bogus a:1", F, 1, 1, "unknown action 'bogus' (expected tls, plain, deny, serve or defaults)"},
    {"TLS a:1", F, 1, 1, "unknown action 'TLS'"},
    {"tls", F, 1, 4, "missing host pattern after 'tls' (expected host[:port]"},
    {"deny   # c", F, 1, 5, "missing host pattern after 'deny'"},
    {"tls name=x", F, 1, 5, "expected a host pattern after 'tls', got the option 'name=x'"},
    {"plain a:1 name=x", F, 1, 11, "options are not allowed on plain rules (only tls and serve rules"},
    {"deny a:1 b", F, 1, 10, "unexpected 'b' after the host pattern (deny rules take no options)"},
    {"tls a:1 b", F, 1, 9, "expected a key=value option, got 'b'"},
    {"tls a:1 bogus-key=1", F, 1, 9, "unknown option 'bogus-key' (expected one of name, sni, ca-file,"},
    {"tls a:1 Name=x", F, 1, 9, "unknown option 'Name'"},
    {"tls a:1 =x", F, 1, 9, "missing option name before '='"},
    {"tls a:1 name=a name=b", F, 1, 16, "duplicate option 'name' (already set at column 9"},
    {"tls a:1 verify=on alpn=x verify=off", F, 1, 26, "duplicate option 'verify'"},
    {"defaults alpn=a alpn=b", F, 1, 17, "duplicate option 'alpn'"},
    {"tls a:1 name=", F, 1, 14, "empty value for name= (expected a host name or an IP address)"},
    /* groups= */
    {"tls a:1 groups=", F, 1, 16, "empty value for groups="},
    {"tls a:1 groups=X448", F, 1, 16,
     "unknown key-exchange group 'X448' in groups= (expected X25519, P-256, P-384 or P-521, separated by "
     "':' or ',')"},
    {"tls a:1 groups=X25519:ffdhe2048", F, 1, 23, "unknown key-exchange group 'ffdhe2048' in groups="},
    {"tls a:1 groups=P-256:P-224", F, 1, 22, "unknown key-exchange group 'P-224'"},
    {"tls a:1 groups=P256", F, 1, 16, "unknown key-exchange group 'P256'"},
    {"tls a:1 groups=P-256:", F, 1, 22, "empty group in groups="},
    {"tls a:1 groups=:P-256", F, 1, 16, "empty group in groups="},
    {"tls a:1 groups=P-256,,X25519", F, 1, 22, "empty group in groups="},
    {"tls a:1 groups=P-256;X25519", F, 1, 16, "unknown key-exchange group 'P-256;X25519'"},
    {"tls a:1 groups=P-256:secp256r1", F, 1, 22, "group P-256 is listed twice in groups="},
    {"tls a:1 groups=X25519:P-384:x25519", F, 1, 29, "group X25519 is listed twice"},
    {"tls a:1 groups=P-256 groups=X25519", F, 1, 22, "duplicate option 'groups'"},
    {"defaults groups=P-256 groups=P-384", F, 1, 23, "duplicate option 'groups'"},
    {"tls a:1;tls b:1 groups=nope", R, 2, 16, "unknown key-exchange group 'nope'"},
    {"plain a:1 groups=P-256", F, 1, 11, "options are not allowed on plain rules"},
    {"tls a:1 ca-file=\"\"", F, 1, 17, "empty value for ca-file="},
    {"defaults", F, 1, 9, "'defaults' needs at least one key=value option"},
    {"defaults a:1", F, 1, 10, "expected a key=value option, got 'a:1'"},
    {"defaults bogus=1", F, 1, 10, "unknown option 'bogus'"},
    {"\n\n  tls", F, 3, 6, "missing host pattern"},
    /* host patterns */
    {"tls a:0", F, 1, 7, "invalid port '0' (expected 1-65535"},
    {"tls a:65536", F, 1, 7, "invalid port '65536'"},
    {"tls a:99999999999999999999", F, 1, 7, "invalid port"},
    {"tls a:-1", F, 1, 7, "invalid port '-1'"},
    {"tls a:1x", F, 1, 7, "invalid port '1x'"},
    {"tls a:*x", F, 1, 7, "invalid port '*x'"},
    {"tls a:80-", F, 1, 7, "invalid port '80-'"},
    {"tls a:80-0", F, 1, 7, "invalid port '80-0'"},
    {"tls a:80-90-100", F, 1, 7, "invalid port"},
    {"tls a:8100-8000", F, 1, 12, "port range 8100-8000 is reversed (expected lo <= hi)"},
    {"tls a:", F, 1, 6, "missing port after ':'"},
    {"tls :443", F, 1, 5, "missing host before ':'"},
    {"tls ::1", F, 1, 5, "IPv6 addresses go in brackets"},
    {"tls fe80::1:443", F, 1, 5, "too many ':'"},
    {"tls [::1", F, 1, 5, "missing ']'"},
    {"tls [::1]x", F, 1, 10, "unexpected 'x' after ']' (expected :port or /prefix)"},
    {"tls [::1]:", F, 1, 10, "missing port after ':'"},
    {"tls [::1]:0", F, 1, 11, "invalid port '0'"},
    {"tls []", F, 1, 6, "invalid IPv6 address ''"},
    {"tls [zz::1]", F, 1, 6, "invalid IPv6 address 'zz::1'"},
    {"tls [fe80::1%eth0]", F, 1, 6, "invalid IPv6 address"},
    {"tls [1.2.3.4]:1", F, 1, 5, "IPv4 addresses are written without brackets"},
    {"tls [::1]/129", F, 1, 11, "invalid prefix length '129' (expected 0-128)"},
    {"tls [::1]/", F, 1, 11, "invalid prefix length ''"},
    {"tls [::1]/x:1", F, 1, 11, "invalid prefix length 'x'"},
    {"tls [fd00::1]/8", F, 1, 5, "has host bits set (expected its network address, e.g. [fd00::]/8)"},
    {"tls [::ffff:0:0]/80", F, 1, 5, "host bits set"},
    {"tls [::ffff:10.1.2.3]/104", F, 1, 5, "host bits set (expected its network address, e.g. 10.0.0.0/8)"},
    {"tls 10.0.0.0/33", F, 1, 14, "invalid prefix length '33' (expected 0-32)"},
    {"tls 10.0.0.0/", F, 1, 14, "invalid prefix length ''"},
    {"tls 10.0.0.1/8", F, 1, 5,
     "network '10.0.0.1/8' has host bits set (expected its network address, e.g. 10.0.0.0/8)"},
    {"tls 10.0.0.0/7", F, 1, 0, NULL}, /* 10 is even: aligned */
    {"tls 11.0.0.0/7", F, 1, 5, "e.g. 10.0.0.0/7"},
    {"tls 10.0.0/8", F, 1, 5, "invalid IPv4 network '10.0.0/8'"},
    {"tls foo/8", F, 1, 5, "invalid IPv4 network"},
    {"tls fd00::/8", F, 1, 5, "IPv6 addresses go in brackets"},
    {"tls 1.2.3", F, 1, 5, "invalid IPv4 address '1.2.3'"},
    {"tls 256.1.1.1", F, 1, 5, "invalid IPv4 address"},
    {"tls 1.2.3.4.5", F, 1, 5, "invalid IPv4 address"},
    {"tls 010.1.1.1", F, 1, 5, "invalid IPv4 address"},
    {"tls 1..2.3", F, 1, 5, "invalid IPv4 address"},
    {"tls a*.b", F, 1, 6, "'*' must stand alone or start '*.suffix'"},
    {"tls **", F, 1, 5, "'*' must stand alone"},
    {"tls *.a*", F, 1, 8, "'*' must stand alone"},
    {"tls *.", F, 1, 7, "invalid suffix '' after '*.'"},
    {"tls *..com", F, 1, 7, "invalid suffix '.com'"},
    {"tls *.-a.com:1", F, 1, 7, "invalid suffix"},
    {"tls b\xc3\xbc"
     "cher.de",
     F, 1, 5, "invalid host 'b\\xc3\\xbccher.de'"},
    {"tls \xff\xfe", F, 1, 5, "invalid host '\\xff\\xfe'"},
    {"tls a_b.com", F, 1, 5, "invalid host 'a_b.com' (expected a host name of letters, digits"},
    {"tls -a.com", F, 1, 5, "invalid host"},
    {"tls a..com", F, 1, 5, "invalid host"},
    {"tls .", F, 1, 5, "invalid host"},
    /* option values */
    {"tls a:1 name=a_b", F, 1, 14, "invalid name value 'a_b' (expected a host name or an IP address)"},
    {"tls a:1 name=1.2.3", F, 1, 14, "invalid IPv4 address '1.2.3' in name="},
    {"tls a:1 name=[zz]", F, 1, 14, "invalid name value '[zz]'"},
    {"tls a:1 name=a:b", F, 1, 14, "invalid name value"},
    {"tls a:1 name=b\xc3\xbc.de", F, 1, 14, "invalid name value 'b\\xc3\\xbc.de'"},
    {"tls a:1 sni=1.2.3.4", F, 1, 13, "sni= takes a host name or off, not an IP address"},
    {"tls a:1 sni=[::1]", F, 1, 13, "not an IP address"},
    {"tls a:1 sni=::1", F, 1, 13, "not an IP address"},
    {"tls a:1 sni=a_b", F, 1, 13, "invalid sni value 'a_b' (expected a host name, or off)"},
    {"tls a:1 sni=OFF.", F, 1, 0, NULL}, /* a valid name, not the keyword: no error */
    {"tls a:1 min-version=1.1", F, 1, 21, "invalid min-version value '1.1' (expected 1.2 or 1.3)"},
    {"tls a:1 max-version=TLS1.3", F, 1, 21, "invalid max-version value 'TLS1.3'"},
    {"tls a:1 ciphers=\"A B\"", F, 1, 17, "invalid byte 0x20 in ciphers="},
    {"tls a:1 ciphers=A\xff", F, 1, 18, "invalid byte 0xff in ciphers="},
    {"tls a:1 alpn=h2,,x", F, 1, 17, "empty protocol in alpn="},
    {"tls a:1 alpn=,h2", F, 1, 14, "empty protocol in alpn="},
    {"tls a:1 alpn=h2,", F, 1, 17, "empty protocol in alpn="},
    {"tls a:1 alpn=\"h 2\"", F, 1, 14, "invalid byte 0x20 in alpn="},
    {"tls a:1 alpn=h2,x\xc3", F, 1, 18, "invalid byte 0xc3 in alpn="},
    {"tls a:1 handshake-timeout=0", F, 1, 27,
     "handshake-timeout= '0' is out of range (expected 1ms to 300s)"},
    {"tls a:1 handshake-timeout=0ms", F, 1, 27, "out of range"},
    {"tls a:1 handshake-timeout=301", F, 1, 27, "out of range"},
    {"tls a:1 handshake-timeout=301s", F, 1, 27, "out of range"},
    {"tls a:1 handshake-timeout=300001ms", F, 1, 27, "out of range"},
    {"tls a:1 handshake-timeout=99999999999999999999", F, 1, 27, "out of range"},
    {"tls a:1 handshake-timeout=10m", F, 1, 29, "invalid unit in handshake-timeout="},
    {"tls a:1 handshake-timeout=1.5s", F, 1, 28, "invalid unit"},
    {"tls a:1 handshake-timeout=10S", F, 1, 29, "invalid unit"},
    {"tls a:1 handshake-timeout=-1", F, 1, 27, "invalid handshake-timeout value '-1'"},
    {"tls a:1 handshake-timeout=s", F, 1, 27, "invalid handshake-timeout value"},
    {"tls a:1 verify=maybe", F, 1, 16, "invalid verify value 'maybe' (expected on, off or pin-only)"},
    {"tls a:1 verify=ON", F, 1, 16, "invalid verify value 'ON'"},
    {"tls a:1 ocsp-stapling=yes", F, 1, 23,
     "invalid ocsp-stapling value 'yes' (expected require, prefer or off)"},
    {"tls a:1 truncation=ignore", F, 1, 20, "invalid truncation value 'ignore' (expected error or allow)"},
    {"tls a:1 session-resumption=yes", F, 1, 28,
     "invalid session-resumption value 'yes' (expected on or off)"},
    {"tls a:1 pin-sha256=abc", F, 1, 20, "pin-sha256= 'abc' is not valid base64"},
    {"tls a:1 pin-sha256=AAAA", F, 1, 20, "decodes to 3 bytes (expected 32: a SHA-256 digest)"},
    {"tls a:1 "
     "pin-sha256=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
     F, 1, 20, "decodes to 64 bytes"},
    {"tls a:1 pin-sha256=" PIN_EMPTY PIN_EMPTY, F, 1, 20, "is not valid base64"},
    {"tls a:1 pin-sha256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", F, 1, 20, "not valid base64"},
    {"tls a:1 pin-sha256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=", F, 1, 20, "not valid base64"},
    {"tls a:1 pin-sha256=47DEQpj8HBSa-_TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", F, 1, 20, "not valid base64"},
    {"tls a:1 pin-sha256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSu===", F, 1, 20, "not valid base64"},
    {"tls a:1 pin-sha256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZ=3hSuFU=", F, 1, 20, "not valid base64"},
    {"tls a:1 pin-sha256=" PIN_EMPTY ",,x", F, 1, 65, "empty item in pin-sha256="},
    {"tls a:1 pin-sha256=" PIN_EMPTY ",x", F, 1, 65, "'x' is not valid base64"},
    {"tls a:1 pin-sha256=" PIN_EMPTY ",", F, 1, 65, "empty item"},
    {"tls a:1 pin-sha256=\"" PIN_EMPTY ",x\"", F, 1, 20, "'x' is not valid base64"},
    /* checks after merging with defaults */
    {"tls a:1 min-version=1.3 max-version=1.2", F, 1, 25, "min-version=1.3 is above max-version=1.2"},
    {"tls a:1 max-version=1.2 min-version=1.3", F, 1, 25, "min-version=1.3 is above max-version=1.2"},
    {"defaults max-version=1.2\ntls a:1 min-version=1.3", F, 2, 9,
     "is above max-version=1.2 (after applying defaults)"},
    {"defaults min-version=1.3 max-version=1.2\nplain a:1\ntls b:1", F, 3, 1, "is above max-version"},
    {"tls a:1 verify=pin-only", F, 1, 9, "verify=pin-only needs at least one pin-sha256="},
    {"defaults verify=pin-only\n  tls a:1", F, 2, 3, "pin-sha256= (after applying defaults)"},
    {"defaults verify=pin-only pin-sha256=" PIN_EMPTY "\ntls a:1", F, 1, 0, NULL},
    /* combinations that would silently drop a requirement */
    {"tls a:1 verify=off pin-sha256=" PIN_EMPTY, F, 1, 20, "verify=off ignores pin-sha256="},
    {"tls a:1 pin-sha256=" PIN_EMPTY " verify=off", F, 1, 65, "verify=off ignores pin-sha256="},
    {"defaults verify=off\ntls a:1 pin-sha256=" PIN_EMPTY, F, 2, 9,
     "use verify=pin-only to trust the pins alone, or verify=on) (after applying defaults)"},
    {"defaults pin-sha256=" PIN_EMPTY "\ntls a:1 verify=off", F, 2, 9, "verify=off ignores pin-sha256="},
    {"defaults verify=off pin-sha256=" PIN_EMPTY "\ntls a:1", F, 2, 1, "verify=off ignores pin-sha256="},
    {"defaults verify=off pin-sha256=" PIN_EMPTY "\nplain a:1", F, 1, 0, NULL},
    {"tls a:1 verify=off", F, 1, 0, NULL},
    {"tls a:1 verify=pin-only pin-sha256=" PIN_EMPTY " ocsp-stapling=require", F, 1, 81,
     "verify=pin-only with ocsp-stapling=require needs ca-file= or ca-dir="},
    {"tls a:1 verify=pin-only pin-sha256=" PIN_EMPTY " crl-file=/c.pem", F, 1, 81,
     "verify=pin-only with crl-file= needs ca-file= or ca-dir="},
    {"tls a:1 crl-dir=/crls verify=pin-only pin-sha256=" PIN_EMPTY, F, 1, 23,
     "verify=pin-only with crl-dir= needs ca-file= or ca-dir="},
    {"defaults crl-file=/c.pem\ntls a:1 verify=pin-only pin-sha256=" PIN_EMPTY, F, 2, 9,
     "with crl-file= needs ca-file= or ca-dir= (the CA that signs the revocation data); without it "
     "nothing would be checked (after applying defaults)"},
    {"tls a:1 verify=pin-only pin-sha256=" PIN_EMPTY " crl-file=/c.pem ca-file=/ca.pem", F, 1, 0, NULL},
    {"tls a:1 verify=pin-only pin-sha256=" PIN_EMPTY " ocsp-stapling=require ca-dir=/cas", F, 1, 0, NULL},
    {"defaults ca-file=/ca.pem\ntls a:1 verify=pin-only pin-sha256=" PIN_EMPTY " crl-dir=/d", F, 1, 0, NULL},
    {"tls a:1 verify=pin-only pin-sha256=" PIN_EMPTY " ocsp-stapling=prefer", F, 1, 0, NULL},
    {"tls a:1 verify=on pin-sha256=" PIN_EMPTY " crl-file=/c.pem ocsp-stapling=require", F, 1, 0, NULL},
    {"tls a:1 cert=/c", F, 1, 9, "cert= and key= go together (missing key=)"},
    {"tls a:1 key=/k", F, 1, 9, "missing cert="},
    {"defaults cert=/c\ntls a:1", F, 2, 1, "(missing key=) (after applying defaults)"},
    {"tls a:1 key-password-file=/p", F, 1, 9, "key-password-file= needs cert= and key="},
    {"tls a:1 starttls=ftp", F, 1, 18,
     "invalid starttls value 'ftp' (expected smtp, imap, pop3, postgres or ldap)"},
    {"tls a:1 starttls=SMTP", F, 1, 18, "invalid starttls value 'SMTP'"},
    {"tls a:1 starttls=", F, 1, 18, "empty value for starttls="},
    {"tls a:1 proxy=ftp://p:1", F, 1, 15, "invalid proxy value 'ftp://p:1'"},
    {"tls a:1 proxy=http://p", F, 1, 15, "proxy= needs a port"},
    {"tls a:1 proxy=http://:80", F, 1, 22, "proxy= has no host"},
    {"tls a:1 proxy=http://p:0", F, 1, 24, "invalid port in proxy= (expected 1-65535)"},
    {"tls a:1 proxy=http://p:65536", F, 1, 24, "invalid port in proxy="},
    {"tls a:1 proxy=http://p:80/x", F, 1, 26, "invalid port in proxy= (expected 1-65535 and nothing"},
    {"tls a:1 proxy=http://p:", F, 1, 24, "invalid port in proxy="},
    {"tls a:1 proxy=http://[::1:80", F, 1, 22, "unterminated [IPv6] address in proxy="},
    {"tls a:1 proxy=http://[zz]:80", F, 1, 22, "invalid IPv6 address in proxy="},
    {"tls a:1 proxy=http://1.2.3.256:80", F, 1, 22, "invalid IPv4 address in proxy="},
    {"tls a:1 proxy=http://a_b:80", F, 1, 22, "invalid host name in proxy="},
    {"tls a:1 proxy=http://u:p@h:80", F, 1, 24, "invalid port in proxy="},
    {"tls a:1 proxy-user-file=/u", F, 1, 9, "proxy-user-file= needs proxy="},
    /* lexical */
    {"tls a:1 ca-file=\"x", F, 1, 17, "unterminated quoted value"},
    {"tls a:1 ca-file=\"x\ntls b:1\"", F, 1, 17, "unterminated quoted value"},
    {"tls a:1 ca-file=\"a\\nb\"", F, 1, 19, "invalid escape '\\n' in a quoted value (expected \\\" or \\\\)"},
    {"tls a:1 ca-file=\"a\\", F, 1, 17, "unterminated"},
    {"tls a:1 ca-file=\"x\"y", F, 1, 20, "unexpected 'y' after the closing quote"},
    {"tls a:1 ca-file=\"x\"#c", F, 1, 20, "unexpected '#' after the closing quote"},
    {"tls a:1 ca-file=\"x\"\"y\"", F, 1, 20, "unexpected '\"' after the closing quote"},
    {"tls a:1 ca-file=x\"y\"", F, 1, 18, "unexpected '\"' (only whole option values can be quoted"},
    {"tls \"a\":1", F, 1, 5, "unexpected '\"'"},
    {"\"tls\" a:1", F, 1, 1, "unexpected '\"'"},
    {"tls a:1 ca-file=a#b", F, 1, 18, "'#' inside a token (put a space before a comment"},
    {"tls a:1#c", F, 1, 8, "'#' inside a token"},
    {"tls a:1 \x01", F, 1, 9, "control character 0x01"},
    {"tls a:1\x0b", F, 1, 8, "control character 0x0b"},
    {"tls a:1\x7f", F, 1, 8, "control character 0x7f"},
    {"tls\fa:1", F, 1, 4, "control character 0x0c"},
    {"tls a:1 ca-file=\"a\x01\"", F, 1, 19, "control character 0x01 in a quoted value"},
    /* TLSSHIM_RULES: the line is the rule's index, the column counts from the rule's start */
    {"tls a:1;bogus", R, 2, 1, "unknown action 'bogus'"},
    {"tls a:1; tls b:0", R, 2, 8, "invalid port '0'"},
    {"tls a:1;;tls", R, 3, 4, "missing host pattern"},
    {"tls a:1\ntls b:1;x", R, 3, 1, "unknown action 'x'"},
    {"tls a:1 # c; x", R, 2, 2, "unknown action 'x'"},
    {"tls a:1 ca-file=\"a;b\";x", R, 2, 1, "unknown action 'x'"},
    {"tls a:1 ca-file=\"a;b", R, 1, 17, "unterminated quoted value"},
    {"tls a:1 ca-file=\"a\";b", R, 2, 1, "unknown action 'b'"},
    {"defaults verify=pin-only;tls a:1", R, 2, 1, "verify=pin-only needs"},
    /* in a file, ';' is an ordinary byte */
    {"tls a:1;tls b:1", F, 1, 7, "invalid port '1;tls'"},
    {"tls a:1 ca-file=x;y", F, 1, 0, NULL},
};

#undef F
#undef R

Test(policy_errors, table)
{
	size_t i;

	for (i = 0; i < N_ELEMS(err_cases); i++) {
		const struct err_case *c = &err_cases[i];
		const char *src = c->rules ? "TLSSHIM_RULES" : "/etc/tlsshim/policy";
		struct policy p;
		struct policy_error e;
		int rc;

		memset(&p, 0, sizeof(p));
		memset(&e, 0x55, sizeof(e));
		rc = policy_parse(&p, c->text, strlen(c->text), src, c->rules, &e);
		if (!c->msg) {
			cr_expect_eq(rc, 0, "[%s] should parse: %u:%u: %s", c->text, e.line, e.column,
				     e.message);
			policy_free(&p);
			continue;
		}
		cr_expect_eq(rc, -1, "[%s] should fail", c->text);
		if (rc == 0) {
			policy_free(&p);
			continue;
		}
		cr_expect_str_eq(e.source, src, "[%s]", c->text);
		cr_expect_eq(e.line, c->line, "[%s] line %u, want %u (%s)", c->text, e.line, c->line,
			     e.message);
		cr_expect_eq(e.column, c->col, "[%s] column %u, want %u (%s)", c->text, e.column, c->col,
			     e.message);
		cr_expect(strstr(e.message, c->msg) != NULL, "[%s] message [%s] lacks [%s]", c->text,
			  e.message, c->msg);
		policy_free(&p);
	}
}

Test(policy_errors, exact_messages)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
	    {"tls a:1 min-version=1.3 max-version=1.2", "min-version=1.3 is above max-version=1.2"},
	    {"tls a:1 cert=/c", "cert= and key= go together (missing key=)"},
	    {"tls a:1 bogus-key=1",
	     "unknown option 'bogus-key' (expected one of name, sni, ca-file, ca-dir, min-version, "
	     "max-version, "
	     "ciphers, alpn, handshake-timeout, verify, cert, key, key-password-file, pin-sha256, crl-file, "
	     "crl-dir, ocsp-stapling, truncation, session-resumption, starttls, proxy, proxy-user-file, "
	     "groups)"},
	    {"tls a:1 handshake-timeout-typo=1",
	     "unknown option 'handshake-ti...' (expected one of name, sni, ca-file, ca-dir, min-version, "
	     "max-version, ciphers, alpn, handshake-timeout, verify, cert, key, key-password-file, "
	     "pin-sha256, "
	     "crl-file, crl-dir, ocsp-stapling, truncation, session-resumption, starttls, proxy, "
	     "proxy-user-file, groups)"},
	};
	size_t i;

	for (i = 0; i < N_ELEMS(cases); i++) {
		struct policy p = {0};
		struct policy_error e;

		cr_expect_eq(policy_parse(&p, cases[i].text, strlen(cases[i].text), "f", false, &e), -1);
		cr_expect_str_eq(e.message, cases[i].msg);
		policy_free(&p);
	}
}

Test(policy_errors, nul_bytes)
{
	static const struct {
		const char *text;
		size_t len;
		unsigned line, col;
	} cases[] = {
	    {"tls a:1\0", 8, 1, 8},
	    {"tls a:\0\n", 8, 1, 7},
	    {"\0", 1, 1, 1},
	    {"tls a:1\n# comment \0 x\n", 22, 2, 11},
	    {"tls a:1 ca-file=\"\0\"", 19, 1, 18},
	    {"tls a:1 # x\0", 12, 1, 12},
	};
	size_t i;

	for (i = 0; i < N_ELEMS(cases); i++) {
		struct policy p;
		struct policy_error e;
		bool rules;

		for (rules = false;; rules = true) {
			memset(&p, 0, sizeof(p));
			cr_expect_eq(policy_parse(&p, cases[i].text, cases[i].len, "f", rules, &e), -1,
				     "case %zu", i);
			cr_expect_eq(e.line, cases[i].line, "case %zu", i);
			cr_expect_eq(e.column, cases[i].col, "case %zu: column %u", i, e.column);
			cr_expect(strstr(e.message, "NUL byte"), "case %zu: %s", i, e.message);
			policy_free(&p);
			if (rules)
				break;
		}
	}
}

/* A line of exactly n bytes: "tls a:1 ca-file=/xxx..." (or a comment when comment is set). */
static char *line_of(size_t n, bool comment)
{
	char *s = malloc(n + 1);
	const char *head = comment ? "# " : "tls a:1 ca-file=/";

	cr_assert_not_null(s);
	memset(s, 'x', n);
	memcpy(s, head, strlen(head));
	s[n] = '\0';
	return s;
}

Test(policy_errors, line_length)
{
	struct policy p;
	struct policy_error e;
	char *s, *two;
	int comment;

	for (comment = 0; comment < 2; comment++) {
		s = line_of(4096, comment);
		parse_ok(&p, s, false);
		policy_free(&p);
		parse_ok(&p, s, true);
		policy_free(&p);
		free(s);

		s = line_of(4097, comment);
		cr_expect_eq(policy_parse(&p, s, strlen(s), "f", false, &e), -1);
		cr_expect_eq(e.line, 1);
		cr_expect_eq(e.column, 4097);
		cr_expect(strstr(e.message, "line longer than 4096 bytes"), "%s", e.message);
		policy_free(&p);
		free(s);

		s = line_of(5000, comment);
		two = malloc(5100);
		cr_assert_not_null(two);
		snprintf(two, 5100, "tls ok:1\n%s\ntls b:2", s);
		cr_expect_eq(policy_parse(&p, two, strlen(two), "f", false, &e), -1);
		cr_expect_eq(e.line, 2);
		cr_expect_eq(e.column, 4097);
		cr_expect_eq(p.n_rules, 1);
		policy_free(&p);
		free(two);
		free(s);
	}

	/* TLSSHIM_RULES: the limit is per rule, so many short rules make a long string. */
	s = line_of(4096, false);
	two = malloc(3 * 4096 + 8);
	cr_assert_not_null(two);
	snprintf(two, 3 * 4096 + 8, "%s;%s;%s", s, s, s);
	parse_ok(&p, two, true);
	cr_expect_eq(p.n_rules, 3);
	policy_free(&p);
	/* ...but a ';' inside quotes does not end the rule. */
	memcpy(two, "tls a:1 ca-file=\"", 17);
	two[4096] = ';';
	cr_expect_eq(policy_parse(&p, two, strlen(two), "TLSSHIM_RULES", true, &e), -1);
	cr_expect_eq(e.column, 4097);
	cr_expect(strstr(e.message, "rule longer than 4096 bytes"), "%s", e.message);
	policy_free(&p);
	free(two);
	free(s);

	/* Trailing blanks count. */
	s = line_of(5000, false);
	memset(s + 10, ' ', 4990);
	memcpy(s, "tls a:1   ", 10);
	cr_expect_eq(policy_parse(&p, s, strlen(s), "f", false, &e), -1);
	cr_expect_eq(e.column, 4097);
	policy_free(&p);
	free(s);
}

Test(policy_errors, too_many_pins)
{
	char text[1024];
	struct policy p;
	struct policy_error e;
	unsigned i;

	strcpy(text, "tls h:1 pin-sha256=" PIN_EMPTY);
	for (i = 1; i <= POLICY_MAX_PINS; i++)
		strcat(text, "," PIN_ABC);
	memset(&p, 0, sizeof(p));
	cr_assert_eq(policy_parse(&p, text, strlen(text), "f", false, &e), -1);
	cr_expect_eq(e.column, 20 + 45 * POLICY_MAX_PINS);
	cr_expect(strstr(e.message, "too many pin-sha256 values (at most 8"), "%s", e.message);
	policy_free(&p);
}

Test(policy_errors, long_values_in_messages_are_cut)
{
	char text[5000], *s;
	struct policy p;
	struct policy_error e;

	strcpy(text, "tls a:1 verify=");
	memset(text + 15, 'v', 3000);
	text[3015] = '\0';
	memset(&p, 0, sizeof(p));
	cr_assert_eq(policy_parse(&p, text, strlen(text), "f", false, &e), -1);
	cr_expect_lt(strlen(e.message), sizeof(e.message));
	cr_expect(strstr(e.message, "...") != NULL, "%s", e.message);
	cr_expect(strstr(e.message, "(expected on, off or pin-only)") != NULL, "%s", e.message);
	/* and a source name longer than the error's field is cut, not overflowed */
	s = malloc(1000);
	cr_assert_not_null(s);
	memset(s, 's', 999);
	s[999] = '\0';
	cr_assert_eq(policy_parse(&p, "x", 1, s, false, &e), -1);
	cr_expect_eq(strlen(e.source), sizeof(e.source) - 1);
	cr_expect_str_eq(p.sources[p.n_sources - 1], s);
	free(s);
	policy_free(&p);
}

/* ======================================================================== policy_match */

/* A fake resolver: (name, address) pairs it says yes to, and a log of what it was asked. */
struct fake_dns {
	const char *names[4];
	const char *addrs[4];
	unsigned calls;
	const char *last_name;
	int last_family;
	uint8_t last_addr[16];
};

static bool fake_resolve(void *ctx, const char *name, int family, const uint8_t *addr)
{
	struct fake_dns *dns = ctx;
	size_t i;

	dns->calls++;
	dns->last_name = name;
	dns->last_family = family;
	memcpy(dns->last_addr, addr, family == AF_INET ? 4 : 16);
	for (i = 0; i < 4 && dns->names[i]; i++) {
		uint8_t a[16];
		int fam = strchr(dns->addrs[i], ':') ? AF_INET6 : AF_INET;

		if (inet_pton(fam, dns->addrs[i], a) == 1 && fam == family && !strcmp(name, dns->names[i]) &&
		    !memcmp(a, addr, fam == AF_INET ? 4 : 16))
			return true;
	}
	return false;
}

/* Matches ip (NULL: no address)/port/name and returns the matched rule's line, 0 for none. */
static unsigned match_line(const struct policy *p, const char *ip, unsigned port, const char *name,
			   policy_name_has_addr_fn fn, void *ctx)
{
	uint8_t a[16];
	struct policy_dest d = {0, NULL, (uint16_t)port, name};
	const struct policy_rule *r;

	if (ip) {
		d.family = strchr(ip, ':') ? AF_INET6 : AF_INET;
		cr_assert_eq(inet_pton(d.family, ip, a), 1, "%s", ip);
		d.addr = a;
	}
	r = policy_match(p, &d, fn, ctx);
	return r ? r->line : 0;
}

Test(policy_match, example_first_match_wins)
{
	static const struct {
		const char *ip;
		unsigned port;
		const char *name;
		unsigned line;
	} cases[] = {
	    {"93.184.216.34", 443, "api.example.com", 2},
	    {"93.184.216.34", 443, "API.Example.COM.", 2},
	    {"93.184.216.34", 80, "api.example.com", 0},
	    {"93.184.216.34", 443, "xapi.example.com", 0},
	    {"93.184.216.34", 443, NULL, 0},
	    {NULL, 443, "api.example.com", 2},
	    {"10.1.2.3", 6380, NULL, 3},
	    {"::ffff:10.1.2.3", 6380, NULL, 3},
	    {"10.1.2.3", 6381, NULL, 0},
	    {"10.1.2.4", 6380, NULL, 0},
	    {"::a01:203", 6380, NULL, 0}, /* IPv4-compatible, not mapped */
	    {"10.9.9.9", 1234, "x.corp.example", 4},
	    {"10.9.9.9", 1, "a.b.c.corp.example.", 4},
	    {"10.9.9.9", 1234, "X.CORP.EXAMPLE", 4},
	    {"10.9.9.9", 1234, "corp.example", 0},
	    {"10.9.9.9", 1234, "xcorp.example", 0},
	    {"10.9.9.9", 1234, ".corp.example", 0},
	    {"::1", 8443, NULL, 5},
	    {"::1", 8444, NULL, 0},
	    {"127.0.0.1", 8443, NULL, 7},
	    {"127.0.0.1", 9000, NULL, 6},
	    {"127.0.0.1", 9001, NULL, 7},
	    {"::ffff:127.0.0.1", 22, NULL, 7},
	    {"127.0.0.1", 25, NULL, 7}, /* plain comes before deny */
	    {"8.8.8.8", 25, NULL, 8},
	    {"2001:db8::1", 25, NULL, 8},
	    {NULL, 25, NULL, 8},
	    {"8.8.8.8", 25, "x.corp.example", 4},
	    {"8.8.8.8", 0, NULL, 0},
	};
	struct policy p;
	size_t i;

	parse_ok(&p, example_policy, false);
	for (i = 0; i < N_ELEMS(cases); i++)
		cr_expect_eq(match_line(&p, cases[i].ip, cases[i].port, cases[i].name, NULL, NULL),
			     cases[i].line, "%s:%u %s -> %u", cases[i].ip, cases[i].port, cases[i].name,
			     match_line(&p, cases[i].ip, cases[i].port, cases[i].name, NULL, NULL));
	policy_free(&p);
}

Test(policy_match, cidr_and_port_boundaries)
{
	static const struct {
		const char *ip;
		unsigned port;
		unsigned line;
	} cases[] = {
	    {"10.0.0.0", 1, 1},
	    {"10.255.255.255", 1, 1},
	    {"9.255.255.255", 1, 0},
	    {"11.0.0.0", 1, 0},
	    {"192.168.1.128", 1, 2},
	    {"192.168.1.255", 1, 2},
	    {"192.168.1.127", 1, 0},
	    {"172.16.0.1", 1, 3},
	    {"172.31.255.255", 1, 3},
	    {"172.32.0.0", 1, 0},
	    {"172.15.255.255", 1, 0},
	    {"::ffff:172.20.1.1", 1, 3},
	    {"fd00::", 1, 4},
	    {"fdff:ffff::1", 1, 4},
	    {"fc00::1", 1, 0},
	    {"fe00::", 1, 0},
	    {"2001:db8::", 1, 5},
	    {"2001:db8::1", 1, 5},
	    {"2001:db8::2", 1, 0},
	    {"1.1.1.1", 7999, 0},
	    {"1.1.1.1", 8000, 6},
	    {"1.1.1.1", 8100, 6},
	    {"1.1.1.1", 8101, 0},
	    {"1.1.1.1", 65535, 7},
	    {"::1", 65535, 8},
	    {"::ffff:1.1.1.1", 65535, 7},
	    /* prefixes that end inside a byte: /13 and /29 */
	    {"10.8.0.0", 2, 9},
	    {"10.15.255.255", 2, 9},
	    {"10.7.255.255", 2, 0},
	    {"10.16.0.0", 2, 0},
	    {"192.168.0.8", 2, 10},
	    {"192.168.0.15", 2, 10},
	    {"192.168.0.7", 2, 0},
	    {"192.168.0.16", 2, 0},
	};
	struct policy p;
	size_t i;

	parse_ok(&p,
		 "tls 10.0.0.0/8:1\n"		   /* 1 */
		 "tls 192.168.1.128/25:1\n"	   /* 2 */
		 "tls [::ffff:172.16.0.0]/108:1\n" /* 3: 172.16.0.0/12 */
		 "tls [fd00::]/8:1\n"		   /* 4 */
		 "tls [2001:db8::]/127:1\n"	   /* 5 */
		 "tls *:8000-8100\n"		   /* 6 */
		 "tls 0.0.0.0/0:65535\n"	   /* 7 */
		 "tls [::]/0:65535\n"		   /* 8 */
		 "tls 10.8.0.0/13:2\n"		   /* 9 */
		 "tls 192.168.0.8/29:2\n",	   /* 10 */
		 false);
	for (i = 0; i < N_ELEMS(cases); i++)
		cr_expect_eq(match_line(&p, cases[i].ip, cases[i].port, NULL, NULL, NULL), cases[i].line,
			     "%s:%u", cases[i].ip, cases[i].port);
	policy_free(&p);
}

Test(policy_match, mapped_rules_and_dests)
{
	struct policy p;

	parse_ok(&p, "tls [::ffff:10.1.2.3]:1\ntls 10.9.9.9:2\n", false);
	cr_expect_eq(match_line(&p, "10.1.2.3", 1, NULL, NULL, NULL), 1);
	cr_expect_eq(match_line(&p, "::ffff:10.1.2.3", 1, NULL, NULL, NULL), 1);
	cr_expect_eq(match_line(&p, "::ffff:10.9.9.9", 2, NULL, NULL, NULL), 2);
	cr_expect_eq(match_line(&p, "::10.9.9.9", 2, NULL, NULL, NULL), 0);
	policy_free(&p);
}

Test(policy_match, names_via_resolver)
{
	struct fake_dns dns = {
	    {"db.internal", "v6.internal", NULL}, {"10.0.0.5", "fd00::5", NULL}, 0, NULL, 0, {0}};
	struct policy p;

	parse_ok(&p, "tls db.internal:5432\ntls v6.internal\nplain *\n", false);

	/* the remembered name matches: the resolver is not asked */
	cr_expect_eq(match_line(&p, "10.0.0.5", 5432, "DB.internal.", fake_resolve, &dns), 1);
	cr_expect_eq(dns.calls, 0);

	/* no name (or another name): the resolver decides */
	cr_expect_eq(match_line(&p, "10.0.0.5", 5432, NULL, fake_resolve, &dns), 1);
	cr_expect_eq(dns.calls, 1);
	cr_expect_str_eq(dns.last_name, "db.internal");
	cr_expect_eq(match_line(&p, "10.0.0.5", 5432, "localhost", fake_resolve, &dns), 1);
	cr_expect_eq(match_line(&p, "10.0.0.6", 5432, NULL, fake_resolve, &dns), 3);

	/* a mapped destination is asked about as IPv4 */
	dns.calls = 0;
	cr_expect_eq(match_line(&p, "::ffff:10.0.0.5", 5432, NULL, fake_resolve, &dns), 1);
	cr_expect_eq(dns.calls, 1);
	cr_expect_eq(dns.last_family, AF_INET);
	cr_expect(memcmp(dns.last_addr, "\x0a\x00\x00\x05", 4) == 0);

	/* port mismatch: not asked about that rule */
	dns.calls = 0;
	cr_expect_eq(match_line(&p, "10.0.0.5", 5433, NULL, fake_resolve, &dns), 3);
	cr_expect_eq(dns.calls, 1, "only v6.internal (any port) is asked");
	cr_expect_str_eq(dns.last_name, "v6.internal");

	cr_expect_eq(match_line(&p, "fd00::5", 443, NULL, fake_resolve, &dns), 2);

	/* no address, or no resolver: remembered names only */
	dns.calls = 0;
	cr_expect_eq(match_line(&p, NULL, 5432, NULL, fake_resolve, &dns), 3);
	cr_expect_eq(dns.calls, 0);
	cr_expect_eq(match_line(&p, "10.0.0.5", 5432, NULL, NULL, NULL), 3);
	policy_free(&p);
}

Test(policy_match, suffixes)
{
	static const struct {
		const char *name;
		unsigned line;
	} cases[] = {
	    {"a.example.com", 1},
	    {"a.b.example.com", 1},
	    {"A.EXAMPLE.COM.", 1},
	    {"example.com", 2},
	    {"example.com.", 2},
	    {"badexample.com", 0},
	    {"a.example.co", 0},
	    {"com", 0},
	    {"a.example.com..", 0},
	    {"", 0},
	    {".", 0},
	    {"x.com", 3},
	};
	struct fake_dns dns = {{NULL}, {NULL}, 0, NULL, 0, {0}};
	struct policy p;
	size_t i;

	parse_ok(&p, "tls *.example.com\ntls example.com\ntls *.com:2\n", false);
	for (i = 0; i < N_ELEMS(cases); i++)
		cr_expect_eq(
		    match_line(&p, "1.2.3.4", cases[i].line == 3 ? 2 : 1, cases[i].name, fake_resolve, &dns),
		    cases[i].line, "%s", cases[i].name);
	cr_expect_eq(match_line(&p, "1.2.3.4", 1, NULL, fake_resolve, &dns), 0, "suffixes need a name");
	policy_free(&p);
}

Test(policy_match, degenerate_inputs)
{
	struct policy p, empty = {0};
	struct policy_dest d = {AF_UNIX, (const uint8_t *)"\x0a\0\0\x01", 1, NULL};

	parse_ok(&p, "tls 10.0.0.1\ntls [::]/0\ndeny *:1\n", false);
	cr_expect_null(policy_match(NULL, &d, NULL, NULL));
	cr_expect_null(policy_match(&p, NULL, NULL, NULL));
	cr_expect_null(policy_match(&empty, &d, NULL, NULL));
	/* an unknown family has no address: only ANY matches */
	cr_expect_eq(policy_match(&p, &d, NULL, NULL), &p.rules[2]);
	policy_free(&p);
}

/* ======================================================================== policy_load */

static char tmpdir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void load_setup(void)
{
	strcpy(tmpdir, "/tmp/test_policy.XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void load_teardown(void)
{
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(policy_load, .init = load_setup, .fini = load_teardown);

/* Writes len bytes of data to tmpdir/name and returns the path (static buffer). */
static const char *write_file(const char *name, const void *data, size_t len)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
	return path;
}

static void load_fails(const char *rules, const char *path, unsigned line, unsigned col, const char *msg)
{
	struct policy p;
	struct policy_error e;

	memset(&p, 0x5a, sizeof(p));
	cr_assert_eq(policy_load(&p, rules, path, &e), -1, "%s", path);
	cr_expect_eq(p.n_rules, 0, "a failed load empties the policy");
	cr_expect_null(p.rules);
	cr_expect_eq(p.n_sources, 0);
	cr_expect_eq(e.line, line, "%s: line %u (%s)", path, e.line, e.message);
	cr_expect_eq(e.column, col, "%s: column %u (%s)", path, e.column, e.message);
	cr_expect(strstr(e.message, msg) != NULL, "%s: [%s] lacks [%s]", path, e.message, msg);
	policy_free(&p);
}

Test(policy_load, rules_then_file)
{
	const char *path = write_file("policy", example_policy, strlen(example_policy));
	struct policy p;
	struct policy_error e;

	cr_assert_eq(policy_load(&p, "deny *:443; tls a:1", path, &e), 0, "%s", e.message);
	cr_assert_eq(p.n_rules, 9);
	cr_expect_eq(p.n_sources, 2);
	cr_expect_str_eq(p.rules[0].source, "TLSSHIM_RULES");
	cr_expect_eq(p.rules[1].line, 2);
	cr_expect_str_eq(p.rules[2].source, path);
	cr_expect_eq(p.rules[2].line, 2);
	cr_expect_null(p.rules[2].tls.name);
	/* TLSSHIM_RULES comes first: api.example.com:443 is denied */
	cr_expect_eq(match_line(&p, "1.2.3.4", 443, "api.example.com", NULL, NULL), 1);
	policy_free(&p);

	cr_assert_eq(policy_load(&p, NULL, NULL, &e), 0);
	cr_expect_eq(p.n_rules, 0);
	policy_free(&p);
	cr_assert_eq(policy_load(&p, "", path, NULL), 0);
	cr_expect_eq(p.n_rules, 7);
	policy_free(&p);
	cr_expect_eq(policy_load(NULL, NULL, NULL, &e), -1);
}

Test(policy_load, errors_name_their_source)
{
	const char *path = write_file("bad", "tls a:1\n\ntls b:99999\n", 22);

	load_fails("tls x:1;tls y:0", path, 2, 7, "invalid port");
	load_fails(NULL, path, 3, 7, "invalid port '99999'");
	{
		struct policy p;
		struct policy_error e;

		cr_assert_eq(policy_load(&p, "tls x:1", path, &e), -1);
		cr_expect_str_eq(e.source, path);
	}
}

Test(policy_load, hostile_files)
{
	char *big, link[160], target[160];
	const char *path;
	size_t i;

	load_fails(NULL, "/nonexistent/policy", 0, 0,
		   "cannot open the policy file: No such file or directory");
	load_fails(NULL, "", 0, 0, "empty policy file path");
	load_fails(NULL, tmpdir, 0, 0, "not a regular file");
	load_fails(NULL, "/dev/null", 0, 0, "not a regular file");

	snprintf(target, sizeof(target), "%s/fifo", tmpdir);
	cr_assert_eq(mkfifo(target, 0600), 0);
	load_fails(NULL, target, 0, 0, "not a regular file"); /* and does not block */

	path = write_file("nul", "tls a:1\ntls b\0:1\n", 17);
	load_fails(NULL, path, 2, 6, "NUL byte");

	path = write_file("utf8", "tls caf\xc3\xa9.example:443\n", 23);
	load_fails(NULL, path, 1, 5, "invalid host 'caf\\xc3\\xa9.example'");
	path = write_file("latin1", "# caf\xe9 comment is fine\ntls \xe9t\xe9:1\n", 34);
	load_fails(NULL, path, 2, 5, "invalid host");

	big = malloc(5000 + 32);
	cr_assert_not_null(big);
	memset(big, 'a', 5000);
	memcpy(big, "tls ", 4);
	path = write_file("longline", big, 5000);
	load_fails(NULL, path, 1, 4097, "line longer than 4096 bytes");
	free(big);

	/* exactly 1 MiB is accepted, one byte more is not */
	big = malloc(1024 * 1024 + 1);
	cr_assert_not_null(big);
	for (i = 0; i < 1024 * 1024; i += 64) {
		memset(big + i, 'x', 64);
		big[i] = '#';
		big[i + 63] = '\n';
	}
	path = write_file("1mib", big, 1024 * 1024);
	{
		struct policy p;
		struct policy_error e;

		cr_expect_eq(policy_load(&p, NULL, path, &e), 0, "%s", e.message);
		policy_free(&p);
	}
	big[1024 * 1024] = '\n';
	path = write_file("toobig", big, 1024 * 1024 + 1);
	load_fails(NULL, path, 0, 0, "larger than 1 MiB");
	free(big);

	/* a symlink to a regular file is followed; to anything else it is refused */
	path = write_file("real", "tls a:1\n", 8);
	snprintf(target, sizeof(target), "%s", path);
	snprintf(link, sizeof(link), "%s/link", tmpdir);
	cr_assert_eq(symlink(target, link), 0);
	{
		struct policy p;
		struct policy_error e;

		cr_expect_eq(policy_load(&p, NULL, link, &e), 0, "%s", e.message);
		cr_expect_eq(p.n_rules, 1);
		cr_expect_str_eq(p.rules[0].source, link);
		policy_free(&p);
	}
	snprintf(link, sizeof(link), "%s/dirlink", tmpdir);
	cr_assert_eq(symlink(tmpdir, link), 0);
	load_fails(NULL, link, 0, 0, "not a regular file");
	snprintf(link, sizeof(link), "%s/dangling", tmpdir);
	cr_assert_eq(symlink("/nonexistent/x", link), 0);
	load_fails(NULL, link, 0, 0, "cannot open");

	/* unreadable (root reads anything, so only checked for other users) */
	path = write_file("unreadable", "tls a:1\n", 8);
	cr_assert_eq(chmod(path, 0), 0);
	if (geteuid() != 0)
		load_fails(NULL, path, 0, 0, "Permission denied");
}

Test(policy_load, ten_thousand_rules)
{
	const size_t n = 10000;
	char *rules = malloc(n * 40), *file = malloc(n * 40);
	struct timespec t0, t1;
	struct policy p;
	struct policy_error e;
	const char *path;
	size_t i, o = 0, fo = 0;
	double secs;

	cr_assert(rules && file);
	for (i = 0; i < n; i++) {
		o += (size_t)sprintf(rules + o, "tls h%zu.example:%zu alpn=h2;", i, i % 65535 + 1);
		fo += (size_t)sprintf(file + fo, "plain 10.%zu.%zu.0/24\n", i / 256, i % 256);
	}
	path = write_file("many", file, fo);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(policy_load(&p, rules, path, &e), 0, "%s:%u:%u: %s", e.source, e.line, e.column,
		     e.message);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* The bound is for the product build; an ASan+UBSan build (make asan) runs it 2-4 times slower. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POLICY_LOAD_BOUND_S 4.0
#endif
#endif
#if !defined(POLICY_LOAD_BOUND_S) && defined(__SANITIZE_ADDRESS__)
#define POLICY_LOAD_BOUND_S 4.0
#endif
#ifndef POLICY_LOAD_BOUND_S
#define POLICY_LOAD_BOUND_S 1.0
#endif
	cr_expect_lt(secs, POLICY_LOAD_BOUND_S, "took %.3f s (bound %.1f s)", secs, POLICY_LOAD_BOUND_S);
	cr_assert_eq(p.n_rules, 2 * n);
	cr_expect_eq(p.rules[n - 1].line, n);
	cr_expect_str_eq(p.rules[n - 1].host, "h9999.example");
	cr_expect_eq(p.rules[2 * n - 1].line, n);
	cr_expect_eq(match_line(&p, "1.2.3.4", 9999 % 65535 + 1, "h9999.example", NULL, NULL), n);
	cr_expect_eq(match_line(&p, "10.39.15.77", 1, NULL, NULL, NULL), (39 * 256 + 15) + 1);
	policy_free(&p);
	free(rules);
	free(file);
}

/* ======================================================================== policy_format */

Test(policy_format, action_names)
{
	cr_expect_str_eq(policy_action_name(POLICY_PLAIN), "plain");
	cr_expect_str_eq(policy_action_name(POLICY_TLS), "tls");
	cr_expect_str_eq(policy_action_name(POLICY_DENY), "deny");
	cr_expect_str_eq(policy_action_name((enum policy_action)42), "unknown");
}

Test(policy_format, group_names)
{
	cr_expect_str_eq(policy_group_name(29), "X25519");
	cr_expect_str_eq(policy_group_name(23), "P-256");
	cr_expect_str_eq(policy_group_name(24), "P-384");
	cr_expect_str_eq(policy_group_name(25), "P-521");
	cr_expect_null(policy_group_name(30), "X448 is not a group the policy takes");
	cr_expect_null(policy_group_name(256), "nor ffdhe2048");
	cr_expect_null(policy_group_name(0));
}

Test(policy_format, pattern_buffers)
{
	struct policy p;
	char small[8];

	parse_ok(&p, "tls [2001:db8::1]:8000-8100", false);
	memset(small, 'z', sizeof(small));
	policy_rule_pattern(&p.rules[0], small, sizeof(small));
	cr_expect_str_eq(small, "[2001:d");
	policy_rule_pattern(&p.rules[0], small, 0);
	policy_rule_pattern(&p.rules[0], NULL, 0);
	policy_rule_pattern(NULL, small, sizeof(small));
	cr_expect_str_eq(small, "");
	policy_free(&p);
}
