/* cmd_probe.c: `tlsshim probe [--policy FILE] [--rule RULE]... [--timeout S] [--pins] HOST:PORT`.
 * Connects the way the library would: same rule, same WOLFSSL_CTX (tlsctx_new), same session setup
 * (tlsctx_new_session), same verify callback and the same verify name and SNI; only the I/O differs
 * (a plain blocking socket with SO_RCVTIMEO/SO_SNDTIMEO and wolfSSL_set_fd: the CLI is not preloaded).
 * A wrapper around the verify callback records the chain the server sent, so it is shown even when
 * verification fails. A rule's proxy= and starttls= dialogues run first, with the library's own engine
 * (tools/probe_dialogue.c), and what each side said is printed (greeting, capabilities, the proxy's
 * status line). Prints version, cipher, ALPN, whether a second handshake resumes, the chain with
 * subjects, issuers, validity and SPKI pins, and the verification result. Without any policy (no
 * --policy/--rule, nothing in the environment) the rule is `tls HOST:PORT` with the default options. */
#include "preload/der.h"
#include "preload/tlsctx.h"
#include "preload/chain.h"
#include "preload/verify.h"
#include "tools/cli.h"
#include "tools/probe_dialogue.h"

#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

static const char usage[] =
    "usage: tlsshim probe [--policy FILE] [--rule RULE]... [--timeout SECONDS] [--pins] HOST:PORT\n\n"
    "Connects to HOST:PORT as the library would (same rule, options, verify name and SNI; the rule's\n"
    "proxy= and starttls= dialogues first, printing what each side said) and prints the TLS version,\n"
    "cipher, ALPN, resumption, the certificate chain (subjects, issuers, validity, SPKI pins) and the\n"
    "verification result with its reason.\n\n"
    "  --policy FILE    the policy file     --rule RULE  a rule (repeatable)\n"
    "                   (default: the environment's TLSSHIM_RULES/TLSSHIM_POLICY; with no policy at all,\n"
    "                   the rule `tls HOST:PORT` with default options: system trust store, name HOST)\n"
    "  --timeout S      connect and handshake timeout in seconds (default: the rule's handshake-timeout)\n"
    "  --pins           print only `pin-sha256=...` lines (leaf first), ready to paste into a rule\n\n"
    "Exit status: 0 verified, 1 refused by the policy, connection or verification failed, 2 bad usage.\n";

#define MAX_CHAIN 10

/* The chain recorded by the verify-callback wrapper (the CLI is single-threaded). */
static struct {
	size_t n;
	uint8_t *der[MAX_CHAIN];
	size_t len[MAX_CHAIN];
	bool accept_all; /* the unverified handshake: record and accept */
} chain;

static void chain_clear(void)
{
	for (size_t i = 0; i < chain.n; i++)
		free(chain.der[i]);
	chain.n = 0;
}

static int record_and_verify(int preverify_ok, WOLFSSL_X509_STORE_CTX *store)
{
	if (chain.n == 0 && store->certs) {
		for (int i = 0; i < store->totalCerts && chain.n < MAX_CHAIN; i++) {
			uint8_t *copy = malloc(store->certs[i].length);
			if (!copy)
				break;
			memcpy(copy, store->certs[i].buffer, store->certs[i].length);
			chain.der[chain.n] = copy;
			chain.len[chain.n++] = store->certs[i].length;
		}
	}
	if (chain.accept_all)
		return 1;
	return verify_callback(preverify_ok, store);
}

/* ---- TCP ---- */

static int tcp_connect(int family, const uint8_t *addr, uint16_t port, unsigned timeout_ms, char *err,
		       size_t errlen)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, addr, 4);
		sl = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		memcpy(&in6->sin6_addr, addr, 16);
		sl = sizeof(*in6);
	}
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS) {
		snprintf(err, errlen, "TCP connect failed: %s", strerror(errno));
		close(fd);
		return -1;
	}
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int n;
	do
		n = poll(&p, 1, (int)timeout_ms);
	while (n < 0 && errno == EINTR);
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	if (n == 0)
		soerr = ETIMEDOUT;
	else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
		soerr = errno;
	if (soerr) {
		snprintf(err, errlen, "TCP connect failed: %s", strerror(soerr));
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* ---- one handshake ---- */

struct attempt {
	int fd;
	WOLFSSL *ssl;
	struct verify_state v;
	bool ok;
	bool dialogue_failed; /* the proxy= or starttls= dialogue refused (reason says why) */
	char reason[600];
};

static void attempt_end(struct attempt *a)
{
	if (a->ssl) {
		if (a->ok)
			wolfSSL_shutdown(a->ssl);
		wolfSSL_free(a->ssl);
	}
	if (a->fd >= 0)
		close(a->fd);
	a->ssl = NULL;
	a->fd = -1;
}

/* The sentence for a failed handshake (the same reasons the library logs, preload/conn.c). */
static void failure_reason(struct attempt *a, int werr, unsigned timeout_ms)
{
	if (a->v.failed) {
		snprintf(a->reason, sizeof(a->reason), "%s", a->v.reason);
		return;
	}
	if (werr == WOLFSSL_ERROR_WANT_READ || werr == WOLFSSL_ERROR_WANT_WRITE) {
		snprintf(a->reason, sizeof(a->reason),
			 "TLS handshake timed out after %u ms; check that the server speaks TLS on this port",
			 timeout_ms);
		return;
	}
	if (werr == SOCKET_PEER_CLOSED_E || werr == SOCKET_ERROR_E) {
		snprintf(
		    a->reason, sizeof(a->reason),
		    "the server closed the connection during the handshake (does it speak TLS 1.2+ with AEAD "
		    "suites? does it require a client certificate?)");
		return;
	}
	WOLFSSL_ALERT_HISTORY h;
	if (werr == FATAL_ERROR && wolfSSL_get_alert_history(a->ssl, &h) == WOLFSSL_SUCCESS &&
	    h.last_rx.code > 0) {
		snprintf(a->reason, sizeof(a->reason), "the server sent alert %d (%s)", h.last_rx.code,
			 wolfSSL_alert_desc_string_long(h.last_rx.code));
		return;
	}
	snprintf(a->reason, sizeof(a->reason), "handshake failed: %s; %s", verify_error_text(werr),
		 verify_error_advice(werr));
}

/* TCP connect (to the proxy of a proxy= rule), the rule's dialogue (printed to transcript unless NULL),
 * then the handshake. */
static int handshake(WOLFSSL_CTX *ctx, const struct policy_tls_opts *o, const struct cli_peer *peer,
		     int family, const uint8_t *addr, uint16_t port, unsigned timeout_ms,
		     WOLFSSL_SESSION *resume, struct attempt *a, FILE *transcript)
{
	char err[400];
	int hop_family;
	uint8_t hop_addr[16];
	uint16_t hop_port;
	memset(a, 0, sizeof(*a));
	a->fd = -1;
	if (probe_dialogue_first_hop(o, family, addr, port, &hop_family, hop_addr, &hop_port, a->reason,
				     sizeof(a->reason)) != 0)
		return -1;
	a->fd = tcp_connect(hop_family, hop_addr, hop_port, timeout_ms, a->reason, sizeof(a->reason));
	if (a->fd < 0)
		return -1;
	if (probe_dialogue_wanted(o) &&
	    probe_dialogue_run(o, peer->name, family, addr, port, a->fd, timeout_ms, transcript, a->reason,
			       sizeof(a->reason)) != 0) {
		a->dialogue_failed = true;
		return -1;
	}
	verify_begin(&a->v, o, peer->name, peer->family, peer->addr);
	a->ssl = tlsctx_new_session(ctx, o, peer->sni, &a->v, err, sizeof(err));
	if (!a->ssl) {
		snprintf(a->reason, sizeof(a->reason), "%s", err);
		return -1;
	}
	wolfSSL_set_verify(a->ssl, WOLFSSL_VERIFY_PEER, record_and_verify);
	wolfSSL_set_fd(a->ssl, a->fd);
	if (resume)
		wolfSSL_set_session(a->ssl, resume);
	int ret = wolfSSL_connect(a->ssl);
	if (ret == WOLFSSL_SUCCESS) {
		a->ok = true;
		return 0;
	}
	failure_reason(a, wolfSSL_get_error(a->ssl, ret), timeout_ms);
	return -1;
}

/* Connects again with the first session's ticket or ID: does the server resume? */
static const char *resumption(WOLFSSL_CTX *ctx, const struct policy_tls_opts *o, const struct cli_peer *peer,
			      int family, const uint8_t *addr, uint16_t port, unsigned timeout_ms,
			      struct attempt *first)
{
	if (!o->session_resumption)
		return "not tried (session-resumption=off)";
	/* TLS 1.3 tickets arrive after the handshake: read briefly so wolfSSL takes them in. */
	struct timeval tv = {.tv_sec = 0, .tv_usec = 300000};
	setsockopt(first->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char first_byte;
	wolfSSL_peek(first->ssl, &first_byte, 1);
	WOLFSSL_SESSION *s = wolfSSL_get1_session(first->ssl);
	attempt_end(first); /* single-threaded servers serve one connection at a time */
	if (!s)
		return "no (the server gave no session to resume)";
	struct attempt second;
	chain.accept_all = false;
	size_t saved = chain.n;
	chain.n = 0; /* keep the first chain; a resumed handshake sends none */
	uint8_t *der[MAX_CHAIN];
	size_t len[MAX_CHAIN];
	memcpy(der, chain.der, sizeof(der));
	memcpy(len, chain.len, sizeof(len));
	int r = handshake(ctx, o, peer, family, addr, port, timeout_ms, s, &second, NULL);
	bool reused = r == 0 && wolfSSL_session_reused(second.ssl);
	attempt_end(&second);
	chain_clear();
	memcpy(chain.der, der, sizeof(der));
	memcpy(chain.len, len, sizeof(len));
	chain.n = saved;
	wolfSSL_SESSION_free(s);
	if (r != 0)
		return "unknown (the second handshake failed)";
	return reused ? "yes (a second handshake resumed the session)"
		      : "no (the server did not resume a second handshake)";
}

/* ---- output ---- */

static void print_time(const char *label, const WOLFSSL_ASN1_TIME *t)
{
	struct tm tm;
	char buf[64];
	if (t && wolfSSL_ASN1_TIME_to_tm(t, &tm) == WOLFSSL_SUCCESS &&
	    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm))
		printf("%s%s", label, buf);
	else
		printf("%s?", label);
}

static void print_sans(const uint8_t *der, size_t len)
{
	DecodedCert dc;
	wc_InitDecodedCert(&dc, der, (word32)len, NULL);
	if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) == 0) {
		printf("      names:   ");
		bool any = false;
		for (const DNS_entry *e = dc.altNames; e; e = e->next) {
			char ip[INET6_ADDRSTRLEN];
			if (e->type == ASN_DNS_TYPE)
				printf("%sDNS:%.*s", any ? ", " : "", e->len > 200 ? 200 : e->len, e->name);
			else if (e->type == ASN_IP_TYPE && (e->len == 4 || e->len == 16) &&
				 inet_ntop(e->len == 4 ? AF_INET : AF_INET6, e->name, ip, sizeof(ip)))
				printf("%sIP:%s", any ? ", " : "", ip);
			else
				continue;
			any = true;
		}
		printf("%s%s\n", any ? "" : "(no subject alternative names)", dc.isCA ? "  [CA]" : "");
	}
	wc_FreeDecodedCert(&dc);
}

static int spki_pin(const uint8_t *der, size_t len, char *out)
{
	const uint8_t *spki;
	size_t spki_len;
	uint8_t digest[WC_SHA256_DIGEST_SIZE];
	if (der_cert_spki(der, len, &spki, &spki_len) != 0 ||
	    wc_Sha256Hash(spki, (word32)spki_len, digest) != 0)
		return -1;
	cli_base64(digest, sizeof(digest), out);
	return 0;
}

/* The path the library would compare pins with (preload/chain.c, the same code and anchors), built from
 * the recorded chain. */
static bool probe_path(const struct policy_tls_opts *o, struct chain_path *p)
{
	const struct chain_anchors *anchors = verify_uses_anchors(o) ? chain_anchors_find(o) : NULL;
	return chain.n > 0 &&
	       chain_build((const uint8_t *const *)chain.der, chain.len, (unsigned)chain.n, anchors, p) == 0;
}

static bool on_path(const struct chain_path *p, size_t sent_index)
{
	for (unsigned k = 0; k < p->n; k++)
		if (p->sent_index[k] == (int)sent_index)
			return true;
	return false;
}

static void print_chain(const char *title, const struct policy_tls_opts *o)
{
	struct chain_path path;
	bool have_path = probe_path(o, &path);
	printf("%s (%zu certificate%s, leaf first):\n", title, chain.n, chain.n == 1 ? "" : "s");
	for (size_t i = 0; i < chain.n; i++) {
		WOLFSSL_X509 *x = wolfSSL_X509_d2i(NULL, chain.der[i], (int)chain.len[i]);
		char name[512], pin[64];
		if (!x) {
			printf("  [%zu] (does not parse)\n", i);
			continue;
		}
		printf("  [%zu] subject: %s\n", i,
		       wolfSSL_X509_NAME_oneline(wolfSSL_X509_get_subject_name(x), name, sizeof(name)));
		printf("      issuer:  %s\n",
		       wolfSSL_X509_NAME_oneline(wolfSSL_X509_get_issuer_name(x), name, sizeof(name)));
		print_time("      valid:   ", wolfSSL_X509_get_notBefore(x));
		print_time(" to ", wolfSSL_X509_get_notAfter(x));
		printf("\n");
		print_sans(chain.der[i], chain.len[i]);
		if (spki_pin(chain.der[i], chain.len[i], pin) == 0)
			printf("      pin-sha256=%s%s\n", pin,
			       !have_path ? ""
			       : on_path(&path, i)
				   ? "  (on the verified path)"
				   : "  (NOT on the path from the leaf: a pin on it never matches)");
		wolfSSL_X509_free(x);
	}
	if (have_path && path.anchored) {
		char pin[64];
		cli_base64(path.spki_sha256[path.n - 1], 32, pin);
		printf("  trust anchor (from the rule's CA options): pin-sha256=%s\n", pin);
	}
	if (have_path)
		printf("  path: %u certificate%s; %s\n", path.n, path.n == 1 ? "" : "s", path.stop);
}

/* --pins: the pins of the path the library compares pins with (leaf first, the trust anchor last), so
 * a pasted pin always counts; what the server sent off that path is named on stderr. */
static void print_pins(const struct policy_tls_opts *o)
{
	char pin[64];
	struct chain_path path;
	if (!probe_path(o, &path)) {
		for (size_t i = 0; i < chain.n; i++)
			if (spki_pin(chain.der[i], chain.len[i], pin) == 0)
				printf("pin-sha256=%s\n", pin);
		return;
	}
	for (unsigned k = 0; k < path.n; k++) {
		cli_base64(path.spki_sha256[k], 32, pin);
		printf("pin-sha256=%s\n", pin);
	}
	fprintf(stderr, "path: %u certificate%s, %s\n", path.n, path.n == 1 ? "" : "s", path.stop);
	for (size_t i = 0; i < chain.n; i++)
		if (!on_path(&path, i))
			fprintf(stderr, "certificate %zu the server sent is not on the path (not listed)\n",
				i);
}

/* ---- the command ---- */

struct probe_args {
	bool pins_only;
	unsigned timeout_ms; /* 0: the rule's handshake-timeout */
};

static const char *trust_text(const struct policy_tls_opts *o, char *buf, size_t len)
{
	if (o->verify == POLICY_VERIFY_OFF)
		return "none (verify=off)";
	if (o->verify == POLICY_VERIFY_PIN_ONLY)
		return "pins only (verify=pin-only)";
	if (!o->ca_file && !o->ca_dir)
		snprintf(buf, len, "the system's (%s)", TLSCTX_SYSTEM_CA_FILE);
	else
		snprintf(buf, len, "%s%s%s%s%s", o->ca_file ? "ca-file=" : "", o->ca_file ? o->ca_file : "",
			 o->ca_file && o->ca_dir ? " " : "", o->ca_dir ? "ca-dir=" : "",
			 o->ca_dir ? o->ca_dir : "");
	return buf;
}

/* Returns CLI_OK or CLI_FAILED, or -1 when TCP itself failed (the caller tries the next address). */
static int probe_rule(const struct policy_rule *r, const struct cli_dest *d, size_t i,
		      const struct probe_args *pa)
{
	const struct policy_tls_opts *o = &r->tls;
	struct cli_peer peer;
	cli_peer_for(r, d->host_is_name ? d->host : NULL, d->family[i], d->addr[i], &peer);
	unsigned timeout_ms = pa->timeout_ms ? pa->timeout_ms : o->handshake_timeout_ms;
	char err[400], trust[600];
	FILE *info = pa->pins_only ? stderr : stdout;
	fprintf(info, "verify name: %s%s (%s); sni: %s\n", peer.name ? peer.name : "IP ",
		peer.name ? "" : peer.addr_text, peer.why_name, peer.sni ? peer.sni : "none");
	fprintf(info, "trust: %s\n", trust_text(o, trust, sizeof(trust)));

	WOLFSSL_CTX *ctx = tlsctx_new(o, err, sizeof(err));
	if (!ctx) {
		fprintf(info, "verification: FAILED: cannot set up TLS: %s\n", err);
		return CLI_FAILED;
	}
	/* The anchors the path is built to (the library loads them only for rules with pins). */
	if (verify_uses_anchors(o) && chain_anchors_prepare(o, err, sizeof(err)) != 0)
		fprintf(stderr, "tlsshim probe: no trust anchors for the path: %s\n", err);
	struct attempt a;
	chain_clear();
	chain.accept_all = o->verify == POLICY_VERIFY_OFF;
	int hs = handshake(ctx, o, &peer, d->family[i], d->addr[i], d->port, timeout_ms, NULL, &a, info);
	int rc = CLI_OK;
	if (hs != 0 && a.fd < 0) {
		fprintf(info, "%s\n", a.reason);
		wolfSSL_CTX_free(ctx);
		return -1;
	}
	if (hs != 0 && a.dialogue_failed) { /* refused before any TLS: nothing more to show */
		fprintf(info, "dialogue: FAILED: %s\n", a.reason);
		attempt_end(&a);
		wolfSSL_CTX_free(ctx);
		return CLI_FAILED;
	}
	if (hs == 0) {
		char *alpn = NULL;
		unsigned short alen = 0;
		bool has_alpn = o->alpn && wolfSSL_ALPN_GetProtocol(a.ssl, &alpn, &alen) == WOLFSSL_SUCCESS;
		const char *group = wolfSSL_get_curve_name(a.ssl);
		fprintf(info, "tls: %s, cipher %s%s%s\n", wolfSSL_get_version(a.ssl),
			wolfSSL_get_cipher_name(a.ssl), group ? ", key exchange " : "", group ? group : "");
		if (!o->alpn)
			fprintf(info, "alpn: not offered (no alpn= in the rule)\n");
		else if (has_alpn)
			fprintf(info, "alpn: %.*s (offered %s)\n", (int)alen, alpn, o->alpn);
		else
			fprintf(info, "alpn: none agreed (offered %s)\n", o->alpn);
		if (!pa->pins_only)
			fprintf(info, "resumption: %s\n",
				resumption(ctx, o, &peer, d->family[i], d->addr[i], d->port, timeout_ms, &a));
	}
	bool unverified_chain = false;
	if (hs != 0 && chain.n == 0 && a.fd >= 0) {
		/* Nothing recorded: show what the server sends, from a second handshake that verifies
		 * nothing. */
		struct policy_tls_opts open_opts = *o;
		open_opts.verify = POLICY_VERIFY_OFF;
		open_opts.n_pins = 0;
		WOLFSSL_CTX *open_ctx = tlsctx_new(&open_opts, err, sizeof(err));
		if (open_ctx) {
			struct attempt b;
			chain.accept_all = true;
			handshake(open_ctx, &open_opts, &peer, d->family[i], d->addr[i], d->port, timeout_ms,
				  NULL, &b, NULL);
			attempt_end(&b);
			wolfSSL_CTX_free(open_ctx);
			unverified_chain = chain.n > 0;
		}
	}
	if (pa->pins_only)
		print_pins(o);
	else if (chain.n)
		print_chain(unverified_chain
				? "chain (from a second handshake WITHOUT verification: NOT trusted)"
				: "chain as sent by the server",
			    o);
	else if (hs == 0 || a.fd >= 0)
		printf("chain: no certificate received\n");
	if (hs == 0) {
		if (o->verify == POLICY_VERIFY_OFF)
			fprintf(info,
				"verification: SKIPPED (verify=off): the certificate was not checked\n");
		else if (o->verify == POLICY_VERIFY_PIN_ONLY)
			fprintf(info, "verification: ok (a certificate matches pin-sha256)\n");
		else
			fprintf(info, "verification: ok (chain trusted by %s; %s%s matches)\n", trust,
				peer.name ? "name " : "IP ", peer.name ? peer.name : peer.addr_text);
	} else {
		fprintf(info, "verification: FAILED: %s\n", a.reason);
		rc = CLI_FAILED;
	}
	attempt_end(&a);
	chain_clear();
	wolfSSL_CTX_free(ctx);
	return rc;
}

static int parse_timeout(const char *s, unsigned *ms)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !(v > 0) || v > 300)
		return -1;
	*ms = (unsigned)(v * 1000);
	if (*ms == 0)
		*ms = 1;
	return 0;
}

int cmd_probe(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"policy", required_argument, NULL, 'p'},  {"rule", required_argument, NULL, 'r'},
	    {"timeout", required_argument, NULL, 't'}, {"pins", no_argument, NULL, 'P'},
	    {"help", no_argument, NULL, 'h'},	       {NULL, 0, NULL, 0}};
	struct cli_policy_src src = {0};
	struct probe_args pa = {0};
	int c, rc = CLI_FAILED;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:r:t:h", opts, NULL)) != -1) {
		int handled = cli_policy_option(&src, c, optarg);
		if (handled < 0)
			goto out;
		if (handled > 0)
			continue;
		switch (c) {
		case 't':
			if (parse_timeout(optarg, &pa.timeout_ms) != 0) {
				rc = cli_usage_error(
				    "probe", "--timeout %s: expected seconds, more than 0 and at most 300",
				    optarg);
				goto out;
			}
			break;
		case 'P':
			pa.pins_only = true;
			break;
		case 'h':
			fputs(usage, stdout);
			rc = CLI_OK;
			goto out;
		default:
			rc = cli_usage_error("probe", "unknown option or missing value: '%s'",
					     argv[optind - 1]);
			goto out;
		}
	}
	if (argc - optind != 1) {
		rc =
		    cli_usage_error("probe", argc == optind ? "missing HOST:PORT" : "expected one HOST:PORT");
		goto out;
	}
	struct cli_dest d;
	char err[512];
	if (cli_parse_dest(argv[optind], &d, err, sizeof(err)) != 0) {
		rc = cli_usage_error("probe", "%s", err);
		goto out;
	}
	cli_policy_use_env_if_unset(&src);
	struct policy p;
	if (cli_policy_load(&src, &p) != 0)
		goto out;
	const char *policy_name = "the policy";
	if (cli_policy_is_empty(&src)) {
		/* No policy anywhere: probe with the defaults a plain `tls HOST:PORT` rule gets. */
		char rule[300];
		struct policy_error perr;
		snprintf(rule, sizeof(rule), "tls %s%s%s:%u",
			 d.host_is_name || !strchr(d.host, ':') ? "" : "[", d.host,
			 d.host_is_name || !strchr(d.host, ':') ? "" : "]", d.port);
		if (policy_parse(&p, rule, strlen(rule), "(no policy: default options)", true, &perr) != 0) {
			cli_error("%s", perr.message);
			policy_free(&p);
			goto out;
		}
		policy_name = "(no policy: default options)";
	}
	FILE *info = pa.pins_only ? stderr : stdout;
	if (cli_resolve_dest(&d, err, sizeof(err)) != 0) {
		fprintf(info, "probe: %s\n", err);
		policy_free(&p);
		goto out;
	}
	bool tried = false;
	for (size_t i = 0; i < d.n_addrs; i++) {
		const struct policy_rule *r = cli_match(&p, &d, i);
		bool v6 = d.family[i] == AF_INET6;
		char where[300], pat[300];
		fprintf(info, "%s%s%s%s:%u%s%s%s\n", i ? "\n" : "", v6 ? "[" : "", d.addr_text[i],
			v6 ? "]" : "", d.port, d.host_is_name ? " (" : "", d.host_is_name ? d.host : "",
			d.host_is_name ? ")" : "");
		if (!r || r->action != POLICY_TLS) {
			if (r) {
				cli_rule_where(r, where, sizeof(where));
				policy_rule_pattern(r, pat, sizeof(pat));
			}
			fprintf(info, "rule: %s%s%s%s%s: the library would %s; not probing\n",
				r ? where : "none in ", r ? " (" : policy_name,
				r ? policy_action_name(r->action) : "", r ? " " : "", r ? pat : "",
				r && r->action == POLICY_DENY ? "refuse the connection (EACCES)"
							      : "not use TLS (plain)");
			rc = CLI_FAILED;
			tried = true;
			break;
		}
		cli_rule_where(r, where, sizeof(where));
		policy_rule_pattern(r, pat, sizeof(pat));
		if (cli_policy_is_empty(&src))
			fprintf(info, "rule: none (no policy given): default options, as for `tls %s`\n",
				pat);
		else
			fprintf(info, "rule: %s (tls %s)\n", where, pat);
		int r_rc = probe_rule(r, &d, i, &pa);
		if (r_rc < 0)
			continue; /* TCP failed: like a program, try the next address */
		tried = true;
		rc = r_rc;
		break;
	}
	if (!tried) {
		fprintf(info, "probe: could not connect to any address of %s\n", d.host);
		rc = CLI_FAILED;
	}
	policy_free(&p);
out:
	cli_policy_src_free(&src);
	return rc;
}
