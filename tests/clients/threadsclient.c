/* threadsclient HOST PORT THREADS CONNS BYTES: THREADS threads, each making CONNS connections one
 * after another to an ECHO server, sending BYTES of a thread-specific pattern in 4 KiB pieces and
 * checking each echoed piece. Prints "ok=N failed=M"; exit 0 only if every connection was ok. */
#include <pthread.h>

#include "../integration/clientlib.h"

static const char *host, *port;
static int conns;
static size_t bytes;

static void *worker(void *arg)
{
	long id = (long)arg;
	long okc = 0;
	char out[4096], in[4096];
	for (int c = 0; c < conns; c++) {
		const char *stage = "connect";
		int fd = connect_host(host, port, AF_UNSPEC, &stage);
		if (fd < 0) {
			fprintf(stderr, "threadsclient: thread %ld conn %d: %s: errno=%s\n", id, c, stage,
				errno_name(errno));
			continue;
		}
		int good = 1;
		for (size_t done = 0; done < bytes && good;) {
			size_t n = bytes - done < sizeof out ? bytes - done : sizeof out;
			for (size_t i = 0; i < n; i++)
				out[i] = (char)('A' + (id * 7 + c * 3 + (long)((done + i) % 23)) % 26);
			if (write_full(fd, out, n) != 0) {
				fprintf(stderr, "threadsclient: thread %ld conn %d: write: errno=%s\n", id, c,
					errno_name(errno));
				good = 0;
				break;
			}
			ssize_t r = read_full(fd, in, n);
			if (r != (ssize_t)n || memcmp(in, out, n) != 0) {
				fprintf(stderr, "threadsclient: thread %ld conn %d: echo mismatch/short (%zd of %zu) %s\n",
					id, c, r, n, r < 0 ? errno_name(errno) : "");
				good = 0;
			}
			done += n;
		}
		close(fd);
		okc += good;
	}
	return (void *)okc;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: threadsclient HOST PORT THREADS CONNS BYTES\n");
		return 2;
	}
	host = argv[1];
	port = argv[2];
	int nt = atoi(argv[3]);
	conns = atoi(argv[4]);
	bytes = (size_t)strtoul(argv[5], NULL, 10);
	if (nt < 1 || nt > 64 || conns < 1 || conns > 100)
		return 2;
	pthread_t t[64];
	for (long i = 0; i < nt; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	long ok = 0;
	for (int i = 0; i < nt; i++) {
		void *r;
		pthread_join(t[i], &r);
		ok += (long)r;
	}
	long want = (long)nt * conns;
	printf("ok=%ld failed=%ld\n", ok, want - ok);
	return ok == want ? 0 : 1;
}
