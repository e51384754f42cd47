/* ev_io CMD HOST PORT [ARG]: every other way to move bytes over a TLS socket, one connection per run.
 *   stdio            fdopen(fd,"w") + fdopen(dup(fd),"r"): 300 lines with fprintf, read back with fgets
 *                    (echo server); prints sent_n/sent_sha
 *   dprintf          dprintf 300 lines, read the echo; prints sent_n/sent_sha
 *   sendfile FILE    sendfile(fd, file, &off, ...) the whole FILE (hash server), shutdown(SHUT_WR), prints
 *                    the server's "<sha256> <n>" line as reply=...; the file position must stay 0
 *   sendfilepos FILE the same with offset NULL: the file position must end at the file size
 *   splice           splice from a pipe into the TLS socket and from it into a pipe: both -1/EINVAL; the
 *                    connection still works (echo) and the probe text never crossed it
 *   mmsg             sendmmsg 3 messages x 2 iovecs, recvmmsg until all echoed back
 *   prwv2            pwritev2/preadv2 with offset -1 (echo); offset 0 gives ESPIPE as on any socket
 *   peek             recv(MSG_PEEK) then read: the same bytes (echo of 3000 bytes, 5 rounds)
 *   waitall          write 50000 bytes, recv(MSG_WAITALL) gets exactly 50000 (echo)
 *   dontwait         recv(MSG_DONTWAIT) with nothing sent: -1/EAGAIN at once, fd stays blocking
 *   epipe            (server that sends a greeting then closes) read to EOF; send(MSG_NOSIGNAL) until it
 *                    fails: EPIPE without SIGPIPE; then write(): EPIPE with SIGPIPE. Prints the
 *                    observations (compared by the test with plain TCP). */
#include "ev_common.h"

#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>

static int fd;

static void echo_check(const void *sent, size_t n, const char *what)
{
	char *in = malloc(n + 1);
	ev_read_exact(fd, in, n, what);
	if (memcmp(in, sent, n) != 0)
		ev_fail("%s: the echo differs from what was sent", what);
	free(in);
}

static void print_sha(const char *prefix, const void *buf, size_t n)
{
	char hex[65];
	ev_sha_hex_of(buf, n, hex);
	printf("%ssent_n=%zu sent_sha=%s\n", prefix, n, hex);
}

static void make_lines(char *all, size_t cap, size_t *len, int count, const char *tag)
{
	*len = 0;
	for (int i = 0; i < count; i++)
		*len += (size_t)snprintf(all + *len, cap - *len, "%s line %03d: the quick brown fox %d\n",
					 tag, i, i * 7919);
}

static void cmd_stdio(void)
{
	static char all[65536];
	size_t len;
	make_lines(all, sizeof all, &len, 300, "stdio");
	int rfd = dup(fd);
	FILE *w = fdopen(fd, "w"), *r = fdopen(rfd, "r");
	if (!w || !r)
		ev_die("fdopen: errno=%s", errno_name(errno));
	for (int i = 0; i < 300; i++)
		if (fprintf(w, "stdio line %03d: the quick brown fox %d\n", i, i * 7919) < 0)
			ev_die("fprintf: errno=%s", errno_name(errno));
	if (fflush(w) != 0)
		ev_die("fflush: errno=%s", errno_name(errno));
	char line[256];
	size_t off = 0;
	int lines = 0;
	while (off < len && fgets(line, sizeof line, r)) {
		size_t l = strlen(line);
		if (off + l > len || memcmp(all + off, line, l) != 0) {
			ev_fail("fgets line %d differs from what fprintf wrote", lines);
			break;
		}
		off += l;
		lines++;
	}
	printf("fgets_lines=%d\n", lines);
	if (off != len)
		ev_fail("read back %zu of %zu bytes with fgets", off, len);
	print_sha("", all, len);
	fflush(stdout);
	fclose(w); /* closes fd; rfd keeps the session */
	fclose(r); /* the last copy: close_notify */
}

static void cmd_dprintf(void)
{
	static char all[65536];
	size_t len;
	make_lines(all, sizeof all, &len, 300, "dprintf");
	size_t total = 0;
	for (int i = 0; i < 300; i++) {
		int n = dprintf(fd, "dprintf line %03d: the quick brown fox %d\n", i, i * 7919);
		if (n < 0)
			ev_die("dprintf: errno=%s", errno_name(errno));
		total += (size_t)n;
	}
	if (total != len)
		ev_fail("dprintf returned %zu bytes in all, want %zu", total, len);
	echo_check(all, len, "dprintf echo");
	print_sha("", all, len);
	close(fd);
}

static void cmd_sendfile(const char *path, bool use_offset)
{
	int f = open(path, O_RDONLY);
	if (f < 0)
		ev_die("open %s: errno=%s", path, errno_name(errno));
	struct stat st;
	fstat(f, &st);
	off_t off = 0;
	size_t total = 0;
	int calls = 0;
	while (total < (size_t)st.st_size && calls < 100000) {
		ssize_t n = use_offset ? sendfile(fd, f, &off, (size_t)st.st_size - total)
				       : sendfile(fd, f, NULL, (size_t)st.st_size - total);
		calls++;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ev_die("sendfile after %zu bytes: %zd errno=%s", total, n,
			       n < 0 ? errno_name(errno) : "-");
		total += (size_t)n;
	}
	off_t pos = lseek(f, 0, SEEK_CUR);
	printf("sendfile_calls=%d total=%zu offset=%lld file_pos=%lld\n", calls, total, (long long)off,
	       (long long)pos);
	if (use_offset && (off != st.st_size || pos != 0))
		ev_fail("sendfile with an offset: want offset=%lld and the file position untouched (0), got "
			"%lld/%lld",
			(long long)st.st_size, (long long)off, (long long)pos);
	if (!use_offset && pos != st.st_size)
		ev_fail("sendfile without offset: the file position should be %lld, is %lld",
			(long long)st.st_size, (long long)pos);
	if (shutdown(fd, SHUT_WR) != 0)
		ev_fail("shutdown: errno=%s", errno_name(errno));
	char reply[200] = "";
	ssize_t n = read(fd, reply, sizeof reply - 1);
	if (n > 0) {
		reply[n] = 0;
		reply[strcspn(reply, "\n")] = 0;
	}
	printf("reply=%s\n", reply);
	close(f);
	close(fd);
}

static void cmd_splice(void)
{
	int p[2];
	if (pipe(p) != 0)
		ev_die("pipe");
	const char probe[] = "SPLICE-PLAINTEXT-PROBE\n";
	if (write(p[1], probe, sizeof probe - 1) != (ssize_t)sizeof probe - 1)
		ev_die("pipe write");
	ssize_t r = splice(p[0], NULL, fd, NULL, sizeof probe - 1, 0);
	int e = errno;
	printf("splice_into_tls=%s\n", r < 0 ? errno_name(e) : "moved bytes");
	if (!(r < 0 && e == EINVAL))
		ev_fail("splice into the TLS socket: want -1/EINVAL, got %zd (%s)", r,
			r < 0 ? errno_name(e) : "");
	r = splice(fd, NULL, p[1], NULL, 100, SPLICE_F_NONBLOCK);
	e = errno;
	printf("splice_from_tls=%s\n", r < 0 ? errno_name(e) : "moved bytes");
	if (!(r < 0 && e == EINVAL))
		ev_fail("splice out of the TLS socket: want -1/EINVAL, got %zd (%s)", r,
			r < 0 ? errno_name(e) : "");
	const char after[] = "after splice: the connection still works\n";
	ev_write_all(fd, after, sizeof after - 1, "after splice");
	echo_check(after, sizeof after - 1, "after splice");
	print_sha("", after, sizeof after - 1);
	close(fd);
}

static void cmd_mmsg(void)
{
	char parts[6][64];
	struct iovec iov[6];
	struct mmsghdr msgs[3];
	memset(msgs, 0, sizeof msgs);
	char all[512];
	size_t len = 0;
	for (int i = 0; i < 6; i++) {
		int n = snprintf(parts[i], sizeof parts[i], "mmsg part %d of message %d;", i % 2, i / 2);
		iov[i] = (struct iovec){parts[i], (size_t)n};
		memcpy(all + len, parts[i], (size_t)n);
		len += (size_t)n;
	}
	for (int m = 0; m < 3; m++) {
		msgs[m].msg_hdr.msg_iov = &iov[2 * m];
		msgs[m].msg_hdr.msg_iovlen = 2;
	}
	int sent = sendmmsg(fd, msgs, 3, 0);
	printf("sendmmsg=%d lens=%u,%u,%u\n", sent, msgs[0].msg_len, msgs[1].msg_len, msgs[2].msg_len);
	if (sent != 3)
		ev_fail("sendmmsg: want 3, got %d (errno=%s)", sent, sent < 0 ? errno_name(errno) : "-");
	for (int m = 0; m < 3 && sent == 3; m++)
		if (msgs[m].msg_len != iov[2 * m].iov_len + iov[2 * m + 1].iov_len)
			ev_fail("sendmmsg message %d: msg_len %u", m, msgs[m].msg_len);
	char in[512];
	size_t got = 0;
	int calls = 0;
	while (got < len && calls++ < 100) {
		char b1[20], b2[200];
		struct iovec riov[2] = {{b1, sizeof b1}, {b2, sizeof b2}};
		struct mmsghdr rm[2];
		memset(rm, 0, sizeof rm);
		rm[0].msg_hdr.msg_iov = riov;
		rm[0].msg_hdr.msg_iovlen = 2;
		rm[1].msg_hdr.msg_iov = riov;
		rm[1].msg_hdr.msg_iovlen = 2;
		int k = recvmmsg(fd, rm, 2, 0, NULL);
		if (k <= 0)
			ev_die("recvmmsg: %d errno=%s", k, k < 0 ? errno_name(errno) : "-");
		for (int i = 0; i < k; i++) {
			size_t l = rm[i].msg_len, a = l < sizeof b1 ? l : sizeof b1;
			if (got + l > sizeof in)
				ev_die("recvmmsg: too much");
			memcpy(in + got, b1, a);
			memcpy(in + got + a, b2, l - a);
			got += l;
		}
	}
	printf("recvmmsg_calls=%d got=%zu\n", calls, got);
	if (got != len || memcmp(in, all, len) != 0)
		ev_fail("recvmmsg: got %zu bytes, want the %zu sent (or they differ)", got, len);
	print_sha("", all, len);
	close(fd);
}

static void cmd_prwv2(void)
{
	char a[] = "pwritev2 first piece|", b[] = "pwritev2 second piece\n";
	struct iovec iov[2] = {{a, sizeof a - 1}, {b, sizeof b - 1}};
	size_t len = sizeof a - 1 + sizeof b - 1;
	ssize_t w = pwritev2(fd, iov, 2, 0, 0);
	int e = errno;
	printf("pwritev2_offset0=%s\n", w < 0 ? errno_name(e) : "wrote");
	if (!(w < 0 && e == ESPIPE))
		ev_fail("pwritev2 with offset 0 on a socket: want -1/ESPIPE, got %zd", w);
	w = pwritev2(fd, iov, 2, -1, 0);
	printf("pwritev2=%zd\n", w);
	if (w != (ssize_t)len)
		ev_fail("pwritev2 offset -1: want %zu, got %zd (errno=%s)", len, w,
			w < 0 ? errno_name(errno) : "-");
	char all[128];
	memcpy(all, a, sizeof a - 1);
	memcpy(all + sizeof a - 1, b, sizeof b - 1);
	char in[128], r1[10], r2[100];
	size_t got = 0;
	for (int i = 0; i < 100 && got < len; i++) {
		struct iovec riov[2] = {{r1, sizeof r1}, {r2, sizeof r2}};
		ssize_t n = preadv2(fd, riov, 2, -1, 0);
		if (n <= 0)
			ev_die("preadv2: %zd errno=%s", n, n < 0 ? errno_name(errno) : "-");
		size_t x = (size_t)n < sizeof r1 ? (size_t)n : sizeof r1;
		memcpy(in + got, r1, x);
		memcpy(in + got + x, r2, (size_t)n - x);
		got += (size_t)n;
	}
	printf("preadv2_got=%zu\n", got);
	if (got != len || memcmp(in, all, len) != 0)
		ev_fail("preadv2: got %zu bytes, want the %zu written (or they differ)", got, len);
	struct iovec riov[1] = {{r1, sizeof r1}};
	ssize_t n = preadv2(fd, riov, 1, 0, 0);
	printf("preadv2_offset0=%s\n", n < 0 ? errno_name(errno) : "read");
	print_sha("", all, len);
	close(fd);
}

static void cmd_peek(void)
{
	struct ev_pattern *p = malloc(sizeof *p);
	ev_pattern_init(p, 77);
	static uint8_t all[15000];
	ev_pattern_fill(p, 0, all, sizeof all);
	size_t off = 0;
	for (int round = 0; round < 5; round++) {
		ev_write_all(fd, all + round * 3000, 3000, "peek write");
		size_t got = 0;
		while (got < 3000) {
			uint8_t pk[4000], pk2[4000], rd[4000];
			ssize_t k = recv(fd, pk, 3000 - got, MSG_PEEK);
			if (k <= 0)
				ev_die("recv(MSG_PEEK): %zd errno=%s", k, k < 0 ? errno_name(errno) : "EOF");
			ssize_t k2 = recv(fd, pk2, (size_t)k, MSG_PEEK);
			ssize_t r = read(fd, rd, (size_t)k);
			if (k2 != k || memcmp(pk, pk2, (size_t)k) != 0)
				ev_fail("round %d: a second MSG_PEEK gave different bytes", round);
			if (r != k || memcmp(pk, rd, (size_t)k) != 0)
				ev_fail("round %d: read after MSG_PEEK of %zd bytes gave %zd different bytes",
					round, k, r);
			if (r <= 0)
				ev_die("read after peek: %zd", r);
			if (memcmp(rd, all + off, (size_t)r) != 0)
				ev_fail("round %d: the bytes differ from what was sent", round);
			got += (size_t)r;
			off += (size_t)r;
		}
	}
	printf("peek_rounds=5 bytes=%zu\n", off);
	print_sha("", all, sizeof all);
	free(p);
	close(fd);
}

static void cmd_waitall(void)
{
	struct ev_pattern *p = malloc(sizeof *p);
	ev_pattern_init(p, 78);
	static uint8_t all[50000], in[60000];
	ev_pattern_fill(p, 0, all, sizeof all);
	for (size_t off = 0; off < sizeof all; off += 5000) /* the echo arrives in many records */
		ev_write_all(fd, all + off, 5000, "waitall write");
	ssize_t k = recv(fd, in, sizeof all, MSG_WAITALL);
	printf("waitall_got=%zd\n", k);
	if (k != (ssize_t)sizeof all || memcmp(in, all, sizeof all) != 0)
		ev_fail("recv(MSG_WAITALL, %zu): got %zd (errno=%s)", sizeof all, k,
			k < 0 ? errno_name(errno) : "-");
	print_sha("", all, sizeof all);
	free(p);
	close(fd);
}

static void cmd_dontwait(void)
{
	char c[16];
	long long t = now_ms();
	ssize_t k = recv(fd, c, sizeof c, MSG_DONTWAIT);
	int e = errno;
	long long ms = now_ms() - t;
	int fl = fcntl(fd, F_GETFL);
	printf("dontwait=%s ms=%lld fd_blocking=%d\n", k < 0 ? errno_name(e) : "data", ms,
	       !(fl & O_NONBLOCK));
	if (!(k < 0 && e == EAGAIN))
		ev_fail("recv(MSG_DONTWAIT) with nothing sent: want -1/EAGAIN, got %zd", k);
	if (ms > 200)
		ev_fail("recv(MSG_DONTWAIT) took %lld ms", ms);
	if (fl & O_NONBLOCK)
		ev_fail("MSG_DONTWAIT left the fd non-blocking");
	const char m[] = "after dontwait\n";
	ev_write_all(fd, m, sizeof m - 1, "after dontwait");
	echo_check(m, sizeof m - 1, "after dontwait");
	close(fd);
}

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int sig)
{
	(void)sig;
	sigpipes++;
}

static void cmd_epipe(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigpipe;
	sigaction(SIGPIPE, &sa, NULL);
	char buf[4096];
	size_t got = 0;
	ssize_t r;
	while ((r = read(fd, buf, sizeof buf)) > 0)
		got += (size_t)r;
	printf("greeting_bytes=%zu read_end=%s\n", got, r == 0 ? "EOF" : errno_name(errno));
	ev_sleep_ms(200);
	int ok_writes = 0, e = 0;
	for (int i = 0; i < 50; i++) {
		ssize_t w = send(fd, "x\n", 2, MSG_NOSIGNAL);
		if (w < 0) {
			e = errno;
			break;
		}
		ok_writes++;
		ev_sleep_ms(50);
	}
	printf("nosignal_error=%s sigpipe_after_nosignal=%d\n", ev_err(e), (int)sigpipes);
	fprintf(stderr, "ev_io: %d writes with MSG_NOSIGNAL succeeded before the error\n", ok_writes);
	ssize_t w = write(fd, "y\n", 2);
	e = w < 0 ? errno : 0;
	printf("write_error=%s sigpipe_after_write=%d\n", ev_err(e), (int)sigpipes);
	close(fd);
}

int main(int argc, char **argv)
{
	ev_prog = "ev_io";
	if (argc < 4)
		ev_die("usage: ev_io CMD HOST PORT [ARG]");
	const char *cmd = argv[1];
	fd = ev_connect(argv[2], argv[3]);
	if (!strcmp(cmd, "stdio"))
		cmd_stdio();
	else if (!strcmp(cmd, "dprintf"))
		cmd_dprintf();
	else if (!strcmp(cmd, "sendfile") && argc > 4)
		cmd_sendfile(argv[4], true);
	else if (!strcmp(cmd, "sendfilepos") && argc > 4)
		cmd_sendfile(argv[4], false);
	else if (!strcmp(cmd, "splice"))
		cmd_splice();
	else if (!strcmp(cmd, "mmsg"))
		cmd_mmsg();
	else if (!strcmp(cmd, "prwv2"))
		cmd_prwv2();
	else if (!strcmp(cmd, "peek"))
		cmd_peek();
	else if (!strcmp(cmd, "waitall"))
		cmd_waitall();
	else if (!strcmp(cmd, "dontwait"))
		cmd_dontwait();
	else if (!strcmp(cmd, "epipe"))
		cmd_epipe();
	else
		ev_die("unknown command %s", cmd);
	return ev_exit_status();
}
