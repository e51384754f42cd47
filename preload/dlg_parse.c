/* dlg_parse.c: the dialogue reply parsers (see dlg_parse.h). Pure functions over a byte range: every
 * read is bounds-checked against len, every loop is bounded by len or by a limit in dlg_parse.h. */
#include "preload/dlg_parse.h"

#include <string.h>

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* buf[0..n) starts with word (case-insensitive) followed by the end, a space or one of `after`. */
static bool starts_word(const uint8_t *buf, size_t n, const char *word, const char *after)
{
	size_t k = strlen(word);

	if (n < k)
		return false;
	for (size_t i = 0; i < k; i++)
		if (lower(buf[i]) != lower((unsigned char)word[i]))
			return false;
	return n == k || buf[k] == ' ' || (after && buf[k] && strchr(after, buf[k]));
}

void dlg_quote(const uint8_t *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	if (cap == 0)
		return;
	for (size_t i = 0; i < n && o + 1 < cap; i++)
		out[o++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	out[o] = '\0';
}

int dlg_line(const uint8_t *buf, size_t len, size_t max, size_t *line_len, size_t *consumed)
{
	size_t lim = len < max ? len : max;

	for (size_t i = 0; i < lim; i++) {
		if (buf[i] == '\0')
			return DLG_BAD;
		if (buf[i] == '\n') {
			*consumed = i + 1;
			*line_len = i > 0 && buf[i - 1] == '\r' ? i - 1 : i;
			return DLG_OK;
		}
	}
	return len >= max ? DLG_BAD : DLG_NEED;
}

/* ---- SMTP ---- */

static bool digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

int dlg_smtp_reply(const uint8_t *buf, size_t len, struct dlg_smtp_reply *r)
{
	size_t pos = 0;

	memset(r, 0, sizeof(*r));
	for (unsigned n = 0; n < DLG_SMTP_LINES_MAX; n++) {
		size_t ll, used;
		int st = dlg_line(buf + pos, len - pos, DLG_LINE_MAX, &ll, &used);

		if (st != DLG_OK)
			return st;
		const uint8_t *l = buf + pos;
		if (ll < 3 || !digit(l[0]) || !digit(l[1]) || !digit(l[2]) || l[0] < '2' || l[0] > '5' ||
		    (ll > 3 && l[3] != '-' && l[3] != ' '))
			return DLG_BAD;
		int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
		if (n == 0) {
			r->code = code;
			r->first_len = ll;
		} else if (code != r->code) {
			return DLG_BAD;
		}
		if (n > 0 && ll > 4 && starts_word(l + 4, ll - 4, "STARTTLS", NULL))
			r->starttls = true;
		r->lines = n + 1;
		pos += used;
		if (ll == 3 || l[3] == ' ') {
			r->consumed = pos;
			return DLG_OK;
		}
	}
	return DLG_BAD; /* more lines than DLG_SMTP_LINES_MAX */
}

/* ---- IMAP and POP3 ---- */

static enum dlg_status imap_status(const uint8_t *s, size_t n)
{
	static const struct {
		const char *word;
		enum dlg_status st;
	} words[] = {{"OK", DLG_ST_OK},
		     {"NO", DLG_ST_NO},
		     {"BAD", DLG_ST_BAD},
		     {"PREAUTH", DLG_ST_PREAUTH},
		     {"BYE", DLG_ST_BYE}};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (starts_word(s, n, words[i].word, "["))
			return words[i].st;
	return DLG_ST_OTHER;
}

int dlg_imap_line(const uint8_t *buf, size_t len, const char *tag, struct dlg_imap_line *r)
{
	size_t ll, used, tl = strlen(tag);
	int st = dlg_line(buf, len, DLG_LINE_MAX, &ll, &used);

	memset(r, 0, sizeof(*r));
	if (st != DLG_OK)
		return st;
	r->len = ll;
	r->consumed = used;
	if (ll >= 2 && buf[0] == '*' && buf[1] == ' ') {
		r->untagged = true;
		r->status = imap_status(buf + 2, ll - 2);
	} else if (ll >= 1 && buf[0] == '+' && (ll == 1 || buf[1] == ' ')) {
		r->continuation = true;
	} else if (tl > 0 && ll > tl && memcmp(buf, tag, tl) == 0 && buf[tl] == ' ') {
		r->tagged = true;
		r->status = imap_status(buf + tl + 1, ll - tl - 1);
	} else {
		return DLG_BAD;
	}
	return DLG_OK;
}

size_t dlg_imap_strip_capability(const uint8_t *line, size_t len, uint8_t *out, size_t cap)
{
	static const char code[] = "[CAPABILITY ";
	size_t k = sizeof(code) - 1, o, i = 2, j, start = len, end = len;

	/* "* OK [CAPABILITY ...] text": the code follows "* ", the status word and one space. */
	if (len > 2 && line[0] == '*' && line[1] == ' ') {
		while (i < len && line[i] != ' ' && line[i] != '[')
			i++;
		if (i < len && line[i] == ' ')
			i++;
		for (j = 0; j < k && i + j < len && lower(line[i + j]) == lower((unsigned char)code[j]); j++)
			;
		if (j == k) {
			const uint8_t *close = memchr(line + i, ']', len - i);

			start = i;
			end = close ? (size_t)(close - line) + 1 : len;
			if (end < len && line[end] == ' ')
				end++;
		}
	}
	if (len - (end - start) + 2 > cap)
		return 0;
	memcpy(out, line, start);
	memcpy(out + start, line + end, len - end);
	o = start + (len - end);
	if (end == len && start < len)
		while (o > 2 && out[o - 1] == ' ') /* "* OK [CAPABILITY ...]": nothing after the code */
			o--;
	out[o++] = '\r';
	out[o++] = '\n';
	return o;
}

int dlg_pop3_line(const uint8_t *buf, size_t len, struct dlg_pop3_line *r)
{
	size_t ll, used;
	int st = dlg_line(buf, len, DLG_LINE_MAX, &ll, &used);

	memset(r, 0, sizeof(*r));
	if (st != DLG_OK)
		return st;
	if (starts_word(buf, ll, "+OK", NULL))
		r->status = DLG_ST_OK;
	else if (starts_word(buf, ll, "-ERR", NULL))
		r->status = DLG_ST_ERR;
	else
		return DLG_BAD;
	r->len = ll;
	r->consumed = used;
	return DLG_OK;
}

/* ---- PostgreSQL ---- */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int dlg_pg_header(const uint8_t *buf, size_t len, uint32_t max_len, uint8_t *type, uint32_t *msg_len)
{
	if (len < 5)
		return DLG_NEED;
	uint32_t n = be32(buf + 1);
	if (n < 4 || n > max_len)
		return DLG_BAD;
	*type = buf[0];
	*msg_len = n;
	return DLG_OK;
}

long dlg_pg_strip_plus(const uint8_t *body, size_t len, uint8_t *out, size_t cap, unsigned *kept)
{
	size_t pos = 4, o = 4;

	*kept = 0;
	if (len < 5 || len > DLG_PG_SASL_MAX || cap < 5 || be32(body) != 10)
		return -1;
	memcpy(out, body, 4);
	for (;;) {
		if (pos >= len)
			return -1; /* no terminating empty name */
		const uint8_t *nul = memchr(body + pos, '\0', len - pos);
		if (!nul)
			return -1;
		size_t n = (size_t)(nul - (body + pos));
		if (n == 0) {
			if (pos + 1 != len || o + 1 > cap)
				return -1; /* bytes after the list */
			out[o++] = '\0';
			return (long)o;
		}
		bool plus = n >= 5 && memcmp(body + pos + n - 5, "-PLUS", 5) == 0;
		if (!plus) {
			if (o + n + 1 > cap)
				return -1;
			memcpy(out + o, body + pos, n + 1);
			o += n + 1;
			(*kept)++;
		}
		pos += n + 1;
	}
}

void dlg_pg_error_text(const uint8_t *body, size_t len, char *text, size_t cap)
{
	size_t pos = 0;

	if (cap)
		text[0] = '\0';
	while (pos < len && body[pos] != '\0') {
		uint8_t field = body[pos++];
		const uint8_t *nul = memchr(body + pos, '\0', len - pos);
		size_t n = nul ? (size_t)(nul - (body + pos)) : len - pos;

		if (field == 'M') {
			dlg_quote(body + pos, n, text, cap);
			return;
		}
		pos += n + 1;
	}
}

/* ---- LDAP BER (definite lengths only, as RFC 4511 5.1 requires) ---- */

struct ber {
	const uint8_t *p;
	size_t len, pos;
};

/* Reads a tag and a length; the value is at b->pos after it. DLG_NEED when the header or the value is
 * not all there yet. */
static int ber_tlv(struct ber *b, uint8_t *tag, size_t *vlen)
{
	if (b->pos + 2 > b->len)
		return DLG_NEED;
	*tag = b->p[b->pos];
	if ((*tag & 0x1f) == 0x1f)
		return DLG_BAD; /* multi-byte tags are not used by LDAP */
	uint8_t l0 = b->p[b->pos + 1];
	size_t n = 0, hdr = 2;
	if (l0 < 0x80) {
		n = l0;
	} else {
		unsigned k = l0 & 0x7f;
		if (k == 0 || k > 3)
			return DLG_BAD; /* indefinite, or more than 16 MiB */
		if (b->pos + 2 + k > b->len)
			return DLG_NEED;
		for (unsigned i = 0; i < k; i++)
			n = n << 8 | b->p[b->pos + 2 + i];
		hdr += k;
	}
	if (n > DLG_LDAP_MAX)
		return DLG_BAD;
	if (b->pos + hdr + n > b->len)
		return DLG_NEED;
	b->pos += hdr;
	*vlen = n;
	return DLG_OK;
}

static int ber_int(const uint8_t *p, size_t n, long *out)
{
	if (n == 0 || n > 4)
		return DLG_BAD;
	long v = (p[0] & 0x80) ? -1 : 0;
	for (size_t i = 0; i < n; i++)
		v = (long)((unsigned long)v << 8 | p[i]);
	*out = v;
	return DLG_OK;
}

int dlg_ldap_reply(const uint8_t *buf, size_t len, struct dlg_ldap_reply *r)
{
	struct ber outer = {buf, len, 0};
	uint8_t tag;
	size_t vlen;
	long v;
	int st;

	memset(r, 0, sizeof(*r));
	if (len > 0 && buf[0] != 0x30)
		return DLG_BAD;
	if ((st = ber_tlv(&outer, &tag, &vlen)) != DLG_OK)
		return st == DLG_NEED && len >= DLG_LDAP_MAX + 8 ? DLG_BAD : st;
	/* Everything below must fit inside the LDAPMessage: a short inner element is malformed. */
	struct ber b = {buf, outer.pos + vlen, outer.pos};
	r->consumed = outer.pos + vlen;
	if (ber_tlv(&b, &tag, &vlen) != DLG_OK || tag != 0x02 ||
	    ber_int(b.p + b.pos, vlen, &r->msgid) != DLG_OK)
		return DLG_BAD;
	b.pos += vlen;
	if (ber_tlv(&b, &tag, &vlen) != DLG_OK || (tag & 0xe0) != 0x60)
		return DLG_BAD; /* protocolOp: [APPLICATION n] constructed */
	r->protocol_op = tag & 0x1f;
	struct ber op = {buf, b.pos + vlen, b.pos};
	if (ber_tlv(&op, &tag, &vlen) != DLG_OK || tag != 0x0a || ber_int(op.p + op.pos, vlen, &v) != DLG_OK)
		return DLG_BAD;
	r->result = (int)v;
	op.pos += vlen;
	if (ber_tlv(&op, &tag, &vlen) != DLG_OK || tag != 0x04) /* matchedDN */
		return DLG_BAD;
	op.pos += vlen;
	if (ber_tlv(&op, &tag, &vlen) != DLG_OK || tag != 0x04) /* diagnosticMessage */
		return DLG_BAD;
	dlg_quote(op.p + op.pos, vlen, r->diag, sizeof(r->diag));
	return DLG_OK;
}

/* ---- HTTP CONNECT ---- */

int dlg_http_reply(const uint8_t *buf, size_t len, struct dlg_http_reply *r)
{
	size_t pos = 0, ll, used;
	size_t lim = len < DLG_HTTP_HEADERS_MAX ? len : DLG_HTTP_HEADERS_MAX;
	int st;

	memset(r, 0, sizeof(*r));
	st = dlg_line(buf, lim, DLG_LINE_MAX, &ll, &used);
	if (st != DLG_OK)
		return st == DLG_NEED && len >= DLG_HTTP_HEADERS_MAX ? DLG_BAD : st;
	/* "HTTP/1.0 200" or "HTTP/1.1 200 Connection established" */
	if (ll < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || !digit(buf[7]) || buf[8] != ' ' || !digit(buf[9]) ||
	    !digit(buf[10]) || !digit(buf[11]) || (ll > 12 && buf[12] != ' '))
		return DLG_BAD;
	r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	r->status_len = ll;
	pos = used;
	for (unsigned n = 0; n <= DLG_HTTP_LINES_MAX; n++) {
		st = dlg_line(buf + pos, lim - pos, DLG_LINE_MAX, &ll, &used);
		if (st != DLG_OK)
			return st == DLG_NEED && len >= DLG_HTTP_HEADERS_MAX ? DLG_BAD : st;
		if (ll == 0) {
			r->consumed = pos + used;
			return DLG_OK;
		}
		if (!memchr(buf + pos, ':', ll) && buf[pos] != ' ' && buf[pos] != '\t')
			return DLG_BAD; /* neither a header nor an (obsolete) continuation */
		pos += used;
	}
	return DLG_BAD;
}

/* ---- SOCKS5 ---- */

int dlg_socks5_method(const uint8_t *buf, size_t len, int *method)
{
	if (len < 2)
		return DLG_NEED;
	if (buf[0] != 5)
		return DLG_BAD;
	*method = buf[1];
	return DLG_OK;
}

int dlg_socks5_auth(const uint8_t *buf, size_t len, int *status)
{
	if (len < 2)
		return DLG_NEED;
	if (buf[0] != 1)
		return DLG_BAD;
	*status = buf[1];
	return DLG_OK;
}

int dlg_socks5_reply(const uint8_t *buf, size_t len, struct dlg_socks5_reply *r)
{
	size_t need;

	memset(r, 0, sizeof(*r));
	if (len < 5)
		return DLG_NEED;
	if (buf[0] != 5 || buf[2] != 0)
		return DLG_BAD;
	switch (buf[3]) {
	case 1:
		need = 4 + 4 + 2;
		break;
	case 3:
		need = 4 + 1 + (size_t)buf[4] + 2;
		break;
	case 4:
		need = 4 + 16 + 2;
		break;
	default:
		return DLG_BAD;
	}
	if (len < need)
		return DLG_NEED;
	r->rep = buf[1];
	r->consumed = need;
	return DLG_OK;
}

const char *dlg_socks5_rep_text(int rep)
{
	static const char *const texts[] = {"succeeded",
					    "general SOCKS server failure",
					    "connection not allowed by ruleset",
					    "network unreachable",
					    "host unreachable",
					    "connection refused",
					    "TTL expired",
					    "command not supported",
					    "address type not supported"};

	return rep >= 0 && (size_t)rep < sizeof(texts) / sizeof(texts[0]) ? texts[rep] : "unknown reply code";
}
