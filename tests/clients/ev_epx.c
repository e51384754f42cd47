/* ev_epx MODE HOST PORT: the epoll corners of issue 12 (sets watched from outside, syscall(SYS_epoll_*),
 * closefrom/close_range, EPOLLEXCLUSIVE wake-ups). Server: evserver onreq ("send K\n" answers K pattern
 * bytes). Every check fails the run (exit 1) with a FAIL line; the last stdout line is "MODE=ok ...".
 * Each mode runs first without the shim against a plain server (the expectations are the kernel's).
 *   syscall    a set made, filled and waited on with syscall(SYS_epoll_create1/epoll_ctl/epoll_wait/
 *              epoll_pwait/epoll_pwait2): nothing for a fresh connection (TLS 1.3 tickets only), IN
 *              with the program's data for the answer, nothing once drained; a wrong sigset size is
 *              EINVAL as for the kernel
 *   closefromnosys  closefrom as below, with a second connection in the range, after a seccomp filter
 *              made the close_range system call fail with ENOSYS: everything above N is closed all
 *              the same (glibc's own fallback), the set still works.
 *   closefrom  closefrom(N) above the program's own fds (the set, the TLS fd): the set still reports its
 *              TLS fd; a file the program opened at or above N is closed
 *   closerange the same with close_range(N, ~0U, 0), and with syscall(SYS_close_range)
 *   closeloop  the same with close() of every number from N to 1023, errors ignored (a daemon's loop):
 *              the shim's own fds in that range are not the program's to close (EBADF)
 *   dup2loop   /dev/null dup2()ed onto the 8 numbers from N and closed again: each dup2 and close
 *              succeeds, and the shim's own fds that had those numbers moved away first
 *   pollset    poll() on the epoll fd: not readable for tickets only, readable while the answer waits
 *              (also after epoll_wait took the event and a partial read left bytes inside the shim),
 *              not readable once drained
 *   selectset  the same with select()
 *   nested     the set inside another epoll set (level triggered, added after the TLS fd), the outer
 *              set also holding a TLS fd of its own: the same checks through epoll_wait on the outer set
 *   nestedpre  the set added to the outer set while it held no TLS fd yet
 *   exclwake   one TLS fd registered EPOLLEXCLUSIVE in 4 sets, one thread blocked on each: an answer
 *              wakes how many (the kernel: 1 for a plain socket); prints woken=N
 *   exclfork   a TLS fd registered EPOLLEXCLUSIVE, then fork: the child waits on the inherited set once,
 *              closes its copy of the fd and exits; the parent's registration still reports */
#include "ev_common.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static const char *host, *port;

static int tls_conn(void)
{
	int fd = ev_connect(host, port);
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	return fd;
}

static void req(int fd, int k)
{
	char line[32];
	int len = snprintf(line, sizeof line, "send %d\n", k);
	ev_write_all(fd, line, (size_t)len, "request");
}

static int ep_new(void)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		ev_die("epoll_create1: errno=%s", errno_name(errno));
	return ep;
}

static void ep_add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = {.events = events, .data.u64 = data};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		ev_die("epoll_ctl(%d, ADD, %d, %#x): errno=%s", ep, fd, events, errno_name(errno));
}

/* The ways a set is waited on. */
enum waitway { W_LIBC, W_SYS_WAIT, W_SYS_PWAIT, W_SYS_PWAIT2 };

static int ep_wait_way(enum waitway w, int ep, struct epoll_event *evs, int max, int timeout)
{
	int n;
	sigset_t none;
	sigemptyset(&none);
	struct timespec ts = {timeout / 1000, (long)(timeout % 1000) * 1000000L};
	do {
		switch (w) {
		case W_SYS_WAIT:
			n = (int)syscall(SYS_epoll_wait, ep, evs, max, timeout);
			break;
		case W_SYS_PWAIT:
			n = (int)syscall(SYS_epoll_pwait, ep, evs, max, timeout, &none, 8);
			break;
		case W_SYS_PWAIT2:
			n = (int)syscall(SYS_epoll_pwait2, ep, evs, max, timeout < 0 ? NULL : &ts, &none, 8);
			break;
		default:
			n = epoll_wait(ep, evs, max, timeout);
		}
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		ev_die("epoll wait (way %d): errno=%s", (int)w, errno_name(errno));
	return n;
}

static void expect_events(const char *what, enum waitway w, int ep, int timeout, int want_n, uint64_t data)
{
	struct epoll_event evs[8];
	int n = ep_wait_way(w, ep, evs, 8, timeout);
	if (n != want_n) {
		ev_fail("%s: %d events (first %#x data %#llx), want %d", what, n, n > 0 ? evs[0].events : 0,
			n > 0 ? (unsigned long long)evs[0].data.u64 : 0ULL, want_n);
		return;
	}
	for (int i = 0; i < n; i++)
		if (evs[i].data.u64 != data || !(evs[i].events & EPOLLIN))
			ev_fail("%s: event %#x data %#llx, want EPOLLIN data %#llx", what, evs[i].events,
				(unsigned long long)evs[i].data.u64, (unsigned long long)data);
}

/* Reads until EAGAIN (or EOF); returns the byte count. */
static size_t drain(int fd)
{
	uint8_t buf[4096];
	size_t total = 0;
	for (;;) {
		ssize_t k = read(fd, buf, sizeof buf);
		if (k > 0) {
			total += (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno != EAGAIN)
			ev_fail("read: errno=%s", errno_name(errno));
		return total;
	}
}

/* Reads n bytes in all (already has `have`), sleeping between tries (up to 5 s). */
static void read_rest(int fd, size_t have, size_t n, const char *what)
{
	long long end = now_ms() + 5000;
	while (have < n && now_ms() < end) {
		have += drain(fd);
		if (have < n)
			ev_sleep_ms(5);
	}
	if (have != n)
		ev_fail("%s: read %zu bytes, want %zu", what, have, n);
}

/* ---- syscall ---- */

static void mode_syscall(void)
{
	int fd = tls_conn();
	int ep = (int)syscall(SYS_epoll_create1, EPOLL_CLOEXEC);
	if (ep < 0)
		ev_die("syscall(SYS_epoll_create1): errno=%s", errno_name(errno));
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x5C};
	if (syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		ev_die("syscall(SYS_epoll_ctl ADD): errno=%s", errno_name(errno));
	const enum waitway ways[] = {W_SYS_WAIT, W_SYS_PWAIT, W_SYS_PWAIT2};
	const char *names[] = {"SYS_epoll_wait", "SYS_epoll_pwait", "SYS_epoll_pwait2"};
	char what[96];
	snprintf(what, sizeof what, "syscall: fresh connection (tickets only), %s", names[0]);
	expect_events(what, W_SYS_WAIT, ep, 400, 0, 0);
	for (int i = 0; i < 3; i++) {
		req(fd, 20000);
		snprintf(what, sizeof what, "syscall: the answer, %s", names[i]);
		expect_events(what, ways[i], ep, 3000, 1, 0x5C);
		ev_sleep_ms(100);
		read_rest(fd, 0, 20000, "syscall");
		snprintf(what, sizeof what, "syscall: drained, %s", names[i]);
		expect_events(what, ways[i], ep, 300, 0, 0);
	}
	/* A set made with the libc call, filled with the syscall, waited on with the libc call. */
	int ep2 = ep_new();
	ev.data.u64 = 0x5D;
	if (syscall(SYS_epoll_ctl, ep2, EPOLL_CTL_ADD, fd, &ev) != 0)
		ev_die("syscall(SYS_epoll_ctl ADD) on a libc set: errno=%s", errno_name(errno));
	expect_events("syscall: libc set, nothing yet", W_LIBC, ep2, 200, 0, 0);
	req(fd, 3000);
	expect_events("syscall: libc set, the answer", W_LIBC, ep2, 3000, 1, 0x5D);
	read_rest(fd, 0, 3000, "syscall libc set");
	if (syscall(SYS_epoll_ctl, ep2, EPOLL_CTL_DEL, fd, NULL) != 0)
		ev_fail("syscall(SYS_epoll_ctl DEL): errno=%s", errno_name(errno));
	if (syscall(SYS_epoll_ctl, ep2, EPOLL_CTL_DEL, fd, NULL) != -1 || errno != ENOENT)
		ev_fail("syscall(SYS_epoll_ctl DEL) twice: want ENOENT, got %s", errno_name(errno));
	struct epoll_event one;
	sigset_t none;
	sigemptyset(&none);
	if (syscall(SYS_epoll_pwait, ep, &one, 1, 0, &none, 128) != -1 || errno != EINVAL)
		ev_fail("syscall(SYS_epoll_pwait) with a 128-byte sigset: want EINVAL, got %s",
			errno_name(errno));
	printf("syscall=ok\n");
}

/* ---- closefrom, close_range ---- */

/* From here on the close_range system call fails with ENOSYS (a kernel before 5.9, or a seccomp
 * profile): closefrom must still close (glibc falls back to /proc/self/fd). */
static void refuse_close_range(void)
{
	struct sock_filter flt[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_close_range, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof flt / sizeof flt[0], flt};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		ev_die("seccomp filter: errno=%s", errno_name(errno));
}

static void close_mode(const char *m, int how)
{
	int ep = ep_new(), fd = tls_conn();
	ep_add(ep, fd, EPOLLIN, 0xCF);
	int low = (ep > fd ? ep : fd) + 1;
	int dummy = open("/dev/null", O_RDONLY); /* the program's own file above the keepers */
	if (dummy < low)
		ev_die("%s: /dev/null opened as %d, below %d", m, dummy, low);
	int inrange = how == 3 ? tls_conn() : -1; /* a TLS fd inside the range */
	if (how == 3) {
		refuse_close_range();
		closefrom(low);
		if (fcntl(inrange, F_GETFD) != -1 || errno != EBADF)
			ev_fail("%s: the connection fd %d above %d is still open (close_range refused)", m,
				inrange, low);
	} else if (how == 4) {
		/* a daemon's close-everything loop, errors ignored */
		for (int i = low; i < 1024; i++)
			close(i);
	} else if (how == 5) {
		/* /dev/null put onto fixed numbers (fds for a child to come), then closed again */
		int dn = open("/dev/null", O_RDONLY);
		for (int i = low; i < low + 8; i++)
			if (i != dn && i != dummy && dup2(dn, i) != i)
				ev_fail("%s: dup2(/dev/null, %d): errno=%s", m, i, errno_name(errno));
		for (int i = low; i < low + 8; i++)
			if (i != dn && i != dummy && close(i) != 0)
				ev_fail("%s: close(%d) after dup2 onto it: errno=%s", m, i,
					errno_name(errno));
		close(dn);
		close(dummy);
	} else if (how == 0) {
		closefrom(low);
	} else if (how == 1) {
		if (close_range((unsigned)low, ~0U, 0) != 0)
			ev_fail("%s: close_range: errno=%s", m, errno_name(errno));
	} else if (syscall(SYS_close_range, low, ~0U, 0) != 0) {
		ev_fail("%s: syscall(SYS_close_range): errno=%s", m, errno_name(errno));
	}
	if (fcntl(dummy, F_GETFD) != -1 || errno != EBADF)
		ev_fail("%s: the program's fd %d above %d is still open", m, dummy, low);
	/* New files take the numbers that are free now; the set must not care. */
	int pfd[2];
	if (pipe(pfd) != 0)
		ev_die("pipe");
	char what[96];
	snprintf(what, sizeof what, "%s: nothing yet", m);
	expect_events(what, W_LIBC, ep, 300, 0, 0);
	req(fd, 20000);
	snprintf(what, sizeof what, "%s: the answer after closing the fds above %d", m, low);
	expect_events(what, W_LIBC, ep, 3000, 1, 0xCF);
	ev_sleep_ms(100);
	read_rest(fd, 0, 20000, m);
	snprintf(what, sizeof what, "%s: drained", m);
	expect_events(what, W_LIBC, ep, 300, 0, 0);
	/* A second round, with a new registration after the close. */
	int fd2 = tls_conn();
	ep_add(ep, fd2, EPOLLIN, 0xD0);
	req(fd2, 5000);
	snprintf(what, sizeof what, "%s: a TLS fd added after the close", m);
	expect_events(what, W_LIBC, ep, 3000, 1, 0xD0);
	read_rest(fd2, 0, 5000, m);
	printf("%s=ok low=%d pipe=%d,%d\n", m, low, pfd[0], pfd[1]);
}

/* ---- a set watched from outside: poll, select, another epoll set ---- */

enum outside { O_POLL, O_SELECT, O_EPOLL };

/* Is the set readable as seen from outside, within timeout ms? */
static bool outside_ready(enum outside o, int watch, int set, int timeout, uint64_t outer_data)
{
	if (o == O_POLL) {
		struct pollfd p = {.fd = set, .events = POLLIN};
		int n = poll(&p, 1, timeout);
		if (n < 0)
			ev_die("poll on the epoll fd: errno=%s", errno_name(errno));
		return n == 1 && (p.revents & POLLIN);
	}
	if (o == O_SELECT) {
		fd_set r;
		FD_ZERO(&r);
		FD_SET(set, &r);
		struct timeval tv = {timeout / 1000, (timeout % 1000) * 1000};
		int n = select(set + 1, &r, NULL, NULL, &tv);
		if (n < 0)
			ev_die("select on the epoll fd: errno=%s", errno_name(errno));
		return n == 1 && FD_ISSET(set, &r);
	}
	struct epoll_event evs[8];
	int n = ep_wait_way(W_LIBC, watch, evs, 8, timeout);
	bool seen = false;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == outer_data && (evs[i].events & EPOLLIN))
			seen = true;
		else
			ev_fail("outer set: event %#x data %#llx (want only the inner set's, %#llx)",
				evs[i].events, (unsigned long long)evs[i].data.u64,
				(unsigned long long)outer_data);
	}
	return seen;
}

static void watched(const char *m, enum outside o, bool pre)
{
	int set = ep_new(), watch = -1;
	int other = -1;
	if (o == O_EPOLL) {
		watch = ep_new();
		if (pre) /* the set goes into the outer set while it holds no TLS fd yet */
			ep_add(watch, set, EPOLLIN, 0x0E);
	}
	int fd = tls_conn();
	ep_add(set, fd, EPOLLIN, 0x1A);
	if (o == O_EPOLL && !pre) {
		ep_add(watch, set, EPOLLIN, 0x0E);
		other = tls_conn(); /* the outer set's own TLS fd: never ready here */
		ep_add(watch, other, EPOLLIN, 0x0F);
	}
	char what[128];
	if (outside_ready(o, watch, set, 400, 0x0E)) {
		snprintf(what, sizeof what, "%s: readable for a fresh connection (TLS 1.3 tickets only)", m);
		ev_fail("%s", what);
	}
	expect_events("the set itself, fresh", W_LIBC, set, 0, 0, 0);
	req(fd, 20000);
	if (!outside_ready(o, watch, set, 3000, 0x0E))
		ev_fail("%s: not readable after the answer arrived", m);
	ev_sleep_ms(200);
	if (!outside_ready(o, watch, set, 0, 0x0E))
		ev_fail("%s: not readable again (level triggered, nothing read)", m);
	expect_events("the set itself, the answer", W_LIBC, set, 0, 1, 0x1A);
	uint8_t buf[100];
	if (read(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
		ev_fail("%s: the first 100-byte read", m);
	/* The rest waits inside the shim: no kernel event says so. */
	if (!outside_ready(o, watch, set, 300, 0x0E))
		ev_fail("%s: not readable after a partial read (19900 bytes wait)", m);
	expect_events("the set itself, after a partial read", W_LIBC, set, 0, 1, 0x1A);
	if (!outside_ready(o, watch, set, 300, 0x0E))
		ev_fail("%s: not readable after epoll_wait on the set, nothing more read", m);
	read_rest(fd, 100, 20000, m);
	if (outside_ready(o, watch, set, 300, 0x0E))
		ev_fail("%s: readable once drained", m);
	expect_events("the set itself, drained", W_LIBC, set, 0, 0, 0);
	req(fd, 3000);
	if (!outside_ready(o, watch, set, 3000, 0x0E))
		ev_fail("%s: not readable for a second answer", m);
	read_rest(fd, 0, 3000, m);
	if (outside_ready(o, watch, set, 300, 0x0E))
		ev_fail("%s: readable once drained again", m);
	if (other >= 0)
		close(other);
	printf("%s=ok\n", m);
}

/* ---- EPOLLEXCLUSIVE: how many blocked threads one answer wakes ---- */

#define EX_SETS 4
static int exw_fd, exw_ep[EX_SETS];
static atomic_int exw_woken, exw_ready;

static void *exw_waiter(void *arg)
{
	int i = (int)(intptr_t)arg;
	struct epoll_event ev;
	atomic_fetch_add(&exw_ready, 1);
	int n = ep_wait_way(W_LIBC, exw_ep[i], &ev, 1, 1500);
	if (n > 0)
		atomic_fetch_add(&exw_woken, 1);
	return NULL;
}

static void mode_exclwake(void)
{
	exw_fd = tls_conn();
	for (int i = 0; i < EX_SETS; i++) {
		exw_ep[i] = ep_new();
		ep_add(exw_ep[i], exw_fd, EPOLLIN | EPOLLEXCLUSIVE, 0xE0 + (unsigned)i);
	}
	ev_sleep_ms(300); /* the tickets have come and gone */
	pthread_t t[EX_SETS];
	for (int i = 0; i < EX_SETS; i++)
		pthread_create(&t[i], NULL, exw_waiter, (void *)(intptr_t)i);
	while (atomic_load(&exw_ready) < EX_SETS)
		ev_sleep_ms(1);
	ev_sleep_ms(150);
	req(exw_fd, 1000);
	for (int i = 0; i < EX_SETS; i++)
		pthread_join(t[i], NULL);
	int woken = atomic_load(&exw_woken);
	if (woken < 1)
		ev_fail("exclwake: no waiter woken");
	const char *want = getenv("EXCL_MAX");
	if (want && woken > atoi(want))
		ev_fail("exclwake: %d of %d threads woken, want at most %s", woken, EX_SETS, want);
	read_rest(exw_fd, 0, 1000, "exclwake");
	printf("exclwake=ok woken=%d of %d\n", woken, EX_SETS);
}

static void mode_exclfork(void)
{
	int fd = tls_conn(), ep = ep_new();
	ep_add(ep, fd, EPOLLIN | EPOLLEXCLUSIVE, 0xEF);
	expect_events("exclfork: fresh connection", W_LIBC, ep, 300, 0, 0);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		ev_die("fork");
	if (pid == 0) {
		ev_prog = "ev_epx(child)";
		struct epoll_event ev;
		epoll_wait(ep, &ev, 1, 50); /* the child's own use of the inherited set */
		close(fd);
		_exit(ev_exit_status());
	}
	int st = 0;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		ev_fail("exclfork: the child failed (status %#x)", st);
	req(fd, 3000);
	expect_events("exclfork: the parent's registration after the child closed its copy", W_LIBC, ep, 3000,
		      1, 0xEF);
	read_rest(fd, 0, 3000, "exclfork");
	printf("exclfork=ok\n");
}

int main(int argc, char **argv)
{
	ev_prog = "ev_epx";
	if (argc < 4)
		ev_die("usage: ev_epx MODE HOST PORT");
	signal(SIGPIPE, SIG_IGN);
	host = argv[2];
	port = argv[3];
	const char *m = argv[1];
	if (!strcmp(m, "syscall"))
		mode_syscall();
	else if (!strcmp(m, "closefrom"))
		close_mode(m, 0);
	else if (!strcmp(m, "closerange"))
		close_mode(m, 1);
	else if (!strcmp(m, "closerangesys"))
		close_mode(m, 2);
	else if (!strcmp(m, "closefromnosys"))
		close_mode(m, 3);
	else if (!strcmp(m, "closeloop"))
		close_mode(m, 4);
	else if (!strcmp(m, "dup2loop"))
		close_mode(m, 5);
	else if (!strcmp(m, "pollset"))
		watched(m, O_POLL, false);
	else if (!strcmp(m, "selectset"))
		watched(m, O_SELECT, false);
	else if (!strcmp(m, "nested"))
		watched(m, O_EPOLL, false);
	else if (!strcmp(m, "nestedpre"))
		watched(m, O_EPOLL, true);
	else if (!strcmp(m, "exclwake"))
		mode_exclwake();
	else if (!strcmp(m, "exclfork"))
		mode_exclfork();
	else
		ev_die("unknown mode %s", m);
	return ev_exit_status();
}
