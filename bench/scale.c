/* scale.c: the scale benchmark's client (issue 12). A plain epoll program that knows nothing about TLS
 * (run under the shim for the TLS path): round trips per second on ONE active connection while N idle
 * connections sit in the same epoll set, and the resident memory each idle connection costs.
 *
 * usage: scale -p PORT -n N_IDLE [-m BYTES]
 *   1. connects the active connection, does 200 warm-up round trips (one-time set-up of the process and
 *      the TLS library is then paid), reads VmRSS;
 *   2. connects N idle connections (blocking connect, from 16 threads at once: under the shim the
 *      handshake completes inside it), does one 1-byte round trip on each (so the server's
 *      post-handshake records, TLS 1.3 tickets, are consumed as in a real keep-alive pool), makes each
 *      non-blocking and adds it to one epoll set (EPOLLIN, level-triggered, data.fd = the fd); reads
 *      VmRSS again and prints "ready idle=N rss_per_idle_bytes=B setup_s=T" (B: the VmRSS growth / N;
 *      the 16 threads' cached stacks count in it, which only matters for small N);
 *   3. then, for each line "SECS" on stdin (one measurement run): for SECS seconds writes an M-byte
 *      message (default 64) on the active connection and waits in epoll_wait until it has read the
 *      M-byte echo; prints "mode=scale idle=N rt_per_s=R rtts=K secs=S idle_events=E cpu_us_per_rt=C"
 *      (C: this process's user+system CPU time per round trip, which, unlike R, does not depend on how
 *      busy the machine's other processes keep the cores). Any event for an
 *      idle connection is counted (and drained): nothing is ever sent on them, so each is a false report.
 * At EOF on stdin it closes everything and exits 0; on any error it exits 2. It raises its own
 * RLIMIT_NOFILE soft limit to the hard limit. */
#include "common.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/resource.h>

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
		bench_die("fcntl O_NONBLOCK");
}

static void blocking_roundtrip(int fd, const char *buf, char *got, size_t len)
{
	if (write(fd, buf, len) != (ssize_t)len)
		bench_die("write");
	size_t have = 0;
	while (have < len) {
		ssize_t r = read(fd, got + have, len - have);
		if (r <= 0)
			bench_die(r == 0 ? "read: EOF" : "read");
		have += (size_t)r;
	}
	if (memcmp(buf, got, len) != 0) {
		fprintf(stderr, "bench: echo differs\n");
		exit(2);
	}
}

/* The idle connections are set up by SETUP_THREADS threads at once (each its own slice of fds), so the
 * handshakes overlap: one after the other, 10,000 of them take minutes on 2 cores. */
#define SETUP_THREADS 16
struct setup_arg {
	int port, ep;
	int *fds;
	long from, to;
};

static void *setup_idle(void *p)
{
	const struct setup_arg *a = p;
	char one = 'x', back;
	for (long i = a->from; i < a->to; i++) {
		a->fds[i] = bench_tcp_connect("127.0.0.1", a->port, 1);
		blocking_roundtrip(a->fds[i], &one, &back, 1);
		set_nonblock(a->fds[i]);
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = a->fds[i]};
		if (epoll_ctl(a->ep, EPOLL_CTL_ADD, a->fds[i], &ev) != 0)
			bench_die("epoll_ctl idle");
	}
	return NULL;
}

/* This process's user + system CPU time so far, in µs. */
static double cpu_us_self(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* One measurement run: round trips on the active connection for SECS seconds. */
static int measure(int ep, int act, long nidle, const char *buf, char *got, size_t msg, double secs)
{
	struct epoll_event evs[64];
	long rtts = 0, idle_events = 0;
	double cpu0 = cpu_us_self();
	double start = bench_now(), now = start;
	while (now - start < secs) {
		if (write(act, buf, msg) != (ssize_t)msg)
			bench_die("active write");
		size_t have = 0;
		while (have < msg) {
			int k = epoll_wait(ep, evs, 64, 10000);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				bench_die(k == 0 ? "epoll_wait: no echo within 10 s" : "epoll_wait");
			for (int e = 0; e < k; e++) {
				int fd = evs[e].data.fd;
				if (fd != act) {
					idle_events++;
					char junk[256];
					while (read(fd, junk, sizeof(junk)) > 0)
						;
					continue;
				}
				for (;;) {
					ssize_t r = read(act, got + have, msg - have);
					if (r > 0) {
						have += (size_t)r;
						if (have == msg)
							break;
						continue;
					}
					if (r == 0) {
						fprintf(stderr, "bench: active connection: EOF\n");
						return -1;
					}
					if (errno == EAGAIN || errno == EWOULDBLOCK)
						break;
					bench_die("active read");
				}
			}
		}
		if (memcmp(buf, got, msg) != 0) {
			fprintf(stderr, "bench: echo differs\n");
			return -1;
		}
		rtts++;
		now = bench_now();
	}
	double el = now - start;
	double cpu_us = cpu_us_self() - cpu0;
	printf("mode=scale idle=%ld rt_per_s=%.1f rtts=%ld secs=%.3f idle_events=%ld cpu_us_per_rt=%.3f\n",
	       nidle, (double)rtts / el, rtts, el, idle_events, rtts ? cpu_us / (double)rtts : 0.0);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	long nidle = -1;
	int port = 0, opt;
	size_t msg = 64;
	while ((opt = getopt(argc, argv, "p:n:m:")) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'n':
			nidle = atol(optarg);
			break;
		case 'm':
			msg = (size_t)atol(optarg);
			break;
		default:
			port = 0;
		}
	}
	if (port <= 0 || nidle < 0 || msg == 0 || msg > 16384) {
		fprintf(stderr, "usage: %s -p PORT -n N_IDLE [-m BYTES<=16384]\n", argv[0]);
		return 2;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)nidle + 16) {
		fprintf(stderr, "bench: RLIMIT_NOFILE %llu is too low for %ld idle connections\n",
			(unsigned long long)rl.rlim_cur, nidle);
		return 2;
	}
	char *buf = malloc(msg), *got = malloc(msg);
	int *idle = calloc((size_t)nidle + 1, sizeof(int));
	if (!buf || !got || !idle)
		bench_die("malloc");
	for (size_t i = 0; i < msg; i++)
		buf[i] = (char)('a' + i % 26);

	int act = bench_tcp_connect("127.0.0.1", port, 1);
	for (int i = 0; i < 200; i++)
		blocking_roundtrip(act, buf, got, msg);
	long rss0 = bench_rss_kib();

	double t0 = bench_now();
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		bench_die("epoll_create1");
	struct setup_arg sa[SETUP_THREADS];
	pthread_t th[SETUP_THREADS];
	for (int t = 0; t < SETUP_THREADS; t++) {
		sa[t] = (struct setup_arg){.port = port,
					   .ep = ep,
					   .fds = idle,
					   .from = nidle * t / SETUP_THREADS,
					   .to = nidle * (t + 1) / SETUP_THREADS};
		if (pthread_create(&th[t], NULL, setup_idle, &sa[t]) != 0)
			bench_die("pthread_create");
	}
	for (int t = 0; t < SETUP_THREADS; t++)
		pthread_join(th[t], NULL);
	double setup = bench_now() - t0;
	long rss1 = bench_rss_kib();

	set_nonblock(act);
	struct epoll_event aev = {.events = EPOLLIN, .data.fd = act};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, act, &aev) != 0)
		bench_die("epoll_ctl active");
	printf("ready idle=%ld rss_per_idle_bytes=%.0f setup_s=%.2f\n", nidle,
	       nidle ? (double)(rss1 - rss0) * 1024.0 / (double)nidle : 0.0, setup);
	fflush(stdout);
	char line[64];
	while (fgets(line, sizeof(line), stdin)) {
		double secs = atof(line);
		if (secs <= 0 || measure(ep, act, nidle, buf, got, msg, secs) != 0)
			return 2;
	}
	for (long i = 0; i < nidle; i++)
		close(idle[i]);
	close(act);
	close(ep);
	return 0;
}
