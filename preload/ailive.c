/* ailive.c: the live getaddrinfo results (see ailive.h) and the freeaddrinfo hook that ends them. */
#include "preload/ailive.h"
#include "preload/forkgate.h"

#include "preload/child.h"
#include "preload/hooks.h"
#include "preload/names.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct ailive_list {
	const struct addrinfo *head; /* the pointer getaddrinfo returned; NULL: unused slot */
	unsigned long long seq;	     /* when it was recorded: the oldest goes when the table is full */
	int n;			     /* addresses recorded (the first AILIVE_ADDRS of the list) */
	const struct sockaddr *sa[AILIVE_ADDRS]; /* each result's ai_addr pointer, as returned */
	int family[AILIVE_ADDRS];		 /* and what it held then (IPv4-mapped stored as IPv4) */
	uint8_t addr[AILIVE_ADDRS][16];
	char name[NAMES_MAX_LEN + 1];
};

/* Written by the resolver hooks (ailive_track) and the freeaddrinfo hook, read by connect
 * (ailive_name_for): every field under ailive_lock, which is only held for memory operations. `lists` is
 * allocated by the first ailive_track and never freed; n_live (the number of used slots, also written
 * under the lock) is read without it so that freeaddrinfo and connect skip the lock while nothing is
 * recorded. The lock is taken inside the fork gate (forkgate.h), so the child's copy is never locked. */
static pthread_mutex_t ailive_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ailive_list *lists;
static unsigned long long ailive_seq;
static _Atomic unsigned n_live;

/* The address in a result's sockaddr, normalised; false for other families or short sockaddrs. */
static bool addr_of(const struct sockaddr *sa, socklen_t len, int *family, uint8_t addr[16])
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		*family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			*family = AF_INET;
			memcpy(addr, a6->s6_addr + 12, 4);
		} else {
			*family = AF_INET6;
			memcpy(addr, a6->s6_addr, 16);
		}
		return true;
	}
	return false;
}

void ailive_track(const char *node, const struct addrinfo *res)
{
	if (!node || !res || strlen(node) > NAMES_MAX_LEN || child_shares_parent_memory())
		return;
	forkgate_lock(&ailive_lock);
	if (!lists)
		lists = calloc(AILIVE_LISTS, sizeof(*lists));
	struct ailive_list *l = NULL; /* a free slot, else the oldest record */
	for (size_t i = 0; lists && i < AILIVE_LISTS; i++) {
		if (lists[i].head == res) { /* already recorded */
			forkgate_unlock(&ailive_lock);
			return;
		}
		if (!l || (l->head && (!lists[i].head || lists[i].seq < l->seq)))
			l = &lists[i];
	}
	if (l) {
		if (!l->head)
			atomic_fetch_add_explicit(&n_live, 1, memory_order_relaxed);
		memset(l, 0, sizeof(*l));
		l->head = res;
		l->seq = ++ailive_seq;
		strcpy(l->name, node);
		for (const struct addrinfo *ai = res; ai && l->n < AILIVE_ADDRS; ai = ai->ai_next) {
			if (!ai->ai_addr ||
			    !addr_of(ai->ai_addr, ai->ai_addrlen, &l->family[l->n], l->addr[l->n]))
				continue;
			l->sa[l->n++] = ai->ai_addr;
		}
	}
	forkgate_unlock(&ailive_lock);
}

bool ailive_name_for(const struct sockaddr *sa, int family, const uint8_t *addr, char *out, size_t out_len)
{
	if (!sa || atomic_load_explicit(&n_live, memory_order_relaxed) == 0)
		return false;
	size_t alen = family == AF_INET ? 4 : 16;
	bool found = false;
	forkgate_lock(&ailive_lock);
	for (size_t i = 0; lists && i < AILIVE_LISTS && !found; i++) {
		const struct ailive_list *l = &lists[i];
		for (int j = 0; l->head && j < l->n && !found; j++) {
			if (l->sa[j] == sa && l->family[j] == family && memcmp(l->addr[j], addr, alen) == 0 &&
			    strlen(l->name) < out_len) {
				strcpy(out, l->name);
				found = true;
			}
		}
	}
	forkgate_unlock(&ailive_lock);
	return found;
}

EXPORT void freeaddrinfo(struct addrinfo *res)
{
	libc_ensure();
	/* In a child sharing the parent's memory nothing is written (child.h); the record stays, and the
	 * address comparison in ailive_name_for keeps a reused pointer from naming another address. */
	if (res && atomic_load_explicit(&n_live, memory_order_relaxed) != 0 &&
	    !child_shares_parent_memory()) {
		forkgate_lock(&ailive_lock);
		for (size_t i = 0; lists && i < AILIVE_LISTS; i++) {
			if (lists[i].head == res) {
				lists[i].head = NULL;
				atomic_fetch_sub_explicit(&n_live, 1, memory_order_relaxed);
				break;
			}
		}
		forkgate_unlock(&ailive_lock);
	}
	libc.freeaddrinfo(res);
}
