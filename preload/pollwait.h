/* pollwait.h: what a poll-family wait (poll.c: poll, ppoll, select, pselect on TLS fds) leaves registered
 * while it sleeps, kept where a siglongjmp out of the wait cannot leave it dangling.
 *
 * A signal handler may jump out of the real poll (the classic alarm() timeout done with siglongjmp): the
 * rest of poll_tls never runs. So nothing a wait registers lives in its stack frame:
 *   - the wake-up record (wake.h: struct wake_waiter) and the copy of the fds it waits on are one
 *     per-thread record (thread-local storage, the fd copy grown with malloc and kept);
 *   - the epoll sets it counts itself a watcher of (epoll.h: epoll_set_watch_begin) are listed in it;
 *   - scratch arrays for more fds than fit on the stack are per-thread buffers, kept between calls.
 * The next wait in the thread finds a record a jump left linked and takes it over: unlinks it from the
 * wake list and undoes its epoll counts, then registers afresh. The thread's exit (a pthread key
 * destructor) does the same and frees the memory; a fork child drops the forking thread's links (the
 * child's wake list starts empty: wake.c) and undoes the epoll counts on its next wait.
 *
 * Nesting: a handler that calls poll while the thread waits in poll (no jump) also finds the record
 * linked. Taking it over is safe there too (the record is never on a stack): the interrupted call sees
 * that its ticket is no longer the record's, so it neither unlinks nor un-counts what the inner call
 * owns, and the inner call signals the thread's eventfd when it ends, so the outer call looks again and
 * registers afresh instead of sleeping unregistered. Scratch buffers are taken over only when their
 * owner is certainly gone (pollwait_scratch). */
#ifndef TLSSHIM_POLLWAIT_H
#define TLSSHIM_POLLWAIT_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

/* Registers the calling thread (eventfd efd: wake.h, wake_thread_fd) as waiting on the TLS fds of
 * fds[0..n) (copied: the program's array is not referenced), taking over the thread's record from an
 * earlier wait that a jump abandoned or that this call interrupts. Returns this wait's ticket, 0 when
 * there is no memory for the copy (the caller then waits unregistered, and counts epoll watchers with
 * epoll_set_watch). */
unsigned long pollwait_begin(const struct pollfd *fds, size_t n, int efd);

/* True while the ticket (non-zero) is still the record's: not taken over by a nested wait. */
bool pollwait_held(unsigned long ticket);

/* Counts this wait as a watcher of the epoll set on fd (no-op when fd is no set, or the ticket is no
 * longer the record's); pollwait_unwatch takes back every count this wait holds. */
void pollwait_watch(unsigned long ticket, int fd);
void pollwait_unwatch(unsigned long ticket);

/* Ends the wait: unregisters and un-counts what the ticket still owns. */
void pollwait_end(unsigned long ticket);

/* A per-thread scratch buffer of at least `bytes`, for a call whose frame is `frame`
 * (__builtin_frame_address(0)); which: one of the POLLWAIT_SCRATCH_* below, one per use. Kept across
 * calls, so a jump out of the call leaks nothing. When the buffer is held by a call that may still be
 * running (a handler nested in it), a private one is malloc'ed instead. NULL: no memory. Give it back
 * with pollwait_scratch_put. */
enum {
	POLLWAIT_SCRATCH_COPY,
	POLLWAIT_SCRATCH_SLOT,
	POLLWAIT_SCRATCH_SEL_FDS,
	POLLWAIT_SCRATCH_SEL_OUT,
	POLLWAIT_SCRATCH_N
};
void *pollwait_scratch(unsigned which, size_t bytes, void *frame);
void pollwait_scratch_put(unsigned which, void *p);

#endif
