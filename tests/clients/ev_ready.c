/* ev_ready METHOD HOST PORT N [BUF [perread|drain]]: readiness that tells the truth. The server (evserver
 * burst:N) sends N bytes at once and then waits for a line. The socket is made non-blocking with
 * ioctl(FIONBIO); the client waits in METHOD (poll, select, epoll, epollet) before EVERY read of at most BUF
 * (default 100) bytes, so decrypted bytes left inside the TLS library must be reported readable, or the
 * client hangs (each wait is bounded: 5 s without readiness is a failure). Also: FIONREAD counts decrypted
 * bytes (> 0 before the first read and after it); EAGAIN once all N are read; FIONBIO off/on and
 * fcntl(O_NONBLOCK) seen by F_GETFL; then "done\n" is sent and the server's close is read as EOF through the
 * same wait. "drain" (for edge-triggered epoll, whose contract is "read until EAGAIN, then wait"): after each
 * readiness, read BUF-byte pieces until EAGAIN; "perread" (default): one read per readiness.
 * Prints recv_n, recv_sha (of the N bytes), waits, eagain_reads, fionread_*. */
#include "ev_common.h"

static bool nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK);
}

int main(int argc, char **argv)
{
	ev_prog = "ev_ready";
	if (argc < 5)
		ev_die("usage: ev_ready METHOD HOST PORT N [BUF [perread|drain]]");
	bool drain = argc > 6 && !strcmp(argv[6], "drain");
	enum ev_method m = ev_method_parse(argv[1]);
	size_t n = strtoul(argv[4], NULL, 10);
	size_t bufsz = argc > 5 ? strtoul(argv[5], NULL, 10) : 100;
	if (bufsz == 0 || bufsz > 65536)
		ev_die("BUF out of range");
	int fd = ev_connect(argv[2], argv[3]);

	int on = 1;
	if (ioctl(fd, FIONBIO, &on) != 0)
		ev_die("ioctl(FIONBIO, 1): errno=%s", errno_name(errno));
	printf("fionbio_on=%s\n", nonblocking(fd) ? "O_NONBLOCK" : "blocking");
	if (!nonblocking(fd))
		ev_fail("after ioctl(FIONBIO, 1) F_GETFL does not show O_NONBLOCK");

	struct ev_waiter w;
	ev_waiter_init(&w, m, fd, POLLIN);
	char rt[64];
	int rev = ev_wait(&w, 5000);
	if (rev <= 0)
		ev_die("nothing readable within 5 s of connecting (rev=%d)", rev);
	ev_sleep_ms(300); /* let the whole burst arrive */
	int avail = -1;
	if (ioctl(fd, FIONREAD, &avail) != 0)
		ev_fail("ioctl(FIONREAD): errno=%s", errno_name(errno));
	printf("fionread_before=%d\n", avail);
	if (avail <= 0)
		ev_fail("FIONREAD before the first read: want > 0, got %d", avail);

	uint8_t *buf = malloc(bufsz);
	struct sha256 s;
	sha256_init(&s);
	size_t got = 0;
	long waits = 0, eagain = 0, reads = 0;
	long limit = (long)(n / bufsz) * 4 + 1000;
	bool first = true;
	while (got < n && waits < limit) {
		rev = ev_wait(&w, 5000);
		waits++;
		if (rev < 0 && errno == EINTR)
			continue;
		if (rev < 0)
			ev_die("wait: errno=%s", errno_name(errno));
		if (rev == 0) {
			int left = -1;
			ioctl(fd, FIONREAD, &left);
			ev_die(
			    "HANG: waited 5 s for readability with %zu of %zu bytes read (FIONREAD says %d): "
			    "bytes buffered inside TLS not reported readable",
			    got, n, left);
		}
		for (int more = 1; more && got < n;) {
			more = drain;
			ssize_t k = read(fd, buf, bufsz < n - got ? bufsz : n - got);
			if (k < 0 && errno == EAGAIN) {
				eagain++;
				break;
			}
			if (k < 0)
				ev_die("read: errno=%s after %zu bytes", errno_name(errno), got);
			if (k == 0)
				ev_die("unexpected EOF after %zu of %zu bytes", got, n);
			sha256_update(&s, buf, (size_t)k);
			got += (size_t)k;
			reads++;
			if (first) {
				first = false;
				avail = -1;
				ioctl(fd, FIONREAD, &avail);
				printf("fionread_after_first=%d\n", avail);
				if (avail <= 0)
					ev_fail("FIONREAD after reading %zd of a %zu-byte burst: want > 0, "
						"got %d",
						k, n, avail);
			}
		}
	}
	char hex[65];
	sha256_hex(&s, hex);
	printf("recv_n=%zu recv_sha=%s\nwaits=%ld reads=%ld eagain_reads=%ld\n", got, hex, waits, reads,
	       eagain);
	if (got != n)
		ev_die("received %zu of %zu bytes in %ld waits", got, n, waits);

	/* Nothing more: EAGAIN at once, FIONREAD 0. */
	char c;
	ssize_t k = read(fd, &c, 1);
	printf("read_when_empty=%s\n", k < 0 ? errno_name(errno) : "data");
	if (!(k < 0 && errno == EAGAIN))
		ev_fail("read with nothing sent: want -1/EAGAIN, got %zd", k);
	avail = -1;
	ioctl(fd, FIONREAD, &avail);
	printf("fionread_empty=%d\n", avail);
	if (avail != 0)
		ev_fail("FIONREAD with nothing left: want 0, got %d", avail);

	/* FIONBIO off, then fcntl(O_NONBLOCK) on again. */
	int off = 0;
	if (ioctl(fd, FIONBIO, &off) != 0)
		ev_fail("ioctl(FIONBIO, 0): errno=%s", errno_name(errno));
	printf("fionbio_off=%s\n", nonblocking(fd) ? "O_NONBLOCK" : "blocking");
	if (nonblocking(fd))
		ev_fail("after ioctl(FIONBIO, 0) F_GETFL still shows O_NONBLOCK");
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
		ev_fail("fcntl(F_SETFL, O_NONBLOCK): errno=%s", errno_name(errno));
	printf("fcntl_nonblock=%s\n", nonblocking(fd) ? "O_NONBLOCK" : "blocking");
	if (!nonblocking(fd))
		ev_fail("after fcntl(F_SETFL, O_NONBLOCK) F_GETFL does not show it");
	long long t = now_ms();
	k = recv(fd, &c, 1, 0);
	printf("recv_nonblocking=%s ms=%lld\n", k < 0 ? errno_name(errno) : "data", now_ms() - t);
	if (!(k < 0 && errno == EAGAIN))
		ev_fail("recv on the O_NONBLOCK fd with nothing sent: want -1/EAGAIN, got %zd", k);

	/* Tell the server we are done; its close_notify must show as readable, then EOF. */
	if (write(fd, "done\n", 5) != 5)
		ev_fail("write done: errno=%s", errno_name(errno));
	bool eof = false;
	for (int i = 0; i < 100 && !eof; i++) {
		rev = ev_wait(&w, 5000);
		if (rev == 0)
			ev_die("HANG: no readiness for the server's close within 5 s");
		k = read(fd, buf, bufsz);
		if (k == 0)
			eof = true;
		else if (k > 0)
			ev_fail("unexpected %zd bytes after the burst", k);
		else if (errno != EAGAIN)
			ev_die("read at the end: errno=%s", errno_name(errno));
	}
	printf("eof=%s\nlast_revents=%s\n", eof ? "ok" : "missing", ev_revents_text(rev, rt, sizeof rt));
	if (!eof)
		ev_fail("no EOF after the server's close");
	ev_waiter_close(&w);
	close(fd);
	free(buf);
	return ev_exit_status();
}
