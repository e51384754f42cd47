/* child.c: detection of children that share the parent's memory (see child.h), and the hooks that make
 * them: vfork/__vfork (an x86_64 trampoline that flags the vfork window) and _Fork. */
#include "preload/child.h"
#include "preload/hooks.h"
#include "preload/log.h"

#include <pthread.h>
#include <unistd.h>
#include <sys/syscall.h>

#define CHILD_STR2(x) #x
#define CHILD_STR(x)  CHILD_STR2(x)

/* Set in the calling thread just before the vfork system call (child_vfork_enter); the child runs on
 * this thread's memory and sees it set; child_vfork_leave clears it when vfork returns to the parent. Only
 * the owning thread (or its vfork child) writes it, so it needs no lock. The default (dynamic) TLS model,
 * reached through the two functions below: an initial-exec variable would mark the whole library
 * STATIC_TLS, and dlopen() of it then fails with "cannot allocate memory in static TLS block". */
static __thread volatile char child_in_vfork;

__attribute__((visibility("hidden"), used)) void child_vfork_enter(void)
{
	child_in_vfork = 1;
}

__attribute__((visibility("hidden"), used)) void child_vfork_leave(void)
{
	child_in_vfork = 0;
}

/* The pid whose memory this is: written by the constructor and by the atfork child handler (each in a
 * process of its own, before any other thread of that process exists or while fork holds them still);
 * read by every TLS-path check. 0 until the constructor ran (then nothing is a child). */
static _Atomic pid_t child_recorded_pid;

/* Set in the child of _Fork(), whose memory is a private copy in which no atfork handler ran (another
 * thread's lock may be held forever): written once, in that child only, before _Fork returns there. */
static volatile bool child_of_unsynced_fork;

bool child_shares_parent_memory(void)
{
	if (child_in_vfork || child_of_unsynced_fork)
		return true;
	pid_t rec = atomic_load_explicit(&child_recorded_pid, memory_order_relaxed);
	return rec != 0 && getpid() != rec;
}

void child_record_pid(void)
{
	atomic_store_explicit(&child_recorded_pid, getpid(), memory_order_relaxed);
}

int child_refuse(int fd, const char *what)
{
	log_msg(LOG_ERROR,
		"fd %d: %s refused with EBADF: in a child that shares its parent's memory (vfork, "
		"clone(CLONE_VM)) or was made without fork handlers (_Fork, syscall(SYS_fork)) a TLS socket "
		"can be neither used nor passed to the next program; use it in the parent, or use fork()",
		fd, what);
	errno = EBADF;
	return -1;
}

/* Called by the trampoline when the vfork system call failed (err = -return value). */
__attribute__((visibility("hidden"), used)) int child_vfork_failed(int err)
{
	errno = err;
	return -1;
}

/* vfork and __vfork. The child returns on the parent's stack, so the return address is kept in a register
 * (%rdi survives the system call in both processes: registers are per task, only memory is shared), as
 * glibc's own vfork does. The flag is set with a call made before the system call (the stack is aligned
 * for it by the sub) and cleared with a call in the parent only, after the child has left the stack. */
__asm__(
    ".text\n"
    ".globl vfork\n"
    ".type vfork, @function\n"
    ".globl __vfork\n"
    ".type __vfork, @function\n"
    "vfork:\n"
    "__vfork:\n"
    ".cfi_startproc\n"
    "	subq $8, %rsp\n"
    ".cfi_adjust_cfa_offset 8\n"
    "	call child_vfork_enter\n"
    "	addq $8, %rsp\n"
    ".cfi_adjust_cfa_offset -8\n"
    "	popq %rdi\n"
    ".cfi_adjust_cfa_offset -8\n"
    ".cfi_register rip, rdi\n"
    "	movl $" CHILD_STR(SYS_vfork) ", %eax\n"
				     "	syscall\n"
				     "	pushq %rdi\n"
				     ".cfi_adjust_cfa_offset 8\n"
				     ".cfi_rel_offset rip, 0\n"
				     "	testq %rax, %rax\n"
				     "	jz 1f\n" /* the child: the flag stays set until exec or _exit */
				     "	pushq %rax\n"
				     ".cfi_adjust_cfa_offset 8\n"
				     "	call child_vfork_leave\n"
				     "	popq %rax\n"
				     ".cfi_adjust_cfa_offset -8\n"
				     "	cmpq $-4095, %rax\n"
				     "	jae 2f\n"
				     "1:	ret\n"
				     "2:	negl %eax\n"
				     "	movl %eax, %edi\n"
				     "	jmp child_vfork_failed\n"
				     ".cfi_endproc\n"
				     ".size vfork, .-vfork\n"
				     ".size __vfork, .-__vfork\n");

EXPORT pid_t _Fork(void)
{
	libc_ensure();
	pid_t p = libc._Fork ? libc._Fork() : (pid_t)syscall(SYS_fork);
	if (p == 0)
		child_of_unsynced_fork = true;
	return p;
}

static void child_atfork_child(void)
{
	child_record_pid();
}

/* Early, so a hook called from another library's constructor already has the pid to compare with. */
__attribute__((constructor(101))) static void child_init(void)
{
	child_record_pid();
	pthread_atfork(NULL, NULL, child_atfork_child);
}
