/* poll.c: readiness that tells the truth. poll, ppoll, select and pselect ask conn.c's predicate
 * (conn.h: conn_poll_state) about every TLS fd and follow its waiter loop: what it reports now is
 * reported at once (the real call then runs with a zero timeout for the rest), the kernel is asked only
 * what it says, and rounds in which only the shim moved (handshake steps, session tickets) wait again
 * for what remains of the timeout. epoll_ctl is watched so epoll_wait knows which TLS fds an epoll set
 * holds, with the events and data the program registered (epoll does not follow the predicate's loop
 * yet: README, known open problems). */
#include "preload/fdtab.h"
#include "preload/hooks.h"
#include "preload/wake.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Asks conn.c's readiness predicate (conn.h: conn_poll_state) about a TLS fd. False: not a TLS fd. */
static bool tls_state(int fd, short events, bool kernel_said, struct conn_ready *st)
{
	struct conn *c = conn_get(fd);
	if (!c)
		return false;
	conn_poll_state(c, fd, events, kernel_said, st);
	conn_put(c);
	if (st->made_readable) /* others waiting on fd would not hear of it from the kernel */
		wake_notify(fd);
	return true;
}

/* Per-entry state of poll_tls while it waits. */
struct poll_slot {
	struct conn_ready st;
	bool tls;
};

/* poll for arrays that hold TLS fds. timeout_ms -1: forever. Follows conn.h's waiter loop: the kernel is
 * asked, for a TLS fd, only what the predicate says; the program hears only what the predicate says plus
 * the kernel events it may pass on. A round in which only the shim moved (a handshake step, records
 * without application data) waits again for what remains of the timeout. */
static int poll_tls(struct pollfd *fds, nfds_t n, int timeout_ms, const sigset_t *sig, bool use_ppoll)
{
	struct pollfd stack_copy[65];
	struct poll_slot stack_slot[64];
	struct pollfd *copy = n <= 64 ? stack_copy : malloc((n + 1) * sizeof(*copy));
	struct poll_slot *slot = n <= 64 ? stack_slot : malloc(n * sizeof(*slot));
	if (!copy || !slot) {
		if (copy != stack_copy)
			free(copy);
		if (slot != stack_slot)
			free(slot);
		errno = ENOMEM;
		return -1;
	}
	long long deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	int result;
	/* Registered before looking at the fds: bytes another thread leaves inside wolfSSL from now on
	 * wake us through our eventfd even when the kernel socket stays empty. */
	struct wake_waiter waiter;
	int efd = wake_thread_fd();
	if (efd >= 0)
		wake_register(&waiter, efd, fds, n);
	nfds_t real_n = efd >= 0 ? n + 1 : n;
	for (;;) {
		bool now = false;
		long long hs_deadline = -1;
		if (efd >= 0)
			copy[n] = (struct pollfd){.fd = efd, .events = POLLIN};
		for (nfds_t i = 0; i < n; i++) {
			copy[i] = fds[i];
			copy[i].revents = 0;
			slot[i].tls = fds[i].fd >= 0 && fdtab_load(fds[i].fd) &&
				      tls_state(fds[i].fd, fds[i].events, false, &slot[i].st);
			if (!slot[i].tls)
				continue;
			const struct conn_ready *st = &slot[i].st;
			copy[i].events = st->kernel;
			if (st->now & (fds[i].events | POLLERR | POLLHUP))
				now = true;
			if (st->deadline_ms >= 0 && (hs_deadline < 0 || st->deadline_ms < hs_deadline))
				hs_deadline = st->deadline_ms; /* handshake-timeout= ends the wait as well */
		}
		long long until = deadline; /* the program's timeout, or a handshake's if that ends first */
		if (hs_deadline >= 0 && (until < 0 || hs_deadline < until))
			until = hs_deadline;
		int wait = now ? 0 : until < 0 ? -1 : (int)(until - mono_ms() < 0 ? 0 : until - mono_ms());
		int r;
		if (use_ppoll) {
			struct timespec ts = {wait / 1000, (long)(wait % 1000) * 1000000};
			r = libc.ppoll(copy, real_n, wait < 0 ? NULL : &ts, sig);
		} else {
			r = libc.poll(copy, real_n, wait);
		}
		if (r < 0) {
			result = -1;
			break;
		}
		if (efd >= 0 && copy[n].revents)
			wake_drain(efd); /* look at every TLS fd again below and in the next round */
		result = 0;
		for (nfds_t i = 0; i < n; i++) {
			short rev = copy[i].revents;
			if (slot[i].tls) {
				short mask = (short)(fds[i].events | POLLERR | POLLHUP);
				short kr = copy[i].revents;
				rev = (short)((slot[i].st.now & mask) | (kr & POLLNVAL));
				rev |= (short)(kr & slot[i].st.pass & mask);
				if ((kr & ~slot[i].st.pass) && !(kr & POLLNVAL)) {
					/* records, a handshake step or room to flush: the predicate decides
					 */
					struct conn_ready again;
					if (tls_state(fds[i].fd, fds[i].events, true, &again))
						rev |= (short)(again.now & mask);
				}
			}
			fds[i].revents = rev;
			if (rev)
				result++;
		}
		if (result > 0 || (deadline >= 0 && mono_ms() >= deadline))
			break;
		/* Only the shim moved (handshake steps, tickets): wait on, for what remains of the timeout.
		 */
	}
	int e = errno;
	if (efd >= 0)
		wake_unregister(&waiter);
	if (copy != stack_copy)
		free(copy);
	if (slot != stack_slot)
		free(slot);
	errno = e;
	return result;
}

static bool has_tls_fd(const struct pollfd *fds, nfds_t n)
{
	for (nfds_t i = 0; i < n; i++)
		if (fds[i].fd >= 0 && fdtab_load(fds[i].fd))
			return true;
	return false;
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	libc_ensure();
	if (!has_tls_fd(fds, n))
		return libc.poll(fds, n, timeout);
	return poll_tls(fds, n, timeout < 0 ? -1 : timeout, NULL, false);
}

EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	return poll(fds, n, timeout);
}

static int timespec_ms(const struct timespec *ts)
{
	if (!ts)
		return -1;
	long long ms = (long long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *sig)
{
	libc_ensure();
	if (!has_tls_fd(fds, n))
		return libc.ppoll(fds, n, ts, sig);
	return poll_tls(fds, n, timespec_ms(ts), sig, true);
}

EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *sig,
		       size_t fdslen)
{
	return ppoll(fds, n, ts, sig);
}

/* ---- select ----
 * The sets are bitmaps of unsigned longs, nfds bits long: glibc's fd_set holds FD_SETSIZE (1024) bits,
 * but the kernel takes any nfds and programs allocate larger bitmaps for it. The bits are read and
 * written here directly (FD_ISSET/FD_SET stop at FD_SETSIZE, and abort beyond it when fortified). */
#define SEL_BITS (8 * sizeof(unsigned long))

static bool sel_isset(const fd_set *s, int fd)
{
	return s && ((((const unsigned long *)(const void *)s)[fd / SEL_BITS] >> (fd % SEL_BITS)) & 1UL);
}

/* select on sets that hold TLS fds, at any nfds: run it as a poll, then write the answer back into the
 * sets the way the kernel does (every word that holds one of the nfds bits). */
static int select_tls(int nfds, fd_set *r, fd_set *w, fd_set *e, int timeout_ms, const sigset_t *sig,
		      bool use_ppoll)
{
	size_t words = ((size_t)nfds + SEL_BITS - 1) / SEL_BITS;
	size_t n_cand = 0;
	for (size_t k = 0; k < words; k++) {
		unsigned long any = 0;
		if (r)
			any |= ((const unsigned long *)(const void *)r)[k];
		if (w)
			any |= ((const unsigned long *)(const void *)w)[k];
		if (e)
			any |= ((const unsigned long *)(const void *)e)[k];
		if (k == words - 1 && nfds % SEL_BITS)
			any &= (1UL << (nfds % SEL_BITS)) - 1;
		n_cand += (size_t)__builtin_popcountl(any);
	}
	struct pollfd stack_pfds[256];
	unsigned long stack_out[3 * (FD_SETSIZE / SEL_BITS)];
	struct pollfd *pfds = n_cand <= 256 ? stack_pfds : malloc(n_cand * sizeof(*pfds));
	unsigned long *out = words <= FD_SETSIZE / SEL_BITS ? stack_out : calloc(3 * words, sizeof(*out));
	if (!pfds || !out) {
		if (pfds != stack_pfds)
			free(pfds);
		if (out != stack_out)
			free(out);
		errno = ENOMEM;
		return -1;
	}
	nfds_t n = 0;
	for (int fd = 0; fd < nfds && n < n_cand; fd++) {
		short ev = (short)((sel_isset(r, fd) ? POLLIN : 0) | (sel_isset(w, fd) ? POLLOUT : 0) |
				   (sel_isset(e, fd) ? POLLPRI : 0));
		if (ev)
			pfds[n++] = (struct pollfd){.fd = fd, .events = ev};
	}
	int count = poll_tls(pfds, n, timeout_ms, sig, use_ppoll);
	if (count >= 0) {
		/* Built apart: the program may pass one set as two of the arguments. */
		memset(out, 0, 3 * words * sizeof(*out));
		unsigned long *ro = out, *wo = out + words, *eo = out + 2 * words;
		count = 0;
		for (nfds_t i = 0; i < n; i++) {
			int fd = pfds[i].fd;
			short ev = pfds[i].events, rev = pfds[i].revents;
			unsigned long bit = 1UL << (fd % SEL_BITS);
			if (rev & POLLNVAL) {
				errno = EBADF;
				count = -1;
				break;
			}
			if ((ev & POLLIN) && (rev & (POLLIN | POLLHUP | POLLERR))) {
				ro[fd / SEL_BITS] |= bit;
				count++;
			}
			if ((ev & POLLOUT) && (rev & (POLLOUT | POLLERR))) {
				wo[fd / SEL_BITS] |= bit;
				count++;
			}
			if ((ev & POLLPRI) && (rev & POLLPRI)) {
				eo[fd / SEL_BITS] |= bit;
				count++;
			}
		}
		if (count >= 0) {
			if (r)
				memcpy(r, ro, words * sizeof(*out));
			if (w)
				memcpy(w, wo, words * sizeof(*out));
			if (e)
				memcpy(e, eo, words * sizeof(*out));
		}
	}
	int err = errno;
	if (pfds != stack_pfds)
		free(pfds);
	if (out != stack_out)
		free(out);
	errno = err;
	return count;
}

/* The kernel looks at no more bits than the process can have fds (it cuts nfds to its fd table's
 * size, which follows RLIMIT_NOFILE); neither may we, or a huge nfds would read past the program's sets. */
static int clamp_nfds(int nfds)
{
	if (nfds <= FD_SETSIZE)
		return nfds;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)nfds > rl.rlim_cur) {
		rlim_t cut = (rl.rlim_cur + SEL_BITS - 1) / SEL_BITS * SEL_BITS;
		if (cut < (rlim_t)nfds)
			return cut < FD_SETSIZE ? FD_SETSIZE : (int)cut;
	}
	return nfds;
}

static bool sets_have_tls_fd(int nfds, const fd_set *r, const fd_set *w, const fd_set *e)
{
	for (int fd = fdtab_next(0, nfds - 1); fd >= 0; fd = fdtab_next(fd + 1, nfds - 1))
		if (sel_isset(r, fd) || sel_isset(w, fd) || sel_isset(e, fd))
			return true;
	return false;
}

EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	libc_ensure();
	nfds = clamp_nfds(nfds);
	if (nfds <= 0 || !sets_have_tls_fd(nfds, r, w, e))
		return libc.select(nfds, r, w, e, tv);
	if (tv && (tv->tv_sec < 0 || tv->tv_usec < 0)) {
		errno = EINVAL;
		return -1;
	}
	long long ms = tv ? (long long)tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000 : -1;
	long long end = tv ? mono_ms() + ms : 0;
	int k = select_tls(nfds, r, w, e, ms > INT_MAX ? INT_MAX : (int)ms, NULL, false);
	if (tv && k >= 0) { /* Linux select leaves the time not slept in *tv */
		long long left = end - mono_ms();
		if (left < 0 || k == 0)
			left = 0;
		tv->tv_sec = (time_t)(left / 1000);
		tv->tv_usec = (suseconds_t)(left % 1000) * 1000;
	}
	return k;
}

EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts, const sigset_t *sig)
{
	libc_ensure();
	nfds = clamp_nfds(nfds);
	if (nfds <= 0 || !sets_have_tls_fd(nfds, r, w, e))
		return libc.pselect(nfds, r, w, e, ts, sig);
	if (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)) {
		errno = EINVAL;
		return -1;
	}
	return select_tls(nfds, r, w, e, timespec_ms(ts), sig, true);
}

/* ---- epoll ---- */

struct epoll_reg {
	int epfd, fd;
	struct epoll_event ev; /* what the program registered */
	bool connecting;       /* the kernel holds the handshake's interest instead of ev.events */
	bool flushing;	       /* the kernel also watches EPOLLOUT, to send what a short write left */
};

/* TLS fds registered in epoll sets (only TLS fds: plain ones cost nothing). Guarded by epoll_lock;
 * touched by epoll_ctl on TLS fds, by epoll_wait on sets that hold TLS fds, and by close. */
static pthread_mutex_t epoll_lock = PTHREAD_MUTEX_INITIALIZER;
static struct epoll_reg *regs;
static size_t n_regs, cap_regs;
static _Atomic size_t n_regs_hint; /* n_regs, readable without the lock for the fast path */

/* One eventfd per epoll set holding TLS fds, registered in the set with WAKE_DATA (see wake.h).
 * Guarded by epoll_lock. */
#define WAKE_DATA 0x746c737368696d57ULL /* "tlsshimW": never handed to the program */
struct epoll_wake {
	int epfd, efd;
};
static struct epoll_wake *wakes;
static size_t n_wakes, cap_wakes;
static _Atomic size_t n_wakes_hint;

/* The wake eventfd of epfd, made and added to the set on first need. epoll_lock held. */
static int epoll_wake_fd(int epfd)
{
	for (size_t i = 0; i < n_wakes; i++)
		if (wakes[i].epfd == epfd)
			return wakes[i].efd;
	if (n_wakes == cap_wakes) {
		size_t cap = cap_wakes ? cap_wakes * 2 : 8;
		struct epoll_wake *nw = realloc(wakes, cap * sizeof(*nw));
		if (!nw)
			return -1;
		wakes = nw;
		cap_wakes = cap;
	}
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0)
		return -1;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_DATA};
	if (libc.epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev) != 0) {
		libc.close(efd);
		return -1;
	}
	wakes[n_wakes++] = (struct epoll_wake){epfd, efd};
	atomic_store(&n_wakes_hint, n_wakes);
	return efd;
}

/* Removes the wake eventfd of every epoll set that no longer holds a TLS fd, so that sets without TLS
 * fds go back to the pass-through path (and our eventfd can never surface). epoll_lock held. */
static void drop_unused_wakes(void)
{
	for (size_t k = 0; k < n_wakes;) {
		bool used = false;
		for (size_t i = 0; i < n_regs && !used; i++)
			used = regs[i].epfd == wakes[k].epfd;
		if (used) {
			k++;
			continue;
		}
		libc.epoll_ctl(wakes[k].epfd, EPOLL_CTL_DEL, wakes[k].efd, NULL);
		libc.close(wakes[k].efd);
		wakes[k] = wakes[--n_wakes];
	}
	atomic_store(&n_wakes_hint, n_wakes);
}

void poll_notify_epoll(int fd)
{
	if (atomic_load(&n_regs_hint) == 0)
		return;
	pthread_mutex_lock(&epoll_lock);
	for (size_t i = 0; i < n_regs; i++) {
		if (regs[i].fd != fd || !(regs[i].ev.events & EPOLLIN))
			continue;
		for (size_t k = 0; k < n_wakes; k++)
			if (wakes[k].epfd == regs[i].epfd) {
				uint64_t one = 1;
				syscall(SYS_write, wakes[k].efd, &one, sizeof(one));
			}
	}
	pthread_mutex_unlock(&epoll_lock);
}

static struct epoll_reg *find_reg(int epfd, int fd)
{
	for (size_t i = 0; i < n_regs; i++)
		if (regs[i].epfd == epfd && regs[i].fd == fd)
			return &regs[i];
	return NULL;
}

/* The events the kernel should watch for a registration (the handshake's while connecting). */
static uint32_t kernel_events(const struct epoll_reg *r, short want)
{
	if (!r->connecting)
		return r->ev.events | (r->flushing ? (uint32_t)EPOLLOUT : 0);
	return (r->ev.events & ~(uint32_t)(EPOLLIN | EPOLLOUT | EPOLLET | EPOLLONESHOT)) | (uint32_t)want;
}

void poll_forget_fd(int fd)
{
	if (atomic_load(&n_regs_hint) == 0 && atomic_load(&n_wakes_hint) == 0)
		return;
	pthread_mutex_lock(&epoll_lock);
	for (size_t i = 0; i < n_wakes;) {
		if (wakes[i].epfd == fd) { /* the epoll set is going away: so does its wake eventfd */
			libc.close(wakes[i].efd);
			wakes[i] = wakes[--n_wakes];
		} else {
			i++;
		}
	}
	atomic_store(&n_wakes_hint, n_wakes);
	for (size_t i = 0; i < n_regs;) {
		if (regs[i].fd == fd || regs[i].epfd == fd)
			regs[i] = regs[--n_regs];
		else
			i++;
	}
	atomic_store(&n_regs_hint, n_regs);
	drop_unused_wakes();
	pthread_mutex_unlock(&epoll_lock);
}

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	libc_ensure();
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.epoll_ctl(epfd, op, fd, ev);
	short want = 0;
	bool connecting = conn_get_state(c) == CONN_CONNECTING && conn_progress(c, fd) == 1;
	if (connecting)
		want = c->want_events;
	conn_put(c);
	pthread_mutex_lock(&epoll_lock);
	int r;
	if (op == EPOLL_CTL_DEL || !ev) {
		r = libc.epoll_ctl(epfd, op, fd, ev);
		struct epoll_reg *reg = find_reg(epfd, fd);
		if (r == 0 && reg) {
			*reg = regs[--n_regs];
			atomic_store(&n_regs_hint, n_regs);
			drop_unused_wakes();
		}
	} else {
		struct epoll_reg tmp = {.epfd = epfd, .fd = fd, .ev = *ev, .connecting = connecting};
		struct epoll_event kev = {.events = kernel_events(&tmp, want), .data = ev->data};
		r = libc.epoll_ctl(epfd, op, fd, &kev);
		if (r == 0) {
			struct epoll_reg *reg = find_reg(epfd, fd);
			if (!reg && n_regs == cap_regs) {
				size_t cap = cap_regs ? cap_regs * 2 : 16;
				struct epoll_reg *nr = realloc(regs, cap * sizeof(*nr));
				if (nr) {
					regs = nr;
					cap_regs = cap;
				}
			}
			if (!reg && n_regs < cap_regs)
				reg = &regs[n_regs++];
			if (reg)
				*reg = tmp;
			epoll_wake_fd(epfd);
		}
	}
	atomic_store(&n_regs_hint, n_regs);
	pthread_mutex_unlock(&epoll_lock);
	return r;
}

/* The handshake deadline of a connecting TLS fd, or -1. */
static long long conn_deadline_of(int fd)
{
	struct conn *c = conn_get(fd);
	if (!c)
		return -1;
	long long d = c->deadline_ms;
	conn_put(c);
	return d;
}

/* Looks at one registration: events to report now (0: none), after moving a handshake along.
 * epoll_lock held. */
static uint32_t reg_events_now(struct epoll_reg *r, bool kernel_said_ready)
{
	struct conn *c = conn_get(r->fd);
	if (!c)
		return 0;
	uint32_t out = 0;
	if (r->connecting) {
		int p = conn_progress(c, r->fd);
		if (p == 1) {
			if (kernel_said_ready) { /* follow the handshake's direction */
				struct epoll_event kev = {.events = kernel_events(r, c->want_events),
							  .data = r->ev.data};
				libc.epoll_ctl(r->epfd, EPOLL_CTL_MOD, r->fd, &kev);
			}
		} else {
			r->connecting = false;
			struct epoll_event kev = {.events = r->ev.events, .data = r->ev.data};
			libc.epoll_ctl(r->epfd, EPOLL_CTL_MOD, r->fd, &kev);
			out = p == 0 ? (r->ev.events & EPOLLOUT)
				     : ((r->ev.events & (EPOLLIN | EPOLLOUT)) | EPOLLERR | EPOLLHUP);
		}
	} else if (conn_get_state(c) == CONN_ESTABLISHED) {
		bool left = c->out_committed ? conn_try_flush(c, r->fd) : false;
		if (left != r->flushing) { /* watch EPOLLOUT exactly while there is something to flush */
			r->flushing = left;
			struct epoll_event kev = {.events = kernel_events(r, 0), .data = r->ev.data};
			libc.epoll_ctl(r->epfd, EPOLL_CTL_MOD, r->fd, &kev);
		}
		if ((r->ev.events & EPOLLIN) && conn_read_ready(c, r->fd))
			out = EPOLLIN;
	}
	conn_put(c);
	return out;
}

/* The real wait: epoll_wait, or epoll_pwait when a signal mask is given (same semantics). */
static int real_epoll(int epfd, struct epoll_event *events, int max, int timeout, const sigset_t *sig,
		      bool is_pwait)
{
	return is_pwait ? libc.epoll_pwait(epfd, events, max, timeout, sig)
			: libc.epoll_wait(epfd, events, max, timeout);
}

static int epoll_common(int epfd, struct epoll_event *events, int max, int timeout, const sigset_t *sig,
			bool is_pwait)
{
	if (max <= 0 || !events || (atomic_load(&n_regs_hint) == 0 && atomic_load(&n_wakes_hint) == 0))
		return real_epoll(epfd, events, max, timeout, sig, is_pwait);
	long long deadline = timeout < 0 ? -1 : mono_ms() + timeout;
	for (;;) {
		/* What the shim knows without the kernel: data inside wolfSSL, handshakes that ended. */
		int n = 0;
		long long until = deadline;
		pthread_mutex_lock(&epoll_lock);
		for (size_t i = 0; i < n_regs && n < max; i++) {
			if (regs[i].epfd != epfd)
				continue;
			long long hs = regs[i].connecting ? conn_deadline_of(regs[i].fd) : -1;
			if (hs >= 0 && (until < 0 || hs < until))
				until = hs; /* handshake-timeout= ends the wait as well */
			uint32_t ev = reg_events_now(&regs[i], false);
			if (ev) {
				events[n].events = ev;
				events[n++].data = regs[i].ev.data;
			}
		}
		pthread_mutex_unlock(&epoll_lock);
		int wait = n ? 0 : until < 0 ? -1 : (int)(until - mono_ms() < 0 ? 0 : until - mono_ms());
		int r = n == max ? 0 : real_epoll(epfd, events + n, max - n, wait, sig, is_pwait);
		if (r < 0)
			return n ? n : -1;
		int total = n;
		pthread_mutex_lock(&epoll_lock);
		for (int i = n; i < n + r; i++) {
			struct epoll_event e = events[i];
			if (e.data.u64 ==
			    WAKE_DATA) { /* our own wake-up: the next round looks at the TLS fds */
				for (size_t k = 0; k < n_wakes; k++)
					if (wakes[k].epfd == epfd)
						wake_drain(wakes[k].efd);
				continue;
			}
			struct epoll_reg *reg = NULL;
			for (size_t k = 0; k < n_regs && !reg; k++)
				if (regs[k].epfd == epfd && regs[k].ev.data.u64 == e.data.u64)
					reg = &regs[k];
			if (reg && reg->connecting) { /* the kernel's readiness is the handshake's, not the
							 program's */
				e.events = reg_events_now(reg, true);
				if (!e.events)
					continue;
			} else if (reg && reg->flushing) {
				/* EPOLLOUT was ours: flush now; the program hears of it only if it asked and
				 * all left */
				reg_events_now(reg, true);
				if (reg->flushing || !(reg->ev.events & EPOLLOUT))
					e.events &= ~(uint32_t)EPOLLOUT;
				if (!e.events)
					continue;
			}
			bool merged = false;
			for (int j = 0; j < n && !merged; j++)
				if (events[j].data.u64 == e.data.u64) {
					events[j].events |= e.events;
					merged = true;
				}
			if (!merged)
				events[total++] = e;
		}
		pthread_mutex_unlock(&epoll_lock);
		if (total > 0 || (deadline >= 0 && mono_ms() >= deadline))
			return total;
	}
}

EXPORT int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout)
{
	libc_ensure();
	return epoll_common(epfd, events, max, timeout, NULL, false);
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout, const sigset_t *sig)
{
	libc_ensure();
	return epoll_common(epfd, events, max, timeout, sig, true);
}

EXPORT int epoll_pwait2(int epfd, struct epoll_event *events, int max, const struct timespec *ts,
			const sigset_t *sig)
{
	libc_ensure();
	if (!libc.epoll_pwait2) {
		errno = ENOSYS;
		return -1;
	}
	if (max <= 0 || !events || (atomic_load(&n_regs_hint) == 0 && atomic_load(&n_wakes_hint) == 0))
		return libc.epoll_pwait2(epfd, events, max, ts, sig);
	/* Millisecond resolution is enough for the sets that hold TLS fds. */
	return epoll_common(epfd, events, max, timespec_ms(ts), sig, true);
}
