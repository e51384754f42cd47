/* libc.c: resolves the real libc functions once, thread-safely (see libc.h). */
#include "preload/libc.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "preload/rawsys.h"

struct libc_fns libc;
atomic_bool libc_ready;

static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

/* Writes a fixed message with the raw syscall: nothing here may call a hooked function. */
static void die_unresolved(const char *name)
{
	static const char pre[] = "tlsshim: cannot find the real libc function ";
	RAW_SYSCALL3(SYS_write, 2, pre, sizeof(pre) - 1);
	RAW_SYSCALL3(SYS_write, 2, name, strlen(name));
	RAW_SYSCALL3(SYS_write, 2, "; the shim cannot work in this process\n", 39);
	abort();
}

static void *lookup(const char *name, bool required)
{
	void *fn = dlsym(RTLD_NEXT, name);
	/* RTLD_NEXT can only find ourselves if the library was loaded twice: that would recurse forever. */
	void *self = dlsym(RTLD_DEFAULT, name);
	if (fn && self == fn) {
		Dl_info a, b;
		if (dladdr(fn, &a) && dladdr((void *)lookup, &b) && a.dli_fbase == b.dli_fbase)
			fn = NULL;
	}
	if (!fn && required)
		die_unresolved(name);
	return fn;
}

#define REQUIRED(name) libc.name = (__typeof__(libc.name))lookup(#name, true)
#define OPTIONAL(name) libc.name = (__typeof__(libc.name))lookup(#name, false)

static void resolve_all(void)
{
	REQUIRED(socket);
	REQUIRED(connect);
	REQUIRED(listen);
	REQUIRED(accept);
	REQUIRED(accept4);
	REQUIRED(close);
	OPTIONAL(close_range);
	OPTIONAL(closefrom);
	REQUIRED(shutdown);
	REQUIRED(dup);
	REQUIRED(dup2);
	REQUIRED(dup3);
	REQUIRED(fcntl);
	REQUIRED(read);
	REQUIRED(write);
	REQUIRED(recv);
	REQUIRED(send);
	REQUIRED(recvfrom);
	REQUIRED(sendto);
	REQUIRED(readv);
	REQUIRED(writev);
	REQUIRED(recvmsg);
	REQUIRED(sendmsg);
	REQUIRED(recvmmsg);
	REQUIRED(sendmmsg);
	REQUIRED(preadv2);
	REQUIRED(pwritev2);
	REQUIRED(sendfile);
	REQUIRED(splice);
	REQUIRED(copy_file_range);
	REQUIRED(pread);
	REQUIRED(poll);
	REQUIRED(ppoll);
	REQUIRED(select);
	REQUIRED(pselect);
	REQUIRED(epoll_wait);
	REQUIRED(epoll_pwait);
	OPTIONAL(epoll_pwait2);
	REQUIRED(epoll_ctl);
	REQUIRED(epoll_create);
	REQUIRED(epoll_create1);
	REQUIRED(ioctl);
	REQUIRED(getsockopt);
	REQUIRED(getpeername);
	REQUIRED(setsockopt);
	REQUIRED(fdopen);
	REQUIRED(vdprintf);
	REQUIRED(getaddrinfo);
	REQUIRED(freeaddrinfo);
	REQUIRED(gethostbyname);
	REQUIRED(gethostbyname2);
	REQUIRED(gethostbyname_r);
	REQUIRED(gethostbyname2_r);
	REQUIRED(fork);
	OPTIONAL(_Fork);
	REQUIRED(posix_spawn);
	REQUIRED(posix_spawnp);
	REQUIRED(posix_spawn_file_actions_init);
	REQUIRED(posix_spawn_file_actions_destroy);
	REQUIRED(posix_spawn_file_actions_adddup2);
	REQUIRED(posix_spawn_file_actions_addclose);
	REQUIRED(posix_spawn_file_actions_addopen);
	OPTIONAL(posix_spawn_file_actions_addclosefrom_np);
	OPTIONAL(posix_spawn_file_actions_addchdir_np);
	OPTIONAL(posix_spawn_file_actions_addfchdir_np);
	OPTIONAL(aio_read);
	OPTIONAL(aio_write);
	OPTIONAL(aio_fsync);
	OPTIONAL(lio_listio);
	OPTIONAL(aio_read64);
	OPTIONAL(aio_write64);
	OPTIONAL(aio_fsync64);
	OPTIONAL(lio_listio64);
	libc.write_nocancel = (__typeof__(libc.write_nocancel))lookup("__write_nocancel", false);
	libc.read_nocancel = (__typeof__(libc.read_nocancel))lookup("__read_nocancel", false);
	libc.close_nocancel = (__typeof__(libc.close_nocancel))lookup("__close_nocancel", false);
	OPTIONAL(pidfd_getfd);
	OPTIONAL(getaddrinfo_a);
	OPTIONAL(gai_error);
	OPTIONAL(gai_suspend);
	REQUIRED(fileno);
	REQUIRED(fileno_unlocked);
	libc.io_file_attach = (__typeof__(libc.io_file_attach))lookup("_IO_file_attach", false);
	atomic_store_explicit(&libc_ready, true, memory_order_release);
}

void libc_resolve(void)
{
	pthread_once(&resolve_once, resolve_all);
}
