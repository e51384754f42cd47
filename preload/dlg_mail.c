/* dlg_mail.c: the mail upgrades: SMTP STARTTLS (RFC 3207), IMAP STARTTLS (RFC 3501 6.2.1) and POP3
 * STLS (RFC 2595 4). Each is a short linear exchange; the greeting the server sent before TLS is kept
 * for the program, which then speaks to the server inside TLS as if nothing had happened. */
#include "preload/dlg_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- SMTP ---- */

/* The EHLO argument (RFC 5321 4.1.4): the machine's fully qualified name, else an address literal of
 * our end of the connection. */
static void ehlo_name(int fd, char *out, size_t cap)
{
	char host[256];
	if (gethostname(host, sizeof(host)) == 0 && (host[sizeof(host) - 1] = '\0', strchr(host, '.')) &&
	    host[strlen(host) - 1] != '.') {
		snprintf(out, cap, "%s", host);
		return;
	}
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char a[INET6_ADDRSTRLEN] = "127.0.0.1";
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET6) {
			const struct in6_addr *in6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
			if (IN6_IS_ADDR_V4MAPPED(in6)) {
				inet_ntop(AF_INET, &in6->s6_addr[12], a, sizeof(a));
			} else {
				inet_ntop(AF_INET6, in6, a, sizeof(a));
				snprintf(out, cap, "[IPv6:%s]", a);
				return;
			}
		} else if (ss.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof(a));
		}
	}
	snprintf(out, cap, "[%s]", a);
}

static enum dlg_step smtp_step(struct dialogue *d, struct conn *c, int fd)
{
	struct dlg_smtp_reply r;
	char q[220];
	int st = dlg_smtp_reply(d->in, d->in_len, &r);
	if (st == DLG_NEED)
		return STEP_NEED_INPUT;
	if (st == DLG_BAD)
		return dlg_fail(d, ECONNREFUSED, "SMTP STARTTLS: malformed reply from the server: '%s'",
				dlg_quote_input(d, q, sizeof(q)));
	dlg_quote(d->in, r.first_len > 200 ? 200 : r.first_len, q, sizeof(q));
	switch (d->step) {
	case 0: /* the greeting */
		if (r.code != 220)
			return dlg_fail(d, ECONNREFUSED,
					"SMTP STARTTLS: the server's greeting is not 220: '%s'", q);
		if (!dlg_keep_replay(d, d->in, r.consumed))
			return dlg_fail(d, ENOMEM, "SMTP STARTTLS: out of memory");
		dlg_consume(d, r.consumed);
		d->step = 1;
		char name[300];
		ehlo_name(fd, name, sizeof(name));
		return dlg_sendf(d, "EHLO %s\r\n", name);
	case 1: /* the EHLO reply: STARTTLS must be offered */
		if (r.code != 250)
			return dlg_fail(d, ECONNREFUSED, "SMTP STARTTLS: the server refused EHLO: '%s'", q);
		if (!r.starttls)
			return dlg_fail(
			    d, ECONNREFUSED,
			    "SMTP STARTTLS: the server does not offer STARTTLS (EHLO reply '%s', %u "
			    "lines); refused: nothing is sent in plaintext",
			    q, r.lines);
		dlg_consume(d, r.consumed);
		d->step = 2;
		return dlg_sendf(d, "STARTTLS\r\n");
	default: /* the STARTTLS reply */
		if (r.code != 220)
			return dlg_fail(d, ECONNREFUSED, "SMTP STARTTLS: the server refused STARTTLS: '%s'",
					q);
		dlg_consume(d, r.consumed);
		return STEP_DONE;
	}
}

const struct dlg_proto dlg_smtp = {"the SMTP STARTTLS dialogue", smtp_step};

/* ---- IMAP ---- */

#define IMAP_TAG	  "tlsshim1"
#define IMAP_UNTAGGED_MAX 16 /* untagged lines accepted before the tagged STARTTLS reply */

static enum dlg_step imap_step(struct dialogue *d, struct conn *c, int fd)
{
	struct dlg_imap_line l;
	char q[220];
	int st = dlg_imap_line(d->in, d->in_len, IMAP_TAG, &l);
	if (st == DLG_NEED)
		return STEP_NEED_INPUT;
	if (st == DLG_BAD)
		return dlg_fail(d, ECONNREFUSED, "IMAP STARTTLS: malformed line from the server: '%s'",
				dlg_quote_input(d, q, sizeof(q)));
	dlg_quote(d->in, l.len > 200 ? 200 : l.len, q, sizeof(q));
	if (d->step == 0) { /* the greeting */
		if (!l.untagged || l.status != DLG_ST_OK)
			return dlg_fail(
			    d, ECONNREFUSED, "IMAP STARTTLS: the server's greeting is not '* OK' (%s): '%s'",
			    l.status == DLG_ST_PREAUTH ? "PREAUTH forbids STARTTLS" : "refused", q);
		uint8_t stripped[DLG_LINE_MAX + 2];
		size_t n = dlg_imap_strip_capability(d->in, l.len, stripped, sizeof(stripped));
		if (n == 0 || !dlg_keep_replay(d, stripped, n))
			return dlg_fail(d, ENOMEM, "IMAP STARTTLS: out of memory");
		dlg_consume(d, l.consumed);
		d->step = 1;
		d->lines = 0;
		return dlg_sendf(d, IMAP_TAG " STARTTLS\r\n");
	}
	if (l.untagged && l.status != DLG_ST_BYE && d->lines < IMAP_UNTAGGED_MAX) {
		dlg_consume(d, l.consumed); /* e.g. a CAPABILITY before the tagged reply */
		return STEP_SENT;	    /* parse the next line */
	}
	if (!l.tagged || l.status != DLG_ST_OK)
		return dlg_fail(d, ECONNREFUSED, "IMAP STARTTLS: the server refused STARTTLS: '%s'", q);
	dlg_consume(d, l.consumed);
	return STEP_DONE;
}

const struct dlg_proto dlg_imap = {"the IMAP STARTTLS dialogue", imap_step};

/* ---- POP3 ---- */

static enum dlg_step pop3_step(struct dialogue *d, struct conn *c, int fd)
{
	struct dlg_pop3_line l;
	char q[220];
	int st = dlg_pop3_line(d->in, d->in_len, &l);
	if (st == DLG_NEED)
		return STEP_NEED_INPUT;
	if (st == DLG_BAD)
		return dlg_fail(d, ECONNREFUSED, "POP3 STLS: malformed line from the server: '%s'",
				dlg_quote_input(d, q, sizeof(q)));
	dlg_quote(d->in, l.len > 200 ? 200 : l.len, q, sizeof(q));
	if (l.status != DLG_ST_OK)
		return dlg_fail(d, ECONNREFUSED, "POP3 STLS: the server refused %s: '%s'",
				d->step == 0 ? "the connection" : "STLS", q);
	if (d->step == 0) {
		if (!dlg_keep_replay(d, d->in, l.consumed))
			return dlg_fail(d, ENOMEM, "POP3 STLS: out of memory");
		dlg_consume(d, l.consumed);
		d->step = 1;
		return dlg_sendf(d, "STLS\r\n");
	}
	dlg_consume(d, l.consumed);
	return STEP_DONE;
}

const struct dlg_proto dlg_pop3 = {"the POP3 STLS dialogue", pop3_step};
