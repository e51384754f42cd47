/* chain.c: trust anchors parsed from a rule's CA options, and the certification path from the leaf to
 * one of them, built and signature-checked here (see chain.h). */
#include "preload/chain.h"
#include "preload/der.h"
#include "preload/tlsctx.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/sha256.h>

#define NAME_HASH_LEN	32	   /* room for wolfCrypt's subject/issuer name hashes */
#define MAX_ANCHOR_FILE (8u << 20) /* a CA file larger than this is not read */
#define PEM_BEGIN	"-----BEGIN CERTIFICATE-----"
#define PEM_END		"-----END CERTIFICATE-----"

/* What the path search needs of one certificate. */
struct cert_info {
	uint8_t subject[NAME_HASH_LEN], issuer[NAME_HASH_LEN]; /* wolfCrypt's hashes of the DER names */
	bool is_ca, self_issued;
	uint8_t *key; /* the public key as wolfCrypt's signature check takes it (DecodedCert.publicKey) */
	word32 key_len, key_oid;
	uint8_t spki_sha256[32];
};

struct chain_anchors {
	size_t n;
	struct cert_info *v;
};

static int cert_info_parse(const uint8_t *der, size_t len, struct cert_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	const uint8_t *spki;
	size_t spki_len;
	if (len == 0 || len > 0xffffffffu || der_cert_spki(der, len, &spki, &spki_len) != 0 ||
	    wc_Sha256Hash(spki, (word32)spki_len, ci->spki_sha256) != 0)
		return -1;
	DecodedCert dc;
	wc_InitDecodedCert(&dc, der, (word32)len, NULL);
	int r = -1;
	_Static_assert(sizeof(dc.subjectHash) <= NAME_HASH_LEN, "name hash fits");
	if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) == 0 && dc.publicKey && dc.pubKeySize > 0) {
		memcpy(ci->subject, dc.subjectHash, sizeof(dc.subjectHash));
		memcpy(ci->issuer, dc.issuerHash, sizeof(dc.issuerHash));
		ci->is_ca = dc.isCA;
		ci->self_issued = memcmp(ci->subject, ci->issuer, sizeof(ci->subject)) == 0;
		ci->key = malloc(dc.pubKeySize);
		if (ci->key) {
			memcpy(ci->key, dc.publicKey, dc.pubKeySize);
			ci->key_len = dc.pubKeySize;
			ci->key_oid = dc.keyOID;
			r = 0;
		}
	}
	wc_FreeDecodedCert(&dc);
	return r;
}

static void cert_info_free(struct cert_info *ci)
{
	free(ci->key);
	ci->key = NULL;
}

/* der was signed by the key of `issuer` (and the names chain). */
static bool issued_by(const uint8_t *der, size_t len, const struct cert_info *child,
		      const struct cert_info *issuer)
{
	return memcmp(child->issuer, issuer->subject, sizeof(child->issuer)) == 0 &&
	       wc_CheckCertSigPubKey(der, (word32)len, NULL, issuer->key, issuer->key_len, issuer->key_oid) ==
		   0;
}

/* ---- anchors ---- */

static int anchors_add(struct chain_anchors *a, size_t *cap, const uint8_t *der, size_t len)
{
	if (a->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 32;
		struct cert_info *nv = realloc(a->v, ncap * sizeof(*nv));
		if (!nv)
			return -1;
		a->v = nv;
		*cap = ncap;
	}
	if (cert_info_parse(der, len, &a->v[a->n]) ==
	    0) /* one a parser rejects is skipped, as wolfSSL does */
		a->n++;
	return 0;
}

static char *read_small_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	struct stat st;
	char *buf = NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
	    (unsigned long long)st.st_size <= MAX_ANCHOR_FILE)
		buf = malloc((size_t)st.st_size + 1);
	size_t n = 0;
	while (buf && n < (size_t)st.st_size) {
		ssize_t k = pread(fd, buf + n, (size_t)st.st_size - n, (off_t)n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (buf) {
		buf[n] = '\0';
		*len = n;
	}
	return buf;
}

/* Every PEM certificate in a file (or the file as one DER certificate when it holds no PEM). */
static int anchors_load_file(struct chain_anchors *a, size_t *cap, const char *path)
{
	size_t len = 0;
	char *text = read_small_file(path, &len);
	if (!text)
		return 0;
	int r = 0;
	bool any_pem = false;
	const char *p = text, *end = text + len;
	while (r == 0 && (p = strstr(p, PEM_BEGIN)) != NULL) {
		const char *e = strstr(p, PEM_END);
		if (!e)
			break;
		e += strlen(PEM_END);
		any_pem = true;
		size_t pem_len = (size_t)(e - p);
		uint8_t *der = malloc(pem_len);
		int der_len = der ? wc_CertPemToDer((const unsigned char *)p, (int)pem_len, der, (int)pem_len,
						    CERT_TYPE)
				  : -1;
		if (!der)
			r = -1;
		else if (der_len > 0)
			r = anchors_add(a, cap, der, (size_t)der_len);
		free(der);
		p = e;
	}
	if (r == 0 && !any_pem && len > 0 && text < end)
		r = anchors_add(a, cap, (const uint8_t *)text, len);
	free(text);
	return r;
}

static int anchors_load_dir(struct chain_anchors *a, size_t *cap, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *de;
	int r = 0;
	char path[4096];
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
			continue;
		r = anchors_load_file(a, cap, path);
	}
	closedir(d);
	return r;
}

static void anchors_free(struct chain_anchors *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		cert_info_free(&a->v[i]);
	free(a->v);
	free(a);
}

struct anchors_entry {
	const struct policy_tls_opts *opts;
	struct chain_anchors *set;
	struct anchors_entry *next;
};

/* Published anchor sets, one per rule that needs them. Pushed with a compare-and-swap by
 * chain_anchors_prepare (from whichever thread builds the rule's context), never removed or changed
 * afterwards, read by chain_anchors_find without a lock: nothing here can be held across fork. */
static _Atomic(struct anchors_entry *) published;

const struct chain_anchors *chain_anchors_find(const struct policy_tls_opts *o)
{
	for (struct anchors_entry *e = atomic_load_explicit(&published, memory_order_acquire); e; e = e->next)
		if (e->opts == o)
			return e->set;
	return NULL;
}

size_t chain_anchors_count(const struct chain_anchors *a)
{
	return a ? a->n : 0;
}

int chain_anchors_prepare(const struct policy_tls_opts *o, char *err, size_t errlen)
{
	if (chain_anchors_find(o))
		return 0;
	struct chain_anchors *a = calloc(1, sizeof(*a));
	struct anchors_entry *e = calloc(1, sizeof(*e));
	size_t cap = 0;
	int r = a && e ? 0 : -1;
	if (r == 0 && !o->ca_file && !o->ca_dir)
		r = anchors_load_file(a, &cap, TLSCTX_SYSTEM_CA_FILE);
	if (r == 0 && o->ca_file)
		r = anchors_load_file(a, &cap, o->ca_file);
	if (r == 0 && o->ca_dir)
		r = anchors_load_dir(a, &cap, o->ca_dir);
	if (r != 0 || a->n == 0) {
		if (r != 0)
			snprintf(err, errlen, "out of memory loading the trust anchors for pin-sha256=");
		else
			snprintf(err, errlen, "%s%s%s%s: no CA certificate the pin check can use",
				 o->ca_file ? "ca-file=" : (o->ca_dir ? "" : "the system store "),
				 o->ca_file ? o->ca_file : (o->ca_dir ? "" : TLSCTX_SYSTEM_CA_FILE),
				 o->ca_dir ? " ca-dir=" : "", o->ca_dir ? o->ca_dir : "");
		anchors_free(a);
		free(e);
		return -1;
	}
	e->opts = o;
	e->set = a;
	struct anchors_entry *head = atomic_load_explicit(&published, memory_order_relaxed);
	do
		e->next = head;
	while (!atomic_compare_exchange_weak_explicit(&published, &head, e, memory_order_release,
						      memory_order_relaxed));
	return 0;
}

/* ---- the path ---- */

static void path_add(struct chain_path *p, const struct cert_info *ci, int sent_index)
{
	memcpy(p->spki_sha256[p->n], ci->spki_sha256, 32);
	p->sent_index[p->n++] = sent_index;
}

int chain_build(const uint8_t *const *certs, const size_t *lens, unsigned n_certs,
		const struct chain_anchors *anchors, struct chain_path *out)
{
	memset(out, 0, sizeof(*out));
	if (n_certs == 0)
		return -1;
	if (n_certs > CHAIN_MAX_SENT)
		n_certs = CHAIN_MAX_SENT;
	struct cert_info sent[CHAIN_MAX_SENT];
	bool usable[CHAIN_MAX_SENT], used[CHAIN_MAX_SENT] = {false};
	for (unsigned i = 0; i < n_certs; i++)
		usable[i] = cert_info_parse(certs[i], lens[i], &sent[i]) == 0;
	int r = -1;
	if (!usable[0])
		goto out;
	r = 0;
	unsigned cur = 0;
	used[0] = true;
	path_add(out, &sent[0], 0);
	while (out->n < CHAIN_MAX_PATH) {
		const struct cert_info *child = &sent[cur];
		const struct cert_info *anchor = NULL;
		for (size_t i = 0; anchors && i < anchors->n && !anchor; i++)
			if (issued_by(certs[cur], lens[cur], child, &anchors->v[i]))
				anchor = &anchors->v[i];
		if (anchor) {
			path_add(out, anchor, -1);
			out->anchored = true;
			snprintf(out->stop, sizeof(out->stop), "ends at a trust anchor");
			break;
		}
		if (child->self_issued) {
			snprintf(out->stop, sizeof(out->stop),
				 "certificate %u the server sent is self-signed and not a trust anchor", cur);
			break;
		}
		int next = -1;
		for (unsigned j = 1; j < n_certs && next < 0; j++)
			if (usable[j] && !used[j] && sent[j].is_ca &&
			    issued_by(certs[cur], lens[cur], child, &sent[j]))
				next = (int)j;
		if (next < 0) {
			snprintf(out->stop, sizeof(out->stop),
				 "nothing the server sent%s verifies the signature of certificate %u",
				 anchors ? " and no trust anchor" : "", cur);
			break;
		}
		used[next] = true;
		cur = (unsigned)next;
		path_add(out, &sent[cur], next);
	}
	if (out->n == CHAIN_MAX_PATH && !out->anchored)
		snprintf(out->stop, sizeof(out->stop), "the path is longer than %d certificates",
			 CHAIN_MAX_PATH);
out:
	for (unsigned i = 0; i < n_certs; i++)
		if (usable[i])
			cert_info_free(&sent[i]);
	return r;
}

bool chain_path_has_pin(const struct chain_path *p, const uint8_t (*pins)[32], unsigned n)
{
	for (unsigned i = 0; i < p->n; i++)
		for (unsigned k = 0; k < n; k++)
			if (memcmp(p->spki_sha256[i], pins[k], 32) == 0)
				return true;
	return false;
}
