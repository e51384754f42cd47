/* sockopt.c: getsockopt(SO_ERROR), ioctl(FIONREAD) and ioctl(FIONCLEX) on TLS fds, which must agree with
 * the TLS state (FIONCLEX cannot clear close-on-exec on a TLS fd, as F_SETFD cannot):
 * SO_ERROR reports a failed asynchronous handshake (ECONNREFUSED, ETIMEDOUT) the way the kernel reports
 * a failed connect, and FIONREAD counts decrypted bytes, not ciphertext. */
#include "preload/hooks.h"
#include "preload/child.h"

#include <stdarg.h>
#include <sys/ioctl.h>

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	libc_ensure();
	if (level != SOL_SOCKET || name != SO_ERROR || !val || !len || *len < sizeof(int))
		return libc.getsockopt(fd, level, name, val, len);
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.getsockopt(fd, level, name, val, len);
	int err = conn_so_error(c, fd);
	conn_put(c);
	if (err < 0)
		return libc.getsockopt(fd, level, name, val, len);
	*(int *)val = err;
	*len = sizeof(int);
	return 0;
}

EXPORT int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	libc_ensure();
	if (request == FIONCLEX && fdtab_load(fd)) {
		struct conn *t = conn_get(fd); /* NULL: an inherited socket, classified plain just now */
		if (t) {
			conn_put(t);
			if (child_shares_parent_memory())
				return child_refuse(fd, "ioctl(FIONCLEX)");
			return 0; /* a TLS fd stays close-on-exec, as for F_SETFD (README: exec) */
		}
	}
	if (request != FIONREAD)
		return libc.ioctl(fd, request, arg);
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.ioctl(fd, request, arg);
	int n = conn_pending(c, fd);
	conn_put(c);
	*(int *)arg = n;
	return 0;
}
