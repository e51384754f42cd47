/* Unit tests for the dialogue reply parsers (preload/dlg_parse.c): what each accepts, what it refuses,
 * where it asks for more bytes, and the limits of dlg_parse.h. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "preload/dlg_parse.h"

#define B(s) ((const uint8_t *)(s))

/* ---- lines ---- */

Test(dlg_line, crlf_lf_need_nul_and_limit)
{
	size_t ll = 0, used = 0;
	cr_assert_eq(dlg_line(B("abc\r\nrest"), 9, DLG_LINE_MAX, &ll, &used), DLG_OK);
	cr_assert_eq(ll, 3);
	cr_assert_eq(used, 5);
	cr_assert_eq(dlg_line(B("abc\nrest"), 8, DLG_LINE_MAX, &ll, &used), DLG_OK);
	cr_assert_eq(ll, 3);
	cr_assert_eq(used, 4);
	cr_assert_eq(dlg_line(B("\r\n"), 2, DLG_LINE_MAX, &ll, &used), DLG_OK);
	cr_assert_eq(ll, 0);
	cr_assert_eq(dlg_line(B("abc"), 3, DLG_LINE_MAX, &ll, &used), DLG_NEED);
	cr_assert_eq(dlg_line(B("a\0c\n"), 4, DLG_LINE_MAX, &ll, &used), DLG_BAD);
	/* max counts CR LF: a line of max-1 bytes plus LF fits, one more byte does not */
	char buf[16];
	memset(buf, 'x', sizeof(buf));
	buf[7] = '\n';
	cr_assert_eq(dlg_line(B(buf), 8, 8, &ll, &used), DLG_OK);
	buf[7] = 'x';
	buf[8] = '\n';
	cr_assert_eq(dlg_line(B(buf), 9, 8, &ll, &used), DLG_BAD);
	cr_assert_eq(dlg_line(B(buf), 8, 8, &ll, &used), DLG_BAD); /* max bytes and no end: over */
	cr_assert_eq(dlg_line(B(buf), 7, 8, &ll, &used), DLG_NEED);
}

Test(dlg_quote, printable_only_and_bounded)
{
	char out[8];
	dlg_quote(B("ab\x01\x7f\xff"
		    "cdefgh"),
		  11, out, sizeof(out));
	cr_assert_str_eq(out, "ab???cd");
	dlg_quote(B("x"), 1, out, 1);
	cr_assert_str_eq(out, "");
}

/* ---- SMTP ---- */

Test(dlg_smtp, multiline_ehlo_with_starttls)
{
	const char *s = "250-mail.test\r\n250-PIPELINING\r\n250-starttls\r\n250 8BITMIME\r\nNEXT";
	struct dlg_smtp_reply r;
	cr_assert_eq(dlg_smtp_reply(B(s), strlen(s), &r), DLG_OK);
	cr_assert_eq(r.code, 250);
	cr_assert_eq(r.lines, 4);
	cr_assert(r.starttls);
	cr_assert_eq(r.first_len, strlen("250-mail.test"));
	cr_assert_eq(r.consumed, strlen(s) - 4);
}

Test(dlg_smtp, starttls_only_as_a_keyword_after_the_first_line)
{
	struct dlg_smtp_reply r;
	const char *first = "250 STARTTLS\r\n"; /* the first line is the server's name, not a keyword */
	cr_assert_eq(dlg_smtp_reply(B(first), strlen(first), &r), DLG_OK);
	cr_assert_not(r.starttls);
	const char *longer = "250-x\r\n250-STARTTLSX\r\n250 XSTARTTLS\r\n";
	cr_assert_eq(dlg_smtp_reply(B(longer), strlen(longer), &r), DLG_OK);
	cr_assert_not(r.starttls);
}

Test(dlg_smtp, bare_code_and_need)
{
	struct dlg_smtp_reply r;
	cr_assert_eq(dlg_smtp_reply(B("220\r\n"), 5, &r), DLG_OK);
	cr_assert_eq(r.code, 220);
	cr_assert_eq(dlg_smtp_reply(B("250-a\r\n250-b\r\n"), 14, &r), DLG_NEED);
	cr_assert_eq(dlg_smtp_reply(B("250-a\r\n25"), 9, &r), DLG_NEED);
}

Test(dlg_smtp, malformed)
{
	struct dlg_smtp_reply r;
	const char *bad[] = {"25\r\n",	   "abc ok\r\n",	 "150 one\r\n", "650 six\r\n",
			     "250xok\r\n", "250-a\r\n251 b\r\n", "hello\r\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(dlg_smtp_reply(B(bad[i]), strlen(bad[i]), &r), DLG_BAD, "%s", bad[i]);
}

Test(dlg_smtp, at_most_64_lines)
{
	char buf[80 * 8];
	size_t n = 0;
	for (unsigned i = 0; i < DLG_SMTP_LINES_MAX - 1; i++)
		n += (size_t)sprintf(buf + n, "250-x\r\n");
	n += (size_t)sprintf(buf + n, "250 x\r\n");
	struct dlg_smtp_reply r;
	cr_assert_eq(dlg_smtp_reply(B(buf), n, &r), DLG_OK);
	cr_assert_eq(r.lines, DLG_SMTP_LINES_MAX);
	n = 0;
	for (unsigned i = 0; i < DLG_SMTP_LINES_MAX; i++)
		n += (size_t)sprintf(buf + n, "250-x\r\n");
	n += (size_t)sprintf(buf + n, "250 x\r\n");
	cr_assert_eq(dlg_smtp_reply(B(buf), n, &r), DLG_BAD);
}

/* ---- IMAP ---- */

Test(dlg_imap, untagged_tagged_continuation)
{
	struct dlg_imap_line r;
	const char *g = "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n";
	cr_assert_eq(dlg_imap_line(B(g), strlen(g), "tlsshim1", &r), DLG_OK);
	cr_assert(r.untagged);
	cr_assert_eq(r.status, DLG_ST_OK);
	cr_assert_eq(r.consumed, strlen(g));
	cr_assert_eq(dlg_imap_line(B("* PREAUTH hi\r\n"), 14, "t", &r), DLG_OK);
	cr_assert_eq(r.status, DLG_ST_PREAUTH);
	cr_assert_eq(dlg_imap_line(B("* BYE no\r\n"), 10, "t", &r), DLG_OK);
	cr_assert_eq(r.status, DLG_ST_BYE);
	cr_assert_eq(dlg_imap_line(B("* OK[x] y\r\n"), 11, "t", &r), DLG_OK);
	cr_assert_eq(r.status, DLG_ST_OK);
	cr_assert_eq(dlg_imap_line(B("* OKAY\r\n"), 8, "t", &r), DLG_OK);
	cr_assert_eq(r.status, DLG_ST_OTHER);
	cr_assert_eq(dlg_imap_line(B("tlsshim1 OK Begin TLS\r\n"), 23, "tlsshim1", &r), DLG_OK);
	cr_assert(r.tagged);
	cr_assert_eq(r.status, DLG_ST_OK);
	cr_assert_eq(dlg_imap_line(B("tlsshim1 NO later\r\n"), 19, "tlsshim1", &r), DLG_OK);
	cr_assert_eq(r.status, DLG_ST_NO);
	cr_assert_eq(dlg_imap_line(B("tlsshim1 BAD what\r\n"), 19, "tlsshim1", &r), DLG_OK);
	cr_assert_eq(r.status, DLG_ST_BAD);
	cr_assert_eq(dlg_imap_line(B("+ go\r\n"), 6, "t", &r), DLG_OK);
	cr_assert(r.continuation);
}

Test(dlg_imap, other_tags_and_garbage_are_bad)
{
	struct dlg_imap_line r;
	cr_assert_eq(dlg_imap_line(B("a1 OK done\r\n"), 12, "tlsshim1", &r), DLG_BAD);
	cr_assert_eq(dlg_imap_line(B("TLSSHIM1 OK x\r\n"), 15, "tlsshim1", &r), DLG_BAD); /* tags are exact */
	cr_assert_eq(dlg_imap_line(B("tlsshim1\r\n"), 10, "tlsshim1", &r), DLG_BAD);
	cr_assert_eq(dlg_imap_line(B("*OK\r\n"), 5, "t", &r), DLG_BAD);
	cr_assert_eq(dlg_imap_line(B("* OK no end"), 11, "t", &r), DLG_NEED);
}

static void strip(const char *in, const char *want)
{
	uint8_t out[256];
	size_t n = dlg_imap_strip_capability(B(in), strlen(in), out, sizeof(out));
	cr_assert_eq(n, strlen(want), "'%s' -> %zu bytes", in, n);
	cr_assert_eq(memcmp(out, want, n), 0, "'%s' -> '%.*s'", in, (int)n, out);
}

Test(dlg_imap, strip_capability)
{
	strip("* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.", "* OK Dovecot ready.\r\n");
	strip("* OK [capability IMAP4rev1] hi", "* OK hi\r\n");
	strip("* OK [CAPABILITY IMAP4rev1 STARTTLS]", "* OK\r\n");
	strip("* OK ready", "* OK ready\r\n");
	strip("* OK [ALERT] x", "* OK [ALERT] x\r\n");
	strip("* OK [CAPABILITY IMAP4rev1 unterminated", "* OK\r\n");
	uint8_t small[6];
	cr_assert_eq(dlg_imap_strip_capability(B("* OK ready"), 10, small, sizeof(small)), 0);
}

/* ---- POP3 ---- */

Test(dlg_pop3, ok_err_bad)
{
	struct dlg_pop3_line r;
	cr_assert_eq(dlg_pop3_line(B("+OK ready\r\n"), 11, &r), DLG_OK);
	cr_assert_eq(r.status, DLG_ST_OK);
	cr_assert_eq(r.len, 9);
	cr_assert_eq(dlg_pop3_line(B("+OK\r\n"), 5, &r), DLG_OK);
	cr_assert_eq(dlg_pop3_line(B("-ERR no\r\n"), 9, &r), DLG_OK);
	cr_assert_eq(r.status, DLG_ST_ERR);
	cr_assert_eq(dlg_pop3_line(B("+OKAY\r\n"), 7, &r), DLG_BAD);
	cr_assert_eq(dlg_pop3_line(B("* OK\r\n"), 6, &r), DLG_BAD);
	cr_assert_eq(dlg_pop3_line(B("+OK"), 3, &r), DLG_NEED);
}

/* ---- PostgreSQL ---- */

Test(dlg_pg, header)
{
	uint8_t type;
	uint32_t n;
	cr_assert_eq(dlg_pg_header(B("R\0\0\0"), 4, 1024, &type, &n), DLG_NEED);
	cr_assert_eq(dlg_pg_header(B("R\0\0\0\x17"), 5, 1024, &type, &n), DLG_OK);
	cr_assert_eq(type, 'R');
	cr_assert_eq(n, 0x17);
	cr_assert_eq(dlg_pg_header(B("R\0\0\0\x03"), 5, 1024, &type, &n), DLG_BAD);
	cr_assert_eq(dlg_pg_header(B("R\0\0\x04\x01"), 5, 1024, &type, &n), DLG_BAD);
}

Test(dlg_pg, strip_plus)
{
	/* code 10, "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "" */
	static const uint8_t body[] = "\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0";
	size_t len = sizeof(body); /* the literal's own NUL is the empty name that ends the list */
	uint8_t out[64];
	unsigned kept = 9;
	long n = dlg_pg_strip_plus(body, len, out, sizeof(out), &kept);
	static const uint8_t want[] = "\0\0\0\x0aSCRAM-SHA-256\0";
	cr_assert_eq(n, (long)sizeof(want));
	cr_assert_eq(memcmp(out, want, sizeof(want)), 0);
	cr_assert_eq(kept, 1);
	/* only -PLUS: nothing kept (the caller refuses) */
	static const uint8_t only[] = "\0\0\0\x0aSCRAM-SHA-256-PLUS\0";
	cr_assert_eq(dlg_pg_strip_plus(only, sizeof(only), out, sizeof(out), &kept), 5);
	cr_assert_eq(kept, 0);
}

Test(dlg_pg, strip_plus_malformed)
{
	uint8_t out[64];
	unsigned kept;
	static const uint8_t not_sasl[] = "\0\0\0\x05SCRAM-SHA-256\0";
	cr_assert_eq(dlg_pg_strip_plus(not_sasl, sizeof(not_sasl), out, sizeof(out), &kept), -1);
	static const uint8_t no_end[] = {0, 0, 0, 10, 'A', 0};
	cr_assert_eq(dlg_pg_strip_plus(no_end, sizeof(no_end), out, sizeof(out), &kept), -1);
	static const uint8_t unterminated[] = {0, 0, 0, 10, 'A', 'B'};
	cr_assert_eq(dlg_pg_strip_plus(unterminated, sizeof(unterminated), out, sizeof(out), &kept), -1);
	static const uint8_t trailing[] = {0, 0, 0, 10, 'A', 0, 0, 'x'};
	cr_assert_eq(dlg_pg_strip_plus(trailing, sizeof(trailing), out, sizeof(out), &kept), -1);
	static const uint8_t ok[] = {0, 0, 0, 10, 'A', 0, 0};
	cr_assert_eq(dlg_pg_strip_plus(ok, sizeof(ok), out, 6, &kept), -1); /* output too small */
	uint8_t *big = calloc(1, DLG_PG_SASL_MAX + 1);
	big[3] = 10;
	cr_assert_eq(dlg_pg_strip_plus(big, DLG_PG_SASL_MAX + 1, out, sizeof(out), &kept), -1);
	free(big);
}

Test(dlg_pg, error_text)
{
	static const uint8_t body[] = "SFATAL\0C28000\0Mno pg_hba.conf entry\0\0";
	char text[64];
	dlg_pg_error_text(body, sizeof(body), text, sizeof(text));
	cr_assert_str_eq(text, "no pg_hba.conf entry");
	static const uint8_t none[] = "SFATAL\0\0";
	dlg_pg_error_text(none, sizeof(none), text, sizeof(text));
	cr_assert_str_eq(text, "");
	static const uint8_t cut[] = {'M', 'a', 'b'}; /* no NUL at all */
	dlg_pg_error_text(cut, sizeof(cut), text, sizeof(text));
	cr_assert_str_eq(text, "ab");
}

/* ---- LDAP ---- */

/* LDAPMessage { messageID 1, [APPLICATION 24] { resultCode, matchedDN "", diagnosticMessage } } */
static size_t ldap_reply(uint8_t *out, int result, const char *diag)
{
	size_t dl = strlen(diag), n = 0;
	size_t op_len = 3 + 2 + 2 + dl;
	out[n++] = 0x30;
	out[n++] = (uint8_t)(3 + 2 + op_len);
	out[n++] = 0x02, out[n++] = 1, out[n++] = 1;
	out[n++] = 0x78, out[n++] = (uint8_t)op_len;
	out[n++] = 0x0a, out[n++] = 1, out[n++] = (uint8_t)result;
	out[n++] = 0x04, out[n++] = 0;
	out[n++] = 0x04, out[n++] = (uint8_t)dl;
	memcpy(out + n, diag, dl);
	return n + dl;
}

Test(dlg_ldap, success_and_error)
{
	uint8_t m[128];
	struct dlg_ldap_reply r;
	size_t n = ldap_reply(m, 0, "");
	cr_assert_eq(dlg_ldap_reply(m, n, &r), DLG_OK);
	cr_assert_eq(r.msgid, 1);
	cr_assert_eq(r.protocol_op, 24);
	cr_assert_eq(r.result, 0);
	cr_assert_eq(r.consumed, n);
	n = ldap_reply(m, 52, "unavailable\x01");
	cr_assert_eq(dlg_ldap_reply(m, n, &r), DLG_OK);
	cr_assert_eq(r.result, 52);
	cr_assert_str_eq(r.diag, "unavailable?");
	for (size_t k = 0; k < n; k++) /* every prefix asks for more */
		cr_assert_eq(dlg_ldap_reply(m, k, &r), DLG_NEED, "prefix %zu", k);
}

Test(dlg_ldap, malformed)
{
	uint8_t m[128];
	struct dlg_ldap_reply r;
	size_t n = ldap_reply(m, 0, "");
	m[0] = 0x31; /* not a SEQUENCE */
	cr_assert_eq(dlg_ldap_reply(m, n, &r), DLG_BAD);
	n = ldap_reply(m, 0, "");
	m[1] = 0x80; /* indefinite length */
	cr_assert_eq(dlg_ldap_reply(m, n, &r), DLG_BAD);
	n = ldap_reply(m, 0, "");
	m[1] = 0x84; /* a 4-byte length */
	cr_assert_eq(dlg_ldap_reply(m, n, &r), DLG_BAD);
	n = ldap_reply(m, 0, "");
	m[2] = 0x04; /* messageID not an INTEGER */
	cr_assert_eq(dlg_ldap_reply(m, n, &r), DLG_BAD);
	n = ldap_reply(m, 0, "");
	m[5] = 0x18; /* protocolOp not [APPLICATION n] constructed */
	cr_assert_eq(dlg_ldap_reply(m, n, &r), DLG_BAD);
	n = ldap_reply(m, 0, "abc");
	m[1] = (uint8_t)(m[1] - 2); /* the LDAPMessage ends inside the diagnosticMessage */
	cr_assert_eq(dlg_ldap_reply(m, n, &r), DLG_BAD);
	static const uint8_t huge[] = {0x30, 0x82, 0x20, 0x00}; /* 8192 bytes: over DLG_LDAP_MAX */
	cr_assert_eq(dlg_ldap_reply(huge, sizeof(huge), &r), DLG_BAD);
}

/* ---- HTTP CONNECT ---- */

Test(dlg_http, status_and_headers)
{
	struct dlg_http_reply r;
	const char *ok = "HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\nTLS";
	cr_assert_eq(dlg_http_reply(B(ok), strlen(ok), &r), DLG_OK);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.status_len, strlen("HTTP/1.1 200 Connection established"));
	cr_assert_eq(r.consumed, strlen(ok) - 3);
	cr_assert_eq(dlg_http_reply(B("HTTP/1.0 407\r\n\r\n"), 16, &r), DLG_OK);
	cr_assert_eq(r.status, 407);
	const char *cont = "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"; /* an obsolete folded header */
	cr_assert_eq(dlg_http_reply(B(cont), strlen(cont), &r), DLG_OK);
	cr_assert_eq(dlg_http_reply(B("HTTP/1.1 200 OK\r\nA: b\r\n"), 23, &r), DLG_NEED);
}

Test(dlg_http, malformed_and_limits)
{
	struct dlg_http_reply r;
	const char *bad[] = {"HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 200OK\r\n\r\n",
			     "SSH-2.0-x\r\n\r\n", "HTTP/1.1 200 OK\r\nnoheader\r\n\r\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(dlg_http_reply(B(bad[i]), strlen(bad[i]), &r), DLG_BAD, "%s", bad[i]);
	/* more than DLG_HTTP_LINES_MAX header lines */
	char *buf = malloc(DLG_HTTP_HEADERS_MAX);
	size_t n = (size_t)sprintf(buf, "HTTP/1.1 200 OK\r\n");
	for (unsigned i = 0; i < DLG_HTTP_LINES_MAX + 1; i++)
		n += (size_t)sprintf(buf + n, "A: b\r\n");
	n += (size_t)sprintf(buf + n, "\r\n");
	cr_assert_eq(dlg_http_reply(B(buf), n, &r), DLG_BAD);
	/* DLG_HTTP_HEADERS_MAX bytes without the empty line */
	n = (size_t)sprintf(buf, "HTTP/1.1 200 OK\r\n");
	while (n + 8 < DLG_HTTP_HEADERS_MAX)
		n += (size_t)sprintf(buf + n, "X: %04zu\r\n", n % 10000);
	memset(buf + n, 'x', DLG_HTTP_HEADERS_MAX - n);
	cr_assert_eq(dlg_http_reply(B(buf), DLG_HTTP_HEADERS_MAX, &r), DLG_BAD);
	free(buf);
}

/* ---- SOCKS5 ---- */

Test(dlg_socks5, method_auth_reply)
{
	int v = -1;
	cr_assert_eq(dlg_socks5_method(B("\x05"), 1, &v), DLG_NEED);
	cr_assert_eq(dlg_socks5_method(B("\x05\x02"), 2, &v), DLG_OK);
	cr_assert_eq(v, 2);
	cr_assert_eq(dlg_socks5_method(B("\x04\x00"), 2, &v), DLG_BAD);
	cr_assert_eq(dlg_socks5_auth(B("\x01\x00"), 2, &v), DLG_OK);
	cr_assert_eq(v, 0);
	cr_assert_eq(dlg_socks5_auth(B("\x05\x00"), 2, &v), DLG_BAD);
	struct dlg_socks5_reply r;
	cr_assert_eq(dlg_socks5_reply(B("\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"), 10, &r), DLG_OK);
	cr_assert_eq(r.rep, 0);
	cr_assert_eq(r.consumed, 10);
	cr_assert_eq(dlg_socks5_reply(B("\x05\x00\x00\x01\x7f\x00\x00\x01\x04"), 9, &r), DLG_NEED);
	cr_assert_eq(dlg_socks5_reply(B("\x05\x04\x00\x03\x03"
					"abc\x00\x50"),
				      10, &r),
		     DLG_OK);
	cr_assert_eq(r.rep, 4);
	cr_assert_eq(r.consumed, 10);
	uint8_t v6[22] = {5, 0, 0, 4};
	cr_assert_eq(dlg_socks5_reply(v6, 21, &r), DLG_NEED);
	cr_assert_eq(dlg_socks5_reply(v6, 22, &r), DLG_OK);
	cr_assert_eq(r.consumed, 22);
	cr_assert_eq(dlg_socks5_reply(B("\x05\x00\x01\x01\x00"), 5, &r), DLG_BAD); /* RSV not 0 */
	cr_assert_eq(dlg_socks5_reply(B("\x05\x00\x00\x02\x00"), 5, &r), DLG_BAD); /* no ATYP 2 */
	cr_assert_str_eq(dlg_socks5_rep_text(4), "host unreachable");
	cr_assert_str_eq(dlg_socks5_rep_text(9), "unknown reply code");
	cr_assert_str_eq(dlg_socks5_rep_text(-1), "unknown reply code");
}
