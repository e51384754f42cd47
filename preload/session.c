/* session.c: session resumption cache and SSLKEYLOGFILE (see session.h). */
#include "preload/session.h"
#include "preload/forkgate.h"
#include "preload/log.h"
#include "preload/ownfd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cached_session {
	char key[SESSION_KEY_MAX];
	WOLFSSL_SESSION *sess; /* NULL: empty slot */
	unsigned long long used;
	unsigned long gen; /* forkgate_process_gen() when stored: a forked child never offers its parent's
			      tickets (the parent still holds them; a ticket is offered once) */
};

/* The cache: small, bounded, least recently used replaced. Guarded by cache_lock (taken inside the fork
 * gate); used at connect and when a ticket arrives, never per record. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached_session cache[SESSION_CACHE_SIZE];
static unsigned long long cache_clock;

bool session_offer(WOLFSSL *ssl, const char *key)
{
	/* Taken out of the cache, not copied: a ticket is used once (RFC 8446 C.4), so connections made
	 * at the same time never present the same ticket; each connection stores the session it got. */
	WOLFSSL_SESSION *sess = NULL;
	bool inherited = false;
	forkgate_lock(&cache_lock);
	for (size_t i = 0; i < SESSION_CACHE_SIZE; i++) {
		if (cache[i].sess && strcmp(cache[i].key, key) == 0) {
			sess = cache[i].sess;
			inherited = cache[i].gen != forkgate_process_gen();
			cache[i].sess = NULL;
			cache[i].key[0] = '\0';
			break;
		}
	}
	forkgate_unlock(&cache_lock);
	if (inherited) { /* a copy of the parent's: dropped here, lazily (fork itself walks nothing) */
		wolfSSL_SESSION_free(sess);
		return false;
	}
	if (!sess)
		return false;
	bool offered = wolfSSL_set_session(ssl, sess) == WOLFSSL_SUCCESS;
	wolfSSL_SESSION_free(sess);
	return offered;
}

uint32_t session_ticket_fingerprint(WOLFSSL *ssl)
{
	unsigned char ticket[2048];
	word32 len = sizeof(ticket);
	if (wolfSSL_get_SessionTicket(ssl, ticket, &len) != WOLFSSL_SUCCESS || len == 0)
		return 0;
	uint32_t h = 2166136261u; /* FNV-1a */
	for (word32 i = 0; i < len; i++)
		h = (h ^ ticket[i]) * 16777619u;
	return h ? h : 1;
}

bool session_store(WOLFSSL *ssl, const char *key, uint32_t stale_ticket)
{
	if (wolfSSL_version(ssl) == TLS1_3_VERSION) {
		uint32_t now = session_ticket_fingerprint(ssl);
		if (now == 0 || now == stale_ticket)
			return false; /* no ticket from this connection yet */
	}
	/* get1_session hands out the connection's live session object, which the connection keeps changing
	 * (a second TLS 1.3 ticket, ...) while another thread could resume from it: keep a copy. */
	WOLFSSL_SESSION *live = wolfSSL_get1_session(ssl);
	if (!live)
		return false;
	WOLFSSL_SESSION *sess = wolfSSL_SESSION_dup(live);
	wolfSSL_SESSION_free(live);
	if (!sess)
		return false;
	bool tls13 = wolfSSL_version(ssl) == TLS1_3_VERSION;
	if (!wolfSSL_SESSION_is_resumable(sess) || (tls13 && !wolfSSL_SESSION_has_ticket(sess))) {
		wolfSSL_SESSION_free(sess);
		return false;
	}
	forkgate_lock(&cache_lock);
	struct cached_session *slot = &cache[0];
	for (size_t i = 0; i < SESSION_CACHE_SIZE; i++) {
		if (cache[i].sess && strcmp(cache[i].key, key) == 0) {
			slot = &cache[i];
			break;
		}
		if (!cache[i].sess || cache[i].used < slot->used)
			slot = &cache[i];
		if (!cache[i].sess)
			break;
	}
	WOLFSSL_SESSION *old = slot->sess;
	snprintf(slot->key, sizeof(slot->key), "%s", key);
	slot->sess = sess;
	slot->used = ++cache_clock;
	slot->gen = forkgate_process_gen();
	forkgate_unlock(&cache_lock);
	if (old)
		wolfSSL_SESSION_free(old);
	return true;
}

/* ---- SSLKEYLOGFILE ---- */

/* The key log: keylog_on is set once by keylog_init (pthread_once), read-only afterwards. Its fd lives
 * in the program's fd table, where a daemon's closefrom(3) can close it and reuse the number: ownfd.c
 * checks it is still the key log before every line and opens the file again if not, so no secret is
 * ever written into the program's own file or socket. */
static bool keylog_on;
static struct ownfd keylog_sink;
static pthread_once_t keylog_once = PTHREAD_ONCE_INIT;

static void keylog_open(void)
{
	const char *path = secure_getenv("SSLKEYLOGFILE");
	if (!path || !*path)
		return;
	if (ownfd_open(&keylog_sink, path) != 0) {
		log_msg(LOG_ERROR, "SSLKEYLOGFILE=%s: %s; no key log is written", path, strerror(errno));
		return;
	}
	keylog_on = true;
#ifndef HAVE_SECRET_CALLBACK
	log_msg(
	    LOG_WARN,
	    "SSLKEYLOGFILE: this wolfSSL build has no secret callback (HAVE_SECRET_CALLBACK): only TLS 1.2 "
	    "sessions are logged");
#endif
	log_msg(LOG_WARN,
		"SSLKEYLOGFILE=%s: the secrets of every TLS connection of this process are written there; "
		"anyone who can read it can decrypt the traffic (debugging only)",
		path);
}

void keylog_init(void)
{
	pthread_once(&keylog_once, keylog_open);
}

static void hex(char *out, const unsigned char *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static void keylog_line(WOLFSSL *ssl, const char *label, const unsigned char *secret, size_t len)
{
	unsigned char random[32];
	if (!keylog_on || len > 64 ||
	    wolfSSL_get_client_random(ssl, random, sizeof(random)) != sizeof(random))
		return;
	char r[65], s[129], line[256];
	hex(r, random, sizeof(random));
	hex(s, secret, len);
	int n = snprintf(line, sizeof(line), "%s %s %s\n", label, r, s);
	if (n > 0 && (size_t)n < sizeof(line))
		ownfd_write(&keylog_sink, line, (size_t)n);
}

#ifdef HAVE_SECRET_CALLBACK
static int tls13_secret(WOLFSSL *ssl, int id, const unsigned char *secret, int len, void *ctx)
{
	static const char *const labels[] = {
	    [CLIENT_EARLY_TRAFFIC_SECRET] = "CLIENT_EARLY_TRAFFIC_SECRET",
	    [CLIENT_HANDSHAKE_TRAFFIC_SECRET] = "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
	    [SERVER_HANDSHAKE_TRAFFIC_SECRET] = "SERVER_HANDSHAKE_TRAFFIC_SECRET",
	    [CLIENT_TRAFFIC_SECRET] = "CLIENT_TRAFFIC_SECRET_0",
	    [SERVER_TRAFFIC_SECRET] = "SERVER_TRAFFIC_SECRET_0",
	    [EARLY_EXPORTER_SECRET] = "EARLY_EXPORTER_SECRET",
	    [EXPORTER_SECRET] = "EXPORTER_SECRET",
	};
	if (id >= 0 && (size_t)id < sizeof(labels) / sizeof(labels[0]) && labels[id] && len > 0)
		keylog_line(ssl, labels[id], secret, (size_t)len);
	return 0;
}

#endif

void keylog_arm(WOLFSSL *ssl)
{
	if (!keylog_on)
		return;
#ifdef HAVE_SECRET_CALLBACK
	wolfSSL_set_tls13_secret_cb(ssl, tls13_secret, NULL);
#endif
	wolfSSL_KeepArrays(ssl); /* the client random outlives the handshake until keylog_tls12 */
}

void keylog_tls12(WOLFSSL *ssl)
{
	if (!keylog_on)
		return;
	if (wolfSSL_version(ssl) != TLS1_3_VERSION) {
		unsigned char master[48];
		WOLFSSL_SESSION *sess = wolfSSL_get_session(ssl);
		int n = sess ? wolfSSL_SESSION_get_master_key(sess, master, sizeof(master)) : 0;
		if (n == (int)sizeof(master))
			keylog_line(ssl, "CLIENT_RANDOM", master, sizeof(master));
	}
	wolfSSL_FreeArrays(ssl);
}
