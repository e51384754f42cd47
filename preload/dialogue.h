/* dialogue.h: what runs on a tls rule's connection between the TCP connect and the handshake: the proxy
 * tunnel (proxy=http://, socks5://) and the protocol's own upgrade (starttls=smtp|imap|pop3|postgres|
 * ldap). A small state machine driven like the asynchronous handshake: each step sends and receives
 * without waiting, so conn.c advances it from the program's poll/epoll/read/write/SO_ERROR, under the
 * same handshake-timeout= deadline. What the program must read first (the SMTP, IMAP or POP3 greeting)
 * goes to the connection's program-bound queue; bytes after a proxy's reply go on to the next stage (a
 * STARTTLS greeting) or to the TLS read-ahead; bytes after a STARTTLS reply are refused (injection).
 *
 * After the handshake, starttls=postgres keeps two small filters on the plaintext stream (see
 * dialogue_filter_write and dialogue_filter_read): the program's own SSLRequest/GSSENCRequest are
 * answered 'N', and SCRAM-SHA-256-PLUS is removed from the first AuthenticationSASL message.
 *
 * The engine reaches the outside only through the `libc` table (send, recv, read, close) and
 * conn_queue_for_program / conn_queue_for_tls: preload/libc.c and preload/conn.c in the library,
 * tools/probe_dialogue.c in `tlsshim probe`, which links these files too. */
#ifndef TLSSHIM_DIALOGUE_H
#define TLSSHIM_DIALOGUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#include "policy/policy.h"

struct conn;
struct dialogue;

/* Who the tunnel is for: the destination the program connected to. */
struct dialogue_target {
	const char *name; /* the name bound to the connection (asked of the proxy), or NULL */
	int family;	  /* the destination address (asked of the proxy when there is no name) */
	uint8_t addr[16];
	uint16_t port;
};

/* A dialogue for a rule with starttls= or proxy=, or NULL with *err when it cannot start (the
 * proxy-user-file= cannot be read, out of memory). Reads files: call with no lock held. */
struct dialogue *dialogue_new(const struct policy_tls_opts *o, const struct dialogue_target *t, char *err,
			      size_t errlen);
void dialogue_free(struct dialogue *d);

/* Advances the dialogue without waiting. c->lock held (the queues are c's). Returns 0 when done (the
 * handshake may start), 1 in progress (*want: POLLIN or POLLOUT), -1 failed (dialogue_reason and
 * dialogue_errno say why). */
int dialogue_step(struct dialogue *d, struct conn *c, int fd, short *want);
bool dialogue_done(const struct dialogue *d);
const char *dialogue_reason(const struct dialogue *d);
int dialogue_errno(const struct dialogue *d);
/* "the SMTP STARTTLS dialogue", "the SOCKS5 proxy dialogue", "the TLS handshake". */
const char *dialogue_stage(const struct dialogue *d);

/* proxy=: the destination the program connected to, for getpeername(). */
void dialogue_set_peer(struct dialogue *d, const struct sockaddr *sa, socklen_t len);
/* Copies it as getpeername() would (truncating to *len, setting *len to the full size); false when
 * the connection has no proxy (the kernel's answer is right). */
bool dialogue_peer(const struct dialogue *d, struct sockaddr *sa, socklen_t *len);

/* starttls=postgres, after the handshake. c->lock held.
 * dialogue_filter_write: the program's write of len bytes; returns how many bytes the filter took (the
 * 8-byte SSLRequest or GSSENCRequest, answered with 'N' in the program-bound queue), 0 to send the data
 * as usual (the filter then turns itself off).
 * dialogue_filter_read: true while the server's stream must go through dialogue_filter_data first. */
size_t dialogue_filter_write(struct dialogue *d, struct conn *c, const void *buf, size_t len);
bool dialogue_filter_read(const struct dialogue *d);
/* Takes n decrypted bytes from the server; what the program may see goes to c's program-bound queue
 * (rewritten). 0, or -1 with errno (ECONNRESET: malformed) and the reason logged. */
int dialogue_filter_data(struct dialogue *d, struct conn *c, const uint8_t *buf, size_t n);

#endif
