/* parse.c: the policy grammar, from text to struct policy. It owns
 *  - splitting text into rules: one a line; in TLSSHIM_RULES also one per ';' (rules are numbered
 *    by counting both separators, so the "line" of an error is the 1-based rule index);
 *  - the lexer: blank-separated tokens, '#' comments, key="quoted values";
 *  - the rule grammar: action, host[:port] pattern, key=value options (parsed by options.c);
 *  - `defaults` lines, merging them into later tls rules, and the checks made after merging;
 *  - policy_parse, policy_load (reading the file with open/fstat/read) and policy_free.
 *
 * Lexical rules (documented for the README):
 *  - A rule is at most POL_MAX_LINE (4096) bytes, the line terminator not counted.
 *  - Tokens are separated by spaces, tabs and carriage returns. A NUL byte anywhere, or any other
 *    control character outside a comment, is an error.
 *  - '#' at the start of a token starts a comment that runs to the end of the line (in
 *    TLSSHIM_RULES: to the end of the rule, i.e. the next ';' or newline). An unquoted '#' inside
 *    a token is an error rather than a silent truncation.
 *  - Only option values can be quoted, and only as a whole: key="...". Inside the quotes, \" and
 *    \\ are the only escapes (any other backslash sequence is an error); spaces, tabs, ';' and '#'
 *    are literal. The closing quote must end the token.
 *  - Keywords (actions, option names, option words such as on/off) are lower-case and
 *    case-sensitive; host names are case-insensitive.
 *
 * Columns are 1-based byte offsets within the rule (in TLSSHIM_RULES, within the ';'-separated rule)
 * and point at the offending part: the token, the value after '=', the bad item of a list, the
 * port after ':' and so on. Errors about a whole file (cannot open, not regular, too large) have
 * line 0 and column 0. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "policy/cursor.h"
#include "policy/internal.h"

struct token {
	size_t start;	  /* offset of its first byte in the text */
	size_t len;	  /* raw length, quotes and escapes included */
	unsigned col;	  /* column of its first byte */
	bool has_eq;	  /* key=value */
	size_t key_len;	  /* bytes before the first '=' */
	bool quoted;	  /* key="value" */
	unsigned val_col; /* column of the value (its opening quote when quoted) */
	const char *val;  /* the value (the whole token when !has_eq), unescaped and NUL-terminated */
	size_t val_len;
};

/* Option sets are bit masks of enum pol_opt_id. */
_Static_assert(POL_OPT_COUNT <= 32, "option masks are 32 bits: widen defs_mask and optset.mask");

struct pctx {
	struct policy *p;
	const char *text;
	size_t len;
	const char *source;	/* as the caller named it, for errors */
	const char *own_source; /* the copy kept in p->sources, for rules */
	bool rules;		/* TLSSHIM_RULES syntax: ';' separates rules too */
	struct policy_error *err;
	unsigned line;		     /* the current rule's number */
	size_t seg;		     /* offset of the current rule's first byte */
	size_t line_end;	     /* offset of the newline ending the current physical line (or len) */
	struct cursor c;	     /* the current rule: [seg, min(line_end, seg + POL_MAX_LINE)) */
	struct policy_tls_opts defs; /* what `defaults` lines have set so far */
	uint32_t defs_mask;	     /* which keys they set (bit = enum pol_opt_id) */
	char val[POL_MAX_LINE + 1];  /* the current token's value */
};

/* ---- errors ---- */

static void set_error(struct policy_error *e, const char *source, unsigned line, unsigned col,
		      const char *fmt, va_list ap)
{
	snprintf(e->source, sizeof(e->source), "%s", source);
	e->line = line;
	e->column = col;
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
}

__attribute__((format(printf, 3, 4))) static int perr(struct pctx *x, unsigned col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_error(x->err, x->source, x->line, col, fmt, ap);
	va_end(ap);
	return -1;
}

__attribute__((format(printf, 3, 4))) static int ferr(struct policy_error *e, const char *source,
						      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_error(e, source, 0, 0, fmt, ap);
	va_end(ap);
	return -1;
}

static unsigned col_at(const struct pctx *x, size_t off)
{
	return (unsigned)(off - x->seg + 1);
}

/* The raw token, quoted for a message. */
static const char *tok_text(const struct pctx *x, const struct token *t, char *buf, size_t cap)
{
	return pol_quote(buf, cap, x->text + t->start, t->len, 48);
}

/* ---- lexer ---- */

static bool is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* At the end of the rule's window: either the rule really ends here, or it is too long. */
static int lex_end(struct pctx *x)
{
	if (x->c.end >= x->line_end || (x->rules && x->text[x->c.end] == ';'))
		return 0;
	return perr(x, POL_MAX_LINE + 1, "%s longer than %u bytes", x->rules ? "rule" : "line", POL_MAX_LINE);
}

static int nul_error(struct pctx *x)
{
	return perr(x, col_at(x, x->c.pos), "NUL byte in the policy text");
}

static int lex_comment(struct pctx *x)
{
	for (;; cur_next(&x->c)) {
		int c = cur_peek(&x->c);

		if (c < 0)
			return lex_end(x);
		if (c == '\0')
			return nul_error(x);
		if (x->rules && c == ';')
			return 0;
	}
}

/* Consumes "..." starting at the opening quote. */
static int lex_quoted(struct pctx *x)
{
	size_t open = x->c.pos;
	char q[8];

	cur_next(&x->c);
	for (;;) {
		int c = cur_peek(&x->c);

		if (c < 0) {
			if (x->c.end >= x->line_end)
				return perr(x, col_at(x, open),
					    "unterminated quoted value (missing the closing '\"')");
			/* A ';' at the limit is inside the quotes: the rule goes on. */
			return perr(x, POL_MAX_LINE + 1, "%s longer than %u bytes",
				    x->rules ? "rule" : "line", POL_MAX_LINE);
		}
		if (c == '"') {
			cur_next(&x->c);
			return 0;
		}
		if (c == '\0')
			return nul_error(x);
		if (c == '\\') {
			int e = cur_peek_at(&x->c, 1);

			if (e == '"' || e == '\\') {
				cur_skip(&x->c, 2);
				continue;
			}
			if (e >= 0) {
				char ch = (char)e;

				return perr(x, col_at(x, x->c.pos),
					    "invalid escape '\\%s' in a quoted value (expected \\\" or \\\\)",
					    pol_quote(q, sizeof(q), &ch, 1, 4));
			}
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return perr(x, col_at(x, x->c.pos), "control character 0x%02x in a quoted value",
				    (unsigned)c);
		}
		cur_next(&x->c);
	}
}

static int lex_token(struct pctx *x, struct token *t)
{
	size_t start = x->c.pos, eq = 0;
	bool has_eq = false, quoted = false;
	char q[8];

	for (;;) {
		int c = cur_peek(&x->c);
		unsigned col = col_at(x, x->c.pos);

		if (c < 0) {
			if (lex_end(x) < 0)
				return -1;
			break;
		}
		if (is_blank(c) || (x->rules && c == ';'))
			break;
		if (c == '\0')
			return nul_error(x);
		if (c < 0x20 || c == 0x7f)
			return perr(x, col,
				    "control character 0x%02x (tokens are separated by spaces or tabs)",
				    (unsigned)c);
		if (c == '#')
			return perr(x, col,
				    "'#' inside a token (put a space before a comment, or quote the value: "
				    "key=\"...\")");
		if (c == '"') {
			if (!has_eq || quoted || x->c.pos != eq + 1)
				return perr(x, col,
					    "unexpected '\"' (only whole option values can be quoted: "
					    "key=\"value\")");
			if (lex_quoted(x) < 0)
				return -1;
			quoted = true;
			c = cur_peek(&x->c);
			if (c >= 0 && !is_blank(c) && !(x->rules && c == ';')) {
				char ch = (char)c;

				return perr(
				    x, col_at(x, x->c.pos),
				    "unexpected '%s' after the closing quote (expected a space or the end "
				    "of the rule)",
				    pol_quote(q, sizeof(q), &ch, 1, 4));
			}
			continue;
		}
		if (c == '=' && !has_eq) {
			has_eq = true;
			eq = x->c.pos;
		}
		cur_next(&x->c);
	}

	t->start = start;
	t->len = x->c.pos - start;
	t->col = col_at(x, start);
	t->has_eq = has_eq;
	t->key_len = has_eq ? eq - start : t->len;
	t->quoted = quoted;
	t->val_col = has_eq ? col_at(x, eq + 1) : t->col;

	/* The value, unescaped. The lexer has checked the escapes and that the token ends with the
	 * closing quote; a rule is at most POL_MAX_LINE bytes, so it fits in x->val. */
	{
		const char *raw = x->text + start;
		size_t i = has_eq ? t->key_len + 1 : 0, o = 0, n = t->len;

		if (quoted) {
			for (i++, n--; i < n; i++) {
				if (raw[i] == '\\')
					i++;
				x->val[o++] = raw[i];
			}
		} else {
			memcpy(x->val, raw + i, n - i);
			o = n - i;
		}
		x->val[o] = '\0';
		t->val = x->val;
		t->val_len = o;
	}
	return 1;
}

/* Next token of the rule: 1 and *t, 0 at the end of the rule (x->c.pos is then at its terminator:
 * the ';' or newline, or the end of the text), -1 on error. */
static int lex_next(struct pctx *x, struct token *t)
{
	int c;

	while (is_blank(cur_peek(&x->c)))
		cur_next(&x->c);
	if (cur_done(&x->c))
		return lex_end(x);
	c = cur_peek(&x->c);
	if (x->rules && c == ';')
		return 0;
	if (c == '#')
		return lex_comment(x);
	return lex_token(x, t);
}

/* ---- host[:port] patterns ---- */

static int parse_port(struct pctx *x, const struct token *t, size_t off, struct policy_rule *r)
{
	struct cursor c = cur_make(t->val, off, t->val_len);
	unsigned long lo, hi;
	char q[64];

	if (cur_done(&c))
		return perr(x, t->col + (unsigned)off - 1,
			    "missing port after ':' (expected 1-65535, lo-hi or *)");
	if (cur_eat(&c, '*')) {
		lo = 0;
		hi = 65535;
	} else {
		if (!cur_take_uint(&c, 65535, &lo) || lo == 0)
			goto bad;
		hi = lo;
		if (cur_eat(&c, '-')) {
			size_t at = c.pos;

			if (!cur_take_uint(&c, 65535, &hi) || hi == 0)
				goto bad;
			if (hi < lo)
				return perr(x, t->col + (unsigned)at,
					    "port range %lu-%lu is reversed (expected lo <= hi)", lo, hi);
		}
	}
	if (!cur_done(&c))
		goto bad;
	r->port_lo = (uint16_t)lo;
	r->port_hi = (uint16_t)hi;
	return 0;
bad:
	return perr(x, t->col + (unsigned)off,
		    "invalid port '%s' (expected 1-65535, a range such as 8000-8100, or *)",
		    pol_quote(q, sizeof(q), t->val + off, t->val_len - off, 40));
}

/* '/N' between from (the '/') and to. */
static int parse_prefix(struct pctx *x, const struct token *t, size_t from, size_t to, unsigned max,
			unsigned *out)
{
	struct cursor c = cur_make(t->val, from + 1, to);
	unsigned long v;
	char q[64];

	if (!cur_take_uint(&c, max, &v) || !cur_done(&c))
		return perr(x, t->col + (unsigned)from + 1, "invalid prefix length '%s' (expected 0-%u)",
			    pol_quote(q, sizeof(q), t->val + from + 1, to - from - 1, 40), max);
	*out = (unsigned)v;
	return 0;
}

static void mask_to_prefix(uint8_t *a, unsigned nbytes, unsigned prefix)
{
	unsigned i;

	for (i = 0; i < nbytes; i++) {
		unsigned bits = prefix > i * 8 ? prefix - i * 8 : 0;

		if (bits < 8)
			a[i] &= (uint8_t)(0xff00u >> bits);
	}
}

/* Stores an address (mapped IPv6 already turned into IPv4) and refuses networks with host bits. */
static int set_addr(struct pctx *x, const struct token *t, struct policy_rule *r, int family,
		    const uint8_t *a, bool cidr, unsigned prefix)
{
	unsigned nbytes = family == AF_INET ? 4 : 16;
	uint8_t net[16];
	char txt[INET6_ADDRSTRLEN], q[64];

	r->family = family;
	memcpy(r->addr, a, nbytes);
	r->host_kind = cidr ? POLICY_HOST_CIDR : POLICY_HOST_ADDR;
	r->prefix_len = cidr ? prefix : nbytes * 8;
	if (!cidr)
		return 0;
	memcpy(net, a, nbytes);
	mask_to_prefix(net, nbytes, prefix);
	if (memcmp(net, a, nbytes) == 0)
		return 0;
	inet_ntop(family, net, txt, sizeof(txt));
	return perr(x, t->col,
		    "network '%s' has host bits set (expected its network address, e.g. %s%s%s/%u)",
		    pol_quote(q, sizeof(q), t->val, t->val_len, 48), family == AF_INET ? "" : "[", txt,
		    family == AF_INET ? "" : "]", prefix);
}

static int parse_bracketed(struct pctx *x, const struct token *t, struct policy_rule *r, size_t *port_off)
{
	const char *v = t->val;
	size_t n = t->val_len, rb, i;
	const char *close = memchr(v, ']', n);
	uint8_t a[16], a4[4];
	unsigned prefix = 0;
	bool cidr = false;
	char q[64];

	if (!close)
		return perr(x, t->col, "missing ']' after the IPv6 address in '%s' (expected e.g. [::1]:443)",
			    pol_quote(q, sizeof(q), v, n, 48));
	rb = (size_t)(close - v);
	if (!pol_parse_ipv6(v + 1, rb - 1, a)) {
		if (pol_parse_ipv4(v + 1, rb - 1, a4))
			return perr(x, t->col, "IPv4 addresses are written without brackets (e.g. %s)",
				    pol_quote(q, sizeof(q), v + 1, rb - 1, 20));
		return perr(x, t->col + 1, "invalid IPv6 address '%s'",
			    pol_quote(q, sizeof(q), v + 1, rb - 1, 48));
	}
	i = rb + 1;
	if (i < n && v[i] == '/') {
		const char *colon = memchr(v + i, ':', n - i);
		size_t to = colon ? (size_t)(colon - v) : n;

		if (parse_prefix(x, t, i, to, 128, &prefix) < 0)
			return -1;
		cidr = true;
		i = to;
	}
	if (i < n) {
		char ch = v[i];

		if (ch != ':')
			return perr(x, t->col + (unsigned)i,
				    "unexpected '%s' after ']' (expected :port or /prefix)",
				    pol_quote(q, sizeof(q), &ch, 1, 4));
		*port_off = i + 1;
	}
	/* IPv4-mapped addresses are stored as IPv4, and so are mapped networks of prefix >= 96
	 * ([::ffff:10.0.0.0]/104 is 10.0.0.0/8). A shorter prefix over a mapped address always has
	 * host bits set (the ffff), so set_addr refuses it. */
	if (pol_is_v4_mapped(a) && (!cidr || prefix >= 96))
		return set_addr(x, t, r, AF_INET, a + 12, cidr, cidr ? prefix - 96 : 32);
	return set_addr(x, t, r, AF_INET6, a, cidr, prefix);
}

/* Destination selection, not certificate matching: `*.suffix` matches any name that ends in
 * ".suffix", at any depth (a.example.com and a.b.example.com), but never the bare suffix itself.
 * A pattern without ":port" means any port. */
static int parse_host(struct pctx *x, const struct token *t, struct policy_rule *r)
{
	const char *v = t->val, *colon, *star, *slash;
	size_t n = t->val_len, hlen, port_off = 0;
	uint8_t a[4];
	char q[64];

	r->port_lo = 0;
	r->port_hi = 65535;
	if (n > 0 && v[0] == '[') {
		if (parse_bracketed(x, t, r, &port_off) < 0)
			return -1;
		return port_off ? parse_port(x, t, port_off, r) : 0;
	}

	colon = memchr(v, ':', n);
	hlen = colon ? (size_t)(colon - v) : n;
	if (colon && memchr(colon + 1, ':', n - hlen - 1))
		return perr(x, t->col, "too many ':' in '%s' (IPv6 addresses go in brackets, e.g. [::1]:443)",
			    pol_quote(q, sizeof(q), v, n, 48));
	if (hlen == 0)
		return perr(x, t->col,
			    "missing host before ':' (expected a name, an address, a network or *)");
	/* The '*' to blame: in "*.a*b" the second one. */
	star = hlen >= 2 && v[0] == '*' && v[1] == '.' ? memchr(v + 1, '*', hlen - 1) : memchr(v, '*', hlen);
	slash = memchr(v, '/', hlen);

	if (hlen == 1 && v[0] == '*') {
		r->host_kind = POLICY_HOST_ANY;
	} else if (hlen >= 2 && v[0] == '*' && v[1] == '.' && !star) {
		char *low;

		if (!pol_hostname_ok(v + 2, hlen - 2))
			return perr(x, t->col + 2,
				    "invalid suffix '%s' after '*.' (expected e.g. *.example.com)",
				    pol_quote(q, sizeof(q), v + 2, hlen - 2, 48));
		low = pol_lower_dup(v + 1, hlen - 1);
		if (!low)
			return perr(x, t->col, "out of memory");
		r->host_kind = POLICY_HOST_SUFFIX;
		r->host = low;
	} else if (star) {
		return perr(x, t->col + (unsigned)(star - v), "'*' must stand alone or start '*.suffix'");
	} else if (slash) {
		unsigned prefix;

		if (!pol_parse_ipv4(v, (size_t)(slash - v), a))
			return perr(
			    x, t->col,
			    "invalid IPv4 network '%s' (expected e.g. 10.0.0.0/8; IPv6 networks go in "
			    "brackets: [fd00::]/8)",
			    pol_quote(q, sizeof(q), v, hlen, 48));
		if (parse_prefix(x, t, (size_t)(slash - v), hlen, 32, &prefix) < 0 ||
		    set_addr(x, t, r, AF_INET, a, true, prefix) < 0)
			return -1;
	} else if (pol_digits_dots(v, hlen)) {
		if (!pol_parse_ipv4(v, hlen, a))
			return perr(x, t->col,
				    "invalid IPv4 address '%s' (expected four numbers 0-255, e.g. 10.1.2.3)",
				    pol_quote(q, sizeof(q), v, hlen, 48));
		set_addr(x, t, r, AF_INET, a, false, 32);
	} else if (pol_hostname_ok(v, hlen)) {
		r->host_kind = POLICY_HOST_NAME;
		r->host = pol_lower_dup(v, hlen);
		if (!r->host)
			return perr(x, t->col, "out of memory");
	} else {
		return perr(
		    x, t->col,
		    "invalid host '%s' (expected a host name of letters, digits, '-' and '.', an IPv4 "
		    "address, [IPv6], a network, *.suffix or *)",
		    pol_quote(q, sizeof(q), v, hlen, 40));
	}
	return colon ? parse_port(x, t, hlen + 1, r) : 0;
}

/* ---- options ---- */

struct optset {
	enum policy_action action; /* the rule's (POLICY_PLAIN for a defaults line: every option) */
	struct policy_tls_opts o;
	uint32_t mask;		      /* keys given on this line */
	unsigned cols[POL_OPT_COUNT]; /* where (first occurrence) */
};

static int parse_option(struct pctx *x, const struct token *t, struct optset *s)
{
	const struct pol_opt_def *d;
	struct pol_opt_err e = {0, ""};
	char q[64], list[512];
	unsigned id;

	if (!t->has_eq)
		return perr(x, t->col, "expected a key=value option, got '%s'", tok_text(x, t, q, sizeof(q)));
	if (t->key_len == 0)
		return perr(x, t->col, "missing option name before '='");
	d = pol_opt_find(x->text + t->start, t->key_len);
	if (!d)
		return perr(x, t->col, "unknown option '%s' (expected one of %s)",
			    pol_quote(q, sizeof(q), x->text + t->start, t->key_len, 12),
			    pol_opt_list(list, sizeof(list), s->action));
	id = (unsigned)(d - pol_opts);
	if (!pol_opt_allowed((enum pol_opt_id)id, s->action))
		return perr(x, t->col, "option '%s' is for %s rules only (%s rules do not take it)", d->key,
			    s->action == POLICY_TLS ? "serve" : "tls", policy_action_name(s->action));
	if ((s->mask & (1u << id)) && id != POL_OPT_PIN_SHA256)
		return perr(x, t->col,
			    "duplicate option '%s' (already set at column %u; only pin-sha256 may repeat)",
			    d->key, s->cols[id]);
	if (t->val_len == 0)
		return perr(x, t->val_col, "empty value for %s= (expected %s)", d->key, d->expect);
	if ((s->action == POLICY_SERVE && id == POL_OPT_NAME
		 ? pol_serve_parse_name(d, &s->o, t->val, t->val_len, &e)
		 : d->parse(d, &s->o, t->val, t->val_len, &e)) < 0)
		return perr(x, t->val_col + (t->quoted ? 0 : (unsigned)e.off), "%s", e.msg);
	if (!(s->mask & (1u << id)))
		s->cols[id] = t->col;
	s->mask |= 1u << id;
	return 0;
}

/* Reads the rest of the rule as options. */
static int parse_options(struct pctx *x, struct optset *s)
{
	struct token t;
	int r;

	while ((r = lex_next(x, &t)) > 0)
		if (parse_option(x, &t, s) < 0)
			return -1;
	return r;
}

/* The column to blame for a problem involving keys a and b: where the rule set the later one, or
 * the action when both came from defaults. */
static unsigned blame(const struct optset *s, enum pol_opt_id a, enum pol_opt_id b, unsigned action_col)
{
	unsigned c = s->cols[a] > s->cols[b] ? s->cols[a] : s->cols[b];

	return c ? c : action_col;
}

/* " (after applying defaults)" when key a or b was not given on the rule itself. */
static const char *via_defaults(const struct optset *s, enum pol_opt_id a, enum pol_opt_id b)
{
	uint32_t both = 1u << a | 1u << b;

	return (s->mask & both) == both ? "" : " (after applying defaults)";
}

/* Checks that need the merged options of a tls rule. */
static int check_tls(struct pctx *x, const struct optset *s, unsigned action_col)
{
	const struct policy_tls_opts *o = &s->o;
	enum pol_opt_id present = o->cert ? POL_OPT_CERT : POL_OPT_KEY;

	if (o->min_version && o->max_version && o->min_version > o->max_version)
		return perr(x, blame(s, POL_OPT_MIN_VERSION, POL_OPT_MAX_VERSION, action_col),
			    "min-version=1.%d is above max-version=1.%d%s", o->min_version % 10,
			    o->max_version % 10, via_defaults(s, POL_OPT_MIN_VERSION, POL_OPT_MAX_VERSION));
	if (o->verify == POLICY_VERIFY_PIN_ONLY && o->n_pins == 0)
		return perr(x, blame(s, POL_OPT_VERIFY, POL_OPT_VERIFY, action_col),
			    "verify=pin-only needs at least one pin-sha256=%s",
			    via_defaults(s, POL_OPT_VERIFY, POL_OPT_VERIFY));
	if (o->verify == POLICY_VERIFY_OFF && o->n_pins > 0)
		return perr(x, blame(s, POL_OPT_VERIFY, POL_OPT_PIN_SHA256, action_col),
			    "verify=off ignores pin-sha256= (use verify=pin-only to trust the pins alone, or "
			    "verify=on)%s",
			    via_defaults(s, POL_OPT_VERIFY, POL_OPT_PIN_SHA256));
	if (o->verify == POLICY_VERIFY_PIN_ONLY && !o->ca_file && !o->ca_dir) {
		enum pol_opt_id rev = o->ocsp_stapling == POLICY_OCSP_REQUIRE ? POL_OPT_OCSP_STAPLING
				      : o->crl_file			      ? POL_OPT_CRL_FILE
				      : o->crl_dir			      ? POL_OPT_CRL_DIR
									      : POL_OPT_COUNT;
		if (rev != POL_OPT_COUNT)
			return perr(
			    x, blame(s, POL_OPT_VERIFY, rev, action_col),
			    "verify=pin-only with %s needs ca-file= or ca-dir= (the CA that signs the "
			    "revocation data); without it nothing would be checked%s",
			    rev == POL_OPT_OCSP_STAPLING ? "ocsp-stapling=require"
			    : rev == POL_OPT_CRL_FILE	 ? "crl-file="
							 : "crl-dir=",
			    via_defaults(s, POL_OPT_VERIFY, rev));
	}
	if (!o->cert != !o->key)
		return perr(x, blame(s, POL_OPT_CERT, POL_OPT_KEY, action_col),
			    "cert= and key= go together (missing %s=)%s", o->cert ? "key" : "cert",
			    via_defaults(s, present, present));
	if (o->key_password_file && !o->key)
		return perr(x, blame(s, POL_OPT_KEY_PASSWORD_FILE, POL_OPT_KEY_PASSWORD_FILE, action_col),
			    "key-password-file= needs cert= and key=%s",
			    via_defaults(s, POL_OPT_KEY_PASSWORD_FILE, POL_OPT_KEY_PASSWORD_FILE));
	if (o->proxy_user_file && o->proxy == POLICY_PROXY_NONE)
		return perr(x, blame(s, POL_OPT_PROXY_USER_FILE, POL_OPT_PROXY_USER_FILE, action_col),
			    "proxy-user-file= needs proxy=%s",
			    via_defaults(s, POL_OPT_PROXY_USER_FILE, POL_OPT_PROXY_USER_FILE));
	return 0;
}

/* A `defaults` line: options that later tls rules of the same text inherit; a later `defaults`
 * line replaces the keys it names (all pins at once for pin-sha256). */
static int parse_defaults(struct pctx *x, const struct token *kw)
{
	struct optset s;
	unsigned i;
	int r;

	memset(&s, 0, sizeof(s));
	s.action = POLICY_PLAIN; /* defaults take every option */
	pol_opts_init(&s.o);
	r = parse_options(x, &s);
	if (r == 0 && s.mask == 0)
		r = perr(x, kw->col + (unsigned)kw->len, "'defaults' needs at least one key=value option");
	for (i = 0; r == 0 && i < POL_OPT_COUNT; i++) {
		if (!(s.mask & (1u << i)))
			continue;
		if (pol_opts[i].copy(&pol_opts[i], &x->defs, &s.o) < 0)
			r = perr(x, kw->col, "out of memory");
		x->defs_mask |= 1u << i;
	}
	pol_opts_free(&s.o);
	return r;
}

static int append_rule(struct pctx *x, const struct policy_rule *r)
{
	struct policy *p = x->p;
	size_t n = p->n_rules;

	/* Capacity is implicit: 8 while n <= 8, then the next power of two. */
	if (n == 0 || (n >= 8 && (n & (n - 1)) == 0)) {
		size_t cap = n < 8 ? 8 : n * 2;
		struct policy_rule *nr;

		if (cap > SIZE_MAX / sizeof(*nr))
			return perr(x, 1, "too many rules");
		nr = realloc(p->rules, cap * sizeof(*nr));
		if (!nr)
			return perr(x, 1, "out of memory");
		p->rules = nr;
	}
	p->rules[n] = *r;
	p->n_rules = n + 1;
	return 0;
}

static void free_rule(struct policy_rule *r)
{
	free(r->host);
	r->host = NULL;
	pol_opts_free(&r->tls);
}

/* One rule: action host[:port] [key=value ...], or defaults key=value ..., or nothing. */
static int parse_rule(struct pctx *x)
{
	static const char *const actions[] = {"plain", "tls", "deny", "serve"};
	static const enum policy_action values[] = {POLICY_PLAIN, POLICY_TLS, POLICY_DENY, POLICY_SERVE};
	struct token kw, host, t;
	struct policy_rule rule;
	struct optset s;
	unsigned i;
	int r;
	char q[64];

	r = lex_next(x, &kw);
	if (r <= 0)
		return r;
	if (kw.len == 8 && memcmp(x->text + kw.start, "defaults", 8) == 0)
		return parse_defaults(x, &kw);
	for (i = 0; i < 4; i++)
		if (kw.len == strlen(actions[i]) && memcmp(x->text + kw.start, actions[i], kw.len) == 0)
			break;
	if (i == 4)
		return perr(x, kw.col, "unknown action '%s' (expected tls, plain, deny, serve or defaults)",
			    tok_text(x, &kw, q, sizeof(q)));

	r = lex_next(x, &host);
	if (r < 0)
		return -1;
	if (r == 0)
		return perr(
		    x, kw.col + (unsigned)kw.len,
		    "missing host pattern after '%s' (expected host[:port], e.g. api.example.com:443)",
		    actions[i]);
	if (host.has_eq)
		return perr(
		    x, host.col,
		    "expected a host pattern after '%s', got the option '%s' (host[:port] comes first)",
		    actions[i], tok_text(x, &host, q, sizeof(q)));

	memset(&rule, 0, sizeof(rule));
	memset(&s, 0, sizeof(s));
	pol_opts_init(&s.o);
	rule.action = values[i];
	s.action = values[i];
	rule.source = x->own_source;
	rule.line = x->line;
	if (parse_host(x, &host, &rule) < 0)
		goto fail;
	if (rule.action == POLICY_SERVE && rule.host_kind == POLICY_HOST_SUFFIX) {
		perr(x, host.col,
		     "serve rules match the local address a client reached, which has no name: '*.suffix' "
		     "cannot match (use *, an address or a network; name=*.suffix selects by SNI)");
		goto fail;
	}

	if (rule.action != POLICY_TLS && rule.action != POLICY_SERVE) {
		r = lex_next(x, &t);
		if (r > 0 && t.has_eq)
			perr(x, t.col,
			     "options are not allowed on %s rules (only tls and serve rules take options)",
			     actions[i]);
		else if (r > 0)
			perr(x, t.col, "unexpected '%s' after the host pattern (%s rules take no options)",
			     tok_text(x, &t, q, sizeof(q)), actions[i]);
		if (r != 0)
			goto fail;
	} else {
		if (parse_options(x, &s) < 0)
			goto fail;
		for (i = 0; i < POL_OPT_COUNT; i++) {
			/* defaults apply to the rules of the actions that take each option */
			if (!(x->defs_mask & (1u << i)) || (s.mask & (1u << i)) ||
			    !pol_opt_allowed((enum pol_opt_id)i, rule.action))
				continue;
			if (pol_opts[i].copy(&pol_opts[i], &s.o, &x->defs) < 0) {
				perr(x, kw.col, "out of memory");
				goto fail;
			}
		}
		if (rule.action == POLICY_TLS && check_tls(x, &s, kw.col) < 0)
			goto fail;
		if (rule.action == POLICY_SERVE) {
			char msg[sizeof(x->err->message)];
			unsigned col = kw.col;

			if (pol_serve_check(&s.o, s.mask, x->defs_mask, s.cols, kw.col, &col, msg,
					    sizeof(msg)) < 0) {
				perr(x, col, "%s", msg);
				goto fail;
			}
		}
	}
	rule.tls = s.o;
	if (append_rule(x, &rule) < 0) {
		free_rule(&rule);
		return -1;
	}
	return 0;
fail:
	pol_opts_free(&s.o);
	free_rule(&rule);
	return -1;
}

/* ---- entry points ---- */

static const char *add_source(struct policy *p, const char *source)
{
	char **ns;
	char *s = strdup(source);

	if (!s)
		return NULL;
	ns = realloc(p->sources, (p->n_sources + 1) * sizeof(*ns));
	if (!ns) {
		free(s);
		return NULL;
	}
	ns[p->n_sources++] = s;
	p->sources = ns;
	return s;
}

int policy_parse(struct policy *p, const char *text, size_t len, const char *source, bool rules_mode,
		 struct policy_error *err)
{
	struct policy_error dummy;
	struct pctx *x;
	size_t pos = 0;
	int rc = 0;

	if (!err)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	if (!source)
		source = rules_mode ? POL_RULES_SOURCE : "(policy)";
	if (!p)
		return ferr(err, source, "no policy to parse into");
	if (!text) {
		if (len)
			return ferr(err, source, "no text");
		text = "";
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return ferr(err, source, "out of memory");
	x->p = p;
	x->text = text;
	x->len = len;
	x->source = source;
	x->rules = rules_mode;
	x->err = err;
	x->line = 1;
	pol_opts_init(&x->defs);
	x->own_source = add_source(p, source);
	if (!x->own_source) {
		free(x);
		return ferr(err, source, "out of memory");
	}

	for (;;) {
		size_t limit;

		if (pos == 0 || pos > x->line_end) {
			const char *nl = memchr(text + pos, '\n', len - pos);

			x->line_end = nl ? (size_t)(nl - text) : len;
		}
		limit = x->line_end - pos > POL_MAX_LINE ? pos + POL_MAX_LINE : x->line_end;
		x->seg = pos;
		x->c = cur_make(text, pos, limit);
		if (parse_rule(x) < 0) {
			rc = -1;
			break;
		}
		if (x->c.pos >= len)
			break;
		pos = x->c.pos + 1;
		x->line++;
	}
	pol_opts_free(&x->defs);
	free(x);
	return rc;
}

/* Reads a policy file: open, then fstat on the opened descriptor (so a symlink is followed only to
 * a regular file, and a FIFO cannot block us: O_NONBLOCK), at most POL_MAX_FILE bytes. */
static int read_file(const char *path, char **out, size_t *outlen, struct policy_error *err)
{
	struct stat st;
	char *buf = NULL, ebuf[128];
	size_t n = 0;
	int fd, rc = -1;

	if (!*path)
		return ferr(err, path, "empty policy file path");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return ferr(err, path, "cannot open the policy file: %s",
			    strerror_r(errno, ebuf, sizeof(ebuf)));
	if (fstat(fd, &st) < 0) {
		ferr(err, path, "cannot stat the policy file: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ferr(err, path, "the policy is not a regular file (expected a file, or a symlink to one)");
		goto out;
	}
	if (st.st_size > (off_t)POL_MAX_FILE) {
		ferr(err, path, "the policy file is larger than 1 MiB (%lld bytes)", (long long)st.st_size);
		goto out;
	}
	/* Reads one byte more than allowed to notice a file that grew since fstat. */
	buf = malloc(POL_MAX_FILE + 1);
	if (!buf) {
		ferr(err, path, "out of memory");
		goto out;
	}
	while (n <= POL_MAX_FILE) {
		ssize_t k = read(fd, buf + n, POL_MAX_FILE + 1 - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			ferr(err, path, "cannot read the policy file: %s",
			     strerror_r(errno, ebuf, sizeof(ebuf)));
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	if (n > POL_MAX_FILE) {
		ferr(err, path, "the policy file is larger than 1 MiB");
		goto out;
	}
	*out = buf;
	*outlen = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

int policy_load(struct policy *p, const char *rules_text, const char *file_path, struct policy_error *err)
{
	struct policy_error dummy;
	char *buf = NULL;
	size_t n = 0;
	int rc;

	if (!err)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	if (!p)
		return ferr(err, file_path ? file_path : POL_RULES_SOURCE, "no policy to load into");
	memset(p, 0, sizeof(*p));
	if (rules_text && policy_parse(p, rules_text, strlen(rules_text), POL_RULES_SOURCE, true, err) < 0)
		goto fail;
	if (file_path) {
		if (read_file(file_path, &buf, &n, err) < 0)
			goto fail;
		rc = policy_parse(p, buf, n, file_path, false, err);
		free(buf);
		if (rc < 0)
			goto fail;
	}
	return 0;
fail:
	policy_free(p);
	return -1;
}

void policy_free(struct policy *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->n_rules; i++)
		free_rule(&p->rules[i]);
	free(p->rules);
	for (i = 0; i < p->n_sources; i++)
		free(p->sources[i]);
	free(p->sources);
	memset(p, 0, sizeof(*p));
}
