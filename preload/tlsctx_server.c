/* tlsctx_server.c: the server side of tlsctx.h: a serve rule's options turned into a wolfSSL context.
 * Shared by the library (serve_keys.c builds one per serve rule, at listen() and on rotation) and the CLI
 * (`tlsshim check` loads the same context to find a key that does not match its certificate). Every
 * security parameter is set explicitly, as on the client side. */
#include "preload/tlsctx.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define SRV_FAIL(...)                                                                                        \
	do {                                                                                                 \
		snprintf(err, errlen, __VA_ARGS__);                                                          \
		wolfSSL_CTX_free(ctx);                                                                       \
		return NULL;                                                                                 \
	} while (0)

static int wolf_version(int v)
{
	return v == 13 ? WOLFSSL_TLSV1_3 : WOLFSSL_TLSV1_2;
}

/* client-ca= is a file or a directory (c_rehash style, or any *.pem inside for wolfSSL's loader). */
static int load_client_ca(WOLFSSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "client-ca=%s: %s", path, strerror(errno));
		return -1;
	}
	bool dir = S_ISDIR(st.st_mode);
	if (access(path, dir ? R_OK | X_OK : R_OK) != 0) {
		snprintf(err, errlen, "client-ca=%s: %s", path, strerror(errno));
		return -1;
	}
	if (wolfSSL_CTX_load_verify_locations_ex(ctx, dir ? NULL : path, dir ? path : NULL,
						 WOLFSSL_LOAD_VERIFY_DEFAULT_FLAGS) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "client-ca=%s: no usable CA certificate in it", path);
		return -1;
	}
	return 0;
}

/* After a failed test handshake: does the certificate and key alone, with wolfSSL's defaults, serve a
 * client? No: the key does not belong to it. Yes: the rule's own settings are what no client can meet. */
static bool pair_serves(const struct policy_tls_opts *o)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	struct policy_tls_opts defaults = {0};
	char why[200];
	if (ctx && o->key_password_file) {
		wolfSSL_CTX_set_default_passwd_cb(ctx, tlsctx_password_cb);
		wolfSSL_CTX_set_default_passwd_cb_userdata(ctx, o->key_password_file);
	}
	bool ok =
	    ctx &&
	    wolfSSL_CTX_use_certificate_chain_file_format(ctx, o->cert, tlsctx_file_format(o->cert)) ==
		WOLFSSL_SUCCESS &&
	    wolfSSL_CTX_use_PrivateKey_file(ctx, o->key, tlsctx_file_format(o->key)) == WOLFSSL_SUCCESS &&
	    tlsctx_server_selftest(ctx, &defaults, why, sizeof(why));
	wolfSSL_CTX_free(ctx);
	return ok;
}

WOLFSSL_CTX *tlsctx_server_new(const struct policy_tls_opts *o, VerifyCallback verify_cb, char *err,
			       size_t errlen)
{
	const struct policy_serve_opts *s = &o->serve;
	if (tlsctx_global_init() != 0) {
		snprintf(err, errlen, "wolfSSL failed to initialise");
		return NULL;
	}
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	if (!ctx) {
		snprintf(err, errlen, "out of memory creating a TLS context");
		return NULL;
	}
	if (tlsctx_set_groups(ctx, o, err, errlen) != 0) {
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	int min = o->min_version ? o->min_version : 12;
	int max = o->max_version ? o->max_version : 13;
	if (wolfSSL_CTX_SetMinVersion(ctx, wolf_version(min)) != WOLFSSL_SUCCESS)
		SRV_FAIL("min-version=1.%d is not supported by this wolfSSL build", min % 10);
	if (wolfSSL_CTX_set_max_proto_version(ctx, max == 13 ? TLS1_3_VERSION : TLS1_2_VERSION) !=
	    WOLFSSL_SUCCESS)
		SRV_FAIL("max-version=1.%d is not supported by this wolfSSL build", max % 10);
	const char *ciphers = o->ciphers ? o->ciphers : TLSCTX_DEFAULT_CIPHERS;
	if (wolfSSL_CTX_set_cipher_list(ctx, ciphers) != WOLFSSL_SUCCESS)
		SRV_FAIL("ciphers=%s: no suite in it is known to wolfSSL", ciphers);
	if (wolfSSL_CTX_set1_sigalgs_list(ctx, TLSCTX_SIGALGS) != WOLFSSL_SUCCESS)
		SRV_FAIL("cannot set the signature algorithms");
	if (wolfSSL_CTX_SetMinRsaKey_Sz(ctx, TLSCTX_MIN_RSA_BITS) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_SetMinEccKey_Sz(ctx, TLSCTX_MIN_ECC_BITS) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_SetMinDhKey_Sz(ctx, 2048) != WOLFSSL_SUCCESS)
		SRV_FAIL("cannot set minimum key sizes");
	wolfSSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	/* Resumption is by ticket only: wolfSSL's session-ID cache is process-wide and forked workers
	 * would not share it anyway. */
	wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
	if (!s->session_tickets) {
		wolfSSL_CTX_NoTicketTLSv12(ctx);
		wolfSSL_CTX_no_ticket_TLSv13(ctx);
	}

	/* The server's own certificate. A process running with other ids than its real ones must not be
	 * made to read key files by whoever set its environment. */
	if (getuid() != geteuid() || getgid() != getegid())
		SRV_FAIL("refusing to read cert=/key= while the real and effective user or group ids differ");
	if (o->key_password_file) {
		if (access(o->key_password_file, R_OK) != 0)
			SRV_FAIL("key-password-file=%s: %s", o->key_password_file, strerror(errno));
		wolfSSL_CTX_set_default_passwd_cb(ctx, tlsctx_password_cb);
		wolfSSL_CTX_set_default_passwd_cb_userdata(ctx, o->key_password_file);
	}
	if (access(o->cert, R_OK) != 0)
		SRV_FAIL("cert=%s: %s", o->cert, strerror(errno));
	if (access(o->key, R_OK) != 0)
		SRV_FAIL("key=%s: %s", o->key, strerror(errno));
	if (wolfSSL_CTX_use_certificate_chain_file_format(ctx, o->cert, tlsctx_file_format(o->cert)) !=
	    WOLFSSL_SUCCESS)
		SRV_FAIL("cert=%s: cannot load a certificate from it", o->cert);
	if (wolfSSL_CTX_use_PrivateKey_file(ctx, o->key, tlsctx_file_format(o->key)) != WOLFSSL_SUCCESS)
		SRV_FAIL("key=%s: cannot load the private key (wrong file, format or password?)", o->key);
	if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS)
		SRV_FAIL("key=%s does not belong to cert=%s", o->key, o->cert);

	/* Client certificates. */
	if (s->client_ca && s->client_auth != POLICY_CLIENT_AUTH_NONE) {
		if (load_client_ca(ctx, s->client_ca, err, errlen) != 0) {
			wolfSSL_CTX_free(ctx);
			return NULL;
		}
		int mode = WOLFSSL_VERIFY_PEER;
		/* allow= needs an identity: optional turns into required (a client without a certificate
		 * is refused) */
		if (s->client_auth == POLICY_CLIENT_AUTH_REQUIRE || s->n_allow)
			mode |= WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		wolfSSL_CTX_set_verify(ctx, mode, verify_cb);
		if (o->crl_file) {
			if (wolfSSL_CTX_EnableCRL(ctx, WOLFSSL_CRL_CHECKALL) != WOLFSSL_SUCCESS)
				SRV_FAIL("CRL checking is not available in this wolfSSL build");
			if (wolfSSL_CTX_LoadCRLFile(ctx, o->crl_file, tlsctx_file_format(o->crl_file)) !=
			    WOLFSSL_SUCCESS)
				SRV_FAIL("crl-file=%s: cannot load a CRL from it", o->crl_file);
		}
	} else {
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
	}
	/* Last: the context as clients will meet it. wolfSSL_CTX_check_private_key above passes any ECC
	 * key in builds without HAVE_ECC_KEY_EXPORT (Debian's package); a handshake cannot be fooled. */
	char why[200];
	if (!tlsctx_server_selftest(ctx, o, why, sizeof(why))) {
		if (!pair_serves(o))
			SRV_FAIL("key=%s does not belong to cert=%s (%s)", o->key, o->cert, why);
		SRV_FAIL("cert=%s: %s with this rule's versions, suites and groups, though it works with the "
			 "defaults: change min-version=/max-version=/ciphers=/groups=",
			 o->cert, why);
	}
	return ctx;
}
