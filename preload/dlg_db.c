/* dlg_db.c: the database and directory upgrades: PostgreSQL's SSLRequest (protocol 3, "SSL Session
 * Encryption") with the two filters that make the program's plaintext view consistent, and LDAP's
 * StartTLS extended operation (RFC 4511 4.14). */
#include "preload/conn.h"
#include "preload/dlg_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- PostgreSQL ---- */

/* Int32 length 8, then the request code: 80877103 (SSLRequest) or 80877104 (GSSENCRequest). */
static const uint8_t pg_ssl_request[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
static const uint8_t pg_gssenc_request[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30};

static enum dlg_step postgres_step(struct dialogue *d, struct conn *c, int fd)
{
	if (d->step == 0) {
		d->step = 1;
		return dlg_send(d, pg_ssl_request, sizeof(pg_ssl_request));
	}
	if (d->in_len < 1)
		return STEP_NEED_INPUT;
	if (d->in[0] == 'S') {
		dlg_consume(d, 1);
		d->pg_write_filter = d->pg_read_filter = true;
		return STEP_DONE;
	}
	if (d->in[0] == 'N')
		return dlg_fail(
		    d, ECONNREFUSED,
		    "PostgreSQL SSLRequest: the server answered N (it does not accept TLS); enable "
		    "ssl=on on the server");
	if (d->in[0] == 'E') { /* an old server's ErrorResponse */
		uint8_t type;
		uint32_t mlen;
		int st = dlg_pg_header(d->in, d->in_len, 4096, &type, &mlen);
		if (st == DLG_NEED || (st == DLG_OK && d->in_len < 1 + (size_t)mlen))
			return STEP_NEED_INPUT;
		char text[200] = "";
		if (st == DLG_OK)
			dlg_pg_error_text(d->in + 5, mlen - 4, text, sizeof(text));
		return dlg_fail(d, ECONNREFUSED,
				"PostgreSQL SSLRequest: the server answered with an error: '%s'", text);
	}
	char q[40];
	dlg_quote(d->in, d->in_len > 16 ? 16 : d->in_len, q, sizeof(q));
	return dlg_fail(d, ECONNREFUSED, "PostgreSQL SSLRequest: unexpected answer '%s' (expected S or N)",
			q);
}

const struct dlg_proto dlg_postgres = {"the PostgreSQL SSLRequest", postgres_step};

size_t dialogue_filter_write(struct dialogue *d, struct conn *c, const void *buf, size_t len)
{
	if (!d || !d->pg_write_filter)
		return 0;
	/* libpq (sslmode=prefer, gssencmode=prefer) believes the connection is plaintext and asks for
	 * encryption itself: answer as a server without SSL or GSSAPI would. */
	if (len >= 8 && (memcmp(buf, pg_ssl_request, 8) == 0 || memcmp(buf, pg_gssenc_request, 8) == 0) &&
	    conn_queue_for_program(c, "N", 1) == 0)
		return 8;
	d->pg_write_filter = false; /* the StartupMessage: from here on the stream is the program's */
	return 0;
}

bool dialogue_filter_read(const struct dialogue *d)
{
	return d && d->pg_read_filter;
}

/* The server's first message after the StartupMessage is its authentication request. When it is
 * AuthenticationSASL, the -PLUS mechanisms go: the program thinks it speaks plaintext, and libpq
 * aborts when offered channel binding there. Every other message passes unchanged. */
int dialogue_filter_data(struct dialogue *d, struct conn *c, const uint8_t *buf, size_t n)
{
	if (!d->pg_msg && !(d->pg_msg = malloc(DLG_PG_SASL_MAX))) {
		errno = ENOMEM;
		return -1;
	}
	size_t room = DLG_PG_SASL_MAX - d->pg_len;
	size_t take = n < room ? n : room;
	memcpy(d->pg_msg + d->pg_len, buf, take);
	d->pg_len += take;
	uint8_t type;
	uint32_t mlen;
	int st = dlg_pg_header(d->pg_msg, d->pg_len, 1u << 30, &type, &mlen);
	if (take == n && (st == DLG_NEED || (st == DLG_OK && type == 'R' && d->pg_len < 9)))
		return 0; /* not yet known whether it is AuthenticationSASL */
	bool sasl = st == DLG_OK && type == 'R' && d->pg_len >= 9 && d->pg_msg[5] == 0 && d->pg_msg[6] == 0 &&
		    d->pg_msg[7] == 0 && d->pg_msg[8] == 10;
	if (sasl && mlen + 1 > DLG_PG_SASL_MAX) {
		errno = ECONNRESET; /* an AuthenticationSASL this long is no real server's */
		return -1;
	}
	if (sasl && d->pg_len < mlen + 1u) {
		if (take == n)
			return 0; /* the rest of the message is still to come */
		errno = ECONNRESET;
		return -1;
	}
	int r = 0;
	if (sasl) {
		uint8_t out[DLG_PG_SASL_MAX];
		unsigned kept;
		long body = dlg_pg_strip_plus(d->pg_msg + 5, mlen - 4, out + 5, sizeof(out) - 5, &kept);
		if (body < 0 || kept == 0) {
			errno =
			    ECONNRESET; /* malformed, or channel binding only: nothing the program can use */
			return -1;
		}
		uint32_t nl = (uint32_t)body + 4;
		out[0] = 'R';
		out[1] = (uint8_t)(nl >> 24);
		out[2] = (uint8_t)(nl >> 16);
		out[3] = (uint8_t)(nl >> 8);
		out[4] = (uint8_t)nl;
		r = conn_queue_for_program(c, out, nl + 1);
		if (r == 0)
			r = conn_queue_for_program(c, d->pg_msg + mlen + 1, d->pg_len - (mlen + 1));
	} else {
		r = conn_queue_for_program(c, d->pg_msg, d->pg_len);
	}
	if (r == 0 && take < n)
		r = conn_queue_for_program(c, buf + take, n - take);
	d->pg_read_filter = false;
	free(d->pg_msg);
	d->pg_msg = NULL;
	d->pg_len = 0;
	return r;
}

/* ---- LDAP ---- */

/* LDAPMessage { messageID 1, extendedReq [APPLICATION 23] { requestName [0] "1.3.6.1.4.1.1466.20037" } } */
static const char ldap_starttls_request[] = "\x30\x1d\x02\x01\x01\x77\x18\x80\x16"
					    "1.3.6.1.4.1.1466.20037";

static enum dlg_step ldap_step(struct dialogue *d, struct conn *c, int fd)
{
	if (d->step == 0) {
		d->step = 1;
		return dlg_send(d, ldap_starttls_request, sizeof(ldap_starttls_request) - 1);
	}
	struct dlg_ldap_reply r;
	int st = dlg_ldap_reply(d->in, d->in_len, &r);
	if (st == DLG_NEED)
		return STEP_NEED_INPUT;
	if (st == DLG_BAD)
		return dlg_fail(d, ECONNREFUSED, "LDAP StartTLS: malformed reply from the server (%zu bytes)",
				d->in_len);
	if (r.protocol_op != 24 || r.msgid != 1)
		return dlg_fail(
		    d, ECONNREFUSED,
		    "LDAP StartTLS: the server answered with message %ld, operation %d (result %d: "
		    "'%s'), not the StartTLS response",
		    r.msgid, r.protocol_op, r.result, r.diag);
	if (r.result != 0)
		return dlg_fail(d, ECONNREFUSED, "LDAP StartTLS: the server refused: result %d '%s'",
				r.result, r.diag);
	dlg_consume(d, r.consumed);
	return STEP_DONE;
}

const struct dlg_proto dlg_ldap = {"the LDAP StartTLS operation", ldap_step};
