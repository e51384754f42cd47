/* syscall.c: the syscall() hook. libc's syscall() is an ordinary exported function, so a program that
 * writes syscall(SYS_write, fd, ...) reaches us like any other call. The numbers that take an fd and
 * move bytes or fds, or make connections, go to the matching hook (which encrypts, refuses or passes
 * through exactly as for the libc call); Linux native AIO (io_submit) naming a TLS fd is refused;
 * io_uring_setup is refused while the policy has tls rules (the rings are shared memory the shim cannot
 * see into); the epoll calls go to the epoll hooks (a set made or waited on here is the libc calls' set),
 * and poll, ppoll, select and pselect6 to the poll-family hooks.
 * Every other number goes straight to the kernel: one switch, no table load. The pass-through is a raw system
 * call (rawsys.h), so this hook needs nothing resolved. */
#include "preload/hooks.h"
#include "preload/log.h"
#include "preload/rawsys.h"
#include "preload/routes.h"
#include "preload/shim.h"

#include <fcntl.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* The kernel's sigset_t is 64 bits (glibc's is 1024): the size epoll_pwait's sixth argument must be. */
#define KERNEL_SIGSET_SIZE 8

static long einval(void)
{
	errno = EINVAL;
	return -1;
}

static bool is_tls_fd(long fd)
{
	return fd >= 0 && fd <= INT32_MAX && fdtab_load((int)fd) != NULL;
}

/* io_submit: the kernel would read or write the TLS socket itself. Submits the iocbs before the first
 * one on a TLS fd (io_submit's own partial-success contract); refuses when that is the first. */
static long io_submit_checked(long ctx, long nr, struct iocb **iocbs)
{
	long ok_count = 0;
	for (; ok_count < nr; ok_count++) {
		if (iocbs[ok_count] && is_tls_fd((long)iocbs[ok_count]->aio_fildes))
			break;
	}
	if (ok_count < nr) {
		if (ok_count == 0) {
			log_msg(
			    LOG_ERROR,
			    "fd %u: Linux native AIO (io_submit) on a TLS socket would bypass TLS; refused "
			    "with EOPNOTSUPP; use read/write on it",
			    iocbs[0]->aio_fildes);
			errno = EOPNOTSUPP;
			return -1;
		}
		nr = ok_count;
	}
	return raw_syscall(SYS_io_submit, ctx, nr, (long)iocbs, 0, 0, 0);
}

static bool policy_has_tls_rule(void)
{
	shim_init();
	if (!shim_policy_ok())
		return true; /* a broken policy fails closed */
	const struct policy *p = shim_policy();
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].action == POLICY_TLS)
			return true;
	return false;
}

static long io_uring_setup_checked(long entries, long params)
{
	if (policy_has_tls_rule()) {
		log_msg(LOG_WARN,
			"io_uring_setup refused with ENOSYS: the shim cannot see into io_uring rings, "
			"so TLS destinations could get plaintext; the program falls back to plain calls");
		errno = ENOSYS;
		return -1;
	}
	return raw_syscall(SYS_io_uring_setup, entries, params, 0, 0, 0, 0);
}

/* Reads six arguments whatever the caller passed, as libc's own syscall() does (the kernel ignores the
 * rest): the read past a short argument list is by design, so AddressSanitizer is told not to flag it. */
/* What is left of a timeout that began at t0 (CLOCK_MONOTONIC), written back as the kernel's ppoll and
 * pselect6 do (glibc's wrappers hide that; the system calls do not). */
static void timespec_leave_rest(struct timespec *ts, const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long left = ((long long)ts->tv_sec + t0->tv_sec - now.tv_sec) * 1000000000LL + ts->tv_nsec +
			 t0->tv_nsec - now.tv_nsec;
	if (left < 0)
		left = 0;
	ts->tv_sec = (time_t)(left / 1000000000LL);
	ts->tv_nsec = (long)(left % 1000000000LL);
}

/* ppoll and pselect6 as system calls: the signal mask's size must be the kernel's, and the timeout is
 * left holding the time not slept. The wait itself is the hooks' (poll.c), so TLS fds are readable only
 * for application data there too. */
static long sys_ppoll(struct pollfd *fds, nfds_t n, struct timespec *ts, const sigset_t *sig, long sigsize)
{
	if (sig && sigsize != KERNEL_SIGSET_SIZE)
		return einval();
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r = ppoll(fds, n, ts, sig);
	if (ts && (r >= 0 || errno == EINTR)) {
		int e = errno;
		timespec_leave_rest(ts, &t0);
		errno = e;
	}
	return r;
}

/* pselect6's sixth argument: {const sigset_t *ss; size_t ss_len} (or NULL). */
struct pselect6_sig {
	const sigset_t *ss;
	size_t ss_len;
};

static long sys_pselect6(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timespec *ts,
			 const struct pselect6_sig *sig)
{
	const sigset_t *mask = sig ? sig->ss : NULL;
	if (mask && sig->ss_len != KERNEL_SIGSET_SIZE)
		return einval();
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int k = pselect(nfds, r, w, e, ts, mask);
	if (ts && (k >= 0 || errno == EINTR)) {
		int err = errno;
		timespec_leave_rest(ts, &t0);
		errno = err;
	}
	return k;
}

EXPORT __attribute__((no_sanitize_address)) long syscall(long n, ...)
{
	va_list ap;
	va_start(ap, n);
	long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
	long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
	va_end(ap);
	switch (n) {
	/* Data calls: only a TLS fd changes anything. */
	case SYS_read:
		if (is_tls_fd(a1))
			return read((int)a1, (void *)a2, (size_t)a3);
		break;
	case SYS_write:
		if (is_tls_fd(a1))
			return write((int)a1, (const void *)a2, (size_t)a3);
		break;
	case SYS_readv:
		if (is_tls_fd(a1))
			return readv((int)a1, (const struct iovec *)a2, (int)a3);
		break;
	case SYS_writev:
		if (is_tls_fd(a1))
			return writev((int)a1, (const struct iovec *)a2, (int)a3);
		break;
	case SYS_preadv2:
		if (is_tls_fd(a1))
			return preadv2((int)a1, (const struct iovec *)a2, (int)a3, (off_t)a4, (int)a6);
		break;
	case SYS_pwritev2:
		if (is_tls_fd(a1))
			return pwritev2((int)a1, (const struct iovec *)a2, (int)a3, (off_t)a4, (int)a6);
		break;
	case SYS_recvfrom:
		if (is_tls_fd(a1))
			return recvfrom((int)a1, (void *)a2, (size_t)a3, (int)a4, (struct sockaddr *)a5,
					(socklen_t *)a6);
		break;
	case SYS_recvmsg:
		if (is_tls_fd(a1))
			return recvmsg((int)a1, (struct msghdr *)a2, (int)a3);
		break;
	case SYS_recvmmsg:
		if (is_tls_fd(a1))
			return recvmmsg((int)a1, (struct mmsghdr *)a2, (unsigned)a3, (int)a4,
					(struct timespec *)a5);
		break;
	case SYS_sendfile:
		if (is_tls_fd(a1) || is_tls_fd(a2))
			return sendfile((int)a1, (int)a2, (off_t *)a3, (size_t)a4);
		break;
	case SYS_splice:
		if (is_tls_fd(a1) || is_tls_fd(a3))
			return splice((int)a1, (off_t *)a2, (int)a3, (off_t *)a4, (size_t)a5, (unsigned)a6);
		break;
	case SYS_ioctl:
		if (is_tls_fd(a1))
			return ioctl((int)a1, (unsigned long)a2, (void *)a3);
		break;
	case SYS_getsockopt:
		if (is_tls_fd(a1))
			return getsockopt((int)a1, (int)a2, (int)a3, (void *)a4, (socklen_t *)a5);
		break;
	case SYS_shutdown:
		if (is_tls_fd(a1))
			return shutdown((int)a1, (int)a2);
		break;
	case SYS_fcntl:
		if (is_tls_fd(a1))
			return fcntl((int)a1, (int)a2, a3);
		break;
	case SYS_dup:
		if (is_tls_fd(a1))
			return dup((int)a1);
		break;
	case SYS_dup2:
		if (is_tls_fd(a1) || is_tls_fd(a2))
			return dup2((int)a1, (int)a2);
		break;
	case SYS_dup3:
		if (is_tls_fd(a1) || is_tls_fd(a2))
			return dup3((int)a1, (int)a2, (int)a3);
		break;
	/* Calls whose hooks matter for any fd: the policy (connect, sends with an address under deny),
	 * fd numbers that must not inherit old state, closes that end sessions, fds from elsewhere. */
	case SYS_connect:
		return connect((int)a1, (const struct sockaddr *)a2, (socklen_t)a3);
	case SYS_sendto:
		return sendto((int)a1, (const void *)a2, (size_t)a3, (int)a4, (const struct sockaddr *)a5,
			      (socklen_t)a6);
	case SYS_sendmsg:
		return sendmsg((int)a1, (const struct msghdr *)a2, (int)a3);
	case SYS_sendmmsg:
		return sendmmsg((int)a1, (struct mmsghdr *)a2, (unsigned)a3, (int)a4);
	case SYS_close:
		return close((int)a1);
	case SYS_close_range:
		return close_range((unsigned)a1, (unsigned)a2, (int)a3);
	case SYS_socket:
		return socket((int)a1, (int)a2, (int)a3);
	case SYS_accept:
		return accept((int)a1, (struct sockaddr *)a2, (socklen_t *)a3);
	case SYS_accept4:
		return accept4((int)a1, (struct sockaddr *)a2, (socklen_t *)a3, (int)a4);
		/* epoll: the hooks keep TLS fds out of the kernel sets (epoll.c); a set made or waited on
		 * here must be the same set the libc calls see. epoll_pwait and epoll_pwait2 take the signal
		 * mask's size, which the libc calls do not: anything but the kernel's own size is its EINVAL.
		 */
#ifdef SYS_epoll_create
	case SYS_epoll_create:
		return epoll_create((int)a1);
#endif
	case SYS_epoll_create1:
		return epoll_create1((int)a1);
	case SYS_epoll_ctl:
		return epoll_ctl((int)a1, (int)a2, (int)a3, (struct epoll_event *)a4);
#ifdef SYS_epoll_wait
	case SYS_epoll_wait:
		return epoll_wait((int)a1, (struct epoll_event *)a2, (int)a3, (int)a4);
#endif
	case SYS_epoll_pwait:
		if (a5 && a6 != KERNEL_SIGSET_SIZE)
			return einval();
		return epoll_pwait((int)a1, (struct epoll_event *)a2, (int)a3, (int)a4, (const sigset_t *)a5);
#ifdef SYS_epoll_pwait2
	case SYS_epoll_pwait2:
		if (a5 && a6 != KERNEL_SIGSET_SIZE)
			return einval();
		return epoll_pwait2((int)a1, (struct epoll_event *)a2, (int)a3, (const struct timespec *)a4,
				    (const sigset_t *)a5);
#endif
		/* The poll family: the hooks' waits, so a TLS fd is readable for application data only, and
		 * bytes left inside the shim are seen (select's hook already leaves the time not slept in
		 * *tv). */
#ifdef SYS_poll
	case SYS_poll:
		return poll((struct pollfd *)a1, (nfds_t)a2, (int)a3);
#endif
	case SYS_ppoll:
		return sys_ppoll((struct pollfd *)a1, (nfds_t)a2, (struct timespec *)a3, (const sigset_t *)a4,
				 a5);
#ifdef SYS_select
	case SYS_select:
		return select((int)a1, (fd_set *)a2, (fd_set *)a3, (fd_set *)a4, (struct timeval *)a5);
#endif
	case SYS_pselect6:
		return sys_pselect6((int)a1, (fd_set *)a2, (fd_set *)a3, (fd_set *)a4, (struct timespec *)a5,
				    (const struct pselect6_sig *)a6);
#ifdef SYS_pidfd_getfd
	case SYS_pidfd_getfd:
		return pidfd_getfd((int)a1, (int)a2, (unsigned)a3);
#endif
	case SYS_io_submit:
		return io_submit_checked(a1, a2, (struct iocb **)a3);
#ifdef SYS_io_uring_setup
	case SYS_io_uring_setup:
		return io_uring_setup_checked(a1, a2);
#endif
	default:
		break;
	}
	return raw_syscall(n, a1, a2, a3, a4, a5, a6);
}
