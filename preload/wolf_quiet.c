/* wolf_quiet.c: keeps wolfSSL from formatting an error message for every would-block.
 *
 * This wolfSSL build has OPENSSL_EXTRA (the shim uses its X509 and compatibility calls), and with it
 * every WOLFSSL_ERROR() inside the library becomes a call to WOLFSSL_ERROR_LINE(), which takes the
 * error-queue mutex and snprintf()s a message, even for WANT_READ and WANT_WRITE, which it then leaves
 * out of the queue (wolfcrypt/src/logging.c, 5.5.4). A non-blocking read that finds no complete record
 * is the shim's most common outcome (every event loop reads until EAGAIN), so that was about 1,400
 * instructions and a mutex per would-block (callgrind, bench/scale.c). The static link wraps the
 * library's calls (-Wl,--wrap=WOLFSSL_ERROR_LINE, Makefile): WANT_READ and WANT_WRITE return at once,
 * every other error goes to wolfSSL's own function unchanged. Nothing observable changes: without
 * DEBUG_WOLFSSL the formatted text of those two was discarded. Not built with WOLFSSL=system (the
 * shared library's internal calls cannot be wrapped). */
#ifndef TLSSHIM_WOLFSSL_SYSTEM
#include <wolfssl/options.h>

#include <wolfssl/error-ssl.h>
#include <wolfssl/ssl.h>

void __real_WOLFSSL_ERROR_LINE(int err, const char *func, unsigned int line, const char *file, void *ctx);
void __wrap_WOLFSSL_ERROR_LINE(int err, const char *func, unsigned int line, const char *file, void *ctx);

__attribute__((visibility("hidden"))) void
__wrap_WOLFSSL_ERROR_LINE(int err, const char *func, unsigned int line, const char *file, void *ctx)
{
	if (err == WANT_READ || err == WANT_WRITE)
		return;
	__real_WOLFSSL_ERROR_LINE(err, func, line, file, ctx);
}
#endif
