/* epoll.h: the per-epoll-set readiness layer (epoll.c). What the other files call. */
#ifndef TLSSHIM_EPOLL_H
#define TLSSHIM_EPOLL_H

#include <stdbool.h>

/* fd is being closed (or replaced by dup2/dup3): a TLS fd leaves every set it is registered in; an
 * epoll set's own number drops the shim's table of it. For a plain fd that is no epoll set this is one
 * atomic load (no lock). Called before the kernel closes fd. */
void epoll_forget_fd(int fd);

/* fd has just become a TLS socket (connect to a tls destination): registrations the program made on it
 * while it was still a plain socket (nginx adds its upstream socket before connect()) are taken over
 * from the kernel sets into the shim's tables. */
void epoll_adopt_fd(int fd);

/* For poll/select on an epoll fd (poll.c). epoll_is_tls_set: fd is an epoll set whose table holds TLS
 * fds (one atomic load when the process has none). epoll_set_revents: its poll answer as epoll_wait on
 * it would give it (POLLIN when a TLS fd has something to report or a plain fd is ready; nothing for
 * records the program cannot read), *hs_dl the earliest handshake deadline in it (or -1).
 * epoll_set_watch(fd, +1/-1) around the wait: wake-ups no kernel event gives then reach the set's fd. */
bool epoll_is_tls_set(int fd);
bool epoll_has_tls_sets(void); /* some set holds TLS fds (one atomic load) */
short epoll_set_revents(int fd, short events, long long *hs_dl);
void epoll_set_watch(int fd, int delta);
/* The same by the set itself, not its number (pollwait.c keeps these in a thread's wait record, so a wait
 * a siglongjmp abandoned is undone on the set it counted on even if the number was closed and reused):
 * begin counts one watcher on fd's set and returns it with a reference held (NULL: fd is no set); end
 * takes the watcher back and drops the reference. */
struct ep_set;
struct ep_set *epoll_set_watch_begin(int fd);
void epoll_set_watch_end(struct ep_set *s);

/* True once the process has an epoll set the shim knows (one atomic load). */
bool epoll_has_sets(void);

/* fd is one of the shim's own (an inner set or wake-up eventfd of an epoll set; numbers below 65536):
 * the program never opened it. One relaxed load while no set holds a TLS fd. */
bool epoll_owns_fd(int fd);

/* Moves the shim's own fd `fd` to another number (registrations and all), so that the program's
 * dup2/dup3 onto that number takes nothing from the shim. 0, or -1 with errno (EMFILE). */
int epoll_move_own_fd(int fd);

/* A close_range/closefrom of [first, last] is about to run: the epoll sets in the range drop their
 * tables, and *out (malloc'ed, sorted, the caller frees it) gets the shim's own fds in the range that
 * must stay open: the inner epoll sets and eventfds of the sets that stay. Their count, 0 when none,
 * -1 when the list could not be allocated (then the caller closes the whole range). */
int epoll_prepare_close_range(unsigned first, unsigned last, int **out);

#endif
