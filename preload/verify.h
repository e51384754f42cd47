/* verify.h: the checks tlsshim adds on top of wolfSSL's chain verification, run from wolfSSL's verify
 * callback for every certificate (WOLFSSL_ALWAYS_VERIFY_CB + WOLFSSL_VERIFY_CB_ALL_CERTS), so a refused
 * server never receives our Finished, our client certificate, or a byte of application data:
 *   - the peer name: DNS names against DNS SANs only (RFC 6125 wildcards, never the CN); IP destinations
 *     against iPAddress SANs only, compared as binary addresses;
 *   - the leaf's extended key usage must allow serverAuth;
 *   - SHA-1 (and weaker) signatures are refused on every certificate but the trust anchor;
 *   - SPKI SHA-256 pins, when the rule has them, compared only with the certification path the shim
 *     builds and signature-checks itself from the leaf to a trust anchor (chain.h); with verify=pin-only
 *     (no anchor needed) only with the leaf and certificates tied to it by verified signatures.
 * Every refusal leaves one human sentence in `reason`. Shared by the library and the CLI. */
#ifndef TLSSHIM_VERIFY_H
#define TLSSHIM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"
#include "preload/chain.h"

struct verify_state {
	const struct policy_tls_opts *opts;
	char want_name[256]; /* the DNS name to verify, or "" for an IP destination */
	int want_family;     /* AF_INET/AF_INET6 when verifying an address (want_name == "") */
	uint8_t want_addr[16];
	const struct chain_anchors *anchors; /* the rule's anchors for the path (chain.h), or NULL */
	bool path_built;		     /* `path` holds the path of this handshake */
	struct chain_path path;
	bool pin_matched;
	bool leaf_checked; /* the callback ran the leaf checks (name, EKU, pins) */
	bool failed;
	char reason[320]; /* why verification failed, for the one-line message */
	char hint[160]; /* what else was seen in the chain (an intermediate that is no CA), for the message */
};

/* Whether a rule checks the chain against trust anchors: verify=on, or verify=pin-only with ca-file= or
 * ca-dir= (which then also check revocation: CRLs and OCSP staples are signed by the CA). */
bool verify_uses_anchors(const struct policy_tls_opts *opts);

/* Prepares the state for one handshake. name may be NULL (then the address is verified). */
void verify_begin(struct verify_state *v, const struct policy_tls_opts *opts, const char *name, int family,
		  const uint8_t *addr);

/* The wolfSSL verify callback (WOLFSSL_X509_STORE_CTX's userCtx must be the verify_state). */
struct WOLFSSL_X509_STORE_CTX;
int verify_callback(int preverify_ok, struct WOLFSSL_X509_STORE_CTX *store);

/* After a successful full handshake: runs the leaf checks (name, EKU, pins on the path) if wolfSSL did
 * not call the callback for the leaf (a build without WOLFSSL_ALWAYS_VERIFY_CB). Returns 0, or -1 with
 * v->reason set. Skipped for resumed sessions (their cache key holds everything the full handshake verified).
 */
struct WOLFSSL;
int verify_after_handshake(struct verify_state *v, struct WOLFSSL *ssl);

/* Name matching, exposed for unit tests and the CLI. pattern is a DNS SAN, host the wanted name. */
bool verify_dns_name_matches(const char *pattern, size_t pattern_len, const char *host);

/* Text for a wolfSSL error code seen during a handshake ("certificate has expired", ...). */
const char *verify_error_text(int wolfssl_error);

/* What the person should change, for a given wolfSSL error code. */
const char *verify_error_advice(int wolfssl_error);

#endif
