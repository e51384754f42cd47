/* forkgate.c: the fork gate and the fork handlers that keep the shim's locks consistent (forkgate.h).
 * (Other files register child-only handlers that reset their own state; none of them takes a lock.) */
#include "preload/forkgate.h"

#include <stdatomic.h>
#include <stdbool.h>

/* The gate. Writer-preferring, so a fork is not starved by threads that keep entering; taken shared by
 * every thread that takes a shim mutex or calls wolfSSL, exclusive only by forkgate_prepare. Re-made (not
 * unlocked) in the child: glibc records a writer by thread id, which the child's thread does not share. */
static pthread_rwlock_t gate = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

/* Per thread: how deep in the gate this thread is (only the outermost enter touches the lock), and whether
 * this thread holds the gate exclusive for a fork (then the program's own fork handlers may call hooks
 * that enter the gate: they must not wait for themselves). Only the owning thread touches them. */
static __thread unsigned gate_depth;
static __thread bool gate_forking;

/* Whether forkgate_prepare took the gate (not when fork was called from inside it: a signal handler that
 * forks while its thread is in the gate cannot wait for itself). Written by the forking thread between
 * prepare and parent/child, while every other thread that could read it is kept out by the gate. */
static bool gate_taken_for_fork;

/* See forkgate.h. Incremented by the atfork parent and child handlers; read with relaxed loads. */
static _Atomic unsigned long fork_count;
static _Atomic unsigned long process_gen = 1;

/* The handlers of the one lock outside the gate (resolve.c), set once by its constructor (before any
 * thread can fork) and read-only afterwards. */
static void (*leaf_prepare)(void), (*leaf_parent)(void), (*leaf_child)(void);

void forkgate_register_leaf(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
	leaf_prepare = prepare;
	leaf_parent = parent;
	leaf_child = child;
}

void forkgate_enter(void)
{
	if (gate_depth++ == 0 && !gate_forking)
		pthread_rwlock_rdlock(&gate);
}

void forkgate_leave(void)
{
	if (--gate_depth == 0 && !gate_forking)
		pthread_rwlock_unlock(&gate);
}

unsigned long forkgate_forks(void)
{
	return atomic_load_explicit(&fork_count, memory_order_relaxed);
}

unsigned long forkgate_process_gen(void)
{
	return atomic_load_explicit(&process_gen, memory_order_relaxed);
}

static void forkgate_prepare(void)
{
	gate_taken_for_fork = false;
	if (gate_depth == 0) {
		pthread_rwlock_wrlock(&gate);
		gate_taken_for_fork = true;
		gate_forking = true;
	}
	if (leaf_prepare) /* after the gate: its holders never enter the gate (forkgate.h) */
		leaf_prepare();
}

static void forkgate_parent(void)
{
	if (leaf_parent)
		leaf_parent();
	atomic_fetch_add_explicit(&fork_count, 1, memory_order_relaxed);
	if (gate_taken_for_fork) {
		gate_forking = false;
		pthread_rwlock_unlock(&gate);
	}
}

static void forkgate_child(void)
{
	if (leaf_child)
		leaf_child();
	atomic_fetch_add_explicit(&fork_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&process_gen, 1, memory_order_relaxed);
	pthread_rwlock_t fresh = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
	gate = fresh;
	gate_forking = false;
	if (gate_depth > 0) /* forked from inside the gate: this thread still counts as in it */
		pthread_rwlock_rdlock(&gate);
}

/* Priority 102: after child.c's constructor (101) recorded the pid, before any other constructor can run
 * a hook. The handlers are registered once, for the process's life. */
__attribute__((constructor(102))) static void forkgate_init(void)
{
	pthread_atfork(forkgate_prepare, forkgate_parent, forkgate_child);
}
