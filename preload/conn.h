/* conn.h: one TLS connection, shared by every fd that refers to its socket (dup, dup2, fork).
 * Owns the wolfSSL session, the state machine, the mapping of plain reads and writes onto TLS records,
 * and the end of the session (close_notify on the last close).
 *
 * Locking: c->lock guards the session and every field below it; it is never held while waiting for
 * the network, so a reader blocked in the kernel does not stop a writer. It is taken only through
 * conn_lock/conn_unlock, inside the fork gate (forkgate.h), so a fork never copies it held; wolfSSL is
 * called only with it held (or, for wolfSSL_free, inside the gate).
 * Lifetime: c->refs counts fd slots plus calls in flight; memory is recycled (never returned to the
 * allocator), so a stale pointer read from the fd table is always safe to try to reference. */
#ifndef TLSSHIM_CONN_H
#define TLSSHIM_CONN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#include "policy/policy.h"
#include "preload/forkgate.h"
#include "preload/verify.h"

struct WOLFSSL;
struct serve_state;

/* Which end of the TLS session this connection is. One state machine serves both; the differences live
 * in a few named places in conn.c (session setup, handshake call, failure wording, errno after failure)
 * and in serve_conn.c. */
enum conn_role { CONN_ROLE_CLIENT = 0, CONN_ROLE_SERVER };
struct dialogue;

/* handshake_done's sys_errno when the dialogue (dialogue.h) failed: the reason and errno are its own. */
#define CONN_DIALOGUE_FAILED (-1)

enum conn_state {
	CONN_CONNECTING,  /* TCP connect or handshake in progress */
	CONN_ESTABLISHED, /* handshake done and verified */
	CONN_FAILED,	  /* handshake or verification failed: every call fails (ENOTCONN) */
	CONN_BROKEN,	  /* a fatal TLS error after the handshake: every call fails (ECONNRESET) */
	CONN_CLOSED,	  /* the last fd was closed */
};

/* A thread asleep in a blocking read of a connection (conn.c: sleep_for_records), registered in the
 * connection's own array (never a pointer into the sleeper's stack: a siglongjmp out of the read, or a
 * fork, must leave nothing that points into a frame that is gone). */
struct conn_sleeper {
	int efd;	   /* the sleeping thread's eventfd (wake.h: wake_thread_fd) */
	unsigned long gen; /* forkgate_process_gen() when registered: a fork child skips its parent's */
};

struct conn {
	_Atomic int refs;
	pthread_mutex_t lock;
	struct conn *next_free;	  /* free list link (conn.c) */
	unsigned long forks_seen; /* forkgate_forks() when forked/wrote_since_fork were last brought up to
				     date (conn_lock does it: a fork is learnt lazily, never walked) */

	enum conn_state state;
	enum conn_role role;	   /* set by conn_new (client) or conn_begin_server, then fixed */
	struct serve_state *serve; /* server connections only (serve.h); freed with the connection */
	int fd_count;		   /* fd table slots that point here */
	pid_t owner;		   /* the process that made the session */
	bool forked;		   /* a fork happened since the session began (in this process's copy) */
	bool wrote_since_fork;	   /* this process wrote on the session since the last fork */
	struct WOLFSSL *ssl;
	int io_fd;	   /* the fd the I/O callbacks use for the call in progress */
	int io_errno;	   /* errno of the last failed real recv/send in a callback */
	bool io_no_kernel; /* io_recv hands wolfSSL the read-ahead only, never reads the kernel
			      (conn_poll_state before the kernel said readable) */
	bool recv_short;   /* io_recv's last kernel recv got less than it asked for (or EAGAIN) */
	bool drained;	   /* the readiness look that made this connection readable emptied the
			      kernel socket (a short recv after its event): the next conn_read
			      takes what is decrypted without one more recv that would give
			      EAGAIN; bytes that come later raise a new kernel event */
	unsigned n_sleepers, cap_sleepers; /* used and allocated entries of sleepers */
	struct conn_sleeper *sleepers;	   /* threads asleep in a blocking read, each in poll on the socket
					      and its eventfd; whoever takes bytes from the kernel (io_recv)
					      signals them all (conn.c: sleep_for_records). NULL on most
					      connections: costs nothing while nobody sleeps */
	char *ra;		 /* read-ahead: ciphertext taken from the kernel, not yet handed to wolfSSL */
	unsigned ra_off, ra_len; /* (allocated only while it holds bytes: idle connections cost nothing) */
	/* Program-bound plaintext queue (conn_queue_for_program): bytes the shim holds for the program,
	 * which read() returns before any TLS data. Allocated only while it holds bytes. */
	char *pq;
	unsigned pq_off, pq_len;
	unsigned pq_ahead; /* bytes at the end of pq that FIONREAD decrypted ahead (conn_pending): counted in
			      bytes_in when the program reads them, as epoll's EPOLLET re-reports follow it */
	struct dialogue *dlg;	/* starttls=/proxy= (dialogue.h), or NULL; owned, freed with the conn */
	bool tcp_eof;		/* the kernel socket returned 0 (FIN) */
	bool read_eof;		/* close_notify seen (or an allowed truncation): reads return 0 */
	bool peer_close_notify; /* the server's close_notify arrived */
	bool write_shut;	/* shutdown(SHUT_WR) done */
	size_t out_committed;	/* plaintext bytes already reported written whose record is not all sent */
	/* Write coalescing (cork.h); written under the lock: */
	bool coalesce;	       /* a server connection whose rule says coalesce=auto (set at the handshake) */
	bool corked;	       /* the last record left with MSG_MORE and nothing has pushed it yet */
	bool program_cork;     /* the program holds TCP_CORK on */
	bool read_since_write; /* the program read since its last write: the next write starts a burst */
	bool last_write_first; /* the last write started a burst */
	bool io_more;	       /* io_send adds MSG_MORE (for the write in progress) */
	unsigned char pair_score; /* how regularly this connection's bursts have been pairs (cork.c) */
	long long last_write_us;  /* monotonic start of the last write */
	/* While CONN_CONNECTING: */
	bool tcp_pending;		   /* the TCP connect itself is still in progress */
	bool restore_nodelay;		   /* TCP_NODELAY was off: put it back after the handshake */
	short want_events;		   /* POLLIN or POLLOUT: what the handshake waits for */
	long long started_ms, deadline_ms; /* monotonic; the handshake-timeout= deadline */
	void *wolf_ctx;			   /* the rule's WOLFSSL_CTX (owned by init.c) */
	/* After CONN_FAILED: */
	int fail_errno;	    /* what connect/SO_ERROR report (ECONNREFUSED, ETIMEDOUT, ...) */
	bool fail_reported; /* SO_ERROR was read once (the kernel clears it the same way) */
	const struct policy_rule *rule;
	struct verify_state verify;
	char dest[300];	       /* "host:port (address)" for messages */
	char session_key[600]; /* resumption cache key (session.h); "" when resumption is off */
	bool session_saved;    /* a resumable session of this connection is in the cache */
	uint32_t stale_ticket; /* fingerprint of the ticket this connection resumed with (session.h) */
	unsigned long long bytes_in, bytes_out;
	unsigned long long counted_in, counted_out; /* how much of bytes_in/out the statistics have */
};

/* The fd-table entry of an fd that is being closed (close, dup2 onto it, close_range): between taking the
 * session off the fd and the kernel's close, another thread's call on that number must fail (EBADF), not
 * pass through to the socket in plaintext. Never freed; conn_detach_fd on it does nothing. */
extern struct conn conn_closing;

/* inherit.c: a connected TCP socket from outside (inherited at load, SCM_RIGHTS, pidfd_getfd) not yet
 * classified (conn_get classifies it), and one whose peer matches a tls rule (every data call: EBADF). */
extern struct conn conn_unclassified, conn_inherited_tls;

/* True for the fd-table entries that are markers, not connections: never freed, never detached, never
 * attached to a new fd as a session. */
static inline bool conn_is_sentinel(const struct conn *c)
{
	return c == &conn_closing || c == &conn_unclassified || c == &conn_inherited_tls;
}

/* The statistics get the bytes a live connection moved since the last call (the metrics file's periodic
 * write, so long connections show their traffic before they end): every TLS fd, each connection once;
 * one that is busy (its lock taken) is left for the next time. */
void conn_publish_all_bytes(void);

/* The connection on fd with a reference taken, or NULL (not a TLS fd). A slot that stays non-NULL but
 * cannot be referenced gives &conn_closing (calls on it fail with EBADF), never NULL: a hook must not
 * pass such an fd through to libc. Release with conn_put(). */
struct conn *conn_get(int fd);
void conn_put(struct conn *c);

/* A fresh connection with one reference (the caller's), state CONN_CONNECTING. NULL on ENOMEM. */
struct conn *conn_new(const struct policy_rule *rule);

/* Installs c on fd (takes a reference for the slot). -1 with errno when the table cannot hold fd. */
int conn_attach_fd(struct conn *c, int fd);

/* The last step of close()/dup2() for an fd of c: removes nothing from the table (the caller did),
 * ends the session if this was the last fd of the owning process, drops the slot's reference. */
void conn_detach_fd(struct conn *c, int fd);

/* Prepares the TLS session for fd (after or during the TCP connect; tcp_pending says which).
 * name: verify name (NULL: verify the address); sni may be NULL. 0, or -1 with errno and the reason
 * printed (the connection is then CONN_FAILED). */
int conn_begin(struct conn *c, int fd, const char *name, const char *sni, int family, const uint8_t *addr,
	       void *wolf_ctx, bool tcp_pending);

/* Makes c (fresh from conn_new, state CONN_CONNECTING) the server end of accepted socket fd: the session
 * is made once the ClientHello is in (serve_prepare_session); until then and during the handshake, reads
 * and writes wait (blocking fd, bounded by the default rule's handshake-timeout=) or give EAGAIN. Takes
 * ownership of s. */
void conn_begin_server(struct conn *c, int fd, struct serve_state *s);

/* Advances a connection in CONN_CONNECTING without waiting. Returns 0 when established, 1 while in
 * progress (c->want_events says for what), -1 when it failed (errno = c->fail_errno). Takes the lock. */
int conn_progress(struct conn *c, int fd);

/* Runs the handshake to its end, waiting (bounded by handshake-timeout=). 0 or -1 with errno. */
int conn_finish(struct conn *c, int fd);

/* Exit (conn.c): sends close_notify for the sessions this process may end. */
void conn_end_all_at_exit(int budget_ms);

/* Takes c->lock inside the fork gate, and brings the fork flags up to date: when a fork happened since
 * this connection last looked (in this process's copy, parent or child), it is marked forked and nobody
 * has written since. O(1) per fork for the whole process, paid by each connection at its next use. */
static inline void conn_lock(struct conn *c)
{
	forkgate_lock(&c->lock);
	unsigned long forks = forkgate_forks();
	if (__builtin_expect(c->forks_seen != forks, 0)) {
		c->forks_seen = forks;
		c->forked = true;
		c->wrote_since_fork = false;
	}
}

/* conn_lock without waiting: true when taken (then release with conn_unlock). */
static inline bool conn_trylock(struct conn *c)
{
	forkgate_enter();
	if (pthread_mutex_trylock(&c->lock) != 0) {
		forkgate_leave();
		return false;
	}
	unsigned long forks = forkgate_forks();
	if (__builtin_expect(c->forks_seen != forks, 0)) {
		c->forks_seen = forks;
		c->forked = true;
		c->wrote_since_fork = false;
	}
	return true;
}

static inline void conn_unlock(struct conn *c)
{
	forkgate_unlock(&c->lock);
}

/* The state, read under the lock. */
enum conn_state conn_get_state(struct conn *c);

/* libc-compatible data calls. flags are MSG_* flags of the call (0 for read/write). */
ssize_t conn_read(struct conn *c, int fd, void *buf, size_t len, int flags);
ssize_t conn_write(struct conn *c, int fd, const void *buf, size_t len, int flags);

/* shutdown(2) on a TLS fd. */
int conn_shutdown(struct conn *c, int fd, int how);

/* ---- bytes the shim holds: for the program, or for itself ----
 * Two queues per connection, both guarded by c->lock, both empty (and unallocated) on most connections:
 *  - the program-bound queue holds plaintext the program must read before any TLS data (a STARTTLS
 *    dialogue's replayed greeting, a rewritten protocol message). read/recv return it first; it counts
 *    as readable for poll/select/epoll, MSG_PEEK sees it, FIONREAD counts it. It is handed out only once
 *    the connection is CONN_ESTABLISHED (never before the handshake is verified), and before EOF.
 *  - the TLS-bound queue is the read-ahead: ciphertext the shim took from the kernel for wolfSSL
 *    (a ClientHello a server connection consumed while looking at it, bytes past a dialogue's last
 *    line). wolfSSL gets it before the kernel is read again. It never counts as readable by itself:
 *    readiness comes only from the application data wolfSSL makes of it. */
#define CONN_PROGRAM_QUEUE_MAX 65536 /* bytes; a longer greeting is a protocol error for the caller */
#define CONN_TLS_QUEUE_MAX     32768 /* bytes: the read-ahead buffer's size */

/* Appends len bytes to the program-bound queue. c->lock held. 0, or -1 with errno: ENOBUFS (over
 * CONN_PROGRAM_QUEUE_MAX in total), ENOMEM. Waiters are told when the connection becomes readable. */
int conn_queue_for_program(struct conn *c, const void *buf, size_t len);

/* Appends len bytes of ciphertext for wolfSSL to the read-ahead. c->lock held. 0, or -1 with errno:
 * ENOBUFS (over CONN_TLS_QUEUE_MAX in total), ENOMEM. */
int conn_queue_for_tls(struct conn *c, const void *buf, size_t len);

/* Bytes in the program-bound queue. c->lock held. */
static inline size_t conn_program_queued(const struct conn *c)
{
	return c->pq_len - c->pq_off;
}

/* ---- readiness: the one predicate every waiter uses (poll.c, epoll, FIONREAD, conn_read) ----
 * conn_poll_state looks at one connection without ever blocking, under c->lock (taken and released
 * inside): it advances a handshake in progress by one step, pushes out what a short write left, and,
 * when the caller asks for POLLIN and nothing is readable yet, hands the ciphertext the kernel already
 * holds to wolfSSL (the I/O callbacks never wait). Only what a read would return at once makes the
 * connection readable: application data decrypted inside wolfSSL, the program-bound queue (a replayed
 * STARTTLS greeting), EOF (close_notify, or a TCP FIN the read will report) or an error. Records that
 * carry no application data (a TLS 1.3 NewSessionTicket, a KeyUpdate) and ciphertext the shim reads for
 * itself (the read-ahead, a peeked ClientHello) never do: a waiter that sees nothing here waits on for
 * what `kernel` says, with its own remaining timeout.
 *
 * The kernel socket itself is read only when the caller says the kernel reported it readable
 * (kernel_said): before that, only what the shim and wolfSSL already hold is looked at, so the kernel's
 * own rules for when a socket is readable (SO_RCVLOWAT) still decide when records are taken.
 *
 * The waiter's loop: call conn_poll_state(kernel_said = false); report `now` at once; otherwise ask the
 * kernel for `kernel` (never more, never less) and, when the kernel reports anything for the fd, pass on
 * `revents & pass` and call conn_poll_state(kernel_said = true) for the rest (kernel POLLIN on an
 * established TLS fd means records, which only this predicate can turn into readiness); if nothing is to
 * be reported, wait again for what remains of the timeout. */
struct conn_ready {
	short now;	    /* report at once, whatever the kernel says: POLLIN (a read would not block),
			       POLLOUT|POLLERR|POLLHUP (a failed or broken connection: every call fails at once) */
	short kernel;	    /* what to ask the kernel for, so the shim can move: the handshake's direction,
			       POLLIN for records (only if the caller asked POLLIN), POLLOUT to flush a short
			       write's rest or a record wolfSSL must send, plus the caller's POLLOUT */
	short pass;	    /* kernel revents that go to the program as they are: POLLOUT|POLLERR|POLLHUP once
			       established with nothing left to flush (POLLERR|POLLHUP while flushing), 0 while
			       connecting */
	bool connecting;    /* the handshake (or the dialogue before it) is still in progress */
	bool made_readable; /* this call decrypted records into readable data: other threads waiting
			       on the fd do not know (call wake_notify(fd) with no lock held) */
	long long deadline_ms; /* monotonic handshake-timeout= deadline while connecting, else -1 */
};

/* events: what the caller waits for (POLLIN, POLLOUT; others are ignored). Never blocks; never fails
 * (a failure shows as now = POLLIN|POLLOUT|POLLERR|POLLHUP). Takes c->lock; call it with no lock held
 * (poll.c's epoll code may hold its own table lock: this never calls back into poll.c or wake.c). */
void conn_poll_state(struct conn *c, int fd, short events, bool kernel_said, struct conn_ready *out);

/* A read would not block (conn_poll_state with POLLIN said POLLIN), from what the shim and wolfSSL hold
 * (the kernel is not read). May decrypt records. */
bool conn_read_ready(struct conn *c, int fd);

/* Bytes reads would return at once (FIONREAD), exactly: every complete record already received is
 * decrypted ahead into the program-bound queue (up to CONN_PROGRAM_QUEUE_MAX; beyond it the ciphertext
 * behind counts as it is, an upper bound). Session tickets and other records without application data
 * count 0. Wakes the fd's poll/epoll waiters when it made the fd readable. */
int conn_pending(struct conn *c, int fd);

/* TCP_NODELAY during a handshake: the shim holds it on while handshaking (Nagle plus delayed ACKs stall
 * handshakes) and puts the program's value back at the end. A program that sets it meanwhile (nginx
 * does after an asynchronous connect) sets that final value: conn_set_nodelay records it and returns
 * true (the caller then reports success without touching the socket); false when no handshake is in
 * progress (the caller passes the call to the kernel). conn_get_nodelay gives the program's value
 * while a handshake runs (true: *on set), else false (ask the kernel). */
bool conn_set_nodelay(struct conn *c, bool on);
bool conn_get_nodelay(struct conn *c, int *on);

/* SO_ERROR as the program should see it: the failed handshake's errno once, else -1 (ask the kernel). */
int conn_so_error(struct conn *c, int fd);

/* Tries to send ciphertext left over from a short write, without waiting. True if some is still left
 * (the caller then waits for POLLOUT on the program's behalf). */
bool conn_try_flush(struct conn *c, int fd);

#endif
