/* verify.c: peer-name, key-usage and signature checks from wolfSSL's verify callback (see verify.h). */
#include "preload/verify.h"
#include "preload/der.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/sha256.h>

bool verify_uses_anchors(const struct policy_tls_opts *o)
{
	return o->verify == POLICY_VERIFY_ON ||
	       (o->verify == POLICY_VERIFY_PIN_ONLY && (o->ca_file != NULL || o->ca_dir != NULL));
}

/* With verify=pin-only, wolfSSL's chain errors are ignored (the pins decide), except revocation: a
 * revoked certificate is refused whenever revocation is checked. And when the rule asks for revocation
 * (crl-file=, crl-dir=, ocsp-stapling=require), the chain must lead to the rule's CA, since only then
 * could the revocation data be checked at all. */
static bool pin_only_error_is_fatal(const struct policy_tls_opts *o, int err)
{
	if (!verify_uses_anchors(o))
		return false;
	if (o->crl_file || o->crl_dir || o->ocsp_stapling == POLICY_OCSP_REQUIRE)
		return true;
	switch (err) {
	case CRL_CERT_REVOKED:
	case OCSP_CERT_REVOKED:
	case X509_V_ERR_CERT_REVOKED:
		return true;
	default:
		return false;
	}
}

void verify_begin(struct verify_state *v, const struct policy_tls_opts *opts, const char *name, int family,
		  const uint8_t *addr)
{
	memset(v, 0, sizeof(*v));
	v->opts = opts;
	v->anchors = chain_anchors_find(opts);
	if (name && *name) {
		snprintf(v->want_name, sizeof(v->want_name), "%s", name);
		size_t n = strlen(v->want_name);
		if (n > 0 && v->want_name[n - 1] == '.') /* "example.com." is "example.com" */
			v->want_name[n - 1] = '\0';
	} else {
		v->want_family = family;
		memcpy(v->want_addr, addr, family == AF_INET ? 4 : 16);
	}
}

static void verify_fail(struct verify_state *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void verify_fail(struct verify_state *v, const char *fmt, ...)
{
	if (v->failed) /* the first reason is the one that matters */
		return;
	v->failed = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

/* RFC 6125 6.4: a wildcard is the whole left-most label, matches exactly one label, and needs at least
 * two labels after it ("*.com" never matches). No partial wildcards ("f*.example"), no IDN tricks
 * (the wildcard never matches an A-label "xn--..."). Comparison is ASCII case-insensitive. */
bool verify_dns_name_matches(const char *pattern, size_t plen, const char *host)
{
	size_t hlen = strlen(host);
	if (plen > 0 && pattern[plen - 1] == '.')
		plen--;
	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	if (plen == 0 || hlen == 0 || memchr(pattern, '\0', plen))
		return false;
	if (plen >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		const char *rest = pattern + 1; /* ".example.com" */
		size_t rlen = plen - 1;
		if (memchr(rest + 1, '.', rlen - 1) == NULL) /* needs two labels after the wildcard */
			return false;
		if (memchr(rest, '*', rlen))
			return false;
		const char *dot = memchr(host, '.', hlen);
		if (!dot || dot == host) /* the wildcard must stand for one non-empty label */
			return false;
		if (strncasecmp(host, "xn--", 4) == 0)
			return false;
		size_t suffix_len = hlen - (size_t)(dot - host);
		return suffix_len == rlen && strncasecmp(dot, rest, rlen) == 0;
	}
	if (memchr(pattern, '*', plen)) /* wildcards anywhere else are not honoured */
		return false;
	return plen == hlen && strncasecmp(pattern, host, hlen) == 0;
}

/* Appends a SAN to a short human list ("DNS:a.example, IP:10.0.0.1"). */
static void describe_san(char *buf, size_t size, const DNS_entry *e)
{
	size_t used = strlen(buf);
	if (used + 4 >= size)
		return;
	char item[80];
	if (e->type == ASN_DNS_TYPE) {
		snprintf(item, sizeof(item), "%.*s", e->len > 60 ? 60 : e->len, e->name);
	} else if (e->type == ASN_IP_TYPE && (e->len == 4 || e->len == 16)) {
		char ip[INET6_ADDRSTRLEN];
		inet_ntop(e->len == 4 ? AF_INET : AF_INET6, e->name, ip, sizeof(ip));
		snprintf(item, sizeof(item), "IP %s", ip);
	} else {
		return;
	}
	snprintf(buf + used, size - used, "%s%s", used ? ", " : "", item);
}

static void check_name(struct verify_state *v, const DecodedCert *dc)
{
	char have[160] = "";
	bool any_of_kind = false;
	for (const DNS_entry *e = dc->altNames; e; e = e->next) {
		describe_san(have, sizeof(have), e);
		if (v->want_name[0] && e->type == ASN_DNS_TYPE) {
			any_of_kind = true;
			if (verify_dns_name_matches(e->name, (size_t)e->len, v->want_name))
				return;
		} else if (!v->want_name[0] && e->type == ASN_IP_TYPE) {
			any_of_kind = true;
			size_t alen = v->want_family == AF_INET ? 4 : 16;
			if ((size_t)e->len == alen && memcmp(e->name, v->want_addr, alen) == 0)
				return;
		}
	}
	if (v->want_name[0]) {
		verify_fail(
		    v, "certificate name mismatch: want %s, certificate has %s", v->want_name,
		    any_of_kind
			? have
			: (have[0] ? have : "no DNS subject alternative name (the CN is never used)"));
	} else {
		char ip[INET6_ADDRSTRLEN];
		inet_ntop(v->want_family, v->want_addr, ip, sizeof(ip));
		verify_fail(v, "certificate address mismatch: want IP %s, certificate has %s", ip,
			    any_of_kind ? have : (have[0] ? have : "no IP subject alternative name"));
	}
}

static bool weak_signature(word32 oid)
{
	switch (oid) {
	case CTC_MD5wRSA:
	case CTC_SHAwRSA:
	case CTC_SHAwECDSA:
	case CTC_SHAwDSA:
	case CTC_MD2wRSA:
		return true;
	default:
		return false;
	}
}

/* Pins count only on the path from the leaf: with verify=on the path must reach a trust anchor of the
 * rule (wolfSSL verified a chain too, but cannot say which certificates it used); with pin-only, the
 * leaf and whatever the server sent that verifiably signed it (and the rule's CA, when it has one).
 * An appended certificate that vouches for nothing never matches. */
static void check_path_pins(struct verify_state *v, const uint8_t *const *certs, const size_t *lens,
			    unsigned n)
{
	if (v->opts->n_pins == 0)
		return;
	bool pin_only = v->opts->verify == POLICY_VERIFY_PIN_ONLY;
	if (verify_uses_anchors(v->opts) && !v->anchors && v->opts->n_pins > 0) {
		verify_fail(v, "the trust anchors for the pin check are not loaded");
		return;
	}
	if (chain_build(certs, lens, n, verify_uses_anchors(v->opts) ? v->anchors : NULL, &v->path) != 0) {
		if (v->opts->n_pins > 0)
			verify_fail(v, "the server's certificate does not parse");
		return;
	}
	v->path_built = true;
	v->pin_matched = chain_path_has_pin(&v->path, v->opts->pins, v->opts->n_pins);
	if (!pin_only && !v->path.anchored)
		verify_fail(v,
			    "pin-sha256: no path of verified signatures from the leaf to a trust anchor (%s)",
			    v->path.stop);
	else if (!v->pin_matched)
		verify_fail(v,
			    "no certificate on the %s path (%u of the %u the server sent%s) matches "
			    "pin-sha256; certificates off the path never count",
			    pin_only && !v->path.anchored ? "signature-checked" : "verified",
			    v->path.n - v->path.anchored, n,
			    v->path.anchored ? ", plus the trust anchor" : "");
}

/* The leaf's own checks: extended key usage and name. */
static void check_leaf(struct verify_state *v, const DecodedCert *dc)
{
	v->leaf_checked = true;
	if (dc->extExtKeyUsageSet && !(dc->extExtKeyUsage & (EXTKEYUSE_SERVER_AUTH | EXTKEYUSE_ANY)))
		verify_fail(v, "certificate's extended key usage does not allow serverAuth");
	check_name(v, dc);
}

int verify_callback(int preverify_ok, WOLFSSL_X509_STORE_CTX *store)
{
	struct verify_state *v = store->userCtx;
	if (!v)
		return preverify_ok;
	int depth = store->error_depth;
	bool pin_only = v->opts->verify == POLICY_VERIFY_PIN_ONLY;
	if (!preverify_ok && (!pin_only || pin_only_error_is_fatal(v->opts, store->error))) {
		int err = store->error;
		verify_fail(v, "%s%s%s", verify_error_text(err), v->hint[0] ? " (" : "",
			    v->hint[0] ? v->hint : "");
		if (v->hint[0])
			strncat(v->reason, ")", sizeof(v->reason) - strlen(v->reason) - 1);
		return 0;
	}
	if (!store->certs || depth < 0 || depth >= store->totalCerts)
		return 0;
	const uint8_t *der = store->certs[depth].buffer;
	size_t len = store->certs[depth].length;

	DecodedCert dc;
	wc_InitDecodedCert(&dc, der, (word32)len, NULL);
	if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) != 0) {
		wc_FreeDecodedCert(&dc);
		verify_fail(v, "certificate %d in the chain does not parse", depth);
		return 0;
	}
	if (!dc.selfSigned && weak_signature(dc.signatureOID))
		verify_fail(v, "certificate %d in the chain is signed with MD5 or SHA-1", depth);
	if (depth == 0) {
		check_leaf(v, &dc);
		const uint8_t *certs[CHAIN_MAX_SENT];
		size_t lens[CHAIN_MAX_SENT];
		unsigned n = 0;
		for (int i = 0; i < store->totalCerts && n < CHAIN_MAX_SENT; i++, n++) {
			certs[n] = store->certs[i].buffer;
			lens[n] = store->certs[i].length;
		}
		check_path_pins(v, certs, lens, n);
	} else if (!dc.isCA && !v->hint[0])
		snprintf(v->hint, sizeof(v->hint),
			 "certificate %d the server sent is not a CA (basicConstraints CA:FALSE)", depth);
	wc_FreeDecodedCert(&dc);
	return v->failed ? 0 : 1;
}

int verify_after_handshake(struct verify_state *v, WOLFSSL *ssl)
{
	if (v->opts->verify == POLICY_VERIFY_OFF || wolfSSL_session_reused(ssl))
		return 0;
	if (!v->leaf_checked) {
		WOLFSSL_X509 *peer = wolfSSL_get_peer_certificate(ssl);
		int len = 0;
		const unsigned char *der = peer ? wolfSSL_X509_get_der(peer, &len) : NULL;
		DecodedCert dc;
		if (!der || len <= 0) {
			verify_fail(v, "the server's certificate is not available to check its name");
		} else {
			wc_InitDecodedCert(&dc, der, (word32)len, NULL);
			if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) != 0)
				verify_fail(v, "the server's certificate does not parse");
			else
				check_leaf(v, &dc);
			wc_FreeDecodedCert(&dc);
			const uint8_t *certs[CHAIN_MAX_SENT] = {der};
			size_t lens[CHAIN_MAX_SENT] = {(size_t)len};
			unsigned n = 1;
#ifdef SESSION_CERTS
			WOLFSSL_X509_CHAIN *chain = wolfSSL_get_peer_chain(ssl);
			int count = chain ? wolfSSL_get_chain_count(chain) : 0;
			for (int i = 1; i < count && n < CHAIN_MAX_SENT; i++, n++) {
				certs[n] = wolfSSL_get_chain_cert(chain, i);
				lens[n] = (size_t)wolfSSL_get_chain_length(chain, i);
			}
#endif
			check_path_pins(v, certs, lens, n);
		}
		if (peer)
			wolfSSL_X509_free(peer);
	}
	return v->failed ? -1 : 0;
}

/* wolfSSL builds with OPENSSL_COMPATIBLE_DEFAULTS (Debian's) report OpenSSL's positive X509_V_ERR
 * codes to the verify callback instead of wolfCrypt's negative ones: map them to the same sentences. */
static int from_x509_code(int err)
{
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
		return ASN_AFTER_DATE_E;
	case X509_V_ERR_CERT_NOT_YET_VALID:
	case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
		return ASN_BEFORE_DATE_E;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_INVALID_CA:
		return ASN_NO_SIGNER_E;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		return ASN_SELF_SIGNED_E;
	case X509_V_ERR_PATH_LENGTH_EXCEEDED:
		return ASN_PATHLEN_SIZE_E;
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return ASN_SIG_CONFIRM_E;
	case X509_V_ERR_CERT_REVOKED:
		return CRL_CERT_REVOKED;
	case X509_V_ERR_INVALID_PURPOSE:
		return EXTKEYUSAGE_E;
	default:
		return err;
	}
}

const char *verify_error_text(int err)
{
	if (err > 0)
		err = from_x509_code(err);
	switch (err) {
	case ASN_AFTER_DATE_E:
		return "certificate has expired";
	case ASN_BEFORE_DATE_E:
		return "certificate is not yet valid";
	case ASN_NO_SIGNER_E:
		return "certificate chain does not lead to a trusted CA (unknown issuer, self-signed, or a "
		       "missing "
		       "intermediate)";
	case ASN_SELF_SIGNED_E:
		return "certificate is self-signed and not trusted";
	case ASN_SIG_CONFIRM_E:
	case ASN_SIG_OID_E:
	case ASN_SIG_KEY_E:
		return "certificate signature does not verify";
	case ASN_PATHLEN_SIZE_E:
	case ASN_PATHLEN_INV_E:
		return "certificate chain violates a CA path length constraint";
	case ASN_NAME_INVALID_E:
		return "certificate violates its issuer's name constraints";
	case ASN_CRIT_EXT_E:
		return "certificate has an unsupported critical extension";
	case EXTKEYUSAGE_E:
	case EXTKEYUSE_AUTH_E:
		return "certificate's extended key usage does not allow serverAuth";
	case KEYUSE_SIGNATURE_E:
		return "certificate's key usage does not allow signatures";
	case CRL_CERT_REVOKED:
		return "certificate is revoked (CRL)";
	case OCSP_CERT_REVOKED:
		return "certificate is revoked (OCSP staple)";
	case OCSP_CERT_UNKNOWN:
		return "no valid OCSP staple for the certificate (ocsp-stapling=require)";
	case RSA_KEY_SIZE_E:
		return "server's RSA key is smaller than 2048 bits";
	case ECC_KEY_SIZE_E:
		return "server's EC key is smaller than 256 bits";
	case VERSION_ERROR:
		return "server does not speak an allowed TLS version";
	case MATCH_SUITE_ERROR:
		return "no cipher suite in common with the server";
	default: {
		static __thread char buf[96];
		wolfSSL_ERR_error_string_n((unsigned long)(err < 0 ? -err : err), buf, sizeof(buf));
		return buf;
	}
	}
}

const char *verify_error_advice(int err)
{
	if (err > 0)
		err = from_x509_code(err);
	switch (err) {
	case ASN_AFTER_DATE_E:
	case ASN_BEFORE_DATE_E:
		return "renew the server certificate or check the clock";
	case ASN_NO_SIGNER_E:
	case ASN_SELF_SIGNED_E:
		return "make the server send its intermediates, or set ca-file= to the CA that issued it";
	case VERSION_ERROR:
		return "upgrade the server, or set min-version=/max-version=";
	case MATCH_SUITE_ERROR:
		return "enable AEAD ECDHE suites on the server, or set ciphers=";
	case RSA_KEY_SIZE_E:
	case ECC_KEY_SIZE_E:
		return "give the server a stronger key";
	case OCSP_CERT_UNKNOWN:
		return "enable OCSP stapling on the server, or set ocsp-stapling=prefer";
	default:
		/* wolfCrypt's certificate and ASN errors lie between -140 and -299; the rest are the
		 * protocol's. */
		if (err <= -140 && err >= -299)
			return "fix the server's certificate or the rule's trust options";
		return "check that the server speaks TLS 1.2 or 1.3 on this port";
	}
}
