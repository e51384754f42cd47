/* ev_common.h: helpers for the ev_* test clients (issue 4: event loops, threads, processes).
 * Header-only, libc + pthread only. Built into each client by the Makefile's clients rule (which tracks
 * only the .c file: after changing this header, touch the ev_*.c files or rebuild the clients).
 *
 * Conventions: a client prints "key=value" result lines on stdout and "PROG: FAIL: why" on stderr for
 * every broken expectation; exit 0 only when every expectation held. */
#ifndef TLSSHIM_EV_COMMON_H
#define TLSSHIM_EV_COMMON_H

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/wait.h>

#include "../integration/clientlib.h"

static const char *ev_prog = "ev";
static atomic_int ev_failures;

/* An expectation that did not hold: reported, counted, the run goes on. */
__attribute__((format(printf, 1, 2), unused)) static void ev_fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: FAIL: %s\n", ev_prog, msg);
	fflush(stderr);
	atomic_fetch_add(&ev_failures, 1);
}

/* A failure after which the run cannot go on. */
__attribute__((format(printf, 1, 2), noreturn, unused)) static void ev_die(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: FAIL: %s\n", ev_prog, msg);
	fflush(stdout);
	fflush(stderr);
	exit(1);
}

UNUSED_OK static int ev_exit_status(void)
{
	fflush(stdout);
	return atomic_load(&ev_failures) ? 1 : 0;
}

/* Blocking connect (getaddrinfo; the first address). Dies on failure. */
UNUSED_OK static int ev_connect(const char *host, const char *port)
{
	const char *stage = "connect";
	int fd = connect_host(host, port, AF_INET, &stage);
	if (fd < 0)
		ev_die("%s to %s:%s: errno=%s", stage, host, port, errno_name(errno));
	return fd;
}

/* The error name, or "0". */
UNUSED_OK static const char *ev_err(int e)
{
	return e ? errno_name(e) : "0";
}

UNUSED_OK static void ev_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

UNUSED_OK static void ev_write_all(int fd, const void *buf, size_t n, const char *what)
{
	if (write_full(fd, buf, n) != 0)
		ev_die("%s: write: errno=%s", what, errno_name(errno));
}

/* Reads exactly n bytes (blocking fd); dies when fewer arrive. */
UNUSED_OK static void ev_read_exact(int fd, void *buf, size_t n, const char *what)
{
	ssize_t r = read_full(fd, buf, n);
	if (r != (ssize_t)n)
		ev_die("%s: read %zd of %zu bytes (errno=%s)", what, r, n, r < 0 ? errno_name(errno) : "EOF");
}

/* ---- the pattern: 64 KiB blocks, each a 16-byte header (seed, block number) plus a seeded base ---- */
#define EV_BLOCK 65536
struct ev_pattern {
	uint64_t seed;
	uint8_t base[EV_BLOCK];
};

UNUSED_OK static void ev_pattern_init(struct ev_pattern *p, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
	p->seed = seed;
	for (size_t i = 0; i < EV_BLOCK; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p->base[i] = (uint8_t)(x >> 24);
	}
}

/* Fills out[0..n) with the pattern bytes at stream offset off. */
UNUSED_OK static void ev_pattern_fill(const struct ev_pattern *p, uint64_t off, uint8_t *out, size_t n)
{
	while (n > 0) {
		uint64_t blk = off / EV_BLOCK;
		size_t in = (size_t)(off % EV_BLOCK);
		size_t take = EV_BLOCK - in < n ? EV_BLOCK - in : n;
		uint8_t hdr[16];
		for (int i = 0; i < 8; i++) {
			hdr[i] = (uint8_t)(p->seed >> (8 * i));
			hdr[8 + i] = (uint8_t)(blk >> (8 * i));
		}
		for (size_t k = 0; k < take; k++) {
			size_t pos = in + k;
			out[k] = pos < 16 ? hdr[pos] : p->base[pos];
		}
		out += take;
		off += take;
		n -= take;
	}
}

UNUSED_OK static void ev_sha_hex_of(const void *buf, size_t n, char hex[65])
{
	struct sha256 s;
	sha256_init(&s);
	sha256_update(&s, buf, n);
	sha256_hex(&s, hex);
}

/* ---- one readiness API over poll, select, level-triggered epoll and edge-triggered epoll ---- */
enum ev_method { EV_POLL, EV_SELECT, EV_EPOLL, EV_EPOLLET };
struct ev_waiter {
	enum ev_method m;
	int fd, epfd;
	short events;
};

UNUSED_OK static enum ev_method ev_method_parse(const char *s)
{
	if (!strcmp(s, "poll"))
		return EV_POLL;
	if (!strcmp(s, "select"))
		return EV_SELECT;
	if (!strcmp(s, "epoll"))
		return EV_EPOLL;
	if (!strcmp(s, "epollet"))
		return EV_EPOLLET;
	ev_die("unknown method %s (poll, select, epoll, epollet)", s);
}

static uint32_t ev_epoll_events(const struct ev_waiter *w)
{
	return (uint32_t)((w->events & POLLIN ? EPOLLIN : 0) | (w->events & POLLOUT ? EPOLLOUT : 0) |
			  (w->m == EV_EPOLLET ? EPOLLET : 0));
}

/* events: POLLIN and/or POLLOUT. For epoll the fd is registered once, here. */
UNUSED_OK static void ev_waiter_init(struct ev_waiter *w, enum ev_method m, int fd, short events)
{
	w->m = m;
	w->fd = fd;
	w->events = events;
	w->epfd = -1;
	if (m == EV_EPOLL || m == EV_EPOLLET) {
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (w->epfd < 0)
			ev_die("epoll_create1: errno=%s", errno_name(errno));
		struct epoll_event ev = {.events = ev_epoll_events(w),
					 .data.u64 = 0x5eed0000ULL + (unsigned)fd};
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
			ev_die("epoll_ctl ADD: errno=%s", errno_name(errno));
	}
}

/* Changes the interest (epoll: EPOLL_CTL_MOD). */
UNUSED_OK static void ev_waiter_mod(struct ev_waiter *w, short events)
{
	w->events = events;
	if (w->epfd >= 0) {
		struct epoll_event ev = {.events = ev_epoll_events(w),
					 .data.u64 = 0x5eed0000ULL + (unsigned)w->fd};
		if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, w->fd, &ev) != 0)
			ev_die("epoll_ctl MOD: errno=%s", errno_name(errno));
	}
}

UNUSED_OK static void ev_waiter_close(struct ev_waiter *w)
{
	if (w->epfd >= 0)
		close(w->epfd);
	w->epfd = -1;
}

/* Waits up to timeout_ms. Returns the readiness as poll bits (POLLIN, POLLOUT, POLLERR, POLLHUP), 0 on
 * timeout, -1 with errno on error. Select reports an error condition as readable and writable. */
UNUSED_OK static int ev_wait(struct ev_waiter *w, int timeout_ms)
{
	if (w->m == EV_POLL) {
		struct pollfd p = {.fd = w->fd, .events = w->events};
		int n = poll(&p, 1, timeout_ms);
		return n <= 0 ? n : p.revents;
	}
	if (w->m == EV_SELECT) {
		fd_set r, wr;
		FD_ZERO(&r);
		FD_ZERO(&wr);
		if (w->events & POLLIN)
			FD_SET(w->fd, &r);
		if (w->events & POLLOUT)
			FD_SET(w->fd, &wr);
		struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
		int n = select(w->fd + 1, &r, &wr, NULL, timeout_ms < 0 ? NULL : &tv);
		if (n <= 0)
			return n;
		return (FD_ISSET(w->fd, &r) ? POLLIN : 0) | (FD_ISSET(w->fd, &wr) ? POLLOUT : 0);
	}
	struct epoll_event evs[4];
	int n = epoll_wait(w->epfd, evs, 4, timeout_ms);
	if (n <= 0)
		return n;
	int rev = 0;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 != 0x5eed0000ULL + (unsigned)w->fd) {
			ev_fail("epoll_wait returned data %#llx that the program never registered",
				(unsigned long long)evs[i].data.u64);
			continue;
		}
		uint32_t e = evs[i].events;
		rev |= (e & EPOLLIN ? POLLIN : 0) | (e & EPOLLOUT ? POLLOUT : 0) |
		       (e & EPOLLERR ? POLLERR : 0) | (e & EPOLLHUP ? POLLHUP : 0);
	}
	return rev;
}

UNUSED_OK static const char *ev_revents_text(int rev, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s%s", rev == 0 ? "none" : "", rev & POLLIN ? "IN " : "",
		 rev & POLLOUT ? "OUT " : "", rev & POLLERR ? "ERR " : "", rev & POLLHUP ? "HUP " : "");
	return buf;
}

#endif
