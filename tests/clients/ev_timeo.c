/* ev_timeo rcv|snd HOST PORT: SO_RCVTIMEO / SO_SNDTIMEO (1 s) on a blocking TLS socket. Server: evserver
 * idle (handshake, then never reads or writes).
 *   rcv: read() must return -1/EAGAIN after about 1 s.
 *   snd: write 64 KiB pieces until a write fails (at most 1 GiB): -1/EAGAIN after about 1 s of waiting.
 * Prints result=ERRNO ms=T (the last call's duration) and, for snd, written=N. */
#include "ev_common.h"

int main(int argc, char **argv)
{
	ev_prog = "ev_timeo";
	if (argc != 4)
		ev_die("usage: ev_timeo rcv|snd HOST PORT");
	bool rcv = !strcmp(argv[1], "rcv");
	int fd = ev_connect(argv[2], argv[3]);
	struct timeval tv = {1, 0};
	if (setsockopt(fd, SOL_SOCKET, rcv ? SO_RCVTIMEO : SO_SNDTIMEO, &tv, sizeof tv) != 0)
		ev_die("setsockopt: errno=%s", errno_name(errno));
	if (rcv) {
		char buf[100];
		long long t = now_ms();
		ssize_t r = read(fd, buf, sizeof buf);
		int e = errno;
		long long ms = now_ms() - t;
		printf("result=%s ms=%lld\n", r < 0 ? errno_name(e) : r == 0 ? "EOF" : "data", ms);
		if (!(r < 0 && (e == EAGAIN || e == EWOULDBLOCK)))
			ev_fail("read with SO_RCVTIMEO=1s and a silent server: want -1/EAGAIN, got %zd", r);
		close(fd);
		return ev_exit_status();
	}
	static char buf[65536];
	memset(buf, 'z', sizeof buf);
	size_t written = 0;
	long long t0 = now_ms(), last = 0;
	int e = 0;
	while (written < (1u << 30) && now_ms() - t0 < 30000) {
		long long t = now_ms();
		ssize_t w = write(fd, buf, sizeof buf);
		last = now_ms() - t;
		if (w < 0) {
			e = errno;
			break;
		}
		written += (size_t)w;
	}
	printf("result=%s ms=%lld written=%zu total_ms=%lld\n", ev_err(e), last, written, now_ms() - t0);
	if (e != EAGAIN && e != EWOULDBLOCK)
		ev_fail("writes to a server that never reads, SO_SNDTIMEO=1s: want -1/EAGAIN, got %s after "
			"%zu bytes",
			ev_err(e), written);
	close(fd);
	return ev_exit_status();
}
