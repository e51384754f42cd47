/* poll.c: readiness that tells the truth. poll, ppoll, select and pselect ask conn.c's predicate
 * (conn.h: conn_poll_state) about every TLS fd and follow its waiter loop: what it reports now is
 * reported at once (the real call then runs with a zero timeout for the rest), the kernel is asked only
 * what it says, and rounds in which only the shim moved (handshake steps, session tickets) wait again
 * for what remains of the timeout. (epoll is epoll.c's.) An epoll set that holds TLS fds, polled on its fd,
 * is readable when epoll_wait on it would return something (epoll.h: epoll_set_revents). */
#include "preload/child.h"
#include "preload/epoll.h"
#include "preload/fdtab.h"
#include "preload/hooks.h"
#include "preload/pollwait.h"
#include "preload/wake.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

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
	bool set;      /* an epoll set with TLS fds (epoll.c answers for it) */
	short set_rev; /* its answer before the wait */
};

/* poll for arrays that hold TLS fds. timeout_ms -1: forever. Follows conn.h's waiter loop: the kernel is
 * asked, for a TLS fd, only what the predicate says; the program hears only what the predicate says plus
 * the kernel events it may pass on. A round in which only the shim moved (a handshake step, records
 * without application data) waits again for what remains of the timeout. */
static int poll_tls(struct pollfd *fds, nfds_t n, int timeout_ms, const sigset_t *sig, bool use_ppoll)
{
	/* A signal handler may siglongjmp out of the real poll below, and nothing after it then runs:
	 * nothing this call registers lives in its frame, and larger arrays are per-thread buffers kept
	 * between calls (pollwait.h). */
	void *frame = __builtin_frame_address(0);
	struct pollfd stack_copy[65];
	struct poll_slot stack_slot[64];
	struct pollfd *copy =
	    n <= 64 ? stack_copy : pollwait_scratch(POLLWAIT_SCRATCH_COPY, (n + 1) * sizeof(*copy), frame);
	struct poll_slot *slot =
	    n <= 64 ? stack_slot : pollwait_scratch(POLLWAIT_SCRATCH_SLOT, n * sizeof(*slot), frame);
	if (!copy || !slot) {
		if (copy != stack_copy)
			pollwait_scratch_put(POLLWAIT_SCRATCH_COPY, copy);
		if (slot != stack_slot)
			pollwait_scratch_put(POLLWAIT_SCRATCH_SLOT, slot);
		errno = ENOMEM;
		return -1;
	}
	long long deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	int result;
	/* Registered before looking at the fds: bytes another thread leaves inside wolfSSL from now on
	 * wake us through our eventfd even when the kernel socket stays empty. */
	int efd = wake_thread_fd();
	unsigned long ticket = 0;
	nfds_t real_n = efd >= 0 ? n + 1 : n;
	for (;;) {
		bool now = false;
		long long hs_deadline = -1;
		/* Each round: a wait nested in this one (a handler's poll) may have taken the record over. */
		if (!pollwait_held(ticket))
			ticket = pollwait_begin(fds, n, efd);
		if (efd >= 0)
			copy[n] = (struct pollfd){.fd = efd, .events = POLLIN};
		for (nfds_t i = 0; i < n; i++) {
			copy[i] = fds[i];
			copy[i].revents = 0;
			slot[i].tls = fds[i].fd >= 0 && fdtab_load(fds[i].fd) &&
				      tls_state(fds[i].fd, fds[i].events, false, &slot[i].st);
			slot[i].set = !slot[i].tls && fds[i].fd >= 0 && epoll_is_tls_set(fds[i].fd);
			if (slot[i].set) {
				long long dl;
				slot[i].set_rev = epoll_set_revents(fds[i].fd, fds[i].events, &dl);
				if (slot[i].set_rev)
					now = true;
				if (dl >= 0 && (hs_deadline < 0 || dl < hs_deadline))
					hs_deadline = dl;
				if (ticket)
					pollwait_watch(ticket, fds[i].fd);
				else
					epoll_set_watch(fds[i].fd, 1);
			}
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
		/* The clock is read once: read twice, a millisecond boundary between the two reads gave -1
		 * (forever) for a timeout that had just run out, so a poll(fd, 0) could block for good. */
		long long left = until < 0 ? -1 : until - mono_ms();
		int wait = now ? 0 : until < 0 ? -1 : left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
		int r;
		if (use_ppoll) {
			struct timespec ts = {wait / 1000, (long)(wait % 1000) * 1000000};
			r = libc.ppoll(copy, real_n, wait < 0 ? NULL : &ts, sig);
		} else {
			r = libc.poll(copy, real_n, wait);
		}
		int poll_errno = errno;
		if (ticket)
			pollwait_unwatch(ticket);
		else
			for (nfds_t i = 0; i < n; i++)
				if (slot[i].set)
					epoll_set_watch(fds[i].fd, -1);
		errno = poll_errno;
		if (r < 0) {
			result = -1;
			break;
		}
		if (efd >= 0 && copy[n].revents)
			wake_drain(efd); /* look at every TLS fd again below and in the next round */
		result = 0;
		for (nfds_t i = 0; i < n; i++) {
			short rev = copy[i].revents;
			if (slot[i].set) {
				rev = (short)(slot[i].set_rev | (copy[i].revents & POLLNVAL));
				if (copy[i].revents & ~POLLNVAL) { /* the kernel moved: look again */
					long long dl;
					rev |= epoll_set_revents(fds[i].fd, fds[i].events, &dl);
				}
			}
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
	pollwait_end(ticket);
	if (copy != stack_copy)
		pollwait_scratch_put(POLLWAIT_SCRATCH_COPY, copy);
	if (slot != stack_slot)
		pollwait_scratch_put(POLLWAIT_SCRATCH_SLOT, slot);
	errno = e;
	return result;
}

static bool has_tls_fd(const struct pollfd *fds, nfds_t n)
{
	for (nfds_t i = 0; i < n; i++)
		if (fds[i].fd >= 0 && (fdtab_load(fds[i].fd) || epoll_is_tls_set(fds[i].fd)))
			return true;
	return false;
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	libc_ensure();
	cork_release_pending();
	if (!has_tls_fd(fds, n) || child_shares_parent_memory()) /* vfork: the kernel's view, no lock */
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
	cork_release_pending();
	if (!has_tls_fd(fds, n) || child_shares_parent_memory())
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
	/* As in poll_tls: a jump out of the wait must leave nothing allocated behind. */
	void *frame = __builtin_frame_address(0);
	struct pollfd stack_pfds[256];
	unsigned long stack_out[3 * (FD_SETSIZE / SEL_BITS)];
	struct pollfd *pfds = n_cand <= 256
				  ? stack_pfds
				  : pollwait_scratch(POLLWAIT_SCRATCH_SEL_FDS, n_cand * sizeof(*pfds), frame);
	unsigned long *out =
	    words <= FD_SETSIZE / SEL_BITS
		? stack_out
		: pollwait_scratch(POLLWAIT_SCRATCH_SEL_OUT, 3 * words * sizeof(*out), frame);
	if (!pfds || !out) {
		if (pfds != stack_pfds)
			pollwait_scratch_put(POLLWAIT_SCRATCH_SEL_FDS, pfds);
		if (out != stack_out)
			pollwait_scratch_put(POLLWAIT_SCRATCH_SEL_OUT, out);
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
		pollwait_scratch_put(POLLWAIT_SCRATCH_SEL_FDS, pfds);
	if (out != stack_out)
		pollwait_scratch_put(POLLWAIT_SCRATCH_SEL_OUT, out);
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
	if (r && epoll_has_tls_sets()) /* an epoll set with TLS fds, watched for reading */
		for (int fd = 0; fd < nfds; fd++)
			if (sel_isset(r, fd) && epoll_is_tls_set(fd))
				return true;
	return false;
}

EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	libc_ensure();
	cork_release_pending();
	nfds = clamp_nfds(nfds);
	if (nfds <= 0 || !sets_have_tls_fd(nfds, r, w, e) || child_shares_parent_memory())
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
	cork_release_pending();
	nfds = clamp_nfds(nfds);
	if (nfds <= 0 || !sets_have_tls_fd(nfds, r, w, e) || child_shares_parent_memory())
		return libc.pselect(nfds, r, w, e, ts, sig);
	if (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)) {
		errno = EINVAL;
		return -1;
	}
	return select_tls(nfds, r, w, e, timespec_ms(ts), sig, true);
}
