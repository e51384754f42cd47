/* libc.h: the real libc functions the shim stands in front of, resolved once.
 * Every hook calls the real function through `libc.NAME`. libc_resolve() fills the table exactly once
 * (pthread_once), from the library constructor or, if a hook runs before the constructor (another library's
 * constructor called us), from that first hook. */
#ifndef TLSSHIM_LIBC_H
#define TLSSHIM_LIBC_H

#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/resource.h>
#include <time.h>

struct aiocb;
struct aiocb64;
struct gaicb;
struct sigevent;

struct libc_fns {
	int (*socket)(int, int, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*close)(int);
	int (*close_range)(unsigned, unsigned, int); /* optional (glibc >= 2.34) */
	void (*closefrom)(int);			     /* optional (glibc >= 2.34) */
	int (*shutdown)(int, int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned, int, struct timespec *);
	int (*sendmmsg)(int, struct mmsghdr *, unsigned, int);
	ssize_t (*preadv2)(int, const struct iovec *, int, off_t, int);
	ssize_t (*pwritev2)(int, const struct iovec *, int, off_t, int);
	ssize_t (*sendfile)(int, int, off_t *, size_t);
	ssize_t (*splice)(int, off_t *, int, off_t *, size_t, unsigned);
	ssize_t (*copy_file_range)(int, off_t *, int, off_t *, size_t, unsigned);
	ssize_t (*pread)(int, void *, size_t, off_t);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
	int (*epoll_wait)(int, struct epoll_event *, int, int);
	int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
	int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *,
			    const sigset_t *); /* optional */
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*epoll_create)(int);
	int (*epoll_create1)(int);
	int (*ioctl)(int, unsigned long, ...);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	FILE *(*fdopen)(int, const char *);
	int (*vdprintf)(int, const char *, va_list);
	int (*getaddrinfo)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
	void (*freeaddrinfo)(struct addrinfo *);
	struct hostent *(*gethostbyname)(const char *);
	struct hostent *(*gethostbyname2)(const char *, int);
	int (*gethostbyname_r)(const char *, struct hostent *, char *, size_t, struct hostent **, int *);
	int (*gethostbyname2_r)(const char *, int, struct hostent *, char *, size_t, struct hostent **,
				int *);
	pid_t (*fork)(void);
	pid_t (*_Fork)(void); /* optional (glibc >= 2.34) */
	int (*posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			   const posix_spawnattr_t *, char *const[], char *const[]);
	int (*posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			    const posix_spawnattr_t *, char *const[], char *const[]);
	int (*posix_spawn_file_actions_init)(posix_spawn_file_actions_t *);
	int (*posix_spawn_file_actions_destroy)(posix_spawn_file_actions_t *);
	int (*posix_spawn_file_actions_adddup2)(posix_spawn_file_actions_t *, int, int);
	int (*posix_spawn_file_actions_addclose)(posix_spawn_file_actions_t *, int);
	int (*posix_spawn_file_actions_addopen)(posix_spawn_file_actions_t *, int, const char *, int, mode_t);
	int (*posix_spawn_file_actions_addclosefrom_np)(posix_spawn_file_actions_t *, int); /* optional */
	int (*posix_spawn_file_actions_addchdir_np)(posix_spawn_file_actions_t *,
						    const char *);			 /* optional */
	int (*posix_spawn_file_actions_addfchdir_np)(posix_spawn_file_actions_t *, int); /* optional */
	/* The routes around the ordinary hooks (aio.c, aliases.c, gai.c, stdio.c); all optional. */
	int (*aio_read)(struct aiocb *);
	int (*aio_write)(struct aiocb *);
	int (*aio_fsync)(int, struct aiocb *);
	int (*lio_listio)(int, struct aiocb *const[], int, struct sigevent *);
	int (*aio_read64)(struct aiocb64 *);
	int (*aio_write64)(struct aiocb64 *);
	int (*aio_fsync64)(int, struct aiocb64 *);
	int (*lio_listio64)(int, struct aiocb64 *const[], int, struct sigevent *);
	ssize_t (*write_nocancel)(int, const void *, size_t); /* __write_nocancel (GLIBC_PRIVATE) */
	ssize_t (*read_nocancel)(int, void *, size_t);	      /* __read_nocancel */
	int (*close_nocancel)(int);			      /* __close_nocancel */
	int (*pidfd_getfd)(int, int, unsigned);
	int (*getaddrinfo_a)(int, struct gaicb *[], int, struct sigevent *);
	int (*gai_error)(struct gaicb *);
	int (*gai_suspend)(const struct gaicb *const[], int, const struct timespec *);
	int (*fileno)(FILE *);
	int (*fileno_unlocked)(FILE *);
	FILE *(*io_file_attach)(FILE *, int); /* _IO_file_attach */
};

/* Written once by libc_resolve() under pthread_once; read-only afterwards (no lock needed to read). */
extern struct libc_fns libc __attribute__((visibility("hidden"))); /* hidden: one RIP-relative load */

/* Resolves every function once; safe to call from any thread, any number of times. */
void libc_resolve(void);

/* Set once the table is complete (release/acquire), so a hook's check costs one load. */
extern atomic_bool libc_ready __attribute__((visibility("hidden")));

static inline void libc_ensure(void)
{
	if (__builtin_expect(!atomic_load_explicit(&libc_ready, memory_order_acquire), 0))
		libc_resolve();
}

#endif
