/* ev_epoll MODE HOST PORT: epoll semantics for TLS fds, one mode per flag (issue 12). Server: evserver
 * onreq ("send K\n" answers K pattern bytes), or burst:N for rdhup. Every check fails the run (exit 1)
 * with a FAIL line; the last stdout line is "MODE=ok ..." with the figures.
 *   lt         level triggered: nothing for a fresh connection (TLS 1.3 tickets only), IN while bytes
 *              remain (also after a partial read), nothing once drained
 *   et         edge triggered: one event per arrival, nothing after draining to EAGAIN until new data
 *   oneshot    EPOLLONESHOT: one event, then nothing (data unread, or partly read) until EPOLL_CTL_MOD;
 *              two threads blocked on one set when it is re-armed: exactly one gets the event
 *   exclusive  EPOLLEXCLUSIVE in two sets, one thread waiting on each: at least one is woken and gets
 *              the data; MOD fails with EINVAL and EXCLUSIVE with ONESHOT/RDHUP too, exactly as for a
 *              plain socket; DEL + ADD works
 *   rdhup      (burst:N server) IN without RDHUP while the server is open, IN|RDHUP after its close,
 *              never EPOLLPRI
 *   multi      one fd in two sets: each reports with its own data; DEL from one leaves the other
 *   shared     3 TLS fds and a pipe, all with data 0: one event per ready fd, never merged or lost
 *   close      a registered, readable fd is closed and its number reused by a new TLS connection: no
 *              stale event; the new one reports once registered
 *   fork       registered before fork: the child sees it (state at fork) and its own connection added
 *              after the fork; the parent afterwards sees only its own registration
 *   prereg     registered (IN|OUT|ET) before a non-blocking connect, as nginx does: OUT once the
 *              handshake is done, IN for the answer, all bytes, nothing for the handshake itself */
#include "ev_common.h"

#include <fcntl.h>

static const char *host, *port;

static int tls_conn(void)
{
	int fd = ev_connect(host, port);
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	return fd;
}

static void req(int fd, int k)
{
	char line[32];
	int len = snprintf(line, sizeof line, "send %d\n", k);
	ev_write_all(fd, line, (size_t)len, "request");
}

static int ep_new(void)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		ev_die("epoll_create1: errno=%s", errno_name(errno));
	return ep;
}

static void ep_add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = {.events = events, .data.u64 = data};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		ev_die("epoll_ctl ADD fd %d events %#x: errno=%s", fd, events, errno_name(errno));
}

static void ep_mod(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = {.events = events, .data.u64 = data};
	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) != 0)
		ev_die("epoll_ctl MOD fd %d: errno=%s", fd, errno_name(errno));
}

/* epoll_wait with EINTR retried. */
static int ep_wait(int ep, struct epoll_event *evs, int max, int timeout)
{
	int n;
	do
		n = epoll_wait(ep, evs, max, timeout);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		ev_die("epoll_wait: errno=%s", errno_name(errno));
	return n;
}

/* Expects exactly one event with data `data` containing `want` (and none of `never`). */
static uint32_t expect_one(const char *what, int ep, int timeout, uint64_t data, uint32_t want,
			   uint32_t never)
{
	struct epoll_event evs[8];
	int n = ep_wait(ep, evs, 8, timeout);
	if (n != 1) {
		ev_fail("%s: %d events, want 1", what, n);
		return 0;
	}
	if (evs[0].data.u64 != data)
		ev_fail("%s: data %#llx, want %#llx", what, (unsigned long long)evs[0].data.u64,
			(unsigned long long)data);
	if ((evs[0].events & want) != want)
		ev_fail("%s: events %#x lack %#x", what, evs[0].events, want);
	if (evs[0].events & never)
		ev_fail("%s: events %#x include %#x", what, evs[0].events, evs[0].events & never);
	return evs[0].events;
}

static void expect_none(const char *what, int ep, int timeout)
{
	struct epoll_event evs[8];
	int n = ep_wait(ep, evs, 8, timeout);
	if (n != 0)
		ev_fail("%s: %d events (first %#x data %#llx), want none", what, n, evs[0].events,
			(unsigned long long)evs[0].data.u64);
}

/* Reads until EAGAIN (or EOF); returns the byte count. */
static size_t drain(int fd, struct sha256 *s)
{
	uint8_t buf[4096];
	size_t total = 0;
	for (;;) {
		ssize_t k = read(fd, buf, sizeof buf);
		if (k > 0) {
			if (s)
				sha256_update(s, buf, (size_t)k);
			total += (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno != EAGAIN)
			ev_fail("read: errno=%s", errno_name(errno));
		return total;
	}
}

/* Reads exactly n bytes, waiting on ep between reads (up to 5 s in all). */
static void read_n(int ep, int fd, size_t n, const char *what)
{
	size_t got = 0;
	long long end = now_ms() + 5000;
	while (got < n && now_ms() < end) {
		got += drain(fd, NULL);
		if (got < n) {
			struct epoll_event evs[8];
			ep_wait(ep, evs, 8, 200);
		}
	}
	if (got != n)
		ev_fail("%s: read %zu bytes, want %zu", what, got, n);
}

static void mode_lt(void)
{
	int fd = tls_conn(), ep = ep_new();
	ep_add(ep, fd, EPOLLIN, 0xA1);
	expect_none("lt: fresh connection (session tickets only)", ep, 400);
	char b;
	if (read(fd, &b, 1) != -1 || errno != EAGAIN)
		ev_fail("lt: read on a fresh connection: want EAGAIN");
	req(fd, 20000);
	expect_one("lt: after the answer arrived", ep, 3000, 0xA1, EPOLLIN, EPOLLOUT | EPOLLPRI);
	ev_sleep_ms(200);
	uint8_t buf[100];
	if (read(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
		ev_fail("lt: first 100-byte read");
	expect_one("lt: after a partial read", ep, 0, 0xA1, EPOLLIN, 0);
	expect_one("lt: again without reading", ep, 0, 0xA1, EPOLLIN, 0);
	size_t total = 100;
	long long end = now_ms() + 5000;
	while (total < 20000 && now_ms() < end) {
		total += drain(fd, NULL);
		if (total < 20000)
			ep_wait(ep, (struct epoll_event[8]){0}, 8, 200);
	}
	if (total != 20000)
		ev_fail("lt: read %zu bytes, want 20000", total);
	expect_none("lt: drained", ep, 300);
	printf("lt=ok bytes=%zu\n", total);
}

static void mode_et(void)
{
	int fd = tls_conn(), ep = ep_new();
	ep_add(ep, fd, EPOLLIN | EPOLLET, 0xE1);
	expect_none("et: fresh connection", ep, 300);
	req(fd, 20000);
	int events = 0;
	size_t total = 0;
	long long end = now_ms() + 5000;
	while (total < 20000 && now_ms() < end) {
		struct epoll_event evs[8];
		int n = ep_wait(ep, evs, 8, 1000);
		for (int i = 0; i < n; i++)
			if (evs[i].data.u64 != 0xE1 || !(evs[i].events & EPOLLIN))
				ev_fail("et: event %#x data %#llx", evs[i].events,
					(unsigned long long)evs[i].data.u64);
		events += n;
		total += drain(fd, NULL);
	}
	if (total != 20000)
		ev_fail("et: read %zu bytes, want 20000", total);
	expect_none("et: drained to EAGAIN, nothing new", ep, 400);
	req(fd, 5000);
	expect_one("et: new data", ep, 3000, 0xE1, EPOLLIN, 0);
	ev_sleep_ms(200);
	size_t second = drain(fd, NULL);
	while (second < 5000 && ep_wait(ep, (struct epoll_event[8]){0}, 8, 1000) > 0)
		second += drain(fd, NULL);
	if (second != 5000)
		ev_fail("et: second answer %zu bytes, want 5000", second);
	expect_none("et: drained again", ep, 300);
	printf("et=ok events=%d bytes=%zu\n", events, total + second);
}

static int os_ep;
static atomic_int os_got, os_ready;

static void *oneshot_waiter(void *arg)
{
	(void)arg;
	struct epoll_event evs[4];
	atomic_fetch_add(&os_ready, 1);
	int n = ep_wait(os_ep, evs, 4, 1500);
	atomic_fetch_add(&os_got, n);
	return NULL;
}

static void mode_oneshot(void)
{
	int fd = tls_conn(), ep = ep_new();
	ep_add(ep, fd, EPOLLIN | EPOLLONESHOT, 0x05);
	req(fd, 20000);
	expect_one("oneshot: first", ep, 3000, 0x05, EPOLLIN, 0);
	expect_none("oneshot: disarmed, data unread", ep, 300);
	uint8_t buf[100];
	ev_sleep_ms(100);
	if (read(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
		ev_fail("oneshot: 100-byte read");
	expect_none("oneshot: disarmed, after a partial read", ep, 300);
	ep_mod(ep, fd, EPOLLIN | EPOLLONESHOT, 0x06);
	expect_one("oneshot: re-armed by MOD", ep, 1000, 0x06, EPOLLIN, 0);
	expect_none("oneshot: disarmed again", ep, 200);
	drain(fd, NULL);
	ev_sleep_ms(300);
	size_t rest = drain(fd, NULL);
	(void)rest;
	/* Two threads blocked on the set when it is re-armed and new data comes: exactly one event. */
	os_ep = ep;
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, oneshot_waiter, NULL);
	while (atomic_load(&os_ready) < 2)
		ev_sleep_ms(1);
	ev_sleep_ms(100);
	ep_mod(ep, fd, EPOLLIN | EPOLLONESHOT, 0x07);
	req(fd, 3000);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	if (atomic_load(&os_got) != 1)
		ev_fail("oneshot: two threads blocked on the set got %d events in all, want exactly 1",
			atomic_load(&os_got));
	printf("oneshot=ok two_thread_events=%d\n", atomic_load(&os_got));
}

static int ex_fd, ex_ep[2];
static atomic_int ex_woken[2], ex_bytes;
static atomic_int ex_ready;

static void *ex_waiter(void *arg)
{
	int i = (int)(intptr_t)arg;
	struct epoll_event evs[4];
	atomic_fetch_add(&ex_ready, 1);
	int n = ep_wait(ex_ep[i], evs, 4, 2000);
	if (n > 0) {
		atomic_store(&ex_woken[i], 1);
		if (evs[0].data.u64 != (uint64_t)(0xE0 + i))
			ev_fail("exclusive: set %d got data %#llx", i, (unsigned long long)evs[0].data.u64);
		ev_sleep_ms(200);
		atomic_fetch_add(&ex_bytes, (int)drain(ex_fd, NULL));
	}
	return NULL;
}

/* The errno of an epoll_ctl call, for a TLS fd and a plain socket alike. */
static int ctl_errno(int ep, int op, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u64 = 1};
	return epoll_ctl(ep, op, fd, &ev) == 0 ? 0 : errno;
}

static void mode_exclusive(void)
{
	ex_fd = tls_conn();
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0)
		ev_die("socketpair");
	for (int i = 0; i < 2; i++) {
		ex_ep[i] = ep_new();
		ep_add(ex_ep[i], ex_fd, EPOLLIN | EPOLLEXCLUSIVE, 0xE0 + (unsigned)i);
		ep_add(ex_ep[i], sp[0], EPOLLIN | EPOLLEXCLUSIVE, 0x99);
	}
	struct {
		const char *what;
		int op;
		uint32_t events;
	} cases[] = {
	    {"MOD of an exclusive registration", EPOLL_CTL_MOD, EPOLLIN},
	    {"MOD with EPOLLEXCLUSIVE", EPOLL_CTL_MOD, EPOLLIN | EPOLLEXCLUSIVE},
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		int et = ctl_errno(ex_ep[0], cases[k].op, ex_fd, cases[k].events);
		int ep = ctl_errno(ex_ep[0], cases[k].op, sp[0], cases[k].events);
		if (et != ep || et == 0)
			ev_fail("exclusive: %s: TLS fd %s, plain socket %s", cases[k].what, ev_err(et),
				ev_err(ep));
	}
	int ep3 = ep_new();
	uint32_t bad[] = {EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT, EPOLLIN | EPOLLEXCLUSIVE | EPOLLRDHUP,
			  EPOLLIN | EPOLLEXCLUSIVE | EPOLLPRI};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		int et = ctl_errno(ep3, EPOLL_CTL_ADD, ex_fd, bad[k]);
		int ep = ctl_errno(ep3, EPOLL_CTL_ADD, sp[0], bad[k]);
		if (et != ep)
			ev_fail("exclusive: ADD %#x: TLS fd %s, plain socket %s", bad[k], ev_err(et),
				ev_err(ep));
		if (et == 0)
			epoll_ctl(ep3, EPOLL_CTL_DEL, ex_fd, NULL);
		if (ep == 0)
			epoll_ctl(ep3, EPOLL_CTL_DEL, sp[0], NULL);
	}
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, ex_waiter, (void *)(intptr_t)i);
	while (atomic_load(&ex_ready) < 2)
		ev_sleep_ms(1);
	ev_sleep_ms(100);
	long long t0 = now_ms();
	req(ex_fd, 3000);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	int woken = atomic_load(&ex_woken[0]) + atomic_load(&ex_woken[1]);
	if (woken < 1)
		ev_fail("exclusive: no waiter was woken within 2 s");
	int got = atomic_load(&ex_bytes);
	if (got < 3000)
		got += (int)drain(ex_fd, NULL);
	if (got != 3000)
		ev_fail("exclusive: %d bytes read, want 3000", got);
	/* The kernel's way to change an exclusive registration: DEL, then ADD. */
	if (epoll_ctl(ex_ep[0], EPOLL_CTL_DEL, ex_fd, NULL) != 0)
		ev_fail("exclusive: DEL: errno=%s", errno_name(errno));
	ep_add(ex_ep[0], ex_fd, EPOLLIN | EPOLLEXCLUSIVE, 0xE5);
	req(ex_fd, 1000);
	expect_one("exclusive: after DEL+ADD", ex_ep[0], 2000, 0xE5, EPOLLIN, 0);
	ev_sleep_ms(200);
	drain(ex_fd, NULL);
	printf("exclusive=ok woken=%d ms=%lld\n", woken, now_ms() - t0);
}

static void mode_rdhup(void)
{
	int fd = tls_conn(), ep = ep_new();
	ep_add(ep, fd, EPOLLIN | EPOLLRDHUP | EPOLLPRI, 0x2D);
	uint32_t e =
	    expect_one("rdhup: data, server open", ep, 3000, 0x2D, EPOLLIN, EPOLLRDHUP | EPOLLPRI | EPOLLHUP);
	ev_sleep_ms(300);
	size_t total = drain(fd, NULL);
	ev_write_all(fd, "\n", 1, "newline"); /* the server closes now (close_notify, FIN) */
	long long end = now_ms() + 5000;
	uint32_t last = 0;
	bool eof = false;
	while (!eof && now_ms() < end) {
		struct epoll_event evs[4];
		int n = ep_wait(ep, evs, 4, 1000);
		if (n > 0) {
			last = evs[0].events;
			if (last & EPOLLPRI)
				ev_fail("rdhup: EPOLLPRI reported for a TLS fd");
		}
		uint8_t buf[4096];
		ssize_t k;
		while ((k = read(fd, buf, sizeof buf)) > 0)
			total += (size_t)k;
		if (k == 0)
			eof = true;
	}
	if (!eof)
		ev_fail("rdhup: no EOF within 5 s of the server's close");
	if (!(last & EPOLLRDHUP) || !(last & EPOLLIN))
		ev_fail("rdhup: the event before EOF was %#x, want IN|RDHUP", last);
	expect_one("rdhup: after EOF (level triggered)", ep, 500, 0x2D, EPOLLIN | EPOLLRDHUP, EPOLLPRI);
	printf("rdhup=ok first=%#x last=%#x bytes=%zu\n", e, last, total);
}

static void mode_multi(void)
{
	int fd = tls_conn(), ep1 = ep_new(), ep2 = ep_new();
	ep_add(ep1, fd, EPOLLIN, 0x11);
	ep_add(ep2, fd, EPOLLIN, 0x22);
	req(fd, 3000);
	expect_one("multi: set 1", ep1, 3000, 0x11, EPOLLIN, 0);
	expect_one("multi: set 2", ep2, 3000, 0x22, EPOLLIN, 0);
	if (epoll_ctl(ep1, EPOLL_CTL_DEL, fd, NULL) != 0)
		ev_fail("multi: DEL from set 1: errno=%s", errno_name(errno));
	expect_none("multi: set 1 after DEL", ep1, 300);
	expect_one("multi: set 2 after DEL from set 1", ep2, 300, 0x22, EPOLLIN, 0);
	read_n(ep2, fd, 3000, "multi");
	expect_none("multi: set 2 drained", ep2, 300);
	printf("multi=ok\n");
}

static void mode_shared(void)
{
	int c[3], pfd[2], ep = ep_new();
	if (pipe(pfd) != 0)
		ev_die("pipe");
	for (int i = 0; i < 3; i++) {
		c[i] = tls_conn();
		ep_add(ep, c[i], EPOLLIN, 0);
	}
	ep_add(ep, pfd[0], EPOLLIN, 0);
	expect_none("shared: nothing ready", ep, 300);
	req(c[1], 1000);
	expect_one("shared: one TLS fd ready", ep, 3000, 0, EPOLLIN, 0);
	read_n(ep, c[1], 1000, "shared c1");
	expect_none("shared: drained", ep, 300);
	req(c[0], 2000);
	req(c[2], 3000);
	if (write(pfd[1], "x", 1) != 1)
		ev_die("pipe write");
	ev_sleep_ms(500);
	struct epoll_event evs[8];
	int n = ep_wait(ep, evs, 8, 2000);
	if (n != 3)
		ev_fail("shared: %d events for 3 ready fds with the same data, want 3", n);
	for (int i = 0; i < n; i++)
		if (evs[i].data.u64 != 0 || evs[i].events != EPOLLIN)
			ev_fail("shared: event %#x data %#llx", evs[i].events,
				(unsigned long long)evs[i].data.u64);
	read_n(ep, c[0], 2000, "shared c0");
	read_n(ep, c[2], 3000, "shared c2");
	char x;
	if (read(pfd[0], &x, 1) != 1)
		ev_fail("shared: pipe read");
	expect_none("shared: all drained", ep, 300);
	printf("shared=ok events=%d\n", n);
}

static void mode_close(void)
{
	int ep = ep_new();
	int a = tls_conn();
	ep_add(ep, a, EPOLLIN, 0xAA);
	req(a, 1000);
	expect_one("close: registered fd readable", ep, 3000, 0xAA, EPOLLIN, 0);
	close(a); /* closed while registered and readable */
	expect_none("close: after closing it", ep, 300);
	int b = tls_conn();
	printf("reused=%s\n", b == a ? "yes" : "no");
	if (b != a)
		ev_fail(
		    "close: the new connection got fd %d, not the closed %d: the case needs the same number",
		    b, a);
	req(b, 1500);
	ev_sleep_ms(300);
	expect_none("close: the reused number, not registered", ep, 300);
	ep_add(ep, b, EPOLLIN, 0xBB);
	expect_one("close: the new registration", ep, 1000, 0xBB, EPOLLIN, 0);
	read_n(ep, b, 1500, "close b");
	printf("close=ok\n");
}

static void mode_fork(void)
{
	int ep = ep_new();
	int a = tls_conn();
	ep_add(ep, a, EPOLLIN, 0xF0);
	req(a, 1000);
	ev_sleep_ms(300); /* the answer waits, unread, at the fork */
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		ev_die("fork");
	if (pid == 0) {
		ev_prog = "ev_epoll(child)";
		/* The state at fork: the parent's registration (the child never reads the parent's TLS
		 * connection: its records belong to the parent's session). */
		expect_one("fork child: the inherited registration", ep, 1000, 0xF0, EPOLLIN, 0);
		int c = tls_conn();
		ep_add(ep, c, EPOLLIN, 0xC0);
		req(c, 700);
		bool own = false, inherited = false;
		long long end = now_ms() + 5000;
		while (!own && now_ms() < end) {
			struct epoll_event evs[8];
			int n = ep_wait(ep, evs, 8, 500);
			for (int i = 0; i < n; i++) {
				if (evs[i].data.u64 == 0xC0)
					own = true;
				else if (evs[i].data.u64 == 0xF0)
					inherited =
					    true; /* still readable: level triggered, never read here */
				else
					ev_fail("fork child: data %#llx",
						(unsigned long long)evs[i].data.u64);
			}
		}
		size_t got = 0;
		while (got < 700 && now_ms() < end) {
			got += drain(c, NULL);
			if (got < 700)
				ev_sleep_ms(10);
		}
		if (!own || !inherited || got != 700)
			ev_fail("fork child: own=%d inherited=%d bytes=%zu (want 1 1 700)", own, inherited,
				got);
		close(c);
		_exit(ev_exit_status());
	}
	int st = 0;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		ev_fail("fork: the child failed (status %#x)", st);
	/* The parent's registration only (the child's connection went with the child). */
	expect_one("fork parent: its registration after the child", ep, 1000, 0xF0, EPOLLIN, 0);
	read_n(ep, a, 1000, "fork parent");
	req(a, 500);
	expect_one("fork parent: new data", ep, 3000, 0xF0, EPOLLIN, 0);
	read_n(ep, a, 500, "fork parent 2");
	expect_none("fork parent: drained", ep, 300);
	printf("fork=ok\n");
}

static void mode_prereg(void)
{
	int ep = ep_new();
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		ev_die("getaddrinfo");
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ep_add(ep, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, 0x9E);
	int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (r == 0 || errno != EINPROGRESS)
		ev_die("non-blocking connect: %d errno=%s, want EINPROGRESS", r, errno_name(errno));
	long long t0 = now_ms();
	bool writable = false;
	while (!writable && now_ms() - t0 < 5000) {
		struct epoll_event evs[4];
		int n = ep_wait(ep, evs, 4, 1000);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 != 0x9E)
				ev_fail("prereg: data %#llx", (unsigned long long)evs[i].data.u64);
			if (evs[i].events & EPOLLIN)
				ev_fail("prereg: IN (%#x) before anything was asked: the handshake's bytes "
					"are not "
					"the program's",
					evs[i].events);
			if (evs[i].events & EPOLLOUT)
				writable = true;
		}
	}
	int soerr = -1;
	socklen_t sl = sizeof soerr;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (!writable || soerr != 0)
		ev_die("prereg: writable=%d SO_ERROR=%s", writable, ev_err(soerr));
	long long t_hs = now_ms() - t0;
	int want = 2000000;
	req(fd, want);
	struct sha256 s;
	sha256_init(&s);
	size_t got = 0;
	long long end = now_ms() + 10000;
	while (got < (size_t)want && now_ms() < end) {
		got += drain(fd, &s);
		if (got < (size_t)want)
			ep_wait(ep, (struct epoll_event[4]){0}, 4, 1000);
	}
	if (got != (size_t)want)
		ev_fail("prereg: %zu of %d bytes (a stall: the registration made before connect)", got, want);
	char hex[65];
	sha256_hex(&s, hex);
	printf("prereg=ok handshake_ms=%lld recv_n=%zu recv_sha=%s\n", t_hs, got, hex);
}

int main(int argc, char **argv)
{
	ev_prog = "ev_epoll";
	if (argc < 4)
		ev_die("usage: ev_epoll MODE HOST PORT");
	signal(SIGPIPE, SIG_IGN);
	host = argv[2];
	port = argv[3];
	const char *m = argv[1];
	if (!strcmp(m, "lt"))
		mode_lt();
	else if (!strcmp(m, "et"))
		mode_et();
	else if (!strcmp(m, "oneshot"))
		mode_oneshot();
	else if (!strcmp(m, "exclusive"))
		mode_exclusive();
	else if (!strcmp(m, "rdhup"))
		mode_rdhup();
	else if (!strcmp(m, "multi"))
		mode_multi();
	else if (!strcmp(m, "shared"))
		mode_shared();
	else if (!strcmp(m, "close"))
		mode_close();
	else if (!strcmp(m, "fork"))
		mode_fork();
	else if (!strcmp(m, "prereg"))
		mode_prereg();
	else
		ev_die("unknown mode %s", m);
	return ev_exit_status();
}
