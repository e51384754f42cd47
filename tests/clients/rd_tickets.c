/* rd_tickets METHOD HOST PORT: only application data is readiness (issue 12 items 2 and 3). The server
 * (evserver delayecho:MS) finishes the TLS 1.3 handshake, sends its NewSessionTickets and then says
 * nothing until the client writes; each chunk is echoed MS ms later. The client waits 300 ms so the
 * tickets sit in the kernel (kernel_rx, read from /proc/net/tcp, shows their bytes; up to 5 s more on a
 * loaded machine), then:
 *   poll|ppoll|select|pselect, and sys_poll|sys_ppoll|sys_select|sys_pselect6 (the same waits made with
 *       syscall(SYS_...), as some runtimes do): waits for readable for WAIT_MS (1200): it must time out after
 * the whole WAIT_MS (the tickets are no readiness; the timeout is not restarted either: at most 2.5 s), and a
 *       second wait asking readable and writable must say writable only. Then "PING\n" is written and the
 *       same wait (3 s) must report readable, after which recv(MSG_DONTWAIT) returns the echo at once
 *       (PHP's pattern: no EAGAIN after readable).
 *   fionread: FIONREAD is 0 with only the tickets in, 5 after the echo arrived.
 *   blockread: a blocking recv with SO_RCVTIMEO 800 ms on the silent server gives EAGAIN after the
 *       whole 800 ms (never 0, never early); after "PING\n" a blocking recv (no timeout) returns the echo.
 *   dontwait: recv(MSG_DONTWAIT) with only the tickets in gives EAGAIN (truly nothing to read).
 * Prints kernel_rx=, waited_ms=, and the per-mode results; "rd_tickets: FAIL: ..." for each broken
 * expectation, exit 0 only when all held. */
#include "ev_common.h"

#include <sys/syscall.h>
#include <unistd.h>

#define WAIT_MS 1200

/* Bytes waiting in the kernel's receive queue of fd (IPv4), from /proc/net/tcp; -1 if not found. */
static long kernel_rx(int fd)
{
	struct sockaddr_in a, b;
	socklen_t al = sizeof(a), bl = sizeof(b);
	if (getsockname(fd, (struct sockaddr *)&a, &al) != 0 ||
	    getpeername(fd, (struct sockaddr *)&b, &bl) != 0)
		return -1;
	FILE *f = fopen("/proc/net/tcp", "r");
	if (!f)
		return -1;
	char line[512];
	long rx = -1;
	unsigned want = ntohs(a.sin_port), want_peer = ntohs(b.sin_port);
	while (fgets(line, sizeof line, f)) { /* both ports: a TIME_WAIT row may share the local one */
		unsigned lport, rport, tx, rxq;
		if (sscanf(line, " %*d: %*8x:%x %*8x:%x %*x %x:%x", &lport, &rport, &tx, &rxq) == 4 &&
		    lport == want && rport == want_peer) {
			rx = (long)rxq;
			break;
		}
	}
	fclose(f);
	return rx;
}

/* The kernel's sigset_t: 64 bits (what ppoll's and pselect6's size argument must say). */
#define KSIGSET 8

/* Waits up to ms for events on fd with the named call: poll, ppoll, select, pselect, or the same made as
 * a raw syscall() (sys_poll, sys_ppoll, sys_select, sys_pselect6). Returns the revents (0: timed out). */
static short wait_for(const char *m, int fd, short events, int ms)
{
	bool sys = !strncmp(m, "sys_", 4);
	const char *call = sys ? m + 4 : m;
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000L};
	sigset_t none;
	sigemptyset(&none);
	long r;
	if (!strcmp(call, "poll") || !strcmp(call, "ppoll")) {
		struct pollfd p = {.fd = fd, .events = events};
		if (call[1] == 'p')
			r = sys ? syscall(SYS_ppoll, &p, 1L, &ts, &none, (long)KSIGSET)
				: ppoll(&p, 1, &ts, NULL);
		else
			r = sys ? syscall(SYS_poll, &p, 1L, (long)ms) : poll(&p, 1, ms);
		if (r < 0)
			ev_die("%s: errno=%s", m, errno_name(errno));
		if (sys && call[1] == 'p' &&
		    (ts.tv_sec < 0 || ts.tv_sec > ms / 1000)) /* the time not slept */
			ev_fail("%s left tv_sec=%ld, want 0..%d", m, (long)ts.tv_sec, ms / 1000);
		return r ? p.revents : 0;
	}
	fd_set rs, ws;
	FD_ZERO(&rs);
	FD_ZERO(&ws);
	if (events & POLLIN)
		FD_SET(fd, &rs);
	if (events & POLLOUT)
		FD_SET(fd, &ws);
	struct {
		const sigset_t *ss;
		size_t len;
	} sig = {&none, KSIGSET}; /* pselect6's sixth argument */
	if (!strcmp(call, "pselect6"))
		r = syscall(SYS_pselect6, (long)fd + 1, &rs, &ws, NULL, &ts, &sig);
	else if (!strcmp(call, "pselect"))
		r = pselect(fd + 1, &rs, &ws, NULL, &ts, NULL);
	else
		r = sys ? syscall(SYS_select, (long)fd + 1, &rs, &ws, NULL, &tv)
			: select(fd + 1, &rs, &ws, NULL, &tv);
	if (r < 0)
		ev_die("%s: errno=%s", m, errno_name(errno));
	return (short)((FD_ISSET(fd, &rs) ? POLLIN : 0) | (FD_ISSET(fd, &ws) ? POLLOUT : 0));
}

static void expect_echo(const char *buf, ssize_t n, const char *what)
{
	if (n != 5 || memcmp(buf, "PING\n", 5) != 0)
		ev_fail("%s: got %zd bytes (errno=%s), want the echo \"PING\\n\"", what, n,
			n < 0 ? errno_name(errno) : "-");
}

int main(int argc, char **argv)
{
	ev_prog = "rd_tickets";
	if (argc < 4)
		ev_die("usage: rd_tickets METHOD HOST PORT");
	const char *m = argv[1];
	int fd = ev_connect(argv[2], argv[3]);
	ev_sleep_ms(300);
	long rx = kernel_rx(fd);
	for (int i = 0; i < 100 && rx == 0; i++) { /* a loaded server may send them later */
		ev_sleep_ms(50);
		rx = kernel_rx(fd);
	}
	printf("kernel_rx=%ld\n", rx);
	if (rx <= 0)
		ev_fail("no bytes (tickets) waiting in the kernel after the handshake: kernel_rx=%ld", rx);
	char buf[64];
	if (!strcmp(m, "fionread")) {
		int n = -1;
		if (ioctl(fd, FIONREAD, &n) != 0)
			ev_die("FIONREAD: errno=%s", errno_name(errno));
		printf("fionread_tickets=%d\n", n);
		if (n != 0)
			ev_fail("FIONREAD with only session tickets in: %d, want 0", n);
		ev_write_all(fd, "PING\n", 5, "ping");
		int k = -1;
		for (int i = 0; i < 50 && k <= 0; i++) { /* the echo comes after MS */
			ev_sleep_ms(100);
			if (ioctl(fd, FIONREAD, &k) != 0)
				ev_die("FIONREAD: errno=%s", errno_name(errno));
		}
		printf("fionread_echo=%d\n", k);
		if (k != 5)
			ev_fail("FIONREAD after the echo arrived: %d, want 5", k);
		expect_echo(buf, recv(fd, buf, sizeof buf, MSG_DONTWAIT), "recv after FIONREAD");
	} else if (!strcmp(m, "blockread")) {
		struct timeval tv = {0, 800000};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		long long t0 = now_ms();
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		int e = errno;
		long long dt = now_ms() - t0;
		printf("blockread=%zd errno=%s waited_ms=%lld\n", n, n < 0 ? errno_name(e) : "0", dt);
		if (n >= 0 || (e != EAGAIN && e != EWOULDBLOCK) || dt < 750)
			ev_fail("blocking recv with SO_RCVTIMEO 800 ms, tickets only: %zd errno=%s after "
				"%lld ms, "
				"want EAGAIN after 800 ms",
				n, n < 0 ? errno_name(e) : "0", dt);
		struct timeval zero = {0, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &zero, sizeof zero);
		ev_write_all(fd, "PING\n", 5, "ping");
		expect_echo(buf, recv(fd, buf, sizeof buf, 0), "blocking recv after PING");
	} else if (!strcmp(m, "dontwait")) {
		ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		int e = errno;
		printf("dontwait=%zd errno=%s\n", n, n < 0 ? errno_name(e) : "0");
		if (n >= 0 || (e != EAGAIN && e != EWOULDBLOCK))
			ev_fail("recv(MSG_DONTWAIT), tickets only: %zd errno=%s, want EAGAIN", n,
				n < 0 ? errno_name(e) : "0");
		ev_write_all(fd, "PING\n", 5, "ping");
		expect_echo(buf, recv(fd, buf, sizeof buf, 0), "blocking recv after PING");
	} else {
		long long t0 = now_ms();
		short rev = wait_for(m, fd, POLLIN, WAIT_MS);
		long long dt = now_ms() - t0;
		printf("tickets_revents=%d waited_ms=%lld\n", rev, dt);
		if (rev)
			ev_fail("%s reported revents 0x%x with only session tickets in, want a timeout", m,
				rev);
		else if (dt < WAIT_MS - 50 || dt > 2500)
			ev_fail("%s timed out after %lld ms, want %d ms", m, dt, WAIT_MS);
		rev = wait_for(m, fd, POLLIN | POLLOUT, WAIT_MS);
		printf("inout_revents=%d\n", rev);
		if (rev != POLLOUT)
			ev_fail("%s for readable and writable: revents 0x%x, want POLLOUT only", m, rev);
		ev_write_all(fd, "PING\n", 5, "ping");
		t0 = now_ms();
		rev = wait_for(m, fd, POLLIN, 3000);
		printf("echo_revents=%d echo_ms=%lld\n", rev, now_ms() - t0);
		if (!(rev & POLLIN))
			ev_fail("%s: no readable within 3 s after the echo was due", m);
		expect_echo(buf, recv(fd, buf, sizeof buf, MSG_DONTWAIT),
			    "recv(MSG_DONTWAIT) after readable");
	}
	close(fd);
	return ev_exit_status();
}
