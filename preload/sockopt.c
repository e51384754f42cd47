/* sockopt.c: getsockopt(SO_ERROR) and ioctl(FIONREAD) on TLS fds, which must agree with the TLS state:
 * SO_ERROR reports a failed asynchronous handshake (ECONNREFUSED, ETIMEDOUT) the way the kernel reports
 * a failed connect, and FIONREAD counts decrypted bytes, not ciphertext. */
#include "preload/hooks.h"

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
