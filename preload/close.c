/* close.c: the calls that end, copy or create fd numbers: close, close_range, closefrom, shutdown, dup,
 * dup2, dup3, fcntl(F_DUPFD*, F_SETFD), socket, accept, accept4. Copies share one connection (reference
 * counted); the session ends with close_notify on the last close; a reused fd number never inherits
 * old state. */
#include "preload/fdtab.h"
#include "preload/hooks.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Forgets fd's connection (ending the session if it was the last fd). Call before the real close. */
static void forget(int fd)
{
	struct conn *c = fdtab_take(fd);
	if (c) {
		poll_forget_fd(fd);
		conn_detach_fd(c, fd);
	}
}

void close_forget_stale(int fd)
{
	struct conn *c = fdtab_take(fd);
	if (c)
		conn_detach_fd(c, -1); /* the number belongs to a new file now: send nothing on it */
}

EXPORT int close(int fd)
{
	libc_ensure();
	if (fdtab_load(fd))
		forget(fd);
	else
		poll_forget_fd(
		    fd); /* an epoll set: its registrations and wake eventfd (two loads when none) */
	return libc.close(fd);
}

static void forget_range(unsigned first, unsigned last)
{
	int to = last > (unsigned)INT_MAX ? INT_MAX : (int)last;
	for (int fd = fdtab_next((int)first, to); fd >= 0; fd = fdtab_next(fd + 1, to))
		forget(fd);
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	libc_ensure();
	if (!libc.close_range) {
		errno = ENOSYS;
		return -1;
	}
	if (!(flags & CLOSE_RANGE_CLOEXEC) && first <= last)
		forget_range(first, last);
	return libc.close_range(first, last, flags);
}

EXPORT void closefrom(int lowfd)
{
	libc_ensure();
	forget_range(lowfd < 0 ? 0 : (unsigned)lowfd, UINT_MAX);
	if (libc.closefrom)
		libc.closefrom(lowfd);
}

EXPORT int shutdown(int fd, int how)
{
	libc_ensure();
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.shutdown(fd, how);
	int r = conn_shutdown(c, fd, how);
	conn_put_keep_errno(c);
	return r;
}

/* After the kernel made newfd a copy of oldfd: newfd shares oldfd's connection. */
static int share(int oldfd, int newfd)
{
	if (newfd < 0)
		return newfd;
	close_forget_stale(newfd);
	struct conn *c = conn_get(oldfd);
	if (c) {
		if (conn_attach_fd(c, newfd) != 0) {
			/* Cannot track the copy: it must not stay open as a plaintext path into the session.
			 */
			libc.close(newfd);
			conn_put(c);
			errno = EMFILE;
			return -1;
		}
		conn_put(c);
		stdio_adopt_std_fd(newfd);
	}
	return newfd;
}

EXPORT int dup(int oldfd)
{
	libc_ensure();
	int newfd = libc.dup(oldfd);
	if (newfd < 0)
		return newfd;
	if (fdtab_load(oldfd))
		return share(oldfd, newfd);
	if (fdtab_load(newfd))
		close_forget_stale(newfd);
	return newfd;
}

EXPORT int dup2(int oldfd, int newfd)
{
	libc_ensure();
	if (oldfd == newfd || (!fdtab_load(oldfd) && !fdtab_load(newfd)))
		return libc.dup2(oldfd, newfd);
	if (libc.fcntl(oldfd, F_GETFD) < 0) { /* EBADF: newfd must stay as it is */
		errno = EBADF;
		return -1;
	}
	forget(newfd); /* dup2 closes newfd: end its session first, while it is still that socket */
	stdio_flush_std_fd(newfd);
	return share(oldfd, libc.dup2(oldfd, newfd));
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	libc_ensure();
	if (oldfd == newfd || (!fdtab_load(oldfd) && !fdtab_load(newfd)))
		return libc.dup3(oldfd, newfd, flags);
	if (libc.fcntl(oldfd, F_GETFD) < 0) {
		errno = EBADF;
		return -1;
	}
	forget(newfd);
	stdio_flush_std_fd(newfd);
	return share(oldfd, libc.dup3(oldfd, newfd, flags));
}

static int fcntl_common(int fd, int cmd, void *arg)
{
	libc_ensure();
	if (!fdtab_load(fd))
		return libc.fcntl(fd, cmd, arg);
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		return share(fd, libc.fcntl(fd, cmd, arg));
	case F_SETFD: /* a TLS fd stays close-on-exec (README: exec) */
		return libc.fcntl(fd, cmd, (void *)((long)arg | FD_CLOEXEC));
	default:
		return libc.fcntl(fd, cmd, arg);
	}
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(fd, cmd, arg);
}

EXPORT int socket(int domain, int type, int protocol)
{
	libc_ensure();
	int fd = libc.socket(domain, type, protocol);
	if (fd >= 0 && fdtab_load(fd))
		close_forget_stale(fd);
	return fd;
}

EXPORT int accept(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
	libc_ensure();
	int nfd = libc.accept(fd, SOCKADDR_PTR(addr), len);
	if (nfd >= 0 && fdtab_load(nfd))
		close_forget_stale(nfd);
	return nfd;
}

EXPORT int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *len, int flags)
{
	libc_ensure();
	int nfd = libc.accept4(fd, SOCKADDR_PTR(addr), len, flags);
	if (nfd >= 0 && fdtab_load(nfd))
		close_forget_stale(nfd);
	return nfd;
}
