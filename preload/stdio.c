/* stdio.c: the ways to move bytes that bypass the hooked write(): glibc's stdio on an fd (fdopen, and
 * stdin/stdout/stderr when a TLS socket lands on fd 0, 1 or 2, as `exec 3<>/dev/tcp/..; printf >&3` does),
 * dprintf/vdprintf, and the kernel's copy paths sendfile/sendfile64/splice. On a TLS fd each is mapped
 * onto conn_read/conn_write (or refused with EINVAL where no mapping makes sense), never letting the
 * kernel put plaintext on the wire. */
#include "preload/fdtab.h"
#include "preload/hooks.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#define COPY_CHUNK 65536

/* fopencookie functions: the stream's fd is the cookie. */
static ssize_t cookie_read(void *cookie, char *buf, size_t size)
{
	return read((int)(intptr_t)cookie, buf, size);
}

static ssize_t cookie_write(void *cookie, const char *buf, size_t size)
{
	/* stdio treats a short count as an error: write it all. */
	size_t done = 0;
	while (done < size) {
		ssize_t n = write((int)(intptr_t)cookie, buf + done, size - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return done ? (ssize_t)done : -1;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int cookie_close(void *cookie)
{
	return close((int)(intptr_t)cookie);
}

void stdio_flush_std_fd(int fd)
{
	if (fd == 1)
		fflush(stdout);
	else if (fd == 2)
		fflush(stderr);
}

void stdio_adopt_std_fd(int fd)
{
	if (fd < 0 || fd > 2)
		return;
	cookie_io_functions_t io = {
	    .read = cookie_read, .write = cookie_write, .seek = NULL, .close = cookie_close};
	FILE *f = fopencookie((void *)(intptr_t)fd, fd == 0 ? "r" : "w", io);
	if (!f)
		return;
	if (fd == 2)
		setvbuf(f, NULL, _IONBF, 0);
	/* The old stream is left open and unused: closing it would close the fd under the new one. */
	if (fd == 0)
		stdin = f;
	else if (fd == 1)
		stdout = f;
	else
		stderr = f;
}

EXPORT FILE *fdopen(int fd, const char *mode)
{
	libc_ensure();
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.fdopen(fd, mode);
	conn_put(c);
	cookie_io_functions_t io = {
	    .read = cookie_read, .write = cookie_write, .seek = NULL, .close = cookie_close};
	FILE *f = fopencookie((void *)(intptr_t)fd, mode, io);
	if (f)
		setvbuf(f, NULL, _IOFBF, 16384);
	return f;
}

EXPORT int vdprintf(int fd, const char *fmt, va_list ap)
{
	libc_ensure();
	struct conn *c = conn_get(fd);
	if (!c)
		return libc.vdprintf(fd, fmt, ap);
	conn_put(c);
	/* glibc's vdprintf writes through an internal path the hooks never see: format here, write through
	 * TLS. */
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	if (n < 0)
		return -1;
	ssize_t w = cookie_write((void *)(intptr_t)fd, s, (size_t)n);
	int e = errno;
	free(s);
	errno = e;
	return w < (ssize_t)n ? -1 : n;
}

EXPORT int dprintf(int fd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vdprintf(fd, fmt, ap);
	va_end(ap);
	return n;
}

EXPORT int __vdprintf_chk(int fd, int flag, const char *fmt, va_list ap)
{
	return vdprintf(fd, fmt, ap);
}

EXPORT int __dprintf_chk(int fd, int flag, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vdprintf(fd, fmt, ap);
	va_end(ap);
	return n;
}

/* sendfile into a TLS socket: read the file and write it through TLS, with sendfile's contract for
 * *offset (advanced; the file position untouched) or, without offset, the file position. */
static ssize_t tls_sendfile(struct conn *c, int out_fd, int in_fd, off_t *offset, size_t count)
{
	char *buf = malloc(COPY_CHUNK);
	if (!buf) {
		errno = ENOMEM;
		return -1;
	}
	size_t total = 0;
	while (total < count) {
		size_t want = count - total < COPY_CHUNK ? count - total : COPY_CHUNK;
		ssize_t n = offset ? libc.pread(in_fd, buf, want, *offset) : libc.read(in_fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0 && total == 0) {
				free(buf);
				return -1;
			}
			break;
		}
		ssize_t w = conn_write(c, out_fd, buf, (size_t)n, 0);
		if (w < 0) {
			int e = errno;
			free(buf);
			if (total)
				return (ssize_t)total;
			errno = e;
			return -1;
		}
		if (offset)
			*offset += w;
		else if (w < n) /* give back what was read but not sent */
			lseek(in_fd, (off_t)(w - n), SEEK_CUR);
		total += (size_t)w;
		if (w < n)
			break;
	}
	free(buf);
	return (ssize_t)total;
}

EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	libc_ensure();
	struct conn *c = conn_get(out_fd);
	if (!c) {
		struct conn *in = conn_get(in_fd);
		if (!in)
			return libc.sendfile(out_fd, in_fd, offset, count);
		conn_put(in);
		errno = EINVAL; /* the kernel refuses sockets as sendfile's source too */
		return -1;
	}
	ssize_t r = tls_sendfile(c, out_fd, in_fd, offset, count);
	conn_put_keep_errno(c);
	return r;
}

EXPORT ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
	return sendfile(out_fd, in_fd, offset, count);
}

EXPORT ssize_t splice(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t len, unsigned int flags)
{
	libc_ensure();
	if (fdtab_load(fd_in) || fdtab_load(fd_out)) {
		/* Programs fall back to read/write on EINVAL, which the shim does map. */
		errno = EINVAL;
		return -1;
	}
	return libc.splice(fd_in, off_in, fd_out, off_out, len, flags);
}
