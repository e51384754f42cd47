/* cork.c: holding a burst's first record for the write that follows it (cork.h). */
#include "preload/cork.h"
#include "preload/child.h"
#include "preload/conn.h"
#include "preload/fdtab.h"
#include "preload/libc.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

/* A write that starts within this long of the previous one, with no read between, continues its burst. */
#define CORK_BURST_GAP_US 1000
/* pair_score: +1 for each pair seen, -CORK_MISS for each held record nothing followed; corking from
 * CORK_SCORE_ON, capped at CORK_SCORE_MAX (so a change of habit is learnt within a few bursts). */
#define CORK_SCORE_ON  4
#define CORK_SCORE_MAX 8
#define CORK_MISS      2
/* Only records this small are held: a larger write fills segments of its own. */
#define CORK_LEN_MAX 16384

__thread int cork_pending_fd = -1;

static long long mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void score_miss(struct conn *c)
{
	c->pair_score = c->pair_score > CORK_MISS ? (unsigned char)(c->pair_score - CORK_MISS) : 0;
}

static void score_pair(struct conn *c)
{
	if (c->pair_score < CORK_SCORE_MAX)
		c->pair_score++;
}

/* Pushes c's held record now (lock held). TCP_CORK off always pushes what the socket queues and
 * changes nothing else while the program holds no cork of its own (and with one, nothing is held). */
static void push_locked(struct conn *c, int fd)
{
	static const int off = 0;
	c->corked = false;
	libc.setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
}

void cork_flush_pending(void)
{
	if (child_shares_parent_memory()) /* vfork: the variable and the session are the parent's */
		return;
	int fd = cork_pending_fd;
	cork_pending_fd = -1;
	struct conn *c = conn_get(fd);
	if (!c)
		return; /* closed since: the close pushed it */
	conn_lock(c);
	if (c->corked) {
		push_locked(c, fd);
		score_miss(c);
	}
	conn_unlock(c);
	conn_put(c);
}

bool cork_before_write(struct conn *c, size_t len, int flags)
{
	if (!c->coalesce && !(flags & MSG_MORE))
		return false;
	long long now = mono_us();
	bool cont = !c->read_since_write && now - c->last_write_us < CORK_BURST_GAP_US;
	if (c->corked) {
		c->corked = false; /* this write pushes it (or the kernel did, after a pause) */
		if (cont)
			score_pair(c);
		else
			score_miss(c);
	} else if (cont && c->last_write_first) {
		score_pair(c); /* a pair the shim did not hold for: learning */
	}
	c->last_write_first = !cont;
	c->read_since_write = false;
	c->last_write_us = now;
	if (flags & MSG_MORE)
		return !c->program_cork; /* the program's own: held as the kernel would hold it */
	return c->coalesce && !cont && !c->program_cork && c->pair_score >= CORK_SCORE_ON &&
	       len <= CORK_LEN_MAX;
}

void cork_after_write(struct conn *c, int fd, bool sent)
{
	if (!sent)
		return;
	c->corked = true;
	cork_pending_fd = fd; /* conn_write pushed any other one before it took this lock */
}

void cork_on_read(struct conn *c, int fd)
{
	c->read_since_write = true;
	if (c->corked) {
		push_locked(c, fd);
		score_miss(c);
	}
}

void cork_program_cork(struct conn *c, bool on)
{
	c->program_cork = on;
	if (!on)
		c->corked = false; /* the program's uncork pushes everything queued */
}
