/* rd_fionread HOST PORT: FIONREAD against real records (server: evserver onreq, which answers "send K\n"
 * with K bytes in one sendall: one TLS record per 16 KiB). Run under the shim against a TLS server and
 * without it against a plain one: every expectation is the kernel's own.
 *   exact: "send 40000" (three records), then "send 100", "send 3000", "send 7" (three more, one at a
 *       time); once all has arrived FIONREAD is exactly what was sent (43107), and a program that trusts
 *       it reads exactly that many bytes with blocking reads (read until it has them) without waiting;
 *       then FIONREAD is 0 and poll(fd, 0) says nothing.
 *   nginx: "send 200000" (13 records, more than the 64 KiB the shim decrypts ahead); nginx's own pattern
 *       (src/os/unix/ngx_recv.c with EPOLLRDHUP): non-blocking recv of 8 KiB; when a recv fills the
 *       buffer, FIONREAD gives `available`, later reads count it down; at available <= 0 or a short read
 *       it stops reading and waits for an EPOLLET edge. Every byte must arrive that way: no wait of 2 s
 *       without an edge while bytes are unread (a FIONREAD below what is here stalls nginx so).
 * A watchdog fails the run when one read blocks for 2 s. Prints fionread_exact=, nginx_* figures. */
#include "ev_common.h"

static atomic_llong read_started_ms;

static void *watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		ev_sleep_ms(100);
		long long t = atomic_load(&read_started_ms);
		if (t && now_ms() - t > 2000) {
			ev_fail("a read has blocked for %lld ms although FIONREAD said the bytes were there",
				now_ms() - t);
			_exit(1);
		}
	}
	return NULL;
}

static void request(int fd, int k)
{
	char line[64];
	int n = snprintf(line, sizeof line, "send %d\n", k);
	ev_write_all(fd, line, (size_t)n, "request");
}

static int fionread(int fd)
{
	int n = -1;
	if (ioctl(fd, FIONREAD, &n) != 0)
		ev_die("ioctl(FIONREAD): errno=%s", errno_name(errno));
	return n;
}

/* Waits until FIONREAD stops growing for 300 ms (everything sent has arrived). */
static int settled_fionread(int fd, int want)
{
	int last = -1, n = 0;
	long long since = now_ms(), t0 = now_ms();
	while (now_ms() - t0 < 5000) {
		n = fionread(fd);
		if (n != last) {
			last = n;
			since = now_ms();
		} else if (n >= want && now_ms() - since >= 300) {
			break;
		}
		ev_sleep_ms(20);
	}
	return n;
}

static void exact_case(int fd)
{
	request(fd, 40000);
	settled_fionread(fd, 40000);
	request(fd, 100);
	settled_fionread(fd, 40100);
	request(fd, 3000);
	settled_fionread(fd, 43100);
	request(fd, 7);
	int n = settled_fionread(fd, 43107);
	printf("fionread_exact=%d\n", n);
	if (n != 43107)
		ev_fail("FIONREAD with 43107 bytes received in 6 records: %d", n);
	/* The trusting program: read exactly n bytes, blocking, as many reads as it takes. */
	static char buf[65536];
	int got = 0, reads = 0;
	while (got < n) {
		atomic_store(&read_started_ms, now_ms());
		ssize_t r = read(fd, buf, (size_t)(n - got));
		atomic_store(&read_started_ms, 0);
		if (r <= 0)
			ev_die("read %d of the %d bytes FIONREAD promised: %zd (errno=%s)", got, n, r,
			       r < 0 ? errno_name(errno) : "EOF");
		got += (int)r;
		reads++;
	}
	int after = fionread(fd);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int pr = poll(&p, 1, 0);
	printf("exact_reads=%d fionread_after=%d poll_after=%d\n", reads, after, pr);
	if (after != 0 || pr != 0)
		ev_fail("after reading what FIONREAD said: FIONREAD %d, poll %d (want 0, 0)", after, pr);
}

static void nginx_case(int fd)
{
	const int total = 200000;
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u64 = 1};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		ev_die("epoll: errno=%s", errno_name(errno));
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	request(fd, total);
	static char buf[8192];
	int got = 0, waits = 0, fionreads = 0, stops = 0, max_available = 0;
	while (got < total) {
		struct epoll_event out;
		int k = epoll_wait(ep, &out, 1, 2000);
		waits++;
		if (k != 1)
			ev_die("nginx pattern: no EPOLLET edge within 2 s with %d of %d bytes read", got,
			       total);
		int available = -1; /* nginx: unknown until a recv fills the buffer */
		for (;;) {
			ssize_t n = recv(fd, buf, sizeof buf, 0);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n <= 0)
				ev_die("nginx pattern: recv %zd (errno=%s) with %d of %d bytes read", n,
				       n < 0 ? errno_name(errno) : "EOF", got, total);
			got += (int)n;
			if (available >= 0) {
				available -= (int)n;
				if (available <= 0) { /* nginx: ready = 0, wait for the next edge */
					stops++;
					break;
				}
			} else if ((size_t)n == sizeof buf) {
				available = fionread(fd);
				fionreads++;
				if (available > max_available)
					max_available = available;
			}
			if ((size_t)n < sizeof buf)
				break; /* a short read: ready = 0 */
		}
	}
	printf("nginx_bytes=%d nginx_waits=%d nginx_fionreads=%d nginx_stops_at_zero=%d "
	       "nginx_max_available=%d\n",
	       got, waits, fionreads, stops, max_available);
	close(ep);
	fcntl(fd, F_SETFL, fl);
}

int main(int argc, char **argv)
{
	ev_prog = "rd_fionread";
	if (argc != 3)
		ev_die("usage: rd_fionread HOST PORT");
	int fd = ev_connect(argv[1], argv[2]);
	pthread_t w;
	if (pthread_create(&w, NULL, watchdog, NULL) != 0)
		ev_die("pthread_create");
	exact_case(fd);
	nginx_case(fd);
	shutdown(fd, SHUT_WR);
	close(fd);
	return ev_exit_status();
}
