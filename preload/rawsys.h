/* rawsys.h: a system call made without going through any exported function, for two users:
 * the shim's own writes (log lines, the stats line, the key log: they must never meet a hook, and
 * syscall() itself is a hook now), and the pass-through path of the syscall() hook (syscall.c).
 * raw_syscall6 returns the kernel's answer (-errno on failure); raw_syscall sets errno like libc's
 * syscall(). */
#ifndef TLSSHIM_RAWSYS_H
#define TLSSHIM_RAWSYS_H

#include <errno.h>

static inline long raw_syscall6(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
#if defined(__x86_64__)
	long ret;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a1;
	register long x1 __asm__("x1") = a2;
	register long x2 __asm__("x2") = a3;
	register long x3 __asm__("x3") = a4;
	register long x4 __asm__("x4") = a5;
	register long x5 __asm__("x5") = a6;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
#else
#error "rawsys.h: add the system call instruction of this architecture"
#endif
}

/* libc's syscall() contract: -1 with errno for kernel errors (-4095..-1), else the result. */
static inline long raw_syscall(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long r = raw_syscall6(n, a1, a2, a3, a4, a5, a6);
	if ((unsigned long)r > -4096UL) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

#define RAW_SYSCALL3(n, a, b, c)    raw_syscall((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define RAW_SYSCALL4(n, a, b, c, d) raw_syscall((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

#endif
