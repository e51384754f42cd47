/* wake.c: see wake.h. */
#include "preload/wake.h"
#include "preload/fdtab.h"
#include "preload/forkgate.h"
#include "preload/libc.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* Threads blocked in the poll family on TLS fds: a list of struct wake_waiter, each in its waiter's
 * per-thread record (pollwait.c; never a stack frame, which a siglongjmp abandons), linked and unlinked
 * by that thread (wake_register/wake_unregister) and walked by
 * wake_notify, all under wake_lock, which is held only for list work and eventfd writes (never across a
 * wait). n_waiters (written under wake_lock, read without it) lets wake_notify skip the lock when nobody
 * waits, the common case. wake_lock is taken inside the fork gate (forkgate.h), so no fork copies it
 * held; the child, whose only thread is the one that forked (never inside a wait), starts with an
 * empty list (its handler runs after the gate's, and takes no lock). */
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wake_waiter *waiters;
static _Atomic int n_waiters;

/* This thread's eventfd: created on first need, closed by the key's destructor at thread exit. */
static __thread int thread_efd = -1;
static pthread_key_t efd_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

/* The program can close this number (closefrom, a close loop over every fd) and reuse it. Before the
 * shim reads, writes or closes a wake-up eventfd it checks that the number is still an eventfd: not in
 * the fd table (a TLS socket there would get 8 bytes of counter in plaintext, or lose ciphertext to the
 * drain) and, by fstat, the anonymous inode every eventfd of this process has (recorded at load;
 * written once, read lock-free). A number reused for a pipe, file or socket is thus left
 * alone and the thread makes a new eventfd; reuse for the program's own eventfd is not told apart (the
 * kernel gives all eventfds one inode: README, Known open problems). Costs one fstat on the paths that
 * drain or signal, never on the plain read path. */
static _Atomic unsigned long efd_dev, efd_ino; /* 0 until the first eventfd is made */

static bool efd_usable(int fd)
{
	if (fd < 0 || fdtab_load(fd) != NULL)
		return false;
	struct stat st;
	if (syscall(SYS_fstat, fd, &st) != 0)
		return false;
	return (unsigned long)st.st_dev == atomic_load(&efd_dev) &&
	       (unsigned long)st.st_ino == atomic_load(&efd_ino);
}

static void close_thread_efd(void *p)
{
	int fd = (int)(intptr_t)p - 1;
	if (efd_usable(fd))
		syscall(SYS_close, fd);
}

static void wake_atfork_child(void)
{
	waiters = NULL; /* the other threads' frames are not ours */
	atomic_store(&n_waiters, 0);
}

static void make_key(void)
{
	pthread_key_create(&efd_key, close_thread_efd);
	pthread_atfork(NULL, NULL, wake_atfork_child);
}

/* Records the inode all eventfds share (the shim's epoll sets' eventfds are checked against it too,
 * through wake_signal/wake_drain), from a throwaway eventfd made at load. */
static void record_efd_inode(void)
{
	int fd = (int)syscall(SYS_eventfd2, 0, EFD_CLOEXEC);
	if (fd < 0)
		return;
	struct stat st;
	if (syscall(SYS_fstat, fd, &st) == 0) {
		atomic_store(&efd_dev, (unsigned long)st.st_dev);
		atomic_store(&efd_ino, (unsigned long)st.st_ino);
	}
	syscall(SYS_close, fd);
}

/* The key and the fork handler are made at load, not on a first wait: that runs under a connection
 * lock inside the fork gate, and glibc before 2.35 holds its atfork lock while the prepare handlers
 * run, so a pthread_atfork there could deadlock with a fork. */
__attribute__((constructor)) static void wake_init(void)
{
	pthread_once(&key_once, make_key);
	record_efd_inode();
}

int wake_thread_fd(void)
{
	if (thread_efd >= 0 && fdtab_load(thread_efd) == NULL)
		return thread_efd; /* (a reuse for something else is caught when it fires: wake_drain) */
	pthread_once(&key_once, make_key);
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0)
		return -1;
	thread_efd = fd;
	pthread_setspecific(efd_key, (void *)(intptr_t)(fd + 1));
	return fd;
}

void wake_register(struct wake_waiter *w, int efd, const struct pollfd *fds, size_t n)
{
	*w = (struct wake_waiter){.efd = efd, .fds = fds, .n = n};
	forkgate_lock(&wake_lock);
	w->next = waiters;
	if (waiters)
		waiters->prev = w;
	waiters = w;
	atomic_fetch_add(&n_waiters, 1);
	forkgate_unlock(&wake_lock);
}

void wake_unregister(struct wake_waiter *w)
{
	forkgate_lock(&wake_lock);
	if (w->prev)
		w->prev->next = w->next;
	else
		waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	atomic_fetch_sub(&n_waiters, 1);
	forkgate_unlock(&wake_lock);
}

void wake_drain(int efd)
{
	uint64_t v;
	if (!efd_usable(efd)) {
		if (efd == thread_efd) {
			thread_efd = -1; /* the program took the number: make a new one next time */
			pthread_setspecific(efd_key, NULL);
		}
		return;
	}
	while (syscall(SYS_read, efd, &v, sizeof(v)) == (long)sizeof(v))
		;
}

void wake_signal(int efd)
{
	uint64_t one = 1;
	if (efd_usable(efd))
		syscall(SYS_write, efd, &one, sizeof(one));
}

void wake_notify(int fd)
{
	int saved = errno;
	if (atomic_load_explicit(&n_waiters, memory_order_acquire) > 0) {
		/* By connection, not by number: a waiter may poll a dup of fd (one socket, one session). */
		const struct conn *c = fdtab_load(fd);
		forkgate_lock(&wake_lock);
		for (struct wake_waiter *w = waiters; w; w = w->next)
			for (size_t k = 0; k < w->n; k++)
				if ((w->fds[k].fd == fd ||
				     (c && w->fds[k].fd >= 0 && fdtab_load(w->fds[k].fd) == c)) &&
				    (w->fds[k].events & POLLIN)) {
					wake_signal(w->efd);
					break;
				}
		forkgate_unlock(&wake_lock);
	}
	poll_notify_epoll(fd);
	errno = saved;
}
