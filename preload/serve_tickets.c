/* serve_tickets.c: session ticket keys for serve rules (wolfSSL's ticket callback). wolfSSL's own ticket
 * keys are made per context; ours are derived, so every process forked from the listener, and with
 * session-ticket-key-file= every replica behind one load balancer, can decrypt the others' tickets.
 *
 *  - The secret: 32 random bytes made once per process before the first listen/accept of a served
 *    socket (serve_tickets_init), so workers and children forked afterwards share it; or, with
 *    session-ticket-key-file=, the SHA-256 of that file's contents (at least 32 bytes: for example
 *    `head -c 32 /dev/urandom`), re-read when the file changes (with the rule's other files).
 *  - Epochs of SERVE_TICKET_EPOCH_S (1 hour) of wall-clock time: the key of epoch E for a rule is
 *    HMAC-SHA256(secret, "tlsshim ticket key" | rule source:line | E). New tickets use the current
 *    epoch; tickets of the previous epoch still decrypt (and are replaced by a new one), older ones are
 *    refused (a full handshake follows). A ticket therefore lives at most two hours.
 *  - The rule is part of the key: a ticket issued under one serve rule never resumes under another (it
 *    could skip that rule's client-certificate checks).
 *  - Tickets are sealed with ChaCha20-Poly1305; the key name carries the epoch and a rule tag, the AAD is
 *    the key name, the IV and the length.
 *  - The keys are the rule's (struct serve_ticket_keys in the rule's slot, serve_keys.c), shared by every
 *    context of the rule, so a certificate rotation allocates nothing that outlives its context. A
 *    changed session-ticket-key-file= takes effect when the context built with it is published. */
#include "preload/serve.h"
#include "preload/forkgate.h"
#include "preload/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/hmac.h>

#define SERVE_TICKET_EPOCH_S 3600

/* The process secret: written once under secret_once, read-only afterwards. */
static unsigned char process_secret[32];
static bool process_secret_ok;
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;

static void make_secret(void)
{
	size_t got = 0;
	while (got < sizeof(process_secret)) {
		ssize_t n = getrandom(process_secret + got, sizeof(process_secret) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		got += (size_t)n;
	}
	process_secret_ok = true;
}

void serve_tickets_init(void)
{
	pthread_once(&secret_once, make_secret);
}

static void be64(unsigned char out[8], unsigned long long v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)v;
}

static int hmac(const unsigned char *key, size_t klen, const char *label, const char *rule_id,
		unsigned long long epoch, unsigned char out[32])
{
	Hmac h;
	unsigned char e[8];
	be64(e, epoch);
	if (wc_HmacInit(&h, NULL, INVALID_DEVID) != 0)
		return -1;
	int r = wc_HmacSetKey(&h, WC_SHA256, key, (word32)klen) ||
		wc_HmacUpdate(&h, (const byte *)label, (word32)strlen(label)) ||
		wc_HmacUpdate(&h, (const byte *)rule_id, (word32)strlen(rule_id) + 1) ||
		wc_HmacUpdate(&h, e, 8) || wc_HmacFinal(&h, out);
	wc_HmacFree(&h);
	return r ? -1 : 0;
}

/* A file's secret: SHA-256 of its contents (32 bytes to 64 KiB). */
static int file_secret(const char *path, unsigned char out[32], char *err, size_t errlen)
{
	unsigned char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "session-ticket-key-file=%s: %s", path, strerror(errno));
		return -1;
	}
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 32) {
		snprintf(err, errlen, "session-ticket-key-file=%s: needs at least 32 bytes of secret", path);
		return -1;
	}
	int r = wc_Sha256Hash(buf, (word32)n, out);
	memset(buf, 0, sizeof(buf));
	return r == 0 ? 0 : -1;
}

static int ticket_cb(WOLFSSL *ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
		     unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ],
		     int enc, unsigned char *ticket, int in_len, int *out_len, void *user)
{
	struct serve_ticket_keys *k = user;
	unsigned long long now = (unsigned long long)time(NULL) / SERVE_TICKET_EPOCH_S, epoch = now;
	unsigned char key[32], aad[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ + 2];
	unsigned char secret[32], tag[8];
	char rule_id[sizeof(k->rule_id)];
	if (!k || in_len < 0 || in_len > 0xffff)
		return WOLFSSL_TICKET_RET_FATAL;
	forkgate_lock(&k->lock);
	bool set = k->set;
	memcpy(secret, k->secret, sizeof(secret));
	memcpy(tag, k->tag, sizeof(tag));
	memcpy(rule_id, k->rule_id, sizeof(rule_id));
	forkgate_unlock(&k->lock);
	if (!set)
		return WOLFSSL_TICKET_RET_FATAL;
	int ret = WOLFSSL_TICKET_RET_FATAL;
	if (enc) {
		be64(key_name, epoch);
		memcpy(key_name + 8, tag, 8);
		if (getrandom(iv, WOLFSSL_TICKET_IV_SZ, 0) != WOLFSSL_TICKET_IV_SZ)
			goto out;
	} else {
		ret = WOLFSSL_TICKET_RET_REJECT;
		if (memcmp(key_name + 8, tag, 8) != 0)
			goto out; /* another rule's (or a stranger's) ticket */
		epoch = 0;
		for (int i = 0; i < 8; i++)
			epoch = epoch << 8 | key_name[i];
		if (epoch != now && epoch + 1 != now)
			goto out; /* expired: a full handshake */
		ret = WOLFSSL_TICKET_RET_FATAL;
	}
	if (hmac(secret, sizeof(secret), "tlsshim ticket key", rule_id, epoch, key) != 0)
		goto out;
	memcpy(aad, key_name, WOLFSSL_TICKET_NAME_SZ);
	memcpy(aad + WOLFSSL_TICKET_NAME_SZ, iv, WOLFSSL_TICKET_IV_SZ);
	aad[sizeof(aad) - 2] = (unsigned char)(in_len >> 8);
	aad[sizeof(aad) - 1] = (unsigned char)in_len;
	int r;
	if (enc) {
		memset(mac, 0, WOLFSSL_TICKET_MAC_SZ);
		r = wc_ChaCha20Poly1305_Encrypt(key, iv, aad, sizeof(aad), ticket, (word32)in_len, ticket,
						mac);
	} else {
		r = wc_ChaCha20Poly1305_Decrypt(key, iv, aad, sizeof(aad), ticket, (word32)in_len, mac,
						ticket);
	}
	memset(key, 0, sizeof(key));
	if (r != 0) {
		ret = enc ? WOLFSSL_TICKET_RET_FATAL : WOLFSSL_TICKET_RET_REJECT;
		goto out;
	}
	*out_len = in_len;
	ret = !enc && epoch != now ? WOLFSSL_TICKET_RET_CREATE : WOLFSSL_TICKET_RET_OK;
out:
	memset(secret, 0, sizeof(secret));
	return ret;
}

int serve_tickets_derive(const struct policy_rule *rule, struct serve_ticket_material *m, char *err,
			 size_t errlen)
{
	const struct policy_serve_opts *s = &rule->tls.serve;
	if (s->ticket_key_file) {
		if (file_secret(s->ticket_key_file, m->secret, err, errlen) != 0)
			return -1;
	} else {
		serve_tickets_init();
		if (!process_secret_ok) {
			snprintf(err, errlen,
				 "no random bytes for the session ticket secret; set session-tickets=off");
			return -1;
		}
		memcpy(m->secret, process_secret, sizeof(m->secret));
	}
	char rule_id[sizeof(((struct serve_ticket_keys *)0)->rule_id)];
	snprintf(rule_id, sizeof(rule_id), "%s:%u", rule->source, rule->line);
	unsigned char t[32];
	if (hmac(m->secret, sizeof(m->secret), "tlsshim ticket name", rule_id, 0, t) != 0) {
		memset(m, 0, sizeof(*m));
		snprintf(err, errlen, "cannot derive session ticket keys");
		return -1;
	}
	memcpy(m->tag, t, sizeof(m->tag));
	return 0;
}

int serve_tickets_setup(WOLFSSL_CTX *ctx, const struct policy_rule *rule, struct serve_ticket_keys *k,
			char *err, size_t errlen)
{
	if (!rule->tls.serve.session_tickets)
		return 0;
	if (wolfSSL_CTX_set_TicketEncCb(ctx, ticket_cb) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_TicketEncCtx(ctx, k) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen,
			 "this wolfSSL build has no session ticket callback; set session-tickets=off");
		return -1;
	}
	wolfSSL_CTX_set_TicketHint(ctx, SERVE_TICKET_EPOCH_S);
	return 0; /* k is the rule's, not the context's: nothing to free with the context */
}

void serve_tickets_publish(struct serve_ticket_keys *k, const struct policy_rule *rule,
			   const struct serve_ticket_material *m)
{
	forkgate_lock(&k->lock);
	memcpy(k->secret, m->secret, sizeof(k->secret));
	memcpy(k->tag, m->tag, sizeof(k->tag));
	snprintf(k->rule_id, sizeof(k->rule_id), "%s:%u", rule->source, rule->line);
	k->set = true;
	forkgate_unlock(&k->lock);
}
