/* poll.c: readiness that tells the truth. A TLS fd can have decrypted bytes waiting inside wolfSSL
 * while its kernel socket is empty; poll, ppoll, select, pselect and epoll_wait report such an fd
 * readable at once (the real call then runs with a zero timeout for the rest). Ciphertext left over
 * from a short write is pushed out before waiting. epoll_ctl is watched so epoll_wait knows which TLS
 * fds an epoll set holds, with the events and data the program registered. */
#include "preload/fdtab.h"
#include "preload/hooks.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* True if fd is a TLS fd whose read would not block on the kernel; flushes pending output on the way. */
static bool tls_fd_read_ready(int fd)
{
	struct conn *c = conn_get(fd);
	if (!c)
		return false;
	if (c->out_committed)
		conn_try_flush(c, fd);
	bool r = conn_read_ready(c);
	conn_put(c);
	return r;
}

static int poll_common(struct pollfd *fds, nfds_t n, int timeout, const struct timespec *ts, const sigset_t *sig,
		       bool is_ppoll)
{
	bool any_tls = false, any_ready = false;
	for (nfds_t i = 0; i < n; i++) {
		if (fds[i].fd < 0 || !fdtab_load(fds[i].fd))
			continue;
		any_tls = true;
		if ((fds[i].events & POLLIN) && tls_fd_read_ready(fds[i].fd))
			any_ready = true;
	}
	if (!any_ready) {
		return is_ppoll ? libc.ppoll(fds, n, ts, sig) : libc.poll(fds, n, timeout);
	}
	(void)any_tls;
	static const struct timespec zero = {0, 0};
	int r = is_ppoll ? libc.ppoll(fds, n, &zero, sig) : libc.poll(fds, n, 0);
	if (r < 0)
		return r;
	for (nfds_t i = 0; i < n; i++) {
		if (fds[i].fd < 0 || !(fds[i].events & POLLIN) || !fdtab_load(fds[i].fd) || !tls_fd_read_ready(fds[i].fd))
			continue;
		if (fds[i].revents == 0)
			r++;
		fds[i].revents |= POLLIN;
	}
	return r;
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	libc_ensure();
	return poll_common(fds, n, timeout, NULL, NULL, false);
}

EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	return poll(fds, n, timeout);
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *sig)
{
	libc_ensure();
	return poll_common(fds, n, 0, ts, sig, true);
}

EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *sig, size_t fdslen)
{
	return ppoll(fds, n, ts, sig);
}

static int count_set(int nfds, const fd_set *r, const fd_set *w, const fd_set *e)
{
	int count = 0;
	for (int fd = 0; fd < nfds; fd++)
		count += (r && FD_ISSET(fd, r)) + (w && FD_ISSET(fd, w)) + (e && FD_ISSET(fd, e));
	return count;
}

static int select_common(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv, const struct timespec *ts,
			 const sigset_t *sig, bool is_pselect)
{
	if (nfds > FD_SETSIZE)
		nfds = FD_SETSIZE;
	fd_set ready;
	FD_ZERO(&ready);
	bool any_ready = false;
	if (r) {
		for (int fd = fdtab_next(0, nfds - 1); fd >= 0; fd = fdtab_next(fd + 1, nfds - 1))
			if (FD_ISSET(fd, r) && tls_fd_read_ready(fd)) {
				FD_SET(fd, &ready);
				any_ready = true;
			}
	}
	if (!any_ready)
		return is_pselect ? libc.pselect(nfds, r, w, e, ts, sig) : libc.select(nfds, r, w, e, tv);
	struct timeval zero_tv = {0, 0};
	struct timespec zero_ts = {0, 0};
	int n = is_pselect ? libc.pselect(nfds, r, w, e, &zero_ts, sig) : libc.select(nfds, r, w, e, &zero_tv);
	if (n < 0)
		return n;
	for (int fd = 0; fd < nfds; fd++)
		if (FD_ISSET(fd, &ready))
			FD_SET(fd, r);
	return count_set(nfds, r, w, e);
}

EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	libc_ensure();
	return select_common(nfds, r, w, e, tv, NULL, NULL, false);
}

EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts, const sigset_t *sig)
{
	libc_ensure();
	return select_common(nfds, r, w, e, NULL, ts, sig, true);
}

/* ---- epoll ---- */

struct epoll_reg {
	int epfd, fd;
	struct epoll_event ev;
};

/* TLS fds registered in epoll sets (only TLS fds: plain ones cost nothing). Guarded by epoll_lock;
 * touched by epoll_ctl on TLS fds, by epoll_wait on sets that hold TLS fds, and by close. */
static pthread_mutex_t epoll_lock = PTHREAD_MUTEX_INITIALIZER;
static struct epoll_reg *regs;
static size_t n_regs, cap_regs;

static struct epoll_reg *find_reg(int epfd, int fd)
{
	for (size_t i = 0; i < n_regs; i++)
		if (regs[i].epfd == epfd && regs[i].fd == fd)
			return &regs[i];
	return NULL;
}

static void remember_reg(int epfd, int op, int fd, const struct epoll_event *ev)
{
	pthread_mutex_lock(&epoll_lock);
	struct epoll_reg *r = find_reg(epfd, fd);
	if (op == EPOLL_CTL_DEL) {
		if (r)
			*r = regs[--n_regs];
	} else if (ev) {
		if (!r && n_regs == cap_regs) {
			size_t cap = cap_regs ? cap_regs * 2 : 16;
			struct epoll_reg *nr = realloc(regs, cap * sizeof(*nr));
			if (nr) {
				regs = nr;
				cap_regs = cap;
			}
		}
		if (!r && n_regs < cap_regs)
			r = &regs[n_regs++];
		if (r) {
			r->epfd = epfd;
			r->fd = fd;
			r->ev = *ev;
		}
	}
	pthread_mutex_unlock(&epoll_lock);
}

void poll_forget_fd(int fd)
{
	pthread_mutex_lock(&epoll_lock);
	for (size_t i = 0; i < n_regs;) {
		if (regs[i].fd == fd || regs[i].epfd == fd)
			regs[i] = regs[--n_regs];
		else
			i++;
	}
	pthread_mutex_unlock(&epoll_lock);
}

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	libc_ensure();
	int r = libc.epoll_ctl(epfd, op, fd, ev);
	if (r == 0 && fdtab_load(fd))
		remember_reg(epfd, op, fd, ev);
	return r;
}

/* Synthetic EPOLLIN events for this set's TLS fds that have data inside wolfSSL. */
static int pending_events(int epfd, struct epoll_event *out, int max)
{
	if (n_regs == 0) /* racy read is fine: a registration racing with this wait is not yet visible */
		return 0;
	int n = 0;
	int fds[64];
	struct epoll_event evs[64];
	pthread_mutex_lock(&epoll_lock);
	for (size_t i = 0; i < n_regs && n < max && n < 64; i++)
		if (regs[i].epfd == epfd && (regs[i].ev.events & EPOLLIN)) {
			fds[n] = regs[i].fd;
			evs[n++] = regs[i].ev;
		}
	pthread_mutex_unlock(&epoll_lock);
	int ready = 0;
	for (int i = 0; i < n; i++)
		if (tls_fd_read_ready(fds[i])) {
			out[ready] = evs[i];
			out[ready++].events = EPOLLIN;
		}
	return ready;
}

static int epoll_common(int epfd, struct epoll_event *events, int max, int timeout, const sigset_t *sig,
			bool is_pwait)
{
	if (max <= 0 || !events)
		return is_pwait ? libc.epoll_pwait(epfd, events, max, timeout, sig) : libc.epoll_wait(epfd, events, max, timeout);
	int synth = pending_events(epfd, events, max);
	if (synth == 0)
		return is_pwait ? libc.epoll_pwait(epfd, events, max, timeout, sig) : libc.epoll_wait(epfd, events, max, timeout);
	if (synth == max)
		return synth;
	int r = is_pwait ? libc.epoll_pwait(epfd, events + synth, max - synth, 0, sig)
			 : libc.epoll_wait(epfd, events + synth, max - synth, 0);
	if (r < 0)
		return synth;
	/* Merge kernel events for the same registration into the synthetic one. */
	int total = synth;
	for (int i = synth; i < synth + r; i++) {
		bool merged = false;
		for (int j = 0; j < synth && !merged; j++)
			if (events[j].data.u64 == events[i].data.u64) {
				events[j].events |= events[i].events;
				merged = true;
			}
		if (!merged)
			events[total++] = events[i];
	}
	return total;
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
