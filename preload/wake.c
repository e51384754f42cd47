/* wake.c: see wake.h. */
#include "preload/wake.h"
#include "preload/libc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>

#define WAKE_MAX_WAITERS 256

struct waiter {
	int efd; /* -1: free slot */
	const struct pollfd *fds;
	size_t n;
};

/* Threads blocked in the poll family on TLS fds. Guarded by wake_lock; n_waiters lets wake_notify skip
 * the lock entirely when nobody waits (the common case). */
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static struct waiter waiters[WAKE_MAX_WAITERS];
static _Atomic int n_waiters;

/* This thread's eventfd: created on first need, closed by the key's destructor at thread exit. */
static __thread int thread_efd = -1;
static pthread_key_t efd_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void close_thread_efd(void *p)
{
	int fd = (int)(intptr_t)p - 1;
	if (fd >= 0)
		syscall(SYS_close, fd);
}

static void make_key(void)
{
	pthread_key_create(&efd_key, close_thread_efd);
}

int wake_thread_fd(void)
{
	if (thread_efd >= 0)
		return thread_efd;
	pthread_once(&key_once, make_key);
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0)
		return -1;
	thread_efd = fd;
	pthread_setspecific(efd_key, (void *)(intptr_t)(fd + 1));
	return fd;
}

void wake_register(int efd, const struct pollfd *fds, size_t n)
{
	pthread_mutex_lock(&wake_lock);
	for (size_t i = 0; i < WAKE_MAX_WAITERS; i++) {
		if (waiters[i].fds == NULL) {
			waiters[i] = (struct waiter){.efd = efd, .fds = fds, .n = n};
			atomic_fetch_add(&n_waiters, 1);
			break;
		}
	}
	pthread_mutex_unlock(&wake_lock);
}

void wake_unregister(int efd)
{
	pthread_mutex_lock(&wake_lock);
	for (size_t i = 0; i < WAKE_MAX_WAITERS; i++) {
		if (waiters[i].fds && waiters[i].efd == efd) {
			waiters[i].fds = NULL;
			atomic_fetch_sub(&n_waiters, 1);
			break;
		}
	}
	pthread_mutex_unlock(&wake_lock);
}

void wake_drain(int efd)
{
	uint64_t v;
	while (syscall(SYS_read, efd, &v, sizeof(v)) == (long)sizeof(v))
		;
}

static void signal_efd(int efd)
{
	uint64_t one = 1;
	syscall(SYS_write, efd, &one, sizeof(one));
}

void wake_notify(int fd)
{
	int saved = errno;
	if (atomic_load_explicit(&n_waiters, memory_order_acquire) > 0) {
		pthread_mutex_lock(&wake_lock);
		for (size_t i = 0; i < WAKE_MAX_WAITERS; i++) {
			if (!waiters[i].fds)
				continue;
			for (size_t k = 0; k < waiters[i].n; k++)
				if (waiters[i].fds[k].fd == fd && (waiters[i].fds[k].events & POLLIN)) {
					signal_efd(waiters[i].efd);
					break;
				}
		}
		pthread_mutex_unlock(&wake_lock);
	}
	poll_notify_epoll(fd);
	errno = saved;
}
