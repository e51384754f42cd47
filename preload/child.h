/* child.h: is this code running in a child that shares the parent's memory?
 * A vfork() child, a clone(CLONE_VM) child, and (conservatively) a child of _Fork() or syscall(SYS_fork),
 * in which no atfork handler ran, all see the parent's fd table, connections and locks as they were. The
 * rule there (README, "Processes"): hooks may read shared state but never write it; close/close_range
 * close the kernel fd only; data calls on a TLS fd fail with EBADF; calls that would carry a TLS fd into
 * the next program image (dup2(tls, 1), F_SETFD 0, FIONCLEX, dup of a TLS fd) fail with EBADF.
 * Only the TLS and state-changing paths ask (one getpid() system call); the pass-through path never does. */
#ifndef TLSSHIM_CHILD_H
#define TLSSHIM_CHILD_H

#include <stdbool.h>

/* True in such a child. Costs a thread-local load and, outside a vfork window, one getpid(). */
bool child_shares_parent_memory(void);

/* Refuses a call on TLS fd `fd` in such a child: one reason line naming `what`, errno = EBADF, -1. */
int child_refuse(int fd, const char *what);

/* Records this process's pid; called from the constructor and the atfork child handler. */
void child_record_pid(void);

#endif
