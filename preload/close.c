/* close.c: the calls that end, copy or create fd numbers: close, close_range, closefrom, shutdown, dup,
 * dup2, dup3, fcntl(F_DUPFD*, F_SETFD), socket (accept and accept4: serve_accept.c). Copies share one
 * connection (reference counted); the session ends with close_notify on the last close; a reused fd number
 * never inherits old state. */
#include "preload/fdtab.h"
#include "preload/hooks.h"
#include "preload/child.h"
#include "preload/epoll.h"
#include "preload/log.h"
#include "preload/precopy.h"
#include "preload/rawsys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Ends fd's part in its connection before the kernel closes or replaces fd: the slot then holds
 * conn_closing (calls on the number fail with EBADF) until unmark() after the kernel call. Returns what
 * the slot held (a connection or a sentinel), or NULL when there was nothing to mark. */
static struct conn *mark_closing(int fd)
{
	struct conn *c = fdtab_load(fd);
	if (!c || c == &conn_closing || !fdtab_replace(fd, c, &conn_closing))
		return NULL;
	epoll_forget_fd(fd);
	conn_detach_fd(c, fd); /* close_notify if it was the last fd; drops the slot's reference */
	return c;
}

/* After the kernel call: the number is free (or someone else's now). */
static void unmark(int fd)
{
	fdtab_replace(fd, &conn_closing, NULL);
}

/* Marks the fd a copy is about to land on (dup2/dup3), whatever it held: from here until the copy is
 * registered, calls on that number fail with EBADF, so no thread can write plaintext into the copy.
 * Returns what the slot held (mark_closing), or NULL. */
static struct conn *mark_target(int fd)
{
	for (int tries = 0; tries < 8; tries++) {
		struct conn *c = mark_closing(fd);
		if (c || fdtab_load(fd) == &conn_closing || fdtab_replace(fd, NULL, &conn_closing))
			return c;
	}
	return NULL;
}

void close_forget_stale(int fd)
{
	if (child_shares_parent_memory())
		return; /* the table is the parent's: a child never writes it */
	struct conn *c = fdtab_take(fd);
	if (c)
		conn_detach_fd(c, -1); /* the number belongs to a new file now: send nothing on it */
}

EXPORT int close(int fd)
{
	libc_ensure();
	if (!fdtab_load(fd)) {
		if (epoll_owns_fd(fd)) { /* the shim's own: never the program's to close */
			errno = EBADF;
			return -1;
		}
		epoll_forget_fd(fd); /* an epoll set: the shim's table of it (one load when none) */
		return libc.close(fd);
	}
	if (child_shares_parent_memory())
		return libc.close(fd); /* the child's own fd table only; the session is the parent's */
	bool marked = mark_closing(fd) != NULL;
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

/* Closes every open fd in [first, last] one by one, but those in skip[0..n) (sorted): what glibc's own
 * closefrom does when the close_range system call is refused (ENOSYS on kernels before 5.9, EPERM or
 * ENOSYS from a seccomp filter). The open fds come from /proc/self/fd (raw getdents64: no allocation);
 * without /proc every number up to the hard RLIMIT_NOFILE (at most 2^20) is tried. */
static bool in_skip(int fd, const int *skip, int n)
{
	for (int i = 0; i < n; i++)
		if (skip[i] == fd)
			return true;
	return false;
}

static void close_each(unsigned first, unsigned last, const int *skip, int n)
{
	int dir = (int)raw_syscall(SYS_openat, AT_FDCWD, (long)"/proc/self/fd",
				   O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0);
	if (dir < 0) {
		struct rlimit rl;
		unsigned top = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max < (1u << 20)
				   ? (unsigned)rl.rlim_max
				   : (1u << 20);
		for (unsigned fd = first; fd <= last && fd < top; fd++)
			if (!in_skip((int)fd, skip, n))
				libc.close((int)fd);
		return;
	}
	char buf[4096];
	for (int pass = 0; pass < 64; pass++) { /* closing while listing: list again until nothing is left */
		bool closed = false;
		raw_syscall(SYS_lseek, dir, 0, SEEK_SET, 0, 0, 0);
		long got;
		while ((got = raw_syscall(SYS_getdents64, dir, (long)buf, sizeof(buf), 0, 0, 0)) > 0) {
			for (long off = 0; off < got;) {
				struct dirent64 *d = (struct dirent64 *)(buf + off);
				off += d->d_reclen;
				char *end;
				unsigned long v = strtoul(d->d_name, &end, 10);
				if (*end || end == d->d_name || v < first || v > last || (int)v == dir ||
				    in_skip((int)v, skip, n))
					continue;
				libc.close((int)v);
				closed = true;
			}
		}
		if (!closed)
			break;
	}
	libc.close(dir);
}

/* The kernel's close_range, or close_each when the system call is refused (the fds were already
 * marked: leaving them open would leave TLS sockets untracked). */
static int kernel_close_range(unsigned first, unsigned last, int flags, const int *skip, int n)
{
	if (libc.close_range(first, last, flags) == 0)
		return 0;
	if ((errno != ENOSYS && errno != EPERM) || (flags & (CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)))
		return -1;
	close_each(first, last, skip, n);
	return 0;
}

/* The kernel's close_range over [first, last] but the shim's own fds in it (the inner epoll sets and
 * eventfds of the epoll sets that stay open: epoll.h, epoll_prepare_close_range), which the program did
 * not open and whose loss would silence its sets' TLS fds. Epoll sets in the range lose their tables
 * first. Without close_range (glibc < 2.34) or memory for the list, the whole range is closed. */
static int close_range_sparing(unsigned first, unsigned last, int flags)
{
	int *skip = NULL;
	int n = epoll_prepare_close_range(first, last, &skip);
	if (n <= 0 || !libc.close_range) {
		free(skip);
		if (libc.close_range)
			return kernel_close_range(first, last, flags, NULL, 0);
		libc.closefrom((int)first); /* closefrom's fallback: last is ~0U there */
		return 0;
	}
	int r = 0, err = 0;
	unsigned from = first;
	for (int i = 0; i <= n; i++) {
		if (i < n && (unsigned)skip[i] < from)
			continue; /* (sorted: a duplicate) */
		if (i < n && (unsigned)skip[i] == from) {
			if (from == last)
				break;
			from++;
			continue;
		}
		unsigned to = i < n ? (unsigned)skip[i] - 1 : last;
		if (from <= to && kernel_close_range(from, to, flags, skip, n) != 0 && !err) {
			err = errno;
			r = -1;
		}
		if (i == n || (unsigned)skip[i] >= last)
			break;
		from = (unsigned)skip[i] + 1;
	}
	free(skip);
	if (err)
		errno = err;
	return r;
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	libc_ensure();
	if (!libc.close_range) {
		errno = ENOSYS;
		return -1;
	}
	int tls_fd = first > last || first > (unsigned)INT_MAX ? -1 : fdtab_next((int)first, range_end(last));
	bool spare = first <= last && !(flags & CLOSE_RANGE_CLOEXEC) && epoll_has_sets() &&
		     !child_shares_parent_memory();
	if (tls_fd < 0)
		return spare ? close_range_sparing(first, last, flags) : libc.close_range(first, last, flags);
	if (flags & CLOSE_RANGE_UNSHARE) {
		/* The calling thread would get a private fd table the shim cannot model. */
		log_msg(
		    LOG_ERROR,
		    "close_range(%u, %u, CLOSE_RANGE_UNSHARE) refused with EINVAL: the range holds TLS fd %d "
		    "and a private fd table cannot be tracked; close it first or leave it out of the range",
		    first, last, tls_fd);
		errno = EINVAL;
		return -1;
	}
	if ((flags & CLOSE_RANGE_CLOEXEC) || child_shares_parent_memory())
		return libc.close_range(first, last, flags);
	mark_range(first, last);
	int r =
	    spare ? close_range_sparing(first, last, flags) : kernel_close_range(first, last, flags, NULL, 0);
	int e = errno;
	unmark_range(first, last);
	errno = e;
	return r;
}

/* glibc's closefrom makes the close_range system call itself (no hook sees it), so it is done here. */
EXPORT void closefrom(int lowfd)
{
	libc_ensure();
	unsigned first = lowfd < 0 ? 0 : (unsigned)lowfd;
	bool tls = fdtab_next((int)first, INT_MAX) >= 0;
	bool spare = epoll_has_sets() && (libc.close_range || libc.closefrom);
	if ((!tls && !spare) || child_shares_parent_memory()) {
		if (libc.closefrom)
			libc.closefrom(lowfd);
		return;
	}
	if (tls)
		mark_range(first, UINT_MAX);
	if (spare)
		close_range_sparing(first, UINT_MAX, 0);
	else if (libc.closefrom)
		libc.closefrom(lowfd);
	if (tls)
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

/* Undoes a copy that must not exist (the original's slot could not be referenced, or the copy cannot
 * be tracked): the kernel fd goes first, then whatever mark its slot holds. */
static int drop_copy(struct conn *c, int newfd, int err)
{
	libc.close(newfd);
	unmark(newfd);
	close_forget_stale(newfd);
	conn_put(c);
	errno = err;
	return -1;
}

/* After the kernel made newfd a copy of the socket of c (the caller's reference, given up here): newfd
 * shares c. The store replaces whatever the slot held (a stale entry, or the closing mark) in one step. */
static int share(struct conn *c, int newfd)
{
	if (newfd < 0) {
		conn_put_keep_errno(c);
		return -1;
	}
	if (c == &conn_closing) /* the original is being closed, or its slot could not be referenced */
		return drop_copy(c, newfd, EBADF);
	if (conn_is_sentinel(c)) { /* a socket refused in this image: its copies are refused the same way */
		struct conn *old = fdtab_store(newfd, c);
		if (old == (struct conn *)-1)
			return drop_copy(c, newfd, EMFILE);
		if (old && !conn_is_sentinel(old))
			conn_detach_fd(old, -1);
		conn_put(c);
		return newfd;
	}
	if (conn_attach_fd(c, newfd) != 0) /* a copy that cannot be tracked would be a plaintext path */
		return drop_copy(c, newfd, EMFILE);
	conn_put(c);
	stdio_adopt_std_fd(newfd);
	return newfd;
}

EXPORT int dup(int oldfd)
{
	libc_ensure();
	struct conn *c = fdtab_load(oldfd) ? conn_get(oldfd) : NULL; /* held across the kernel call */
	if (!c) { /* not TLS (an inherited socket may have been classified plain just now) */
		int newfd = libc.dup(oldfd);
		if (newfd >= 0 && fdtab_load(newfd))
			close_forget_stale(newfd);
		return precopy_note(oldfd, newfd); /* a copy of an unconnected TCP socket is noted */
	}
	if (child_shares_parent_memory()) {
		conn_put(c);
		return child_refuse(oldfd, "dup");
	}
	/* The copy is close-on-exec from birth: a concurrent fork+exec never inherits an untracked copy. */
	return share(c, libc.fcntl(oldfd, F_DUPFD_CLOEXEC, 0));
}

/* dup2 and dup3. newfd's slot is marked before the kernel call and the copy is made with O_CLOEXEC. */
static int dup_onto(int oldfd, int newfd, int flags, bool is_dup3)
{
	libc_ensure();
	if (epoll_owns_fd(oldfd)) { /* not a number the program has */
		errno = EBADF;
		return -1;
	}
	if (epoll_owns_fd(newfd) && !child_shares_parent_memory() && epoll_move_own_fd(newfd) != 0) {
		log_msg(LOG_WARN, "%s onto fd %d: the shim's own epoll fd there cannot move (%s)",
			is_dup3 ? "dup3" : "dup2", newfd, strerror(errno));
		return -1;
	}
	if (oldfd == newfd)
		return is_dup3 ? libc.dup3(oldfd, newfd, flags) : libc.dup2(oldfd, newfd);
	if (!fdtab_load(oldfd) && !fdtab_load(newfd)) {
		int r =
		    precopy_note(oldfd, is_dup3 ? libc.dup3(oldfd, newfd, flags) : libc.dup2(oldfd, newfd));
		if (r >= 0)
			epoll_forget_fd(newfd); /* newfd was closed: if it was an epoll set, its table goes */
		return r;
	}
	const char *what = is_dup3 ? "dup3" : "dup2";
	struct conn *c = conn_get(oldfd); /* NULL: oldfd is not TLS (newfd is) */
	if (child_shares_parent_memory()) {
		if (c) { /* the copy would be untracked, and not close-on-exec for dup2 */
			conn_put(c);
			return child_refuse(oldfd, what);
		}
		return is_dup3 ? libc.dup3(oldfd, newfd, flags) : libc.dup2(oldfd, newfd);
	}
	if (libc.fcntl(oldfd, F_GETFD) < 0) { /* EBADF: newfd must stay as it is */
		if (c)
			conn_put(c);
		errno = EBADF;
		return -1;
	}
	struct conn *was = c ? mark_target(newfd) : mark_closing(newfd); /* dup2 closes newfd */
	stdio_flush_std_fd(newfd);
	int r = c ? libc.dup3(oldfd, newfd, O_CLOEXEC)
		  : (is_dup3 ? libc.dup3(oldfd, newfd, flags) : libc.dup2(oldfd, newfd));
	if (r < 0) {
		int e = errno;
		/* newfd's session was ended above: the socket must carry nothing more in either direction */
		if (was && !conn_is_sentinel(was))
			libc.shutdown(newfd, SHUT_RDWR);
		unmark(newfd);
		if (c)
			conn_put(c);
		errno = e;
		return -1;
	}
	if (!c) {
		unmark(newfd);
		return precopy_note(oldfd, r);
	}
	return share(c, r); /* replaces the mark with oldfd's connection */
}

EXPORT int dup2(int oldfd, int newfd)
{
	return dup_onto(oldfd, newfd, 0, false);
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	return dup_onto(oldfd, newfd, flags, true);
}

static int fcntl_common(int fd, int cmd, void *arg)
{
	libc_ensure();
	if (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC && cmd != F_SETFD)
		return libc.fcntl(fd, cmd, arg);
	struct conn *c = fdtab_load(fd) ? conn_get(fd) : NULL;
	if (!c) { /* not TLS (an inherited socket may have been classified plain just now) */
		int r = libc.fcntl(fd, cmd, arg);
		return cmd == F_SETFD ? r : precopy_note(fd, r);
	}
	bool child = child_shares_parent_memory();
	if (cmd == F_SETFD) { /* a TLS fd stays close-on-exec (README: exec) */
		conn_put(c);
		if (child && !((long)arg & FD_CLOEXEC))
			return child_refuse(fd, "fcntl(F_SETFD) clearing FD_CLOEXEC");
		return libc.fcntl(fd, cmd, (void *)((long)arg | FD_CLOEXEC));
	}
	if (child) {
		conn_put(c);
		return child_refuse(fd, "fcntl(F_DUPFD)");
	}
	return share(c, libc.fcntl(fd, F_DUPFD_CLOEXEC, arg));
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
	precopy_note_socket(fd, domain, type);
	return fd;
}
