/* resolve.h: the rule-name table's part in fork (resolve.c; called by forkgate.c only). Its lock is the
 * one shim lock outside the fork gate: prepare takes it, the parent releases it, the child re-makes it and
 * the condition variable waiters sleep on. */
#ifndef TLSSHIM_RESOLVE_H
#define TLSSHIM_RESOLVE_H

void resolve_atfork_prepare(void);
void resolve_atfork_parent(void);
void resolve_atfork_child(void);

#endif
