/* conn.c: a TLS connection's life: handshake, reads, writes, shutdown and the last close (see conn.h). */
#include "preload/conn.h"
#include "preload/cork.h"
#include "preload/child.h"
#include "preload/inherit.h"
#include "preload/dialogue.h"
#include "preload/fdtab.h"
#include "preload/libc.h"
#include "preload/log.h"
#include "preload/serve.h"
#include "preload/session.h"
#include "preload/metrics.h"
#include "preload/stats.h"
#include "preload/tlsctx.h"
#include "preload/wake.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>

/* Largest plaintext in one TLS record: each wolfSSL_write is given at most this much, so after a
 * would-block we know exactly how many bytes the committed record holds. */
#define RECORD_PLAINTEXT_MAX 16384

/* Recycled connections (type-stable memory, see conn.h). Guarded by free_lock (taken inside the fork
 * gate, for a few instructions); touched only when a TLS connection starts or ends, never on the data
 * path. Nothing keeps a list of live connections: fork does nothing per connection (conn_lock). */
static pthread_mutex_t free_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn *free_list;

struct conn conn_closing = {
    .refs = 1 << 30, /* never reaches zero */
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .state = CONN_CLOSED,
    .io_fd = -1,
};

/* ---- references ---- */

struct conn *conn_get(int fd)
{
	for (int tries = 0; tries < 8; tries++) {
		struct conn *c = fdtab_load(fd);
		if (!c)
			return NULL;
		if (c == &conn_unclassified) { /* from outside: classify on first use (inherit.h) */
			int k = inherit_classify(fd);
			if (k == INHERIT_REFUSE)
				break; /* a child that shares our memory: refused below */
			if (k == INHERIT_UNCONNECTED)
				return NULL; /* not connected yet: nothing to protect */
			continue;
		}
		int r = atomic_load_explicit(&c->refs, memory_order_acquire);
		while (r > 0 && !atomic_compare_exchange_weak_explicit(
				    &c->refs, &r, r + 1, memory_order_acq_rel, memory_order_acquire))
			;
		if (r > 0) {
			if (fdtab_load(fd) == c)
				return c;
			conn_put(c); /* recycled for another fd meanwhile: look again */
		}
	}
	if (!fdtab_load(fd))
		return NULL;
	/* Still a TLS fd, but no reference could be taken: fail closed (EBADF), never pass through. */
	atomic_fetch_add_explicit(&conn_closing.refs, 1, memory_order_relaxed);
	return &conn_closing;
}

static void ra_release(struct conn *c);
static void pq_release(struct conn *c);

static void conn_free(struct conn *c)
{
	dialogue_free(c->dlg);
	c->dlg = NULL;
	ra_release(c);
	serve_state_free(c->serve);
	c->serve = NULL;
	pq_release(c);
	free(c->sleepers);
	c->sleepers = NULL;
	c->n_sleepers = c->cap_sleepers = 0;
	if (c->ssl) {
		forkgate_enter(); /* wolfSSL_free takes the context's reference-count mutex */
		wolfSSL_free(c->ssl);
		forkgate_leave();
		c->ssl = NULL;
	}
	forkgate_lock(&free_lock);
	c->next_free = free_list;
	free_list = c;
	forkgate_unlock(&free_lock);
}

void conn_put(struct conn *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		conn_free(c);
}

struct conn *conn_new(const struct policy_rule *rule)
{
	forkgate_lock(&free_lock);
	struct conn *c = free_list;
	if (c)
		free_list = c->next_free;
	forkgate_unlock(&free_lock);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
		pthread_mutex_init(&c->lock, NULL);
	}
	conn_lock(c);
	c->next_free = NULL;
	c->state = CONN_CONNECTING;
	c->role = CONN_ROLE_CLIENT;
	c->serve = NULL;
	c->fd_count = 0;
	c->owner = getpid();
	c->forked = c->wrote_since_fork = false; /* (conn_lock set forks_seen) */
	c->ssl = NULL;
	c->io_fd = -1;
	c->io_errno = 0;
	c->io_no_kernel = c->recv_short = c->drained = false;
	c->sleepers = NULL;
	c->n_sleepers = c->cap_sleepers = 0;
	c->ra = NULL;
	c->ra_off = c->ra_len = 0;
	c->pq = NULL;
	c->pq_off = c->pq_len = 0;
	c->pq_ahead = 0;
	c->dlg = NULL;
	c->tcp_eof = c->read_eof = c->write_shut = c->peer_close_notify = false;
	c->out_committed = 0;
	c->coalesce = c->corked = c->program_cork = c->last_write_first = c->io_more = false;
	c->read_since_write = true;
	c->pair_score = 0;
	c->last_write_us = 0;
	c->tcp_pending = c->restore_nodelay = c->fail_reported = false;
	c->want_events = 0;
	c->fail_errno = 0;
	c->wolf_ctx = NULL;
	c->rule = rule;
	memset(&c->verify, 0, sizeof(c->verify));
	c->dest[0] = '\0';
	c->session_key[0] = '\0';
	c->session_saved = false;
	c->stale_ticket = 0;
	c->bytes_in = c->bytes_out = 0;
	c->counted_in = c->counted_out = 0;
	conn_unlock(c);
	atomic_store_explicit(&c->refs, 1, memory_order_release);
	return c;
}

int conn_attach_fd(struct conn *c, int fd)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_acq_rel);
	conn_lock(c);
	c->fd_count++;
	conn_unlock(c);
	struct conn *old = fdtab_store(fd, c);
	if (old == (struct conn *)-1) {
		conn_lock(c);
		c->fd_count--;
		conn_unlock(c);
		conn_put(c);
		return -1;
	}
	if (old) /* a stale entry (the fd was closed behind our back, e.g. by a raw syscall) */
		conn_detach_fd(old, -1);
	/* A TLS fd never survives exec: the new image could not continue the session and would write
	 * plaintext into it (documented in README). */
	libc.fcntl(fd, F_SETFD, FD_CLOEXEC); /* the only fd flag there is */
	return 0;
}

/* ---- waiting (never with the lock held) ---- */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `events` or the deadline (ms, monotonic; -1: none) passes.
 * Returns 1 ready, 0 timed out, -1 with errno (EINTR). */
static int wait_fd(int fd, short events, long long deadline)
{
	int timeout = -1;
	if (deadline >= 0) {
		long long left = deadline - now_ms();
		timeout = left < 0 ? 0 : (int)(left > INT_MAX ? INT_MAX : left);
	}
	struct pollfd p = {.fd = fd, .events = events};
	int n = libc.poll(&p, 1, timeout);
	return n < 0 ? -1 : n > 0;
}

static bool fd_is_nonblocking(int fd, int flags)
{
	if (flags & MSG_DONTWAIT)
		return true;
	int fl = libc.fcntl(fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK);
}

/* The SO_SNDTIMEO of fd as a deadline (-1: none). */
static long long send_deadline(int fd)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);
	if (libc.getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) != 0 ||
	    (tv.tv_sec == 0 && tv.tv_usec == 0))
		return -1;
	return now_ms() + (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The SO_RCVTIMEO of fd as a deadline (-1: none). */
static long long recv_deadline(int fd)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);
	if (libc.getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) != 0 ||
	    (tv.tv_sec == 0 && tv.tv_usec == 0))
		return -1;
	return now_ms() + (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A non-blocking read found nothing inside the shim: the kernel says whether bytes wait (0: retry the
 * TLS read) or not (-1, EAGAIN), never waiting, as a plain non-blocking recv() would. */
static int kernel_peek_nonblocking(int fd, int flags)
{
	char peek_byte;
	ssize_t n = libc.recv(fd, &peek_byte, 1, MSG_PEEK | (flags & MSG_DONTWAIT));
	if (n >= 0)
		return 0;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return -1;
	return 0; /* a socket error: the TLS read will see it and report it */
}

/* ---- blocking reads: sleepers (conn.h: struct conn_sleeper) ----
 * A thread whose blocking read finds nothing sleeps in poll on the socket plus its own eventfd, linked
 * into c->sleepers under c->lock before it lets go of the lock; every thread that takes bytes out of the
 * kernel socket (io_recv, always under c->lock) signals the eventfds of the sleepers. So a sleeper either
 * saw the bytes when it last looked (under the lock), or the kernel wakes it (they arrive), or the thread
 * that took them wakes it: a record taken by a poll, FIONREAD or a second reader in the instant before a
 * reader goes to sleep can no longer leave that reader asleep while the record waits inside the shim. */

static bool readable_now(struct conn *c);

/* Signals every sleeper of this process; drops the entries a fork inherited (their threads are in the
 * parent) and, when the sleeper's number is no longer its eventfd, wake_signal writes nothing. Lock held. */
static void wake_sleepers(struct conn *c)
{
	int e = errno;
	unsigned long gen = forkgate_process_gen();
	for (unsigned i = 0; i < c->n_sleepers;) {
		if (c->sleepers[i].gen != gen) {
			c->sleepers[i] = c->sleepers[--c->n_sleepers];
			continue;
		}
		wake_signal(c->sleepers[i].efd);
		i++;
	}
	errno = e;
}

/* Registers this thread's eventfd as a sleeper (once: an entry a siglongjmp left behind is reused).
 * False when there is no memory for it (the sleeper then looks again every 20 ms). Lock held. */
static bool sleeper_add(struct conn *c, int efd)
{
	unsigned long gen = forkgate_process_gen();
	for (unsigned i = 0; i < c->n_sleepers; i++)
		if (c->sleepers[i].efd == efd && c->sleepers[i].gen == gen)
			return true;
	if (c->n_sleepers == c->cap_sleepers) {
		unsigned cap = c->cap_sleepers ? 2 * c->cap_sleepers : 4;
		struct conn_sleeper *n = realloc(c->sleepers, cap * sizeof(*n));
		if (!n)
			return false;
		c->sleepers = n;
		c->cap_sleepers = cap;
	}
	c->sleepers[c->n_sleepers++] = (struct conn_sleeper){.efd = efd, .gen = gen};
	return true;
}

static void sleeper_remove(struct conn *c, int efd)
{
	unsigned long gen = forkgate_process_gen();
	for (unsigned i = 0; i < c->n_sleepers; i++)
		if (c->sleepers[i].efd == efd && c->sleepers[i].gen == gen) {
			c->sleepers[i] = c->sleepers[--c->n_sleepers];
			return;
		}
}

/* pthread_cancel of a thread asleep in a read (poll is a cancellation point). */
struct sleep_cleanup {
	struct conn *c;
	int efd; /* -1: never registered */
};
static void sleeper_cancelled(void *arg)
{
	struct sleep_cleanup *sc = arg;
	if (sc->efd < 0)
		return;
	conn_lock(sc->c);
	sleeper_remove(sc->c, sc->efd);
	conn_unlock(sc->c);
}

/* A handler interrupted the sleep (poll gave EINTR): would the kernel have restarted a plain recv()? Only
 * without SO_RCVTIMEO (the caller checks), and only when the handler had SA_RESTART. Which signal came is
 * not known here, so the answer is yes only when every signal that has a handler, is not blocked in this
 * thread and can come to a thread asleep in poll (not a fault's or its own write's signal) has
 * SA_RESTART (one sigaction call per signal, on this rare path only); otherwise the read gives EINTR,
 * which a program with a handler without SA_RESTART has to expect anyway. */
static bool restart_after_signal(void)
{
	sigset_t blocked;
	if (pthread_sigmask(SIG_BLOCK, NULL, &blocked) != 0)
		sigemptyset(&blocked);
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		if (sigismember(&blocked, sig) == 1 || sigaction(sig, NULL, &sa) != 0)
			continue;
		/* Signals a fault or this thread's own write raises cannot come while it sleeps in poll;
		 * their handlers (crash reporters, the JVM, the ASan runtime) rarely have SA_RESTART. */
		if (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGTRAP ||
		    sig == SIGSYS || sig == SIGPIPE || sig == SIGXFSZ)
			continue;
		bool handled = (sa.sa_flags & SA_SIGINFO)
				   ? sa.sa_sigaction != NULL
				   : sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN;
		if (handled && !(sa.sa_flags & SA_RESTART))
			return false;
	}
	return true;
}

/* A blocking read found nothing inside the shim and nothing in the kernel (c->lock held on entry and on
 * return): sleeps until the socket is readable (bytes, EOF, an error), writable too when `events` has
 * POLLOUT (a read that owes the peer a record), or a sleeper's wake-up (above). *deadline is the call's
 * SO_RCVTIMEO deadline (-2: not asked yet). Returns 0 to look again, or -1 with errno as a plain recv()
 * gives it: EAGAIN when SO_RCVTIMEO expired, EINTR for a signal (restarted instead as the kernel would
 * restart a recv(): see restart_after_signal). */
static int sleep_for_records(struct conn *c, int fd, short events, long long *deadline)
{
	if (c->ra_off < c->ra_len || readable_now(c))
		return 0; /* the shim holds bytes: never sleep on the kernel then */
	if (*deadline == -2)
		*deadline = recv_deadline(fd);
	int efd = wake_thread_fd();
	if (efd >= 0 && !sleeper_add(c, efd))
		efd = -1;
	conn_unlock(c);
	struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = efd, .events = POLLIN}};
	struct sleep_cleanup sc = {c, efd};
	int r, e;
	for (;;) {
		int timeout = -1;
		if (*deadline >= 0) {
			long long left = *deadline - now_ms();
			timeout = left < 0 ? 0 : (int)(left > INT_MAX ? INT_MAX : left);
		}
		/* No eventfd (out of fds): look again every 20 ms instead of being woken. */
		if (efd < 0 && (timeout < 0 || timeout > 20))
			timeout = 20;
		pthread_cleanup_push(sleeper_cancelled, &sc);
		r = libc.poll(p, efd >= 0 ? 2 : 1, timeout);
		e = errno;
		pthread_cleanup_pop(0);
		if (r < 0 && e == EINTR && *deadline < 0 && restart_after_signal())
			continue; /* SA_RESTART: the kernel would have restarted the recv() */
		break;
	}
	conn_lock(c);
	if (efd >= 0) {
		sleeper_remove(c, efd);
		if (r > 0 && p[1].revents)
			wake_drain(efd);
	}
	if (r < 0) {
		errno = e;
		return -1;
	}
	if (r == 0 && *deadline >= 0 && now_ms() >= *deadline) {
		errno = EAGAIN; /* SO_RCVTIMEO expired, as the kernel reports it */
		return -1;
	}
	return 0;
}

/* ---- wolfSSL I/O callbacks: the real recv/send, never blocking, never a hooked symbol ---- */

/* wolfSSL asks for a record's 5-byte header, then for its body: two system calls a record. One larger
 * recv into a read-ahead buffer serves both, and whole handshake flights, with a copy that costs less
 * than a system call. Bytes held here count as "readable" for poll/epoll (conn_read_ready). */
#define READAHEAD_SIZE CONN_TLS_QUEUE_MAX

static void ra_release(struct conn *c)
{
	free(c->ra);
	c->ra = NULL;
	c->ra_off = c->ra_len = 0;
}

/* ---- the two queues (conn.h) ---- */

/* Appends to a queue that lives in one buffer of at most cap bytes (allocated at cap on first use),
 * sliding what is left to the front first. */
static int queue_append(char **buf, unsigned *off, unsigned *qlen, unsigned cap, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (len > cap - (*qlen - *off)) {
		errno = ENOBUFS;
		return -1;
	}
	if (!*buf) {
		if (!(*buf = malloc(cap))) {
			errno = ENOMEM;
			return -1;
		}
		*off = *qlen = 0;
	}
	if (*off) {
		memmove(*buf, *buf + *off, *qlen - *off);
		*qlen -= *off;
		*off = 0;
	}
	memcpy(*buf + *qlen, data, len);
	*qlen += (unsigned)len;
	return 0;
}

static void pq_release(struct conn *c)
{
	free(c->pq);
	c->pq = NULL;
	c->pq_off = c->pq_len = 0;
	c->pq_ahead = 0;
}

int conn_queue_for_program(struct conn *c, const void *buf, size_t len)
{
	return queue_append(&c->pq, &c->pq_off, &c->pq_len, CONN_PROGRAM_QUEUE_MAX, buf, len);
}

int conn_queue_for_tls(struct conn *c, const void *buf, size_t len)
{
	return queue_append(&c->ra, &c->ra_off, &c->ra_len, CONN_TLS_QUEUE_MAX, buf, len);
}

/* Moves up to len bytes of the program-bound queue into buf (copies only, for MSG_PEEK). Lock held. */
static size_t pq_take(struct conn *c, char *buf, size_t len, bool peek)
{
	size_t held = conn_program_queued(c);
	size_t n = held < len ? held : len;
	memcpy(buf, c->pq + c->pq_off, n);
	if (!peek) {
		size_t before_ahead = held - c->pq_ahead; /* bytes ahead of the decrypted-ahead tail */
		if (n > before_ahead) {
			c->bytes_in += n - before_ahead;
			c->pq_ahead -= (unsigned)(n - before_ahead);
		}
		c->pq_off += (unsigned)n;
		if (c->pq_off == c->pq_len)
			pq_release(c);
	}
	return n;
}

static int io_recv_result(struct conn *c, ssize_t n, size_t asked)
{
	c->recv_short = n >= 0 ? (size_t)n < asked && n > 0 : errno == EAGAIN || errno == EWOULDBLOCK;
	if (n > 0)
		return (int)n;
	if (n == 0) {
		c->tcp_eof = true;
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	}
	c->io_errno = errno;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	if (errno == ECONNRESET)
		return WOLFSSL_CBIO_ERR_CONN_RST;
	return WOLFSSL_CBIO_ERR_GENERAL;
}

static int io_recv(struct WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct conn *c = ctx;
	if (c->ra_off < c->ra_len) {
		unsigned n = c->ra_len - c->ra_off < (unsigned)sz ? c->ra_len - c->ra_off : (unsigned)sz;
		memcpy(buf, c->ra + c->ra_off, n);
		c->ra_off += n;
		if (c->ra_off == c->ra_len)
			ra_release(c);
		return (int)n;
	}
	if (c->io_no_kernel) { /* conn_poll_state before the kernel said readable */
		c->io_errno = EAGAIN;
		return WOLFSSL_CBIO_ERR_WANT_READ;
	}
	ssize_t n;
	if (sz >= READAHEAD_SIZE / 2 || (!c->ra && !(c->ra = malloc(READAHEAD_SIZE)))) {
		do /* a large request (a record body) goes straight into wolfSSL's buffer */
			n = libc.recv(c->io_fd, buf, (size_t)sz, MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (c->n_sleepers && (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)))
			wake_sleepers(c); /* what they sleep on in the kernel is ours now */
		return io_recv_result(c, n, (size_t)sz);
	}
	do
		n = libc.recv(c->io_fd, c->ra, READAHEAD_SIZE, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (c->n_sleepers && (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)))
		wake_sleepers(c);
	if (n <= 0) {
		ra_release(c);
		return io_recv_result(c, n, READAHEAD_SIZE);
	}
	c->recv_short = n < READAHEAD_SIZE;
	c->ra_len = (unsigned)n;
	c->ra_off = 0;
	return io_recv(ssl, buf, sz, ctx);
}

static int io_send(struct WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct conn *c = ctx;
	for (;;) {
		ssize_t n = libc.send(c->io_fd, buf, (size_t)sz,
				      MSG_DONTWAIT | MSG_NOSIGNAL | (c->io_more ? MSG_MORE : 0));
		if (n >= 0)
			return (int)n;
		if (errno == EINTR)
			continue;
		c->io_errno = errno;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return WOLFSSL_CBIO_ERR_WANT_WRITE;
		if (errno == ECONNRESET)
			return WOLFSSL_CBIO_ERR_CONN_RST;
		if (errno == EPIPE)
			return WOLFSSL_CBIO_ERR_CONN_CLOSE;
		return WOLFSSL_CBIO_ERR_GENERAL;
	}
}

/* ---- handshake ---- */

/* A TLS alert's name ("certificate_required"); wolfSSL 5.5.4 has no text for some (116 among them). */
static const char *alert_name(int code)
{
	switch (code) {
	case 116:
		return "certificate_required: the server wants a client certificate; set cert= and key=";
	case 120:
		return "no_application_protocol: set alpn= to a protocol the server speaks";
	default: {
		const char *s = wolfSSL_alert_desc_string_long(code);
		return s ? s : "unknown alert";
	}
	}
}

static int set_nodelay(int fd, int on)
{
	return libc.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

/* The sentence for a failed handshake, from what the verify callback, wolfSSL and the socket said. */
static void handshake_reason(struct conn *c, int err, char *buf, size_t len, int *errno_out)
{
	*errno_out = ECONNREFUSED;
	if (c->verify.failed) {
		const char *advice =
		    strstr(c->verify.reason, "name mismatch") || strstr(c->verify.reason, "address mismatch")
			? "fix the certificate or set name="
		    : strstr(c->verify.reason, "pin") ? "check pin-sha256= against `tlsshim probe --pins`"
						      : "fix the server's certificate or the rule's ca-file=";
		snprintf(buf, len, "%s; %s", c->verify.reason, advice);
		return;
	}
	if (err == TLSCTX_GROUP_REFUSED) {
		char groups[96];
		tlsctx_groups_text(&c->rule->tls, groups, sizeof(groups));
		snprintf(buf, len,
			 "the server chose key-exchange group %s, which the rule's groups=%s excludes; fix "
			 "the server or add the group to groups=",
			 tlsctx_group_used(c->ssl), groups);
		return;
	}
	if (c->tcp_eof || err == SOCKET_PEER_CLOSED_E) {
		snprintf(buf, len,
			 "the server closed the connection during the handshake (does it speak TLS 1.2+ "
			 "with AEAD suites? a client certificate required?); check the server or set "
			 "min-version=/ciphers=");
		return;
	}
	if (err == SOCKET_ERROR_E && c->io_errno) {
		snprintf(buf, len, "socket error during the handshake: %s", strerror(c->io_errno));
		return;
	}
	if (err == FATAL_ERROR) {
		WOLFSSL_ALERT_HISTORY h;
		if (c->ssl && wolfSSL_get_alert_history(c->ssl, &h) == WOLFSSL_SUCCESS &&
		    h.last_rx.code > 0) {
			const char *advice;
			switch (h.last_rx.code) {
			case 70: /* protocol_version */
				advice = "the server does not speak TLS 1.2 or 1.3 as the rule allows; "
					 "upgrade it or "
					 "set min-version=/max-version=";
				break;
			case 40: /* handshake_failure */
				advice =
				    "no cipher suite, group or signature algorithm in common (the defaults "
				    "are "
				    "TLS 1.3 and ECDHE with AES-GCM or ChaCha20-Poly1305), or the server "
				    "wants a "
				    "client certificate; check the server, or set ciphers=, groups=, cert= "
				    "and key=";
				break;
			default:
				advice = "check the server's TLS versions, suites and client certificate "
					 "requirements";
				break;
			}
			snprintf(buf, len, "the server sent alert %d (%s); %s", h.last_rx.code,
				 alert_name(h.last_rx.code), advice);
			return;
		}
	}
	snprintf(buf, len, "handshake failed: %s; %s", verify_error_text(err), verify_error_advice(err));
}

int conn_begin(struct conn *c, int fd, const char *name, const char *sni, int family, const uint8_t *addr,
	       void *wolf_ctx, bool tcp_pending)
{
	const struct policy_tls_opts *o = &c->rule->tls;
	char err[400];
	conn_lock(c);
	verify_begin(&c->verify, o, name, family, addr);
	c->ssl = tlsctx_new_session(wolf_ctx, o, sni, &c->verify, err, sizeof(err));
	if (!c->ssl) {
		c->state = CONN_FAILED;
		c->fail_errno = ECONNREFUSED;
		conn_unlock(c);
		log_msg(LOG_ERROR, "%s: %s", c->dest, err);
		errno = ECONNREFUSED;
		return -1;
	}
	wolfSSL_SSLSetIORecv(c->ssl, io_recv);
	wolfSSL_SSLSetIOSend(c->ssl, io_send);
	keylog_arm(c->ssl);
	if (o->session_resumption) {
		char addr_text[64];
		inet_ntop(family, addr, addr_text, sizeof(addr_text));
		/* Everything the full handshake verified: the rule (trust, pins, client certificate,
		 * versions), the verified name or address, the SNI, the destination. */
		snprintf(c->session_key, sizeof(c->session_key), "%p|%s|%s|%s|%s", (const void *)c->rule,
			 name ? name : "", addr_text, sni ? sni : "", c->dest);
		wolfSSL_UseSessionTicket(c->ssl);
		if (session_offer(c->ssl, c->session_key))
			c->stale_ticket = session_ticket_fingerprint(c->ssl);
	}
	wolfSSL_SetIOReadCtx(c->ssl, c);
	wolfSSL_SetIOWriteCtx(c->ssl, c);
	c->io_fd = fd;
	c->wolf_ctx = wolf_ctx;
	c->tcp_pending = tcp_pending;
	c->want_events = POLLOUT;
	c->started_ms = now_ms();
	c->deadline_ms = c->started_ms + o->handshake_timeout_ms;
	/* Nagle plus delayed ACKs stall handshakes: TCP_NODELAY while handshaking, then the program's value.
	 */
	int nodelay = 0;
	socklen_t nlen = sizeof(nodelay);
	c->restore_nodelay = libc.getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &nlen) == 0 && !nodelay;
	if (c->restore_nodelay)
		set_nodelay(fd, 1);
	conn_unlock(c);
	return 0;
}

void conn_begin_server(struct conn *c, int fd, struct serve_state *s)
{
	conn_lock(c);
	c->role = CONN_ROLE_SERVER;
	c->serve = s;
	c->io_fd = fd;
	c->tcp_pending = false;
	c->want_events = POLLIN; /* the ClientHello */
	c->started_ms = now_ms();
	c->deadline_ms = c->started_ms + c->rule->tls.handshake_timeout_ms; /* the default's */
	int nodelay = 0;
	socklen_t nlen = sizeof(nodelay);
	c->restore_nodelay = libc.getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &nlen) == 0 && !nodelay;
	if (c->restore_nodelay)
		set_nodelay(fd, 1);
	conn_unlock(c);
}

/* A server session is made when its ClientHello is in (the SNI picks the rule). Lock held.
 * Returns 0 (c->ssl set), 1 (waiting for bytes), -1 (refused: c->serve->reason). */
static int server_session_ready(struct conn *c, int fd)
{
	if (c->ssl)
		return 0;
	WOLFSSL *ssl = NULL;
	int r = serve_prepare_session(c, fd, &ssl);
	if (r != 0)
		return r;
	c->ssl = ssl;
	wolfSSL_SSLSetIORecv(c->ssl, io_recv);
	wolfSSL_SSLSetIOSend(c->ssl, io_send);
	wolfSSL_SetIOReadCtx(c->ssl, c);
	wolfSSL_SetIOWriteCtx(c->ssl, c);
	keylog_arm(c->ssl);
	return 0;
}

/* The handshake ended, well or badly. Lock held. Returns 0 or -1 (errno set). */
/* sys_errno: ETIMEDOUT for the deadline, or the TCP connect's errno; 0 for a TLS failure (werr). */
static int handshake_done(struct conn *c, int fd, bool ok, int werr, int sys_errno)
{
	const struct policy_tls_opts *o = &c->rule->tls;
	if (c->restore_nodelay) {
		set_nodelay(fd, 0);
		c->restore_nodelay = false;
	}
	if (ok && c->role == CONN_ROLE_SERVER) {
		c->state = CONN_ESTABLISHED;
		c->coalesce = o->serve.coalesce;
		stats_add(c->rule, STATS_INBOUND, STATS_HANDSHAKES, 1);
		if (wolfSSL_session_reused(c->ssl))
			stats_add(c->rule, STATS_INBOUND, STATS_RESUMED, 1);
		keylog_tls12(c->ssl);
		serve_log_handshake(c, fd, now_ms() - c->started_ms);
		return 0;
	}
	if (ok) {
		c->state = CONN_ESTABLISHED;
		stats_add(c->rule, STATS_OUTBOUND, STATS_HANDSHAKES, 1);
		if (wolfSSL_session_reused(c->ssl))
			stats_add(c->rule, STATS_OUTBOUND, STATS_RESUMED, 1);
		if (log_json()) {
			char *alpn = NULL, alpn_esc[300] = "", fields[600];
			unsigned short alen = 0;
			if (o->alpn && wolfSSL_ALPN_GetProtocol(c->ssl, &alpn, &alen) == WOLFSSL_SUCCESS &&
			    alpn) {
				char tmp[256];
				snprintf(tmp, sizeof(tmp), "%.*s", (int)alen, alpn);
				log_json_escape(alpn_esc, sizeof(alpn_esc), tmp);
			}
			snprintf(
			    fields, sizeof(fields),
			    "\"version\":\"%s\",\"cipher\":\"%s\",\"alpn\":\"%s\",\"resumed\":%s,\"ms\":%lld",
			    wolfSSL_get_version(c->ssl), wolfSSL_get_cipher_name(c->ssl), alpn_esc,
			    wolfSSL_session_reused(c->ssl) ? "true" : "false", now_ms() - c->started_ms);
			log_event(LOG_INFO, "handshake", fd, c->dest, c->rule->source, c->rule->line, fields);
		}
		keylog_tls12(c->ssl);
		if (c->session_key[0])
			c->session_saved = session_store(c->ssl, c->session_key, c->stale_ticket);
		if (o->verify == POLICY_VERIFY_OFF)
			log_msg(LOG_WARN,
				"%s: verify=off: the server's certificate was NOT checked; anyone on the "
				"path can "
				"read and change this connection",
				c->dest);
		if (log_enabled(LOG_INFO) && !log_json()) {
			char *alpn = NULL;
			unsigned short alen = 0;
			bool has_alpn =
			    o->alpn && wolfSSL_ALPN_GetProtocol(c->ssl, &alpn, &alen) == WOLFSSL_SUCCESS;
			log_msg(LOG_INFO, "%s: handshake done: %s %s, peer %s%s%.*s%s, %lld ms", c->dest,
				wolfSSL_get_version(c->ssl), wolfSSL_get_cipher_name(c->ssl),
				c->verify.want_name[0] ? c->verify.want_name : "(address)",
				has_alpn ? ", alpn " : "", has_alpn ? (int)alen : 0, has_alpn ? alpn : "",
				wolfSSL_session_reused(c->ssl) ? ", resumed" : "", now_ms() - c->started_ms);
		}
		return 0;
	}
	char err[400];
	int e;
	if (c->role == CONN_ROLE_SERVER) {
		/* To the program a failed handshake is a client that reset the connection. */
		e = ECONNRESET;
		serve_failure_reason(c, werr, sys_errno, err, sizeof(err));
	} else if (sys_errno == ETIMEDOUT && c->dlg && !dialogue_done(c->dlg)) {
		e = ETIMEDOUT;
		snprintf(err, sizeof(err),
			 "timed out after %u ms in %s (handshake-timeout= covers the TCP connect, the proxy, "
			 "the dialogue and the handshake); check the server and the rule's starttls=/proxy=, "
			 "or raise handshake-timeout=",
			 o->handshake_timeout_ms, dialogue_stage(c->dlg));
	} else if (sys_errno == CONN_DIALOGUE_FAILED) {
		e = dialogue_errno(c->dlg);
		snprintf(err, sizeof(err), "%s", dialogue_reason(c->dlg));
	} else if (sys_errno == ETIMEDOUT) {
		e = ETIMEDOUT;
		snprintf(err, sizeof(err),
			 "TLS handshake timed out after %u ms; check that the server speaks TLS on this "
			 "port, or raise "
			 "handshake-timeout=",
			 o->handshake_timeout_ms);
	} else if (sys_errno) { /* the TCP connect failed: a plain errno */
		e = sys_errno;
		snprintf(err, sizeof(err), "TCP connect failed: %s", strerror(e));
	} else {
		handshake_reason(c, werr, err, sizeof(err), &e);
	}
	c->state = CONN_FAILED;
	c->fail_errno = e;
	stats_failure(c->rule, c->role == CONN_ROLE_SERVER ? STATS_INBOUND : STATS_OUTBOUND,
		      sys_errno == ETIMEDOUT ? STATS_REASON_TIMEOUT
		      : sys_errno	     ? STATS_REASON_TCP
		      : c->verify.failed     ? STATS_REASON_VERIFY
					     : STATS_REASON_HANDSHAKE);
	if (log_json()) {
		char reason[900], fields[1000];
		log_json_escape(reason, sizeof(reason), err);
		snprintf(fields, sizeof(fields), "\"reason\":\"%s\",\"errno\":%d", reason, e);
		log_event(LOG_ERROR,
			  c->role == CONN_ROLE_SERVER ? serve_failure_event(c, werr)
			  : c->verify.failed	      ? "verify-failed"
						      : "handshake-failed",
			  fd, c->dest, c->rule->source, c->rule->line, fields);
	}
	if (log_json())
		;					  /* the event above says it */
	else if (sys_errno > 0 && sys_errno != ETIMEDOUT) /* as for plain TCP: the program reports it */
		log_msg(LOG_DEBUG, "%s: %s", c->dest, err);
	else
		log_msg(LOG_ERROR, "%s: %s", c->dest, err);
	/* Nothing more may cross this socket: the program could write plaintext into it otherwise. */
	libc.shutdown(fd, SHUT_RDWR);
	errno = e;
	return -1;
}

/* One non-blocking step. Lock held. */
static int progress_locked(struct conn *c, int fd)
{
	if (c->state == CONN_ESTABLISHED)
		return 0;
	if (c->state != CONN_CONNECTING) {
		errno = c->state == CONN_FAILED ? c->fail_errno : EBADF;
		return -1;
	}
	if (now_ms() >= c->deadline_ms)
		return handshake_done(c, fd, false, 0, ETIMEDOUT);
	if (c->tcp_pending) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (libc.poll(&p, 1, 0) <= 0) {
			c->want_events = POLLOUT;
			return 1;
		}
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		if (libc.getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
			soerr = errno;
		if (soerr)
			return handshake_done(c, fd, false, 0, soerr);
		c->tcp_pending = false;
	}
	if (c->role == CONN_ROLE_SERVER) {
		int sr = server_session_ready(c, fd);
		if (sr > 0) {
			c->want_events = POLLIN;
			return 1;
		}
		if (sr < 0)
			return handshake_done(c, fd, false, 0, 0);
	}
	if (c->dlg && !dialogue_done(c->dlg)) { /* starttls=, proxy=: before the handshake */
		int d = dialogue_step(c->dlg, c, fd, &c->want_events);
		if (d > 0)
			return 1;
		if (d < 0)
			return handshake_done(c, fd, false, 0, CONN_DIALOGUE_FAILED);
	}
	c->io_fd = fd;
	int ret, rounds = 0;
	do /* records already in read-ahead are never waited for on the kernel */
		ret = c->role == CONN_ROLE_SERVER ? wolfSSL_accept(c->ssl) : wolfSSL_connect(c->ssl);
	while (ret != WOLFSSL_SUCCESS && wolfSSL_get_error(c->ssl, ret) == WOLFSSL_ERROR_WANT_READ &&
	       c->ra_off < c->ra_len && ++rounds < 64);
	if (ret == WOLFSSL_SUCCESS) {
		if (c->role == CONN_ROLE_CLIENT && verify_after_handshake(&c->verify, c->ssl) != 0) {
			wolfSSL_shutdown(c->ssl); /* our alert; the socket is shut down right after */
			return handshake_done(c, fd, false, VERIFY_CERT_ERROR, 0);
		}
		if (!tlsctx_group_allowed(c->ssl, &c->rule->tls)) { /* groups= (tlsctx.h) */
			wolfSSL_shutdown(c->ssl);
			return handshake_done(c, fd, false, TLSCTX_GROUP_REFUSED, 0);
		}
		return handshake_done(c, fd, true, 0, 0);
	}
	int werr = wolfSSL_get_error(c->ssl, ret);
	if (werr == WOLFSSL_ERROR_WANT_READ || werr == WOLFSSL_ERROR_WANT_WRITE) {
		c->want_events = werr == WOLFSSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return 1;
	}
	return handshake_done(c, fd, false, werr, 0);
}

int conn_progress(struct conn *c, int fd)
{
	conn_lock(c);
	int r = progress_locked(c, fd);
	int e = errno;
	conn_unlock(c);
	errno = e;
	return r;
}

int conn_finish(struct conn *c, int fd)
{
	for (;;) {
		conn_lock(c);
		int r = progress_locked(c, fd);
		int e = errno;
		short want = c->want_events;
		long long deadline = c->deadline_ms;
		conn_unlock(c);
		if (r <= 0) {
			errno = e;
			return r;
		}
		/* EINTR: a signal does not abandon a half-done handshake; go on until the deadline. */
		wait_fd(fd, want, deadline);
	}
}

enum conn_state conn_get_state(struct conn *c)
{
	conn_lock(c);
	enum conn_state s = c->state;
	conn_unlock(c);
	return s;
}

/* ---- data ---- */

/* errno for a call on a connection that is no longer usable. */
static int dead_errno(struct conn *c, bool writing)
{
	switch (c->state) {
	case CONN_CONNECTING:
		return EAGAIN;
	case CONN_FAILED:
		if (c->role == CONN_ROLE_SERVER) /* a failed client looks like one that reset */
			return writing ? EPIPE : ECONNRESET;
		if (!c->fail_reported) { /* the connect's error, once, as a pending SO_ERROR would give it */
			c->fail_reported = true;
			return c->fail_errno;
		}
		return ENOTCONN;
	case CONN_BROKEN:
		return writing ? EPIPE : ECONNRESET;
	default:
		return EBADF;
	}
}

/* A fatal TLS error after the handshake: remember it, say why once, give errno. */
static int conn_break(struct conn *c, int err, bool writing)
{
	if (c->state != CONN_BROKEN) {
		c->state = CONN_BROKEN;
		char why[200];
		if (err == FATAL_ERROR) {
			WOLFSSL_ALERT_HISTORY h;
			if (wolfSSL_get_alert_history(c->ssl, &h) == WOLFSSL_SUCCESS && h.last_rx.code > 0)
				snprintf(why, sizeof(why), "the server sent fatal alert %d (%s)",
					 h.last_rx.code, alert_name(h.last_rx.code));
			else
				snprintf(why, sizeof(why), "fatal TLS alert");
		} else if (err == SOCKET_ERROR_E && c->io_errno) {
			snprintf(why, sizeof(why), "%s", strerror(c->io_errno));
		} else {
			snprintf(why, sizeof(why), "%s", verify_error_text(err));
		}
		log_msg(LOG_ERROR, "%s: connection broken: %s; the program sees %s", c->dest, why,
			writing ? "EPIPE" : "ECONNRESET");
	}
	return writing ? EPIPE : ECONNRESET;
}

static int flush_committed(struct conn *c, int fd);

/* A call on a connection whose asynchronous handshake has not finished: advance it; a blocking fd waits
 * for the end, a non-blocking one gets EAGAIN. Lock held on entry and on a 0 return. */
static int drive_handshake(struct conn *c, int fd, int flags)
{
	if (c->state != CONN_CONNECTING)
		return 0;
	int r = progress_locked(c, fd);
	if (r <= 0)
		return 0; /* established, or failed: the caller reports the state */
	conn_unlock(c);
	if (fd_is_nonblocking(fd, flags)) {
		errno = EAGAIN;
		return -1;
	}
	conn_finish(c, fd);
	conn_lock(c);
	return 0;
}

/* starttls=postgres: the server's first message is looked at before the program sees it (dialogue.h);
 * what it may see lands in the program-bound queue. One wolfSSL_read into the filter; a message the
 * filter refuses breaks the connection (the program's reads give ECONNRESET). Lock held. */
static int filter_read_step(struct conn *c)
{
	uint8_t tmp[512];
	int n = wolfSSL_read(c->ssl, tmp, sizeof(tmp));
	if (n > 0) {
		c->bytes_in += (unsigned)n;
		if (dialogue_filter_data(c->dlg, c, tmp, (size_t)n) != 0 && c->state != CONN_BROKEN) {
			c->state = CONN_BROKEN;
			log_msg(LOG_ERROR,
				"%s: the server's first PostgreSQL message is malformed, too long or offers "
				"only channel binding (SCRAM-SHA-256-PLUS); the program sees ECONNRESET",
				c->dest);
		}
	}
	return n;
}

ssize_t conn_read(struct conn *c, int fd, void *buf, size_t len, int flags)
{
	if (child_shares_parent_memory()) /* the session is the parent's: child.h */
		return child_refuse(fd, "a read");
	size_t got = 0;
	int ra_rounds = 0;
	if (len > INT_MAX)
		len = INT_MAX;
	cork_release_pending(); /* what this thread holds goes out before it waits for an answer */
	conn_lock(c);
	if (drive_handshake(c, fd, flags) != 0)
		return -1;
	if (c->state == CONN_ESTABLISHED)
		cork_on_read(c, fd);
	/* The look that made this fd readable emptied the kernel socket: once this read has bytes, a
	 * further recv would only say EAGAIN (what comes later raises a kernel event of its own). */
	bool drained = c->drained && !(flags & (MSG_PEEK | MSG_WAITALL));
	c->drained = false;
	long long rcv_deadline = -2; /* -2: SO_RCVTIMEO not yet asked */
	for (;;) {
		/* A request the program believes sent must leave before we wait for its answer: pushed
		 * here without waiting; when nothing is left to read, a blocking read waits for room to
		 * send it and for records at once (below), never for one of the two alone. */
		if (c->state == CONN_ESTABLISHED && c->out_committed)
			flush_committed(c, fd);
		if (c->state != CONN_ESTABLISHED) {
			int e = dead_errno(c, false);
			conn_unlock(c);
			if (got)
				return (ssize_t)got;
			errno = e;
			return -1;
		}
		if (conn_program_queued(c) && got < len) {
			/* What the shim holds for the program comes before any TLS data. A peek shows it
			 * alone; a read goes on to take the records already here, without waiting. */
			got += pq_take(c, (char *)buf + got, len - got, flags & MSG_PEEK);
			if (flags & MSG_PEEK) {
				conn_unlock(c);
				return (ssize_t)got;
			}
			continue;
		}
		if (c->read_eof || len == 0 || got == len) {
			/* Bytes left in the program-bound queue (FIONREAD decrypts ahead into it): as below.
			 */
			bool left_behind = got && (conn_program_queued(c) || wolfSSL_pending(c->ssl) > 0);
			conn_unlock(c);
			if (left_behind)
				wake_notify(fd);
			return (ssize_t)got;
		}
		c->io_fd = fd;
		int n;
		if (dialogue_filter_read(c->dlg)) {
			if ((n = filter_read_step(c)) > 0)
				continue;
		} else {
			c->io_no_kernel = got > 0 && drained;
			n = (flags & MSG_PEEK) ? wolfSSL_peek(c->ssl, (char *)buf + got, (int)(len - got))
					       : wolfSSL_read(c->ssl, (char *)buf + got, (int)(len - got));
			c->io_no_kernel = false;
		}
		if (n > 0) {
			if (!(flags & MSG_PEEK))
				c->bytes_in += (unsigned)n;
			if (!c->session_saved && c->session_key[0]) /* a TLS 1.3 ticket came with the data */
				c->session_saved = session_store(c->ssl, c->session_key, c->stale_ticket);
			got += (size_t)n;
			if ((flags & MSG_PEEK) || got == len) {
				/* A thread blocked in poll on this fd would never hear of bytes left behind.
				 */
				bool left_behind = wolfSSL_pending(c->ssl) > 0 || c->ra_off < c->ra_len;
				conn_unlock(c);
				if (left_behind)
					wake_notify(fd);
				return (ssize_t)got;
			}
			/* Take the records that are already here, as a plain read takes every byte the kernel
			 * holds: event loops treat a short read followed by a hang-up as the end (libuv). The
			 * would-block below returns what we have. */
			continue;
		}
		int err = wolfSSL_get_error(c->ssl, n);
		if (err == WOLFSSL_ERROR_ZERO_RETURN) {
			c->read_eof = true;
			c->peer_close_notify = true;
			continue;
		}
		if (err == WOLFSSL_ERROR_WANT_READ && c->ra_off < c->ra_len && ++ra_rounds < 64)
			continue; /* wolfSSL stops after some records (a session ticket); more wait in
				     read-ahead */
		if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) {
			if (got && !(flags & MSG_WAITALL)) {
				conn_unlock(c);
				return (ssize_t)got;
			}
			/* Full duplex (another thread writing): the record this read owes the peer, or
			 * the one wolfSSL must send to go on, waits for POLLOUT; the peer may only make
			 * room once we read what it sends. So a blocking read that owes a send waits for
			 * both directions and moves whichever comes first. */
			bool owe = c->out_committed > 0 || err == WOLFSSL_ERROR_WANT_WRITE;
			int w;
			if (fd_is_nonblocking(fd, flags)) {
				conn_unlock(c);
				if (err == WOLFSSL_ERROR_WANT_READ) {
					w = kernel_peek_nonblocking(fd, flags); /* EAGAIN, or retry */
				} else {
					errno = EAGAIN;
					w = -1;
				}
				if (w < 0)
					return got ? (ssize_t)got : -1;
				conn_lock(c);
				continue;
			}
			/* Blocking: asleep on the socket and on a wake-up from any thread that takes records
			 * out of the kernel meanwhile; SO_RCVTIMEO and SA_RESTART as for a plain recv(). */
			if (sleep_for_records(c, fd, owe ? POLLIN | POLLOUT : POLLIN, &rcv_deadline) < 0) {
				int e = errno;
				conn_unlock(c);
				if (got)
					return (ssize_t)got;
				errno = e;
				return -1;
			}
			continue;
		}
		if (c->tcp_eof &&
		    (err == SOCKET_PEER_CLOSED_E || err == WOLFSSL_ERROR_SYSCALL || err == SOCKET_ERROR_E)) {
			/* TCP closed without close_notify: a truncation attack looks exactly like this. */
			if (c->rule->tls.truncation == POLICY_TRUNCATION_ALLOW) {
				c->read_eof = true;
				continue;
			}
			if (c->state == CONN_ESTABLISHED) {
				c->state = CONN_BROKEN;
				log_msg(LOG_ERROR,
					"%s: the server closed TCP without a TLS close_notify (possible "
					"truncation); "
					"the program sees ECONNRESET; set truncation=allow if this server "
					"does that",
					c->dest);
			}
			conn_unlock(c);
			if (got)
				return (ssize_t)got;
			errno = ECONNRESET;
			return -1;
		}
		int e = conn_break(c, err, false);
		conn_unlock(c);
		if (got)
			return (ssize_t)got;
		errno = e;
		return -1;
	}
}

/* ---- readiness (conn.h: conn_poll_state) ---- */

/* What a read would return at once, without touching the network: the program-bound queue, decrypted
 * data, EOF, or the end of the connection. Lock held. */
static bool readable_now(struct conn *c)
{
	return c->state != CONN_ESTABLISHED || c->read_eof || conn_program_queued(c) ||
	       (c->ssl && wolfSSL_pending(c->ssl) > 0);
}

/* The kernel holds bytes for this socket (or an error/FIN to report). Never blocks. */
static bool kernel_has_bytes(int fd)
{
	char b;
	ssize_t n = libc.recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Hands wolfSSL the ciphertext that is already here (its own buffer, the read-ahead, and the kernel's
 * when kernel_said), without waiting, until application data is decrypted, EOF or an error shows, or
 * nothing is left. Records without application data (session tickets, KeyUpdate) are consumed on the way.
 * Lock held, state CONN_ESTABLISHED. Returns true when a read would now not block; *want_write when
 * wolfSSL must send before it can go on. */
static bool absorb_loop(struct conn *c, int fd, bool kernel_said, bool *want_write)
{
	for (int rounds = 0; rounds < 64; rounds++) {
		if (readable_now(c))
			return true;
		c->io_fd = fd;
		int n;
		if (dialogue_filter_read(c->dlg)) {
			if ((n = filter_read_step(c)) > 0) {
				if (c->state == CONN_BROKEN)
					return true; /* the read reports it (ECONNRESET) */
				continue;
			}
		} else {
			char b;
			n = wolfSSL_peek(c->ssl, &b, 1);
		}
		if (!c->session_saved && c->session_key[0]) /* a TLS 1.3 ticket may have come */
			c->session_saved = session_store(c->ssl, c->session_key, c->stale_ticket);
		if (n > 0)
			return true;
		int err = wolfSSL_get_error(c->ssl, n);
		if (err == WOLFSSL_ERROR_ZERO_RETURN) {
			c->read_eof = true;
			c->peer_close_notify = true;
			return true;
		}
		if (err == WOLFSSL_ERROR_WANT_WRITE) {
			*want_write = true;
			return false;
		}
		if (err != WOLFSSL_ERROR_WANT_READ)
			return true; /* an error or a FIN: the read classifies and reports it */
		if (c->ra_off >= c->ra_len && (!kernel_said || !kernel_has_bytes(fd)))
			return false; /* tickets only, or half a record: nothing to read yet */
	}
	return false; /* still records coming: the kernel's POLLIN brings the caller back */
}

static bool absorb_records(struct conn *c, int fd, bool kernel_said, bool *want_write)
{
	*want_write = false;
	c->io_no_kernel = !kernel_said;
	bool r = absorb_loop(c, fd, kernel_said, want_write);
	c->io_no_kernel = false;
	return r;
}

static void poll_state_locked(struct conn *c, int fd, short events, bool kernel_said, struct conn_ready *out)
{
	const short fail = POLLIN | POLLOUT | POLLERR | POLLHUP;
	*out = (struct conn_ready){.deadline_ms = -1};
	events &= POLLIN | POLLOUT;
	if (c->state == CONN_CONNECTING && progress_locked(c, fd) == 1) {
		out->connecting = true;
		out->kernel = c->want_events;
		out->deadline_ms = c->deadline_ms;
		return;
	}
	if (c->state != CONN_ESTABLISHED) {
		out->now = fail;
		return;
	}
	if (c->out_committed)
		flush_committed(c, fd);
	bool flushing = c->out_committed > 0;
	out->kernel = events & POLLOUT;
	out->pass = POLLERR | POLLHUP | (flushing ? 0 : POLLOUT);
	if (flushing)
		out->kernel |= POLLOUT;
	if (!(events & POLLIN))
		return;
	bool want_write = false;
	bool was = readable_now(c);
	if (kernel_said || !was)
		c->drained = false; /* a kernel event since (or a look that finds nothing): ask again */
	c->recv_short = false;
	if (was || absorb_records(c, fd, kernel_said, &want_write)) {
		out->now = POLLIN;
		out->made_readable = !was && c->state == CONN_ESTABLISHED;
		if (!was && kernel_said && c->recv_short)
			c->drained = true;
		return;
	}
	out->kernel |= want_write ? POLLOUT : POLLIN;
}

void conn_poll_state(struct conn *c, int fd, short events, bool kernel_said, struct conn_ready *out)
{
	int e = errno;
	conn_lock(c);
	poll_state_locked(c, fd, events, kernel_said, out);
	conn_unlock(c);
	errno = e;
}

bool conn_read_ready(struct conn *c, int fd)
{
	struct conn_ready st;
	conn_poll_state(c, fd, POLLIN, false, &st);
	return (st.now & POLLIN) != 0;
}

/* Moves the application data wolfSSL holds decrypted (the rest of one record) to the end of the
 * program-bound queue, which reads return first, so wolfSSL can decrypt the next record. Lock held.
 * False when the queue has no room for all of it (CONN_PROGRAM_QUEUE_MAX). */
static bool pending_to_queue(struct conn *c)
{
	int p = wolfSSL_pending(c->ssl);
	if (p <= 0)
		return true;
	size_t held = conn_program_queued(c);
	if ((size_t)p > CONN_PROGRAM_QUEUE_MAX - held)
		return false;
	if (!c->pq) {
		if (!(c->pq = malloc(CONN_PROGRAM_QUEUE_MAX)))
			return false;
		c->pq_off = c->pq_len = 0;
	} else if (c->pq_off) {
		memmove(c->pq, c->pq + c->pq_off, held);
		c->pq_len = (unsigned)held;
		c->pq_off = 0;
	}
	int n = wolfSSL_read(c->ssl, c->pq + c->pq_len, p);
	if (n <= 0) {
		if (!c->pq_len)
			pq_release(c);
		return false;
	}
	c->pq_len += (unsigned)n;
	c->pq_ahead += (unsigned)n; /* bytes_in counts them when the program reads them (pq_take) */
	return true;
}

/* FIONREAD: what reads return without waiting, exactly. wolfSSL decrypts one record at a time, so every
 * complete record already here (wolfSSL's buffer, the read-ahead, the kernel) is decrypted ahead into the
 * program-bound queue (as a read would, records without application data consumed on the way), and the
 * count is that queue plus what wolfSSL holds. Only when more than CONN_PROGRAM_QUEUE_MAX (64 KiB) of
 * application data is here does the ciphertext behind the queue (read-ahead and kernel) count as it is:
 * then FIONREAD is an upper bound, above what reads return by at most the records' overhead (22 bytes a
 * record in TLS 1.3, 29 in TLS 1.2 with AES-GCM) plus records without application data and an
 * incomplete last record. Never below: nginx takes FIONREAD as exactly what its next reads get and,
 * once it has read that much, waits for a new edge, which bytes already in the kernel never give (issue
 * 12 item 1). */
int conn_pending(struct conn *c, int fd)
{
	struct conn_ready st;
	int e = errno;
	conn_lock(c);
	size_t n = 0;
	st.made_readable = false;
	if (c->state == CONN_ESTABLISHED) {
		poll_state_locked(c, fd, POLLIN, true, &st); /* FIONREAD counts what the kernel holds */
		bool whole = true;			     /* every complete record here is counted */
		bool filter = dialogue_filter_read(c->dlg);  /* starttls=postgres: its own reads */
		for (int rounds = 0; !filter && c->state == CONN_ESTABLISHED && !c->read_eof; rounds++) {
			if (rounds >= 256 || !pending_to_queue(c)) {
				whole = false;
				break;
			}
			if (c->ra_off >= c->ra_len && !kernel_has_bytes(fd))
				break; /* nothing more received */
			c->io_fd = fd;
			char b;
			int r = wolfSSL_peek(c->ssl, &b, 1);	    /* the next record, never waiting */
			if (!c->session_saved && c->session_key[0]) /* a TLS 1.3 ticket may have come */
				c->session_saved = session_store(c->ssl, c->session_key, c->stale_ticket);
			if (r > 0)
				continue;
			int err = wolfSSL_get_error(c->ssl, r);
			if (err == WOLFSSL_ERROR_ZERO_RETURN) {
				c->read_eof = true;
				c->peer_close_notify = true;
				break;
			}
			if (err != WOLFSSL_ERROR_WANT_READ)
				break; /* an error, a FIN or a record to send: the read reports or does it */
		}
		if (c->state == CONN_ESTABLISHED)
			n = conn_program_queued(c) + (size_t)wolfSSL_pending(c->ssl);
		if (!whole && n > 0 && c->state == CONN_ESTABLISHED) {
			int k = 0;
			n += c->ra_len - c->ra_off;
			if (libc.ioctl(fd, FIONREAD, &k) == 0 && k > 0)
				n += (size_t)k;
		}
	}
	conn_unlock(c);
	if (st.made_readable) /* threads in poll/epoll on fd would not hear of it from the kernel */
		wake_notify(fd);
	errno = e;
	return n > INT_MAX ? INT_MAX : (int)n;
}

bool conn_set_nodelay(struct conn *c, bool on)
{
	conn_lock(c);
	bool during = c->state == CONN_CONNECTING && !conn_is_sentinel(c);
	if (during)
		c->restore_nodelay = !on; /* handshake_done leaves it on, or turns it off */
	conn_unlock(c);
	return during;
}

bool conn_get_nodelay(struct conn *c, int *on)
{
	conn_lock(c);
	bool during = c->state == CONN_CONNECTING && !conn_is_sentinel(c);
	if (during)
		*on = !c->restore_nodelay;
	conn_unlock(c);
	return during;
}

int conn_so_error(struct conn *c, int fd)
{
	conn_lock(c);
	if (c->state == CONN_CONNECTING)
		progress_locked(c, fd);
	int r = -1;
	if (c->state == CONN_CONNECTING) {
		r = 0;
	} else if (c->state == CONN_FAILED) {
		r = c->fail_reported ? 0 : c->fail_errno;
		c->fail_reported = true;
	}
	conn_unlock(c);
	return r;
}

/* Sends the rest of a record committed by an earlier short write. Lock held. Returns 0 when nothing
 * is left, or the wolfSSL error (WANT_WRITE, ...). */
static int flush_committed(struct conn *c, int fd)
{
	/* zeros: wolfSSL only re-sends its buffered record here and never reads these bytes. */
	static const char zeros[RECORD_PLAINTEXT_MAX];
	if (c->out_committed == 0)
		return 0;
	c->io_fd = fd;
	int n = wolfSSL_write(c->ssl, zeros, (int)c->out_committed);
	if (n > 0) {
		c->out_committed = 0;
		return 0;
	}
	return wolfSSL_get_error(c->ssl, n);
}

bool conn_try_flush(struct conn *c, int fd)
{
	conn_lock(c);
	if (c->state == CONN_ESTABLISHED && c->out_committed)
		flush_committed(c, fd);
	bool left = c->state == CONN_ESTABLISHED && c->out_committed > 0;
	conn_unlock(c);
	return left;
}

ssize_t conn_write(struct conn *c, int fd, const void *buf, size_t len, int flags)
{
	if (child_shares_parent_memory()) /* the session is the parent's: child.h */
		return child_refuse(fd, "a write");
	size_t done = 0;
	long long deadline = -2; /* -2: not yet asked */
	if (cork_pending_fd >= 0 && cork_pending_fd != fd)
		cork_flush_pending(); /* another connection's held record: this thread's to push */
	conn_lock(c);
	if (drive_handshake(c, fd, flags) != 0)
		return -1;
	bool more = c->state == CONN_ESTABLISHED && cork_before_write(c, len, flags), sent_more = false;
	for (;;) {
		int err;
		if (c->state != CONN_ESTABLISHED || c->write_shut) {
			int e = c->write_shut && c->state == CONN_ESTABLISHED ? EPIPE : dead_errno(c, true);
			cork_after_write(c, fd, sent_more);
			conn_unlock(c);
			if (done)
				return (ssize_t)done;
			if (e == EPIPE && !(flags & MSG_NOSIGNAL))
				raise(SIGPIPE); /* as the kernel does for a write on a shut socket */
			errno = e;
			return -1;
		}
		if (c->out_committed) {
			err = flush_committed(c, fd);
		} else if (done == len) {
			cork_after_write(c, fd, sent_more);
			conn_unlock(c);
			return (ssize_t)done;
		} else if (c->dlg && dialogue_filter_write(c->dlg, c, (const char *)buf + done, len - done)) {
			done += 8; /* starttls=postgres: the program's own SSLRequest, answered 'N' */
			continue;
		} else {
			size_t chunk = len - done > RECORD_PLAINTEXT_MAX ? RECORD_PLAINTEXT_MAX : len - done;
			c->io_fd = fd;
			c->io_more = more;
			sent_more |= more;
			int n = wolfSSL_write(c->ssl, (const char *)buf + done, (int)chunk);
			c->io_more = false;
			if (n > 0) {
				done += (size_t)n;
				c->bytes_out += (unsigned)n;
				c->wrote_since_fork = true;
				continue;
			}
			err = wolfSSL_get_error(c->ssl, n);
			if (err == WOLFSSL_ERROR_WANT_WRITE) {
				/* The record is built and partly sent: those bytes are the program's no
				 * longer. Report them written; the rest of the record goes out before
				 * anything else. */
				c->out_committed = chunk;
				c->wrote_since_fork = true;
				done += chunk;
				c->bytes_out += chunk;
			}
		}
		if (err == 0)
			continue;
		if (err == WOLFSSL_ERROR_WANT_WRITE || err == WOLFSSL_ERROR_WANT_READ) {
			cork_after_write(c, fd, sent_more);
			sent_more = false;
			conn_unlock(c);
			if (fd_is_nonblocking(fd, flags)) {
				if (done)
					return (ssize_t)done;
				errno = EAGAIN;
				return -1;
			}
			if (deadline == -2)
				deadline = send_deadline(fd);
			int w;
			if (err == WOLFSSL_ERROR_WANT_WRITE) {
				w = wait_fd(fd, POLLOUT, deadline);
			} else {
				/* wolfSSL must read before it can write: another thread's read may take
				 * those bytes from the kernel, so never sleep on POLLIN alone for long;
				 * look again every 20 ms. */
				long long slice = now_ms() + 20;
				w = wait_fd(fd, POLLIN, deadline >= 0 && deadline < slice ? deadline : slice);
				if (w == 0 && (deadline < 0 || now_ms() < deadline))
					w = 1;
			}
			if (w <= 0) {
				if (done)
					return (ssize_t)done;
				if (w == 0)
					errno = EAGAIN; /* SO_SNDTIMEO expired, as the kernel reports it */
				return -1;
			}
			conn_lock(c);
			continue;
		}
		int e = conn_break(c, err, true);
		conn_unlock(c);
		if (done)
			return (ssize_t)done;
		if (e == EPIPE && !(flags & MSG_NOSIGNAL))
			raise(SIGPIPE);
		errno = e;
		return -1;
	}
}

/* Waits (at most until deadline) for fd to take more bytes, without the lock: a peer that does not read
 * must not hold the connection's lock, or the fork gate, for the seconds of a close. True when it can go
 * on (the socket is writable and the connection is still established). Lock held on entry and return. */
static bool wait_writable_unlocked(struct conn *c, int fd, long long deadline)
{
	conn_unlock(c);
	int w = wait_fd(fd, POLLOUT, deadline);
	conn_lock(c);
	return w > 0 && c->state == CONN_ESTABLISHED;
}

/* Flushes what is committed and sends close_notify, waiting at most timeout_ms (lock released while it
 * waits). Lock held. */
static void send_close_notify(struct conn *c, int fd, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	c->io_fd = fd;
	while (c->out_committed) {
		int err = flush_committed(c, fd);
		if (err == 0)
			break;
		if (err != WOLFSSL_ERROR_WANT_WRITE || !wait_writable_unlocked(c, fd, deadline))
			return;
		c->io_fd = fd;
	}
	for (;;) {
		int r = wolfSSL_shutdown(c->ssl);
		if (r == WOLFSSL_SUCCESS || r == WOLFSSL_SHUTDOWN_NOT_DONE)
			return;
		if (wolfSSL_get_error(c->ssl, r) != WOLFSSL_ERROR_WANT_WRITE ||
		    !wait_writable_unlocked(c, fd, deadline))
			return;
		c->io_fd = fd;
	}
}

int conn_shutdown(struct conn *c, int fd, int how)
{
	if (child_shares_parent_memory()) /* the socket (and its session) is the parent's too */
		return child_refuse(fd, "shutdown");
	conn_lock(c);
	if ((how == SHUT_WR || how == SHUT_RDWR) && c->state == CONN_ESTABLISHED && !c->write_shut) {
		send_close_notify(c, fd, 2000);
		c->write_shut = true;
	}
	if (how == SHUT_RD || how == SHUT_RDWR)
		c->read_eof = true;
	conn_unlock(c);
	return libc.shutdown(fd, how);
}

/* The bytes moved since the statistics last had them. Lock held. */
static void publish_bytes(struct conn *c)
{
	enum stats_direction dir = c->role == CONN_ROLE_SERVER ? STATS_INBOUND : STATS_OUTBOUND;
	stats_add(c->rule, dir, STATS_BYTES_IN, c->bytes_in - c->counted_in);
	stats_add(c->rule, dir, STATS_BYTES_OUT, c->bytes_out - c->counted_out);
	c->counted_in = c->bytes_in;
	c->counted_out = c->bytes_out;
}

void conn_publish_all_bytes(void)
{
	for (int fd = fdtab_next(0, FDTAB_MAX_FD - 1); fd >= 0; fd = fdtab_next(fd + 1, FDTAB_MAX_FD - 1)) {
		struct conn *c = fdtab_load(fd);
		if (!c || conn_is_sentinel(c) || !(c = conn_get(fd)))
			continue;
		if (!conn_is_sentinel(c) && conn_trylock(c)) {
			if (c->state != CONN_CLOSED && c->state != CONN_CONNECTING)
				publish_bytes(c);
			conn_unlock(c);
		}
		conn_put(c);
	}
}

/* The end of a connection in this process: statistics and the close event. Lock held. */
static void conn_count_end(struct conn *c, int fd)
{
	if (c->state == CONN_CLOSED || c->state == CONN_CONNECTING)
		return;
	publish_bytes(c);
	if (log_json()) {
		char fields[200];
		snprintf(fields, sizeof(fields),
			 "\"bytes_in\":%llu,\"bytes_out\":%llu,\"close_notify_seen\":%s", c->bytes_in,
			 c->bytes_out, c->peer_close_notify ? "true" : "false");
		log_event(LOG_INFO, "close", fd, c->dest, c->rule->source, c->rule->line, fields);
	} else if (log_enabled(LOG_DEBUG)) {
		log_msg(LOG_DEBUG, "%s: closed: %llu bytes in, %llu bytes out%s", c->dest, c->bytes_in,
			c->bytes_out, c->peer_close_notify ? ", close_notify seen" : "");
	}
}

/* A TLS 1.3 ticket arrives after the handshake; a program that never read may close before it was
 * seen. Process what the kernel already holds (without waiting) so the ticket is kept. Lock held. */
static void save_ticket_before_close(struct conn *c, int fd)
{
	char b;
	c->io_fd = fd;
	wolfSSL_peek(c->ssl, &b, 1); /* the I/O callbacks never block; application data stays unread */
	c->session_saved = session_store(c->ssl, c->session_key, c->stale_ticket);
}

/* Whether this process may send close_notify for the session. Without a fork, the process that made it.
 * After a fork each process has its own copy of the session state, and only a process that has written
 * since then holds the current write sequence number: a child that only closes what it inherited (or
 * only reads) must not end the session on the writer's behalf. Lock held. */
static bool may_end_session(const struct conn *c)
{
	return c->forked ? c->wrote_since_fork : c->owner == getpid();
}

void conn_detach_fd(struct conn *c, int fd)
{
	if (conn_is_sentinel(c))
		return;
	conn_lock(c);
	c->fd_count--;
	if (c->fd_count == 0) {
		/* Not after a fork: the socket is shared, and the other process's records are not ours. */
		if (c->state == CONN_ESTABLISHED && fd >= 0 && !c->forked && !c->session_saved &&
		    c->session_key[0])
			save_ticket_before_close(c, fd);
		if (c->state == CONN_ESTABLISHED && fd >= 0 && may_end_session(c) && !c->write_shut)
			send_close_notify(c, fd, 1000);
		conn_count_end(c, fd);
		if (c->state == CONN_ESTABLISHED || c->state == CONN_CONNECTING)
			c->state = CONN_CLOSED;
	}
	conn_unlock(c);
	conn_put(c);
	metrics_tick(); /* no lock held: the periodic metrics file rides on closes */
}

/* ---- exit ---- */

void conn_end_all_at_exit(int budget_ms)
{
	long long deadline = now_ms() + budget_ms;
	for (int fd = fdtab_next(0, FDTAB_MAX_FD - 1); fd >= 0; fd = fdtab_next(fd + 1, FDTAB_MAX_FD - 1)) {
		struct conn *c = conn_get(fd);
		if (!c)
			continue;
		conn_lock(c);
		long long left = deadline - now_ms();
		if (c->state == CONN_ESTABLISHED && !c->write_shut && may_end_session(c) && left > 0) {
			send_close_notify(c, fd, (int)left);
			c->write_shut = true;
		}
		conn_count_end(c, fd);
		if (c->state == CONN_ESTABLISHED)
			c->state = CONN_CLOSED;
		conn_unlock(c);
		conn_put(c);
	}
}
