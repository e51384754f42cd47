/* aliases.c: libc's other names for the hooked calls. glibc exports __write, __read, __send, __recv,
 * __connect, __close, __dup2, __fcntl, __libc_fcntl64, __poll, __select, __socket, __sendmmsg and
 * _IO_fdopen as the very same functions as write, read, ...; a program (or a library) that calls one
 * of those names would pass the hooks by. Each alias here is the hook itself. The GLIBC_PRIVATE
 * __read_nocancel/__write_nocancel/__close_nocancel differ from their public twins only in not being
 * cancellation points: on a TLS fd they take the hook, on other fds libc's own nocancel function.
 * Also pidfd_getfd: an fd copied out of another process. */
#include "preload/epoll.h"
#include "preload/choose.h"
#include "preload/hooks.h"
#include "preload/log.h"
#include "preload/names.h"
#include "preload/routes.h"
#include "preload/shim.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

EXPORT ssize_t __write(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len);
}

EXPORT ssize_t __read(int fd, void *buf, size_t len)
{
	return read(fd, buf, len);
}

EXPORT ssize_t __send(int fd, const void *buf, size_t len, int flags)
{
	return send(fd, buf, len, flags);
}

EXPORT ssize_t __recv(int fd, void *buf, size_t len, int flags)
{
	return recv(fd, buf, len, flags);
}

EXPORT int __connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	return connect(fd, addr, len);
}

EXPORT int __close(int fd)
{
	return close(fd);
}

EXPORT int __dup2(int oldfd, int newfd)
{
	return dup2(oldfd, newfd);
}

EXPORT int __fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl(fd, cmd, arg);
}

EXPORT int __libc_fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl(fd, cmd, arg);
}

EXPORT int __poll(struct pollfd *fds, nfds_t n, int timeout)
{
	return poll(fds, n, timeout);
}

EXPORT int __select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	return select(nfds, r, w, e, tv);
}

EXPORT int __socket(int domain, int type, int protocol)
{
	return socket(domain, type, protocol);
}

EXPORT int __sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	return sendmmsg(fd, vec, vlen, flags);
}

EXPORT FILE *_IO_fdopen(int fd, const char *mode)
{
	return fdopen(fd, mode);
}

EXPORT ssize_t __write_nocancel(int fd, const void *buf, size_t len)
{
	libc_ensure();
	if (fdtab_load(fd) || !libc.write_nocancel)
		return write(fd, buf, len);
	return libc.write_nocancel(fd, buf, len);
}

EXPORT ssize_t __read_nocancel(int fd, void *buf, size_t len)
{
	libc_ensure();
	if (fdtab_load(fd) || !libc.read_nocancel)
		return read(fd, buf, len);
	return libc.read_nocancel(fd, buf, len);
}

EXPORT int __close_nocancel(int fd)
{
	libc_ensure();
	if (fdtab_load(fd) || epoll_owns_fd(fd) || !libc.close_nocancel)
		return close(fd);
	return libc.close_nocancel(fd);
}

/* ---- fds from other processes ---- */

int routes_check_foreign_socket(int fd, const char *how)
{
	int proto = 0;
	socklen_t len = sizeof(proto);
	if (libc.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) != 0 || proto != IPPROTO_TCP)
		return fd;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (libc.getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		return fd; /* not connected: a later connect() goes through the hook */
	int family = ss.ss_family;
	uint8_t addr[16];
	uint16_t port;
	if (family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		memcpy(addr, &in->sin_addr, 4);
		port = ntohs(in->sin_port);
	} else if (family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
		memcpy(addr, &in6->sin6_addr, 16);
		port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			family = AF_INET;
			memmove(addr, addr + 12, 4);
		}
	} else {
		return fd;
	}
	shim_init();
	const struct policy_rule *rule = NULL;
	if (shim_policy_ok()) {
		/* No getaddrinfo result led here: a tls rule that any resolved name picks refuses it. */
		struct choice ch;
		choose_dest(CHOOSE_ANY_TLS, NULL, family, addr, port, &ch);
		rule = ch.rule;
		if (!rule || rule->action != POLICY_TLS)
			return fd;
	}
	char text[INET6_ADDRSTRLEN] = "";
	inet_ntop(family, addr, text, sizeof(text));
	log_msg(
	    LOG_ERROR,
	    "%s%s%s:%u: a connected socket received through %s leads to a %s destination, and a TLS "
	    "session cannot continue in this process; refused with EACCES (fd closed); connect here instead",
	    family == AF_INET6 ? "[" : "", text, family == AF_INET6 ? "]" : "", port, how,
	    rule ? "tls" : "(policy did not load)");
	libc.close(fd);
	errno = EACCES;
	return -1;
}

EXPORT int pidfd_getfd(int pidfd, int targetfd, unsigned int flags)
{
	libc_ensure();
	if (!libc.pidfd_getfd) {
		errno = ENOSYS;
		return -1;
	}
	int fd = libc.pidfd_getfd(pidfd, targetfd, flags);
	if (fd < 0)
		return fd;
	close_forget_stale(fd); /* a fresh number: no old TLS state */
	return routes_check_foreign_socket(fd, "pidfd_getfd");
}
