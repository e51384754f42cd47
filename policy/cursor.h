/* cursor.h: a bounded read cursor over a byte buffer, used by every parser in policy/.
 * A cursor never reads outside [pos, end): peeking past the end yields -1 and advancing past it
 * is a no-op, so the parsers above it never walk raw pointers. Header-only (static inline). */
#ifndef TLSSHIM_POLICY_CURSOR_H
#define TLSSHIM_POLICY_CURSOR_H

#include <stdbool.h>
#include <stddef.h>

struct cursor {
	const char *buf; /* the whole text */
	size_t pos;	 /* next byte to read (absolute offset into buf) */
	size_t end;	 /* one past the last readable byte */
};

static inline struct cursor cur_make(const char *buf, size_t pos, size_t end)
{
	struct cursor c = {buf, pos < end ? pos : end, end};
	return c;
}

static inline bool cur_done(const struct cursor *c)
{
	return c->pos >= c->end;
}

static inline size_t cur_left(const struct cursor *c)
{
	return c->pos < c->end ? c->end - c->pos : 0;
}

/* The next byte (0..255), or -1 at the end. */
static inline int cur_peek(const struct cursor *c)
{
	return c->pos < c->end ? (unsigned char)c->buf[c->pos] : -1;
}

/* The byte k positions ahead, or -1 past the end. */
static inline int cur_peek_at(const struct cursor *c, size_t k)
{
	return k < cur_left(c) ? (unsigned char)c->buf[c->pos + k] : -1;
}

static inline void cur_next(struct cursor *c)
{
	if (c->pos < c->end)
		c->pos++;
}

static inline void cur_skip(struct cursor *c, size_t n)
{
	c->pos += n < cur_left(c) ? n : cur_left(c);
}

/* Consumes ch if it is next. */
static inline bool cur_eat(struct cursor *c, int ch)
{
	if (cur_peek(c) != ch)
		return false;
	cur_next(c);
	return true;
}

/* Offset of the first ch at or after the position, or end when there is none. */
static inline size_t cur_find(const struct cursor *c, int ch)
{
	size_t i;

	for (i = c->pos; i < c->end; i++)
		if ((unsigned char)c->buf[i] == ch)
			return i;
	return c->end;
}

/* A cursor over the next n bytes only (clamped to what is left). */
static inline struct cursor cur_sub(const struct cursor *c, size_t n)
{
	return cur_make(c->buf, c->pos, c->pos + (n < cur_left(c) ? n : cur_left(c)));
}

/* Reads a decimal number of at least one digit whose value is at most max. Returns false (having
 * consumed nothing) when there is no digit or the value exceeds max. */
static inline bool cur_take_uint(struct cursor *c, unsigned long max, unsigned long *out)
{
	size_t start = c->pos;
	unsigned long v = 0;
	int ch;

	while ((ch = cur_peek(c)) >= '0' && ch <= '9') {
		unsigned long d = (unsigned long)(ch - '0');

		if (d > max || v > (max - d) / 10) {
			c->pos = start;
			return false;
		}
		v = v * 10 + d;
		cur_next(c);
	}
	if (c->pos == start)
		return false;
	*out = v;
	return true;
}

#endif
