/* precopy.c: copies of a TCP socket made before it connected (precopy.h). */
#include "preload/precopy.h"
#include "preload/forkgate.h"
#include "preload/conn.h"
#include "preload/fdtab.h"
#include "preload/hooks.h"
#include "preload/log.h"
#include "preload/shim.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct note {
	ino_t ino;
	dev_t dev;
	int fd;
};

/* The notes: an array that grows (never shrinks) under notes_lock, which is held only for array work and
 * atomic fd-table stores, never across a system call that can block or a connection's lock; it is taken
 * inside the fork gate (forkgate.h), so a child never inherits it held. n_notes is also read without the lock
 * (connects skip everything while it is 0). Written by precopy_note, precopy_attach, precopy_undo. */
static pthread_mutex_t notes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct note *notes;
static size_t notes_cap;
static _Atomic size_t n_notes;

#define NOTES_MAX 65536

/* -1 unknown, 0 no tls rule (nothing can become TLS: no notes), 1 some. Written once by policy_has_tls. */
static _Atomic int has_tls = -1;

static bool policy_has_tls(void)
{
	int v = atomic_load_explicit(&has_tls, memory_order_relaxed);
	if (v >= 0)
		return v;
	shim_init();
	v = !shim_policy_ok(); /* fail closed: with no policy nothing connects, but keep the notes honest */
	if (shim_policy_ok()) {
		const struct policy *p = shim_policy();
		for (size_t i = 0; i < p->n_rules && !v; i++)
			v = p->rules[i].action == POLICY_TLS;
	}
	atomic_store_explicit(&has_tls, v, memory_order_relaxed);
	return v;
}

bool precopy_unconnected_tcp(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);
	if (libc.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) != 0 ||
	    (v != IPPROTO_TCP && v != 262 /* IPPROTO_MPTCP */))
		return false;
	len = sizeof(v);
	if (libc.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) != 0 || (v != AF_INET && v != AF_INET6))
		return false;
	len = sizeof(v);
	if (libc.getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || v)
		return false;
	struct sockaddr_storage ss;
	len = sizeof(ss);
	return libc.getpeername(fd, (struct sockaddr *)&ss, &len) != 0 && errno == ENOTCONN;
}

static bool inode_of(int fd, ino_t *ino, dev_t *dev)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return false;
	*ino = st.st_ino;
	*dev = st.st_dev;
	return true;
}

static bool still_same(const struct note *e)
{
	struct stat st;
	return fstat(e->fd, &st) == 0 && st.st_ino == e->ino && st.st_dev == e->dev;
}

/* Drops the notes whose fd no longer holds the noted socket (closed, reused): fstat outside the lock,
 * on a snapshot. Called when the array is full. */
static void prune(void)
{
	forkgate_lock(&notes_lock);
	size_t n = atomic_load_explicit(&n_notes, memory_order_relaxed);
	struct note *snap = n ? malloc(n * sizeof(*snap)) : NULL;
	if (snap)
		memcpy(snap, notes, n * sizeof(*snap));
	forkgate_unlock(&notes_lock);
	if (!snap)
		return;
	size_t stale = 0;
	for (size_t i = 0; i < n; i++)
		if (!still_same(&snap[i]))
			snap[stale++] = snap[i];
	forkgate_lock(&notes_lock);
	size_t m = atomic_load_explicit(&n_notes, memory_order_relaxed), k = 0;
	for (size_t i = 0; i < m; i++) {
		bool drop = false;
		for (size_t j = 0; j < stale && !drop; j++)
			drop = notes[i].fd == snap[j].fd && notes[i].ino == snap[j].ino &&
			       notes[i].dev == snap[j].dev;
		if (!drop)
			notes[k++] = notes[i];
	}
	atomic_store_explicit(&n_notes, k, memory_order_release);
	forkgate_unlock(&notes_lock);
	free(snap);
}

/* With notes_lock held: adds (ino, fd) unless it is there. False when the notes cannot grow. */
static bool add_locked(ino_t ino, dev_t dev, int fd)
{
	size_t n = atomic_load_explicit(&n_notes, memory_order_relaxed);
	for (size_t i = 0; i < n; i++)
		if (notes[i].fd == fd) {
			notes[i].ino = ino;
			notes[i].dev = dev;
			return true;
		}
	if (n == notes_cap) {
		size_t cap = notes_cap ? notes_cap * 2 : 16;
		struct note *g = cap <= NOTES_MAX ? realloc(notes, cap * sizeof(*g)) : NULL;
		if (!g)
			return false;
		notes = g;
		notes_cap = cap;
	}
	notes[n] = (struct note){.ino = ino, .dev = dev, .fd = fd};
	atomic_store_explicit(&n_notes, n + 1, memory_order_release);
	return true;
}

/* oldfd turned TLS while newfd was being made (another thread's connect): newfd shares its connection,
 * or, when that cannot be had, is closed (the dup fails with EBADF): never an untracked copy. */
static int share_racing(int oldfd, int newfd)
{
	for (int tries = 0; tries < 10000; tries++) {
		struct conn *x = fdtab_load(oldfd);
		if (x && !conn_is_sentinel(x)) {
			struct conn *c = conn_get(oldfd);
			if (c && !conn_is_sentinel(c)) {
				int r = conn_attach_fd(c, newfd);
				conn_put(c);
				if (r == 0)
					return 0;
				break;
			}
			if (c)
				conn_put(c);
		}
		if (!x)
			break;
		sched_yield(); /* the connecting thread is installing the connection on the copies */
	}
	log_msg(LOG_ERROR,
		"fd %d: a copy of fd %d made while another thread made it a TLS connection cannot be "
		"tracked; closed (EBADF); copy the socket after connect() returns",
		newfd, oldfd);
	fdtab_replace(newfd, &conn_closing, NULL);
	libc.close(newfd);
	errno = EBADF;
	return -1;
}

int precopy_note(int oldfd, int newfd)
{
	if (newfd < 0 || oldfd == newfd || !policy_has_tls())
		return newfd;
	int e = errno;
	ino_t ino;
	dev_t dev;
	if (!precopy_unconnected_tcp(oldfd) || !inode_of(oldfd, &ino, &dev)) {
		errno = e;
		return newfd;
	}
	bool racing = false, added = true;
	if (atomic_load_explicit(&n_notes, memory_order_relaxed) + 2 > notes_cap)
		prune(); /* full (or nearly): make room first, outside the lock */
	forkgate_lock(&notes_lock);
	if (fdtab_load(oldfd))
		racing = fdtab_replace(newfd, NULL, &conn_closing);
	else
		added = add_locked(ino, dev, oldfd) && add_locked(ino, dev, newfd);
	forkgate_unlock(&notes_lock);
	if (racing)
		return share_racing(oldfd, newfd) == 0 ? newfd : -1;
	if (!added) {
		log_msg(LOG_ERROR,
			"fd %d: a copy of the unconnected TCP socket on fd %d cannot be tracked (out of "
			"memory); closed (EBADF)",
			newfd, oldfd);
		libc.close(newfd);
		errno = EBADF;
		return -1;
	}
	errno = e;
	return newfd;
}

/* With notes_lock held: takes the notes of (ino, dev) other than fd into out (at most max; the rest
 * stay), claiming each copy's empty slot with the closing mark. Returns how many. */
static size_t take_locked(ino_t ino, dev_t dev, int fd, int *out, size_t max)
{
	size_t n = atomic_load_explicit(&n_notes, memory_order_relaxed), k = 0, got = 0;
	for (size_t i = 0; i < n; i++) {
		struct note *e = &notes[i];
		if (e->ino != ino || e->dev != dev || got == max) {
			notes[k++] = *e;
			continue;
		}
		if (e->fd != fd && (fdtab_replace(e->fd, NULL, &conn_closing) ||
				    fdtab_replace(e->fd, &conn_unclassified, &conn_closing)))
			out[got++] = e->fd;
	}
	atomic_store_explicit(&n_notes, k, memory_order_release);
	return got;
}

int precopy_attach(struct conn *c, int fd)
{
	if (atomic_load_explicit(&n_notes, memory_order_acquire) == 0)
		return 0;
	ino_t ino;
	dev_t dev;
	if (!inode_of(fd, &ino, &dev))
		return 0;
	int attached = 0;
	for (;;) {
		int copies[64];
		forkgate_lock(&notes_lock);
		size_t got = take_locked(ino, dev, fd, copies, 64);
		forkgate_unlock(&notes_lock);
		if (got == 0)
			return attached;
		for (size_t i = 0; i < got; i++) {
			struct note e = {.ino = ino, .dev = dev, .fd = copies[i]};
			/* A note can be stale: the number may hold another file now. */
			if (!still_same(&e)) {
				fdtab_replace(copies[i], &conn_closing, NULL);
				continue;
			}
			if (conn_attach_fd(c, copies[i]) != 0) {
				fdtab_replace(copies[i], &conn_closing, NULL);
				libc.close(copies[i]); /* an untracked copy must not stay usable */
				log_msg(
				    LOG_ERROR,
				    "%s: fd %d, a copy of fd %d made before connect(), cannot be tracked; "
				    "closed, and the connect is refused",
				    c->dest, copies[i], fd);
				errno = EMFILE;
				return -1;
			}
			attached++;
			log_msg(LOG_DEBUG,
				"%s: fd %d, a copy of fd %d made before connect(), shares the TLS connection",
				c->dest, copies[i], fd);
		}
	}
}

void precopy_note_socket(int fd, int domain, int type)
{
	if (fd < 0 || (domain != AF_INET && domain != AF_INET6) || (type & 0xf) != SOCK_STREAM ||
	    !policy_has_tls())
		return;
	ino_t ino;
	dev_t dev;
	if (!inode_of(fd, &ino, &dev))
		return;
	if (atomic_load_explicit(&n_notes, memory_order_relaxed) + 1 > notes_cap)
		prune();
	forkgate_lock(&notes_lock);
	bool added = add_locked(ino, dev, fd);
	forkgate_unlock(&notes_lock);
	if (!added)
		log_msg(
		    LOG_WARN,
		    "fd %d: a new TCP socket cannot be noted (out of memory): a fork() child "
		    "that writes to it after this process connects it to a tls destination is not stopped",
		    fd);
}

void precopy_forget(int fd)
{
	if (atomic_load_explicit(&n_notes, memory_order_acquire) == 0)
		return;
	ino_t ino;
	dev_t dev;
	if (!inode_of(fd, &ino, &dev))
		return;
	forkgate_lock(&notes_lock);
	size_t n = atomic_load_explicit(&n_notes, memory_order_relaxed), k = 0;
	for (size_t i = 0; i < n; i++)
		if (notes[i].ino != ino || notes[i].dev != dev)
			notes[k++] = notes[i];
	atomic_store_explicit(&n_notes, k, memory_order_release);
	forkgate_unlock(&notes_lock);
}

void precopy_undo(struct conn *c, int fd)
{
	ino_t ino;
	dev_t dev;
	if (!inode_of(fd, &ino, &dev))
		return;
	for (int other = fdtab_next(0, FDTAB_MAX_FD - 1); other >= 0;
	     other = fdtab_next(other + 1, FDTAB_MAX_FD - 1)) {
		struct stat st;
		if (other == fd || fdtab_load(other) != c || fstat(other, &st) != 0 || st.st_ino != ino ||
		    st.st_dev != dev)
			continue;
		struct conn *taken = fdtab_take(other);
		if (taken)
			conn_detach_fd(taken, -1);
		forkgate_lock(&notes_lock);
		add_locked(ino, dev, other);
		add_locked(ino, dev, fd);
		forkgate_unlock(&notes_lock);
	}
}

void precopy_atfork_child(void)
{
	size_t n = atomic_load_explicit(&n_notes, memory_order_relaxed);
	for (size_t i = 0; i < n; i++)
		fdtab_replace(notes[i].fd, NULL, &conn_unclassified);
}

__attribute__((constructor(210))) static void precopy_init(void)
{
	pthread_atfork(NULL, NULL, precopy_atfork_child); /* the lock itself: the fork gate */
}
