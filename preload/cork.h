/* cork.h: one TCP segment for a response a server program writes in two calls (serve rules, coalesce=).
 *
 * Plain nginx (without tcp_nopush) writes a response's headers with writev and its body with sendfile.
 * Its own TLS copies both into one record; through the shim each call is a record of its own, and each
 * record sent at once is a TCP segment of its own, which on the receiving side is one more wake-up.
 * The shim cannot know that another write follows, so it learns it per connection: a write that starts
 * a burst (the first since a read, or after a pause) followed at once by another one is a pair. Once a
 * connection has shown pairs, the first write of each burst leaves with MSG_MORE: the kernel holds its
 * record, the second write's record pushes both out as one segment.
 *
 * What bounds the wait of a held record:
 *   - the next write on the connection (the pair: it pushes both);
 *   - the writing thread's next read on any TLS fd, or its next wait in epoll_wait, poll, select or
 *     accept (cork_release_pending: the record is pushed by setsockopt(TCP_CORK, 0) before the call);
 *   - otherwise the kernel: a segment held by MSG_MORE leaves after at most 200 ms. That is the
 *     worst case, for a thread that after the first write blocks somewhere the shim does not look (a
 *     futex, a sleep, a read of a pipe) although the connection's earlier bursts were pairs; each such
 *     miss counts against the connection, and after a few corking stops.
 * A program's own TCP_CORK (nginx tcp_nopush on) or MSG_MORE takes precedence: the shim then adds none. */
#ifndef TLSSHIM_CORK_H
#define TLSSHIM_CORK_H

#include <stdbool.h>
#include <stddef.h>

struct conn;

/* The fd whose record this thread sent with MSG_MORE and nobody has pushed yet, or -1. Written only by
 * its own thread (cork_after_write, cork_release_pending). The default TLS model, not initial-exec: the
 * library must stay dlopen-able (its TLS block, pollwait.c's scratch included, does not fit in glibc's
 * static surplus), and only the wait hooks read it, never read/write's pass-through path. */
extern __thread int cork_pending_fd;

/* Pushes this thread's held record, if any (takes that connection's lock: call with no lock held). */
void cork_flush_pending(void);

static inline void cork_release_pending(void)
{
	if (__builtin_expect(cork_pending_fd >= 0, 0))
		cork_flush_pending();
}

/* Before a write of len bytes on established connection c (lock held): counts what the write says about
 * the connection's bursts and says whether its record should leave with MSG_MORE. */
bool cork_before_write(struct conn *c, size_t len, int flags);

/* After that write (lock held): sent says whether any of it left with MSG_MORE. */
void cork_after_write(struct conn *c, int fd, bool sent);

/* A read on c (lock held): ends the burst, and pushes a held record first (the program waits for an
 * answer to what it wrote). */
void cork_on_read(struct conn *c, int fd);

/* The program set TCP_CORK on or off on c's socket (lock held). */
void cork_program_cork(struct conn *c, bool on);

#endif
