/* ev_async METHOD HOST PORT EXPECT [MSG]: a non-blocking connect driven by METHOD (poll, select, epoll,
 * epollet), as an event loop does it.
 *   connect() must answer -1/EINPROGRESS at once; a second connect while in progress EALREADY (when the
 *   handshake is still running: the server delays it); a zero-timeout wait must not report writable yet.
 *   Then wait (<= 15 s) for writability. EXPECT "ok": SO_ERROR 0, a third connect EISCONN, MSG+"\n"
 *   written in one write() right away and echoed back. EXPECT an errno name (ECONNREFUSED, ETIMEDOUT):
 *   SO_ERROR gives it.
 * Prints connect_ms, second_connect, early_writable, writable_ms, revents, so_error, third_connect,
 * echo. Exit 0 only if every expectation held. */
#include "ev_common.h"

int main(int argc, char **argv)
{
	ev_prog = "ev_async";
	if (argc < 5)
		ev_die("usage: ev_async METHOD HOST PORT EXPECT [MSG]");
	enum ev_method m = ev_method_parse(argv[1]);
	const char *expect = argv[4];
	const char *msg = argc > 5 ? argv[5] : "first write after writable";
	bool want_ok = !strcmp(expect, "ok");

	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
	if (getaddrinfo(argv[2], argv[3], &hints, &res) != 0)
		ev_die("getaddrinfo failed");
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		ev_die("socket: errno=%s", errno_name(errno));
	long long t0 = now_ms();
	int r = connect(fd, res->ai_addr, res->ai_addrlen);
	int e = errno;
	long long t_conn = now_ms() - t0;
	printf("connect_ms=%lld\nconnect=%s\n", t_conn, r == 0 ? "0" : errno_name(e));
	if (r == 0 || e != EINPROGRESS)
		ev_die("non-blocking connect: want -1/EINPROGRESS, got %d/%s", r,
		       r == 0 ? "-" : errno_name(e));

	/* A second connect while the TCP connect or the handshake runs. */
	r = connect(fd, res->ai_addr, res->ai_addrlen);
	e = errno;
	printf("second_connect=%s\n", r == 0 ? "0" : errno_name(e));
	if (want_ok && (r == 0 || e != EALREADY))
		ev_fail("second connect while in progress: want EALREADY, got %s",
			r == 0 ? "0" : errno_name(e));

	struct ev_waiter w;
	ev_waiter_init(&w, m, fd, POLLOUT);
	char rt[64];
	int rev = ev_wait(&w, 0);
	printf("early_writable=%s\n", ev_revents_text(rev, rt, sizeof rt));
	if (want_ok && rev != 0)
		ev_fail(
		    "a zero-timeout wait right after connect reported %s before the handshake could be done",
		    rt);

	rev = 0;
	int rounds = 0;
	while (rev == 0 && now_ms() - t0 < 15000 && rounds++ < 100000) {
		rev = ev_wait(&w, 500);
		if (rev < 0 && errno != EINTR)
			ev_die("wait: errno=%s", errno_name(errno));
		if (rev < 0)
			rev = 0;
	}
	long long t_ready = now_ms() - t0;
	printf("writable_ms=%lld\nrevents=%s\n", t_ready, ev_revents_text(rev, rt, sizeof rt));
	if (rev == 0)
		ev_die("no readiness within 15 s");

	int soerr = -1;
	socklen_t sl = sizeof soerr;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
		ev_die("getsockopt(SO_ERROR): errno=%s", errno_name(errno));
	printf("so_error=%s\n", ev_err(soerr));
	if (!want_ok) {
		if (strcmp(ev_err(soerr), expect) != 0)
			ev_fail("SO_ERROR: want %s, got %s", expect, ev_err(soerr));
		if (m != EV_SELECT && !(rev & (POLLERR | POLLHUP)))
			ev_fail("a failed handshake should report POLLERR, got %s", rt);
		return ev_exit_status();
	}
	if (soerr != 0)
		ev_die("SO_ERROR: want 0, got %s", ev_err(soerr));
	if (!(rev & POLLOUT))
		ev_fail("want writable, got %s", rt);

	r = connect(fd, res->ai_addr, res->ai_addrlen);
	e = errno;
	printf("third_connect=%s\n", r == 0 ? "0" : errno_name(e));
	if (r == 0 || e != EISCONN)
		ev_fail("connect after the handshake: want EISCONN, got %s", r == 0 ? "0" : errno_name(e));

	/* The first write after writability goes through whole, at once. */
	char line[512];
	int len = snprintf(line, sizeof line, "%s\n", msg);
	ssize_t wr = write(fd, line, (size_t)len);
	printf("first_write=%zd\n", wr);
	if (wr != len)
		ev_fail("first write after writable: want %d, got %zd (errno=%s)", len, wr,
			wr < 0 ? errno_name(errno) : "-");

	/* Its echo, through the same event loop. */
	ev_waiter_mod(&w, POLLIN);
	char in[512];
	size_t got = 0;
	long long t1 = now_ms();
	while (got < (size_t)len && now_ms() - t1 < 10000) {
		rev = ev_wait(&w, 1000);
		if (rev <= 0)
			continue;
		ssize_t n = read(fd, in + got, sizeof in - got);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0)
			break;
		else if (errno != EAGAIN)
			ev_die("read: errno=%s", errno_name(errno));
	}
	bool same = got == (size_t)len && memcmp(in, line, (size_t)len) == 0;
	printf("echo=%s\n", same ? "ok" : "mismatch");
	if (!same)
		ev_fail("echo: sent %d bytes, got %zu back%s", len, got, got ? " (different)" : "");
	char hex[65];
	ev_sha_hex_of(line, (size_t)len, hex);
	printf("sent_n=%d sent_sha=%s\n", len, hex);
	ev_waiter_close(&w);
	freeaddrinfo(res);
	close(fd);
	return ev_exit_status();
}
