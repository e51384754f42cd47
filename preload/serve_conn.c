/* serve_conn.c: what a server connection does differently from a client one (see serve.h): it reads the
 * ClientHello before there is a session, so the SNI can choose the rule (and its certificate); it checks
 * the client's certificate against allow=; it words its failures as the client's doing. conn.c calls in
 * here from a few named places and stays role-neutral otherwise. */
#include "preload/serve.h"
#include "preload/conn.h"
#include "preload/libc.h"
#include "preload/log.h"
#include "preload/tlsctx.h"
#include "preload/verify.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#define TLS_RECORD_HANDSHAKE 22
#define TLS_RECORD_MAX	     (16384 + 2048) /* the largest TLSCiphertext body (RFC 8446 5.2) */

static void refuse(struct serve_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(struct serve_state *s, const char *fmt, ...)
{
	if (s->refused)
		return; /* the first reason is the one that matters */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
	va_end(ap);
	s->refused = true;
}

/* ---- the ClientHello peek ---- */

/* Whether the read-ahead h[0..avail) holds the whole ClientHello, which may span several handshake
 * records (large key shares, many extensions; RFC 8446 5.1 lets a client fragment it). 1: complete
 * (*records: how many it spans, *msg_len: the handshake message with its 4-byte header; a first
 * handshake message that is not a ClientHello counts as complete: the handshake refuses it), 0: more
 * bytes needed, -1: refused (s->reason). */
static int hello_complete(struct serve_state *s, const unsigned char *h, unsigned avail, unsigned *records,
			  unsigned *msg_len)
{
	unsigned off = 0, got = 0, need = 0, n = 0;
	unsigned char hdr[4];
	*records = 0;
	for (;;) {
		if (avail - off < 1)
			return 0;
		if (h[off] != TLS_RECORD_HANDSHAKE) {
			if (off == 0)
				refuse(s,
				       "the client did not start a TLS handshake (first byte 0x%02x%s): "
				       "plaintext sent to a TLS port?",
				       h[0], h[0] >= 'A' && h[0] <= 'Z' ? ", a letter" : "");
			else
				refuse(s,
				       "the client's ClientHello is interrupted by a record of type %u after "
				       "%u bytes of it",
				       h[off], got);
			return -1;
		}
		if (avail - off < 5)
			return 0;
		unsigned len = (unsigned)h[off + 3] << 8 | h[off + 4];
		if (h[off + 1] != 3 || len == 0 || len > TLS_RECORD_MAX) {
			refuse(s, "the client sent a malformed TLS record header (version %u.%u, length %u)",
			       h[off + 1], h[off + 2], len);
			return -1;
		}
		if (avail - off < 5 + len)
			return 0;
		for (unsigned i = 0; got + i < 4 && i < len; i++) /* the handshake header may be split too */
			hdr[got + i] = h[off + 5 + i];
		got += len;
		off += 5 + len;
		n++;
		if (got >= 4 && !need) {
			if (hdr[0] != 1 /* client_hello */) {
				*records = n;
				*msg_len = got;
				return 1;
			}
			need = 4 + ((unsigned)hdr[1] << 16 | (unsigned)hdr[2] << 8 | hdr[3]);
		}
		if (need && got >= need) {
			*records = n;
			*msg_len = need;
			return 1;
		}
	}
}

/* The ClientHello of n records in h as one record (for wolfSSL_SNI_GetFromBuffer, which reads one):
 * malloc'd, *out_len bytes; NULL when out of memory. */
static unsigned char *hello_joined(const unsigned char *h, unsigned records, unsigned msg_len,
				   unsigned *out_len)
{
	unsigned char *j = malloc(5 + msg_len);
	if (!j)
		return NULL;
	j[0] = TLS_RECORD_HANDSHAKE;
	j[1] = h[1];
	j[2] = h[2];
	j[3] = (unsigned char)(msg_len >> 8);
	j[4] = (unsigned char)msg_len;
	unsigned off = 0, o = 5;
	for (unsigned r = 0; r < records && o < 5 + msg_len; r++) {
		unsigned len = (unsigned)h[off + 3] << 8 | h[off + 4];
		unsigned take = len < 5 + msg_len - o ? len : 5 + msg_len - o;
		memcpy(j + o, h + off + 5, take);
		o += take;
		off += 5 + len;
	}
	*out_len = o;
	return j;
}

int serve_prepare_session(struct conn *c, int fd, WOLFSSL **out)
{
	struct serve_state *s = c->serve;
	unsigned records = 0, msg_len = 0;
	for (;;) {
		unsigned avail = c->ra_len - c->ra_off;
		int st =
		    hello_complete(s, (const unsigned char *)c->ra + c->ra_off, avail, &records, &msg_len);
		if (st < 0)
			return -1;
		if (st > 0)
			break;
		if (avail >= CONN_TLS_QUEUE_MAX) {
			refuse(s, "the client's ClientHello does not fit the read-ahead (%u bytes)",
			       (unsigned)CONN_TLS_QUEUE_MAX);
			return -1;
		}
		char buf[CONN_TLS_QUEUE_MAX];
		ssize_t n;
		do
			n = libc.recv(fd, buf, CONN_TLS_QUEUE_MAX - avail, MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n == 0) {
			refuse(s, "the client closed the connection before sending a complete ClientHello");
			return -1;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			refuse(s, "socket error before the ClientHello: %s", strerror(errno));
			return -1;
		}
		if (conn_queue_for_tls(c, buf, (size_t)n) != 0) {
			refuse(s, "out of memory for the ClientHello");
			return -1;
		}
	}

	/* The SNI picks the candidate, from the whole ClientHello (joined when it spans records). */
	unsigned char name[256];
	unsigned int name_len = sizeof(name) - 1;
	const unsigned char *hello = (const unsigned char *)c->ra + c->ra_off;
	unsigned hello_len = c->ra_len - c->ra_off;
	unsigned char *joined = NULL;
	if (records > 1) {
		joined = hello_joined(hello, records, msg_len, &hello_len);
		if (!joined) {
			refuse(s, "out of memory for the ClientHello");
			return -1;
		}
		hello = joined;
	}
	s->sni[0] = '\0';
	if (wolfSSL_SNI_GetFromBuffer(hello, hello_len, WOLFSSL_SNI_HOST_NAME, name, &name_len) ==
		WOLFSSL_SUCCESS &&
	    name_len > 0 && name_len < sizeof(name)) {
		name[name_len] = '\0';
		if (!memchr(name, '\0', name_len))
			snprintf(s->sni, sizeof(s->sni), "%s", (const char *)name);
	}
	free(joined);
	const struct policy_rule *rule = policy_serve_pick(s->cands, s->n_cands, s->sni);
	size_t idx = 0;
	while (idx < s->n_cands && s->cands[idx] != rule)
		idx++;
	WOLFSSL_CTX *ctx = idx < s->n_cands ? s->ctxs[idx] : NULL;
	if (!ctx) {
		refuse(s, "the certificate of serve rule %s:%u (SNI %s) did not load", rule->source,
		       rule->line, s->sni[0] ? s->sni : "none");
		return -1;
	}
	WOLFSSL *ssl = wolfSSL_new(ctx);
	if (!ssl) {
		refuse(s, "out of memory for a TLS session");
		return -1;
	}
	wolfSSL_SetCertCbCtx(ssl, s);
	if (rule->tls.alpn) {
		char list[1024];
		snprintf(list, sizeof(list), "%s", rule->tls.alpn);
		if (wolfSSL_UseALPN(ssl, list, (unsigned)strlen(list), WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) !=
		    WOLFSSL_SUCCESS) {
			wolfSSL_free(ssl);
			refuse(s, "cannot set alpn=%s", rule->tls.alpn);
			return -1;
		}
	}
	c->rule = rule;
	s->rule = rule;
	*out = ssl;
	return 0;
}

/* ---- the client certificate ---- */

static void describe(char *buf, size_t size, const char *kind, const char *v, size_t n)
{
	size_t used = strlen(buf);
	if (used + 8 < size)
		snprintf(buf + used, size - used, "%s%s:%.*s", used ? ", " : "", kind, (int)(n > 80 ? 80 : n),
			 v);
}

/* allow= against the leaf's SANs; fills s->identity with what matched, or refuses. */
static void check_allow(struct serve_state *s, const struct policy_serve_opts *o, const DecodedCert *dc)
{
	char have[200] = "", matched[300] = "";
	for (const DNS_entry *e = dc->altNames; e; e = e->next) {
		enum policy_san_type t;
		const char *kind;
		switch (e->type) {
		case ASN_DNS_TYPE:
			t = POLICY_SAN_DNS;
			kind = "DNS";
			break;
		case ASN_URI_TYPE:
			t = POLICY_SAN_URI;
			kind = "URI";
			break;
		case ASN_RFC822_TYPE:
			t = POLICY_SAN_EMAIL;
			kind = "email";
			break;
		case ASN_IP_TYPE:
			t = POLICY_SAN_IP;
			kind = "IP";
			break;
		default:
			continue;
		}
		char text[INET6_ADDRSTRLEN];
		const char *shown = e->name;
		size_t shown_len = (size_t)e->len;
		if (t == POLICY_SAN_IP && (e->len == 4 || e->len == 16)) {
			inet_ntop(e->len == 4 ? AF_INET : AF_INET6, e->name, text, sizeof(text));
			shown = text;
			shown_len = strlen(text);
		}
		describe(have, sizeof(have), kind, shown, shown_len);
		if (o->n_allow == 0 || policy_allow_match(o, t, e->name, (size_t)e->len) >= 0)
			describe(matched, sizeof(matched), kind, shown, shown_len);
	}
	if (o->n_allow && !matched[0]) {
		refuse(s, "client certificate identity not allowed: it has %s; allow= does not list it",
		       have[0] ? have
			       : "no DNS, URI, email or IP subject alternative name (the CN is never used)");
		return;
	}
	if (o->n_allow)
		snprintf(s->identity, sizeof(s->identity), "%s", matched);
	else if (dc->subjectCN && dc->subjectCNLen > 0)
		snprintf(s->identity, sizeof(s->identity), "CN=%.*s%s%s", dc->subjectCNLen, dc->subjectCN,
			 have[0] ? " " : "", have);
	else
		snprintf(s->identity, sizeof(s->identity), "%s", have[0] ? have : "(no name)");
}

int serve_verify_callback(int preverify_ok, WOLFSSL_X509_STORE_CTX *store)
{
	struct serve_state *s = store->userCtx;
	if (!s)
		return 0; /* fail closed: a session made without our state */
	if (!preverify_ok) {
		refuse(s, "client certificate refused: %s", verify_error_text(store->error));
		return 0;
	}
	if (store->error_depth != 0)
		return 1;
	if (!store->certs || store->totalCerts < 1)
		return 0;
	DecodedCert dc;
	wc_InitDecodedCert(&dc, store->certs[0].buffer, store->certs[0].length, NULL);
	if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) != 0) {
		wc_FreeDecodedCert(&dc);
		refuse(s, "the client certificate does not parse");
		return 0;
	}
	if (dc.extExtKeyUsageSet && !(dc.extExtKeyUsage & (EXTKEYUSE_CLIENT_AUTH | EXTKEYUSE_ANY)))
		refuse(s, "the client certificate's extended key usage does not allow clientAuth");
	else if (s->rule)
		check_allow(s, &s->rule->tls.serve, &dc);
	else
		refuse(s, "no serve rule for this session");
	wc_FreeDecodedCert(&dc);
	return s->refused ? 0 : 1;
}

/* ---- failures and the handshake line ---- */

void serve_failure_reason(struct conn *c, int werr, int sys_errno, char *buf, size_t len)
{
	struct serve_state *s = c->serve;
	if (sys_errno == ETIMEDOUT) {
		snprintf(buf, len, "TLS handshake timed out after %u ms (a client that never finished it)",
			 c->rule->tls.handshake_timeout_ms);
		return;
	}
	if (s && s->refused) {
		snprintf(buf, len, "%s", s->reason);
		return;
	}
	if (c->tcp_eof || werr == SOCKET_PEER_CLOSED_E) {
		snprintf(buf, len,
			 "the client closed the connection during the handshake (it may not trust this "
			 "certificate, or share no TLS version or suite)");
		return;
	}
	if (werr == SOCKET_ERROR_E && c->io_errno) {
		snprintf(buf, len, "socket error during the handshake: %s", strerror(c->io_errno));
		return;
	}
	if (werr == FATAL_ERROR && c->ssl) {
		WOLFSSL_ALERT_HISTORY h;
		if (wolfSSL_get_alert_history(c->ssl, &h) == WOLFSSL_SUCCESS && h.last_rx.code > 0) {
			const char *d = wolfSSL_alert_desc_string_long(h.last_rx.code);
			char hint[200] = "", groups[96];
			/* handshake_failure / illegal_parameter: what a client says when no group is left */
			if (c->rule->tls.n_groups && (h.last_rx.code == 40 || h.last_rx.code == 47)) {
				tlsctx_groups_text(&c->rule->tls, groups, sizeof(groups));
				snprintf(
				    hint, sizeof(hint),
				    "; it may share no key-exchange group with this rule's groups=%s (add "
				    "one the client offers)",
				    groups);
			}
			snprintf(buf, len, "the client sent alert %d (%s)%s", h.last_rx.code,
				 d ? d : "unknown", hint);
			return;
		}
	}
	if (werr == NO_PEER_CERT) {
		snprintf(buf, len,
			 "the client sent no certificate (client-auth=require or allow= needs one)");
		return;
	}
	if (werr == TLSCTX_GROUP_REFUSED) {
		char groups[96];
		tlsctx_groups_text(&c->rule->tls, groups, sizeof(groups));
		snprintf(buf, len,
			 "the client offers none of this rule's groups=%s (the handshake fell back to %s); "
			 "add a group the client offers",
			 groups, tlsctx_group_used(c->ssl));
		return;
	}
	if (werr == BAD_KEY_SHARE_DATA && c->rule->tls.n_groups) {
		char groups[96];
		tlsctx_groups_text(&c->rule->tls, groups, sizeof(groups));
		snprintf(buf, len,
			 "the client offers no key-exchange group of this rule's groups=%s (add one the "
			 "client offers)",
			 groups);
		return;
	}
	snprintf(buf, len, "handshake failed: %s", verify_error_text(werr));
}

const char *serve_failure_event(struct conn *c, int werr)
{
	bool cert = werr == NO_PEER_CERT ||
		    (c->serve && c->serve->refused && strstr(c->serve->reason, "client certificate"));
	return cert ? "access-denied" : "handshake-failed";
}

void serve_log_handshake(struct conn *c, int fd, long long ms)
{
	struct serve_state *s = c->serve;
	char *alpn = NULL;
	unsigned short alen = 0;
	bool has_alpn =
	    c->rule->tls.alpn && wolfSSL_ALPN_GetProtocol(c->ssl, &alpn, &alen) == WOLFSSL_SUCCESS && alpn;
	bool resumed = wolfSSL_session_reused(c->ssl);
	if (log_json()) {
		char a[300] = "", sni[300], id[700], fields[1500], tmp[256];
		if (has_alpn) {
			snprintf(tmp, sizeof(tmp), "%.*s", (int)alen, alpn);
			log_json_escape(a, sizeof(a), tmp);
		}
		log_json_escape(sni, sizeof(sni), s->sni);
		log_json_escape(id, sizeof(id), s->identity);
		snprintf(fields, sizeof(fields),
			 "\"role\":\"server\",\"peer\":\"%s\",\"version\":\"%s\",\"cipher\":\"%s\",\"alpn\":"
			 "\"%s\","
			 "\"sni\":\"%s\",\"resumed\":%s,\"client\":\"%s\",\"ms\":%lld",
			 s->peer, wolfSSL_get_version(c->ssl), wolfSSL_get_cipher_name(c->ssl), a, sni,
			 resumed ? "true" : "false", id, ms);
		log_event(LOG_INFO, "handshake", fd, c->dest, c->rule->source, c->rule->line, fields);
		return;
	}
	if (log_enabled(LOG_INFO))
		log_msg(LOG_INFO, "%s: accepted TLS: %s %s%s%.*s, sni %s%s, client %s, %lld ms", c->dest,
			wolfSSL_get_version(c->ssl), wolfSSL_get_cipher_name(c->ssl),
			has_alpn ? ", alpn " : "", has_alpn ? (int)alen : 0, has_alpn ? alpn : "",
			s->sni[0] ? s->sni : "none", resumed ? ", resumed" : "",
			s->identity[0] ? s->identity : "(no certificate)", ms);
}
