/* sockopt.c: getsockopt(SO_ERROR), setsockopt/getsockopt(TCP_NODELAY) during a handshake, ioctl(FIONREAD)
 * and ioctl(FIONCLEX) on TLS fds, which must agree with the TLS state (FIONCLEX cannot clear close-on-exec
 * on a TLS fd, as F_SETFD cannot): TCP_NODELAY set during a handshake is the value the program keeps,
 * SO_ERROR reports a failed asynchronous handshake (ECONNREFUSED, ETIMEDOUT) the way the kernel reports
 * a failed connect, and FIONREAD counts decrypted bytes, not ciphertext. */
#include "preload/hooks.h"
#include "preload/child.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <sys/ioctl.h>

/* TCP_NODELAY on a TLS fd whose handshake is in progress (conn.h: conn_set_nodelay). */
static bool is_nodelay(int fd, int level, int name, const void *val, socklen_t len)
{
	return level == IPPROTO_TCP && name == TCP_NODELAY && val && len >= sizeof(int) && fdtab_load(fd);
}

/* TCP_CORK on a TLS fd: the program's own cork replaces the shim's (cork.h). */
static int set_cork(int fd, const void *val, socklen_t len)
{
	int r = libc.setsockopt(fd, IPPROTO_TCP, TCP_CORK, val, len);
	if (r != 0 || child_shares_parent_memory())
		return r;
	struct conn *c = conn_get(fd);
	if (c) {
		conn_lock(c);
		cork_program_cork(c, *(const int *)val != 0);
		conn_unlock(c);
		conn_put(c);
	}
	return r;
}

EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	libc_ensure();
	if (level == IPPROTO_TCP && name == TCP_CORK && val && len >= sizeof(int) && fdtab_load(fd))
		return set_cork(fd, val, len);
	if (!is_nodelay(fd, level, name, val, len) || child_shares_parent_memory())
		return libc.setsockopt(fd, level, name, val, len); /* vfork: the kernel's, no lock */
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.setsockopt(fd, level, name, val, len);
	bool kept = conn_set_nodelay(c, *(const int *)val != 0);
	conn_put(c);
	return kept ? 0 : libc.setsockopt(fd, level, name, val, len);
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	libc_ensure();
	if (!fdtab_load(fd) || child_shares_parent_memory()) /* not TLS; or vfork: the kernel's answer */
		return libc.getsockopt(fd, level, name, val, len);
	if (len && is_nodelay(fd, level, name, val, *len)) {
		struct conn *t = conn_get(fd);
		int on = 0;
		bool during = t && conn_get_nodelay(t, &on);
		if (t)
			conn_put(t);
		if (during) {
			*(int *)val = on;
			*len = sizeof(int);
			return 0;
		}
	}
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
	if (child_shares_parent_memory()) { /* the session (and its lock) is the parent's: child.h */
		conn_put(c);
		return child_refuse(fd, "ioctl(FIONREAD)");
	}
	int n = conn_pending(c, fd);
	conn_put(c);
	*(int *)arg = n;
	return 0;
}
