/* iovclient HOST PORT: exercises every read/write flavour on one connection to an ECHO server.
 * Built with _FORTIFY_SOURCE=2 so read/recv/recvfrom into fixed arrays become __read_chk etc.
 * Prints "step NAME ok" per step; the first failing step prints "step NAME FAIL: why" and exits 1.
 * Steps: connect, nodelay (TCP_NODELAY must read back 0: the client never set it), eagain
 * (non-blocking read with nothing pending -> EAGAIN), writev/readv, sendmsg/recvmsg, sendto/recvfrom,
 * send/recv, write + poll + fortified read, fortified recv, fortified recvfrom, halfclose (shutdown
 * SHUT_WR, then read returns 0 after the echo server closes). */
#undef _FORTIFY_SOURCE
#define _FORTIFY_SOURCE 2
#include <sys/uio.h>

#include "../integration/clientlib.h"

static int fd = -1;

static void fail(const char *step, const char *fmt, int e)
{
	printf("step %s FAIL: %s errno=%s (%s)\n", step, fmt, errno_name(e), strerror(e));
	fflush(stdout);
	exit(1);
}

static void ok(const char *step)
{
	printf("step %s ok\n", step);
	fflush(stdout);
}

/* Reads exactly n bytes with the given reader (handles short reads), compares with want. */
enum reader { R_READV, R_RECVMSG, R_RECVFROM, R_RECV, R_READ_FORT, R_RECV_FORT, R_RECVFROM_FORT };

static void expect_back(const char *step, enum reader how, const char *want, size_t n)
{
	char got[256];
	size_t have = 0;
	long long deadline = now_ms() + 10000;
	if (n > sizeof got)
		fail(step, "internal: too long", 0);
	while (have < n) {
		ssize_t r = -1;
		size_t left = n - have;
		if (now_ms() > deadline)
			fail(step, "timed out waiting for echo", ETIMEDOUT);
		switch (how) {
		case R_READV: {
			/* split the destination in two so readv must fill more than one iovec */
			size_t x = left / 2 ? left / 2 : left;
			struct iovec iov[2] = {{got + have, x}, {got + have + x, left - x}};
			r = readv(fd, iov, left - x ? 2 : 1);
			break;
		}
		case R_RECVMSG: {
			size_t x = left > 1 ? 1 : left;
			struct iovec iov[2] = {{got + have, x}, {got + have + x, left - x}};
			struct msghdr m;
			memset(&m, 0, sizeof m);
			m.msg_iov = iov;
			m.msg_iovlen = left - x ? 2 : 1;
			r = recvmsg(fd, &m, 0);
			break;
		}
		case R_RECVFROM: {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof ss;
			r = recvfrom(fd, got + have, left, 0, (struct sockaddr *)&ss, &sl);
			break;
		}
		case R_RECV: r = recv(fd, got + have, left, 0); break;
		case R_READ_FORT: {
			/* fixed-size stack array + runtime length: compiled to __read_chk */
			char fixed[64];
			volatile size_t len = left < sizeof fixed ? left : sizeof fixed;
			r = read(fd, fixed, len);
			if (r > 0)
				memcpy(got + have, fixed, (size_t)r);
			break;
		}
		case R_RECV_FORT: {
			char fixed[64];
			volatile size_t len = left < sizeof fixed ? left : sizeof fixed;
			r = recv(fd, fixed, len, 0);
			if (r > 0)
				memcpy(got + have, fixed, (size_t)r);
			break;
		}
		case R_RECVFROM_FORT: {
			char fixed[64];
			volatile size_t len = left < sizeof fixed ? left : sizeof fixed;
			r = recvfrom(fd, fixed, len, 0, NULL, NULL);
			if (r > 0)
				memcpy(got + have, fixed, (size_t)r);
			break;
		}
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail(step, "read side failed", errno);
		if (r == 0)
			fail(step, "unexpected EOF", 0);
		have += (size_t)r;
	}
	if (memcmp(got, want, n) != 0) {
		printf("step %s FAIL: echo mismatch: want \"%.*s\" got \"%.*s\"\n", step, (int)n, want, (int)n, got);
		exit(1);
	}
	ok(step);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: iovclient HOST PORT\n");
		return 2;
	}
	const char *stage = "connect";
	fd = connect_host(argv[1], argv[2], AF_UNSPEC, &stage);
	if (fd < 0)
		fail(stage, "connect failed", errno);
	ok("connect");

	int v = -1;
	socklen_t vl = sizeof v;
	if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &vl) != 0)
		fail("nodelay", "getsockopt", errno);
	if (v != 0) {
		printf("step nodelay FAIL: TCP_NODELAY is %d after connect; the client never set it\n", v);
		return 1;
	}
	ok("nodelay");

	/* Non-blocking read with nothing pending: the echo server sends nothing unasked. */
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	char tmp[16];
	ssize_t r = read(fd, tmp, sizeof tmp);
	if (r >= 0) {
		printf("step eagain FAIL: read returned %zd with nothing sent\n", r);
		return 1;
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		fail("eagain", "non-blocking read with nothing pending", errno);
	r = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
	if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
		fail("eagain", "recv(MSG_DONTWAIT) with nothing pending", r >= 0 ? 0 : errno);
	fcntl(fd, F_SETFL, fl);
	ok("eagain");

	/* writev with three pieces, read back with readv into two */
	{
		struct iovec iov[3] = {{"alpha-", 6}, {"beta-", 5}, {"gamma\n", 6}};
		r = writev(fd, iov, 3);
		if (r != 17)
			fail("writev", "writev did not write 17 bytes", r < 0 ? errno : 0);
		expect_back("writev+readv", R_READV, "alpha-beta-gamma\n", 17);
	}
	/* sendmsg / recvmsg */
	{
		struct iovec iov[2] = {{"sendmsg-", 8}, {"payload\n", 8}};
		struct msghdr m;
		memset(&m, 0, sizeof m);
		m.msg_iov = iov;
		m.msg_iovlen = 2;
		r = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (r != 16)
			fail("sendmsg", "sendmsg did not send 16 bytes", r < 0 ? errno : 0);
		expect_back("sendmsg+recvmsg", R_RECVMSG, "sendmsg-payload\n", 16);
	}
	/* sendto (no address, connected socket) / recvfrom */
	{
		r = sendto(fd, "sendto-data\n", 12, 0, NULL, 0);
		if (r != 12)
			fail("sendto", "sendto did not send 12 bytes", r < 0 ? errno : 0);
		expect_back("sendto+recvfrom", R_RECVFROM, "sendto-data\n", 12);
	}
	/* send / recv */
	{
		r = send(fd, "send-recv\n", 10, 0);
		if (r != 10)
			fail("send", "send did not send 10 bytes", r < 0 ? errno : 0);
		expect_back("send+recv", R_RECV, "send-recv\n", 10);
	}
	/* write, poll for readability, fortified read */
	{
		r = write(fd, "fortified-read\n", 15);
		if (r != 15)
			fail("write", "write did not write 15 bytes", r < 0 ? errno : 0);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int pr = poll(&p, 1, 10000);
		if (pr != 1 || !(p.revents & POLLIN))
			fail("poll", "poll did not report POLLIN within 10 s", pr < 0 ? errno : ETIMEDOUT);
		ok("poll");
		expect_back("write+__read_chk", R_READ_FORT, "fortified-read\n", 15);
	}
	{
		r = write(fd, "fortified-recv\n", 15);
		if (r != 15)
			fail("write", "write did not write 15 bytes", r < 0 ? errno : 0);
		expect_back("write+__recv_chk", R_RECV_FORT, "fortified-recv\n", 15);
		r = write(fd, "fortified-recvfrom\n", 19);
		if (r != 19)
			fail("write", "write did not write 19 bytes", r < 0 ? errno : 0);
		expect_back("write+__recvfrom_chk", R_RECVFROM_FORT, "fortified-recvfrom\n", 19);
	}
	/* half-close: the echo server sees EOF, closes cleanly; we must then read 0 */
	if (shutdown(fd, SHUT_WR) != 0)
		fail("halfclose", "shutdown(SHUT_WR)", errno);
	r = read(fd, tmp, sizeof tmp);
	if (r != 0) {
		if (r < 0)
			fail("halfclose", "read after SHUT_WR should return 0 (EOF)", errno);
		printf("step halfclose FAIL: read returned %zd bytes, expected EOF\n", r);
		return 1;
	}
	ok("halfclose");
	close(fd);
	printf("all steps ok\n");
	return 0;
}
