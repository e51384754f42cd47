/* hooks.h: what the exported hook files share. Each hooks file owns one family of calls and stays thin:
 * look the fd up (one table load on the pass-through path), then hand the call to conn.c or to libc. */
#ifndef TLSSHIM_HOOKS_H
#define TLSSHIM_HOOKS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "preload/conn.h"
#include "preload/cork.h"
#include "preload/fdtab.h"
#include "preload/libc.h"
#include "preload/metrics.h"

/* Marks a function the shared object exports (everything else is hidden; see exports.map). */
#define EXPORT __attribute__((visibility("default")))

/* glibc declares the sockaddr arguments as transparent unions under _GNU_SOURCE. */
#if defined(__USE_GNU) && !defined(__cplusplus)
#define SOCKADDR_PTR(a)	      ((a).__sockaddr__)
#define CONST_SOCKADDR_PTR(a) ((a).__sockaddr__)
#else
#define SOCKADDR_PTR(a)	      (a)
#define CONST_SOCKADDR_PTR(a) (a)
#endif

/* The pass-through path of a data hook: for an fd that is not TLS (almost every call), one atomic load
 * for the resolved table and two loads in the fd table, then the real function.
 * The TLS path below it takes a reference with conn_get() and re-checks. */
#define PASS_THROUGH_UNLESS_TLS(fd, real_call)                                                               \
	do {                                                                                                 \
		libc_ensure();                                                                               \
		if (__builtin_expect(fdtab_load(fd) == NULL, 1))                                             \
			return real_call;                                                                    \
	} while (0)

/* The hottest hooks (read, write: every program's file and pipe I/O) are written with FAST_HOOK, which
 * splits them in two: the exported function is only the pass-through test (libc_ready, two fd-table
 * loads) and a tail jump to libc, about 10 instructions and no stack frame; everything else is in
 * NAME_slow (not inlined), whose body the macro's user writes and which starts as a hook written with
 * PASS_THROUGH_UNLESS_TLS would continue (libc resolved, fd looked up again by conn_get()). With the
 * test and the slow path in one function, gcc saves registers before the test (no shrink-wrapping),
 * twice the cost. bench/run.py's callgrind figure measures this path. The first parameter must be
 * named fd; args repeats the parameter names.
 *   FAST_HOOK(ssize_t, read, (int fd, void *buf, size_t len), (fd, buf, len)) { ...slow path... } */
#define FAST_HOOK(ret, name, params, args)                                                                   \
	static ret name##_slow params __attribute__((noinline));                                             \
	EXPORT ret name params                                                                               \
	{                                                                                                    \
		if (__builtin_expect(atomic_load_explicit(&libc_ready, memory_order_acquire), 1) &&          \
		    __builtin_expect(fdtab_load(fd) == NULL, 1))                                             \
			return libc.name args;                                                               \
		return name##_slow args;                                                                     \
	}                                                                                                    \
	static ret name##_slow params

/* Drops a reference without disturbing the errno a call is about to return; the end of every call on a
 * TLS fd, where the metrics file's periodic write rides (metrics.h: one load while it is not due). */
static inline void conn_put_keep_errno(struct conn *c)
{
	int e = errno;
	conn_put(c);
	metrics_tick();
	errno = e;
}

int hook_connect(int fd, const struct sockaddr *sa, socklen_t salen);

/* The policy's question "does rule name `name` resolve to this address?" (resolve.c). */
bool resolve_rule_name_has_addr(void *ctx, const char *name, int family, const uint8_t *addr);

/* For the fd-creating calls: an fd number the kernel just handed out can hold no old TLS state. */
void close_forget_stale(int fd);

/* glibc's stdin/stdout/stderr write through libc-internal calls the hooks never see. When a TLS socket
 * lands on fd 0, 1 or 2, the stream is replaced by one whose reads and writes go through the hooks
 * (stdio.c); stdio_flush_std_fd flushes what the old stream holds for the fd's previous file first. */
void stdio_adopt_std_fd(int fd);
void stdio_flush_std_fd(int fd);

/* sendto/sendmsg with MSG_FASTOPEN on an unconnected socket is a connect: the policy decides (connect.c).
 * Returns 1 to pass the call through, or -1 with errno set. */
int connect_check_fastopen(int fd, const struct sockaddr *sa, socklen_t salen);

#endif
