/* udp.c: the policy's `deny` for everything that is not a TCP connect: UDP (and raw, SCTP, ...) sockets'
 * connect, and every send that carries a destination address (sendto, sendmsg, sendmmsg). `tls` rules
 * apply to TCP only (a datagram cannot be wrapped), so a tls or plain verdict lets the datagram go.
 * Verdicts are cached per socket and destination in a small lock-free table (a sequence count per slot),
 * so a program sending many datagrams pays the policy match once per destination, then a few loads.
 * A cached verdict is dropped when the name memory changes (a new name may match another rule) and
 * after one second (rule names are re-resolved by resolve.c). */
#include "preload/choose.h"
#include "preload/hooks.h"
#include "preload/log.h"
#include "preload/names.h"
#include "preload/routes.h"
#include "preload/shim.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>

#define UDP_SLOTS      1024 /* direct-mapped by fd number */
#define UDP_VERDICT_MS 1000

struct udp_slot {
	_Atomic unsigned seq; /* odd while a writer fills the slot */
	_Atomic int fd;
	_Atomic uint64_t key, addr_hi, addr_lo; /* key: family << 32 | port << 8 | verdict */
	_Atomic unsigned long names_gen;
	_Atomic long long expires_ms;
};

/* Written by udp_check_dest from any thread (a writer claims a slot by making its seq odd with a
 * compare-and-swap; readers retry nothing: a torn or busy slot is a miss). */
static struct udp_slot udp_cache[UDP_SLOTS];

enum { VERDICT_ALLOW = 1, VERDICT_DENY = 2 };

struct udp_dest {
	int family;
	uint8_t addr[16];
	uint16_t port;
};

static int parse(const struct sockaddr *sa, socklen_t len, struct udp_dest *d)
{
	memset(d, 0, sizeof(*d));
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
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			d->family = AF_INET;
			memmove(d->addr, d->addr + 12, 4);
			memset(d->addr + 4, 0, 12);
		}
	} else {
		return -1;
	}
	return 0;
}

static long long coarse_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static int cache_get(int fd, const struct udp_dest *d, unsigned long gen, long long now)
{
	struct udp_slot *s = &udp_cache[(unsigned)fd % UDP_SLOTS];
	unsigned seq = atomic_load_explicit(&s->seq, memory_order_acquire);
	if (seq & 1)
		return 0;
	int sfd = atomic_load_explicit(&s->fd, memory_order_relaxed);
	uint64_t key = atomic_load_explicit(&s->key, memory_order_relaxed);
	uint64_t hi = atomic_load_explicit(&s->addr_hi, memory_order_relaxed);
	uint64_t lo = atomic_load_explicit(&s->addr_lo, memory_order_relaxed);
	unsigned long sgen = atomic_load_explicit(&s->names_gen, memory_order_relaxed);
	long long exp = atomic_load_explicit(&s->expires_ms, memory_order_relaxed);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&s->seq, memory_order_relaxed) != seq)
		return 0;
	uint64_t want = (uint64_t)d->family << 32 | (uint64_t)d->port << 8;
	if (sfd != fd || (key & ~0xffull) != want || hi != load64(d->addr) || lo != load64(d->addr + 8) ||
	    sgen != gen || now >= exp)
		return 0;
	return (int)(key & 0xff);
}

static void cache_put(int fd, const struct udp_dest *d, int verdict, unsigned long gen, long long now)
{
	struct udp_slot *s = &udp_cache[(unsigned)fd % UDP_SLOTS];
	unsigned seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
	if ((seq & 1) || !atomic_compare_exchange_strong_explicit(&s->seq, &seq, seq + 1,
								  memory_order_acquire, memory_order_relaxed))
		return; /* another writer: skip, the next send evaluates again */
	atomic_store_explicit(&s->fd, fd, memory_order_relaxed);
	atomic_store_explicit(&s->key, (uint64_t)d->family << 32 | (uint64_t)d->port << 8 | (uint64_t)verdict,
			      memory_order_relaxed);
	atomic_store_explicit(&s->addr_hi, load64(d->addr), memory_order_relaxed);
	atomic_store_explicit(&s->addr_lo, load64(d->addr + 8), memory_order_relaxed);
	atomic_store_explicit(&s->names_gen, gen, memory_order_relaxed);
	atomic_store_explicit(&s->expires_ms, now + UDP_VERDICT_MS, memory_order_relaxed);
	atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

/* The verdict for d reached through sa. *cacheable is false when it rests on sa being a live getaddrinfo
 * result (choose.h): another send to the same address through a copy may get a stricter answer. */
static int evaluate(const struct udp_dest *d, const struct sockaddr *sa, bool *cacheable)
{
	*cacheable = true;
	char text[INET6_ADDRSTRLEN] = "";
	shim_init();
	if (!shim_policy_ok()) {
		inet_ntop(d->family, d->addr, text, sizeof(text));
		log_msg(LOG_ERROR,
			"%s:%u: datagram refused: the policy did not load (see the first message); fix it",
			text, d->port);
		return VERDICT_DENY;
	}
	/* Several resolved names and no getaddrinfo result: a deny rule that any of them picks applies. */
	struct choice ch;
	choose_dest(CHOOSE_ANY_DENY, sa, d->family, d->addr, d->port, &ch);
	const char *remembered = ch.name;
	const struct policy_rule *rule = ch.rule;
	*cacheable = !ch.from_result;
	if (!rule || rule->action != POLICY_DENY)
		return VERDICT_ALLOW;
	inet_ntop(d->family, d->addr, text, sizeof(text));
	log_msg(
	    LOG_ERROR,
	    "%s%s%s:%u (%s): datagram or non-TCP connect denied by rule %s:%u; change the policy to allow it",
	    d->family == AF_INET6 ? "[" : "", text, d->family == AF_INET6 ? "]" : "", d->port,
	    remembered[0] ? remembered : "no name", rule->source, rule->line);
	return VERDICT_DENY;
}

int udp_check_dest(int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct udp_dest d;
	if (!sa || parse(sa, salen, &d) != 0)
		return 0; /* not an IP destination (unix, AF_UNSPEC to disconnect, ...) */
	unsigned long gen = names_generation();
	long long now = coarse_ms();
	int verdict = cache_get(fd, &d, gen, now);
	if (!verdict) {
		bool cacheable;
		verdict = evaluate(&d, sa, &cacheable);
		if (cacheable)
			cache_put(fd, &d, verdict, gen, now);
	}
	if (verdict == VERDICT_DENY) {
		errno = EACCES;
		return -1;
	}
	return 0;
}
