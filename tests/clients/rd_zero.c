/* rd_zero HOST PORT CALLS: zero timeouts on a silent TLS socket (server: evserver idle). CALLS times
 * each of poll(fd, POLLIN, 0), ppoll with a zero timespec and select with a zero timeval: every call
 * must return at once with nothing ready. A watchdog thread fails the run when one call takes over 1 s
 * (a zero timeout turned into "forever" would otherwise hang it).
 * Prints calls=N slowest_us=U. */
#include "ev_common.h"

static atomic_llong call_started_us; /* 0: no call in progress */
static atomic_int which;	     /* 0 poll, 1 ppoll, 2 select */

static long long mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *watchdog(void *arg)
{
	(void)arg;
	static const char *const names[] = {"poll(fd, POLLIN, 0)", "ppoll with a zero timeout",
					    "select with a zero timeout"};
	for (;;) {
		ev_sleep_ms(100);
		long long t = atomic_load(&call_started_us);
		if (t && mono_us() - t > 1000000) {
			ev_fail("%s on a silent TLS fd has not returned after %lld ms",
				names[atomic_load(&which)], (mono_us() - t) / 1000);
			_exit(1);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	ev_prog = "rd_zero";
	if (argc != 4)
		ev_die("usage: rd_zero HOST PORT CALLS");
	int fd = ev_connect(argv[1], argv[2]);
	long calls = atol(argv[3]);
	pthread_t w;
	if (pthread_create(&w, NULL, watchdog, NULL) != 0)
		ev_die("pthread_create");
	long long slowest = 0;
	long done = 0;
	for (long i = 0; i < calls; i++) {
		for (int k = 0; k < 3; k++) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			atomic_store(&which, k);
			long long t0 = mono_us();
			atomic_store(&call_started_us, t0);
			int r;
			if (k == 0) {
				r = poll(&p, 1, 0);
			} else if (k == 1) {
				struct timespec ts = {0, 0};
				r = ppoll(&p, 1, &ts, NULL);
			} else {
				fd_set rs;
				FD_ZERO(&rs);
				FD_SET(fd, &rs);
				struct timeval tv = {0, 0};
				r = select(fd + 1, &rs, NULL, NULL, &tv);
			}
			long long us = mono_us() - t0;
			atomic_store(&call_started_us, 0);
			if (us > slowest)
				slowest = us;
			if (r != 0)
				ev_die("call %ld kind %d on a silent TLS fd: %d (errno=%s, revents 0x%x), "
				       "want 0",
				       i, k, r, r < 0 ? errno_name(errno) : "0", p.revents);
			done++;
		}
	}
	printf("calls=%ld slowest_us=%lld\n", done, slowest);
	close(fd);
	return ev_exit_status();
}
