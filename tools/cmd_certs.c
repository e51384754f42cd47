/* cmd_certs.c: `tlsshim certs DIR [--name NAME]... [--ip IP]... [--force]`: a throw-away test PKI made
 * with wolfSSL's certificate generation: a CA, a server certificate (SANs from --name/--ip; default
 * localhost, 127.0.0.1 and ::1) and a client certificate; ECDSA P-256, SHA-256, 90 days. Writes
 * ca.pem ca.key server.pem server.key client.pem client.key (keys mode 0600) and prints the policy
 * lines that trust them.
 *
 * wolfSSL 5.5.4 as built here (scripts/build-wolfssl.sh) has no WOLFSSL_ALT_NAMES and no
 * WOLFSSL_CUSTOM_OID, so neither wc_SetAltNames* nor custom extensions can add a subjectAltName.
 * wc_MakeCert_ex therefore builds the TBSCertificate (names, validity, key, key usage, extended key
 * usage, key identifiers), this file appends the subjectAltName extension to its extensions with a
 * small DER writer, and wc_SignCert_ex signs the result. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/settings.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include "tools/cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: tlsshim certs DIR [--name NAME]... [--ip IP]... [--force]\n\n"
    "Makes a test CA, a server certificate and a client certificate (ECDSA P-256, SHA-256, 90 days) in\n"
    "DIR: ca.pem ca.key server.pem server.key client.pem client.key (keys mode 0600), and prints the\n"
    "policy lines that trust them. For tests and development only.\n\n"
    "  --name NAME  a DNS name for the server certificate (repeatable)\n"
    "  --ip IP      an IP address for the server certificate (repeatable)\n"
    "               (neither given: localhost, 127.0.0.1 and ::1)\n"
    "  --force      overwrite existing files\n";

#define MAX_SANS    32
#define CERT_DAYS   90
#define DER_MAX	    8192
#define PEM_MAX	    (DER_MAX * 2)
#define KEY_DER_MAX 256

struct san {
	bool ip;
	int family;
	uint8_t addr[16];
	char text[256];
};

/* ---- a minimal DER writer for the subjectAltName extension ---- */

struct dbuf {
	uint8_t b[DER_MAX];
	size_t n;
	bool overflow;
};

static void put(struct dbuf *d, const void *p, size_t n)
{
	if (d->overflow || n > sizeof(d->b) - d->n) {
		d->overflow = true;
		return;
	}
	memcpy(d->b + d->n, p, n);
	d->n += n;
}

static void put_header(struct dbuf *d, uint8_t tag, size_t len)
{
	uint8_t h[6] = {tag};
	size_t n = 1;
	if (len < 0x80) {
		h[n++] = (uint8_t)len;
	} else if (len < 0x100) {
		h[n++] = 0x81;
		h[n++] = (uint8_t)len;
	} else {
		h[n++] = 0x82;
		h[n++] = (uint8_t)(len >> 8);
		h[n++] = (uint8_t)len;
	}
	put(d, h, n);
}

static void put_tlv(struct dbuf *d, uint8_t tag, const void *body, size_t len)
{
	put_header(d, tag, len);
	put(d, body, len);
}

/* Extension ::= SEQUENCE { extnID 2.5.29.17, extnValue OCTET STRING { GeneralNames } } */
static int san_extension(const struct san *sans, size_t n, struct dbuf *out)
{
	static const uint8_t oid_san[] = {0x55, 0x1d, 0x11};
	struct dbuf names = {0}, names_seq = {0}, oct = {0}, ext = {0};
	for (size_t i = 0; i < n; i++) {
		if (sans[i].ip)
			put_tlv(&names, 0x87, sans[i].addr,
				sans[i].family == AF_INET ? 4 : 16); /* [7] iPAddress */
		else
			put_tlv(&names, 0x82, sans[i].text, strlen(sans[i].text)); /* [2] dNSName */
	}
	put_tlv(&names_seq, 0x30, names.b, names.n);
	put_tlv(&oct, 0x04, names_seq.b, names_seq.n);
	put_tlv(&ext, 0x06, oid_san, sizeof(oid_san));
	put(&ext, oct.b, oct.n);
	put_tlv(out, 0x30, ext.b, ext.n);
	return names.overflow || names_seq.overflow || oct.overflow || ext.overflow || out->overflow ? -1 : 0;
}

/* Reads one TLV header at p (bounded by end): tag, header size, body length. */
static int tlv(const uint8_t *p, const uint8_t *end, uint8_t *tag, size_t *hdr, size_t *len)
{
	if (end - p < 2)
		return -1;
	*tag = p[0];
	size_t l = p[1], h = 2;
	if (l & 0x80) {
		size_t k = l & 0x7f;
		if (k == 0 || k > 3 || (size_t)(end - p) < 2 + k)
			return -1;
		l = 0;
		for (size_t i = 0; i < k; i++)
			l = (l << 8) | p[2 + i];
		h += k;
	}
	if (l > (size_t)(end - p) - h)
		return -1;
	*hdr = h;
	*len = l;
	return 0;
}

/* Rewrites the TBSCertificate in buf (tbs_len bytes) with ext appended to its extensions ([3]).
 * Returns the new length, or -1. */
static int tbs_add_extension(uint8_t *buf, size_t tbs_len, size_t cap, const struct dbuf *ext)
{
	const uint8_t *end = buf + tbs_len;
	uint8_t tag;
	size_t hdr, len;
	if (tlv(buf, end, &tag, &hdr, &len) != 0 || tag != 0x30)
		return -1;
	struct dbuf body = {0}, out = {0};
	bool added = false;
	for (const uint8_t *p = buf + hdr; p < end;) {
		size_t ch, cl;
		if (tlv(p, end, &tag, &ch, &cl) != 0)
			return -1;
		if (tag == 0xa3) { /* [3] { SEQUENCE OF Extension } */
			uint8_t stag;
			size_t sh, sl;
			if (tlv(p + ch, p + ch + cl, &stag, &sh, &sl) != 0 || stag != 0x30)
				return -1;
			struct dbuf exts = {0}, seq = {0};
			put(&exts, p + ch + sh, sl);
			put(&exts, ext->b, ext->n);
			put_tlv(&seq, 0x30, exts.b, exts.n);
			put_tlv(&body, 0xa3, seq.b, seq.n);
			added = !exts.overflow && !seq.overflow;
		} else {
			put(&body, p, ch + cl);
		}
		p += ch + cl;
	}
	if (!added) {
		struct dbuf seq = {0};
		put_tlv(&seq, 0x30, ext->b, ext->n);
		put_tlv(&body, 0xa3, seq.b, seq.n);
	}
	put_tlv(&out, 0x30, body.b, body.n);
	if (body.overflow || out.overflow || out.n > cap)
		return -1;
	memcpy(buf, out.b, out.n);
	return (int)out.n;
}

/* ---- files ---- */

static int write_file(const char *path, const void *data, size_t len, mode_t mode, bool force)
{
	if (force)
		unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		cli_error("%s: %s%s", path, strerror(errno),
			  errno == EEXIST ? " (use --force to overwrite)" : "");
		return -1;
	}
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			cli_error("%s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fchmod(fd, mode) != 0 || close(fd) != 0) {
		cli_error("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int write_pem(const char *dir, const char *file, const uint8_t *der, size_t len, int type, mode_t mode,
		     bool force)
{
	static uint8_t pem[PEM_MAX];
	char path[PATH_MAX];
	int n = wc_DerToPem(der, (word32)len, pem, sizeof(pem), type);
	if (n <= 0) {
		cli_error("cannot encode %s as PEM (wolfSSL error %d)", file, n);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return write_file(path, pem, (size_t)n, mode, force);
}

static int write_key(const char *dir, const char *file, ecc_key *key, bool force)
{
	uint8_t der[KEY_DER_MAX];
	int n = wc_EccKeyToDer(key, der, sizeof(der));
	if (n <= 0) {
		cli_error("cannot encode %s (wolfSSL error %d)", file, n);
		return -1;
	}
	int r = write_pem(dir, file, der, (size_t)n, ECC_PRIVATEKEY_TYPE, 0600, force);
	memset(der, 0, sizeof(der));
	return r;
}

/* ---- certificates ---- */

struct cert_spec {
	const char *cn;
	bool ca;
	const char *ext_key_usage; /* NULL for the CA */
	const struct san *sans;
	size_t n_sans;
};

/* Makes a certificate for subject_key signed by issuer_key (the same key for the self-signed CA).
 * issuer_der: the CA certificate (NULL for the CA itself). Returns the DER length, or -1. */
static int make_cert(const struct cert_spec *s, ecc_key *subject_key, ecc_key *issuer_key,
		     const uint8_t *issuer_der, size_t issuer_len, WC_RNG *rng, uint8_t *out, size_t cap)
{
	Cert c;
	int r;
	if (wc_InitCert(&c) != 0)
		return -1;
	c.sigType = CTC_SHA256wECDSA;
	c.daysValid = CERT_DAYS;
	c.isCA = s->ca ? 1 : 0;
	c.selfSigned = s->ca ? 1 : 0;
	snprintf(c.subject.commonName, sizeof(c.subject.commonName), "%s", s->cn);
	snprintf(c.subject.org, sizeof(c.subject.org), "tlsshim test PKI");
	if (s->ca) {
		c.pathLen = 0;
		c.pathLenSet = 1;
	}
	if ((r = wc_SetKeyUsage(&c, s->ca ? "keyCertSign,cRLSign" : "digitalSignature")) != 0 ||
	    (s->ext_key_usage && (r = wc_SetExtKeyUsage(&c, s->ext_key_usage)) != 0) ||
	    (r = wc_SetSubjectKeyIdFromPublicKey_ex(&c, ECC_TYPE, subject_key)) != 0 ||
	    (r = wc_SetAuthKeyIdFromPublicKey_ex(&c, ECC_TYPE, issuer_key)) != 0 ||
	    (issuer_der && (r = wc_SetIssuerRaw(&c, issuer_der, (int)issuer_len)) != 0)) {
		cli_error("cannot set up the %s certificate (wolfSSL error %d)", s->cn, r);
		return -1;
	}
	int tbs = wc_MakeCert_ex(&c, out, (word32)cap, ECC_TYPE, subject_key, rng);
	if (tbs <= 0) {
		cli_error("wc_MakeCert_ex failed for %s (wolfSSL error %d)", s->cn, tbs);
		return -1;
	}
	if (s->n_sans > 0) {
		struct dbuf ext = {0};
		if (san_extension(s->sans, s->n_sans, &ext) != 0 ||
		    (tbs = tbs_add_extension(out, (size_t)tbs, cap, &ext)) < 0) {
			cli_error("cannot add the subjectAltName extension (too many or too long names?)");
			return -1;
		}
	}
	int len = wc_SignCert_ex(tbs, c.sigType, out, (word32)cap, ECC_TYPE, issuer_key, rng);
	if (len <= 0) {
		cli_error("wc_SignCert_ex failed for %s (wolfSSL error %d)", s->cn, len);
		return -1;
	}
	return len;
}

static int parse_ip(const char *arg, struct san *s)
{
	char buf[64];
	size_t n = strlen(arg);
	if (n >= 2 && arg[0] == '[' && arg[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, arg + 1, n - 2);
		buf[n - 2] = '\0';
	} else {
		snprintf(buf, sizeof(buf), "%s", arg);
	}
	s->ip = true;
	if (inet_pton(AF_INET, buf, s->addr) == 1)
		s->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, s->addr) == 1)
		s->family = AF_INET6;
	else
		return -1;
	inet_ntop(s->family, s->addr, s->text, sizeof(s->text));
	return 0;
}

static bool valid_san_name(const char *name)
{
	if (strncmp(name, "*.", 2) == 0)
		name += 2;
	return policy_valid_hostname(name) && !cli_is_ip_literal(name);
}

static int make_dir(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		cli_error("%s exists and is not a directory", dir);
		return -1;
	}
	if (mkdir(dir, 0755) != 0) {
		cli_error("cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

static void print_policy_lines(const char *dir, const struct san *sans, size_t n)
{
	printf("\npolicy lines that trust the server certificate:\n");
	for (size_t i = 0; i < n; i++) {
		bool v6 = sans[i].ip && sans[i].family == AF_INET6;
		printf("  tls %s%s%s:* ca-file=%s/ca.pem\n", v6 ? "[" : "", sans[i].text, v6 ? "]" : "", dir);
	}
	printf("add the client certificate to a rule with: cert=%s/client.pem key=%s/client.key\n", dir, dir);
	printf(
	    "a test server: openssl s_server -accept 127.0.0.1:8443 -cert %s/server.pem -key %s/server.key\n",
	    dir, dir);
}

struct certs_args {
	const char *dir;
	struct san sans[MAX_SANS];
	size_t n_sans;
	bool force;
};

static int make_all(const struct certs_args *a, const char *dir)
{
	static uint8_t ca_der[DER_MAX], server_der[DER_MAX], client_der[DER_MAX];
	ecc_key ca_key, server_key, client_key;
	WC_RNG rng;
	int rc = CLI_FAILED, ca_len, server_len, client_len;
	if (wc_InitRng(&rng) != 0) {
		cli_error("cannot initialise wolfSSL's random number generator");
		return CLI_FAILED;
	}
	wc_ecc_init(&ca_key);
	wc_ecc_init(&server_key);
	wc_ecc_init(&client_key);
	if (wc_ecc_make_key_ex(&rng, 32, &ca_key, ECC_SECP256R1) != 0 ||
	    wc_ecc_make_key_ex(&rng, 32, &server_key, ECC_SECP256R1) != 0 ||
	    wc_ecc_make_key_ex(&rng, 32, &client_key, ECC_SECP256R1) != 0) {
		cli_error("cannot make P-256 keys");
		goto out;
	}
	/* CN: the first DNS name, else the first address (verification never uses it: SANs only). */
	const char *server_cn = a->n_sans ? a->sans[0].text : "localhost";
	for (size_t i = 0; i < a->n_sans; i++)
		if (!a->sans[i].ip) {
			server_cn = a->sans[i].text;
			break;
		}
	struct cert_spec ca = {"tlsshim test CA", true, NULL, NULL, 0};
	struct cert_spec server = {server_cn, false, "serverAuth", a->sans, a->n_sans};
	struct cert_spec client = {"tlsshim test client", false, "clientAuth", NULL, 0};
	if ((ca_len = make_cert(&ca, &ca_key, &ca_key, NULL, 0, &rng, ca_der, sizeof(ca_der))) < 0 ||
	    (server_len = make_cert(&server, &server_key, &ca_key, ca_der, (size_t)ca_len, &rng, server_der,
				    sizeof(server_der))) < 0 ||
	    (client_len = make_cert(&client, &client_key, &ca_key, ca_der, (size_t)ca_len, &rng, client_der,
				    sizeof(client_der))) < 0)
		goto out;
	if (write_key(dir, "ca.key", &ca_key, a->force) != 0 ||
	    write_pem(dir, "ca.pem", ca_der, (size_t)ca_len, CERT_TYPE, 0644, a->force) != 0 ||
	    write_key(dir, "server.key", &server_key, a->force) != 0 ||
	    write_pem(dir, "server.pem", server_der, (size_t)server_len, CERT_TYPE, 0644, a->force) != 0 ||
	    write_key(dir, "client.key", &client_key, a->force) != 0 ||
	    write_pem(dir, "client.pem", client_der, (size_t)client_len, CERT_TYPE, 0644, a->force) != 0)
		goto out;
	printf("wrote %s/ca.pem and ca.key: the test CA (ECDSA P-256, SHA-256, %d days)\n", dir, CERT_DAYS);
	printf("wrote %s/server.pem and server.key: CN=%s, names:", dir, server_cn);
	for (size_t i = 0; i < a->n_sans; i++)
		printf("%s %s:%s", i ? "," : "", a->sans[i].ip ? "IP" : "DNS", a->sans[i].text);
	printf("\nwrote %s/client.pem and client.key: a client certificate (clientAuth)\n", dir);
	print_policy_lines(dir, a->sans, a->n_sans);
	rc = CLI_OK;
out:
	wc_ecc_free(&ca_key);
	wc_ecc_free(&server_key);
	wc_ecc_free(&client_key);
	wc_FreeRng(&rng);
	return rc;
}

int cmd_certs(int argc, char **argv)
{
	static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
					     {"ip", required_argument, NULL, 'i'},
					     {"force", no_argument, NULL, 'f'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	static struct certs_args a;
	int c;
	memset(&a, 0, sizeof(a));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "n:i:fh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (a.n_sans >= MAX_SANS)
				return cli_usage_error("certs", "at most %d names and addresses", MAX_SANS);
			if (!valid_san_name(optarg))
				return cli_usage_error("certs", "--name %s is not a host name", optarg);
			snprintf(a.sans[a.n_sans].text, sizeof(a.sans[0].text), "%s", optarg);
			a.n_sans++;
			break;
		case 'i':
			if (a.n_sans >= MAX_SANS)
				return cli_usage_error("certs", "at most %d names and addresses", MAX_SANS);
			if (parse_ip(optarg, &a.sans[a.n_sans]) != 0)
				return cli_usage_error("certs", "--ip %s is not an IPv4 or IPv6 address",
						       optarg);
			a.n_sans++;
			break;
		case 'f':
			a.force = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return CLI_OK;
		default:
			return cli_usage_error("certs", "unknown option or missing value: '%s'",
					       argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("certs", argc == optind ? "missing DIR" : "expected one DIR");
	if (a.n_sans == 0) {
		snprintf(a.sans[0].text, sizeof(a.sans[0].text), "localhost");
		parse_ip("127.0.0.1", &a.sans[1]);
		parse_ip("::1", &a.sans[2]);
		a.n_sans = 3;
	}
	a.dir = argv[optind];
	if (make_dir(a.dir) != 0)
		return CLI_FAILED;
	char dir[PATH_MAX];
	if (!realpath(a.dir, dir)) {
		cli_error("%s: %s", a.dir, strerror(errno));
		return CLI_FAILED;
	}
	return make_all(&a, dir);
}
