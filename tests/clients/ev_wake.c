/* ev_wake METHOD HOST PORT [ROUNDS]: a thread blocked in poll/select/epoll_wait must be woken when another
 * thread's read leaves decrypted bytes inside the TLS library. Server: evserver onreq.
 *
 * The race is made deterministic with SO_RCVLOWAT: the kernel then reports the socket readable only once
 * 512 KiB are queued, so a record of 8000 bytes sitting in the kernel does not wake a poller, while a
 * 1-byte recv still returns at once. Each round:
 *   main: write "send 8000\n"; the record arrives (below the low-water mark);
 *   A:    wait(700 ms) must time out (precondition: neither the kernel nor the shim says readable);
 *   A:    wait(5000 ms), announced; main sleeps 300 ms (A is now blocked in the kernel), then reads 1 byte:
 *         the whole record is decrypted, 7999 bytes stay inside the TLS library, the kernel socket is empty;
 *   A:    must return readable within 1 s of that read; then reads the 7999 bytes.
 * METHOD: poll, select, epoll, epollet. Prints per round wake_ms, and recv_n/recv_sha of all bytes. */
#include "ev_common.h"

#define RECORD 8000
static int fd;
static struct ev_waiter w;
static atomic_int phase;       /* 0 idle, 1 A: do the quiet wait, 2 A: do the real wait, 3 quit */
static atomic_int a_entered;   /* A is about to block in the real wait */
static atomic_llong a_woke_ms; /* when A's real wait returned */
static atomic_int a_rev, a_quiet_rev;
static atomic_int a_done;

static void *poller(void *arg)
{
	(void)arg;
	for (;;) {
		while (atomic_load(&phase) == 0)
			ev_sleep_ms(1);
		int p = atomic_load(&phase);
		if (p == 3)
			return NULL;
		if (p == 1) {
			atomic_store(&a_quiet_rev, ev_wait(&w, 700));
		} else {
			atomic_store(&a_entered, 1);
			int r = ev_wait(&w, 5000);
			atomic_store(&a_woke_ms, now_ms());
			atomic_store(&a_rev, r);
		}
		atomic_store(&phase, 0);
		atomic_store(&a_done, 1);
	}
}

static void run_phase(int p)
{
	atomic_store(&a_done, 0);
	atomic_store(&phase, p);
}

static void wait_done(void)
{
	for (int i = 0; i < 10000 && !atomic_load(&a_done); i++)
		ev_sleep_ms(1);
	if (!atomic_load(&a_done))
		ev_die("the polling thread did not come back within 10 s");
}

int main(int argc, char **argv)
{
	ev_prog = "ev_wake";
	if (argc < 4)
		ev_die("usage: ev_wake METHOD HOST PORT [ROUNDS]");
	enum ev_method m = ev_method_parse(argv[1]);
	int rounds = argc > 4 ? atoi(argv[4]) : 3;
	fd = ev_connect(argv[2], argv[3]);
	int lowat = 512 * 1024, got_lowat = 0;
	socklen_t sl = sizeof got_lowat;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &got_lowat, &sl) != 0)
		ev_die("SO_RCVLOWAT: errno=%s", errno_name(errno));
	printf("rcvlowat=%d\n", got_lowat);
	if (got_lowat <= RECORD)
		ev_die("the kernel capped SO_RCVLOWAT at %d: the test cannot hide the record", got_lowat);
	ev_waiter_init(&w, m, fd, POLLIN);
	pthread_t a;
	pthread_create(&a, NULL, poller, NULL);

	struct sha256 s;
	sha256_init(&s);
	size_t total = 0;
	uint8_t buf[RECORD];
	char rt[64];
	for (int r = 0; r < rounds; r++) {
		char req[32];
		int len = snprintf(req, sizeof req, "send %d\n", RECORD);
		ev_write_all(fd, req, (size_t)len, "request");
		ev_sleep_ms(300); /* the record is now in the kernel, below the low-water mark */

		run_phase(1);
		wait_done();
		int q = atomic_load(&a_quiet_rev);
		printf("round %d quiet_wait=%s\n", r, ev_revents_text(q, rt, sizeof rt));
		if (q != 0)
			ev_die("round %d: precondition: a wait before anything was read reported %s (want a "
			       "timeout): "
			       "the test cannot hide the record from the kernel's readiness",
			       r, rt);

		atomic_store(&a_entered, 0);
		run_phase(2);
		while (!atomic_load(&a_entered))
			ev_sleep_ms(1);
		ev_sleep_ms(300); /* A is blocked in the kernel now */
		ssize_t k = read(fd, buf, 1);
		long long t_read = now_ms();
		if (k != 1)
			ev_die("round %d: read 1 byte: got %zd (errno=%s)", r, k,
			       k < 0 ? errno_name(errno) : "EOF");
		sha256_update(&s, buf, 1);
		total += 1;
		wait_done();
		int rev = atomic_load(&a_rev);
		long long wake = atomic_load(&a_woke_ms) - t_read;
		printf("round %d wake_ms=%lld revents=%s\n", r, wake, ev_revents_text(rev, rt, sizeof rt));
		if (rev <= 0 || !(rev & POLLIN))
			ev_fail("round %d: the thread blocked in %s was not woken (revents %s, %lld ms after "
				"the read) "
				"although the read left %d decrypted bytes behind",
				r, argv[1], rt, wake, RECORD - 1);
		else if (wake > 1000)
			ev_fail("round %d: woken only %lld ms after the read (want < 1000)", r, wake);

		/* The rest of the record is there to read without waiting. */
		k = recv(fd, buf, RECORD - 1, MSG_DONTWAIT | MSG_WAITALL);
		if (k > 0) {
			sha256_update(&s, buf, (size_t)k);
			total += (size_t)k;
		}
		if (k != RECORD - 1) {
			ssize_t more = k > 0 ? k : 0;
			/* blocking for what is missing (the low-water mark is not in the way: 1-byte waits)
			 */
			while (more < RECORD - 1) {
				ssize_t x = read(fd, buf, (size_t)(RECORD - 1 - more));
				if (x <= 0)
					ev_die("round %d: reading the rest: %zd (errno=%s)", r, x,
					       errno_name(errno));
				sha256_update(&s, buf, (size_t)x);
				total += (size_t)x;
				more += x;
			}
			ev_fail("round %d: only %zd of the %d decrypted bytes could be read without waiting",
				r, k, RECORD - 1);
		}
	}
	run_phase(3);
	pthread_join(a, NULL);
	char hex[65];
	sha256_hex(&s, hex);
	printf("recv_n=%zu recv_sha=%s\n", total, hex);
	ev_waiter_close(&w);
	close(fd);
	return ev_exit_status();
}
