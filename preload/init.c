/* init.c: the library's constructor and process-wide state (see shim.h). */
#include "preload/shim.h"
#include "preload/audit.h"
#include "preload/conn.h"
#include "preload/child.h"
#include "preload/session.h"
#include "preload/stats.h"
#include "preload/libc.h"
#include "preload/log.h"
#include "preload/tlsctx.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Written once inside init_once (pthread_once), read-only afterwards: no lock needed to read. */
static struct policy the_policy;
static bool policy_ok;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* One context per rule, built on the first connect that needs it and kept for the process's life. The
 * array is allocated once (init_once); each slot is written once, by a compare-and-swap, and read with an
 * atomic load. Building reads the rule's CA, certificate and key files, so it runs with no lock held:
 * two threads that miss at once both build, one context wins and the other is freed. A context being
 * built is private to its thread until the swap, so a fork meanwhile leaves nothing shared half-made. */
static _Atomic(WOLFSSL_CTX *) *rule_ctx;

static void load_config(void)
{
	libc_resolve();
	log_init();
	audit_init();
	keylog_init();
	stats_init();
	const char *rules = secure_getenv("TLSSHIM_RULES");
	const char *file = secure_getenv("TLSSHIM_POLICY");
	if (rules && !*rules)
		rules = NULL;
	if (file && !*file)
		file = NULL;
	struct policy_error err;
	if (policy_load(&the_policy, rules, file, &err) != 0) {
		log_msg(LOG_ERROR,
			"%s:%u:%u: %s; every TCP connect fails with EACCES until the policy is fixed",
			err.source, err.line, err.column, err.message);
		policy_ok = false;
		return;
	}
	policy_ok = true;
	stats_policy_loaded(&the_policy);
	if (the_policy.n_rules) {
		rule_ctx = calloc(the_policy.n_rules, sizeof(*rule_ctx));
		if (!rule_ctx) {
			log_msg(LOG_ERROR,
				"out of memory loading the policy; every TCP connect fails with EACCES");
			policy_ok = false;
		}
	}
	log_msg(LOG_DEBUG, "policy loaded: %zu rules", the_policy.n_rules);
}

void shim_init(void)
{
	pthread_once(&init_once, load_config);
}

const struct policy *shim_policy(void)
{
	return &the_policy;
}

bool shim_policy_ok(void)
{
	return policy_ok;
}

void *shim_rule_ctx(const struct policy_rule *rule, char *err, unsigned long errlen)
{
	size_t idx = (size_t)(rule - the_policy.rules);
	WOLFSSL_CTX *ctx = atomic_load_explicit(&rule_ctx[idx], memory_order_acquire);
	if (ctx)
		return ctx;
	WOLFSSL_CTX *made = tlsctx_new(&rule->tls, err, errlen); /* files read here: no lock held */
	if (!made)
		return NULL;
	WOLFSSL_CTX *expected = NULL;
	if (atomic_compare_exchange_strong_explicit(&rule_ctx[idx], &expected, made, memory_order_acq_rel,
						    memory_order_acquire))
		return made;
	wolfSSL_CTX_free(made); /* another thread's won; ours was never shared */
	return expected;
}

__attribute__((constructor)) static void tlsshim_constructor(void)
{
	shim_init(); /* fork handlers: forkgate.c */
}

/* At exit the kernel closes the fds without telling anyone: end our sessions properly first, within a
 * bounded time (a peer that does not read must not hold the program's exit up). */
__attribute__((destructor)) static void tlsshim_destructor(void)
{
	if (child_shares_parent_memory()) /* a clone(CLONE_VM) child's exit: the sessions are the parent's */
		return;
	fflush(NULL); /* exit flushes stdio only after destructors: data for TLS fds must go before
			 close_notify */
	conn_end_all_at_exit(1000);
	stats_at_exit(); /* TLSSHIM_STATS and the last TLSSHIM_METRICS_FILE */
	audit_at_exit();
}
