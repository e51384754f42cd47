/* cmd_explain.c: `tlsshim explain [--policy FILE] [--rule RULE]... HOST:PORT`: for each address HOST
 * resolves to, the rule the library would match (file and line) and the options it would apply after
 * `defaults`: the verify name and SNI it computes, versions, ciphers, ALPN, trust store, pins, client
 * certificate, revocation and the rest. Pure policy evaluation: nothing is connected. */
#include "preload/tlsctx.h"
#include "tools/cli.h"
#include "tools/explain_serve.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const char usage[] =
    "usage: tlsshim explain [--policy FILE] [--rule RULE]... HOST:PORT\n"
    "       tlsshim explain [--policy FILE] [--rule RULE]... --accept ADDR:PORT [--from PEER] [--sni "
    "NAME]\n\n"
    "Shows which rule the library would apply to HOST:PORT (for each address HOST resolves to) and the\n"
    "effective options after `defaults`: verify name, SNI, versions, ciphers, ALPN, trust store, pins.\n"
    "HOST is a name (resolved with getaddrinfo, as the program would) or an address ([v6]:port).\n\n"
    "With --accept: what a server under the shim does with a connection accepted on the local address\n"
    "ADDR:PORT (from PEER, offering SNI NAME): the serve rules that are its candidates, the one the SNI\n"
    "picks, plain-from=, and the certificate, client-certificate and TLS options it applies.\n\n"
    "  --policy FILE  the policy file     --rule RULE  a rule (repeatable)\n"
    "Without --policy or --rule, the policy the environment names (TLSSHIM_RULES, TLSSHIM_POLICY).\n";

#define ROW(label, ...)                                                                                      \
	do {                                                                                                 \
		printf("  %-19s ", label);                                                                   \
		printf(__VA_ARGS__);                                                                         \
		putchar('\n');                                                                               \
	} while (0)

static const char *or_none(const char *s)
{
	return s ? s : "none";
}

static void print_verify(const struct policy_rule *r, const struct cli_peer *peer)
{
	const struct policy_tls_opts *o = &r->tls;
	if (o->verify == POLICY_VERIFY_OFF)
		ROW("verify",
		    "off: the server's certificate is NOT checked (anyone on the path can intercept)");
	else if (o->verify == POLICY_VERIFY_PIN_ONLY)
		ROW("verify",
		    "pin-only: a certificate in the chain must match a pin-sha256; no CA, no name check");
	else
		ROW("verify", "on: the chain must lead to the trust store, the leaf must name the peer");
	if (peer->name)
		ROW("verify name", "%s (from %s; DNS SANs only, never the CN)", peer->name, peer->why_name);
	else
		ROW("verify name", "none: the address %s is checked against IP SANs (%s)", peer->addr_text,
		    peer->why_name);
	if (peer->sni)
		ROW("sni", "%s%s", peer->sni, r->tls.sni ? " (sni= in the rule)" : "");
	else
		ROW("sni", "none (%s)",
		    r->tls.sni_off ? "sni=off" : "no name to send; SNI never carries an address");
	if (o->verify == POLICY_VERIFY_ON) {
		if (o->ca_file || o->ca_dir)
			ROW("trust store", "%s%s%s%s%s", o->ca_file ? "ca-file=" : "",
			    o->ca_file ? o->ca_file : "", o->ca_file && o->ca_dir ? " " : "",
			    o->ca_dir ? "ca-dir=" : "", o->ca_dir ? o->ca_dir : "");
		else
			ROW("trust store", "the system's, %s (no ca-file= or ca-dir=)",
			    TLSCTX_SYSTEM_CA_FILE);
	} else {
		ROW("trust store", "not used (verify=%s)",
		    o->verify == POLICY_VERIFY_OFF ? "off" : "pin-only");
	}
	if (o->n_pins == 0)
		ROW("pins", "none");
	for (unsigned i = 0; i < o->n_pins; i++) {
		char b64[48];
		cli_base64(o->pins[i], 32, b64);
		ROW(i == 0 ? "pins" : "", "pin-sha256=%s", b64);
	}
}

/* starttls= and proxy=: what runs between the TCP connect and the handshake. */
static void print_dialogue(const struct policy_tls_opts *o)
{
	static const char *const steps[] = {
	    [POLICY_STARTTLS_SMTP] = "greeting, EHLO, STARTTLS, 220; the greeting is replayed to the program",
	    [POLICY_STARTTLS_IMAP] =
		"greeting, STARTTLS, tagged OK; the greeting (without [CAPABILITY]) is replayed",
	    [POLICY_STARTTLS_POP3] = "greeting, STLS, +OK; the greeting is replayed",
	    [POLICY_STARTTLS_POSTGRES] =
		"SSLRequest, S; the program's own SSLRequest/GSSENCRequest are answered N, "
		"SCRAM-SHA-256-PLUS is not offered to it",
	    [POLICY_STARTTLS_LDAP] = "StartTLS extended operation (1.3.6.1.4.1.1466.20037), success",
	};
	if (o->starttls != POLICY_STARTTLS_NONE)
		ROW("starttls", "%s: %s", policy_starttls_name(o->starttls), steps[o->starttls]);
	else
		ROW("starttls", "none (TLS from the first byte)");
	if (o->proxy != POLICY_PROXY_NONE) {
		bool v6 = strchr(o->proxy_host, ':') != NULL;
		ROW("proxy", "%s://%s%s%s:%u (%s; the destination's name is asked for when known)%s%s",
		    policy_proxy_name(o->proxy), v6 ? "[" : "", o->proxy_host, v6 ? "]" : "",
		    (unsigned)o->proxy_port, o->proxy == POLICY_PROXY_HTTP ? "HTTP CONNECT" : "SOCKS5",
		    o->proxy_user_file ? ", credentials from " : "",
		    o->proxy_user_file ? o->proxy_user_file : "");
	} else {
		ROW("proxy", "none (direct)");
	}
}

static void print_tls(const struct policy_rule *r, const struct cli_peer *peer)
{
	const struct policy_tls_opts *o = &r->tls;
	print_verify(r, peer);
	ROW("min-version", "1.%d%s", (o->min_version ? o->min_version : 12) % 10,
	    o->min_version ? "" : " (default)");
	ROW("max-version", "1.%d%s", (o->max_version ? o->max_version : 13) % 10,
	    o->max_version ? "" : " (default)");
	ROW("ciphers", "%s%s", o->ciphers ? o->ciphers : TLSCTX_DEFAULT_CIPHERS,
	    o->ciphers ? "" : " (default)");
	ROW("alpn", "%s", o->alpn ? o->alpn : "none offered");
	char groups[96];
	tlsctx_groups_text(o, groups, sizeof(groups));
	ROW("groups", "%s%s", o->n_groups ? groups : TLSCTX_DEFAULT_GROUPS_TEXT,
	    o->n_groups ? " (in this order of preference)" : " (default)");
	if (o->cert)
		ROW("client cert", "cert=%s key=%s%s%s", o->cert, or_none(o->key),
		    o->key_password_file ? " key-password-file=" : "",
		    o->key_password_file ? o->key_password_file : "");
	else
		ROW("client cert", "none");
	ROW("crl", "%s%s%s%s", o->crl_file ? "crl-file=" : "", o->crl_file ? o->crl_file : "",
	    o->crl_dir ? (o->crl_file ? " crl-dir=" : "crl-dir=") : "",
	    o->crl_dir ? o->crl_dir : (o->crl_file ? "" : "none"));
	ROW("ocsp-stapling", "%s",
	    o->ocsp_stapling == POLICY_OCSP_REQUIRE ? "require"
	    : o->ocsp_stapling == POLICY_OCSP_OFF   ? "off"
						    : "prefer");
	ROW("handshake-timeout", "%u ms%s", o->handshake_timeout_ms,
	    o->handshake_timeout_ms == POLICY_DEFAULT_HANDSHAKE_TIMEOUT_MS ? " (default)" : "");
	ROW("truncation", "%s", o->truncation == POLICY_TRUNCATION_ALLOW ? "allow" : "error");
	ROW("session-resumption", "%s", o->session_resumption ? "on" : "off");
	print_dialogue(o);
}

/* One address (or none: i == d->n_addrs). */
static void explain_one(const struct policy *p, const struct cli_dest *d, size_t i)
{
	bool has_addr = i < d->n_addrs;
	bool v6 = has_addr && d->family[i] == AF_INET6;
	if (has_addr)
		printf("%s%s%s:%u%s%s%s\n", v6 ? "[" : "", d->addr_text[i], v6 ? "]" : "", d->port,
		       d->host_is_name ? " (" : "", d->host_is_name ? d->host : "",
		       d->host_is_name ? ")" : "");
	else
		printf("%s:%u (no address: only rules that match by name apply)\n", d->host, d->port);
	const struct policy_rule *r = cli_match(p, d, i);
	if (!r) {
		ROW("matches", "no rule");
		ROW("action", "plain: the connection passes through untouched");
		return;
	}
	char where[300], pattern[300];
	cli_rule_where(r, where, sizeof(where));
	policy_rule_pattern(r, pattern, sizeof(pattern));
	ROW("matches", "%s (%s %s)", where, policy_action_name(r->action), pattern);
	if (r->action == POLICY_PLAIN) {
		ROW("action", "plain: the connection passes through untouched");
		return;
	}
	if (r->action == POLICY_DENY) {
		ROW("action", "deny: connect() fails with EACCES");
		return;
	}
	ROW("action", "tls: TLS handshake right after the TCP connect");
	struct cli_peer peer;
	cli_peer_for(r, d->host_is_name ? d->host : NULL, has_addr ? d->family[i] : 0,
		     has_addr ? d->addr[i] : NULL, &peer);
	if (!peer.name && !has_addr)
		snprintf(peer.addr_text, sizeof(peer.addr_text), "(the connected address)");
	print_tls(r, &peer);
}

int cmd_explain(int argc, char **argv)
{
	static const struct option opts[] = {{"policy", required_argument, NULL, 'p'},
					     {"rule", required_argument, NULL, 'r'},
					     {"help", no_argument, NULL, 'h'},
					     {"accept", required_argument, NULL, 'A'},
					     {"from", required_argument, NULL, 'F'},
					     {"sni", required_argument, NULL, 'S'},
					     {NULL, 0, NULL, 0}};
	struct cli_policy_src src = {0};
	const char *accept_addr = NULL, *from = NULL, *sni = NULL;
	int c, rc = CLI_FAILED;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:r:h", opts, NULL)) != -1) {
		int handled = cli_policy_option(&src, c, optarg);
		if (handled < 0)
			goto out;
		if (handled > 0)
			continue;
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			rc = CLI_OK;
			goto out;
		case 'A':
			accept_addr = optarg;
			break;
		case 'F':
			from = optarg;
			break;
		case 'S':
			sni = optarg;
			break;
		default:
			rc = cli_usage_error("explain", "unknown option or missing value: '%s'",
					     argv[optind - 1]);
			goto out;
		}
	}
	if ((from || sni) && !accept_addr) {
		rc = cli_usage_error("explain", "--from and --sni go with --accept ADDR:PORT");
		goto out;
	}
	if (accept_addr) {
		if (argc != optind) {
			rc = cli_usage_error("explain",
					     "--accept takes no HOST:PORT besides its own ADDR:PORT");
			goto out;
		}
		cli_policy_use_env_if_unset(&src);
		struct policy sp;
		if (cli_policy_load(&src, &sp) != 0)
			goto out;
		rc = explain_accept(&sp, accept_addr, from, sni);
		policy_free(&sp);
		goto out;
	}
	if (argc - optind != 1) {
		rc = cli_usage_error("explain",
				     argc == optind ? "missing HOST:PORT" : "expected one HOST:PORT");
		goto out;
	}
	struct cli_dest d;
	char err[512];
	if (cli_parse_dest(argv[optind], &d, err, sizeof(err)) != 0) {
		rc = cli_usage_error("explain", "%s", err);
		goto out;
	}
	cli_policy_use_env_if_unset(&src);
	struct policy p;
	if (cli_policy_load(&src, &p) != 0)
		goto out;
	if (cli_policy_is_empty(&src))
		printf("no policy: TLSSHIM_POLICY and TLSSHIM_RULES are unset (give --policy or --rule)\n");
	else
		printf("policy: %s%s%s%s (%zu rule%s)\n", src.rules ? "TLSSHIM_RULES" : "",
		       src.rules && src.file ? ", then " : "", src.file ? src.file : "",
		       src.from_env ? " from the environment" : "", p.n_rules, p.n_rules == 1 ? "" : "s");
	if (cli_resolve_dest(&d, err, sizeof(err)) != 0) {
		printf("%s\n", err);
		explain_one(&p, &d, d.n_addrs);
	} else {
		if (d.host_is_name) {
			printf("%s resolves to", d.host);
			for (size_t i = 0; i < d.n_addrs; i++)
				printf("%s %s", i ? "," : "", d.addr_text[i]);
			printf("\n");
		}
		for (size_t i = 0; i < d.n_addrs; i++) {
			printf("\n");
			explain_one(&p, &d, i);
		}
	}
	policy_free(&p);
	rc = CLI_OK;
out:
	cli_policy_src_free(&src);
	return rc;
}
