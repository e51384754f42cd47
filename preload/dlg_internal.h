/* dlg_internal.h: the dialogue object shared by the engine (dialogue.c) and the protocol steps
 * (dlg_mail.c, dlg_db.c, dlg_proxy.c). Not used outside those files. */
#ifndef TLSSHIM_DLG_INTERNAL_H
#define TLSSHIM_DLG_INTERNAL_H

#include "preload/dialogue.h"
#include "preload/dlg_parse.h"

#define DLG_IN_MAX  (DLG_HTTP_HEADERS_MAX + DLG_LINE_MAX) /* bytes received and not yet parsed */
#define DLG_OUT_MAX 1024				  /* bytes of one request */

/* What a protocol step answers. */
enum dlg_step { STEP_NEED_INPUT, STEP_SENT, STEP_DONE, STEP_FAIL };

struct dialogue;
typedef enum dlg_step (*dlg_step_fn)(struct dialogue *d, struct conn *c, int fd);

struct dlg_proto {
	const char *stage; /* "the SMTP STARTTLS dialogue" */
	dlg_step_fn step;
};

/* One connection's dialogue. Owned by its struct conn, touched only with c->lock held. */
struct dialogue {
	const struct dlg_proto *stages[2]; /* proxy, then starttls (either may be NULL) */
	unsigned stage;			   /* index into stages; 2 when done */
	int step;			   /* the protocol's own position */
	unsigned lines;			   /* lines seen in this step (bounded skipping) */
	struct dialogue_target target;
	char target_name[256];
	char user[256], password[256]; /* proxy-user-file= */
	bool has_user;
	uint8_t in[DLG_IN_MAX];
	size_t in_len;
	uint8_t out[DLG_OUT_MAX];
	size_t out_off, out_len;
	uint8_t *replay; /* what the program reads first once TLS is up (greeting) */
	size_t replay_len;
	struct sockaddr_storage peer; /* proxy=: the destination, for getpeername() */
	socklen_t peer_len;	      /* 0: no proxy */
	int fail_errno;
	char reason[600];
	/* starttls=postgres after the handshake */
	bool pg_write_filter, pg_read_filter;
	uint8_t *pg_msg; /* a backend message being collected (DLG_PG_SASL_MAX) */
	size_t pg_len;
};

/* The steps of each protocol (dlg_mail.c, dlg_db.c, dlg_proxy.c). */
extern const struct dlg_proto dlg_smtp, dlg_imap, dlg_pop3, dlg_postgres, dlg_ldap, dlg_http_proxy,
    dlg_socks5_proxy;

/* Helpers for the steps (dialogue.c). */
enum dlg_step dlg_fail(struct dialogue *d, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Queues bytes to send; STEP_SENT, or STEP_FAIL when they do not fit. */
enum dlg_step dlg_send(struct dialogue *d, const void *buf, size_t len);
enum dlg_step dlg_sendf(struct dialogue *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dlg_consume(struct dialogue *d, size_t n);
/* Keeps bytes for the program to read first. STEP_FAIL when out of memory. */
bool dlg_keep_replay(struct dialogue *d, const uint8_t *buf, size_t len);
/* The first line of the input, quoted for a reason. */
const char *dlg_quote_input(const struct dialogue *d, char *out, size_t cap);

#endif
