/* serve_accept.c: the listen(), accept() and accept4() hooks (see serve.h).
 *  - listen(): with a policy that does not parse, TCP listen fails with EACCES (never a plaintext
 *    listener where TLS may have been meant). On a served listener the key material of every serve rule
 *    that can match it is loaded now, before a daemon drops its privileges.
 *  - accept()/accept4(): the real call first; with no serve rule in the policy that is all (one load).
 *    Otherwise the accepted socket's local address picks its candidates: none on a served listener:
 *    closed (one rate-limited line, ECONNABORTED, which servers retry); plain-from= peer: left plain;
 *    key material missing: closed (ECONNABORTED). Else it becomes a server connection whose handshake
 *    runs from the program's first read, write or poll; accept itself never waits. */
#include "preload/precopy.h"
#include "preload/conn.h"
#include "preload/fdtab.h"
#include "preload/hooks.h"
#include "preload/libc.h"
#include "preload/log.h"
#include "preload/serve.h"
#include "preload/shim.h"
#include "preload/stats.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "preload/audit.h"

/* Set once by serve_rules_init (pthread_once) after the policy loaded; read-only afterwards. */
static bool have_serve_rules;
static pthread_once_t serve_rules_once = PTHREAD_ONCE_INIT;

static void serve_rules_init(void)
{
	shim_init();
	const struct policy *p = shim_policy();
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].action == POLICY_SERVE)
			have_serve_rules = true;
	if (have_serve_rules)
		serve_tickets_init(); /* before any worker forks: they share the secret */
}

static bool policy_serves(void)
{
	pthread_once(&serve_rules_once, serve_rules_init);
	return have_serve_rules || !shim_policy_ok();
}

struct sockname {
	int family;
	uint8_t addr[16];
	uint16_t port;
};

static int get_name(int fd, bool peer, struct sockname *n)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if ((peer ? libc.getpeername(fd, (struct sockaddr *)&ss, &len)
		  : getsockname(fd, (struct sockaddr *)&ss, &len)) != 0)
		return -1;
	memset(n, 0, sizeof(*n));
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		n->family = AF_INET;
		memcpy(n->addr, &in->sin_addr, 4);
		n->port = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
		n->family = AF_INET6;
		memcpy(n->addr, &in6->sin6_addr, 16);
		n->port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			n->family = AF_INET;
			memmove(n->addr, n->addr + 12, 4);
		}
	} else {
		return -1;
	}
	return 0;
}

static void name_text(const struct sockname *n, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(n->family, n->addr, a, sizeof(a));
	snprintf(buf, len, n->family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, n->port);
}

static bool is_tcp(int fd)
{
	int proto = 0;
	socklen_t len = sizeof(proto);
	return libc.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 &&
	       (proto == IPPROTO_TCP || proto == 262 /* MPTCP */);
}

/* At most one line a second for refusals a client can trigger at will. */
static _Atomic long long last_refusal_line_s;
static _Atomic unsigned long refusals_unlogged;

static bool refusal_line_allowed(unsigned long *suppressed)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long now = ts.tv_sec, last = atomic_load(&last_refusal_line_s);
	if (now != last && atomic_compare_exchange_strong(&last_refusal_line_s, &last, now)) {
		*suppressed = atomic_exchange(&refusals_unlogged, 0);
		return true;
	}
	atomic_fetch_add(&refusals_unlogged, 1);
	return false;
}

/* ---- listen ---- */

EXPORT int listen(int fd, int backlog)
{
	libc_ensure();
	precopy_forget(fd); /* a listener never becomes a TLS client connection */
	if (audit_on() || !policy_serves() || !is_tcp(fd)) /* audit mode observes accepts only */
		return libc.listen(fd, backlog);
	if (!shim_policy_ok()) {
		log_msg(LOG_ERROR,
			"listen on fd %d refused: the policy did not load (see the first message); fix it",
			fd);
		errno = EACCES;
		return -1;
	}
	struct sockname n;
	if (get_name(fd, false, &n) == 0) {
		int v6only = 0;
		socklen_t len = sizeof(v6only);
		if (n.family == AF_INET6)
			libc.getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len);
		const struct policy *p = shim_policy();
		/* Load now what any rule that can match this listener needs: a daemon may drop its privileges
		 * right after listen(). A failure is reported here and again (rate-limited) at each accept.
		 */
		for (size_t i = 0; i < p->n_rules; i++) {
			const struct policy_rule *r = &p->rules[i];
			struct policy one = {.rules = (struct policy_rule *)r, .n_rules = 1};
			if (r->action != POLICY_SERVE ||
			    !policy_serve_listener(&one, n.family, n.addr, n.port, v6only,
						   resolve_rule_name_has_addr, NULL))
				continue;
			char err[400], where[80];
			name_text(&n, where, sizeof(where));
			WOLFSSL_CTX *ctx = serve_keys_get(r, err, sizeof(err));
			if (!ctx)
				log_msg(LOG_ERROR,
					"listener %s: serve rule %s:%u cannot load its key material: %s; its "
					"connections will be closed at accept",
					where, r->source, r->line, err);
			else
				log_msg(LOG_DEBUG, "listener %s: served by rule %s:%u", where, r->source,
					r->line);
			serve_keys_put(ctx);
		}
	}
	return libc.listen(fd, backlog);
}

/* ---- accept ---- */

/* Closes an accepted socket the shim will not hand over. */
static int drop_accepted(int nfd)
{
	libc.close(nfd);
	errno = ECONNABORTED;
	return -1;
}

/* What to do with a freshly accepted (or inherited) socket: 1 adopted as TLS, 0 plain, -1 drop.
 * listen_fd: the listener (-1: inherited, no listener to ask). */
void serve_state_free(struct serve_state *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < SERVE_MAX_CANDIDATES; i++)
		serve_keys_put(s->ctxs[i]);
	free(s);
}

static int adopt(int nfd, int listen_fd)
{
	struct sockname local, peer;
	if (get_name(nfd, false, &local) != 0 || get_name(nfd, true, &peer) != 0)
		return 0; /* not an IP socket */
	char ltext[80], ptext[80];
	name_text(&local, ltext, sizeof(ltext));
	name_text(&peer, ptext, sizeof(ptext));
	unsigned long suppressed = 0;
	if (!shim_policy_ok()) {
		if (refusal_line_allowed(&suppressed))
			log_msg(LOG_ERROR,
				"client %s -> %s: closed: the policy did not load (see the first message)%s",
				ptext, ltext, suppressed ? " (and more since the last line)" : "");
		return -1;
	}
	struct policy_dest d = {.family = local.family, .addr = local.addr, .port = local.port};
	struct serve_state *s = calloc(1, sizeof(*s));
	if (!s) {
		log_msg(LOG_ERROR, "client %s -> %s: closed: out of memory", ptext, ltext);
		return -1;
	}
	s->n_cands = policy_serve_candidates(shim_policy(), &d, resolve_rule_name_has_addr, NULL, s->cands,
					     SERVE_MAX_CANDIDATES);
	if (s->n_cands > SERVE_MAX_CANDIDATES)
		s->n_cands = SERVE_MAX_CANDIDATES;
	if (s->n_cands == 0) {
		serve_state_free(s);
		struct sockname ln;
		bool served = false;
		if (listen_fd >= 0 && get_name(listen_fd, false, &ln) == 0) {
			int v6only = 0;
			socklen_t len = sizeof(v6only);
			if (ln.family == AF_INET6)
				libc.getsockopt(listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len);
			served = policy_serve_listener(shim_policy(), ln.family, ln.addr, ln.port, v6only,
						       resolve_rule_name_has_addr, NULL);
		}
		if (!served)
			return 0;
		if (refusal_line_allowed(&suppressed))
			log_msg(LOG_WARN,
				"client %s -> %s: closed at accept: no serve rule matches this local address "
				"on a "
				"served listener (never served in plaintext); add a serve rule for it%s",
				ptext, ltext, suppressed ? " (more since the last line)" : "");
		return -1;
	}
	const struct policy_rule *def = s->cands[0];
	if (policy_serve_plain_from(&def->tls.serve, peer.family, peer.addr)) {
		serve_state_free(s);
		log_msg(LOG_DEBUG, "client %s -> %s: plain (plain-from= of rule %s:%u)", ptext, ltext,
			def->source, def->line);
		return 0;
	}
	char err[400] = "";
	for (size_t i = 0; i < s->n_cands; i++)
		s->ctxs[i] = serve_keys_get(s->cands[i], err, sizeof(err));
	if (!s->ctxs[0]) {
		serve_state_free(s);
		if (refusal_line_allowed(&suppressed))
			log_msg(LOG_ERROR,
				"client %s -> %s: closed at accept (ECONNABORTED): serve rule %s:%u cannot "
				"load its "
				"key material: %s%s",
				ptext, ltext, def->source, def->line, err,
				suppressed ? " (more since the last line)" : "");
		return -1;
	}
	struct conn *c = conn_new(def);
	if (!c) {
		serve_state_free(s);
		log_msg(LOG_ERROR, "client %s -> %s: closed: out of memory for a TLS connection", ptext,
			ltext);
		return -1;
	}
	snprintf(s->peer, sizeof(s->peer), "%s", ptext);
	snprintf(c->dest, sizeof(c->dest), "client %s -> %s", ptext, ltext);
	if (conn_attach_fd(c, nfd) != 0) {
		serve_state_free(s);
		log_msg(LOG_ERROR, "%s: fd %d cannot be tracked (%s); closed", c->dest, nfd, strerror(errno));
		conn_put(c);
		return -1;
	}
	conn_begin_server(c, nfd, s);
	stats_add(def, STATS_INBOUND, STATS_CONNECTIONS, 1);
	log_event(LOG_INFO, "accept", nfd, c->dest, def->source, def->line, "\"role\":\"server\"");
	log_msg(LOG_DEBUG, "%s: accepted for TLS (rule %s:%u)", c->dest, def->source, def->line);
	conn_put(c);
	return 1;
}

static int accepted(int listen_fd, int nfd)
{
	if (nfd < 0)
		return nfd;
	if (fdtab_load(nfd))
		close_forget_stale(nfd);
	if (__builtin_expect(audit_on(), 0)) { /* TLSSHIM_MODE=audit: log, change nothing */
		audit_accept(nfd);
		return nfd;
	}
	if (__builtin_expect(!policy_serves(), 1))
		return nfd;
	int e = errno;
	int r = adopt(nfd, listen_fd);
	if (r < 0)
		return drop_accepted(nfd);
	errno = e;
	return nfd;
}

int serve_adopt_inherited(int fd)
{
	if (audit_on() || !policy_serves() || fdtab_load(fd) || !is_tcp(fd))
		return 0;
	int r = adopt(fd, -1);
	if (r < 0)
		libc.shutdown(fd, SHUT_RDWR); /* never plaintext on it */
	return r;
}

EXPORT int accept(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
	libc_ensure();
	cork_release_pending();
	return accepted(fd, libc.accept(fd, SOCKADDR_PTR(addr), len));
}

EXPORT int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *len, int flags)
{
	libc_ensure();
	cork_release_pending();
	return accepted(fd, libc.accept4(fd, SOCKADDR_PTR(addr), len, flags));
}
