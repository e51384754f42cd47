/* ev_fork MODE HOST PORT [N]: a TLS connection across fork(). Server: evserver echo (records at EOF).
 *   childclose  one exchange; child 1 closes the fd and exits; child 2 exits with the fd open (the shim's
 *               exit path); the parent then exchanges again (the session must be intact) and exits
 *               WITHOUT closing: the owner's exit must send close_notify (the server logs EOF, not an
 *               error). Prints sent_n/sent_sha of everything the parent sent.
 *   pwcr        parent only writes N bytes then shutdown(SHUT_WR); the child only reads the N echoed
 *               bytes, then EOF. Prints parent_sent_sha, child_recv_sha.
 *   cwpr        the reverse: the child writes N and shuts down, exits; the parent reads N then EOF.
 *   bothwrite   both write (README: the connection breaks, no plaintext). Each process writes 20 lines
 *               "<who>-secret-<i>" and then reads with SO_RCVTIMEO 3 s; prints what each saw. Exit 0
 *               whatever happened (the test script judges the wire and the server). */
#include "ev_common.h"

static void exchange(int fd, const char *text, struct sha256 *s, size_t *n)
{
	char line[128], in[128];
	int len = snprintf(line, sizeof line, "%s\n", text);
	ev_write_all(fd, line, (size_t)len, text);
	ev_read_exact(fd, in, (size_t)len, text);
	if (memcmp(in, line, (size_t)len) != 0)
		ev_fail("%s: echo differs", text);
	sha256_update(s, line, (size_t)len);
	*n += (size_t)len;
}

static int child_status(pid_t pid)
{
	int st = 0;
	for (int i = 0; i < 3000; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		ev_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	ev_fail("child %d did not finish within 30 s (killed)", (int)pid);
	return 255;
}

/* Writes n pattern bytes; returns the hex SHA-256 of what was written. */
static void write_pattern(int fd, size_t n, uint64_t seed, char hex[65], const char *who)
{
	struct ev_pattern *p = malloc(sizeof *p);
	uint8_t *buf = malloc(EV_BLOCK);
	ev_pattern_init(p, seed);
	struct sha256 s;
	sha256_init(&s);
	for (size_t off = 0; off < n;) {
		size_t take = n - off < EV_BLOCK ? n - off : EV_BLOCK;
		ev_pattern_fill(p, off, buf, take);
		if (write_full(fd, buf, take) != 0)
			ev_die("%s: write at %zu: errno=%s", who, off, errno_name(errno));
		sha256_update(&s, buf, take);
		off += take;
	}
	sha256_hex(&s, hex);
	free(buf);
	free(p);
}

/* Reads n bytes then expects EOF; returns the hex SHA-256. */
static void read_n_then_eof(int fd, size_t n, char hex[65], const char *who)
{
	uint8_t *buf = malloc(EV_BLOCK);
	struct sha256 s;
	sha256_init(&s);
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf, n - got < EV_BLOCK ? n - got : EV_BLOCK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			ev_die("%s: read %zu of %zu bytes (%s)", who, got, n,
			       r < 0 ? errno_name(errno) : "EOF");
		sha256_update(&s, buf, (size_t)r);
		got += (size_t)r;
	}
	sha256_hex(&s, hex);
	char c;
	ssize_t r = read(fd, &c, 1);
	printf("%s_after_n=%s\n", who, r == 0 ? "EOF" : r < 0 ? errno_name(errno) : "data");
	if (r != 0)
		ev_fail("%s: after %zu bytes want EOF (the server's close_notify), got %zd (%s)", who, n, r,
			r < 0 ? errno_name(errno) : "data");
	free(buf);
}

int main(int argc, char **argv)
{
	ev_prog = "ev_fork";
	if (argc < 4)
		ev_die("usage: ev_fork MODE HOST PORT [N]");
	const char *mode = argv[1];
	size_t n = argc > 4 ? strtoull(argv[4], NULL, 10) : 4 << 20;
	int fd = ev_connect(argv[2], argv[3]);
	fflush(stdout);
	struct sha256 s;
	size_t sent = 0;
	sha256_init(&s);
	char hex[65];

	if (!strcmp(mode, "childclose")) {
		exchange(fd, "before fork", &s, &sent);
		pid_t c1 = fork();
		if (c1 == 0) {
			close(fd);
			exit(0);
		}
		int st1 = child_status(c1);
		pid_t c2 = fork();
		if (c2 == 0)
			exit(0); /* fd still open: the shim's exit path runs */
		int st2 = child_status(c2);
		printf("child_close_status=%d child_exit_status=%d\n", st1, st2);
		ev_sleep_ms(300); /* a close_notify sent by a child would reach the server by now */
		exchange(fd, "after the children: the session goes on", &s, &sent);
		sha256_hex(&s, hex);
		printf("sent_n=%zu sent_sha=%s\n", sent, hex);
		fflush(stdout);
		exit(ev_exit_status()); /* without close(): the owner's exit ends the session */
	}
	if (!strcmp(mode, "pwcr") || !strcmp(mode, "cwpr")) {
		bool parent_writes = !strcmp(mode, "pwcr");
		pid_t c = fork();
		if (c < 0)
			ev_die("fork: errno=%s", errno_name(errno));
		bool writer = (c > 0) == parent_writes;
		const char *who = c == 0 ? "child" : "parent";
		if (writer) {
			write_pattern(fd, n, 4242, hex, who);
			if (shutdown(fd, SHUT_WR) != 0)
				ev_fail("%s: shutdown(SHUT_WR): errno=%s", who, errno_name(errno));
			printf("%s_sent_n=%zu %s_sent_sha=%s\n", who, n, who, hex);
		} else {
			read_n_then_eof(fd, n, hex, who);
			printf("%s_recv_n=%zu %s_recv_sha=%s\n", who, n, who, hex);
		}
		fflush(stdout);
		if (c == 0) {
			close(fd);
			exit(ev_exit_status());
		}
		int st = child_status(c);
		printf("child_status=%d\n", st);
		if (st != 0)
			ev_fail("the child failed (status %d)", st);
		close(fd);
		return ev_exit_status();
	}
	if (!strcmp(mode, "bothwrite")) {
		struct timeval tv = {3, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		pid_t c = fork();
		const char *who = c == 0 ? "child" : "parent";
		int first_err = 0, writes_ok = 0;
		for (int i = 0; i < 20; i++) {
			char line[64];
			int len = snprintf(line, sizeof line, "%s-secret-%d\n", who, i);
			ssize_t w = send(fd, line, (size_t)len, MSG_NOSIGNAL);
			if (w < 0) {
				first_err = errno;
				break;
			}
			writes_ok++;
			ev_sleep_ms(c == 0 ? 7 : 11);
		}
		char buf[4096];
		size_t got = 0;
		int rerr = 0;
		for (int i = 0; i < 100; i++) {
			ssize_t r = read(fd, buf, sizeof buf);
			if (r <= 0) {
				rerr = r < 0 ? errno : -1;
				break;
			}
			got += (size_t)r;
		}
		printf("%s: writes_ok=%d write_error=%s read_bytes=%zu read_end=%s\n", who, writes_ok,
		       ev_err(first_err), got, rerr == -1 ? "EOF" : ev_err(rerr));
		fflush(stdout);
		if (c == 0)
			exit(0);
		child_status(c);
		close(fd);
		return ev_exit_status();
	}
	ev_die("unknown mode %s", mode);
}
