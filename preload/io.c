/* io.c: the data hooks: read, write, recv, send, recvfrom, sendto, readv, writev, recvmsg, sendmsg,
 * recvmmsg, sendmmsg, preadv2/pwritev2 and the fortified __*_chk versions. On a TLS fd each maps onto
 * conn_read/conn_write with the errno the plain call would give; flags the shim cannot honour on a TLS
 * stream (MSG_OOB, MSG_FASTOPEN, MSG_ZEROCOPY, MSG_TRUNC, control messages) fail with EOPNOTSUPP, never
 * sending plaintext. Everything else goes to libc after one table lookup. */
#include "preload/hooks.h"
#include "preload/inherit.h"
#include "preload/routes.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

extern void __chk_fail(void) __attribute__((noreturn));

#define TLS_UNSUPPORTED_SEND_FLAGS (MSG_OOB | MSG_FASTOPEN | MSG_ZEROCOPY | MSG_CONFIRM)
#define TLS_UNSUPPORTED_RECV_FLAGS (MSG_OOB | MSG_TRUNC)
/* Coalescing buffer for writev/sendmsg: one TLS record's worth of plaintext. */
#define GATHER_MAX 16384

static ssize_t unsupported(struct conn *c)
{
	conn_put(c);
	errno = EOPNOTSUPP;
	return -1;
}

static ssize_t tls_read(struct conn *c, int fd, void *buf, size_t len, int flags)
{
	ssize_t r = conn_read(c, fd, buf, len, flags);
	conn_put_keep_errno(c);
	return r;
}

static ssize_t tls_write(struct conn *c, int fd, const void *buf, size_t len, int flags)
{
	ssize_t r = conn_write(c, fd, buf, len, flags);
	conn_put_keep_errno(c);
	return r;
}

/* Scatter read: fill iovecs in order; after the first byte arrives, take what is already there, the
 * kernel socket included, as readv on a plain socket does: a short answer means nothing is left (nginx
 * with EPOLLRDHUP then waits for the next edge, which never comes for bytes already in the kernel). */
static ssize_t tls_readv(struct conn *c, int fd, const struct iovec *iov, int iovcnt, int flags)
{
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len == 0)
			continue;
		int f = flags;
		if (total > 0)
			f |= MSG_DONTWAIT;
		ssize_t n = conn_read(c, fd, iov[i].iov_base, iov[i].iov_len, f & ~MSG_WAITALL);
		if (n < 0) {
			if (total > 0)
				break;
			return -1;
		}
		total += (size_t)n;
		if ((size_t)n < iov[i].iov_len)
			break;
	}
	return (ssize_t)total;
}

/* Gather write: small pieces are coalesced into full records (one record, one send), large pieces are
 * written straight from the program's memory. Returns what was committed, as writev would. */
static ssize_t tls_writev(struct conn *c, int fd, const struct iovec *iov, int iovcnt, int flags)
{
	char gather[GATHER_MAX];
	size_t used = 0, total = 0;
	for (int i = 0; i <= iovcnt; i++) {
		bool last = i == iovcnt;
		const char *p = last ? NULL : iov[i].iov_base;
		size_t len = last ? 0 : iov[i].iov_len;
		if (!last && len < GATHER_MAX - used) {
			memcpy(gather + used, p, len);
			used += len;
			continue;
		}
		if (used > 0) {
			ssize_t n = conn_write(c, fd, gather, used, flags);
			if (n < 0)
				return total ? (ssize_t)total : -1;
			total += (size_t)n;
			if ((size_t)n < used)
				return (ssize_t)total;
			used = 0;
		}
		if (!last && len > 0) {
			ssize_t n = conn_write(c, fd, p, len, flags);
			if (n < 0)
				return total ? (ssize_t)total : -1;
			total += (size_t)n;
			if ((size_t)n < len)
				return (ssize_t)total;
		}
	}
	return (ssize_t)total;
}

static bool iov_total_ok(const struct iovec *iov, int iovcnt)
{
	if (iovcnt < 0 || iovcnt > IOV_MAX)
		return false;
	size_t sum = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > SSIZE_MAX - sum)
			return false;
		sum += iov[i].iov_len;
	}
	return true;
}

FAST_HOOK(ssize_t, read, (int fd, void *buf, size_t len), (fd, buf, len))
{
	libc_ensure();
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.read(fd, buf, len);
	return tls_read(c, fd, buf, len, 0);
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		__chk_fail();
	return read(fd, buf, len);
}

FAST_HOOK(ssize_t, write, (int fd, const void *buf, size_t len), (fd, buf, len))
{
	libc_ensure();
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.write(fd, buf, len);
	return tls_write(c, fd, buf, len, 0);
}

EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	PASS_THROUGH_UNLESS_TLS(fd, libc.recv(fd, buf, len, flags));
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.recv(fd, buf, len, flags);
	if (flags & TLS_UNSUPPORTED_RECV_FLAGS)
		return unsupported(c);
	return tls_read(c, fd, buf, len, flags);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (len > buflen)
		__chk_fail();
	return recv(fd, buf, len, flags);
}

EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	PASS_THROUGH_UNLESS_TLS(fd, libc.send(fd, buf, len, flags));
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.send(fd, buf, len, flags);
	if (flags & TLS_UNSUPPORTED_SEND_FLAGS)
		return unsupported(c);
	return tls_write(c, fd, buf, len, flags);
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, __SOCKADDR_ARG addr, socklen_t *addrlen)
{
	PASS_THROUGH_UNLESS_TLS(fd, libc.recvfrom(fd, buf, len, flags, SOCKADDR_PTR(addr), addrlen));
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.recvfrom(fd, buf, len, flags, SOCKADDR_PTR(addr), addrlen);
	if (flags & TLS_UNSUPPORTED_RECV_FLAGS)
		return unsupported(c);
	if (addrlen) /* a connected TCP socket reports no source address */
		*addrlen = 0;
	return tls_read(c, fd, buf, len, flags);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags, __SOCKADDR_ARG addr,
			      socklen_t *addrlen)
{
	if (len > buflen)
		__chk_fail();
	return recvfrom(fd, buf, len, flags, addr, addrlen);
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags, __CONST_SOCKADDR_ARG addr,
		      socklen_t addrlen)
{
	libc_ensure();
	struct conn *c = conn_get(fd);
	if (!c) {
		if (CONST_SOCKADDR_PTR(addr) && addrlen > 0 &&
		    (((flags & MSG_FASTOPEN) &&
		      connect_check_fastopen(fd, CONST_SOCKADDR_PTR(addr), addrlen) < 0) ||
		     udp_check_dest(fd, CONST_SOCKADDR_PTR(addr), addrlen) < 0))
			return -1;
		return libc.sendto(fd, buf, len, flags, CONST_SOCKADDR_PTR(addr), addrlen);
	}
	if (flags & TLS_UNSUPPORTED_SEND_FLAGS)
		return unsupported(c);
	/* TCP ignores the address of a connected socket. */
	return tls_write(c, fd, buf, len, flags);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	PASS_THROUGH_UNLESS_TLS(fd, libc.readv(fd, iov, iovcnt));
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.readv(fd, iov, iovcnt);
	if (!iov_total_ok(iov, iovcnt)) {
		conn_put(c);
		errno = EINVAL;
		return -1;
	}
	ssize_t r = tls_readv(c, fd, iov, iovcnt, 0);
	conn_put_keep_errno(c);
	return r;
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	PASS_THROUGH_UNLESS_TLS(fd, libc.writev(fd, iov, iovcnt));
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.writev(fd, iov, iovcnt);
	if (!iov_total_ok(iov, iovcnt)) {
		conn_put(c);
		errno = EINVAL;
		return -1;
	}
	ssize_t r = tls_writev(c, fd, iov, iovcnt, 0);
	conn_put_keep_errno(c);
	return r;
}

/* preadv2/pwritev2 with offset -1 use the file position: on a socket that is readv/writev. */
static ssize_t tls_positioned(struct conn *c, int fd, const struct iovec *iov, int iovcnt, off_t offset,
			      bool writing)
{
	ssize_t r;
	if (offset != -1) {
		errno = ESPIPE;
		r = -1;
	} else if (!iov_total_ok(iov, iovcnt)) {
		errno = EINVAL;
		r = -1;
	} else {
		r = writing ? tls_writev(c, fd, iov, iovcnt, 0) : tls_readv(c, fd, iov, iovcnt, 0);
	}
	conn_put_keep_errno(c);
	return r;
}

EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags)
{
	PASS_THROUGH_UNLESS_TLS(fd, libc.preadv2(fd, iov, iovcnt, offset, flags));
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.preadv2(fd, iov, iovcnt, offset, flags);
	return tls_positioned(c, fd, iov, iovcnt, offset, false);
}

EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags)
{
	PASS_THROUGH_UNLESS_TLS(fd, libc.pwritev2(fd, iov, iovcnt, offset, flags));
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.pwritev2(fd, iov, iovcnt, offset, flags);
	return tls_positioned(c, fd, iov, iovcnt, offset, true);
}

EXPORT ssize_t preadv64v2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags)
{
	return preadv2(fd, iov, iovcnt, offset, flags);
}

EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags)
{
	return pwritev2(fd, iov, iovcnt, offset, flags);
}

/* A plain recvmsg: fds received with SCM_RIGHTS are classified like inherited ones (inherit.h). */
static ssize_t plain_recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t r = libc.recvmsg(fd, msg, flags);
	if (__builtin_expect(r >= 0 && msg->msg_controllen > 0, 0))
		inherit_adopt_received(msg);
	return r;
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	PASS_THROUGH_UNLESS_TLS(fd, plain_recvmsg(fd, msg, flags));
	struct conn *c = conn_get(fd);
	if (!c)
		return plain_recvmsg(fd, msg, flags);
	if (flags & MSG_ERRQUEUE) { /* the error queue never holds stream data */
		conn_put(c);
		return libc.recvmsg(fd, msg, flags);
	}
	if (flags & TLS_UNSUPPORTED_RECV_FLAGS)
		return unsupported(c);
	if (!iov_total_ok(msg->msg_iov, (int)msg->msg_iovlen)) {
		conn_put(c);
		errno = EINVAL;
		return -1;
	}
	msg->msg_namelen = 0;
	msg->msg_controllen = 0;
	msg->msg_flags = 0;
	ssize_t r;
	if (flags & MSG_WAITALL) {
		size_t total = 0;
		r = 0;
		for (size_t i = 0; i < msg->msg_iovlen && r >= 0; i++) {
			r = conn_read(c, fd, msg->msg_iov[i].iov_base, msg->msg_iov[i].iov_len, flags);
			if (r > 0)
				total += (size_t)r;
			if (r < (ssize_t)msg->msg_iov[i].iov_len)
				break;
		}
		if (total > 0 || r >= 0)
			r = (ssize_t)total;
	} else {
		r = tls_readv(c, fd, msg->msg_iov, (int)msg->msg_iovlen, flags);
	}
	conn_put_keep_errno(c);
	return r;
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	libc_ensure();
	struct conn *c = conn_get(fd);
	if (!c) {
		if (msg->msg_name && msg->msg_namelen > 0 &&
		    (((flags & MSG_FASTOPEN) &&
		      connect_check_fastopen(fd, msg->msg_name, msg->msg_namelen) < 0) ||
		     udp_check_dest(fd, msg->msg_name, msg->msg_namelen) < 0))
			return -1;
		if (msg->msg_controllen > 0 && inherit_refuse_passing_tls(fd, msg) < 0)
			return -1; /* SCM_RIGHTS with a TLS fd */
		return libc.sendmsg(fd, msg, flags);
	}
	if ((flags & TLS_UNSUPPORTED_SEND_FLAGS) || msg->msg_controllen > 0)
		return unsupported(c);
	if (!iov_total_ok(msg->msg_iov, (int)msg->msg_iovlen)) {
		conn_put(c);
		errno = EINVAL;
		return -1;
	}
	ssize_t r = tls_writev(c, fd, msg->msg_iov, (int)msg->msg_iovlen, flags);
	conn_put_keep_errno(c);
	return r;
}

static int plain_recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout)
{
	int r = libc.recvmmsg(fd, vec, vlen, flags, timeout);
	for (int i = 0; i < r; i++)
		if (vec[i].msg_hdr.msg_controllen > 0)
			inherit_adopt_received(&vec[i].msg_hdr);
	return r;
}

static int sendmmsg_checked(int fd, struct mmsghdr *vec, unsigned int vlen, int flags);

/* A plain sendmmsg: no message may pass a TLS fd with SCM_RIGHTS (nothing is sent then). */
static int plain_sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	for (unsigned i = 0; i < vlen; i++)
		if (vec[i].msg_hdr.msg_controllen > 0 && inherit_refuse_passing_tls(fd, &vec[i].msg_hdr) < 0)
			return -1;
	return sendmmsg_checked(fd, vec, vlen, flags);
}

EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout)
{
	PASS_THROUGH_UNLESS_TLS(fd, plain_recvmmsg(fd, vec, vlen, flags, timeout));
	struct conn *c = conn_get(fd);
	if (!c)
		return plain_recvmmsg(fd, vec, vlen, flags, timeout);
	conn_put(c);
	/* A stream has no message boundaries: fill the first message, as TCP does. */
	if (vlen == 0)
		return 0;
	ssize_t n = recvmsg(fd, &vec[0].msg_hdr, flags & ~MSG_WAITFORONE);
	if (n < 0)
		return -1;
	vec[0].msg_len = (unsigned)n;
	return 1;
}

/* sendmmsg on a socket that is not TLS: the messages before the first denied destination are sent. */
static int sendmmsg_checked(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	unsigned n;
	for (n = 0; n < vlen; n++) {
		const struct msghdr *m = &vec[n].msg_hdr;
		if (m->msg_name && m->msg_namelen > 0 && udp_check_dest(fd, m->msg_name, m->msg_namelen) < 0)
			break;
	}
	if (n == vlen)
		return libc.sendmmsg(fd, vec, vlen, flags);
	if (n == 0)
		return -1; /* errno EACCES from udp_check_dest */
	return libc.sendmmsg(fd, vec, n, flags);
}

EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	PASS_THROUGH_UNLESS_TLS(fd, plain_sendmmsg(fd, vec, vlen, flags));
	struct conn *c = conn_get(fd);
	if (!c)
		return plain_sendmmsg(fd, vec, vlen, flags);
	conn_put(c);
	unsigned i;
	for (i = 0; i < vlen; i++) {
		ssize_t n = sendmsg(fd, &vec[i].msg_hdr, flags);
		if (n < 0)
			return i > 0 ? (int)i : -1;
		vec[i].msg_len = (unsigned)n;
	}
	return (int)i;
}
