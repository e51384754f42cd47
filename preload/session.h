/* session.h: TLS session resumption and the key log, per process.
 * Sessions (TLS 1.2 tickets or IDs, TLS 1.3 tickets, which arrive after the handshake) are kept in a
 * bounded cache keyed by everything the full handshake verified: the rule (its trust anchors, pins,
 * client certificate and versions), the verified name or address, the SNI and the destination. A
 * resumed session can therefore never skip a check the rule asks for.
 * SSLKEYLOGFILE (the name curl, browsers and Wireshark use) writes NSS key log lines for debugging. */
#ifndef TLSSHIM_SESSION_H
#define TLSSHIM_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#define SESSION_CACHE_SIZE 256
#define SESSION_KEY_MAX	   600

/* Offers a cached session for key to ssl (before the handshake) and takes it out of the cache: each
 * ticket is used once. True if one was offered. */
bool session_offer(WOLFSSL *ssl, const char *key);

/* A fingerprint of the ticket ssl holds now (0: none). */
uint32_t session_ticket_fingerprint(WOLFSSL *ssl);

/* Keeps ssl's current session under key if it can be resumed (after the handshake, and again after
 * reads, when a TLS 1.3 ticket arrived). stale_ticket: the fingerprint of the ticket the connection
 * resumed with: after a TLS 1.3 resumption the session holds the new secret but still the old ticket
 * until the server's NewSessionTicket arrives, and that pair must never be stored.
 * Returns true once a resumable session was stored. */
bool session_store(WOLFSSL *ssl, const char *key, uint32_t stale_ticket);

/* Opens SSLKEYLOGFILE once (warning on stderr); later calls are no-ops. */
void keylog_init(void);
/* Arms TLS 1.3 secret logging for ssl when a key log is open. */
void keylog_arm(WOLFSSL *ssl);
/* After the handshake: logs the TLS 1.2 master secret when a key log is open, and frees what
 * keylog_arm kept. */
void keylog_tls12(WOLFSSL *ssl);

#endif
