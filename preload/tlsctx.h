/* tlsctx.h: turns a rule's TLS options into a configured wolfSSL context and a per-connection session.
 * The one place that sets security parameters, shared by the library and the CLI (`tlsshim probe`
 * therefore tests exactly what the library does). Every parameter is set explicitly: Debian's wolfSSL
 * starts contexts permissive. */
#ifndef TLSSHIM_TLSCTX_H
#define TLSSHIM_TLSCTX_H

#include <stdbool.h>
#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "policy/policy.h"
#include "preload/verify.h"

#define TLSCTX_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#define TLSCTX_DEFAULT_CIPHERS                                                                               \
	"TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"                    \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"           \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLSCTX_SIGALGS                                                                                       \
	"ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:RSA-PSS+SHA256:RSA-PSS+SHA384:RSA-PSS+SHA512:"               \
	"RSA+SHA256:RSA+SHA384:RSA+SHA512"
#define TLSCTX_MIN_RSA_BITS 2048
#define TLSCTX_MIN_ECC_BITS 256

/* wolfSSL_Init, once per process. Returns 0 or -1. */
int tlsctx_global_init(void);

/* A new context for these options, or NULL with a sentence in err (e.g. "ca-file=/x: cannot read"). */
WOLFSSL_CTX *tlsctx_new(const struct policy_tls_opts *o, char *err, size_t errlen);

/* A new session on ctx that will verify as v says and send SNI (NULL: none) and the rule's ALPN.
 * The caller sets the I/O callbacks. NULL with err filled on failure. */
WOLFSSL *tlsctx_new_session(WOLFSSL_CTX *ctx, const struct policy_tls_opts *o, const char *sni,
			    struct verify_state *v, char *err, size_t errlen);

/* groups=: limits ctx's key-exchange groups (supported_groups, the TLS 1.3 key shares a client offers,
 * the group a server accepts, the TLS 1.2 ECDHE curve) to the rule's list, in its order of preference;
 * nothing without groups=. Call it right after wolfSSL_CTX_new (wolfSSL takes groups only while the
 * context still allows TLS 1.3). 0, or -1 with a sentence in err. */
int tlsctx_set_groups(WOLFSSL_CTX *ctx, const struct policy_tls_opts *o, char *err, size_t errlen);
/* After a successful handshake: whether its key exchange used one of the rule's groups (always true
 * without groups=, and for a resumption without a key exchange). wolfSSL 5.5.4's TLS 1.2 server picks
 * P-256 when the client offers none of the allowed curves, so the list is checked here as well, on both
 * sides. A refusal is reported as the pseudo wolfSSL error TLSCTX_GROUP_REFUSED. */
bool tlsctx_group_allowed(WOLFSSL *ssl, const struct policy_tls_opts *o);
#define TLSCTX_GROUP_REFUSED (-90001)
/* The name of the key-exchange group an established session used ("X25519", "P-256", ...), or "none". */
const char *tlsctx_group_used(WOLFSSL *ssl);
/* The rule's groups as "P-256:X25519", or "" without groups=. */
void tlsctx_groups_text(const struct policy_tls_opts *o, char *buf, size_t len);
/* What contexts do without groups= (wolfSSL 5.5.4's defaults, seen with openssl s_server -trace), for
 * `tlsshim explain`. */
#define TLSCTX_DEFAULT_GROUPS_TEXT                                                                           \
	"wolfSSL's: a P-256 key share, P-521, P-384, P-256, X25519, P-224 and ffdhe2048 offered"
#define TLSCTX_SERVER_DEFAULT_GROUPS_TEXT                                                                    \
	"wolfSSL's: the client's key share if it is P-256, X25519, P-384, P-521 or ffdhe2048, else P-256 "   \
	"first"

/* wolfSSL's password callback reading the first line of the file userdata names (key-password-file=). */
int tlsctx_password_cb(char *buf, int size, int rwflag, void *userdata);
/* WOLFSSL_FILETYPE_ASN1 for .der/.cer files, else WOLFSSL_FILETYPE_PEM. */
int tlsctx_file_format(const char *path);

/* The server side (tlsctx_server.c): a context presenting a serve rule's certificate and key, asking
 * for and verifying client certificates as client-ca=/client-auth=/crl-file= say (the allow= check is
 * the verify callback serve_verify_callback, given here so the CLI can build the same context without
 * it: NULL). NULL with a sentence in err. */
WOLFSSL_CTX *tlsctx_server_new(const struct policy_tls_opts *o, VerifyCallback verify_cb, char *err,
			       size_t errlen);

/* A handshake between a throwaway client and srv_ctx in memory (tlsctx_selftest.c): true when it
 * completes, which proves the key belongs to the certificate in any wolfSSL build and that the
 * context's versions, suites and groups can serve a client at all. False with a sentence in why. */
bool tlsctx_server_selftest(WOLFSSL_CTX *srv_ctx, const struct policy_tls_opts *o, char *why, size_t len);

/* "TLSv1.3" / cipher name of an established session, for logs. */
const char *tlsctx_version_name(WOLFSSL *ssl);

#endif
