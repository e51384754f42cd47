/* ev_signal HOST PORT: a blocking read on a TLS socket and signals. Server: evserver delayecho:MS (echoes
 * each chunk after MS, e.g. 1500 ms). SIGALRM comes 300 ms into each read.
 *   handler without SA_RESTART: the read returns -1/EINTR (after ~300 ms); the late echo is then read;
 *   handler with SA_RESTART: the read goes on and returns the echoed line (after ~MS).
 * Prints norestart=ERRNO norestart_ms, restart=data|ERRNO restart_ms, handler counts. */
#include "ev_common.h"

#include <sys/time.h>

static volatile sig_atomic_t alarms;
static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void arm(int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 0}, {0, 300000}};
	setitimer(ITIMER_REAL, &it, NULL);
}

int main(int argc, char **argv)
{
	ev_prog = "ev_signal";
	if (argc != 3)
		ev_die("usage: ev_signal HOST PORT");
	int fd = ev_connect(argv[1], argv[2]);
	char buf[256];

	const char ping1[] = "ping one\n";
	ev_write_all(fd, ping1, sizeof ping1 - 1, "ping one");
	arm(0);
	long long t = now_ms();
	ssize_t r = read(fd, buf, sizeof buf);
	int e = errno;
	long long ms = now_ms() - t;
	printf("norestart=%s norestart_ms=%lld alarms=%d\n", r < 0 ? errno_name(e) : "data", ms, (int)alarms);
	if (!(r < 0 && e == EINTR))
		ev_fail(
		    "blocking read, handler without SA_RESTART: want -1/EINTR, got %zd (%s) after %lld ms", r,
		    r < 0 ? errno_name(e) : "data", ms);
	/* the late echo is still there */
	ev_read_exact(fd, buf, sizeof ping1 - 1, "late echo of ping one");
	if (memcmp(buf, ping1, sizeof ping1 - 1) != 0)
		ev_fail("the late echo differs");

	const char ping2[] = "ping two\n";
	ev_write_all(fd, ping2, sizeof ping2 - 1, "ping two");
	arm(SA_RESTART);
	int before = alarms;
	t = now_ms();
	r = read(fd, buf, sizeof buf);
	e = errno;
	ms = now_ms() - t;
	printf("restart=%s restart_ms=%lld handler_ran=%d\n",
	       r > 0	? "data"
	       : r == 0 ? "EOF"
			: errno_name(e),
	       ms, (int)alarms - before);
	if (r != (ssize_t)sizeof ping2 - 1 || memcmp(buf, ping2, sizeof ping2 - 1) != 0)
		ev_fail("blocking read, handler with SA_RESTART: want the echoed line, got %zd (%s) after "
			"%lld ms",
			r, r < 0 ? errno_name(e) : "data", ms);
	if (alarms - before != 1)
		ev_fail("the SA_RESTART handler ran %d times, want 1", (int)alarms - before);
	close(fd);
	return ev_exit_status();
}
