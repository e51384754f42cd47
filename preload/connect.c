/* connect.c: the connect() hook: ask the policy, then pass through, refuse, or make the socket TLS.
 * The three answers (torsocks calls this validating the socket): PLAIN hands the call to libc untouched;
 * DENY fails with EACCES and a reason; TLS installs the connection in the fd table *before* the TCP
 * connect, so no other thread can slip plaintext into the socket, then connects and runs the handshake. */
#include "preload/audit.h"
#include "preload/conn.h"
#include "preload/child.h"
#include "preload/choose.h"
#include "preload/epoll.h"
#include "preload/dialogue.h"
#include "preload/fdtab.h"
#include "preload/hooks.h"
#include "preload/libc.h"
#include "preload/log.h"
#include "preload/metrics.h"
#include "preload/names.h"
#include "preload/peer.h"
#include "preload/precopy.h"
#include "preload/proxy_names.h"
#include "preload/routes.h"
#include "preload/shim.h"
#include "preload/stats.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Address, port and text of a destination. */
struct dest {
	int family;
	uint8_t addr[16];
	uint16_t port;
	char addr_text[INET6_ADDRSTRLEN];
};

static int parse_dest(const struct sockaddr *sa, socklen_t len, struct dest *d)
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		d->family = AF_INET;
		memcpy(d->addr, &in->sin_addr, 4);
		d->port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		d->family = AF_INET6;
		memcpy(d->addr, &in6->sin6_addr, 16);
		d->port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) { /* the JVM's way of writing 10.1.2.3 */
			d->family = AF_INET;
			memmove(d->addr, d->addr + 12, 4);
		}
	} else {
		return -1;
	}
	inet_ntop(d->family, d->addr, d->addr_text, sizeof(d->addr_text));
	return 0;
}

static bool is_tcp_stream(int fd)
{
	/* SO_PROTOCOL says TCP (or MPTCP) only for stream sockets: one call answers both questions. */
	int proto = 0;
	socklen_t len = sizeof(proto);
	if (libc.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) != 0) {
		int type = 0; /* kernels before 2.6.32 have no SO_PROTOCOL */
		len = sizeof(type);
		return libc.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
	}
	return proto == IPPROTO_TCP || proto == 262 /* IPPROTO_MPTCP */;
}

/* proxy=: the proxy's address, of the socket's own family (an IPv4 proxy from an IPv6 socket as a mapped
 * address). A name is resolved with no lock held and cached (proxy_names.c). 0, or -1 with err. */
static int resolve_proxy(int fd, const struct policy_tls_opts *o, struct sockaddr_storage *out,
			 socklen_t *out_len, char *err, size_t errlen)
{
	int domain = AF_INET;
	socklen_t dl = sizeof(domain);
	libc.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl);
	struct proxy_addrs pa;
	if (proxy_names_lookup(o->proxy_host, &pa, err, errlen) != 0)
		return -1;
	int same = -1, v4 = -1;
	for (int i = 0; i < pa.n; i++) {
		if (pa.family[i] == domain && same < 0)
			same = i;
		if (pa.family[i] == AF_INET && v4 < 0)
			v4 = i;
	}
	memset(out, 0, sizeof(*out));
	uint16_t port = htons(o->proxy_port);
	if (same >= 0 && domain == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)out;
		in->sin_family = AF_INET;
		in->sin_port = port;
		memcpy(&in->sin_addr, pa.addr[same], 4);
		*out_len = sizeof(*in);
	} else if (domain == AF_INET6 && (same >= 0 || v4 >= 0)) {
		struct sockaddr_in6 *m = (struct sockaddr_in6 *)out;
		m->sin6_family = AF_INET6;
		m->sin6_port = port;
		if (same >= 0) {
			memcpy(&m->sin6_addr, pa.addr[same], 16);
		} else {
			m->sin6_addr.s6_addr[10] = m->sin6_addr.s6_addr[11] = 0xff;
			memcpy(&m->sin6_addr.s6_addr[12], pa.addr[v4], 4);
		}
		*out_len = sizeof(*m);
	} else {
		snprintf(err, errlen, "the proxy %s has no %s address (the program's socket is %s)",
			 o->proxy_host, domain == AF_INET6 ? "IPv6" : "IPv4",
			 domain == AF_INET6 ? "IPv6" : "IPv4");
		return -1;
	}
	return 0;
}

static int connect_existing(struct conn *c, int fd)
{
	int e;
	if (conn_get_state(c) == CONN_CONNECTING)
		conn_progress(c, fd);
	switch (conn_get_state(c)) {
	case CONN_CONNECTING:
		e = EALREADY;
		break;
	case CONN_ESTABLISHED:
		e = EISCONN;
		break;
	case CONN_FAILED:
		e = c->fail_errno ? c->fail_errno : ECONNREFUSED;
		break;
	default:
		e = EBADF;
		break;
	}
	conn_put(c);
	errno = e;
	return -1;
}

/* The TLS connect did not happen: fd (and the copies precopy_attach gave c, when copies) is a plain,
 * unconnected socket again. Drops the caller's reference; returns -1 with errno kept. */
static int back_to_plain(struct conn *c, int fd, bool copies)
{
	int e = errno;
	if (copies)
		precopy_undo(c, fd);
	struct conn *taken = fdtab_take(fd);
	if (taken)
		conn_detach_fd(taken, -1);
	conn_put(c);
	errno = e;
	return -1;
}

static int connect_tls(int fd, const struct sockaddr *sa, socklen_t salen, const struct policy_rule *rule,
		       const struct dest *d, const char *remembered)
{
	if (child_shares_parent_memory()) { /* a new session would be written into the parent's state */
		log_msg(
		    LOG_ERROR,
		    "%s:%u: a TLS connect in a child that shares its parent's memory (vfork, "
		    "clone(CLONE_VM)) "
		    "or was made without fork handlers (_Fork, syscall(SYS_fork)) is refused with EACCES; "
		    "connect in the parent, or use fork()",
		    d->addr_text, d->port);
		errno = EACCES;
		return -1;
	}
	struct peer_id peer;
	peer_for_rule(rule, remembered, d->family, d->addr, &peer);
	const char *name = peer.name, *sni = peer.sni;

	struct conn *c = conn_new(rule);
	if (!c) {
		log_msg(LOG_ERROR, "%s:%u: out of memory for a TLS connection; refusing to connect",
			d->addr_text, d->port);
		errno = ENOMEM;
		return -1;
	}
	if (name)
		snprintf(c->dest, sizeof(c->dest), "%s:%u (%s)", name, d->port, d->addr_text);
	else
		snprintf(c->dest, sizeof(c->dest), "%s%s%s:%u", d->family == AF_INET6 ? "[" : "",
			 d->addr_text, d->family == AF_INET6 ? "]" : "", d->port);

	stats_add(rule, STATS_OUTBOUND, STATS_CONNECTIONS, 1);
	metrics_tick(); /* no lock held here: the periodic metrics file rides on connects */
	log_event(LOG_INFO, "connect", fd, c->dest, rule->source, rule->line, "");
	char err[400];
	void *ctx = shim_rule_ctx(rule, err, sizeof(err));
	if (!ctx) {
		log_msg(LOG_ERROR, "%s: cannot set up TLS: %s (rule %s:%u)", c->dest, err, rule->source,
			rule->line);
		stats_failure(rule, STATS_OUTBOUND, STATS_REASON_SETUP);
		conn_put(c);
		errno = ECONNREFUSED;
		return -1;
	}
	struct sockaddr_storage proxy_sa;
	socklen_t proxy_len = 0;
	if (rule->tls.starttls != POLICY_STARTTLS_NONE || rule->tls.proxy != POLICY_PROXY_NONE) {
		/* File and DNS work (proxy-user-file=, the proxy's name) before any lock or table entry. */
		struct dialogue_target t = {.name = name, .family = d->family, .port = d->port};
		memcpy(t.addr, d->addr, sizeof(t.addr));
		c->dlg = dialogue_new(&rule->tls, &t, err, sizeof(err));
		if (c->dlg && rule->tls.proxy != POLICY_PROXY_NONE &&
		    resolve_proxy(fd, &rule->tls, &proxy_sa, &proxy_len, err, sizeof(err)) != 0) {
			dialogue_free(c->dlg);
			c->dlg = NULL;
		}
		if (!c->dlg) {
			log_msg(LOG_ERROR, "%s: %s (rule %s:%u); refusing to connect", c->dest, err,
				rule->source, rule->line);
			conn_put(c);
			errno = ECONNREFUSED;
			return -1;
		}
		if (proxy_len)
			dialogue_set_peer(c->dlg, sa, salen);
	}
	stdio_flush_std_fd(fd);
	if (conn_attach_fd(c, fd) != 0) {
		log_msg(LOG_ERROR, "%s: fd %d cannot be tracked (%s); refusing to connect", c->dest, fd,
			strerror(errno));
		conn_put(c);
		errno = EMFILE;
		return -1;
	}
	int copies = precopy_attach(c, fd); /* copies made before connect() share c, before any byte */
	if (copies < 0)
		return back_to_plain(c, fd, true);
	stdio_adopt_std_fd(fd); /* a TLS socket on fd 0, 1 or 2: stdio must go through TLS too */
	int fl = libc.fcntl(fd, F_GETFL);
	bool nonblocking = fl >= 0 && (fl & O_NONBLOCK);
	/* With proxy=, the TCP connection goes to the proxy (never matched against the policy again). */
	int ret = proxy_len ? libc.connect(fd, (const struct sockaddr *)&proxy_sa, proxy_len)
			    : libc.connect(fd, sa, salen);
	bool tcp_pending = false;
	if (ret != 0 && (errno == EINPROGRESS || errno == EINTR)) {
		tcp_pending = true;
		ret = 0;
	}
	if (ret != 0) /* TCP itself failed: the socket goes back to being a plain one, as it was */
		return back_to_plain(c, fd, copies > 0);
	if (conn_begin(c, fd, name, sni, peer.family, peer.addr, ctx, tcp_pending) != 0) {
		conn_put_keep_errno(c);
		return -1;
	}
	epoll_adopt_fd(fd); /* registrations made while it was a plain socket (nginx's upstreams) */
	if (nonblocking) {
		/* Asynchronous, as for plain TCP: the handshake advances as the program polls, and the socket
		 * turns writable (or reports SO_ERROR) only when it is done. */
		conn_progress(c, fd); /* sends the ClientHello now; whatever happens is reported later */
		conn_put(c);
		errno = EINPROGRESS;
		return -1;
	}
	ret = conn_finish(c, fd);
	conn_put_keep_errno(c);
	int e = errno;
	metrics_tick(); /* the handshake's outcome, no lock held */
	errno = e;
	return ret;
}

int hook_connect(int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct dest d;
	if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) || parse_dest(sa, salen, &d) != 0)
		return libc.connect(fd, sa, salen);
	struct conn *existing = conn_get(fd);
	if (existing && child_shares_parent_memory()) {
		conn_put(existing);
		return child_refuse(fd, "connect");
	}
	if (existing)
		return connect_existing(existing, fd);
	if (!is_tcp_stream(fd)) /* UDP and the rest: only deny applies (udp.c) */
		return udp_check_dest(fd, sa, salen) == 0 ? libc.connect(fd, sa, salen) : -1;
	shim_init();
	if (audit_on()) /* TLSSHIM_MODE=audit: log what the policy would do, then connect untouched */
		return audit_connect(fd, sa, salen, d.family, d.addr, d.port, d.addr_text);
	if (!shim_policy_ok()) {
		log_msg(LOG_ERROR, "%s:%u: refused: the policy did not load (see the first message); fix it",
			d.addr_text, d.port);
		errno = EACCES;
		return -1;
	}
	struct choice ch;
	choose_dest(CHOOSE_CONNECT, sa, d.family, d.addr, d.port, &ch);
	if (ch.refused) { /* several resolved names leave the rule or the name to verify open */
		log_msg(LOG_ERROR, "%s%s%s:%u: %s", d.family == AF_INET6 ? "[" : "", d.addr_text,
			d.family == AF_INET6 ? "]" : "", d.port, ch.reason);
		errno = EACCES;
		return -1;
	}
	const char *remembered = ch.name;
	const struct policy_rule *rule = ch.rule;
	if (!rule || rule->action == POLICY_PLAIN) {
		if (log_enabled(LOG_DEBUG))
			log_msg(LOG_DEBUG, "%s:%u (%s): plain (%s)", remembered[0] ? remembered : d.addr_text,
				d.port, d.addr_text, rule ? "rule" : "no rule matches");
		fdtab_replace(fd, &conn_unclassified, NULL); /* decided here: plain (inherit.h) */
		precopy_forget(fd);
		return libc.connect(fd, sa, salen);
	}
	if (rule->action == POLICY_DENY) {
		log_msg(LOG_ERROR, "%s:%u (%s): denied by rule %s:%u; change the policy to allow it",
			remembered[0] ? remembered : d.addr_text, d.port, d.addr_text, rule->source,
			rule->line);
		errno = EACCES;
		return -1;
	}
	return connect_tls(fd, sa, salen, rule, &d, remembered);
}

int connect_check_fastopen(int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct dest d;
	if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) || parse_dest(sa, salen, &d) != 0 ||
	    !is_tcp_stream(fd))
		return 1;
	shim_init();
	if (audit_on())
		return 1; /* observe only */
	if (!shim_policy_ok()) {
		errno = EACCES;
		return -1;
	}
	struct choice ch;
	choose_dest(CHOOSE_CONNECT, sa, d.family, d.addr, d.port, &ch);
	if (ch.refused) {
		log_msg(LOG_ERROR, "%s%s%s:%u: %s", d.family == AF_INET6 ? "[" : "", d.addr_text,
			d.family == AF_INET6 ? "]" : "", d.port, ch.reason);
		errno = EACCES;
		return -1;
	}
	const struct policy_rule *rule = ch.rule;
	if (!rule || rule->action == POLICY_PLAIN)
		return 1;
	if (rule->action == POLICY_DENY) {
		errno = EACCES;
		return -1;
	}
	log_msg(LOG_ERROR,
		"%s:%u: TCP Fast Open (MSG_FASTOPEN) would send data before the TLS handshake; "
		"refused with EOPNOTSUPP; turn Fast Open off in the program",
		d.addr_text, d.port);
	errno = EOPNOTSUPP;
	return -1;
}

EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	libc_ensure();
	return hook_connect(fd, CONST_SOCKADDR_PTR(addr), len);
}

/* getpeername: a TLS socket tunnelled through proxy= is connected to the proxy, but the program
 * connected to the destination and must see it. Every other socket: the kernel's answer. */
EXPORT int getpeername(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
	libc_ensure();
	struct sockaddr *sa = SOCKADDR_PTR(addr);
	int ret = libc.getpeername(fd, sa, len);
	if (ret != 0 || !fdtab_load(fd) || child_shares_parent_memory())
		return ret; /* in a vfork child: the kernel's answer (the proxy's address with proxy=) */
	struct conn *c = conn_get(fd);
	if (!c)
		return ret;
	conn_lock(c);
	dialogue_peer(c->dlg, sa, len);
	conn_unlock(c);
	conn_put(c);
	return 0;
}
