/* chain.h: the certification path the shim builds and verifies itself, so that pins are compared with
 * certificates that vouch for the leaf and never with extras the server appended. wolfSSL 5.5.4 as built
 * here exposes no verified chain (the peer chain is the list as sent, and its alternate-chain search
 * tolerates extra certificates), so pins cannot rely on it.
 *
 * The path starts at the leaf and goes up, one issuer at a time: an issuer is a trust anchor (parsed
 * from ca-file=/ca-dir=, or the system store) or a CA certificate the server sent, whose subject is the
 * child's issuer and whose public key verifies the child's signature (wolfCrypt's
 * wc_CheckCertSigPubKey). It stops at an anchor (the path is then anchored), at a self-signed
 * certificate, or where no issuer verifies. Shared by the library and the CLI (`tlsshim probe`). */
#ifndef TLSSHIM_CHAIN_H
#define TLSSHIM_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

#define CHAIN_MAX_SENT 16 /* certificates of the server's list considered (the rest are ignored) */
#define CHAIN_MAX_PATH 12 /* leaf, intermediates and the anchor; longer paths are cut (not anchored) */

/* A frozen set of trust anchors. */
struct chain_anchors;

/* Parses the anchors of a rule (ca-file=, ca-dir=, else the system store) and publishes them for
 * chain_anchors_find(o); does nothing when they were published already. Reads files: call it where a
 * rule's context is built, never with a lock held. 0, or -1 with a sentence in err. */
int chain_anchors_prepare(const struct policy_tls_opts *o, char *err, size_t errlen);

/* The anchors published for exactly these options (the rule's own struct), or NULL. Lock-free. */
const struct chain_anchors *chain_anchors_find(const struct policy_tls_opts *o);

/* Number of anchors in a set (for messages and tests). */
size_t chain_anchors_count(const struct chain_anchors *a);

struct chain_path {
	unsigned n;				 /* certificates on the path, leaf first (the anchor last) */
	uint8_t spki_sha256[CHAIN_MAX_PATH][32]; /* pin of each */
	int sent_index[CHAIN_MAX_PATH];		 /* index in the list the server sent, -1 for an anchor */
	bool anchored;				 /* the last one is a trust anchor */
	char stop[160];				 /* why the path ends where it does, for messages */
};

/* Builds the path for the certificates the server sent (certs[0] is the leaf). anchors may be NULL
 * (pin-only without a CA: only the certificates sent). Returns 0 (out->n >= 1), or -1 when the leaf
 * does not parse. */
int chain_build(const uint8_t *const *certs, const size_t *lens, unsigned n_certs,
		const struct chain_anchors *anchors, struct chain_path *out);

/* Whether one of pins (n of them, 32 bytes each) is on the path. */
bool chain_path_has_pin(const struct chain_path *p, const uint8_t (*pins)[32], unsigned n);

#endif
