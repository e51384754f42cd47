/* inherit.c: sockets that come from outside the process (inherited at load, SCM_RIGHTS) and
 * TLS fds that must not leave it (SCM_RIGHTS). See inherit.h. */
#include "preload/inherit.h"
#include "preload/child.h"
#include "preload/hooks.h"
#include "preload/log.h"
#include "preload/precopy.h"
#include "preload/serve.h"
#include "preload/shim.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* The sentinels (conn.h): never freed, never attached as sessions; their references never reach zero. */
struct conn conn_unclassified = {
    .refs = 1 << 30,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .state = CONN_CLOSED,
    .io_fd = -1,
};
struct conn conn_inherited_tls = {
    .refs = 1 << 30,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .state = CONN_CLOSED, /* every data call: EBADF (conn.c dead_errno) */
    .io_fd = -1,
};

/* An IP address and port of a socket, IPv4-mapped IPv6 taken as IPv4 (as the policy matches it). */
struct sock_end {
	int family;
	uint8_t addr[16];
	uint16_t port;
	char text[INET6_ADDRSTRLEN + 8];
};

static bool sock_end_of(const struct sockaddr_storage *ss, struct sock_end *e)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		e->family = AF_INET;
		memcpy(e->addr, &in->sin_addr, 4);
		e->port = ntohs(in->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		e->family = AF_INET6;
		memcpy(e->addr, &in6->sin6_addr, 16);
		e->port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			e->family = AF_INET;
			memmove(e->addr, e->addr + 12, 4);
		}
	} else {
		return false;
	}
	char a[INET6_ADDRSTRLEN];
	inet_ntop(e->family, e->addr, a, sizeof(a));
	snprintf(e->text, sizeof(e->text), e->family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, e->port);
	return true;
}

/* A connected TCP socket: its local and peer ends. */
static bool connected_tcp(int fd, struct sock_end *local, struct sock_end *peer)
{
	int proto = 0;
	socklen_t len = sizeof(proto);
	if (libc.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) != 0 ||
	    (proto != IPPROTO_TCP && proto != 262 /* IPPROTO_MPTCP */))
		return false;
	struct sockaddr_storage ss;
	len = sizeof(ss);
	if (libc.getpeername(fd, (struct sockaddr *)&ss, &len) != 0 || !sock_end_of(&ss, peer))
		return false;
	len = sizeof(ss);
	return getsockname(fd, (struct sockaddr *)&ss, &len) == 0 && sock_end_of(&ss, local);
}

/* The server side's branch, taken when the socket arrives, before it is marked: a serve rule for its
 * local address makes it a TLS server connection (inetd, systemd Accept=yes, a socket passed in).
 * True when the server side took it (or shut it down: it must not be used in clear). */
static bool handed_to_server_side(int fd)
{
	return serve_adopt_inherited(fd) != 0;
}

/* The verdict for a connected TCP socket from outside that no serve rule took: NULL (plain) or
 * &conn_inherited_tls. */
static struct conn *verdict_for(int fd, const struct sock_end *peer)
{
	shim_init();
	if (!shim_policy_ok()) {
		log_msg(
		    LOG_ERROR,
		    "fd %d (a TCP connection to %s made outside this program): refused with EBADF because "
		    "the policy did not load (see the first message); fix it",
		    fd, peer->text);
		return &conn_inherited_tls;
	}
	struct policy_dest pd = {
	    .family = peer->family, .addr = peer->addr, .port = peer->port, .name = NULL};
	const struct policy_rule *rule = policy_match(shim_policy(), &pd, resolve_rule_name_has_addr, NULL);
	if (!rule || rule->action != POLICY_TLS)
		return NULL; /* plain, or deny: deny is for connects this program makes */
	log_msg(LOG_ERROR,
		"fd %d: a TCP connection to %s made outside this program (inherited across exec or passed "
		"in) matches tls rule %s:%u, and a TLS session cannot continue in another program; its reads "
		"and writes fail with EBADF; let this program connect itself",
		fd, peer->text, rule->source, rule->line);
	return &conn_inherited_tls;
}

int inherit_classify(int fd)
{
	if (child_shares_parent_memory())
		return INHERIT_REFUSE;
	struct sock_end local, peer;
	if (!connected_tcp(fd, &local, &peer)) {
		if (precopy_unconnected_tcp(fd))
			return INHERIT_UNCONNECTED; /* not yet: whoever connects it may be elsewhere */
		fdtab_replace(fd, &conn_unclassified, NULL);
		return INHERIT_DONE;
	}
	struct conn *v = verdict_for(fd, &peer);
	fdtab_replace(fd, &conn_unclassified, v); /* lost only to a close or another classification */
	return INHERIT_DONE;
}

void inherit_adopt_fd(int fd)
{
	if (fd < 0 || child_shares_parent_memory())
		return;
	struct sock_end local, peer;
	bool connected = connected_tcp(fd, &local, &peer);
	close_forget_stale(fd); /* the program does not have the number yet: no call can race here */
	if (!connected && !precopy_unconnected_tcp(fd))
		return; /* not a TCP connection: nothing to classify */
	if (connected && handed_to_server_side(fd))
		return;
	struct conn *old = fdtab_store(fd, &conn_unclassified);
	if (old == (struct conn *)-1) { /* cannot be tracked: it must not be usable in clear */
		log_msg(LOG_ERROR,
			"fd %d: a TCP connection from outside cannot be tracked (out of memory); closed", fd);
		libc.close(fd);
		return;
	}
	if (old && !conn_is_sentinel(old))
		conn_detach_fd(old, -1); /* a stale entry: the number is a new file now */
}

void inherit_adopt_received(const struct msghdr *msg)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR((struct msghdr *)msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			inherit_adopt_fd(fd);
		}
	}
}

int inherit_refuse_passing_tls(int fd, const struct msghdr *msg)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR((struct msghdr *)msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int passed;
			memcpy(&passed, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (!fdtab_load(passed))
				continue;
			struct conn *c = conn_get(passed); /* NULL: an inherited socket, classified plain */
			if (!c)
				continue;
			conn_put(c);
			log_msg(LOG_ERROR,
				"fd %d: sending TLS fd %d with SCM_RIGHTS refused with EBADF: the receiver "
				"could not "
				"continue the session and would write plaintext into it; nothing was sent",
				fd, passed);
			errno = EBADF;
			return -1;
		}
	}
	return 0;
}

/* ---- at load: the sockets this image inherited ---- */

static void mark_inherited(int fd)
{
	struct sock_end local, peer;
	if (fd < 0 || fdtab_load(fd))
		return;
	if (connected_tcp(fd, &local, &peer) ? !handed_to_server_side(fd) : precopy_unconnected_tcp(fd))
		fdtab_replace(fd, NULL, &conn_unclassified);
}

/* Without /proc: the open fds below the soft RLIMIT_NOFILE (at most 65536), found with poll (POLLNVAL
 * marks a number that is not open), 1024 at a time. */
static void scan_without_proc(void)
{
	struct rlimit rl;
	long max =
	    getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur : 1024;
	if (max > 65536)
		max = 65536;
	struct pollfd pf[1024];
	for (long base = 0; base < max; base += 1024) {
		int n = (int)(max - base < 1024 ? max - base : 1024);
		for (int i = 0; i < n; i++)
			pf[i] = (struct pollfd){.fd = (int)(base + i), .events = 0};
		if (libc.poll(pf, (nfds_t)n, 0) < 0)
			return;
		for (int i = 0; i < n; i++)
			if (!(pf[i].revents & POLLNVAL))
				mark_inherited(pf[i].fd);
	}
}

static bool policy_wants_scan(void)
{
	if (!shim_policy_ok())
		return true; /* fail closed: every inherited TCP connection is refused */
	const struct policy *p = shim_policy();
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].action == POLICY_TLS || p->rules[i].action == POLICY_SERVE)
			return true;
	return false;
}

/* At load, before main: loads the policy itself (shim_init is idempotent, whichever constructor runs first).
 */
__attribute__((constructor(200))) static void inherit_scan_at_load(void)
{
	libc_resolve();
	shim_init();
	if (!policy_wants_scan())
		return; /* nothing can be TLS: loading the shim changes nothing */
	DIR *d = opendir("/proc/self/fd");
	if (!d) {
		scan_without_proc();
		return;
	}
	int own = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		int fd = atoi(e->d_name);
		if (fd != own)
			mark_inherited(fd);
	}
	closedir(d);
}
