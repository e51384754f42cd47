/* epoll.c: epoll sets that hold TLS fds (the readiness layer for epoll; poll and select are poll.c's).
 *
 * A TLS fd's kernel readiness is about ciphertext, not about what the program can read, so TLS fds are
 * never registered in the program's kernel set with the program's data. Each program set that holds TLS
 * fds gets:
 *  - an inner epoll set owned by the shim, holding exactly its TLS fds (but the direct ones, below),
 *    each registered edge triggered for IN|OUT|RDHUP with a token = generation << 32 | table index. Nothing
 * but the shim's own registrations is in it, so a token can never be confused with a program's epoll_data; a
 * stale event of a closed fd or a reused number is dropped by the generation;
 *  - the inner set registered in the program's set (EPOLLIN|EPOLLET) with a 64-bit random token, so a
 *    thread blocked in epoll_wait, an outer epoll set and poll() on the program's set all see TLS
 *    events; a program registration of a plain fd with exactly that data value makes the shim choose a
 *    new token (epoll_ctl watches for it);
 *  - an eventfd in the inner set, signalled when a call (EPOLL_CTL_ADD/MOD by another thread) may have
 *    made a registration ready without any kernel event;
 *  - a table of registrations (program events and data, ONESHOT state), an fd -> index hash, and a ready
 *    list. A kernel edge from the inner set puts a registration on the ready list; epoll_wait takes the
 *    ready list, asks the connection (outside every lock but the connection's own) what the program can
 *    do now, reports what it can, and puts level-triggered ones back at the tail, as the kernel does
 *    with its own ready list. Only application data (or EOF, an error) is readable: records that carry
 *    none (TLS 1.3 session tickets) are processed and the registration leaves the list. epoll_wait never
 *    looks at a registration that had no event.
 * Direct registrations (is_direct: EPOLLEXCLUSIVE TLS fds, and epoll sets with tables inside this set)
 * sit in the program's kernel set itself with data = xtag << 32 | index, so the kernel's exclusive
 * wake-up picks among threads blocked in the program's sets, and nesting adds no kernel level.
 * A set watched from outside (poll/select on its fd, an outer set) is looked at first (set_peek), so it
 * is readable there exactly when epoll_wait on it would return something.
 * A set that never held a TLS fd has no table at all: epoll_wait and epoll_ctl on it cost one atomic
 * load on top of the real call, close() of a plain fd one load.
 *
 * Fork: the program's kernel set is shared with the child, the tables are per process (each sees the
 * state at fork plus its own calls). A child's first epoll call on an inherited set makes it its own
 * inner set (same outer token), so the parent's registrations are never changed by the child. Either
 * process can consume the other's edge of the outer token, so a set that may be shared waits at most
 * 100 ms in the kernel before it looks at its own inner set again. */
#include "preload/epoll.h"
#include "preload/child.h"
#include "preload/fdtab.h"
#include "preload/forkgate.h"
#include "preload/hooks.h"
#include "preload/log.h"
#include "preload/rawsys.h"
#include "preload/wake.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef EPOLLEXCLUSIVE
#define EPOLLEXCLUSIVE (1u << 28)
#endif

#define TOKEN_WAKE     UINT64_MAX
#define SHARED_WAIT_MS 100
/* The kernel's rule for EPOLLEXCLUSIVE registrations (fs/eventpoll.c, EPOLLEXCLUSIVE_OK_BITS). */
#define EXCLUSIVE_OK                                                                                         \
	((uint32_t)(EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE))

struct ep_item {
	int fd;		   /* -1: free slot */
	uint32_t gen;	   /* bumped when the slot is freed; the inner token is gen << 32 | index */
	uint32_t events;   /* what the program registered (EPOLLWAKEUP dropped) */
	uint32_t kmask;	   /* the inner set's event mask at the harvest numbered kseq */
	epoll_data_t data; /* the program's, returned untouched */
	bool disarmed;	   /* EPOLLONESHOT reported: nothing until EPOLL_CTL_MOD */
	bool is_set;	   /* fd is an epoll set with a table of its own (a set inside this set) */
	unsigned long born_gen, born_forks; /* forkgate_process_gen()/forkgate_forks() at its ADD */
	bool on_ready;			    /* on the ready list */
	bool connecting; /* the handshake was in progress when last looked at: on the hs list */
	bool held_only;	 /* EPOLLET, reported: on the list again only for bytes held inside the shim */
	unsigned char idle_reports; /* held_only reports since the program last read (at most 1) */
	uint32_t kseq;	 /* s->harvests when kmask was taken; 0 once looked at (or modified): no mask */
	long long hs_dl; /* its handshake-timeout= deadline (monotonic ms) while connecting */
	unsigned long long seen_in; /* the connection's bytes_in at the last report */
	int prev, next;		    /* ready list links; next is also the free list link */
};

struct ep_set {
	_Atomic int refs;		    /* the table slot's one, plus every call in flight */
	pthread_mutex_t lock;		    /* guards every field below (never held across a wait) */
	struct ep_set *all_prev, *all_next; /* every live set (registry_lock) */
	struct ep_set *next_free;	    /* free list (registry_lock) */
	int epfd;			    /* the program's set */
	int inner;			    /* the shim's set of this set's TLS fds; -1 until the first */
	int efd;			    /* eventfd in inner (TOKEN_WAKE); -1 with inner */
	uint64_t token;			    /* data of inner's registration in the program's set */
	uint32_t xtag;			    /* high half of direct registrations' data (is_direct) */
	int n_direct;			    /* live direct registrations */
	unsigned long fork_gen;		    /* forkgate_process_gen() when inner/efd were made here */
	unsigned long forks;		    /* forkgate_forks() then: a later fork may share the kernel set */
	bool shared;			    /* another process may wait on the kernel set too */
	bool probed;			    /* epoll_adopt_fd ran for epfd (at its first item) */
	_Atomic int n_items;		    /* live TLS registrations (read without the lock) */
	struct ep_item *items;
	int cap, free_head;
	int ready_head, ready_tail, n_ready;
	int *hash, hash_cap;	/* fd -> index + 1 (0: empty); open addressing, linear probing */
	int *hs, n_hs, cap_hs;	/* indexes of connecting items (their deadlines bound the wait) */
	int waiters;		/* threads between their look at the ready list and the end of their wait */
	uint32_t harvests;	/* harvest() calls that read the inner set (never 0): numbers each kmask */
	_Atomic int pt_waiters; /* threads in a pass-through wait on the set (no TLS fd when it began) */
	_Atomic int in_tables;	/* items for this set in other sets' tables (ctl_item, under theirs) */
	_Atomic int watchers;	/* threads in poll/select on this set's fd (epoll_set_watch) */
};

/* ---- the set table: epfd -> struct ep_set ----
 * Two levels like fdtab.h: chunks are mmap'ed on first need and never freed, so a lookup takes no lock.
 * A slot is written by set_install (CAS from NULL) and set_uninstall (close of the epfd); the set it
 * points to holds one reference for it. */
#define SET_CHUNK_BITS 10
#define SET_CHUNK      (1u << SET_CHUNK_BITS)
#define SET_TOP	       (1u << 20)
typedef _Atomic(struct ep_set *) set_slot;
static _Atomic(set_slot *) set_chunks[SET_TOP];

/* Every live set and the recycled ones (set memory is never returned: a stale pointer from the table
 * is always safe to try to reference, as for connections). Guarded by registry_lock, which is taken
 * only when a set is made or goes, by close of a TLS fd (to find its sets) and around fork. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ep_set *all_sets, *free_sets;
static _Atomic int n_inner_sets; /* sets with an inner set: close of a TLS fd skips everything at 0 */
static _Atomic int n_sets;	 /* sets on all_sets (written under registry_lock): closefrom's test */

/* The shim's own fds (inner sets and wake-up eventfds) by number, below OWN_FD_MAX: set by make_inner,
 * cleared before the shim closes one, each under its set's lock; read without a lock by the close and
 * dup2/dup3 hooks (epoll_owns_fd), only while n_inner_sets > 0. A program never opened these numbers,
 * so it gets what the kernel would give it without the shim: close() is EBADF, and dup2/dup3 onto one
 * first moves the shim's file to another number (epoll_move_own_fd). */
#define OWN_FD_MAX 65536
static _Atomic unsigned char own_fds[OWN_FD_MAX];

static void own_mark(int fd, bool on)
{
	if (fd >= 0 && fd < OWN_FD_MAX)
		atomic_store_explicit(&own_fds[fd], on, memory_order_release);
}

static set_slot *set_slot_for(int fd, bool make)
{
	if (fd < 0 || (unsigned)fd >= SET_TOP * SET_CHUNK)
		return NULL;
	_Atomic(set_slot *) *top = &set_chunks[(unsigned)fd >> SET_CHUNK_BITS];
	set_slot *chunk = atomic_load_explicit(top, memory_order_acquire);
	if (!chunk && make) {
		void *mem = mmap(NULL, SET_CHUNK * sizeof(set_slot), PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			return NULL;
		set_slot *expected = NULL;
		if (atomic_compare_exchange_strong(top, &expected, (set_slot *)mem)) {
			chunk = mem;
		} else {
			munmap(mem, SET_CHUNK * sizeof(set_slot));
			chunk = expected;
		}
	}
	return chunk ? &chunk[(unsigned)fd & (SET_CHUNK - 1)] : NULL;
}

/* The set of epfd with a reference taken, or NULL. No lock. */
static struct ep_set *set_get(int epfd)
{
	set_slot *slot = set_slot_for(epfd, false);
	if (!slot)
		return NULL;
	for (int tries = 0; tries < 8; tries++) {
		struct ep_set *s = atomic_load_explicit(slot, memory_order_acquire);
		if (!s)
			return NULL;
		int r = atomic_load_explicit(&s->refs, memory_order_acquire);
		while (r > 0 && !atomic_compare_exchange_weak(&s->refs, &r, r + 1))
			;
		if (r > 0) {
			if (atomic_load_explicit(slot, memory_order_acquire) == s)
				return s;
			atomic_fetch_sub(&s->refs, 1); /* recycled meanwhile; it cannot reach 0 from here */
		}
	}
	return NULL;
}

static void set_destroy(struct ep_set *s)
{
	forkgate_lock(&s->lock);
	if (s->inner >= 0) {
		own_mark(s->inner, false);
		own_mark(s->efd, false);
		raw_syscall(SYS_close, s->inner, 0, 0, 0, 0, 0);
		raw_syscall(SYS_close, s->efd, 0, 0, 0, 0, 0);
		s->inner = s->efd = -1;
		atomic_fetch_sub(&n_inner_sets, 1);
	}
	free(s->items);
	free(s->hash);
	free(s->hs);
	s->items = NULL;
	s->hash = s->hs = NULL;
	s->cap = s->hash_cap = s->cap_hs = s->n_hs = 0;
	atomic_store(&s->n_items, 0);
	forkgate_unlock(&s->lock);
	forkgate_lock(&registry_lock);
	if (s->all_prev)
		s->all_prev->all_next = s->all_next;
	else
		all_sets = s->all_next;
	if (s->all_next)
		s->all_next->all_prev = s->all_prev;
	s->all_prev = s->all_next = NULL;
	atomic_fetch_sub(&n_sets, 1);
	s->next_free = free_sets;
	free_sets = s;
	forkgate_unlock(&registry_lock);
}

static void set_put(struct ep_set *s)
{
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		set_destroy(s);
}

static uint64_t random_token(void);
static uint32_t new_xtag(uint64_t token);

/* The set of epfd, made (with no inner set yet) when there is none. Reference taken; NULL on ENOMEM. */
static struct ep_set *set_get_or_make(int epfd)
{
	struct ep_set *s = set_get(epfd);
	if (s)
		return s;
	set_slot *slot = set_slot_for(epfd, true);
	if (!slot) {
		errno = ENOMEM;
		return NULL;
	}
	forkgate_lock(&registry_lock);
	s = free_sets;
	if (s) {
		free_sets = s->next_free;
	} else {
		s = calloc(1, sizeof(*s));
		if (!s) {
			forkgate_unlock(&registry_lock);
			errno = ENOMEM;
			return NULL;
		}
		pthread_mutex_init(&s->lock, NULL);
	}
	s->epfd = epfd;
	s->inner = s->efd = -1;
	s->ready_head = s->ready_tail = s->free_head = -1;
	s->n_ready = s->waiters = 0;
	s->shared = false;
	s->probed = false;
	s->token = random_token();
	s->xtag = new_xtag(s->token);
	s->n_direct = 0;
	atomic_store(&s->pt_waiters, 0);
	atomic_store(&s->in_tables, 0);
	atomic_store(&s->watchers, 0);
	s->fork_gen = forkgate_process_gen();
	atomic_store(&s->refs, 2); /* the slot's and the caller's */
	s->all_prev = NULL;
	s->all_next = all_sets;
	if (all_sets)
		all_sets->all_prev = s;
	all_sets = s;
	atomic_fetch_add(&n_sets, 1);
	struct ep_set *expected = NULL;
	bool installed = atomic_compare_exchange_strong(slot, &expected, s);
	forkgate_unlock(&registry_lock);
	if (!installed) { /* another thread made one first */
		atomic_store(&s->refs, 1);
		set_put(s);
		return set_get(epfd);
	}
	return s;
}

/* ---- registrations: fd hash, ready list, handshake list (s->lock held) ---- */

static unsigned hash_fd(int fd, int cap)
{
	return ((unsigned)fd * 2654435761u) & (unsigned)(cap - 1);
}

static int find_item(struct ep_set *s, int fd)
{
	if (!s->hash_cap)
		return -1;
	for (unsigned h = hash_fd(fd, s->hash_cap);; h = (h + 1) & (unsigned)(s->hash_cap - 1)) {
		int v = s->hash[h];
		if (v == 0)
			return -1;
		if (s->items[v - 1].fd == fd)
			return v - 1;
	}
}

static void hash_put(struct ep_set *s, int fd, int idx)
{
	unsigned h = hash_fd(fd, s->hash_cap);
	while (s->hash[h])
		h = (h + 1) & (unsigned)(s->hash_cap - 1);
	s->hash[h] = idx + 1;
}

/* Removes fd (backward-shift deletion keeps probe chains whole). */
static void hash_del(struct ep_set *s, int fd)
{
	unsigned mask = (unsigned)(s->hash_cap - 1), h = hash_fd(fd, s->hash_cap);
	while (s->hash[h] && s->items[s->hash[h] - 1].fd != fd)
		h = (h + 1) & mask;
	if (!s->hash[h])
		return;
	s->hash[h] = 0;
	for (unsigned j = (h + 1) & mask; s->hash[j]; j = (j + 1) & mask) {
		unsigned home = hash_fd(s->items[s->hash[j] - 1].fd, s->hash_cap);
		/* may the entry at j move to the hole at h? yes unless its home lies in (h, j] */
		bool stay = h <= j ? (home > h && home <= j) : (home > h || home <= j);
		if (!stay) {
			s->hash[h] = s->hash[j];
			s->hash[j] = 0;
			h = j;
		}
	}
}

static int grow(struct ep_set *s)
{
	int ncap = s->cap ? s->cap * 2 : 16;
	struct ep_item *ni = realloc(s->items, (size_t)ncap * sizeof(*ni));
	if (!ni)
		return -1;
	s->items = ni;
	for (int i = ncap - 1; i >= s->cap; i--) {
		ni[i] = (struct ep_item){.fd = -1, .prev = -1, .next = s->free_head};
		s->free_head = i;
	}
	s->cap = ncap;
	int nh = ncap * 2;
	int *hash = calloc((size_t)nh, sizeof(*hash));
	if (!hash)
		return -1;
	free(s->hash);
	s->hash = hash;
	s->hash_cap = nh;
	for (int i = 0; i < ncap; i++)
		if (ni[i].fd >= 0)
			hash_put(s, ni[i].fd, i);
	return 0;
}

static void ready_push(struct ep_set *s, int idx)
{
	struct ep_item *it = &s->items[idx];
	if (it->on_ready || it->fd < 0 || it->disarmed)
		return;
	it->on_ready = true;
	it->next = -1;
	it->prev = s->ready_tail;
	if (s->ready_tail >= 0)
		s->items[s->ready_tail].next = idx;
	else
		s->ready_head = idx;
	s->ready_tail = idx;
	s->n_ready++;
}

static void ready_remove(struct ep_set *s, int idx)
{
	struct ep_item *it = &s->items[idx];
	if (!it->on_ready)
		return;
	if (it->prev >= 0)
		s->items[it->prev].next = it->next;
	else
		s->ready_head = it->next;
	if (it->next >= 0)
		s->items[it->next].prev = it->prev;
	else
		s->ready_tail = it->prev;
	it->on_ready = false;
	it->prev = it->next = -1;
	s->n_ready--;
}

static void hs_add(struct ep_set *s, int idx)
{
	if (s->items[idx].connecting)
		return;
	if (s->n_hs == s->cap_hs) {
		int nc = s->cap_hs ? s->cap_hs * 2 : 8;
		int *n = realloc(s->hs, (size_t)nc * sizeof(*n));
		if (!n)
			return; /* the deadline is then found at the next kernel event only */
		s->hs = n;
		s->cap_hs = nc;
	}
	s->items[idx].connecting = true;
	s->hs[s->n_hs++] = idx;
}

static uint64_t token_of(const struct ep_set *s, int idx)
{
	return (uint64_t)s->items[idx].gen << 32 | (uint32_t)idx;
}

/* A direct registration: in the program's kernel set itself (data = xtag << 32 | index), not in the
 * inner set. EPOLLEXCLUSIVE ones, so that the kernel's one-waiter wake-up picks among the threads
 * blocked in the program's sets (an exclusive entry wakes only a set with a thread in epoll_wait on it,
 * and nobody waits on an inner set), and sets inside this set, so that nesting costs no extra level. */
static bool is_direct(const struct ep_item *it)
{
	return it->is_set || (it->events & EPOLLEXCLUSIVE);
}

static uint64_t dtoken(const struct ep_set *s, int idx)
{
	return (uint64_t)s->xtag << 32 | (uint32_t)idx;
}

/* The kernel set that holds item idx's registration. */
static int kset_of(const struct ep_set *s, int idx)
{
	return is_direct(&s->items[idx]) ? s->epfd : s->inner;
}

static void item_free(struct ep_set *s, int idx)
{
	struct ep_item *it = &s->items[idx];
	ready_remove(s, idx);
	hash_del(s, it->fd);
	if (is_direct(it))
		s->n_direct--;
	it->fd = -1;
	it->gen++;
	it->connecting = false; /* the hs list drops it at its next scan (fd < 0) */
	it->next = s->free_head;
	s->free_head = idx;
	atomic_fetch_sub(&s->n_items, 1);
}

/* What the inner set watches for a program registration. */
static uint32_t inner_events(uint32_t prog)
{
	if (prog & EPOLLEXCLUSIVE)
		return EPOLLIN | EPOLLOUT | EPOLLET | EPOLLEXCLUSIVE;
	return EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
}

static uint64_t random_token(void)
{
	uint64_t t = 0;
	if (raw_syscall(SYS_getrandom, (long)&t, sizeof(t), 0, 0, 0, 0) != (long)sizeof(t)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid() << 48;
	}
	return t == TOKEN_WAKE || t == 0 ? 0x746c737368696d31ULL : t;
}

/* A high half for direct registrations' data: top bit set (no user-space pointer, no small or negative
 * int has it), never the outer token's high half. */
static uint32_t new_xtag(uint64_t token)
{
	uint32_t x = (uint32_t)(random_token() >> 32) | 0x80000000u;
	if (x == (uint32_t)(token >> 32) || x == UINT32_MAX)
		x ^= 0x5a5a5a5au;
	return x;
}

/* Makes this process's inner set and eventfd for s and registers them (s->lock held). Every live item
 * is registered again (a fork child's rebuild). 0, or -1 with errno. */
static int make_inner(struct ep_set *s)
{
	int inner = (int)raw_syscall(SYS_epoll_create1, EPOLL_CLOEXEC, 0, 0, 0, 0, 0);
	if (inner < 0)
		return -1;
	int efd = (int)raw_syscall(SYS_eventfd2, 0, EFD_NONBLOCK | EFD_CLOEXEC, 0, 0, 0, 0);
	struct epoll_event wev = {.events = EPOLLIN, .data.u64 = TOKEN_WAKE};
	if (efd < 0 || libc.epoll_ctl(inner, EPOLL_CTL_ADD, efd, &wev) != 0) {
		int e = errno;
		raw_syscall(SYS_close, inner, 0, 0, 0, 0, 0);
		if (efd >= 0)
			raw_syscall(SYS_close, efd, 0, 0, 0, 0, 0);
		errno = e;
		return -1;
	}
	for (int i = 0; i < s->cap; i++) {
		if (s->items[i].fd < 0)
			continue;
		struct epoll_event kev = {.events = inner_events(s->items[i].events),
					  .data.u64 = token_of(s, i)};
		if (!is_direct(&s->items[i])) /* direct ones are in the (shared) program's set already */
			libc.epoll_ctl(inner, EPOLL_CTL_ADD, s->items[i].fd, &kev);
		ready_push(s, i);
	}
	struct epoll_event oev = {.events = EPOLLIN | EPOLLET, .data.u64 = s->token};
	if (libc.epoll_ctl(s->epfd, EPOLL_CTL_ADD, inner, &oev) != 0) {
		int e = errno;
		raw_syscall(SYS_close, inner, 0, 0, 0, 0, 0);
		raw_syscall(SYS_close, efd, 0, 0, 0, 0, 0);
		errno = e;
		return -1;
	}
	if (s->inner < 0)
		atomic_fetch_add(&n_inner_sets, 1);
	s->inner = inner;
	s->efd = efd;
	own_mark(inner, true);
	own_mark(efd, true);
	s->fork_gen = forkgate_process_gen();
	s->forks = forkgate_forks();
	return 0;
}

/* After a fork, the first call in the child: its own inner set, so the parent's stays untouched. The
 * child's copies of the parent's inner set and eventfd are closed (the parent's stay open). */
static void own_inner(struct ep_set *s)
{
	if (s->inner < 0 || s->fork_gen == forkgate_process_gen())
		return;
	int old_inner = s->inner, old_efd = s->efd;
	s->ready_head = s->ready_tail = -1;
	s->n_ready = 0;
	for (int i = 0; i < s->cap; i++)
		s->items[i].on_ready = false;
	if (make_inner(s) == 0) {
		own_mark(old_inner, false);
		own_mark(old_efd, false);
		raw_syscall(SYS_close, old_inner, 0, 0, 0, 0, 0);
		raw_syscall(SYS_close, old_efd, 0, 0, 0, 0, 0);
	} else {
		log_msg(LOG_WARN,
			"epoll set %d: cannot make this process's own table after fork (%s); TLS fds in it "
			"follow the parent's registrations",
			s->epfd, strerror(errno));
		s->fork_gen = forkgate_process_gen();
	}
	s->shared = true;
}

/* Wakes the threads that wait on s, directly or from outside (poll/select on its fd, an outer set that
 * holds it: the eventfd makes the set's fd readable for the kernel until a look drains it). */
static void wake_waiters(struct ep_set *s)
{
	if ((s->waiters > 0 || atomic_load(&s->pt_waiters) > 0 || atomic_load(&s->in_tables) > 0 ||
	     atomic_load(&s->watchers) > 0) &&
	    s->efd >= 0) {
		uint64_t one = 1;
		raw_syscall(SYS_write, s->efd, (long)&one, sizeof(one), 0, 0, 0);
	}
}

/* A direct registration's kernel event (s->lock held): onto the ready list. */
static void direct_event(struct ep_set *s, uint32_t idx)
{
	if (idx < (uint32_t)s->cap && s->items[idx].fd >= 0 && is_direct(&s->items[idx])) {
		s->items[idx].held_only = false;
		ready_push(s, (int)idx);
	}
}

/* Takes every event the inner set has into the ready list (s->lock held). Every one: the inner set's
 * registrations are edge triggered, so events left in it give the program's set no new edge, and a fd
 * whose event stayed behind (an echo on the 10,001st registration, with 4,096 taken per call before) was
 * reported only at the next kernel event of the set. The rounds are bounded by the registrations (each
 * has at most one event queued) plus one for the wake-up eventfd and one for what arrives meanwhile. */
static void harvest(struct ep_set *s)
{
	if (s->inner < 0)
		return;
	struct epoll_event ev[64];
	if (++s->harvests == 0)
		s->harvests = 1; /* an item's kseq 0 means "no mask" */
	for (int round = 0; round <= s->cap / 64 + 2; round++) {
		int n = libc.epoll_wait(s->inner, ev, 64, 0);
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u64 == TOKEN_WAKE) {
				wake_drain(s->efd);
				continue;
			}
			uint32_t idx = (uint32_t)ev[i].data.u64, gen = (uint32_t)(ev[i].data.u64 >> 32);
			if (idx < (uint32_t)s->cap && s->items[idx].gen == gen && s->items[idx].fd >= 0) {
				struct ep_item *it = &s->items[idx];
				it->held_only = false; /* a kernel event: look at everything */
				ready_push(s, (int)idx);
				if (it->on_ready) { /* the kernel's mask now: tls_events needs no poll */
					it->kmask = ev[i].events;
					it->kseq = s->harvests;
				}
			}
		}
		if (n < 64)
			break;
	}
}

/* ---- what a TLS fd can do now ---- */

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Set while this thread passes on a wake-up of its own look at a connection: the epoll sets are not
 * told again (poll_notify_epoll), only poll waiters. */
static __thread bool in_look;

/* Threads inside wait_tls on any set: poll_notify_epoll does nothing while there are none. */
static _Atomic int n_tls_waiters;

static uint32_t epoll_bits(short pollbits)
{
	return ((pollbits & POLLIN) ? (uint32_t)EPOLLIN : 0) |
	       ((pollbits & POLLOUT) ? (uint32_t)EPOLLOUT : 0) |
	       ((pollbits & POLLERR) ? (uint32_t)EPOLLERR : 0) |
	       ((pollbits & POLLHUP) ? (uint32_t)EPOLLHUP : 0);
}

/* The epoll events of TLS fd `fd` (connection c) for a registration asking `want`, without waiting,
 * from conn.c's predicate (conn_poll_state: a handshake step is taken, then *hs_dl is its deadline and
 * nothing is ready; only application data, EOF or an error is readable). The kernel is asked first: kmask
 * is the inner set's mask for fd from the harvest of this same wait (tcp_poll's answer a moment ago, as
 * poll would give it), else one poll with a zero timeout; the predicate reads the kernel socket only when
 * it said readable, so SO_RCVLOWAT keeps its meaning. held_only: readable only for what the shim and wolfSSL
 * hold already. *bytes_in: the connection's count of bytes the program read. Runs under no lock of ours. */
static uint32_t tls_events(struct conn *c, int fd, uint32_t want, bool held_only, const uint32_t *kmask,
			   long long *hs_dl, unsigned long long *bytes_in)
{
	*hs_dl = -1;
	*bytes_in = 0;
	if (conn_is_sentinel(c))
		return EPOLLERR | EPOLLHUP | (want & (EPOLLIN | EPOLLOUT));
	struct conn_ready st;
	if (held_only) {
		conn_poll_state(c, fd, POLLIN, false, &st);
		conn_lock(c);
		*bytes_in = c->bytes_in;
		conn_unlock(c);
		return (st.now & POLLIN) ? (want & EPOLLIN) : 0;
	}
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP};
	if (kmask) /* the inner set's mask, read by this wait's harvest just now: the same answer */
		p.revents =
		    (short)(((*kmask & EPOLLIN) ? POLLIN : 0) | ((*kmask & EPOLLOUT) ? POLLOUT : 0) |
			    ((*kmask & EPOLLRDHUP) ? POLLRDHUP : 0) | ((*kmask & EPOLLERR) ? POLLERR : 0) |
			    ((*kmask & EPOLLHUP) ? POLLHUP : 0));
	else if (libc.poll(&p, 1, 0) < 0)
		p.revents = 0;
	conn_lock(c);
	/* A session that existed at a fork: the records in the kernel may be another process's to
	 * decrypt, so they are not taken here; the kernel's POLLIN says readable then. */
	bool forked = c->forked;
	conn_unlock(c);
	short ev = (short)(((want & EPOLLIN) ? POLLIN : 0) | ((want & EPOLLOUT) ? POLLOUT : 0));
	bool kernel_said = !forked && (p.revents & (POLLIN | POLLHUP | POLLERR | POLLRDHUP));
	conn_poll_state(c, fd, ev, kernel_said, &st);
	if (st.connecting) {
		*hs_dl = st.deadline_ms;
		return 0;
	}
	if (st.made_readable) { /* other threads in poll on this fd; this set reports it itself */
		in_look = true;
		wake_notify(fd);
		in_look = false;
	}
	uint32_t out = epoll_bits(st.now) | epoll_bits((short)(p.revents & st.pass));
	if (forked && (want & EPOLLIN) && (p.revents & POLLIN))
		out |= EPOLLIN;
	conn_lock(c);
	*bytes_in = c->bytes_in;
	bool peer_done = c->read_eof || c->tcp_eof; /* close_notify (or FIN): the peer's write side ended */
	conn_unlock(c);
	if ((p.revents & POLLRDHUP) || peer_done)
		out |= EPOLLRDHUP;
	return out;
}

/* ---- the hooks ---- */

void epoll_adopt_fd(int fd);

/* epoll_ctl on a TLS fd, or (is_set) on an epoll set whose table holds TLS fds or that is already in a
 * table: such a set inside another one is an item like a TLS fd, looked at (set_peek) when the kernel
 * says its fd is readable, so that the outer set reports it exactly when epoll_wait on it would
 * return something. MOD or DEL of a set the table does not hold is the kernel's. */
static int ctl_item(int epfd, int op, int fd, struct epoll_event *ev, bool is_set)
{
	if (op != EPOLL_CTL_ADD && op != EPOLL_CTL_MOD && op != EPOLL_CTL_DEL) {
		errno = EINVAL;
		return -1;
	}
	if (op != EPOLL_CTL_DEL && !ev) {
		errno = EFAULT;
		return -1;
	}
	if (epfd == fd) {
		errno = EINVAL;
		return -1;
	}
	struct ep_set *s = set_get(epfd);
	if (!s) {
		/* Is epfd an epoll set? The kernel answers for it: EBADF, EINVAL (not an epoll fd), or
		 * ENOENT/0 (it is one; the fd was not, or was still directly, registered in it). */
		struct epoll_event dummy = {0};
		if (libc.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &dummy) != 0 && errno != ENOENT)
			return -1;
		s = set_get_or_make(epfd);
		if (!s)
			return -1;
	}
	uint32_t want = op == EPOLL_CTL_DEL ? 0 : ev->events & ~(uint32_t)EPOLLWAKEUP;
	if (op != EPOLL_CTL_DEL && (want & EPOLLEXCLUSIVE) &&
	    (op == EPOLL_CTL_MOD || (want & ~EXCLUSIVE_OK) || (want & EPOLLONESHOT) || is_set)) {
		/* (the kernel refuses EXCLUSIVE on an epoll fd too) */
		set_put(s);
		errno = EINVAL;
		return -1;
	}
	int r = 0, err = 0;
	bool first_inner = false;
	forkgate_lock(&s->lock);
	own_inner(s);
	int idx = find_item(s, fd);
	if (is_set && idx < 0 && op != EPOLL_CTL_ADD) {
		forkgate_unlock(&s->lock);
		set_put(s);
		return libc.epoll_ctl(epfd, op, fd, ev); /* registered while it held no TLS fd */
	}
	if (op == EPOLL_CTL_ADD) {
		if (idx >= 0) {
			err = EEXIST;
		} else if (s->inner < 0 && make_inner(s) != 0) {
			err = errno;
		} else if (s->free_head < 0 && grow(s) != 0) {
			err = ENOMEM;
		} else {
			idx = s->free_head;
			struct ep_item *it = &s->items[idx];
			s->free_head = it->next;
			*it = (struct ep_item){.fd = fd,
					       .gen = it->gen,
					       .events = want,
					       .data = ev->data,
					       .is_set = is_set,
					       .born_gen = forkgate_process_gen(),
					       .born_forks = forkgate_forks(),
					       .prev = -1,
					       .next = -1,
					       .hs_dl = -1};
			if (!s->probed) { /* the first item: epfd may sit in another set from before */
				s->probed = true;
				first_inner = true;
			}
			bool direct = is_direct(it);
			struct epoll_event kev = {.events = inner_events(want),
						  .data.u64 = direct ? dtoken(s, idx) : token_of(s, idx)};
			if (libc.epoll_ctl(direct ? s->epfd : s->inner, EPOLL_CTL_ADD, fd, &kev) != 0) {
				err = errno;
				it->fd = -1;
				it->next = s->free_head;
				s->free_head = idx;
			} else {
				hash_put(s, fd, idx);
				atomic_fetch_add(&s->n_items, 1);
				if (direct)
					s->n_direct++;
				ready_push(s, idx); /* as the kernel looks at a new registration at once */
				wake_waiters(s);
			}
		}
	} else if (idx < 0) {
		err = ENOENT;
	} else if (op == EPOLL_CTL_MOD) {
		struct ep_item *it = &s->items[idx];
		if (it->events & EPOLLEXCLUSIVE) {
			err = EINVAL; /* the kernel refuses MOD of exclusive registrations */
		} else {
			it->events = want;
			it->data = ev->data;
			it->disarmed = false;
			it->kseq = 0; /* the kernel is asked again, as it re-polls a modified registration */
			ready_push(s, idx);
			wake_waiters(s);
		}
	} else {
		libc.epoll_ctl(kset_of(s, idx), EPOLL_CTL_DEL, fd, NULL);
		item_free(s, idx);
	}
	forkgate_unlock(&s->lock);
	set_put(s);
	if (err) {
		errno = err;
		r = -1;
	} else if (is_set && op != EPOLL_CTL_MOD) {
		struct ep_set *b = set_get(fd);
		if (b) {
			atomic_fetch_add(&b->in_tables, op == EPOLL_CTL_ADD ? 1 : -1);
			set_put(b);
		}
	}
	if (!err && first_inner && atomic_load(&s->in_tables) == 0)
		epoll_adopt_fd(epfd); /* a plain registration of this set in another one becomes an item */
	return r;
}

/* fd is an epoll set that holds TLS fds (or sits in a table already): it goes into tables as an item.
 * No reference taken (set memory is never freed; a stale answer only sends one call the other way). */
static bool set_is_item(int fd)
{
	set_slot *slot = set_slot_for(fd, false);
	struct ep_set *b = slot ? atomic_load_explicit(slot, memory_order_acquire) : NULL;
	return b && (atomic_load(&b->n_items) > 0 || atomic_load(&b->in_tables) > 0);
}

/* A plain registration whose data is the set's outer token would be taken for the shim's: choose
 * another token. */
static void check_token(int epfd, const struct epoll_event *ev)
{
	struct ep_set *s = set_get(epfd);
	if (!s)
		return;
	forkgate_lock(&s->lock);
	if (ev->data.u64 == s->token) {
		s->token = random_token();
		struct epoll_event oev = {.events = EPOLLIN | EPOLLET, .data.u64 = s->token};
		if (s->inner >= 0)
			libc.epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->inner, &oev);
	}
	if ((uint32_t)(ev->data.u64 >> 32) == s->xtag) { /* the direct registrations get a new tag */
		s->xtag = new_xtag(s->token);
		for (int i = 0; s->n_direct > 0 && i < s->cap; i++) {
			if (s->items[i].fd < 0 || !is_direct(&s->items[i]))
				continue;
			struct epoll_event kev = {.events = inner_events(s->items[i].events),
						  .data.u64 = dtoken(s, i)};
			libc.epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->items[i].fd, NULL);
			libc.epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->items[i].fd, &kev);
			ready_push(s, i); /* an edge may have been lost between the two */
		}
	}
	forkgate_unlock(&s->lock);
	set_put(s);
}

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	libc_ensure();
	if (__builtin_expect(fdtab_load(fd) == NULL, 1)) {
		if (set_slot_for(fd, false) && set_is_item(fd) && !child_shares_parent_memory())
			return ctl_item(epfd, op, fd, ev, true);
		int r = libc.epoll_ctl(epfd, op, fd, ev);
		if (r == 0 && ev && op != EPOLL_CTL_DEL && set_slot_for(epfd, false))
			check_token(epfd, ev);
		return r;
	}
	if (child_shares_parent_memory())
		return libc.epoll_ctl(epfd, op, fd, ev); /* the parent's tables are read-only here */
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.epoll_ctl(epfd, op, fd, ev);
	bool sentinel = conn_is_sentinel(c);
	conn_put(c);
	if (sentinel) /* refused or closing: its calls fail on their own; readiness is the kernel's */
		return libc.epoll_ctl(epfd, op, fd, ev);
	return ctl_item(epfd, op, fd, ev, false);
}

/* Every registration on the ready list is an edge-triggered one that is there only for bytes held inside
 * the shim (held_only): looking at them asks nothing of the kernel. s->lock held. */
static bool only_held_ready(const struct ep_set *s)
{
	for (int idx = s->ready_head; idx >= 0; idx = s->items[idx].next)
		if (!s->items[idx].held_only)
			return false;
	return true;
}

/* One item taken off the ready list for a look outside the lock. */
struct look {
	int idx, fd;
	uint32_t gen, events;
	bool held_only, is_set;
	bool have_kmask; /* kmask is the kernel's mask from this very wait's harvest */
	uint32_t kmask;
};

/* Handshake deadlines (s->lock held): the items whose deadline passed go on the ready list; returns the
 * earliest deadline still ahead, or `until` when that comes first (-1: none). */
static long long hs_scan(struct ep_set *s, long long now, long long until)
{
	for (int i = 0; i < s->n_hs;) {
		struct ep_item *it = &s->items[s->hs[i]];
		if (it->fd < 0 || !it->connecting) {
			if (it->fd < 0)
				it->connecting = false;
			s->hs[i] = s->hs[--s->n_hs];
			continue;
		}
		if (it->hs_dl >= 0 && it->hs_dl <= now)
			ready_push(s, s->hs[i]);
		else if (it->hs_dl >= 0 && (until < 0 || it->hs_dl < until))
			until = it->hs_dl;
		i++;
	}
	return until;
}

static uint32_t set_item_events(int fd, long long *hs_dl);

/* What one item can do now: the connection's predicate, or for a set inside this one, its look
 * (set_peek). No lock of ours held. */
static uint32_t look_at(const struct look *lk, long long *hs_dl, unsigned long long *bin)
{
	*hs_dl = -1;
	*bin = 0;
	if (lk->is_set)
		return set_item_events(lk->fd, hs_dl);
	struct conn *c = conn_get(lk->fd);
	if (!c)
		return 0;
	uint32_t r =
	    tls_events(c, lk->fd, lk->events, lk->held_only, lk->have_kmask ? &lk->kmask : NULL, hs_dl, bin);
	conn_put(c);
	return r;
}

/* Takes up to max items off the head of the ready list into look[] (s->lock held). fresh: the number of
 * this round's harvest (its masks are current), or 0. */
static int take_looks(struct ep_set *s, struct look *look, int max, uint32_t fresh)
{
	int k = 0, budget = s->n_ready;
	while (k < max && budget-- > 0 && s->ready_head >= 0) {
		int idx = s->ready_head;
		ready_remove(s, idx);
		struct ep_item *it = &s->items[idx];
		look[k++] = (struct look){.idx = idx,
					  .fd = it->fd,
					  .gen = it->gen,
					  .events = it->events,
					  .held_only = it->held_only,
					  .is_set = it->is_set,
					  .have_kmask = fresh && it->kseq == fresh && !is_direct(it),
					  .kmask = it->kmask};
		it->kseq = 0; /* used once: a later look (level-triggered) asks the kernel */
	}
	return k;
}

/* Records a look's handshake deadline on its item (s->lock held). */
static void note_hs(struct ep_set *s, int idx, long long hs_dl)
{
	if (hs_dl >= 0) {
		s->items[idx].hs_dl = hs_dl;
		hs_add(s, idx);
	} else {
		s->items[idx].connecting = false;
	}
}

/* ---- a set seen from outside (poll/select on its fd, an outer set holding it) ----
 * The kernel sees the set's fd readable when its inner set has an event (a TLS fd's kernel edge, the
 * eventfd) or a plain fd is ready; neither says whether epoll_wait on it would return something. So
 * whoever watches it from outside looks first: set_peek does what a wait would do up to the report
 * (the inner set's events onto the ready list, each listed item asked) and changes nothing a wait
 * would report: items with nothing to report leave the list (as a wait drops them), the others stay,
 * ONESHOT and EPOLLET state untouched. It stops at the first item with something to report. After it,
 * the kernel's answer for the set's fd is about its plain fds only (the inner set is empty then). */
#define PEEK_MAX_DEPTH 6
static __thread int peek_depth; /* sets inside sets: how deep this thread's look goes */

static bool set_peek(struct ep_set *s, long long *hs_dl)
{
	*hs_dl = -1;
	if (peek_depth >= PEEK_MAX_DEPTH)
		return false; /* deeper than the kernel lets sets nest (it says ELOOP at 5) */
	peek_depth++;
	bool found = false;
	forkgate_lock(&s->lock);
	own_inner(s);
	long long dl = hs_scan(s, mono_ms(), -1);
	harvest(s);
	/* Direct registrations' events wait in the program's kernel set, where a look cannot take them
	 * without taking the program's own: each is looked at. */
	for (int i = 0; s->n_direct > 0 && i < s->cap; i++)
		if (s->items[i].fd >= 0 && is_direct(&s->items[i]))
			ready_push(s, i);
	for (int round = 0; !found && s->n_ready > 0 && round < 64; round++) {
		struct look look[16];
		uint32_t rev[16];
		long long hs[16];
		unsigned long long bin[16];
		int k = take_looks(s, look, 16, 0);
		forkgate_unlock(&s->lock);
		for (int i = 0; i < k; i++)
			rev[i] = look_at(&look[i], &hs[i], &bin[i]);
		forkgate_lock(&s->lock);
		for (int i = 0; i < k; i++) {
			struct ep_item *it = &s->items[look[i].idx];
			if (it->fd != look[i].fd || it->gen != look[i].gen || it->disarmed)
				continue;
			note_hs(s, look[i].idx, hs[i]);
			if (hs[i] >= 0 && (dl < 0 || hs[i] < dl))
				dl = hs[i];
			uint32_t out = rev[i] & (it->events | EPOLLERR | EPOLLHUP) & ~(uint32_t)EPOLLPRI;
			if (look[i].held_only && out && bin[i] == it->seen_in && it->idle_reports >= 1)
				out = 0; /* a wait would not report it again (EPOLLET, nothing read) */
			if (!out) {
				it->held_only = false;
				continue;
			}
			ready_push(s, look[i].idx);
			found = true;
		}
	}
	if (found && s->waiters > 0)
		wake_waiters(s); /* a thread in epoll_wait on it may have missed what this look held */
	forkgate_unlock(&s->lock);
	peek_depth--;
	*hs_dl = dl;
	return found;
}

/* The answer for set b (fd) seen from outside: its look (set_peek), else the kernel's poll of its fd.
 * The kernel says readable for a plain fd's event, or for a TLS fd's event that came after the look
 * (a second session ticket a moment after the first): the inner set is asked which, and a TLS event
 * is looked at again. After SET_LOOK_TRIES looks, events that keep coming are reported (readable at
 * worst once too often: never a lost edge). */
#define SET_LOOK_TRIES 4

static short set_outside_revents(struct ep_set *b, int fd, short events, long long *hs_dl)
{
	short rev = 0;
	for (int tries = 0; tries < SET_LOOK_TRIES; tries++) {
		if (b && set_peek(b, hs_dl))
			return POLLIN;
		struct pollfd p = {.fd = fd, .events = events};
		rev = libc.poll(&p, 1, 0) == 1 ? p.revents : 0;
		if (!(rev & POLLIN) || !b)
			break;
		forkgate_lock(&b->lock);
		int inner = b->inner;
		forkgate_unlock(&b->lock);
		struct pollfd q = {.fd = inner, .events = POLLIN};
		if (inner < 0 || libc.poll(&q, 1, 0) != 1)
			break; /* the inner set is quiet: a plain fd's readiness */
	}
	return rev;
}

/* A set inside another set: EPOLLIN when epoll_wait on it would return something. */
static uint32_t set_item_events(int fd, long long *hs_dl)
{
	struct ep_set *b = set_get(fd);
	short rev = set_outside_revents(b, fd, POLLIN, hs_dl);
	if (b)
		set_put(b);
	return (rev & POLLIN) ? (uint32_t)EPOLLIN : 0;
}

bool epoll_has_tls_sets(void)
{
	return atomic_load_explicit(&n_inner_sets, memory_order_relaxed) > 0;
}

bool epoll_is_tls_set(int fd)
{
	if (atomic_load_explicit(&n_inner_sets, memory_order_relaxed) == 0)
		return false;
	set_slot *slot = set_slot_for(fd, false);
	struct ep_set *b = slot ? atomic_load_explicit(slot, memory_order_acquire) : NULL;
	return b && atomic_load(&b->n_items) > 0;
}

short epoll_set_revents(int fd, short events, long long *hs_dl)
{
	*hs_dl = -1;
	struct ep_set *b = set_get(fd);
	short rev = set_outside_revents(b, fd, events, hs_dl);
	if (b)
		set_put(b);
	return (short)(rev & (events | POLLERR | POLLHUP | POLLNVAL));
}

struct ep_set *epoll_set_watch_begin(int fd)
{
	struct ep_set *b = set_get(fd);
	if (!b)
		return NULL;
	atomic_fetch_add(&b->watchers, 1);
	atomic_fetch_add(&n_tls_waiters, 1);
	return b;
}

void epoll_set_watch_end(struct ep_set *s)
{
	atomic_fetch_sub(&s->watchers, 1);
	atomic_fetch_sub(&n_tls_waiters, 1);
	set_put(s);
}

void epoll_set_watch(int fd, int delta)
{
	struct ep_set *b = set_get(fd);
	if (!b)
		return;
	atomic_fetch_add(&b->watchers, delta);
	atomic_fetch_add(&n_tls_waiters, delta); /* poll_notify_epoll then tells the set */
	set_put(b);
}

static int real_wait(int epfd, struct epoll_event *events, int max, int timeout, const sigset_t *sig,
		     bool is_pwait)
{
	return is_pwait ? libc.epoll_pwait(epfd, events, max, timeout, sig)
			: libc.epoll_wait(epfd, events, max, timeout);
}

/* epoll_wait on a set with a table. */
static int wait_tls(struct ep_set *s, int epfd, struct epoll_event *events, int max, int timeout,
		    const sigset_t *sig, bool is_pwait)
{
	long long deadline = timeout < 0 ? -1 : mono_ms() + timeout;
	bool held_pass_done = false; /* at most one round without a real wait per call */
	for (;;) {
		forkgate_lock(&s->lock);
		own_inner(s);
		if (s->inner >= 0 && s->forks != forkgate_forks())
			s->shared = true; /* a child may wait on the kernel set too */
		long long now = mono_ms();
		long long until = hs_scan(s, now, deadline); /* handshake deadlines end the wait too */
		int have = s->n_ready;
		int room = max;
		if (have) /* keep room for the ready list: plain events must not starve TLS ones */
			room = max - (have < max / 2 ? have : max / 2);
		int wait = have ? 0 : until < 0 ? -1 : (int)(until - now < 0 ? 0 : until - now);
		if (s->shared && (wait < 0 || wait > SHARED_WAIT_MS))
			wait = SHARED_WAIT_MS;
		/* Only edge-triggered leftovers on the list (reported, then looked at again for bytes held
		 * inside the shim): they need no kernel, so they are looked at first, without the zero
		 * timeout wait; when none has anything (the program read it all), the next round waits
		 * with the real timeout at once. When one has, the zero wait follows below. */
		bool held_pass = !held_pass_done && have > 0 && only_held_ready(s);
		int r = 0, e = 0;
		if (held_pass) {
			held_pass_done = true;
		} else {
			s->waiters++;
			atomic_fetch_add(&n_tls_waiters, 1);
			forkgate_unlock(&s->lock);
			r = room > 0 ? real_wait(epfd, events, room, wait, sig, is_pwait) : 0;
			e = errno;
			atomic_fetch_sub(&n_tls_waiters, 1);
			forkgate_lock(&s->lock);
			s->waiters--;
		}
		if (r < 0) {
			forkgate_unlock(&s->lock);
			errno = e;
			return -1;
		}
		int n = 0;
		bool token_seen = s->shared;
		for (int i = 0; i < r; i++) {
			uint64_t d = events[i].data.u64;
			if (d == s->token && s->inner >= 0)
				token_seen = true;
			else if ((uint32_t)(d >> 32) == s->xtag && s->n_direct > 0)
				direct_event(s, (uint32_t)d);
			else
				events[n++] = events[i];
		}
		uint32_t fresh = 0; /* the harvest of this round: its masks are current */
		if (token_seen && s->inner >= 0) {
			harvest(s);
			fresh = s->harvests;
		}
		/* Take the items that are ready now (no more than fit); the ones put back below wait for the
		 * next call, as the kernel's level-triggered ones do. */
		struct look look[64];
		int k = take_looks(s, look, 64 < max - n ? 64 : max - n, fresh);
		forkgate_unlock(&s->lock);
		uint32_t rev[64];
		long long hs_dl[64];
		unsigned long long bin[64];
		for (int i = 0; i < k; i++) /* handshake steps and record processing: no lock of ours */
			rev[i] = look_at(&look[i], &hs_dl[i], &bin[i]);
		forkgate_lock(&s->lock);
		for (int i = 0; i < k; i++) {
			struct ep_item *it = &s->items[look[i].idx];
			if (it->fd != look[i].fd || it->gen != look[i].gen || it->disarmed)
				continue; /* deleted, closed or re-armed meanwhile / taken by another thread
					   */
			note_hs(s, look[i].idx, hs_dl[i]);
			uint32_t out = rev[i] & (it->events | EPOLLERR | EPOLLHUP) & ~(uint32_t)EPOLLPRI;
			if (look[i].held_only && out) {
				/* EPOLLET, bytes still inside the shim: again after each read of the
				 * program's, and once without one (a program that stopped reading is not
				 * woken forever) */
				if (bin[i] != it->seen_in)
					it->idle_reports = 0;
				else if (it->idle_reports++ >= 1)
					out = 0;
			} else if (out) {
				it->idle_reports = 0;
			}
			if (!out) {
				it->held_only = false;
				continue;
			}
			it->seen_in = bin[i];
			events[n].events = out;
			events[n++].data = it->data;
			if (it->events & EPOLLONESHOT) {
				it->disarmed = true;
			} else if (!(it->events & EPOLLET)) {
				ready_push(s, look[i].idx);
			} else if ((out & EPOLLIN) && !it->is_set) {
				it->held_only = true;
				ready_push(s, look[i].idx);
			}
		}
		if (held_pass && n > 0 && n < max) {
			/* Held bytes to report: the kernel's events too, as the zero wait would have
			 * given them (plain fds are not starved by a program that reads slowly). */
			forkgate_unlock(&s->lock);
			int r2 = real_wait(epfd, events + n, max - n, 0, sig, is_pwait);
			forkgate_lock(&s->lock);
			bool tok = false;
			for (int i = 0, m = n; i < r2; i++) {
				if (events[m + i].data.u64 == s->token && s->inner >= 0)
					tok = true;
				else
					events[n++] = events[m + i];
			}
			if (tok)
				harvest(s); /* looked at by the next call */
		}
		if (n > 0 && s->n_ready > 0)
			wake_waiters(s); /* another waiting thread may take what is left */
		forkgate_unlock(&s->lock);
		if (held_pass && n == 0)
			continue; /* nothing held: the real wait (with its timeout) is still to come */
		if (n > 0 || (deadline >= 0 && mono_ms() >= deadline))
			return n;
	}
}

/* Events that a wait which began before the set had a table may have carried: the outer token. */
static int drop_token_events(struct epoll_event *events, int r, int epfd)
{
	struct ep_set *s = set_get(epfd);
	if (!s)
		return r;
	forkgate_lock(&s->lock);
	int n = 0;
	for (int i = 0; i < r; i++)
		if (events[i].data.u64 != s->token && (uint32_t)(events[i].data.u64 >> 32) != s->xtag)
			events[n++] = events[i];
	forkgate_unlock(&s->lock);
	set_put(s);
	return n;
}

static int wait_common(int epfd, struct epoll_event *events, int max, int timeout, const sigset_t *sig,
		       bool is_pwait)
{
	if (max <= 0 || !events || child_shares_parent_memory())
		return real_wait(epfd, events, max, timeout, sig, is_pwait);
	struct ep_set *s = set_get(epfd);
	if (!s)
		return real_wait(epfd, events, max, timeout, sig, is_pwait);
	int r;
	if (atomic_load(&s->n_items) == 0) {
		/* No TLS fd (yet): the real wait, counted so that a first EPOLL_CTL_ADD of a TLS fd by
		 * another thread wakes it (the set's eventfd); an outer-token event is then the shim's, not
		 * the program's, and the wait goes on as a TLS one (for the rest, the timeout counts as 0).
		 */
		atomic_fetch_add(&s->pt_waiters, 1);
		r = real_wait(epfd, events, max, timeout, sig, is_pwait);
		atomic_fetch_sub(&s->pt_waiters, 1);
		if (r > 0) {
			int n = drop_token_events(events, r, epfd);
			if (n == 0)
				n = wait_tls(s, epfd, events, max, timeout < 0 ? -1 : 0, sig, is_pwait);
			r = n;
		}
	} else {
		r = wait_tls(s, epfd, events, max, timeout, sig, is_pwait);
	}
	int e = errno;
	set_put(s);
	errno = e;
	return r;
}

EXPORT int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout)
{
	libc_ensure();
	cork_release_pending();
	return wait_common(epfd, events, max, timeout, NULL, false);
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout, const sigset_t *sig)
{
	libc_ensure();
	cork_release_pending();
	return wait_common(epfd, events, max, timeout, sig, true);
}

static int timespec_ms(const struct timespec *ts)
{
	if (!ts)
		return -1;
	long long ms = (long long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

EXPORT int epoll_pwait2(int epfd, struct epoll_event *events, int max, const struct timespec *ts,
			const sigset_t *sig)
{
	libc_ensure();
	cork_release_pending();
	if (!libc.epoll_pwait2) {
		errno = ENOSYS;
		return -1;
	}
	struct ep_set *s = set_get(epfd);
	bool tls = s && atomic_load(&s->n_items) > 0;
	if (s)
		set_put(s);
	if (!tls || max <= 0 || !events || child_shares_parent_memory()) {
		int r = libc.epoll_pwait2(epfd, events, max, ts, sig);
		if (r > 0 && set_slot_for(epfd, false))
			r = drop_token_events(events, r, epfd);
		return r;
	}
	/* Millisecond resolution is enough for the sets that hold TLS fds. */
	return wait_common(epfd, events, max, timespec_ms(ts), sig, true);
}

/* ---- close, fork ---- */

void epoll_forget_fd(int fd)
{
	bool in_tables = false;
	set_slot *slot = set_slot_for(fd, false);
	if (slot && atomic_load_explicit(slot, memory_order_acquire) && !child_shares_parent_memory()) {
		/* fd is an epoll set we know: its table goes */
		struct ep_set *s = atomic_exchange(slot, NULL);
		if (s) {
			in_tables = atomic_load(&s->in_tables) > 0;
			set_put(s);
		}
	}
	if (atomic_load_explicit(&n_inner_sets, memory_order_acquire) == 0 || (!fdtab_load(fd) && !in_tables))
		return;
	/* A TLS fd (or a set inside other sets): out of every set that holds it (the kernel would keep a
	 * registration of a file that another fd still refers to, and the number may be reused). */
	forkgate_lock(&registry_lock);
	for (struct ep_set *s = all_sets; s; s = s->all_next) {
		forkgate_lock(&s->lock);
		int idx = s->inner >= 0 ? find_item(s, fd) : -1;
		if (idx >= 0) {
			/* A direct registration is in the program's kernel set, which a fork shares: one made
			 * before a fork (or in the parent) is left to the kernel, which drops it when the
			 * file's last fd closes, as it would the program's own. */
			struct ep_item *it = &s->items[idx];
			bool mine = !is_direct(it) || (it->born_gen == forkgate_process_gen() &&
						       it->born_forks == forkgate_forks());
			if (s->fork_gen == forkgate_process_gen() && mine)
				libc.epoll_ctl(kset_of(s, idx), EPOLL_CTL_DEL, fd, NULL);
			item_free(s, idx);
		}
		forkgate_unlock(&s->lock);
	}
	forkgate_unlock(&registry_lock);
}

void poll_notify_epoll(int fd)
{
	/* A read left decrypted bytes inside the shim: no kernel event will say so (the socket may be
	 * empty, or below SO_RCVLOWAT). Only threads already waiting need it: the others look at the
	 * ready list, where their level-triggered registrations still are, on their next call. */
	if (in_look || atomic_load_explicit(&n_tls_waiters, memory_order_acquire) == 0)
		return;
	/* By connection, not by number: a set may hold a dup of fd (one socket, one session). Only a
	 * connection with several fds has other numbers; then each set's registrations are compared with
	 * it (this path runs only while threads wait). */
	const struct conn *c = fdtab_load(fd);
	bool copies = c && c != &conn_closing && __atomic_load_n(&c->fd_count, __ATOMIC_RELAXED) > 1;
	forkgate_lock(&registry_lock);
	for (struct ep_set *s = all_sets; s; s = s->all_next) {
		if (s->inner < 0)
			continue;
		forkgate_lock(&s->lock);
		if (s->fork_gen == forkgate_process_gen()) {
			bool woke = false;
			int idx = find_item(s, fd);
			if (idx >= 0) {
				s->items[idx].held_only = false;
				ready_push(s, idx);
				woke = true;
			}
			for (int i = 0; copies && i < s->cap; i++) {
				int f = s->items[i].fd;
				if (f >= 0 && f != fd && fdtab_load(f) == c) {
					s->items[i].held_only = false;
					ready_push(s, i);
					woke = true;
				}
			}
			if (woke)
				wake_waiters(s);
		}
		forkgate_unlock(&s->lock);
	}
	forkgate_unlock(&registry_lock);
}

/* Finds fd's registration in /proc/self/fdinfo/EPFD (the kernel lists each as "tfd: FD events: HEX
 * data: HEX ... ino: HEX"): 1 with *ev filled, 0 when not listed, -1 when the file cannot be read. */
static int fdinfo_find(int epfd, int fd, unsigned long ino, struct epoll_event *ev)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	int f = (int)raw_syscall(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
	if (f < 0)
		return -1;
	char buf[8192];
	size_t have = 0;
	int found = 0;
	for (;;) {
		long r =
		    raw_syscall(SYS_read, f, (long)(buf + have), (long)(sizeof(buf) - 1 - have), 0, 0, 0);
		if (r <= 0 && have == 0)
			break;
		have += r > 0 ? (size_t)r : 0;
		buf[have] = 0;
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n')) || (r <= 0 && *line)) {
			if (nl)
				*nl = 0;
			int tfd;
			unsigned events;
			unsigned long long data;
			unsigned long tino = 0;
			const char *inop = strstr(line, "ino:");
			if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &events, &data) == 3 &&
			    tfd == fd && (!inop || (sscanf(inop, "ino:%lx", &tino) == 1 && tino == ino))) {
				ev->events = events;
				ev->data.u64 = data;
				found = 1;
			}
			if (!nl) {
				line += strlen(line);
				break;
			}
			line = nl + 1;
		}
		size_t rest = have - (size_t)(line - buf);
		memmove(buf, line, rest);
		have = rest;
		if (found || r <= 0)
			break;
	}
	raw_syscall(SYS_close, f, 0, 0, 0, 0, 0);
	return found;
}

void epoll_adopt_fd(int fd)
{
	if (child_shares_parent_memory())
		return;
	bool is_set = !fdtab_load(fd); /* a TLS fd, or an epoll set at its first item */
	/* The sets this process made (epoll_create*) or used with a TLS fd. A registration made while fd was
	 * a plain socket sits in the kernel set with the program's data: probe each set with an ADD (EEXIST:
	 * it is there), read its events and data from fdinfo, and move it into the shim's table. */
	int epfds[64], n = 0;
	forkgate_lock(&registry_lock);
	for (struct ep_set *s = all_sets; s && n < 64; s = s->all_next)
		epfds[n++] = s->epfd;
	forkgate_unlock(&registry_lock);
	struct stat st;
	if (n == 0 || fstat(fd, &st) != 0)
		return;
	for (int i = 0; i < n; i++) {
		struct ep_set *s = epfds[i] == fd ? NULL : set_get(epfds[i]);
		if (!s)
			continue;
		struct epoll_event probe = {.events = 0, .data.u64 = s->token};
		int r = libc.epoll_ctl(epfds[i], EPOLL_CTL_ADD, fd, &probe);
		if (r == 0) {
			libc.epoll_ctl(epfds[i], EPOLL_CTL_DEL, fd, NULL);
		} else if (errno == EEXIST) {
			struct epoll_event ev;
			int f = fdinfo_find(epfds[i], fd, (unsigned long)st.st_ino, &ev);
			if (f == 1 && libc.epoll_ctl(epfds[i], EPOLL_CTL_DEL, fd, NULL) == 0) {
				if (ctl_item(epfds[i], EPOLL_CTL_ADD, fd, &ev, is_set) != 0)
					log_msg(LOG_WARN,
						"fd %d: its epoll registration in set %d (made before it "
						"became TLS) "
						"could not be taken over (%s): it is no longer reported; "
						"register "
						"it after connect()",
						fd, epfds[i], strerror(errno));
			} else {
				log_msg(LOG_WARN,
					"fd %d: registered in epoll set %d before it became TLS, and %s: its "
					"readiness there is the kernel's (ciphertext, which can stall the "
					"program); "
					"mount /proc or register it after connect()",
					fd, epfds[i],
					f < 0 ? "/proc/self/fdinfo cannot be read"
					      : "fdinfo does not list it");
			}
		}
		set_put(s);
	}
}

/* epoll_create and epoll_create1: the shim knows every set the program makes, so registrations made
 * before a socket became TLS can be found (epoll_adopt_fd). The table holds no inner set until a TLS
 * fd arrives: waits on it stay the real call. */
static int track_new_set(int epfd)
{
	if (epfd >= 0 && !child_shares_parent_memory()) {
		close_forget_stale(epfd);
		epoll_forget_fd(epfd); /* a stale table of an earlier file with this number */
		struct ep_set *s = set_get_or_make(epfd);
		if (s)
			set_put(s);
	}
	return epfd;
}

EXPORT int epoll_create(int size)
{
	libc_ensure();
	return track_new_set(libc.epoll_create(size));
}

EXPORT int epoll_create1(int flags)
{
	libc_ensure();
	return track_new_set(libc.epoll_create1(flags));
}

/* ---- closefrom, close_range ---- */

bool epoll_owns_fd(int fd)
{
	if (atomic_load_explicit(&n_inner_sets, memory_order_relaxed) == 0 || fd < 0 || fd >= OWN_FD_MAX)
		return false;
	return atomic_load_explicit(&own_fds[fd], memory_order_acquire) != 0;
}

/* Moves the shim's fd `fd`, registered in kernel set kset with ev, to another number (close-on-exec):
 * the copy is registered before the old number goes (the kernel keys a registration by file and
 * number). The new number, or -1 with errno. */
static int own_fd_move(int kset, int fd, struct epoll_event *ev)
{
	int nfd = (int)raw_syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 0, 0, 0, 0);
	if (nfd < 0)
		return -1;
	if (libc.epoll_ctl(kset, EPOLL_CTL_ADD, nfd, ev) != 0) {
		int e = errno;
		raw_syscall(SYS_close, nfd, 0, 0, 0, 0, 0);
		errno = e;
		return -1;
	}
	libc.epoll_ctl(kset, EPOLL_CTL_DEL, fd, NULL);
	own_mark(nfd, true);
	own_mark(fd, false);
	raw_syscall(SYS_close, fd, 0, 0, 0, 0, 0);
	return nfd;
}

int epoll_move_own_fd(int fd)
{
	int r = -1, err = ENOENT;
	forkgate_lock(&registry_lock);
	for (struct ep_set *s = all_sets; s && r < 0 && err == ENOENT; s = s->all_next) {
		forkgate_lock(&s->lock);
		int was_inner = s->inner, was_efd = s->efd;
		/* a fork child: its own inner set first; the parent's numbers are closed then */
		own_inner(s);
		if ((fd == was_inner || fd == was_efd) && fd != s->inner && fd != s->efd) {
			r = 0;
		} else if (fd == s->inner) {
			/* the program's set holds the inner set */
			struct epoll_event oev = {.events = EPOLLIN | EPOLLET, .data.u64 = s->token};
			int nfd = own_fd_move(s->epfd, fd, &oev);
			if (nfd >= 0) {
				s->inner = nfd;
				wake_waiters(s); /* an edge that came between the two registrations */
				r = 0;
			}
			err = errno;
		} else if (fd == s->efd) {
			struct epoll_event wev = {.events = EPOLLIN, .data.u64 = TOKEN_WAKE};
			int nfd = own_fd_move(s->inner, fd, &wev);
			if (nfd >= 0) {
				s->efd = nfd;
				r = 0;
			}
			err = errno;
		}
		forkgate_unlock(&s->lock);
	}
	forkgate_unlock(&registry_lock);
	if (r < 0)
		errno = err;
	return r;
}

bool epoll_has_sets(void)
{
	return atomic_load_explicit(&n_sets, memory_order_acquire) > 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int epoll_prepare_close_range(unsigned first, unsigned last, int **out)
{
	*out = NULL;
	if (child_shares_parent_memory())
		return 0;
	/* The sets in the range go as their numbers are closed (as close() would drop them one by one). */
	for (;;) {
		int gone = -1;
		forkgate_lock(&registry_lock);
		for (struct ep_set *s = all_sets; s; s = s->all_next) {
			set_slot *slot = set_slot_for(s->epfd, false);
			if ((unsigned)s->epfd >= first && (unsigned)s->epfd <= last && slot &&
			    atomic_load(slot) == s) {
				gone = s->epfd;
				break;
			}
		}
		forkgate_unlock(&registry_lock);
		if (gone < 0)
			break;
		epoll_forget_fd(gone);
	}
	/* What is left in the range of the shim's own: the inner sets and eventfds of the other sets. */
	int n = 0, cap = 0, *fds = NULL;
	forkgate_lock(&registry_lock);
	for (struct ep_set *s = all_sets; s; s = s->all_next) {
		forkgate_lock(&s->lock);
		int mine[2] = {s->inner, s->efd};
		forkgate_unlock(&s->lock);
		for (int k = 0; k < 2; k++) {
			if (mine[k] < 0 || (unsigned)mine[k] < first || (unsigned)mine[k] > last)
				continue;
			if (n == cap) {
				int nc = cap ? cap * 2 : 16;
				int *nf = realloc(fds, (size_t)nc * sizeof(*nf));
				if (!nf) {
					forkgate_unlock(&registry_lock);
					free(fds);
					log_msg(LOG_WARN,
						"close_range/closefrom from %u: no memory for the list of "
						"the shim's "
						"own epoll fds in the range; they are closed too, and the "
						"TLS fds "
						"of the program's epoll sets are no longer reported",
						first);
					return -1;
				}
				fds = nf;
				cap = nc;
			}
			fds[n++] = mine[k];
		}
	}
	forkgate_unlock(&registry_lock);
	if (n > 1)
		qsort(fds, (size_t)n, sizeof(*fds), cmp_int);
	*out = fds;
	return n;
}
