/* rd_readers MODE HOST PORT N BOUND_MS PAUSE_MS: two threads blocked in read() on one TLS socket while a
 * third thread watches it, against evserver drip:N:PAUSE_MS (N records of 32 bytes, one at a time, a
 * pause of PAUSE_MS/2..PAUSE_MS before each, the server's send time inside). Every record must reach one
 * of the readers within BOUND_MS of being sent, and both readers must see EOF once the server closes:
 * on a plain socket the kernel wakes every reader when bytes arrive. Here a reader that goes to sleep
 * just after the watcher took a record out of the kernel (into the shim) must still be woken.
 * MODE, what the third thread does:
 *   poll      poll(fd, POLLIN, 100 ms); after POLLIN, ioctl(FIONREAD) and 1 ms of sleep
 *   spin      poll(fd, POLLIN, 0) and ioctl(FIONREAD) in a loop (100 us apart)
 *   fionread  ioctl(FIONREAD) in a loop (100 us apart)
 *   none      no third thread (two readers only)
 * Prints records=N max_latency_ms=M reader0=A reader1=B watcher_events=W eof=2. */
#include "ev_common.h"

#define REC 32

static int sfd;
static int n_records, bound_ms, pause_ms;
static const char *mode;
static _Atomic long long arrived_at_ms[100000]; /* realtime ms at which record k reached a reader, 0 */
static atomic_int n_arrived, n_eof, max_latency_ms, watcher_events;
static _Atomic long long last_arrival_ms;
static atomic_bool done;

static long long real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double real_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One 32-byte record "rec KKKKK SSSSSSSSSS.UUUUUU....\n" that reader r got at time now. */
static void take_record(int r, const char *p, double now)
{
	int k;
	double sent;
	if (sscanf(p, "rec %d %lf", &k, &sent) != 2 || p[REC - 1] != '\n' || k < 0 || k >= n_records) {
		ev_fail("reader %d: a malformed record: %.32s", r, p);
		return;
	}
	int lat = (int)((now - sent) * 1000);
	if (atomic_exchange(&arrived_at_ms[k], real_ms()) != 0)
		ev_fail("record %d arrived twice", k);
	atomic_fetch_add(&n_arrived, 1);
	atomic_store(&last_arrival_ms, real_ms());
	int m = atomic_load(&max_latency_ms);
	while (lat > m && !atomic_compare_exchange_weak(&max_latency_ms, &m, lat))
		;
	if (lat > bound_ms)
		ev_fail("record %d reached reader %d %d ms after the server sent it (bound %d ms)", k, r, lat,
			bound_ms);
}

static void *reader(void *arg)
{
	int r = (int)(intptr_t)arg;
	int got = 0;
	char buf[10 * REC];
	for (;;) {
		ssize_t n = read(sfd, buf, sizeof buf);
		double now = real_s();
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ev_fail("reader %d: read: errno=%s", r, errno_name(errno));
			break;
		}
		if (n % REC) {
			ev_fail("reader %d: a read returned %zd bytes, not whole records", r, n);
			break;
		}
		for (ssize_t off = 0; off < n; off += REC)
			take_record(r, buf + off, now);
		got += (int)(n / REC);
	}
	atomic_fetch_add(&n_eof, 1);
	return (void *)(intptr_t)got;
}

/* 100 us between the spinning watcher's calls: close enough to take each record the moment it lands,
 * without a copy of this test eating a core (several copies at once starved the readers under load). */
static void pause_briefly(void)
{
	struct timespec ts = {0, 100000};
	nanosleep(&ts, NULL);
}

static void *watcher(void *arg)
{
	(void)arg;
	while (!atomic_load(&done)) {
		int avail = 0;
		if (strcmp(mode, "fionread") == 0) {
			if (ioctl(sfd, FIONREAD, &avail) != 0)
				ev_fail("FIONREAD: errno=%s", errno_name(errno));
			if (avail > 0)
				atomic_fetch_add(&watcher_events, 1);
			pause_briefly();
			continue;
		}
		bool spin = strcmp(mode, "spin") == 0;
		struct pollfd p = {.fd = sfd, .events = POLLIN};
		int k = poll(&p, 1, spin ? 0 : 100);
		if (k < 0 && errno != EINTR)
			ev_fail("poll: errno=%s", errno_name(errno));
		if (k > 0 && (p.revents & POLLIN)) {
			atomic_fetch_add(&watcher_events, 1);
			if (ioctl(sfd, FIONREAD, &avail) != 0)
				ev_fail("FIONREAD: errno=%s", errno_name(errno));
			if (!spin)
				ev_sleep_ms(1);
		}
		if (spin)
			pause_briefly();
	}
	return NULL;
}

int main(int argc, char **argv)
{
	ev_prog = "rd_readers";
	if (argc != 7)
		ev_die("usage: rd_readers poll|spin|fionread|none HOST PORT N BOUND_MS PAUSE_MS");
	mode = argv[1];
	n_records = atoi(argv[4]);
	bound_ms = atoi(argv[5]);
	pause_ms = atoi(argv[6]);
	if (n_records <= 0 || n_records > 100000 || bound_ms <= 0 || pause_ms <= 0)
		ev_die("bad N, BOUND_MS or PAUSE_MS");
	sfd = ev_connect(argv[2], argv[3]);
	pthread_t rd[2], w;
	for (int i = 0; i < 2; i++)
		if (pthread_create(&rd[i], NULL, reader, (void *)(intptr_t)i) != 0)
			ev_die("pthread_create");
	bool watch = strcmp(mode, "none") != 0;
	if (watch && pthread_create(&w, NULL, watcher, NULL) != 0)
		ev_die("pthread_create");
	ev_sleep_ms(50); /* the readers are asleep in read() when the first record comes */
	ev_write_all(sfd, "go\n", 3, "go");
	/* The watchdog: the server pauses at most PAUSE_MS before each record, so no record for PAUSE_MS +
	 * BOUND_MS (plus the handshake's slack before the first) means one is stuck; both readers must see
	 * EOF within BOUND_MS of the last record. */
	atomic_store(&last_arrival_ms, real_ms() + 1000);
	bool stuck = false;
	while (atomic_load(&n_eof) < 2) {
		ev_sleep_ms(10);
		long long gap = real_ms() - atomic_load(&last_arrival_ms);
		int have = atomic_load(&n_arrived);
		if ((have < n_records && gap > pause_ms + bound_ms) ||
		    (have == n_records && gap > bound_ms + 100)) {
			int next = 0;
			while (next < n_records && atomic_load(&arrived_at_ms[next]))
				next++;
			if (have < n_records)
				ev_fail("no record for %lld ms (record %d of %d not delivered; the server "
					"pauses at "
					"most %d ms)",
					gap, next, n_records, pause_ms);
			else
				ev_fail("all %d records arrived, but %d of 2 readers saw EOF %lld ms after "
					"the last",
					n_records, atomic_load(&n_eof), gap);
			stuck = true;
			break;
		}
	}
	printf("records=%d max_latency_ms=%d watcher_events=%d eof=%d\n", atomic_load(&n_arrived),
	       atomic_load(&max_latency_ms), atomic_load(&watcher_events), atomic_load(&n_eof));
	if (stuck) { /* the readers sleep forever: exit without joining */
		fflush(stdout);
		_exit(1);
	}
	atomic_store(&done, true);
	void *got[2];
	for (int i = 0; i < 2; i++)
		pthread_join(rd[i], &got[i]);
	if (watch)
		pthread_join(w, NULL);
	printf("reader0=%d reader1=%d\n", (int)(intptr_t)got[0], (int)(intptr_t)got[1]);
	if (atomic_load(&n_arrived) != n_records)
		ev_fail("%d of %d records arrived", atomic_load(&n_arrived), n_records);
	close(sfd);
	return ev_exit_status();
}
