/* serve_keys.c: the key material of each serve rule (see serve.h): a wolfSSL server context built from
 * the rule's files at listen() (before a daemon drops privileges) or at the first accept, kept behind one
 * atomic pointer per rule and swapped when the files change.
 *
 * Rotation: at most once a second (on the accept path) one thread stats the rule's files (cert, key,
 * key password, client CA, CRL, ticket key file; stat follows symlinks, so a Kubernetes ..data swap is seen)
 * and, when anything changed, builds a new context without any lock held. Success swaps the pointer: new
 * handshakes use the new context, open sessions keep theirs (wolfSSL counts a context's sessions). A
 * failure (a key that does not match its certificate yet, an unreadable file) keeps the old context,
 * logs one line per change, and retries at the next check.
 *
 * Lifetime: a context is reference-counted by wolfSSL. The slot holds one reference, every caller of
 * serve_keys_get gets its own (a connection keeps the contexts of its SNI candidates until it is freed:
 * serve_state_free) and every session holds one (wolfSSL_new takes it, wolfSSL_free drops it). A
 * replaced context loses the slot's reference at the swap and is freed by wolfSSL when its last
 * connection or session goes, with everything it holds (certificates, key, CA store, CRLs). The
 * session ticket keys are not the context's but the slot's (struct serve_ticket_keys), so a rotation
 * allocates nothing that outlives its context. */
#include "preload/serve.h"
#include "preload/forkgate.h"
#include "preload/log.h"
#include "preload/shim.h"
#include "preload/tlsctx.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SERVE_CHECK_INTERVAL_MS 1000
#define SERVE_WATCHED_FILES	6

/* What stat said about one file, to notice a change. */
struct file_sig {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	int err; /* stat's errno, 0 when it worked */
};

/* One serve rule's material. ctx: the slot's reference, read (with a reference taken for the caller)
 * and replaced only under ctx_lock. next_check_ms: the next time a check may start. checking: 1 while
 * one thread checks (an exchange elects it; reset in a forked child). sigs, failed_sigs: written by the
 * checking thread, or by the first loader before it publishes ctx (no check runs while ctx is NULL).
 * tickets: the rule's ticket keys, with their own lock (serve.h); published with each ctx. */
struct serve_slot {
	WOLFSSL_CTX *ctx;
	struct serve_ticket_keys tickets;
	_Atomic long long next_check_ms;
	atomic_int checking;
	struct file_sig sigs[SERVE_WATCHED_FILES];	  /* the files the current ctx was built from */
	struct file_sig failed_sigs[SERVE_WATCHED_FILES]; /* the last state that failed to load (logged) */
	bool failed_logged;
};

/* One slot per policy rule (only serve rules use theirs): allocated once (slots_once), never freed. */
static struct serve_slot *slots;
static size_t n_slots;
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;

/* Guards every slot's ctx pointer: held only to read it and take a reference, or to swap it (no I/O,
 * no wait), inside the fork gate (forkgate.h), so a child never inherits it locked. */
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;

static void slots_atfork_child(void)
{
	for (size_t i = 0; i < n_slots; i++)
		atomic_store(&slots[i].checking,
			     0); /* a check another thread was making did not come along */
}

static void slots_init(void)
{
	const struct policy *p = shim_policy();
	slots = p->n_rules ? calloc(p->n_rules, sizeof(*slots)) : NULL;
	n_slots = slots ? p->n_rules : 0;
	for (size_t i = 0; i < n_slots; i++)
		pthread_mutex_init(&slots[i].tickets.lock, NULL);
	pthread_atfork(NULL, NULL, slots_atfork_child);
}

/* The slot's context with a reference for the caller, or NULL (none yet). */
static WOLFSSL_CTX *slot_ref(struct serve_slot *s)
{
	forkgate_lock(&ctx_lock);
	WOLFSSL_CTX *ctx = s->ctx;
	if (ctx && wolfSSL_CTX_up_ref(ctx) != WOLFSSL_SUCCESS)
		ctx = NULL;
	forkgate_unlock(&ctx_lock);
	return ctx;
}

void serve_keys_put(WOLFSSL_CTX *ctx)
{
	if (ctx) {
		forkgate_enter();      /* the context's reference count has a wolfSSL mutex */
		wolfSSL_CTX_free(ctx); /* drops one reference; wolfSSL frees it with the last */
		forkgate_leave();
	}
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sign_files(const struct policy_tls_opts *o, struct file_sig out[SERVE_WATCHED_FILES])
{
	const char *paths[SERVE_WATCHED_FILES] = {
	    o->cert, o->key, o->key_password_file, o->serve.client_ca, o->crl_file, o->serve.ticket_key_file};
	memset(out, 0, sizeof(struct file_sig) * SERVE_WATCHED_FILES);
	for (int i = 0; i < SERVE_WATCHED_FILES; i++) {
		struct stat st;
		if (!paths[i])
			continue;
		if (stat(paths[i], &st) != 0) {
			out[i].err = errno;
			continue;
		}
		out[i].dev = st.st_dev;
		out[i].ino = st.st_ino;
		out[i].size = st.st_size;
		out[i].mtime = st.st_mtim;
		out[i].ctime = st.st_ctim;
	}
}

static bool sigs_equal(const struct file_sig *a, const struct file_sig *b)
{
	for (int i = 0; i < SERVE_WATCHED_FILES; i++)
		if (a[i].dev != b[i].dev || a[i].ino != b[i].ino || a[i].size != b[i].size ||
		    a[i].err != b[i].err || a[i].mtime.tv_sec != b[i].mtime.tv_sec ||
		    a[i].mtime.tv_nsec != b[i].mtime.tv_nsec || a[i].ctime.tv_sec != b[i].ctime.tv_sec ||
		    a[i].ctime.tv_nsec != b[i].ctime.tv_nsec)
			return false;
	return true;
}

static struct serve_slot *slot_of(const struct policy_rule *rule)
{
	pthread_once(&slots_once, slots_init);
	size_t idx = (size_t)(rule - shim_policy()->rules);
	return idx < n_slots ? &slots[idx] : NULL;
}

/* A new context for the rule, its ticket callback pointing at the slot's keys, and the ticket material
 * to publish with it (tm). File I/O: no lock held. */
static WOLFSSL_CTX *build(const struct policy_rule *rule, struct serve_slot *s,
			  struct serve_ticket_material *tm, char *err, size_t errlen)
{
	memset(tm, 0, sizeof(*tm));
	WOLFSSL_CTX *ctx = tlsctx_server_new(&rule->tls, serve_verify_callback, err, errlen);
	if (ctx && rule->tls.serve.session_tickets &&
	    (serve_tickets_derive(rule, tm, err, errlen) != 0 ||
	     serve_tickets_setup(ctx, rule, &s->tickets, err, errlen) != 0)) {
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Makes ctx (built with tm) the slot's, with ctx_lock held. */
static void publish_locked(const struct policy_rule *rule, struct serve_slot *s, WOLFSSL_CTX *ctx,
			   const struct serve_ticket_material *tm)
{
	if (rule->tls.serve.session_tickets)
		serve_tickets_publish(&s->tickets, rule, tm); /* lock order: ctx_lock, then the keys' */
	s->ctx = ctx;
}

/* A change seen by the check: load it, swap on success. Runs in the elected thread only, no lock. */
static void reload(const struct policy_rule *rule, struct serve_slot *s, const struct file_sig *now)
{
	char err[400];
	struct serve_ticket_material tm;
	WOLFSSL_CTX *ctx = build(rule, s, &tm, err, sizeof(err));
	if (!ctx) {
		if (!s->failed_logged || !sigs_equal(s->failed_sigs, now))
			log_msg(LOG_ERROR,
				"serve rule %s:%u: the changed certificate/key files do not load (%s); new "
				"connections keep the previous certificate, retrying every second (rotation "
				"needs files the serving user can read)",
				rule->source, rule->line, err);
		memcpy(s->failed_sigs, now, sizeof(s->failed_sigs));
		s->failed_logged = true;
		return;
	}
	memcpy(s->sigs, now, sizeof(s->sigs));
	s->failed_logged = false;
	forkgate_lock(&ctx_lock);
	WOLFSSL_CTX *old = s->ctx;
	publish_locked(rule, s, ctx, &tm);
	forkgate_unlock(&ctx_lock);
	memset(&tm, 0, sizeof(tm));
	serve_keys_put(old); /* freed when its last connection and session are gone */
	log_msg(LOG_INFO, "serve rule %s:%u: reloaded %s and %s", rule->source, rule->line, rule->tls.cert,
		rule->tls.key);
}

WOLFSSL_CTX *serve_keys_get(const struct policy_rule *rule, char *err, size_t errlen)
{
	struct serve_slot *s = slot_of(rule);
	if (!s) {
		snprintf(err, errlen, "out of memory for the serve rules' key material");
		return NULL;
	}
	long long now = now_ms();
	WOLFSSL_CTX *ctx = slot_ref(s);
	if (!ctx) { /* the first load: file I/O with no lock held; the first to finish publishes */
		struct file_sig sig[SERVE_WATCHED_FILES];
		struct serve_ticket_material tm;
		sign_files(&rule->tls, sig);
		ctx = build(rule, s, &tm, err, errlen);
		if (!ctx)
			return NULL;
		forkgate_lock(&ctx_lock);
		WOLFSSL_CTX *mine = ctx;
		if (!s->ctx) {
			memcpy(s->sigs, sig, sizeof(s->sigs));
			atomic_store(&s->next_check_ms, now + SERVE_CHECK_INTERVAL_MS);
			publish_locked(rule, s, ctx, &tm); /* the slot's reference */
			mine = NULL;
		} else {
			ctx = s->ctx; /* another thread published one first */
		}
		if (wolfSSL_CTX_up_ref(ctx) != WOLFSSL_SUCCESS)
			ctx = NULL;
		forkgate_unlock(&ctx_lock);
		memset(&tm, 0, sizeof(tm));
		serve_keys_put(mine);
		if (!ctx)
			snprintf(err, errlen, "cannot take a reference to the key material");
		return ctx;
	}
	if (now >= atomic_load_explicit(&s->next_check_ms, memory_order_relaxed) &&
	    atomic_exchange(&s->checking, 1) == 0) {
		atomic_store(&s->next_check_ms, now + SERVE_CHECK_INTERVAL_MS);
		struct file_sig sig[SERVE_WATCHED_FILES];
		sign_files(&rule->tls, sig);
		if (!sigs_equal(sig, s->sigs)) {
			reload(rule, s, sig);
			WOLFSSL_CTX *fresh = slot_ref(s);
			if (fresh) {
				serve_keys_put(ctx);
				ctx = fresh;
			}
		}
		atomic_store(&s->checking, 0);
	}
	return ctx;
}
