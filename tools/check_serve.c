/* check_serve.c: the serve-rule checks of `tlsshim check` that need the certificate files or the allow=
 * entries' meaning: a key that does not match its certificate (with the library's own server context
 * builder, so the verdict is the library's), a certificate expiring within 30 days, and allow= entries
 * no certificate could carry. cmd_check.c turns each finding into a warning at the option's column. */
#include "preload/tlsctx.h"
#include "tools/check_serve.h"

#include <stdio.h>
#include <string.h>

bool check_serve_key_mismatch(const struct policy_tls_opts *o, char *msg, size_t len)
{
	char err[400] = "";
	WOLFSSL_CTX *ctx = tlsctx_server_new(o, NULL, err, sizeof(err));
	if (ctx) {
		wolfSSL_CTX_free(ctx);
		return false;
	}
	if (!strstr(err, "does not belong"))
		return false; /* a missing file is reported by the file checks */
	snprintf(msg, len, "%s: the library would close every connection of this rule at accept", err);
	return true;
}

int check_serve_days_left(const char *cert)
{
	WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_file(cert, tlsctx_file_format(cert));
	if (!x)
		return CHECK_SERVE_NO_DATE;
	int days = 0, secs = 0, r = CHECK_SERVE_NO_DATE;
	const WOLFSSL_ASN1_TIME *after = wolfSSL_X509_get_notAfter(x);
	if (after && wolfSSL_ASN1_TIME_diff(&days, &secs, NULL, after) == WOLFSSL_SUCCESS)
		r = days;
	wolfSSL_X509_free(x);
	return r;
}

/* RFC 3986 characters (unreserved, reserved, '%'): anything else cannot appear in a URI SAN. */
static bool uri_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("-._~:/?#[]@!$&'()*+,;=%", c) != NULL;
}

bool check_serve_allow_entry(const struct policy_allow *a, char *msg, size_t len)
{
	char one[300];
	policy_allow_format(a, one, sizeof(one));
	switch (a->kind) {
	case POLICY_ALLOW_URI:
	case POLICY_ALLOW_URI_PREFIX:
		for (const unsigned char *p = (const unsigned char *)a->text; *p; p++) {
			if (!uri_char_ok(*p)) {
				snprintf(
				    msg, len,
				    "allow=%s: '%c' cannot appear in a URI (RFC 3986), so no certificate "
				    "carries this identity",
				    one, *p);
				return true;
			}
			if (*p == '%' && !(p[1] && p[2] && strchr("0123456789abcdefABCDEF", p[1]) &&
					   strchr("0123456789abcdefABCDEF", p[2]))) {
				snprintf(msg, len,
					 "allow=%s: a '%%' not followed by two hex digits is not a valid URI",
					 one);
				return true;
			}
		}
		if (strncmp(a->text, "spiffe://", 9) == 0 && a->kind == POLICY_ALLOW_URI &&
		    !strchr(a->text + 9, '/')) {
			snprintf(msg, len,
				 "allow=%s: a SPIFFE ID names a workload below its trust domain "
				 "(spiffe://domain/path); a bare trust domain is carried by no certificate",
				 one);
			return true;
		}
		return false;
	case POLICY_ALLOW_IP:
		if (a->net.prefix_len == 0) {
			snprintf(msg, len,
				 "allow=%s matches every %s client address: any certificate with an IP SAN "
				 "is allowed",
				 one, a->net.family == AF_INET ? "IPv4" : "IPv6");
			return true;
		}
		return false;
	default:
		return false;
	}
}
