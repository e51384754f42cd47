/* explain_serve.c: `tlsshim explain --accept ADDR:PORT [--from PEER] [--sni NAME]`: what the library
 * would do with a connection accepted on local address ADDR:PORT from PEER offering SNI NAME: the serve
 * candidates in policy order, the one the SNI picks, plain-from=, and the effective options. Pure policy
 * evaluation, like the rest of explain: nothing listens. */
#include "preload/tlsctx.h"
#include "tools/cli.h"
#include "tools/explain_serve.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define ROW(label, ...)                                                                                      \
	do {                                                                                                 \
		printf("  %-19s ", label);                                                                   \
		printf(__VA_ARGS__);                                                                         \
		putchar('\n');                                                                               \
	} while (0)

/* An address literal, bracketed or not, into family/addr. */
static int parse_addr(const char *s, size_t n, int *family, uint8_t addr[16])
{
	char buf[64];
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, addr) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}

static void print_serve_opts(const struct policy_rule *r)
{
	const struct policy_tls_opts *o = &r->tls;
	const struct policy_serve_opts *s = &o->serve;
	ROW("certificate", "cert=%s key=%s%s%s", o->cert, o->key,
	    o->key_password_file ? " key-password-file=" : "",
	    o->key_password_file ? o->key_password_file : "");
	ROW("client-auth", "%s",
	    s->client_auth == POLICY_CLIENT_AUTH_REQUIRE    ? "require"
	    : s->client_auth == POLICY_CLIENT_AUTH_OPTIONAL ? "optional"
							    : "none");
	if (s->client_ca)
		ROW("client-ca", "%s%s%s", s->client_ca, o->crl_file ? ", crl-file=" : "",
		    o->crl_file ? o->crl_file : "");
	if (s->n_allow == 0) {
		ROW("allow", "%s", s->client_ca ? "any client certificate the CA issued" : "any client");
	} else {
		for (unsigned i = 0; i < s->n_allow; i++) {
			char one[300];
			static const char *const kinds[] = {"DNS SAN",	      "DNS SAN suffix", "URI SAN",
							    "URI SAN prefix", "email SAN",	"IP SAN"};
			policy_allow_format(&s->allow[i], one, sizeof(one));
			ROW(i ? "" : "allow", "%s (%s)", one, kinds[s->allow[i].kind]);
		}
	}
	ROW("min-version", "1.%d%s", (o->min_version ? o->min_version : 12) % 10,
	    o->min_version ? "" : " (default)");
	ROW("max-version", "1.%d%s", (o->max_version ? o->max_version : 13) % 10,
	    o->max_version ? "" : " (default)");
	ROW("ciphers", "%s%s", o->ciphers ? o->ciphers : TLSCTX_DEFAULT_CIPHERS,
	    o->ciphers ? "" : " (default)");
	ROW("alpn", "%s", o->alpn ? o->alpn : "none");
	char groups[96];
	tlsctx_groups_text(o, groups, sizeof(groups));
	ROW("groups", "%s%s", o->n_groups ? groups : TLSCTX_SERVER_DEFAULT_GROUPS_TEXT,
	    o->n_groups ? " (in this order of preference)" : " (default)");
	ROW("handshake-timeout", "%u ms", o->handshake_timeout_ms);
	ROW("truncation", "%s", o->truncation == POLICY_TRUNCATION_ALLOW ? "allow" : "error");
	ROW("session-tickets", "%s%s%s", s->session_tickets ? "on" : "off",
	    s->ticket_key_file ? ", keys from " : "", s->ticket_key_file ? s->ticket_key_file : "");
	ROW("coalesce", "%s", s->coalesce ? "auto" : "off");
}

int explain_accept(const struct policy *p, const char *local, const char *from, const char *sni)
{
	const char *colon = strrchr(local, ':');
	int family = 0, pfamily = 0;
	uint8_t addr[16], paddr[16];
	unsigned long port;
	char *end;
	if (!colon || parse_addr(local, (size_t)(colon - local), &family, addr) != 0 ||
	    (port = strtoul(colon + 1, &end, 10)) == 0 || port > 65535 || *end) {
		cli_error(
		    "explain: --accept wants the local ADDR:PORT a client reaches, e.g. 127.0.0.1:8443 or "
		    "[::1]:8443, got '%s'",
		    local);
		return CLI_USAGE;
	}
	if (from && parse_addr(from, strlen(from), &pfamily, paddr) != 0) {
		cli_error("explain: --from wants the client's address, e.g. 10.1.2.3, got '%s'", from);
		return CLI_USAGE;
	}
	if (sni && (!policy_valid_hostname(sni) || cli_is_ip_literal(sni))) {
		cli_error("explain: --sni wants a host name (SNI never carries an address), got '%s'", sni);
		return CLI_USAGE;
	}
	struct policy_dest d = {.family = family, .addr = addr, .port = (uint16_t)port};
	const struct policy_rule *cands[64];
	size_t n = policy_serve_candidates(p, &d, NULL, NULL, cands, 64);
	printf("accepted on %s%s%s%s\n", local, from ? " from " : "", from ? from : "", sni ? "" : "");
	if (n > 64)
		n = 64;
	if (n == 0) {
		ROW("matches", "no serve rule");
		ROW("action", "%s",
		    policy_serve_listener(p, family, addr, (uint16_t)port, false, NULL, NULL)
			? "closed at accept: the listener is served (some serve rule can match on it), but "
			  "no rule "
			  "matches this local address"
			: "plain: the listener is not served, connections pass through untouched");
		return CLI_OK;
	}
	for (size_t i = 0; i < n; i++) {
		char where[300], pattern[300];
		cli_rule_where(cands[i], where, sizeof(where));
		policy_rule_pattern(cands[i], pattern, sizeof(pattern));
		ROW(i ? "" : "candidates", "%s (serve %s%s%s)%s", where, pattern,
		    cands[i]->tls.name ? " name=" : "", cands[i]->tls.name ? cands[i]->tls.name : "",
		    i == 0 ? ": the default" : "");
	}
	const struct policy_rule *def = cands[0];
	if (from && policy_serve_plain_from(&def->tls.serve, pfamily, paddr)) {
		ROW("action",
		    "plain: %s is in plain-from= of the default rule (decided before any ClientHello)", from);
		return CLI_OK;
	}
	const struct policy_rule *r = policy_serve_pick(cands, n, sni);
	char where[300];
	cli_rule_where(r, where, sizeof(where));
	ROW("sni", "%s -> %s%s", sni ? sni : "none", where,
	    r == def ? (sni && def->tls.name && r == def ? "" : " (the default)") : "");
	ROW("action",
	    "serve: TLS handshake on the accepted socket, then the program's reads and writes are TLS");
	print_serve_opts(r);
	return CLI_OK;
}
