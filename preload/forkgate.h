/* forkgate.h: the shim's one fork handler, and what makes every shim lock safe across fork().
 *
 * The rule (README, "Locks and fork"):
 *  - No shim lock is held across DNS, file reads or the network: a lock guards memory only, for a few
 *    instructions, so a fork can always wait for it to be free.
 *  - Every shim mutex is taken inside the fork gate (forkgate_lock/forkgate_unlock), and so is every
 *    wolfSSL call (wolfSSL takes its own mutexes: session cache, RNG, context reference counts, CA store).
 *    The gate is a reader-writer lock that threads take shared, re-entrantly; the atfork prepare handler
 *    takes it exclusive, which waits until no thread holds any shim lock or is inside wolfSSL. The child
 *    therefore inherits every lock free and every structure consistent; nothing is walked per connection
 *    (the fork costs the same with 1 or 10,000 connections).
 *  - The one lock that is not inside the gate is the rule-name table's (resolve.c), because its waiters
 *    sleep on a condition variable while another thread asks DNS: fork takes it in the prepare handler and
 *    the child re-initialises it.
 *  - Connections learn that a fork happened lazily, from forkgate_forks() (conn.c), not from the handler.
 *  - A child that shares the parent's memory (vfork, clone(CLONE_VM): child.h) never reaches a lock: the
 *    hooks refuse or pass through before they would take one. */
#ifndef TLSSHIM_FORKGATE_H
#define TLSSHIM_FORKGATE_H

#include <pthread.h>

/* Enters / leaves the gate (shared, re-entrant in one thread). Cheap: a thread-local counter and, at the
 * outermost level, one uncontended reader lock. Never wait for the network or a file inside it. */
void forkgate_enter(void);
void forkgate_leave(void);

/* A shim mutex, taken inside the gate. */
static inline void forkgate_lock(pthread_mutex_t *m)
{
	forkgate_enter();
	pthread_mutex_lock(m);
}

static inline void forkgate_unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
	forkgate_leave();
}

/* The one lock outside the gate (resolve.c's rule-name table) hands its fork handlers here, once, from a
 * constructor: prepare runs after the gate is taken, parent and child before it is given back. */
void forkgate_register_leaf(void (*prepare)(void), void (*parent)(void), void (*child)(void));

/* How many forks this process's memory has gone through (in the parent and in the child: both count the
 * fork). Read lock-free; conn.c compares it with the value a connection last saw. */
unsigned long forkgate_forks(void);

/* Bumped in the child only: a marker stamped with another value was left by a thread of an ancestor
 * process, which does not exist here (resolve.c's in-flight lookups). */
unsigned long forkgate_process_gen(void);

#endif
