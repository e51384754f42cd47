/* pollwait.c: see pollwait.h. */
#include "preload/pollwait.h"
#include "preload/epoll.h"
#include "preload/wake.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A thread's wait record. Written only by its own thread (poll_tls, the key destructor at its exit, the
 * fork child handler in the child); w is also read by other threads' wake_notify while linked, under
 * wake.c's wake_lock (wake_register/wake_unregister take it), and fds, which w points to, is replaced
 * only while w is not linked. */
struct pw_record {
	struct wake_waiter w;
	bool linked;	       /* w is on wake.c's list */
	bool took_over;	       /* this wait took the record from a wait still registered: wake at its end */
	int efd;	       /* the eventfd w was registered with (-1: none) */
	unsigned long ticket;  /* the wait that owns the record; 0: none */
	struct pollfd *fds;    /* the copy w points to */
	struct ep_set **watch; /* the epoll sets counted as watched (epoll_set_watch_begin) */
	size_t cap, n_watch;   /* entries allocated in fds and in watch; used in watch */
};

/* A scratch buffer: owner is the frame address of the call that holds it, 0 when none does. */
struct pw_scratch {
	void *p;
	size_t cap;
	uintptr_t owner;
};

/* Per-thread state (only its own thread touches it, except rec.w as said above). */
static __thread struct pw_record rec = {.efd = -1};
static __thread struct pw_scratch scratch[POLLWAIT_SCRATCH_N];
static __thread unsigned long last_ticket;
static __thread bool keyed; /* the key's value is set: the destructor will run at thread exit */

/* Made at load (wake.c explains why not on a first wait); read-only after. */
static pthread_key_t pw_key;
static bool key_made;

/* Unlinks the record and takes back its epoll counts. */
static void release(void)
{
	if (rec.linked) {
		wake_unregister(&rec.w);
		rec.linked = false;
	}
	for (size_t i = 0; i < rec.n_watch; i++)
		epoll_set_watch_end(rec.watch[i]);
	rec.n_watch = 0;
}

static void thread_exit(void *p)
{
	(void)p;
	release();
	rec.ticket = 0;
	free(rec.fds);
	free(rec.watch);
	rec.fds = NULL;
	rec.watch = NULL;
	rec.cap = 0;
	for (unsigned i = 0; i < POLLWAIT_SCRATCH_N; i++) {
		free(scratch[i].p);
		scratch[i] = (struct pw_scratch){0};
	}
}

/* The child's wake list starts empty (wake.c): the record is no longer on it. Its epoll counts are in the
 * child's copy of the sets: the next wait undoes them. */
static void atfork_child(void)
{
	rec.linked = false;
	rec.ticket = 0;
}

__attribute__((constructor)) static void pollwait_init(void)
{
	key_made = pthread_key_create(&pw_key, thread_exit) == 0;
	pthread_atfork(NULL, NULL, atfork_child);
}

/* The destructor must run for this thread before its record may be linked or its buffers kept. */
static bool ensure_keyed(void)
{
	if (!keyed && key_made && pthread_setspecific(pw_key, &rec) == 0)
		keyed = true;
	return keyed;
}

unsigned long pollwait_begin(const struct pollfd *fds, size_t n, int efd)
{
	/* Still registered: a wait a jump abandoned, or one this call interrupts (a handler's poll). */
	bool took = rec.linked || rec.n_watch > 0;
	release();
	rec.ticket = 0;
	if (!ensure_keyed() || n == 0)
		return 0;
	if (n > rec.cap) {
		struct pollfd *f = malloc(n * sizeof(*f));
		struct ep_set **w = malloc(n * sizeof(*w));
		if (!f || !w) {
			free(f);
			free(w);
			return 0;
		}
		free(rec.fds);
		free(rec.watch);
		rec.fds = f;
		rec.watch = w;
		rec.cap = n;
	}
	memcpy(rec.fds, fds, n * sizeof(*fds));
	if (++last_ticket == 0)
		last_ticket = 1;
	rec.ticket = last_ticket;
	rec.took_over = took;
	rec.efd = efd;
	if (efd >= 0) {
		wake_register(&rec.w, efd, rec.fds, n);
		rec.linked = true;
	}
	return rec.ticket;
}

bool pollwait_held(unsigned long ticket)
{
	return ticket != 0 && ticket == rec.ticket;
}

void pollwait_watch(unsigned long ticket, int fd)
{
	if (ticket == 0 || ticket != rec.ticket)
		return;
	struct ep_set *s = epoll_set_watch_begin(fd);
	if (!s)
		return;
	if (rec.n_watch < rec.cap)
		rec.watch[rec.n_watch++] = s;
	else
		epoll_set_watch_end(s); /* (cannot happen: at most one per fd in a round) */
}

void pollwait_unwatch(unsigned long ticket)
{
	if (ticket == 0 || ticket != rec.ticket)
		return;
	for (size_t i = 0; i < rec.n_watch; i++)
		epoll_set_watch_end(rec.watch[i]);
	rec.n_watch = 0;
}

void pollwait_end(unsigned long ticket)
{
	if (ticket == 0 || ticket != rec.ticket)
		return; /* taken over by a wait nested in this one (a handler's), which undid it */
	release();
	rec.ticket = 0;
	/* A wait this one interrupted lost its registration to it: make it look again. */
	if (rec.took_over && rec.efd >= 0)
		wake_signal(rec.efd);
	rec.took_over = false;
}

static bool on_altstack(void)
{
	stack_t ss;
	return sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK);
}

void *pollwait_scratch(unsigned which, size_t bytes, void *frame)
{
	struct pw_scratch *s = &scratch[which];
	uintptr_t f = (uintptr_t)frame;
	/* Held: its owner is gone for certain only when it ran at or below this frame on this stack (a call
	 * this one is nested in, through a handler, is above it, or this handler runs on the alternate
	 * stack). Otherwise a private buffer, freed at put; the kept one waits for a shallower call. */
	if (s->owner && (s->owner > f || on_altstack()))
		return malloc(bytes);
	if (!ensure_keyed())
		return malloc(bytes);
	if (bytes > s->cap) {
		free(s->p);
		s->p = malloc(bytes);
		s->cap = s->p ? bytes : 0;
		if (!s->p) {
			s->owner = 0;
			return NULL;
		}
	}
	s->owner = f;
	return s->p;
}

void pollwait_scratch_put(unsigned which, void *p)
{
	struct pw_scratch *s = &scratch[which];
	if (p && p == s->p)
		s->owner = 0;
	else
		free(p);
}
