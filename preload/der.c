/* der.c: see der.h. */
#include "preload/der.h"

struct der_cursor {
	const uint8_t *p;
	size_t left;
};

/* Reads one TLV header; on success *body and *body_len is the value and *whole_len the TLV's full size. */
static int der_next(struct der_cursor *c, uint8_t *tag, const uint8_t **body, size_t *body_len,
		    size_t *whole_len)
{
	if (c->left < 2)
		return -1;
	size_t hdr = 2, len = c->p[1];
	if (len & 0x80) {
		size_t n = len & 0x7f;
		if (n == 0 || n > 4 || c->left < 2 + n)
			return -1;
		len = 0;
		for (size_t i = 0; i < n; i++)
			len = (len << 8) | c->p[2 + i];
		hdr += n;
	}
	if (len > c->left - hdr)
		return -1;
	*tag = c->p[0];
	*body = c->p + hdr;
	*body_len = len;
	*whole_len = hdr + len;
	return 0;
}

static int der_enter(struct der_cursor *c, uint8_t want_tag)
{
	uint8_t tag;
	const uint8_t *body;
	size_t blen, whole;
	if (der_next(c, &tag, &body, &blen, &whole) != 0 || tag != want_tag)
		return -1;
	c->p = body;
	c->left = blen;
	return 0;
}

static int der_skip(struct der_cursor *c, uint8_t *tag_out)
{
	uint8_t tag;
	const uint8_t *body;
	size_t blen, whole;
	if (der_next(c, &tag, &body, &blen, &whole) != 0)
		return -1;
	if (tag_out)
		*tag_out = tag;
	c->p += whole;
	c->left -= whole;
	return 0;
}

int der_cert_spki(const uint8_t *cert, size_t len, const uint8_t **spki, size_t *spki_len)
{
	struct der_cursor c = {cert, len};
	if (der_enter(&c, 0x30) != 0 || der_enter(&c, 0x30) != 0) /* Certificate, TBSCertificate */
		return -1;
	if (c.left > 0 && c.p[0] == 0xa0 && der_skip(&c, NULL) != 0) /* [0] version */
		return -1;
	for (int i = 0; i < 5; i++) /* serial, signature, issuer, validity, subject */
		if (der_skip(&c, NULL) != 0)
			return -1;
	uint8_t tag;
	const uint8_t *body;
	size_t blen, whole;
	if (der_next(&c, &tag, &body, &blen, &whole) != 0 || tag != 0x30)
		return -1;
	*spki = c.p;
	*spki_len = whole;
	return 0;
}
