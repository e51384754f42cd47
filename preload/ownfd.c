/* ownfd.c: see ownfd.h. */
#include "preload/ownfd.h"
#include "preload/rawsys.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static bool is_inet_socket(int fd)
{
	int domain = 0;
	socklen_t len = sizeof(domain);
	if (raw_syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, (long)&domain, (long)&len, 0) != 0)
		return false; /* not a socket */
	return domain == AF_INET || domain == AF_INET6;
}

static bool identify(int fd, uint64_t *dev, uint64_t *ino)
{
	struct stat st;
	if (raw_syscall(SYS_fstat, fd, (long)&st, 0, 0, 0, 0) != 0)
		return false;
	*dev = (uint64_t)st.st_dev;
	*ino = (uint64_t)st.st_ino;
	return true;
}

static int open_path(struct ownfd *o)
{
	uint64_t dev, ino;
	int fd = (int)raw_syscall(SYS_openat, AT_FDCWD, (long)o->path,
				  O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600, 0, 0);
	if (fd < 0)
		return -1;
	if (!identify(fd, &dev, &ino) || is_inet_socket(fd)) {
		raw_syscall(SYS_close, fd, 0, 0, 0, 0, 0);
		errno = EINVAL;
		return -1;
	}
	atomic_store_explicit(&o->dev, dev, memory_order_relaxed);
	atomic_store_explicit(&o->ino, ino, memory_order_relaxed);
	atomic_store_explicit(&o->fd, fd, memory_order_release);
	return 0;
}

int ownfd_open(struct ownfd *o, const char *path)
{
	atomic_store(&o->fd, -1);
	atomic_flag_clear(&o->reopening);
	size_t n = 0;
	if (path[0] != '/') { /* the program may chdir later: keep the absolute path */
		if (raw_syscall(SYS_getcwd, (long)o->path, sizeof(o->path), 0, 0, 0, 0) < 0)
			return -1;
		n = strlen(o->path);
		if (n + 1 < sizeof(o->path) && (n == 0 || o->path[n - 1] != '/'))
			o->path[n++] = '/';
	}
	if (n + strlen(path) >= sizeof(o->path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(o->path + n, path, strlen(path) + 1);
	o->reopenable = true;
	return open_path(o);
}

void ownfd_adopt(struct ownfd *o, int fd)
{
	uint64_t dev, ino;
	atomic_flag_clear(&o->reopening);
	o->reopenable = false;
	atomic_store(&o->fd, -1);
	if (!identify(fd, &dev, &ino) || is_inet_socket(fd))
		return;
	atomic_store_explicit(&o->dev, dev, memory_order_relaxed);
	atomic_store_explicit(&o->ino, ino, memory_order_relaxed);
	atomic_store_explicit(&o->fd, fd, memory_order_release);
}

/* The sink's fd if it is still the file it was, else -1 (after reopening, if it can). */
static int checked_fd(struct ownfd *o)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = atomic_load_explicit(&o->fd, memory_order_acquire);
		if (fd < 0 && !o->reopenable)
			return -1;
		uint64_t dev, ino;
		if (fd >= 0 && identify(fd, &dev, &ino) &&
		    dev == atomic_load_explicit(&o->dev, memory_order_relaxed) &&
		    ino == atomic_load_explicit(&o->ino, memory_order_relaxed) &&
		    fd == atomic_load_explicit(&o->fd, memory_order_acquire))
			return fd;
		/* Taken away: the number is the program's now (never closed here). */
		if (!o->reopenable) {
			atomic_store(&o->fd, -1);
			return -1;
		}
		int spins = 0;
		while (atomic_flag_test_and_set(&o->reopening)) {
			if (++spins > 1000)
				return -1; /* another thread is stuck reopening: drop this line */
			sched_yield();
		}
		if (atomic_load_explicit(&o->fd, memory_order_acquire) == fd) {
			atomic_store(&o->fd, -1);
			open_path(o);
		}
		atomic_flag_clear(&o->reopening);
	}
	return -1;
}

bool ownfd_write(struct ownfd *o, const char *buf, size_t len)
{
	int saved = errno;
	int fd = checked_fd(o);
	bool done = fd >= 0;
	while (done && len > 0) {
		long n = raw_syscall(SYS_write, fd, (long)buf, (long)len, 0, 0, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			done = false;
			break;
		}
		buf += n;
		len -= (size_t)n;
	}
	errno = saved;
	return done;
}
