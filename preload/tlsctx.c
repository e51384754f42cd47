/* tlsctx.c: see tlsctx.h. */
#include "preload/tlsctx.h"
#include "preload/chain.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_status = -1; /* written once under global_once */

static void global_init(void)
{
	global_status = wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

int tlsctx_global_init(void)
{
	pthread_once(&global_once, global_init);
	return global_status;
}

static int wolf_version(int v)
{
	return v == 13 ? WOLFSSL_TLSV1_3 : WOLFSSL_TLSV1_2;
}

/* Reads a key password from a file (first line, at most 255 bytes), for wolfSSL's password callback. */
int tlsctx_password_cb(char *buf, int size, int rwflag, void *userdata)
{
	const char *path = userdata;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = pread(fd, buf, (size_t)size - 1, 0);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return (int)strlen(buf);
}

/* wolfSSL's OCSP HTTP hook: the shim never fetches anything from inside the program. */
static int ocsp_no_fetch(void *ctx, const char *url, int url_len, unsigned char *req, int req_len,
			 unsigned char **resp)
{
	return -1;
}

int tlsctx_file_format(const char *path)
{
	size_t n = strlen(path);
	return (n > 4 && (strcmp(path + n - 4, ".der") == 0 || strcmp(path + n - 4, ".cer") == 0))
		   ? WOLFSSL_FILETYPE_ASN1
		   : WOLFSSL_FILETYPE_PEM;
}

#define CTX_FAIL(...)                                                                                        \
	do {                                                                                                 \
		snprintf(err, errlen, __VA_ARGS__);                                                          \
		wolfSSL_CTX_free(ctx);                                                                       \
		return NULL;                                                                                 \
	} while (0)

static int load_trust(WOLFSSL_CTX *ctx, const struct policy_tls_opts *o, char *err, size_t errlen)
{
	if (!o->ca_file && !o->ca_dir) {
		/* The system bundle holds a few certificates wolfSSL cannot parse: skip those, keep the rest.
		 */
		if (wolfSSL_CTX_load_verify_locations_ex(ctx, TLSCTX_SYSTEM_CA_FILE, NULL,
							 WOLFSSL_LOAD_FLAG_IGNORE_ERR) != WOLFSSL_SUCCESS) {
			snprintf(
			    err, errlen,
			    "cannot load the system trust store %s; install ca-certificates or set ca-file=",
			    TLSCTX_SYSTEM_CA_FILE);
			return -1;
		}
		return 0;
	}
	if (o->ca_file && access(o->ca_file, R_OK) != 0) {
		snprintf(err, errlen, "ca-file=%s: %s", o->ca_file, strerror(errno));
		return -1;
	}
	if (o->ca_dir && access(o->ca_dir, R_OK | X_OK) != 0) {
		snprintf(err, errlen, "ca-dir=%s: %s", o->ca_dir, strerror(errno));
		return -1;
	}
	if (wolfSSL_CTX_load_verify_locations_ex(ctx, o->ca_file, o->ca_dir,
						 WOLFSSL_LOAD_VERIFY_DEFAULT_FLAGS) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "%s%s%s%s: no usable CA certificate in it",
			 o->ca_file ? "ca-file=" : "", o->ca_file ? o->ca_file : "",
			 o->ca_dir ? " ca-dir=" : "", o->ca_dir ? o->ca_dir : "");
		return -1;
	}
	return 0;
}

void tlsctx_groups_text(const struct policy_tls_opts *o, char *buf, size_t len)
{
	size_t at = 0;
	if (len)
		buf[0] = '\0';
	for (unsigned i = 0; i < o->n_groups && at < len; i++) {
		const char *name = policy_group_name(o->groups[i]);
		int k = snprintf(buf + at, len - at, "%s%s", i ? ":" : "", name ? name : "?");
		if (k < 0)
			break;
		at += (size_t)k;
	}
}

/* The NamedGroup code point of the session's key exchange, 0 when there was none or it is not one the
 * policy names. wolfSSL names curves as wc_ecc does ("SECP256R1") and X25519 as "X25519". */
static uint16_t group_used(WOLFSSL *ssl)
{
	static const struct {
		const char *name;
		uint16_t id;
	} names[] = {{"X25519", 29}, {"SECP256R1", 23}, {"SECP384R1", 24}, {"SECP521R1", 25}};
	const char *n = wolfSSL_get_curve_name(ssl);
	for (size_t i = 0; n && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(n, names[i].name) == 0)
			return names[i].id;
	return 0;
}

const char *tlsctx_group_used(WOLFSSL *ssl)
{
	uint16_t g = group_used(ssl);
	const char *n = g ? policy_group_name(g) : wolfSSL_get_curve_name(ssl);
	return n ? n : "none";
}

bool tlsctx_group_allowed(WOLFSSL *ssl, const struct policy_tls_opts *o)
{
	if (!o->n_groups)
		return true;
	uint16_t g = group_used(ssl);
	if (!g) /* no key exchange in this handshake: a resumption made under the same rule */
		return wolfSSL_session_reused(ssl) && !wolfSSL_get_curve_name(ssl);
	for (unsigned i = 0; i < o->n_groups; i++)
		if (o->groups[i] == g)
			return true;
	return false;
}

int tlsctx_set_groups(WOLFSSL_CTX *ctx, const struct policy_tls_opts *o, char *err, size_t errlen)
{
	if (!o->n_groups)
		return 0;
	char list[96];
	tlsctx_groups_text(o, list, sizeof(list));
#ifdef OPENSSL_EXTRA
	/* Both halves: the ordered list for supported_groups and the TLS 1.3 key shares
	 * (wolfSSL_CTX_set_groups), and the mask that limits the TLS 1.2 ECDHE curve, which only this call
	 * sets. */
	if (wolfSSL_CTX_set1_curves_list(ctx, list) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "groups=%s: not all of these groups are in this wolfSSL build", list);
		return -1;
	}
	return 0;
#else
	/* Without the compatibility layer (Debian's build may lack it): the ordered list for
	 * supported_groups and the TLS 1.3 key shares only. A TLS 1.2 server's curve is then not limited
	 * in the handshake; tlsctx_group_allowed refuses a connection that used another one. */
	int ids[POLICY_MAX_GROUPS];
	for (unsigned i = 0; i < o->n_groups; i++)
		ids[i] = o->groups[i];
	if (wolfSSL_CTX_set_groups(ctx, ids, (int)o->n_groups) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "groups=%s: not all of these groups are in this wolfSSL build", list);
		return -1;
	}
	return 0;
#endif
}

WOLFSSL_CTX *tlsctx_new(const struct policy_tls_opts *o, char *err, size_t errlen)
{
	if (tlsctx_global_init() != 0) {
		snprintf(err, errlen, "wolfSSL failed to initialise");
		return NULL;
	}
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
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
		CTX_FAIL("min-version=1.%d is not supported by this wolfSSL build", min % 10);
	if (wolfSSL_CTX_set_max_proto_version(ctx, max == 13 ? TLS1_3_VERSION : TLS1_2_VERSION) !=
	    WOLFSSL_SUCCESS)
		CTX_FAIL("max-version=1.%d is not supported by this wolfSSL build", max % 10);
	const char *ciphers = o->ciphers ? o->ciphers : TLSCTX_DEFAULT_CIPHERS;
	if (wolfSSL_CTX_set_cipher_list(ctx, ciphers) != WOLFSSL_SUCCESS)
		CTX_FAIL("ciphers=%s: no suite in it is known to wolfSSL", ciphers);
	if (wolfSSL_CTX_set1_sigalgs_list(ctx, TLSCTX_SIGALGS) != WOLFSSL_SUCCESS)
		CTX_FAIL("cannot set the signature algorithms");
	if (wolfSSL_CTX_SetMinRsaKey_Sz(ctx, TLSCTX_MIN_RSA_BITS) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_SetMinEccKey_Sz(ctx, TLSCTX_MIN_ECC_BITS) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_SetMinDhKey_Sz(ctx, 2048) != WOLFSSL_SUCCESS)
		CTX_FAIL("cannot set minimum key sizes");
	/* Resumption is the shim's own cache (session.c, keyed by everything verified); wolfSSL's
	 * process-wide cache would mix up sessions that share a session ID after a resumption. */
	wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_NO_INTERNAL);
	/* A would-block write reports what was committed instead of demanding the same buffer again. */
	wolfSSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	if (o->verify == POLICY_VERIFY_OFF) {
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
	} else {
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, verify_callback);
		/* pin-only loads anchors only when ca-file=/ca-dir= are given (the parser allows revocation
		 * options with pin-only only then: the CA is what signs CRLs and OCSP responses). */
		if (verify_uses_anchors(o) && load_trust(ctx, o, err, errlen) != 0) {
			wolfSSL_CTX_free(ctx);
			return NULL;
		}
		/* Pins are compared on the path the shim builds itself up to these anchors (chain.h). */
		if (verify_uses_anchors(o) && o->n_pins > 0 && chain_anchors_prepare(o, err, errlen) != 0) {
			wolfSSL_CTX_free(ctx);
			return NULL;
		}
	}
	if (o->ocsp_stapling != POLICY_OCSP_OFF && verify_uses_anchors(o)) {
		/* Staples are verified when sent; a stapled "revoked" always fails. The shim never fetches:
		 * OCSP lookups stay disabled and the I/O callback refuses, so nothing opens a socket. */
		if (wolfSSL_CTX_EnableOCSPStapling(ctx) != WOLFSSL_SUCCESS ||
		    wolfSSL_CTX_SetOCSP_Cb(ctx, ocsp_no_fetch, NULL, NULL) != WOLFSSL_SUCCESS)
			CTX_FAIL(
			    "OCSP stapling is not available in this wolfSSL build; set ocsp-stapling=off");
		if (o->ocsp_stapling == POLICY_OCSP_REQUIRE &&
		    wolfSSL_CTX_EnableOCSPMustStaple(ctx) != WOLFSSL_SUCCESS)
			CTX_FAIL("ocsp-stapling=require is not available in this wolfSSL build");
	}
	if (o->crl_file || o->crl_dir) {
		if (wolfSSL_CTX_EnableCRL(ctx, WOLFSSL_CRL_CHECKALL) != WOLFSSL_SUCCESS)
			CTX_FAIL("CRL checking is not available in this wolfSSL build");
		if (o->crl_file && wolfSSL_CTX_LoadCRLFile(
				       ctx, o->crl_file, tlsctx_file_format(o->crl_file)) != WOLFSSL_SUCCESS)
			CTX_FAIL("crl-file=%s: cannot load a CRL from it", o->crl_file);
		if (o->crl_dir &&
		    wolfSSL_CTX_LoadCRL(ctx, o->crl_dir, WOLFSSL_FILETYPE_PEM, 0) != WOLFSSL_SUCCESS)
			CTX_FAIL("crl-dir=%s: cannot load CRLs from it", o->crl_dir);
	}
	if (o->cert) {
		/* A process running with other ids than its real ones must not be made to read key files by
		 * whoever set its environment. */
		if (getuid() != geteuid() || getgid() != getegid())
			CTX_FAIL("refusing to read cert=/key= while the real and effective user or group ids "
				 "differ");
		if (o->key_password_file) {
			if (access(o->key_password_file, R_OK) != 0)
				CTX_FAIL("key-password-file=%s: %s", o->key_password_file, strerror(errno));
			wolfSSL_CTX_set_default_passwd_cb(ctx, tlsctx_password_cb);
			wolfSSL_CTX_set_default_passwd_cb_userdata(ctx, o->key_password_file);
		}
		if (wolfSSL_CTX_use_certificate_chain_file_format(
			ctx, o->cert, tlsctx_file_format(o->cert)) != WOLFSSL_SUCCESS)
			CTX_FAIL("cert=%s: cannot load a certificate from it", o->cert);
		if (wolfSSL_CTX_use_PrivateKey_file(ctx, o->key, tlsctx_file_format(o->key)) !=
		    WOLFSSL_SUCCESS)
			CTX_FAIL("key=%s: cannot load the private key (wrong file, format or password?)",
				 o->key);
		if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS)
			CTX_FAIL("key=%s does not belong to cert=%s", o->key, o->cert);
	}
	return ctx;
}

WOLFSSL *tlsctx_new_session(WOLFSSL_CTX *ctx, const struct policy_tls_opts *o, const char *sni,
			    struct verify_state *v, char *err, size_t errlen)
{
	WOLFSSL *ssl = wolfSSL_new(ctx);
	if (!ssl) {
		snprintf(err, errlen, "out of memory creating a TLS session");
		return NULL;
	}
	wolfSSL_SetCertCbCtx(ssl, v);
	if (sni &&
	    wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, sni, (unsigned short)strlen(sni)) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "cannot set SNI %s", sni);
		wolfSSL_free(ssl);
		return NULL;
	}
	if (o->ocsp_stapling != POLICY_OCSP_OFF && verify_uses_anchors(o) &&
	    wolfSSL_UseOCSPStapling(ssl, WOLFSSL_CSR_OCSP, 0) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "cannot request an OCSP staple");
		wolfSSL_free(ssl);
		return NULL;
	}
	if (o->alpn) {
		char list[1024];
		snprintf(list, sizeof(list), "%s", o->alpn);
		if (wolfSSL_UseALPN(ssl, list, (unsigned)strlen(list), WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) !=
		    WOLFSSL_SUCCESS) {
			snprintf(err, errlen, "cannot offer alpn=%s", o->alpn);
			wolfSSL_free(ssl);
			return NULL;
		}
	}
	return ssl;
}

const char *tlsctx_version_name(WOLFSSL *ssl)
{
	return wolfSSL_get_version(ssl);
}
