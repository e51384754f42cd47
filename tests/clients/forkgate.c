/* forkgate MODE ...: locks and fork (issue 11 item 11; test_forkgate.sh). Prints key=value lines; every
 * broken expectation is a "forkgate: FAIL: why" line on stderr and exit 1.
 *
 *   dns SLOWPORT FASTPORT   thread A connects to 127.0.0.1:SLOWPORT, whose rule's host name resolves
 *                           slowly; while that lookup runs, the main thread forks and the child
 *                           connects to 127.0.0.1:FASTPORT (a rule with another name, nothing
 *                           listening), then to SLOWPORT (its own lookup): child_fast_ms,
 *                           child_fast_errno, child_slow_ms, child_slow_errno (15 s alarm); meanwhile the
 *                           parent's main thread connects to FASTPORT: other_thread_ms,
 *                           other_thread_errno; then a_ms, a_errno.
 *   nss PORT                one connect to 127.0.0.1:PORT: connect_ms, connect_errno.
 *   handshakes PORT THREADS FORKS   THREADS threads loop connect + TLS echo + close on 127.0.0.1:PORT,
 *                           while the main thread forks FORKS times; each child makes one TLS
 *                           connection with an echo and exits 0 (10 s alarm). Prints forks, children_ok,
 *                           thread_rounds, thread_failures.
 *   forkcost PORT CONNS FORKS   opens CONNS TLS connections (each echoes a line), then FORKS times calls
 *                           fork() and _Fork() (no fork handlers run) one after the other (child:
 *                           _exit(0), parent: waitpid). The kernel's share (copying this process's
 *                           memory) is the same in both, so the difference in each pair is what the fork
 *                           handlers cost. Prints conns, fork_us_median, rawfork_us_median,
 *                           handlers_us_median (the median of the pairs' differences). */
#include "ev_common.h"

#include <sys/resource.h>

static int connect_port(const char *port, int *err_out, long long *ms_out)
{
	long long t0 = now_ms();
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		ev_die("socket: %s", errno_name(errno));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	*err_out = r == 0 ? 0 : errno;
	*ms_out = now_ms() - t0;
	if (r != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- dns ---- */

static const char *slow_port, *fast_port;
static long long a_ms;
static int a_errno;

static void *slow_connect(void *arg)
{
	(void)arg;
	int fd = connect_port(slow_port, &a_errno, &a_ms);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int mode_dns(void)
{
	pthread_t a;
	pthread_create(&a, NULL, slow_connect, NULL);
	ev_sleep_ms(500); /* A is inside the shim's lookup of the slow name now (the DNS log shows it) */

	int pfd[2];
	if (pipe(pfd) != 0)
		ev_die("pipe: %s", errno_name(errno));
	int e, fd;
	long long ms;
	pid_t pid = fork();
	if (pid < 0)
		ev_die("fork: %s", errno_name(errno));
	if (pid == 0) {
		close(pfd[0]);
		alarm(15);
		char line[256];
		long long ms2;
		int e2;
		fd = connect_port(fast_port, &e, &ms);
		if (fd >= 0)
			close(fd);
		fd = connect_port(slow_port, &e2, &ms2);
		if (fd >= 0)
			close(fd);
		int n = snprintf(line, sizeof line,
				 "child_fast_ms=%lld child_fast_errno=%s child_slow_ms=%lld "
				 "child_slow_errno=%s\n",
				 ms, ev_err(e), ms2, ev_err(e2));
		if (write(pfd[1], line, (size_t)n) != n)
			_exit(3);
		_exit(0);
	}
	close(pfd[1]);
	fd = connect_port(fast_port, &e, &ms);
	if (fd >= 0)
		close(fd);
	printf("other_thread_ms=%lld other_thread_errno=%s\n", ms, ev_err(e));
	fflush(stdout);

	char buf[512];
	ssize_t n = read_full(pfd[0], buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	int st = 0;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		ev_fail("the child did not finish (status %d%s)", st,
			WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? ": hung, killed after 15 s" : "");
	printf("%s", buf);
	pthread_join(a, NULL);
	printf("a_ms=%lld a_errno=%s\n", a_ms, ev_err(a_errno));
	return ev_exit_status();
}

/* ---- handshakes ---- */

static const char *hs_port;
static atomic_int hs_stop, hs_rounds, hs_failures;

/* One TLS connection with a one-line echo. 0, or -1 (why in *what). */
static int one_exchange(const char *tag, const char **what)
{
	int e;
	long long ms;
	int fd = connect_port(hs_port, &e, &ms);
	if (fd < 0) {
		*what = errno_name(e);
		return -1;
	}
	char line[64], in[64];
	int len = snprintf(line, sizeof line, "%s\n", tag);
	int r = -1;
	*what = "write";
	if (write_full(fd, line, (size_t)len) == 0) {
		*what = "read";
		if (read_full(fd, in, (size_t)len) == len && memcmp(in, line, (size_t)len) == 0)
			r = 0;
	}
	close(fd);
	return r;
}

static void *hs_loop(void *arg)
{
	char tag[32];
	snprintf(tag, sizeof tag, "thread-%ld", (long)(intptr_t)arg);
	while (!atomic_load(&hs_stop)) {
		const char *what;
		if (one_exchange(tag, &what) != 0) {
			atomic_fetch_add(&hs_failures, 1);
			ev_fail("%s: exchange failed at %s", tag, what);
		}
		atomic_fetch_add(&hs_rounds, 1);
	}
	return NULL;
}

static int mode_handshakes(int threads, int forks)
{
	pthread_t t[64];
	if (threads > 64)
		threads = 64;
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, hs_loop, (void *)(intptr_t)i);
	int ok = 0;
	for (int i = 0; i < forks; i++) {
		ev_sleep_ms(20 + (i * 7) % 30); /* land at different points of the threads' handshakes */
		pid_t pid = fork();
		if (pid < 0)
			ev_die("fork: %s", errno_name(errno));
		if (pid == 0) {
			alarm(10);
			const char *what;
			_exit(one_exchange("child", &what) == 0 ? 0 : 1);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
		else
			ev_fail("child %d: status %d%s", i, st,
				WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? " (hung: killed after 10 s)"
									   : "");
	}
	atomic_store(&hs_stop, 1);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	printf("forks=%d children_ok=%d thread_rounds=%d thread_failures=%d\n", forks, ok,
	       atomic_load(&hs_rounds), atomic_load(&hs_failures));
	return ev_exit_status();
}

/* ---- forkcost ---- */

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Microseconds one fork (with handlers: fork(), without: _Fork()) takes in the parent. */
static long long time_fork(bool handlers)
{
	long long t0 = now_us();
	pid_t pid = handlers ? fork() : _Fork();
	if (pid == 0)
		_exit(0);
	long long us = now_us() - t0;
	if (pid < 0)
		ev_die("fork: %s", errno_name(errno));
	waitpid(pid, NULL, 0);
	return us;
}

static int mode_forkcost(int conns, int forks)
{
	struct rlimit rl = {conns + 64, conns + 64};
	setrlimit(RLIMIT_NOFILE, &rl);
	int *fds = calloc((size_t)conns, sizeof(int));
	long long *us = calloc((size_t)forks, sizeof(long long));
	long long *raw = calloc((size_t)forks, sizeof(long long));
	long long *diff = calloc((size_t)forks, sizeof(long long));
	if (!fds || !us || !raw || !diff)
		ev_die("out of memory");
	for (int i = 0; i < conns; i++) {
		int e;
		long long ms;
		fds[i] = connect_port(hs_port, &e, &ms);
		if (fds[i] < 0)
			ev_die("connection %d: %s", i, errno_name(e));
		char in[8];
		if (write_full(fds[i], "hello\n", 6) != 0 || read_full(fds[i], in, 6) != 6)
			ev_die("connection %d: no echo", i);
	}
	for (int i = 0; i < forks; i++) {
		bool first_raw = i & 1; /* alternate the order, so a drift in load favours neither */
		raw[i] = first_raw ? time_fork(false) : 0;
		us[i] = time_fork(true);
		if (!first_raw)
			raw[i] = time_fork(false);
		diff[i] = us[i] - raw[i];
	}
	qsort(us, (size_t)forks, sizeof(*us), cmp_ll);
	qsort(raw, (size_t)forks, sizeof(*raw), cmp_ll);
	qsort(diff, (size_t)forks, sizeof(*diff), cmp_ll);
	printf("conns=%d fork_us_median=%lld rawfork_us_median=%lld handlers_us_median=%lld\n", conns,
	       us[forks / 2], raw[forks / 2], diff[forks / 2]);
	for (int i = 0; i < conns; i++)
		close(fds[i]);
	return ev_exit_status();
}

int main(int argc, char **argv)
{
	ev_prog = "forkgate";
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && strcmp(argv[1], "dns") == 0) {
		slow_port = argv[2];
		fast_port = argv[3];
		return mode_dns();
	}
	if (argc == 3 && strcmp(argv[1], "nss") == 0) {
		int e;
		long long ms;
		int fd = connect_port(argv[2], &e, &ms);
		if (fd >= 0)
			close(fd);
		printf("connect_ms=%lld connect_errno=%s\n", ms, ev_err(e));
		return ev_exit_status();
	}
	if (argc == 5 && strcmp(argv[1], "handshakes") == 0) {
		hs_port = argv[2];
		return mode_handshakes(atoi(argv[3]), atoi(argv[4]));
	}
	if (argc == 5 && strcmp(argv[1], "forkcost") == 0) {
		hs_port = argv[2];
		return mode_forkcost(atoi(argv[3]), atoi(argv[4]));
	}
	fprintf(stderr, "usage: forkgate dns SLOWPORT FASTPORT | nss PORT | handshakes PORT THREADS FORKS | "
			"forkcost PORT CONNS FORKS\n");
	return 2;
}
