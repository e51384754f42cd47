/* wake.h: waking threads blocked in poll/ppoll/select/epoll when a TLS fd they wait on becomes readable
 * only inside the shim (another thread's read left decrypted bytes in wolfSSL while the kernel socket
 * went empty: the kernel would never wake them).
 *   poll family: each waiting thread has its own eventfd (made on first need, closed at thread exit),
 *                added to the real poll, and registered with the TLS fds it waits on.
 *   epoll:       each epoll set that holds a TLS fd gets one eventfd of its own (poll.c).
 * wake_notify(fd) is called by conn.c after a read that left bytes behind; it costs one atomic load
 * when nobody waits. */
#ifndef TLSSHIM_WAKE_H
#define TLSSHIM_WAKE_H

#include <poll.h>
#include <stddef.h>

/* This thread's eventfd, or -1 (then the caller waits without it). */
int wake_thread_fd(void);

/* One waiting thread: linked into wake.c's list between wake_register and wake_unregister (no cap on the
 * number of waiters). Never in a stack frame: a siglongjmp out of the wait would leave it listed there
 * (poll.c keeps it in a per-thread record: pollwait.h). Fields are wake.c's. */
struct wake_waiter {
	struct wake_waiter *prev, *next;
	int efd;
	const struct pollfd *fds;
	size_t n;
};

/* Registers this thread (its eventfd efd) as waiting on the TLS fds in fds[0..n) (entries with fd < 0
 * or not TLS are ignored). w and the array must stay valid until wake_unregister(w), or until the
 * thread's exit when a jump skipped that (pollwait.h). */
void wake_register(struct wake_waiter *w, int efd, const struct pollfd *fds, size_t n);
void wake_unregister(struct wake_waiter *w);

/* Wakes the thread that waits on eventfd efd (one write; never blocks). */
void wake_signal(int efd);

/* Empties an eventfd. */
void wake_drain(int efd);

/* Bytes wait inside the session of fd: wake whoever waits on it. */
void wake_notify(int fd);

/* poll.c's part of wake_notify: signal the epoll sets that hold fd. */
void poll_notify_epoll(int fd);

#endif
