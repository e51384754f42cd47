/* serve.h: the server side (serve rules). A listener is *served* when some serve rule can match
 * connections on it; each connection accepted on it becomes a server connection in conn.c's state
 * machine (role CONN_ROLE_SERVER), whose handshake runs lazily from the program's own reads, writes and
 * polls, so accept() never waits for a client.
 *   serve_accept.c  the listen/accept/accept4 hooks: classify, load key material, adopt the socket
 *   serve_conn.c    per-connection server state: the ClientHello peek and SNI pick, the client
 *                   certificate check (allow=), failure reasons and the handshake log line
 *   serve_keys.c    per-rule key material behind one atomic pointer, reloaded when the files change
 *   tlsctx_server.c the wolfSSL server context for a rule (shared with the CLI) */
#ifndef TLSSHIM_SERVE_H
#define TLSSHIM_SERVE_H

#include <stdbool.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "policy/policy.h"

struct conn;

#define SERVE_MAX_CANDIDATES 16 /* SNI candidates kept per connection (the rest are never picked) */

/* A server connection's own state, allocated at accept, freed with the connection (conn_free).
 * Guarded by the connection's lock, like the rest of struct conn. */
struct serve_state {
	const struct policy_rule *cands[SERVE_MAX_CANDIDATES];
	size_t n_cands;
	WOLFSSL_CTX *ctxs[SERVE_MAX_CANDIDATES]; /* each candidate's context as of accept (a reference) */
	const struct policy_rule *rule;		 /* the one the SNI picked (NULL before the ClientHello) */
	char peer[80];				 /* "127.0.0.1:40312" / "[::1]:40312" */
	char sni[256];				 /* the ClientHello's SNI, "" for none */
	char identity[320]; /* the client: SANs that matched allow=, or the leaf's subject */
	char reason[320];   /* why the client was refused (verify callback, ClientHello peek) */
	bool refused;	    /* reason is set */
};

/* ---- serve_keys.c ---- */

/* The rule's current server context, with a reference for the caller (give it back with
 * serve_keys_put): built on first use (file I/O: never call with a lock held), re-checked against the
 * files at most once a second. NULL with err filled when it cannot load. */
WOLFSSL_CTX *serve_keys_get(const struct policy_rule *rule, char *err, size_t errlen);
/* Drops a reference from serve_keys_get (NULL: nothing); a replaced context is freed with its last. */
void serve_keys_put(WOLFSSL_CTX *ctx);

/* Frees a connection's serve state and its references to its candidates' contexts (NULL: nothing). */
void serve_state_free(struct serve_state *s);

/* ---- serve_tickets.c ---- */

/* Makes the process's ticket secret (once; before workers fork, from the first listen or accept). */
void serve_tickets_init(void);

/* A serve rule's session ticket keys, one per rule for the life of the process (it lives in the rule's
 * slot in serve_keys.c, which is never freed). Every context of the rule points at it: the current one
 * and replaced ones still serving sessions, so nothing is allocated per context (wolfSSL frees a
 * context with its last session and has no hook to free anything with it). lock (taken inside the fork
 * gate, held only to copy these bytes) guards set, secret, tag and rule_id: written when a context
 * built with new ticket material is published (serve_tickets_publish), read by the ticket callback. */
struct serve_ticket_keys {
	pthread_mutex_t lock;
	bool set;		  /* published at least once */
	unsigned char secret[32]; /* the process secret, or the SHA-256 of session-ticket-key-file= */
	unsigned char tag[8];	  /* names this rule's keys inside the ticket's key name */
	char rule_id[300];	  /* "source:line", bound into every key */
};

/* What a context build derives for its rule (file I/O, no lock held), published with the context. */
struct serve_ticket_material {
	unsigned char secret[32];
	unsigned char tag[8];
};

/* Derives the rule's ticket material: the process secret (made here if not yet) or the ticket key
 * file's. 0, or -1 with err filled. Only for rules with session-tickets=on. */
int serve_tickets_derive(const struct policy_rule *rule, struct serve_ticket_material *m, char *err,
			 size_t errlen);

/* Installs the ticket callback on ctx with the rule's keys k (nothing with session-tickets=off).
 * 0, or -1 with err filled. */
int serve_tickets_setup(WOLFSSL_CTX *ctx, const struct policy_rule *rule, struct serve_ticket_keys *k,
			char *err, size_t errlen);

/* Makes m the keys of k (new tickets and decryption use it from now on, in every context of the rule). */
void serve_tickets_publish(struct serve_ticket_keys *k, const struct policy_rule *rule,
			   const struct serve_ticket_material *m);

/* ---- serve_conn.c ---- */

/* wolfSSL's verify callback for client certificates: chain errors, the leaf's extended key usage
 * (clientAuth when present) and allow= against the SANs. The store's userCtx is the serve_state. */
struct WOLFSSL_X509_STORE_CTX;
int serve_verify_callback(int preverify_ok, struct WOLFSSL_X509_STORE_CTX *store);

/* Reads the ClientHello into the connection's TLS-bound queue (never into the program's hands), picks
 * the rule its SNI names, and makes the session. c->lock held. Returns 0 with *ssl and c->rule set,
 * 1 when more bytes are needed (wait for POLLIN), -1 with c->serve->reason set. */
int serve_prepare_session(struct conn *c, int fd, WOLFSSL **ssl);

/* The sentence for a failed server handshake (werr: the wolfSSL error, sys_errno: ETIMEDOUT or 0). */
void serve_failure_reason(struct conn *c, int werr, int sys_errno, char *buf, size_t len);

/* The JSON event of a failed server handshake: "access-denied" when the client certificate was refused
 * or missing, else "handshake-failed". */
const char *serve_failure_event(struct conn *c, int werr);

/* The info/JSON line of a finished server handshake. c->lock held. */
void serve_log_handshake(struct conn *c, int fd, long long ms);

/* ---- serve_accept.c ---- */

/* An fd the program got from somewhere else (inetd: 0/1, systemd Accept=yes: 3) that is an accepted TCP
 * socket: serve TLS on it when a serve rule matches its local address. Returns 1 adopted, 0 left
 * alone, -1 when it must not be used (policy failed, key material missing): the fd is then shut down. */
int serve_adopt_inherited(int fd);

#endif
