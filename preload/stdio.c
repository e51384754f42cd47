/* stdio.c: the ways to move bytes that bypass the hooked write(): glibc's stdio on an fd (fdopen, and
 * stdin/stdout/stderr when a TLS socket lands on fd 0, 1 or 2, as `exec 3<>/dev/tcp/..; printf >&3` does),
 * dprintf/vdprintf, and the kernel's copy paths sendfile/sendfile64/splice. On a TLS fd each is mapped
 * onto conn_read/conn_write (or refused with EINVAL where no mapping makes sense), never letting the
 * kernel put plaintext on the wire.
 * Streams that already exist when a socket becomes TLS (a FILE fdopen'd before connect, the FILE C++'s
 * std::cout keeps for fd 1 after a TLS socket lands there) write with libc-internal calls the hooks never
 * see, and cannot be turned into cookie streams in place: every FILE on glibc's list of streams whose fd
 * is that socket (compared by inode, so copies under other numbers count too) is detached from it (its
 * fd becomes -1: writes and reads fail with EBADF, fclose closes nothing). fileno()/fileno_unlocked()
 * on the shim's own cookie streams return their fd. */
#include "preload/fdtab.h"
#include "preload/hooks.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload/log.h"
#include "preload/rawsys.h"

/* glibc's list of every open FILE (libio), with its recursive lock; both exported by libc.so.6. */
extern FILE *_IO_list_all;
void _IO_list_lock(void);
void _IO_list_unlock(void);

#define COPY_CHUNK	 65536
#define COOKIE_FILES_MAX 256

/* The shim's cookie streams and their fds, for fileno(). A slot is claimed by compare-and-swap of a
 * NULL FILE pointer (fdopen hook, stdio_adopt_std_fd) and released by the stream's close function;
 * n_cookie_files lets fileno() skip the scan while there are none. */
static _Atomic(FILE *) cookie_files[COOKIE_FILES_MAX];
static _Atomic int cookie_fds[COOKIE_FILES_MAX];
static atomic_int n_cookie_files;

static void cookie_register(FILE *f, int fd)
{
	for (int i = 0; i < COOKIE_FILES_MAX; i++) {
		FILE *expected = NULL;
		if (atomic_compare_exchange_strong(&cookie_files[i], &expected, f)) {
			atomic_store(&cookie_fds[i], fd); /* before fdopen returns f to the program */
			atomic_fetch_add(&n_cookie_files, 1);
			return;
		}
	}
	/* Full: fileno() on this stream answers -1, as glibc's does for any cookie stream. */
}

static void cookie_unregister_fd(int fd)
{
	for (int i = 0; i < COOKIE_FILES_MAX; i++) {
		FILE *f = atomic_load(&cookie_files[i]);
		if (f && atomic_load(&cookie_fds[i]) == fd &&
		    atomic_compare_exchange_strong(&cookie_files[i], &f, NULL)) {
			atomic_fetch_sub(&n_cookie_files, 1);
			return;
		}
	}
}

static int cookie_fileno(FILE *f)
{
	if (__builtin_expect(atomic_load_explicit(&n_cookie_files, memory_order_relaxed) == 0, 1))
		return -1;
	for (int i = 0; i < COOKIE_FILES_MAX; i++)
		if (atomic_load(&cookie_files[i]) == f)
			return atomic_load(&cookie_fds[i]);
	return -1;
}

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
	cookie_unregister_fd((int)(intptr_t)cookie);
	return close((int)(intptr_t)cookie);
}

/* Detaches every FILE on the socket behind fd (see the top of the file). Runs at the TLS connect before
 * the TCP connect (nothing can have been sent yet) and whenever a TLS fd is copied to a new number. */
static void detach_streams_on(int fd)
{
	struct stat sock, st;
	if (raw_syscall(SYS_fstat, fd, (long)&sock, 0, 0, 0, 0) != 0)
		return;
	int detached = 0;
	_IO_list_lock();
	for (FILE *f = _IO_list_all; f; f = f->_chain) {
		int n = f->_fileno;
		if (n < 0 || raw_syscall(SYS_fstat, n, (long)&st, 0, 0, 0, 0) != 0 ||
		    st.st_dev != sock.st_dev || st.st_ino != sock.st_ino)
			continue;
		/* Buffered bytes stay in the FILE and can never be written: the flush fails with EBADF. */
		f->_fileno = -1;
		detached++;
	}
	_IO_list_unlock();
	if (detached)
		log_msg(
		    LOG_INFO,
		    "fd %d became a TLS socket: %d stdio stream(s) on it were detached (their writes fail "
		    "with EBADF instead of bypassing TLS); fdopen the fd again after connect",
		    fd, detached);
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
	if (fd < 0)
		return;
	detach_streams_on(fd);
	if (fd > 2)
		return;
	cookie_io_functions_t io = {
	    .read = cookie_read, .write = cookie_write, .seek = NULL, .close = cookie_close};
	FILE *f = fopencookie((void *)(intptr_t)fd, fd == 0 ? "r" : "w", io);
	if (!f)
		return;
	if (fd == 2)
		setvbuf(f, NULL, _IONBF, 0);
	cookie_register(f, fd);
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
	if (f) {
		setvbuf(f, NULL, _IOFBF, 16384);
		cookie_register(f, fd);
	}
	return f;
}

/* glibc's libio entry that binds an existing FILE to an fd: such a FILE would write past the hooks. */
EXPORT FILE *_IO_file_attach(FILE *f, int fd)
{
	libc_ensure();
	if (fdtab_load(fd)) {
		log_msg(
		    LOG_ERROR,
		    "fd %d: _IO_file_attach on a TLS socket would make a stream that bypasses TLS; refused "
		    "with EBADF; use fdopen",
		    fd);
		errno = EBADF;
		return NULL;
	}
	return libc.io_file_attach ? libc.io_file_attach(f, fd) : NULL;
}

EXPORT int fileno(FILE *f)
{
	libc_ensure();
	int fd = cookie_fileno(f);
	return fd >= 0 ? fd : libc.fileno(f);
}

EXPORT int fileno_unlocked(FILE *f)
{
	libc_ensure();
	int fd = cookie_fileno(f);
	return fd >= 0 ? fd : libc.fileno_unlocked(f);
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
