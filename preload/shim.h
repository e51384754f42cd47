/* shim.h: the process-wide state of the library, built once at load time (init.c) and read-only after:
 * the policy, whether it loaded, and the wolfSSL context of each tls rule (built on first use). */
#ifndef TLSSHIM_SHIM_H
#define TLSSHIM_SHIM_H

#include <stdbool.h>

#include "policy/policy.h"

/* Loads the configuration exactly once (pthread_once). Every hook that needs the policy calls it:
 * hooks can run before our constructor, when another library's constructor connects. */
void shim_init(void);

/* The policy; valid after shim_init(). */
const struct policy *shim_policy(void);

/* False when the policy did not load: every TCP connect then fails with EACCES. */
bool shim_policy_ok(void);

/* The wolfSSL context for rule number idx (built and cached on first use), or NULL with err filled. */
void *shim_rule_ctx(const struct policy_rule *rule, char *err, unsigned long errlen);

#endif
