/* SPDX-License-Identifier: GPL-2.0-or-later */
/* audit.c: see audit.h. The per-destination table is small and bounded (AUDIT_MAX_DESTS; later
 * destinations are still logged, only not summarised) and guarded by a spin flag held for a few memory
 * operations only, never across I/O; a fork child starts with an empty table. */
#include "preload/audit.h"
#include "preload/choose.h"
#include "preload/hooks.h"
#include "preload/libc.h"
#include "preload/log.h"
#include "preload/names.h"
#include "preload/shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#define AUDIT_MAX_DESTS 256

struct audit_dest {
	char dest[64];			/* "127.0.0.1:8443" or "[::1]:8443" */
	char name[NAMES_MAX_LEN + 1];	/* the name the program resolved, or "" */
	const struct policy_rule *rule; /* the rule that would match, or NULL */
	bool refused;			/* enforcing would refuse it: several resolved names (choose.h) */
	unsigned long count;
};

/* audit_mode and audit_fd are set once by audit_init (inside the library's pthread_once) and read-only
 * afterwards. dests/n_dests are guarded by table_busy (a spin flag held for memory operations only);
 * the fork child handler empties the table while the child has one thread. */
static bool audit_mode;
static int audit_fd = -1; /* TLSSHIM_AUDIT_FILE, opened O_APPEND */
static atomic_flag table_busy = ATOMIC_FLAG_INIT;
static struct audit_dest dests[AUDIT_MAX_DESTS];
static size_t n_dests;
static _Atomic unsigned long dropped;

static void audit_after_fork_child(void)
{
	n_dests = 0;
	atomic_store(&dropped, 0);
	atomic_flag_clear(&table_busy);
}

void audit_init(void)
{
	const char *m = secure_getenv("TLSSHIM_MODE");
	if (!m || !*m || strcmp(m, "enforce") == 0)
		return;
	if (strcmp(m, "audit") != 0) {
		log_msg(LOG_ERROR,
			"TLSSHIM_MODE=%s is not a mode; use audit or enforce (enforcing the policy)", m);
		return;
	}
	audit_mode = true;
	const char *f = secure_getenv("TLSSHIM_AUDIT_FILE");
	if (f && *f) {
		audit_fd = open(f, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (audit_fd < 0)
			log_msg(LOG_WARN, "TLSSHIM_AUDIT_FILE=%s: %s; audit lines go to the log only", f,
				strerror(errno));
	}
	pthread_atfork(NULL, NULL, audit_after_fork_child);
	log_msg(LOG_INFO, "audit mode (TLSSHIM_MODE=audit): connections are only observed, the policy is not "
			  "enforced");
}

bool audit_on(void)
{
	return audit_mode;
}

static const char *action_name(const struct policy_rule *r)
{
	if (!r || r->action == POLICY_PLAIN)
		return "plain";
	return r->action == POLICY_DENY ? "deny" : "tls";
}

static void rule_where(const struct policy_rule *r, char *out, size_t len)
{
	if (r)
		snprintf(out, len, "%s:%u", r->source, r->line);
	else
		snprintf(out, len, "none");
}

static void remember(const char *dest, const char *name, const struct policy_rule *rule, bool refused)
{
	while (atomic_flag_test_and_set_explicit(&table_busy, memory_order_acquire))
		;
	size_t i;
	for (i = 0; i < n_dests; i++)
		if (strcmp(dests[i].dest, dest) == 0 && strcmp(dests[i].name, name) == 0)
			break;
	if (i == n_dests && n_dests < AUDIT_MAX_DESTS) {
		snprintf(dests[i].dest, sizeof(dests[i].dest), "%s", dest);
		snprintf(dests[i].name, sizeof(dests[i].name), "%s", name);
		dests[i].count = 0;
		n_dests++;
	}
	if (i < n_dests) {
		dests[i].rule = rule;
		dests[i].refused = refused;
		dests[i].count++;
	} else {
		atomic_fetch_add(&dropped, 1);
	}
	atomic_flag_clear_explicit(&table_busy, memory_order_release);
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		long n = syscall(SYS_write, fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

int audit_connect(int fd, const struct sockaddr *sa, socklen_t salen, int family, const uint8_t *addr,
		  uint16_t port, const char *addr_text)
{
	int saved = errno;
	/* What enforcing would choose (choose.h), including its refusal when resolved names leave it open. */
	struct choice ch = {.name = ""};
	const char *name = ch.name;
	const struct policy_rule *rule = NULL;
	bool policy_ok = shim_policy_ok();
	if (policy_ok) {
		choose_dest(CHOOSE_CONNECT, sa, family, addr, port, &ch);
		rule = ch.rule;
	}
	const char *action = !policy_ok	  ? "refused-policy-error"
			     : ch.refused ? "refused-names"
					  : action_name(rule);
	char note[1500] = "";
	if (!policy_ok)
		snprintf(note, sizeof(note),
			 " (the policy does not load: enforcing would refuse every connect)");
	else if (ch.refused)
		snprintf(note, sizeof(note), " (enforcing would refuse: %s)", ch.reason);
	char dest[64], where[600], line[2400];
	snprintf(dest, sizeof(dest), "%s%s%s:%u", family == AF_INET6 ? "[" : "", addr_text,
		 family == AF_INET6 ? "]" : "", port);
	rule_where(rule, where, sizeof(where));
	/* Fixed field order; the rule (a file name may hold spaces) is the rest of the line. */
	int n = snprintf(line, sizeof(line),
			 "tlsshim: audit: connect dest=%s name=%s action=%s pid=%d rule=%s%s\n", dest,
			 name[0] ? name : "-", action, (int)getpid(), where, note);
	if (n > 0) {
		size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
		log_raw(line, len);
		if (audit_fd >= 0)
			write_all(audit_fd, line, len);
	}
	remember(dest, name, rule, ch.refused);
	errno = saved;
	return libc.connect(fd, sa, salen);
}

static int sock_text(int fd, bool peer, int *family, uint8_t *addr, uint16_t *port, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if ((peer ? libc.getpeername(fd, (struct sockaddr *)&ss, &sl)
		  : getsockname(fd, (struct sockaddr *)&ss, &sl)) != 0)
		return -1;
	char a[INET6_ADDRSTRLEN];
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		*family = AF_INET;
		memcpy(addr, &in->sin_addr, 4);
		*port = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
		*family = AF_INET6;
		memcpy(addr, &in6->sin6_addr, 16);
		*port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			*family = AF_INET;
			memmove(addr, addr + 12, 4);
		}
	} else {
		return -1;
	}
	inet_ntop(*family, addr, a, sizeof(a));
	snprintf(out, len, "%s%s%s:%u", *family == AF_INET6 ? "[" : "", a, *family == AF_INET6 ? "]" : "",
		 *port);
	return 0;
}

void audit_accept(int fd)
{
	int saved = errno, lfam, pfam;
	uint8_t laddr[16], paddr[16];
	uint16_t lport, pport;
	char local[64], peer[64], where[600], line[1200];
	if (sock_text(fd, false, &lfam, laddr, &lport, local, sizeof(local)) != 0 ||
	    sock_text(fd, true, &pfam, paddr, &pport, peer, sizeof(peer)) != 0) {
		errno = saved;
		return; /* not an IP socket */
	}
	const struct policy_rule *cands[4];
	size_t n = 0;
	bool policy_ok = shim_policy_ok();
	if (policy_ok) {
		struct policy_dest d = {.family = lfam, .addr = laddr, .port = lport};
		n = policy_serve_candidates(shim_policy(), &d, resolve_rule_name_has_addr, NULL, cands, 4);
	}
	rule_where(n ? cands[0] : NULL, where, sizeof(where));
	int len = snprintf(line, sizeof(line),
			   "tlsshim: audit: accept local=%s peer=%s action=%s pid=%d rule=%s\n", local, peer,
			   !policy_ok ? "refused-policy-error"
			   : n	      ? "serve"
				      : "plain",
			   (int)getpid(), where);
	if (len > 0) {
		size_t l = (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1;
		log_raw(line, l);
		if (audit_fd >= 0)
			write_all(audit_fd, line, l);
	}
	errno = saved;
}

void audit_at_exit(void)
{
	if (!audit_mode || n_dests == 0)
		return;
	char line[1200], where[600];
	int n =
	    snprintf(line, sizeof(line),
		     "tlsshim: audit: summary: pid %d: %zu destinations (nothing was changed; `tlsshim audit "
		     "--from LOG` turns the connect lines into a policy)\n",
		     (int)getpid(), n_dests);
	log_raw(line, (size_t)n);
	for (size_t i = 0; i < n_dests; i++) {
		rule_where(dests[i].rule, where, sizeof(where));
		n = snprintf(
		    line, sizeof(line),
		    "tlsshim: audit: summary: %s%s%s%s: %lu connects, would %s (rule %s)\n",
		    dests[i].name[0] ? dests[i].name : dests[i].dest, dests[i].name[0] ? " (" : "",
		    dests[i].name[0] ? dests[i].dest : "", dests[i].name[0] ? ")" : "", dests[i].count,
		    dests[i].refused ? "refuse (several resolved names)" : action_name(dests[i].rule), where);
		if (n > 0)
			log_raw(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	}
	if (atomic_load(&dropped))
		log_msg(LOG_WARN, "audit: %lu connects to further destinations are not in the summary",
			atomic_load(&dropped));
}
