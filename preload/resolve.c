/* resolve.c: the resolver hooks (getaddrinfo, gethostbyname, gethostbyname2 and their _r forms) that
 * teach names.c which name each address came from, and the lookup of a rule's own host name for
 * programs that never ask the resolver (curl's built-in localhost, c-ares). */
#include "preload/ailive.h"
#include "preload/child.h"
#include "preload/forkgate.h"
#include "preload/hooks.h"
#include "preload/log.h"
#include "preload/names.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void remember(const char *name, int family, const void *addr)
{
	if (child_shares_parent_memory()) /* vfork/CLONE_VM: the memory is the parent's, read-only here */
		return;
	char other[NAMES_MAX_LEN + 1];
	size_t n = names_remember(name, family, addr, other, sizeof(other));
	if (n > 1 && other[0] && log_enabled(LOG_INFO)) {
		char text[INET6_ADDRSTRLEN] = "";
		inet_ntop(family, addr, text, sizeof(text));
		log_msg(
		    LOG_INFO,
		    "%s resolves to %s, which %s also resolved to: a connect to it must use the getaddrinfo "
		    "result itself, or match a rule with name= (see \"Which name is verified\")",
		    name, text, other);
	}
}

static void remember_addrinfo(const char *node, const struct addrinfo *res)
{
	if (!node)
		return;
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in))
			remember(node, AF_INET, &((const struct sockaddr_in *)ai->ai_addr)->sin_addr);
		else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6))
			remember(node, AF_INET6, &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
	}
}

static void remember_hostent(const char *name, const struct hostent *h)
{
	if (!name || !h || (h->h_addrtype != AF_INET && h->h_addrtype != AF_INET6))
		return;
	for (char **a = h->h_addr_list; a && *a; a++)
		remember(name, h->h_addrtype, *a);
}

/* A literal address is not a name to remember. */
static bool is_name(const char *node)
{
	struct in6_addr tmp;
	return node && *node && inet_pton(AF_INET, node, &tmp) != 1 && inet_pton(AF_INET6, node, &tmp) != 1;
}

EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res)
{
	libc_ensure();
	int r = libc.getaddrinfo(node, service, hints, res);
	if (r == 0 && is_name(node)) {
		remember_addrinfo(node, *res);
		ailive_track(node, *res);
	}
	return r;
}

EXPORT struct hostent *gethostbyname(const char *name)
{
	libc_ensure();
	struct hostent *h = libc.gethostbyname(name);
	if (is_name(name))
		remember_hostent(name, h);
	return h;
}

EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
	libc_ensure();
	struct hostent *h = libc.gethostbyname2(name, af);
	if (is_name(name))
		remember_hostent(name, h);
	return h;
}

EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
			   struct hostent **result, int *h_errnop)
{
	libc_ensure();
	int r = libc.gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
	if (r == 0 && result && *result && is_name(name))
		remember_hostent(name, *result);
	return r;
}

EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf, size_t buflen,
			    struct hostent **result, int *h_errnop)
{
	libc_ensure();
	int r = libc.gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
	if (r == 0 && result && *result && is_name(name))
		remember_hostent(name, *result);
	return r;
}

/* ---- a rule's own name, resolved lazily and cached ---- */

#define RULE_NAME_SLOTS 16384 /* power of two; more than the distinct names of any sane policy */
#define RULE_NAME_ADDRS 16
#define RULE_NAME_TTL_S 30

struct rule_name {
	char name[NAMES_MAX_LEN + 1]; /* "": empty slot */
	time_t expires;		      /* 0: never looked up (a lookup is in flight) */
	unsigned long pending;	      /* 0, or the forkgate_process_gen() of the thread looking it up now */
	int n;
	int family[RULE_NAME_ADDRS];
	uint8_t addr[RULE_NAME_ADDRS][16];
};

/* Rule host names -> addresses (failures too, so a dead name costs one lookup per TTL), an open-addressed
 * hash table allocated on first use; a slot, once given a name, keeps it. Used on the connect path only,
 * for name rules whose port matched when the program's own resolver answer did not settle the match.
 * When the table is full, a name is looked up every time (correct, only slower).
 *
 * rule_names_lock guards the table and is held only to read or write it, never across the lookup: the
 * thread that finds a name missing or expired marks its slot pending, unlocks, asks DNS, then locks again
 * to store the answer and wakes the threads that wait for that name on rule_names_done (they sleep
 * without the lock). So a slow answer delays only the connects that need that same name, and other names
 * go on. A pending mark from another process generation was set by a thread of the parent, which does not
 * exist in a forked child: the child looks the name up itself. This is the one shim lock outside the fork
 * gate (forkgate.h): nobody calls this with the gate held, and the atfork handlers below keep it
 * consistent across fork. */
static pthread_mutex_t rule_names_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rule_names_done = PTHREAD_COND_INITIALIZER;
static struct rule_name *rule_names;

/* Set while this thread runs the shim's own lookup of a rule name. An NSS module that connects over TCP
 * (DNS over TCP, LDAP, a database) runs inside that lookup and its connect comes back to the shim: that
 * nested connect is matched as usual except that a rule's host name never starts another lookup (it
 * matches the nested connect only through the name memory of what the program itself resolved), so the
 * shim never waits for the lookup it is inside of. Only the owning thread touches it. */
static __thread bool in_rule_lookup;

static void resolve_atfork_prepare(void)
{
	pthread_mutex_lock(&rule_names_lock);
}

static void resolve_atfork_parent(void)
{
	pthread_mutex_unlock(&rule_names_lock);
}

static void resolve_atfork_child(void)
{
	/* The only thread here is the forking one; the waiters were the parent's threads. */
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	rule_names_lock = m;
	rule_names_done = cv;
}

__attribute__((constructor)) static void resolve_init(void)
{
	forkgate_register_leaf(resolve_atfork_prepare, resolve_atfork_parent, resolve_atfork_child);
}

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)((*s >= 'A' && *s <= 'Z') ? *s + 32 : *s)) * 16777619u;
	return h;
}

/* Asks the resolver for name's addresses into e (no lock held). */
static void lookup_rule_name(struct rule_name *e, const char *name)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res = NULL;
	e->n = 0;
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->expires = time(NULL) + RULE_NAME_TTL_S;
	in_rule_lookup = true;
	int r = libc.getaddrinfo(name, NULL, &hints, &res);
	in_rule_lookup = false;
	if (r != 0)
		return;
	for (struct addrinfo *ai = res; ai && e->n < RULE_NAME_ADDRS; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			e->family[e->n] = AF_INET;
			memcpy(e->addr[e->n++], &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
		} else if (ai->ai_family == AF_INET6) {
			e->family[e->n] = AF_INET6;
			memcpy(e->addr[e->n++], &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		}
	}
	freeaddrinfo(res);
}

static bool entry_has_addr(const struct rule_name *e, int family, const uint8_t *addr)
{
	for (int i = 0; i < e->n; i++) {
		if (e->family[i] == family && memcmp(e->addr[i], addr, family == AF_INET ? 4 : 16) == 0)
			return true;
		if (e->family[i] == AF_INET6 && family == AF_INET && /* ::ffff:a.b.c.d */
		    IN6_IS_ADDR_V4MAPPED((struct in6_addr *)e->addr[i]) &&
		    memcmp(e->addr[i] + 12, addr, 4) == 0)
			return true;
	}
	return false;
}

/* The slot for name (found or free), or NULL when the probe window is full. Lock held. */
static struct rule_name *slot_for(const char *name)
{
	if (!rule_names)
		rule_names = calloc(RULE_NAME_SLOTS, sizeof(*rule_names));
	if (!rule_names)
		return NULL;
	uint32_t h = name_hash(name);
	for (uint32_t probe = 0; probe < 64; probe++) {
		struct rule_name *slot = &rule_names[(h + probe) & (RULE_NAME_SLOTS - 1)];
		if (!slot->name[0] || strcasecmp(slot->name, name) == 0)
			return slot;
	}
	return NULL;
}

bool resolve_rule_name_has_addr(void *ctx, const char *name, int family, const uint8_t *addr)
{
	(void)ctx;
	if (in_rule_lookup) /* a connect from inside our own lookup (an NSS module): see in_rule_lookup */
		return false;
	struct rule_name fresh;
	if (child_shares_parent_memory()) { /* vfork/CLONE_VM: no lock, no write to the parent's table */
		lookup_rule_name(&fresh, name);
		return entry_has_addr(&fresh, family, addr);
	}
	unsigned long gen = forkgate_process_gen();
	pthread_mutex_lock(&rule_names_lock);
	struct rule_name *e = slot_for(name);
	if (e && !e->name[0]) {
		snprintf(e->name, sizeof(e->name), "%s", name);
		e->expires = 0;
	}
	while (e && e->pending == gen) /* another thread of this process is asking: wait for its answer */
		pthread_cond_wait(&rule_names_done, &rule_names_lock);
	if (e && e->expires > time(NULL)) {
		bool found = entry_has_addr(e, family, addr);
		pthread_mutex_unlock(&rule_names_lock);
		return found;
	}
	if (e)
		e->pending = gen; /* also takes over a mark an ancestor process's thread left */
	pthread_mutex_unlock(&rule_names_lock);

	lookup_rule_name(&fresh, name); /* no lock held: DNS may take seconds */

	if (e) {
		pthread_mutex_lock(&rule_names_lock);
		if (e->pending == gen) { /* (a fork meanwhile re-made the table's lock, not the table) */
			e->n = fresh.n;
			memcpy(e->family, fresh.family, sizeof(e->family));
			memcpy(e->addr, fresh.addr, sizeof(e->addr));
			e->expires = fresh.expires;
			e->pending = 0;
		}
		pthread_cond_broadcast(&rule_names_done);
		pthread_mutex_unlock(&rule_names_lock);
	}
	return entry_has_addr(&fresh, family, addr);
}
