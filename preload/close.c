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

/* Ends fd's part in its connection before the kernel closes or replaces fd: the slot then holds
 * conn_closing (calls on the number fail with EBADF) until unmark() after the kernel call. Returns
 * whether fd was a TLS fd. */
static bool mark_closing(int fd)
{
	struct conn *c = fdtab_load(fd);
	if (!c || c == &conn_closing || !fdtab_replace(fd, c, &conn_closing))
		return false;
	poll_forget_fd(fd);
	conn_detach_fd(c, fd); /* close_notify if it was the last fd; drops the slot's reference */
	return true;
}

/* After the kernel call: the number is free (or someone else's now). */
static void unmark(int fd)
{
	fdtab_replace(fd, &conn_closing, NULL);
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
	if (!fdtab_load(fd)) {
		poll_forget_fd(
		    fd); /* an epoll set: its registrations and wake eventfd (two loads when none) */
		return libc.close(fd);
	}
	bool marked = mark_closing(fd);
	int r = libc.close(fd);
	if (marked) {
		int e = errno;
		unmark(fd);
		errno = e;
	}
	return r;
}

static int range_end(unsigned last)
{
	return last > (unsigned)INT_MAX ? INT_MAX : (int)last;
}

static void mark_range(unsigned first, unsigned last)
{
	for (int fd = fdtab_next((int)first, range_end(last)); fd >= 0;
	     fd = fdtab_next(fd + 1, range_end(last)))
		mark_closing(fd);
}

static void unmark_range(unsigned first, unsigned last)
{
	for (int fd = fdtab_next((int)first, range_end(last)); fd >= 0;
	     fd = fdtab_next(fd + 1, range_end(last)))
		unmark(fd);
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	libc_ensure();
	if (!libc.close_range) {
		errno = ENOSYS;
		return -1;
	}
	if ((flags & CLOSE_RANGE_CLOEXEC) || first > last)
		return libc.close_range(first, last, flags);
	mark_range(first, last);
	int r = libc.close_range(first, last, flags);
	int e = errno;
	unmark_range(first, last);
	errno = e;
	return r;
}

EXPORT void closefrom(int lowfd)
{
	libc_ensure();
	unsigned first = lowfd < 0 ? 0 : (unsigned)lowfd;
	mark_range(first, UINT_MAX);
	if (libc.closefrom)
		libc.closefrom(lowfd);
	unmark_range(first, UINT_MAX);
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
	struct conn *c = conn_get(oldfd);
	if (!c) {
		close_forget_stale(newfd);
		return newfd;
	}
	/* The store replaces whatever the slot held (a stale entry, or the closing mark) in one step. */
	if (conn_attach_fd(c, newfd) != 0) {
		/* Cannot track the copy: it must not stay open as a plaintext path into the session. */
		libc.close(newfd);
		conn_put(c);
		errno = EMFILE;
		return -1;
	}
	conn_put(c);
	stdio_adopt_std_fd(newfd);
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
	bool marked = mark_closing(newfd); /* dup2 closes newfd: end its session while it is that socket */
	stdio_flush_std_fd(newfd);
	int r = libc.dup2(oldfd, newfd);
	if (marked && (r < 0 || !fdtab_load(oldfd)))
		unmark(newfd);
	return share(oldfd, r); /* replaces the mark with oldfd's connection */
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
	bool marked = mark_closing(newfd);
	stdio_flush_std_fd(newfd);
	int r = libc.dup3(oldfd, newfd, flags);
	if (marked && (r < 0 || !fdtab_load(oldfd)))
		unmark(newfd);
	return share(oldfd, r);
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
