/* dialogue.c: the dialogue engine (see dialogue.h): the table from option value to protocol, the
 * non-blocking send and receive loop shared by every protocol, the hand-over between stages, the
 * injection check after a STARTTLS reply, and the failure reasons. */
#include "preload/conn.h"
#include "preload/dlg_internal.h"
#include "preload/libc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct dlg_proto *const starttls_protos[] = {
    [POLICY_STARTTLS_SMTP] = &dlg_smtp, [POLICY_STARTTLS_IMAP] = &dlg_imap,
    [POLICY_STARTTLS_POP3] = &dlg_pop3, [POLICY_STARTTLS_POSTGRES] = &dlg_postgres,
    [POLICY_STARTTLS_LDAP] = &dlg_ldap,
};

static const struct dlg_proto *const proxy_protos[] = {
    [POLICY_PROXY_HTTP] = &dlg_http_proxy,
    [POLICY_PROXY_SOCKS5] = &dlg_socks5_proxy,
};

/* proxy-user-file=: one line "user:password" (split at the first ':'), a trailing newline ignored. */
static int read_user_file(struct dialogue *d, const char *path, char *err, size_t errlen)
{
	char buf[600];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read proxy-user-file=%s: %s", path, strerror(errno));
		return -1;
	}
	ssize_t n = libc.read(fd, buf, sizeof(buf) - 1);
	libc.close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read proxy-user-file=%s: %s", path, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	char *colon = strchr(buf, ':');
	if (!colon || colon == buf || strchr(buf, '\n') || (size_t)(colon - buf) >= sizeof(d->user) ||
	    strlen(colon + 1) >= sizeof(d->password)) {
		snprintf(err, errlen,
			 "proxy-user-file=%s must hold one line user:password (each at most 255 bytes)",
			 path);
		return -1;
	}
	memcpy(d->user, buf, (size_t)(colon - buf));
	d->user[colon - buf] = '\0';
	snprintf(d->password, sizeof(d->password), "%s", colon + 1);
	d->has_user = true;
	return 0;
}

struct dialogue *dialogue_new(const struct policy_tls_opts *o, const struct dialogue_target *t, char *err,
			      size_t errlen)
{
	struct dialogue *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory for the dialogue");
		return NULL;
	}
	if (o->proxy != POLICY_PROXY_NONE)
		d->stages[0] = proxy_protos[o->proxy];
	if (o->starttls != POLICY_STARTTLS_NONE)
		d->stages[1] = starttls_protos[o->starttls];
	d->stage = d->stages[0] ? 0 : 1;
	d->target = *t;
	if (t->name) {
		snprintf(d->target_name, sizeof(d->target_name), "%s", t->name);
		d->target.name = d->target_name;
	}
	if (o->proxy_user_file && read_user_file(d, o->proxy_user_file, err, errlen) != 0) {
		dialogue_free(d);
		return NULL;
	}
	return d;
}

void dialogue_free(struct dialogue *d)
{
	if (!d)
		return;
	free(d->replay);
	free(d->pg_msg);
	memset(d->password, 0, sizeof(d->password));
	free(d);
}

bool dialogue_done(const struct dialogue *d)
{
	return d->stage >= 2;
}

const char *dialogue_reason(const struct dialogue *d)
{
	return d->reason;
}

int dialogue_errno(const struct dialogue *d)
{
	return d->fail_errno ? d->fail_errno : ECONNREFUSED;
}

const char *dialogue_stage(const struct dialogue *d)
{
	return d->stage < 2 && d->stages[d->stage] ? d->stages[d->stage]->stage : "the TLS handshake";
}

void dialogue_set_peer(struct dialogue *d, const struct sockaddr *sa, socklen_t len)
{
	if (len > sizeof(d->peer))
		len = sizeof(d->peer);
	memcpy(&d->peer, sa, len);
	d->peer_len = len;
}

bool dialogue_peer(const struct dialogue *d, struct sockaddr *sa, socklen_t *len)
{
	if (!d || d->peer_len == 0)
		return false;
	memcpy(sa, &d->peer, *len < d->peer_len ? *len : d->peer_len);
	*len = d->peer_len;
	return true;
}

/* ---- helpers for the protocol steps ---- */

enum dlg_step dlg_fail(struct dialogue *d, int e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
	va_end(ap);
	d->fail_errno = e;
	return STEP_FAIL;
}

enum dlg_step dlg_send(struct dialogue *d, const void *buf, size_t len)
{
	if (len > sizeof(d->out) - d->out_len)
		return dlg_fail(d, ECONNREFUSED, "%s: request too long", dialogue_stage(d));
	memcpy(d->out + d->out_len, buf, len);
	d->out_len += len;
	return STEP_SENT;
}

enum dlg_step dlg_sendf(struct dialogue *d, const char *fmt, ...)
{
	char buf[DLG_OUT_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return dlg_fail(d, ECONNREFUSED, "%s: request too long", dialogue_stage(d));
	return dlg_send(d, buf, (size_t)n);
}

void dlg_consume(struct dialogue *d, size_t n)
{
	if (n > d->in_len)
		n = d->in_len;
	memmove(d->in, d->in + n, d->in_len - n);
	d->in_len -= n;
	d->lines++;
}

bool dlg_keep_replay(struct dialogue *d, const uint8_t *buf, size_t len)
{
	uint8_t *r = realloc(d->replay, d->replay_len + len);
	if (!r)
		return false;
	memcpy(r + d->replay_len, buf, len);
	d->replay = r;
	d->replay_len += len;
	return true;
}

const char *dlg_quote_input(const struct dialogue *d, char *out, size_t cap)
{
	const uint8_t *nl = memchr(d->in, '\n', d->in_len);
	size_t n = nl ? (size_t)(nl - d->in) : d->in_len;
	if (n > 0 && d->in[n - 1] == '\r')
		n--;
	dlg_quote(d->in, n > 200 ? 200 : n, out, cap);
	return out;
}

/* ---- the engine ---- */

/* A stage finished: hand its leftover input on. */
static int next_stage(struct dialogue *d, struct conn *c, int fd)
{
	unsigned finished = d->stage;
	d->stage++;
	while (d->stage < 2 && !d->stages[d->stage])
		d->stage++;
	d->step = 0;
	d->lines = 0;
	if (d->stage < 2)
		return 0; /* what followed the proxy's reply is the STARTTLS server's to parse */
	if (finished == 1) {
		/* Bytes after the STARTTLS reply and before our ClientHello cannot be TLS (the server speaks
		 * TLS only after it): a man in the middle injecting commands (CVE-2011-0411). */
		char b, q[120] = "";
		bool behind = d->in_len == 0 && libc.recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
		if (d->in_len || behind) {
			if (d->in_len)
				dlg_quote_input(d, q, sizeof(q));
			d->in_len = 0;
			dlg_fail(d, ECONNREFUSED,
				 "the server sent bytes after its STARTTLS reply, before the TLS handshake "
				 "('%s'): a STARTTLS command injection (CVE-2011-0411); refused",
				 q);
			return -1;
		}
	} else if (d->in_len && conn_queue_for_tls(c, d->in, d->in_len) != 0) {
		dlg_fail(d, ECONNREFUSED, "the proxy's tunnel sent too much before the TLS handshake");
		return -1;
	}
	d->in_len = 0;
	if (d->replay_len) {
		if (conn_queue_for_program(c, d->replay, d->replay_len) != 0) {
			dlg_fail(d, ECONNREFUSED, "%s: the greeting cannot be kept (%s)",
				 d->stages[finished]->stage, strerror(errno));
			return -1;
		}
		free(d->replay);
		d->replay = NULL;
		d->replay_len = 0;
	}
	return 0;
}

int dialogue_step(struct dialogue *d, struct conn *c, int fd, short *want)
{
	for (int rounds = 0; rounds < 64 && d->stage < 2; rounds++) {
		while (d->out_off < d->out_len) {
			ssize_t n = libc.send(fd, d->out + d->out_off, d->out_len - d->out_off,
					      MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				*want = POLLOUT;
				return 1;
			}
			if (n < 0) {
				dlg_fail(d, errno == ECONNRESET ? ECONNRESET : ECONNREFUSED,
					 "%s: sending failed: %s", dialogue_stage(d), strerror(errno));
				return -1;
			}
			d->out_off += (size_t)n;
		}
		d->out_off = d->out_len = 0;
		enum dlg_step r = d->stages[d->stage]->step(d, c, fd);
		if (r == STEP_FAIL)
			return -1;
		if (r == STEP_SENT)
			continue;
		if (r == STEP_DONE) {
			if (next_stage(d, c, fd) != 0)
				return -1;
			continue;
		}
		/* STEP_NEED_INPUT */
		if (d->in_len >= sizeof(d->in)) {
			char q[120];
			dlg_fail(d, ECONNREFUSED, "%s: the server's reply is too long ('%s...')",
				 dialogue_stage(d), dlg_quote_input(d, q, sizeof(q)));
			return -1;
		}
		ssize_t n = libc.recv(fd, d->in + d->in_len, sizeof(d->in) - d->in_len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			*want = POLLIN;
			return 1;
		}
		if (n <= 0) {
			char q[120];
			dlg_fail(d, ECONNREFUSED, "%s: the server %s%s%s%s", dialogue_stage(d),
				 n == 0 ? "closed the connection" : "connection failed: ",
				 n == 0 ? "" : strerror(errno), d->in_len ? " after '" : "",
				 d->in_len ? dlg_quote_input(d, q, sizeof(q)) : "");
			if (d->in_len)
				strncat(d->reason, "'", sizeof(d->reason) - strlen(d->reason) - 1);
			return -1;
		}
		d->in_len += (size_t)n;
	}
	if (d->stage < 2) { /* a step that never waits: a bug, never a hang */
		dlg_fail(d, ECONNREFUSED, "%s: no progress", dialogue_stage(d));
		return -1;
	}
	return 0;
}
