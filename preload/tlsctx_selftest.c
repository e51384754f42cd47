/* tlsctx_selftest.c: proves that a configured server context can complete a handshake, before any
 * client depends on it. wolfSSL_CTX_check_private_key is not enough: the wolfSSL of Debian's package
 * (make WOLFSSL=system) is built without HAVE_ECC_KEY_EXPORT and then accepts any ECC key for any
 * certificate, so a broken rotation (a new certificate with the old key) would be loaded and every
 * handshake would fail. Here a throwaway client and a server session on the context talk through two
 * memory pipes: the server signs with its key, the client checks that signature against the
 * certificate. The client verifies nothing else (it trusts no CA): this is about the key pair and the
 * context's own settings (versions, suites, groups), not about who issued the certificate. */
#include "preload/tlsctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/wolfio.h>

#define PIPE_CAP   (64 * 1024) /* a full first flight with a long chain fits; the caller loops */
#define MAX_ROUNDS 16	       /* a TLS 1.2 or 1.3 handshake takes 2-4; more means it is stuck */

struct mem_pipe {
	unsigned char buf[PIPE_CAP];
	size_t len;
};

/* Both directions of one in-memory connection (heap: two 64 KiB pipes). */
struct mem_link {
	struct mem_pipe to_server, to_client;
};

struct mem_end {
	struct mem_pipe *in, *out;
};

static int pipe_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	(void)ssl;
	struct mem_pipe *p = ((struct mem_end *)ctx)->in;
	if (p->len == 0)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	size_t n = (size_t)sz < p->len ? (size_t)sz : p->len;
	memcpy(buf, p->buf, n);
	memmove(p->buf, p->buf + n, p->len - n);
	p->len -= n;
	return (int)n;
}

static int pipe_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	(void)ssl;
	struct mem_pipe *p = ((struct mem_end *)ctx)->out;
	size_t room = sizeof(p->buf) - p->len;
	if (room == 0)
		return WOLFSSL_CBIO_ERR_WANT_WRITE;
	size_t n = (size_t)sz < room ? (size_t)sz : room;
	memcpy(p->buf + p->len, buf, n);
	p->len += n;
	return (int)n;
}

static void attach(WOLFSSL *ssl, struct mem_end *end)
{
	wolfSSL_SSLSetIORecv(ssl, pipe_recv);
	wolfSSL_SSLSetIOSend(ssl, pipe_send);
	wolfSSL_SetIOReadCtx(ssl, end);
	wolfSSL_SetIOWriteCtx(ssl, end);
}

/* One step of a side's handshake: 1 done, 0 wants more, -1 failed (error code in *code). */
static int step(WOLFSSL *ssl, bool server, int *code)
{
	int r = server ? wolfSSL_accept(ssl) : wolfSSL_connect(ssl);
	if (r == WOLFSSL_SUCCESS)
		return 1;
	int e = wolfSSL_get_error(ssl, r);
	if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
		return 0;
	*code = e;
	return -1;
}

bool tlsctx_server_selftest(WOLFSSL_CTX *srv_ctx, const struct policy_tls_opts *o, char *why, size_t len)
{
	bool ok = false;
	WOLFSSL_CTX *cli_ctx = NULL;
	WOLFSSL *cli = NULL, *srv = NULL;
	struct mem_link *link = calloc(1, sizeof(*link));
	char gerr[160];
	if (!link) {
		snprintf(why, len, "out of memory");
		return false;
	}
	cli_ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	if (!cli_ctx || tlsctx_set_groups(cli_ctx, o, gerr, sizeof(gerr)) != 0) {
		snprintf(why, len, "cannot make the test client");
		goto out;
	}
	wolfSSL_CTX_set_verify(cli_ctx, WOLFSSL_VERIFY_NONE, NULL);
	cli = wolfSSL_new(cli_ctx);
	srv = wolfSSL_new(srv_ctx);
	if (!cli || !srv) {
		snprintf(why, len, "cannot make a test session");
		goto out;
	}
	wolfSSL_set_verify(srv, WOLFSSL_VERIFY_NONE, NULL); /* the test client has no certificate */
	struct mem_end cli_end = {&link->to_client, &link->to_server};
	struct mem_end srv_end = {&link->to_server, &link->to_client};
	attach(cli, &cli_end);
	attach(srv, &srv_end);
	int cli_done = 0, srv_done = 0, code = 0;
	bool srv_failed = false;
	for (int round = 0; round < MAX_ROUNDS && (cli_done != 1 || srv_done != 1); round++) {
		if (cli_done != 1 && (cli_done = step(cli, false, &code)) < 0)
			break;
		if (srv_done != 1 && (srv_done = step(srv, true, &code)) < 0) {
			srv_failed = true;
			break;
		}
	}
	if (cli_done == 1 && srv_done == 1) {
		ok = true;
	} else {
		char msg[WOLFSSL_MAX_ERROR_SZ];
		if (code)
			wolfSSL_ERR_error_string_n((unsigned long)code, msg, sizeof(msg));
		else
			snprintf(msg, sizeof(msg), "no progress after %d rounds", MAX_ROUNDS);
		snprintf(why, len, "a test handshake with it failed on the %s side (%s)",
			 srv_failed ? "server" : "client", msg);
	}
out:
	wolfSSL_free(cli);
	wolfSSL_free(srv);
	wolfSSL_CTX_free(cli_ctx);
	free(link);
	return ok;
}
