/* dlg_parse.h: the parsers of what servers and proxies say during a protocol dialogue (starttls=, proxy=):
 * SMTP multi-line replies, IMAP and POP3 status lines, PostgreSQL messages, LDAP BER, HTTP CONNECT status
 * and headers, SOCKS5 replies. Everything here comes from a server that may be hostile and runs inside
 * somebody else's program, so every parser is pure (no I/O, no allocation, no globals), looks only at
 * buf[0..len), and is bounded by the limits below; each has a libFuzzer target in tests/fuzz/.
 *
 * Incremental use: a parser answers DLG_NEED (feed more bytes and ask again), DLG_BAD (malformed or over a
 * limit: refuse) or DLG_OK (one complete item; `consumed` says how many bytes it took). */
#ifndef TLSSHIM_DLG_PARSE_H
#define TLSSHIM_DLG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { DLG_BAD = -1, DLG_NEED = 0, DLG_OK = 1 };

#define DLG_LINE_MAX	     2048u /* bytes in one line (SMTP, IMAP, POP3, HTTP), CR LF included */
#define DLG_SMTP_LINES_MAX   64u   /* lines in one SMTP reply */
#define DLG_HTTP_HEADERS_MAX 8192u /* bytes of an HTTP CONNECT reply: status line and headers */
#define DLG_HTTP_LINES_MAX   64u   /* header lines in it */
#define DLG_LDAP_MAX	     4096u /* bytes of the LDAP ExtendedResponse */
#define DLG_PG_SASL_MAX	     1024u /* bytes of the PostgreSQL AuthenticationSASL message we rewrite */

/* The first line of buf: a line ends with LF (a CR before it is dropped from line_len). DLG_BAD when it
 * holds a NUL byte or is longer than max (CR LF included). */
int dlg_line(const uint8_t *buf, size_t len, size_t max, size_t *line_len, size_t *consumed);

/* One SMTP reply (RFC 5321 4.2.1): lines "NNN-text" then "NNN text" (or "NNN"), the same code on each.
 * starttls: a line after the first is the EHLO keyword STARTTLS. first_len: the first line's length. */
struct dlg_smtp_reply {
	int code;
	unsigned lines;
	bool starttls;
	size_t first_len;
	size_t consumed;
};
int dlg_smtp_reply(const uint8_t *buf, size_t len, struct dlg_smtp_reply *r);

/* One IMAP response line (RFC 3501 7.1): "* OK ...", "* PREAUTH ...", "* BYE ...", "TAG OK|NO|BAD ...",
 * "+ ...". tagged: the line starts with `tag` (case-sensitive, as sent). */
enum dlg_status {
	DLG_ST_OTHER = 0,
	DLG_ST_OK,
	DLG_ST_NO,
	DLG_ST_BAD,
	DLG_ST_PREAUTH,
	DLG_ST_BYE,
	DLG_ST_ERR
};
struct dlg_imap_line {
	bool untagged, tagged, continuation;
	enum dlg_status status;
	size_t len; /* the line without CR LF */
	size_t consumed;
};
int dlg_imap_line(const uint8_t *buf, size_t len, const char *tag, struct dlg_imap_line *r);

/* An IMAP greeting line without its "[CAPABILITY ...]" response code (capabilities learned before TLS
 * are void, RFC 3501 6.2.1). Writes at most cap bytes (the line and CR LF); returns the length, or 0
 * when it does not fit. */
size_t dlg_imap_strip_capability(const uint8_t *line, size_t len, uint8_t *out, size_t cap);

/* One POP3 status line (RFC 1939 3): "+OK ..." (DLG_ST_OK) or "-ERR ..." (DLG_ST_ERR); other text is
 * DLG_BAD. */
struct dlg_pop3_line {
	enum dlg_status status;
	size_t len, consumed;
};
int dlg_pop3_line(const uint8_t *buf, size_t len, struct dlg_pop3_line *r);

/* PostgreSQL backend messages (protocol 3): a type byte and a 4-byte big-endian length that counts
 * itself. DLG_BAD for a length below 4 or above max_len. */
int dlg_pg_header(const uint8_t *buf, size_t len, uint32_t max_len, uint8_t *type, uint32_t *msg_len);
/* The body of an AuthenticationSASL message ('R', code 10, then NUL-terminated mechanism names ending
 * with an empty one) without the mechanisms whose name ends in "-PLUS" (channel binding). Writes the
 * new body (code included) to out; returns its length, or -1 when malformed or over cap. *kept: how
 * many mechanisms are left. */
long dlg_pg_strip_plus(const uint8_t *body, size_t len, uint8_t *out, size_t cap, unsigned *kept);
/* The 'M' (message) field of an ErrorResponse body, copied printable into text (always terminated). */
void dlg_pg_error_text(const uint8_t *body, size_t len, char *text, size_t cap);

/* The LDAP StartTLS ExtendedResponse (RFC 4511 4.12, 4.14): LDAPMessage { messageID, [APPLICATION 24]
 * { resultCode, matchedDN, diagnosticMessage, ... } }. diag: the diagnosticMessage, printable. */
struct dlg_ldap_reply {
	long msgid;
	int protocol_op; /* the application tag number (24: ExtendedResponse) */
	int result;	 /* resultCode (0: success) */
	char diag[160];
	size_t consumed;
};
int dlg_ldap_reply(const uint8_t *buf, size_t len, struct dlg_ldap_reply *r);

/* An HTTP CONNECT reply: "HTTP/1.x NNN reason" CR LF, header lines, an empty line. */
struct dlg_http_reply {
	int status;
	size_t status_len; /* the status line's length (for messages) */
	size_t consumed;
};
int dlg_http_reply(const uint8_t *buf, size_t len, struct dlg_http_reply *r);

/* SOCKS5 (RFC 1928, RFC 1929): the method choice (VER 5, METHOD), the username/password status (VER 1,
 * STATUS), and the reply to CONNECT (VER 5, REP, RSV 0, ATYP 1/3/4, BND.ADDR, BND.PORT). */
int dlg_socks5_method(const uint8_t *buf, size_t len, int *method);
int dlg_socks5_auth(const uint8_t *buf, size_t len, int *status);
struct dlg_socks5_reply {
	int rep;
	size_t consumed;
};
int dlg_socks5_reply(const uint8_t *buf, size_t len, struct dlg_socks5_reply *r);
/* The text of a SOCKS5 REP code ("host unreachable"). */
const char *dlg_socks5_rep_text(int rep);

/* Copies a server's text for a one-line reason: printable ASCII as is, other bytes as '?', at most
 * cap - 1 bytes, always terminated. */
void dlg_quote(const uint8_t *s, size_t n, char *out, size_t cap);

#endif
