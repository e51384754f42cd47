/* dlg_proxy.c: the egress proxies: HTTP CONNECT (RFC 9110 9.3.6, Basic credentials RFC 7617) and SOCKS5
 * (RFC 1928, username/password RFC 1929). Each asks for a tunnel to the destination: by the name bound
 * to the connection when there is one (so proxies that resolve names work), else by address. */
#include "preload/dlg_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* "name:port", "1.2.3.4:port" or "[::1]:port". */
static void authority(const struct dialogue *d, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	if (d->target.name) {
		snprintf(out, cap, "%s:%u", d->target.name, (unsigned)d->target.port);
		return;
	}
	inet_ntop(d->target.family, d->target.addr, a, sizeof(a));
	snprintf(out, cap, d->target.family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, (unsigned)d->target.port);
}

static void base64(const uint8_t *in, size_t n, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
}

static enum dlg_step http_step(struct dialogue *d, struct conn *c, int fd)
{
	if (d->step == 0) {
		char auth[300], cred[520], b64[700] = "";
		authority(d, auth, sizeof(auth));
		d->step = 1;
		if (!d->has_user)
			return dlg_sendf(d, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", auth, auth);
		int n = snprintf(cred, sizeof(cred), "%s:%s", d->user, d->password);
		base64((const uint8_t *)cred, (size_t)n, b64);
		memset(cred, 0, sizeof(cred));
		enum dlg_step r =
		    dlg_sendf(d, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n",
			      auth, auth, b64);
		memset(b64, 0, sizeof(b64));
		return r;
	}
	struct dlg_http_reply r;
	char q[220];
	int st = dlg_http_reply(d->in, d->in_len, &r);
	if (st == DLG_NEED)
		return STEP_NEED_INPUT;
	if (st == DLG_BAD)
		return dlg_fail(d, ECONNREFUSED, "HTTP proxy: malformed reply to CONNECT: '%s'",
				dlg_quote_input(d, q, sizeof(q)));
	dlg_quote(d->in, r.status_len > 200 ? 200 : r.status_len, q, sizeof(q));
	if (r.status == 407)
		return dlg_fail(d, EACCES,
				"HTTP proxy: authentication required: '%s'; set proxy-user-file=%s", q,
				d->has_user ? " to credentials the proxy accepts" : "");
	if (r.status < 200 || r.status > 299)
		return dlg_fail(d, ECONNREFUSED, "HTTP proxy: CONNECT refused: '%s'", q);
	dlg_consume(d, r.consumed); /* what follows is the destination's */
	return STEP_DONE;
}

const struct dlg_proto dlg_http_proxy = {"the HTTP proxy's CONNECT", http_step};

enum { SOCKS_HELLO, SOCKS_METHOD, SOCKS_AUTH, SOCKS_CONNECT, SOCKS_REPLY };

static enum dlg_step socks5_step(struct dialogue *d, struct conn *c, int fd)
{
	int v, st;
	switch (d->step) {
	case SOCKS_HELLO:
		d->step = SOCKS_METHOD;
		return d->has_user ? dlg_send(d, "\x05\x02\x00\x02", 4) : dlg_send(d, "\x05\x01\x00", 3);
	case SOCKS_METHOD:
		st = dlg_socks5_method(d->in, d->in_len, &v);
		if (st == DLG_NEED)
			return STEP_NEED_INPUT;
		if (st == DLG_BAD)
			return dlg_fail(d, ECONNREFUSED, "SOCKS5 proxy: not a SOCKS5 answer (version %u)",
					(unsigned)d->in[0]);
		dlg_consume(d, 2);
		if (v == 0) {
			d->step = SOCKS_CONNECT;
			return STEP_SENT;
		}
		if (v == 2 && d->has_user) {
			uint8_t req[3 + 255 + 255];
			size_t ul = strlen(d->user), pl = strlen(d->password);
			req[0] = 1;
			req[1] = (uint8_t)ul;
			memcpy(req + 2, d->user, ul);
			req[2 + ul] = (uint8_t)pl;
			memcpy(req + 3 + ul, d->password, pl);
			d->step = SOCKS_AUTH;
			enum dlg_step r = dlg_send(d, req, 3 + ul + pl);
			memset(req, 0, sizeof(req));
			return r;
		}
		return dlg_fail(
		    d, v == 0xff || v == 2 ? EACCES : ECONNREFUSED,
		    "SOCKS5 proxy: no acceptable authentication method (the proxy chose 0x%02x)%s", v,
		    d->has_user ? "" : "; set proxy-user-file= if it needs a user name and password");
	case SOCKS_AUTH:
		st = dlg_socks5_auth(d->in, d->in_len, &v);
		if (st == DLG_NEED)
			return STEP_NEED_INPUT;
		if (st == DLG_BAD || v != 0)
			return dlg_fail(
			    d, EACCES,
			    "SOCKS5 proxy: the user name and password were refused (status %d); check "
			    "proxy-user-file=",
			    st == DLG_BAD ? -1 : v);
		dlg_consume(d, 2);
		d->step = SOCKS_CONNECT;
		return STEP_SENT;
	case SOCKS_CONNECT: {
		uint8_t req[4 + 1 + 255 + 2];
		size_t n = 0;
		req[n++] = 5;
		req[n++] = 1; /* CONNECT */
		req[n++] = 0;
		if (d->target.name && strlen(d->target.name) <= 255) {
			size_t l = strlen(d->target.name);
			req[n++] = 3; /* a domain name: the proxy resolves it */
			req[n++] = (uint8_t)l;
			memcpy(req + n, d->target.name, l);
			n += l;
		} else if (d->target.family == AF_INET6) {
			req[n++] = 4;
			memcpy(req + n, d->target.addr, 16);
			n += 16;
		} else {
			req[n++] = 1;
			memcpy(req + n, d->target.addr, 4);
			n += 4;
		}
		req[n++] = (uint8_t)(d->target.port >> 8);
		req[n++] = (uint8_t)d->target.port;
		d->step = SOCKS_REPLY;
		return dlg_send(d, req, n);
	}
	default: {
		struct dlg_socks5_reply r;
		st = dlg_socks5_reply(d->in, d->in_len, &r);
		if (st == DLG_NEED)
			return STEP_NEED_INPUT;
		if (st == DLG_BAD)
			return dlg_fail(d, ECONNREFUSED, "SOCKS5 proxy: malformed reply to CONNECT");
		if (r.rep != 0) {
			int e = r.rep == 3 ? ENETUNREACH : r.rep == 4 ? EHOSTUNREACH : ECONNREFUSED;
			return dlg_fail(d, e, "SOCKS5 proxy: CONNECT refused: reply %d (%s)", r.rep,
					dlg_socks5_rep_text(r.rep));
		}
		dlg_consume(d, r.consumed);
		return STEP_DONE;
	}
	}
}

const struct dlg_proto dlg_socks5_proxy = {"the SOCKS5 proxy's CONNECT", socks5_step};
