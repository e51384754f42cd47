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

/* One context per rule, built on the first connect that needs it and kept for the process's life.
 * ctx_lock serialises building (connect path only); readers load the pointer atomically. */
static _Atomic(WOLFSSL_CTX *) *rule_ctx;
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;

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
	pthread_mutex_lock(&ctx_lock);
	ctx = atomic_load_explicit(&rule_ctx[idx], memory_order_acquire);
	if (!ctx) {
		ctx = tlsctx_new(&rule->tls, err, errlen);
		if (ctx)
			atomic_store_explicit(&rule_ctx[idx], ctx, memory_order_release);
	}
	pthread_mutex_unlock(&ctx_lock);
	return ctx;
}

__attribute__((constructor)) static void tlsshim_constructor(void)
{
	shim_init();
	pthread_atfork(conn_atfork_prepare, conn_atfork_parent, conn_atfork_child);
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
