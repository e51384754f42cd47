/* tcpclient: a plain TCP client for the tlsshim tests (it knows nothing about TLS).
 *
 * usage: tcpclient [options] HOST PORT
 *   -4 | -6     address family for getaddrinfo (default: any; every result is tried in order)
 *   -N          numeric: parse HOST with inet_pton, never call the resolver (IPv4, IPv6, ::ffff:a.b.c.d)
 *   -b          non-blocking connect (EINPROGRESS + poll + SO_ERROR), then blocking I/O
 *   -s TEXT     send TEXT after connecting ("\n" and "\r" escapes understood)
 *   -i          send standard input after connecting
 *   -W          shutdown(SHUT_WR) after sending, then keep reading
 *   -r          do not read (stop after sending)
 *   -q          print "recv_bytes=N sha256=HEX" instead of the received data
 *   -n COUNT    repeat the whole exchange COUNT times (each its own connection; continue on failure)
 *   -o          after connecting, send(MSG_OOB) one byte: expected to fail on a TLS socket
 *   -d          print "nodelay=V" (TCP_NODELAY) after connect
 *   -D          set TCP_NODELAY=1 before connect
 *   -w MS       wait MS milliseconds after connecting, before sending
 * Received data goes to stdout. Status goes to stderr as "tcpclient: STAGE: errno=ENAME (...)".
 * Exit: 0 ok, 1 usage, 2 connect failed, 3 write failed, 4 read failed, 5 MSG_OOB was accepted. */
#include <signal.h>

#include "../integration/clientlib.h"

struct opts {
	const char *host, *port, *text;
	int delay_ms;
	int family, numeric, nonblock, use_stdin, half_close, no_read, quiet, oob, show_nodelay, set_nodelay;
};

static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] == 'n') {
			*o++ = '\n';
			s++;
		} else if (s[0] == '\\' && s[1] == 'r') {
			*o++ = '\r';
			s++;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

static void fail_msg(const char *stage, int e, long long t0)
{
	fprintf(stderr, "tcpclient: %s: errno=%s (%s) after %lld ms\n", stage, errno_name(e), strerror(e),
		now_ms() - t0);
}

/* connect_one: one socket, one connect to sa (blocking, or non-blocking then poll + SO_ERROR with -b).
 * Returns the fd, or -1 with *err and *stage saying what failed (nothing printed). */
static int connect_one(const struct opts *o, const struct sockaddr *sa, socklen_t sl, int *err,
		       const char **stage)
{
	*stage = "socket";
	int fd = socket(sa->sa_family, SOCK_STREAM, 0);
	if (fd < 0) {
		*err = errno;
		return -1;
	}
	if (o->set_nodelay) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	*stage = "connect";
	if (!o->nonblock) {
		if (connect(fd, sa, sl) == 0)
			return fd;
		*err = errno;
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (connect(fd, sa, sl) != 0) {
		if (errno != EINPROGRESS) {
			*err = errno;
			close(fd);
			return -1;
		}
		fprintf(stderr, "tcpclient: connect: EINPROGRESS, polling\n");
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int pr = poll(&p, 1, 30000);
		if (pr <= 0) {
			*stage = "connect-poll";
			*err = pr == 0 ? ETIMEDOUT : errno;
			close(fd);
			return -1;
		}
		int so_err = 0;
		socklen_t el = sizeof so_err;
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &el);
		if (so_err != 0) {
			*err = so_err;
			close(fd);
			return -1;
		}
	} else {
		fprintf(stderr, "tcpclient: connect: returned 0 immediately (non-blocking)\n");
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* do_connect: -N parses one numeric address; otherwise every distinct address getaddrinfo returns is
 * tried in order until one connects, as real clients do. Only the last failure is reported as
 * "tcpclient: STAGE: errno=..."; earlier ones say "tcpclient: ADDR port P failed (ENAME), trying the
 * next address". Returns the fd, -1 on failure, -2 on a usage error. */
static int do_connect(const struct opts *o, long long t0)
{
	struct addrinfo hints, *res = NULL, numeric;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	memset(&numeric, 0, sizeof numeric);
	if (o->numeric) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		int port = atoi(o->port);
		if (inet_pton(AF_INET, o->host, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)port);
			numeric.ai_addrlen = sizeof *s4;
		} else if (inet_pton(AF_INET6, o->host, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)port);
			numeric.ai_addrlen = sizeof *s6;
		} else {
			fprintf(stderr, "tcpclient: -N needs a numeric address, got %s\n", o->host);
			return -2;
		}
		numeric.ai_addr = (struct sockaddr *)&ss;
	} else {
		memset(&hints, 0, sizeof hints);
		hints.ai_family = o->family;
		hints.ai_socktype = SOCK_STREAM;
		int rc = getaddrinfo(o->host, o->port, &hints, &res);
		if (rc != 0) {
			fprintf(stderr, "tcpclient: getaddrinfo(%s): %s\n", o->host, gai_strerror(rc));
			return -1;
		}
	}
	int fd = -1, err = 0;
	const char *stage = "connect";
	const struct addrinfo *list = o->numeric ? &numeric : res;
	for (const struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
		if (seen_before(list, ai))
			continue;
		fd = connect_one(o, ai->ai_addr, ai->ai_addrlen, &err, &stage);
		if (fd >= 0)
			break;
		if (ai->ai_next != NULL) {
			char where[80];
			fprintf(stderr, "tcpclient: %s failed (%s at %s), trying the next address\n",
				addr_text(ai->ai_addr, where, sizeof where), errno_name(err), stage);
		}
	}
	if (res != NULL)
		freeaddrinfo(res);
	if (fd < 0) {
		fail_msg(stage, err, t0);
		return -1;
	}
	fprintf(stderr, "tcpclient: connected in %lld ms\n", now_ms() - t0);
	return fd;
}

static int exchange(const struct opts *o, const char *sendbuf, size_t sendlen)
{
	long long t0 = now_ms();
	int fd = do_connect(o, t0);
	if (fd == -2)
		return 1;
	if (fd < 0)
		return 2;
	if (o->show_nodelay) {
		int v = -1;
		socklen_t l = sizeof v;
		getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &l);
		fprintf(stderr, "tcpclient: nodelay=%d\n", v);
		printf("nodelay=%d\n", v);
	}
	if (o->oob) {
		ssize_t r = send(fd, "!", 1, MSG_OOB);
		if (r >= 0) {
			fprintf(stderr, "tcpclient: send(MSG_OOB): accepted (%zd bytes)\n", r);
			close(fd);
			return 5;
		}
		fail_msg("send-oob", errno, t0);
		close(fd);
		return 0;
	}
	if (o->delay_ms > 0) {
		struct timespec ts = {o->delay_ms / 1000, (long)(o->delay_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (sendlen > 0 && write_full(fd, sendbuf, sendlen) != 0) {
		fail_msg("write", errno, t0);
		close(fd);
		return 3;
	}
	if (o->half_close && shutdown(fd, SHUT_WR) != 0) {
		fail_msg("shutdown", errno, t0);
		close(fd);
		return 3;
	}
	if (o->no_read) {
		close(fd);
		return 0;
	}
	struct sha256 h;
	sha256_init(&h);
	unsigned long long total = 0;
	char buf[65536];
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			fflush(stdout);
			fprintf(stderr, "tcpclient: read after %llu bytes: errno=%s (%s)\n", total,
				errno_name(e), strerror(e));
			close(fd);
			return 4;
		}
		if (r == 0)
			break;
		total += (unsigned long long)r;
		sha256_update(&h, buf, (size_t)r);
		if (!o->quiet)
			fwrite(buf, 1, (size_t)r, stdout);
	}
	char hex[65];
	sha256_hex(&h, hex);
	if (o->quiet)
		printf("recv_bytes=%llu sha256=%s\n", total, hex);
	fflush(stdout);
	fprintf(stderr, "tcpclient: EOF after %llu bytes\n", total);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	memset(&o, 0, sizeof o);
	o.family = AF_UNSPEC;
	int count = 1, c;
	while ((c = getopt(argc, argv, "46Nbs:iWrqn:odDw:")) != -1) {
		switch (c) {
		case '4':
			o.family = AF_INET;
			break;
		case '6':
			o.family = AF_INET6;
			break;
		case 'N':
			o.numeric = 1;
			break;
		case 'b':
			o.nonblock = 1;
			break;
		case 's':
			o.text = optarg;
			break;
		case 'i':
			o.use_stdin = 1;
			break;
		case 'W':
			o.half_close = 1;
			break;
		case 'r':
			o.no_read = 1;
			break;
		case 'q':
			o.quiet = 1;
			break;
		case 'n':
			count = atoi(optarg);
			break;
		case 'o':
			o.oob = 1;
			break;
		case 'd':
			o.show_nodelay = 1;
			break;
		case 'D':
			o.set_nodelay = 1;
			break;
		case 'w':
			o.delay_ms = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: tcpclient [-46NbiWrqodD] [-s TEXT] [-n N] [-w MS] HOST PORT\n");
			return 1;
		}
	}
	if (argc - optind != 2 || count < 1 || count > 1000) {
		fprintf(stderr, "usage: tcpclient [-46NbiWrqodD] [-s TEXT] [-n N] [-w MS] HOST PORT\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN); /* a write to a dead peer must show up as EPIPE, not kill us */
	o.host = argv[optind];
	o.port = argv[optind + 1];
	char *sendbuf = NULL;
	size_t sendlen = 0;
	if (o.text) {
		sendbuf = strdup(o.text);
		unescape(sendbuf);
		sendlen = strlen(sendbuf);
	} else if (o.use_stdin) {
		size_t cap = 1 << 16;
		sendbuf = malloc(cap);
		for (;;) {
			if (sendlen == cap) {
				cap *= 2;
				sendbuf = realloc(sendbuf, cap);
			}
			ssize_t r = read(0, sendbuf + sendlen, cap - sendlen);
			if (r <= 0)
				break;
			sendlen += (size_t)r;
		}
	}
	int worst = 0;
	for (int i = 0; i < count; i++) {
		int rc = exchange(&o, sendbuf, sendlen);
		if (count > 1)
			fprintf(stderr, "tcpclient: attempt %d: rc=%d\n", i + 1, rc);
		if (rc > worst)
			worst = rc;
		if (rc == 1)
			break;
	}
	free(sendbuf);
	return worst;
}
