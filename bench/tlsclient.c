/* tlsclient.c: the in-process TLS clients: the same workloads as client.c (common.h), with TLS done by
 * the program itself, the way a TLS-aware program would do it. Built twice: -DBENCH_WOLFSSL links the
 * project's wolfSSL (build/wolfssl: the ideal a shim can reach), -DBENCH_OPENSSL links Debian's OpenSSL.
 * Both verify the server's chain against $BENCH_CA and its name ($BENCH_NAME, default localhost), send
 * SNI, offer TLS 1.2-1.3 with their default suites (the server pins the suite), send close_notify on close.
 * With -r (conn mode) each connection resumes the session (TLS 1.3 ticket) of the one before. */
#include "common.h"

#include <limits.h>

#if defined(BENCH_WOLFSSL)
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
typedef WOLFSSL_CTX tls_ctx;
typedef WOLFSSL tls_ssl;
typedef WOLFSSL_SESSION tls_session;
#elif defined(BENCH_OPENSSL)
#include <openssl/err.h>
#include <openssl/ssl.h>
typedef SSL_CTX tls_ctx;
typedef SSL tls_ssl;
typedef SSL_SESSION tls_session;
#else
#error "build with -DBENCH_WOLFSSL or -DBENCH_OPENSSL"
#endif

struct bench_conn {
	int fd;
	tls_ssl *ssl;
	char desc[96];
};

static tls_ctx *ctx;
static tls_session *saved; /* the last connection's session, for -r */
static int keep_sessions;
static const char *server_name = "localhost";

static void tls_fail(const char *what)
{
	fprintf(stderr, "tlsclient: %s failed\n", what);
#ifdef BENCH_OPENSSL
	ERR_print_errors_fp(stderr);
#endif
	exit(2);
}

static void tls_init(void)
{
	const char *ca = getenv("BENCH_CA");
	if (getenv("BENCH_NAME"))
		server_name = getenv("BENCH_NAME");
	if (!ca) {
		fprintf(stderr, "tlsclient: set BENCH_CA to the CA certificate (PEM)\n");
		exit(2);
	}
#ifdef BENCH_WOLFSSL
	if (wolfSSL_Init() != WOLFSSL_SUCCESS)
		tls_fail("wolfSSL_Init");
	ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	if (!ctx || wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS)
		tls_fail("wolfSSL_CTX_new");
	if (wolfSSL_CTX_load_verify_locations(ctx, ca, NULL) != WOLFSSL_SUCCESS)
		tls_fail("loading BENCH_CA");
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
#else
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
		tls_fail("SSL_CTX_new");
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
		tls_fail("loading BENCH_CA");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
#endif
}

static struct bench_conn *tls_open(const char *host, int port, int nodelay, int resume)
{
	struct bench_conn *c = calloc(1, sizeof(*c));
	if (!c)
		bench_die("calloc");
	c->fd = bench_tcp_connect(host, port, nodelay);
#ifdef BENCH_WOLFSSL
	c->ssl = wolfSSL_new(ctx);
	if (!c->ssl)
		tls_fail("wolfSSL_new");
	wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, server_name, (unsigned short)strlen(server_name));
	wolfSSL_check_domain_name(c->ssl, server_name);
	wolfSSL_set_fd(c->ssl, c->fd);
	if (resume && saved)
		wolfSSL_set_session(c->ssl, saved);
	if (wolfSSL_connect(c->ssl) != WOLFSSL_SUCCESS)
		tls_fail("wolfSSL_connect");
	snprintf(c->desc, sizeof(c->desc), "%s %s", wolfSSL_get_version(c->ssl), wolfSSL_get_cipher_name(c->ssl));
#else
	c->ssl = SSL_new(ctx);
	if (!c->ssl)
		tls_fail("SSL_new");
	SSL_set_tlsext_host_name(c->ssl, server_name);
	SSL_set1_host(c->ssl, server_name);
	SSL_set_fd(c->ssl, c->fd);
	if (resume && saved)
		SSL_set_session(c->ssl, saved);
	if (SSL_connect(c->ssl) != 1)
		tls_fail("SSL_connect");
	snprintf(c->desc, sizeof(c->desc), "%s %s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
#endif
	return c;
}

static ssize_t tls_read(struct bench_conn *c, void *buf, size_t len)
{
	int n = len > INT_MAX ? INT_MAX : (int)len;
#ifdef BENCH_WOLFSSL
	int r = wolfSSL_read(c->ssl, buf, n);
	if (r < 0 && wolfSSL_get_error(c->ssl, r) == WOLFSSL_ERROR_ZERO_RETURN)
		return 0;
#else
	int r = SSL_read(c->ssl, buf, n);
	if (r <= 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN)
		return 0;
#endif
	if (r < 0)
		errno = EIO;
	return r;
}

static ssize_t tls_write(struct bench_conn *c, const void *buf, size_t len)
{
	int n = len > INT_MAX ? INT_MAX : (int)len;
#ifdef BENCH_WOLFSSL
	int r = wolfSSL_write(c->ssl, buf, n);
#else
	int r = SSL_write(c->ssl, buf, n);
#endif
	if (r <= 0) {
		errno = EIO;
		return -1;
	}
	return r;
}

static void tls_after_ack(struct bench_conn *c)
{
	if (!keep_sessions)
		return;
#ifdef BENCH_WOLFSSL
	if (saved)
		wolfSSL_SESSION_free(saved);
	saved = wolfSSL_get1_session(c->ssl);
#else
	if (saved)
		SSL_SESSION_free(saved);
	saved = SSL_get1_session(c->ssl);
#endif
}

static int tls_resumed(struct bench_conn *c)
{
#ifdef BENCH_WOLFSSL
	return wolfSSL_session_reused(c->ssl);
#else
	return SSL_session_reused(c->ssl);
#endif
}

static const char *tls_describe(struct bench_conn *c)
{
	return c->desc;
}

static void tls_close(struct bench_conn *c)
{
#ifdef BENCH_WOLFSSL
	wolfSSL_shutdown(c->ssl);
	wolfSSL_free(c->ssl);
#else
	SSL_shutdown(c->ssl);
	SSL_free(c->ssl);
#endif
	close(c->fd);
	free(c);
}

static const struct bench_ops tls_ops = {tls_open,    tls_read,	    tls_write, tls_after_ack,
					 tls_resumed, tls_describe, tls_close};

int main(int argc, char **argv)
{
	struct bench_opts o;
	if (bench_parse(argc, argv, &o) != 0)
		return 2;
	keep_sessions = o.resume;
	tls_init();
	return bench_run(&tls_ops, &o);
}
