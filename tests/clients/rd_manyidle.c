/* rd_manyidle HOST PORT N: one active TLS connection registered after N idle ones in one epoll set
 * (EPOLLIN, level triggered), against an echo server (aio_echo_server.py). The lost echo of the scale
 * bench with 10,000 idle connections: first an epoll_wait that finds nothing (100 ms), then a 64-byte
 * write on the active connection; its echo must be reported within 5 s, 3 rounds. On a plain socket the
 * kernel reports it at once. Idle connections are made from 16 threads, each with a 1-byte round trip
 * (the server's session tickets consumed). Prints idle=N echoes=3 worst_ms=W. The process raises its
 * RLIMIT_NOFILE soft limit to the hard limit. */
#include "ev_common.h"

#include <sys/resource.h>

#define THREADS 16
static const char *host, *port;
static int *idle_fds;
static long n_idle;

static void *setup(void *arg)
{
	long t = (long)(intptr_t)arg;
	for (long i = n_idle * t / THREADS; i < n_idle * (t + 1) / THREADS; i++) {
		int fd = ev_connect(host, port);
		char c = 'x';
		ev_write_all(fd, &c, 1, "idle round trip");
		ev_read_exact(fd, &c, 1, "idle round trip echo");
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		idle_fds[i] = fd;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	ev_prog = "rd_manyidle";
	if (argc != 4)
		ev_die("usage: rd_manyidle HOST PORT N");
	host = argv[1];
	port = argv[2];
	n_idle = atol(argv[3]);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < (rlim_t)n_idle + 64)
		ev_die("RLIMIT_NOFILE %llu is too low for %ld idle connections",
		       (unsigned long long)rl.rlim_cur, n_idle);
	idle_fds = calloc((size_t)n_idle, sizeof(int));
	if (!idle_fds)
		ev_die("calloc");
	int act = ev_connect(host, port);
	pthread_t th[THREADS];
	for (long t = 0; t < THREADS; t++)
		if (pthread_create(&th[t], NULL, setup, (void *)(intptr_t)t) != 0)
			ev_die("pthread_create");
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	for (long i = 0; i < n_idle; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = idle_fds[i]};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, idle_fds[i], &ev) != 0)
			ev_die("epoll_ctl idle: errno=%s", errno_name(errno));
	}
	fcntl(act, F_SETFL, fcntl(act, F_GETFL) | O_NONBLOCK);
	struct epoll_event aev = {.events = EPOLLIN, .data.fd = act};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, act, &aev) != 0)
		ev_die("epoll_ctl active: errno=%s", errno_name(errno));
	struct epoll_event evs[64];
	int k = epoll_wait(ep, evs, 64, 100);
	if (k != 0)
		ev_fail("nothing was sent, yet epoll_wait reported %d events", k);
	long long worst = 0;
	int echoes = 0;
	char msg[64], got[64];
	memset(msg, 'e', sizeof msg);
	for (int round = 0; round < 3; round++) {
		ev_write_all(act, msg, sizeof msg, "active write");
		long long t0 = now_ms();
		size_t have = 0;
		while (have < sizeof msg) {
			k = epoll_wait(ep, evs, 64, 5000);
			if (k <= 0)
				ev_die("round %d: no echo reported within 5 s (%zu of 64 bytes; %ld idle TLS "
				       "connections in the set)",
				       round, have, n_idle);
			for (int e = 0; e < k; e++) {
				if (evs[e].data.fd != act) {
					ev_fail("an event for an idle connection (fd %d)", evs[e].data.fd);
					continue;
				}
				ssize_t r;
				while (have < sizeof msg &&
				       (r = read(act, got + have, sizeof msg - have)) > 0)
					have += (size_t)r;
			}
		}
		if (now_ms() - t0 > worst)
			worst = now_ms() - t0;
		echoes++;
	}
	printf("idle=%ld echoes=%d worst_ms=%lld\n", n_idle, echoes, worst);
	return ev_exit_status();
}
