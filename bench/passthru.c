/* passthru.c: the pass-through cost of the shim on calls it must leave alone. Millions of small
 * read/write calls on a pipe, a file and a plain (non-TLS) TCP connection; run with and without
 * LD_PRELOAD=libtlsshim.so (with a policy whose tls rule matches some OTHER destination).
 * usage: passthru -n CALLS -p PLAIN_TCP_PORT [-d DIR]; prints per-phase seconds.
 * The loops are separate noinline functions so callgrind can count only them (--toggle-collect=loop_*). */
#include "common.h"

#include <fcntl.h>

static char buf[64];

__attribute__((noinline)) void loop_pipe(int rfd, int wfd, long n)
{
	for (long i = 0; i < n; i++) {
		if (write(wfd, buf, 16) != 16 || read(rfd, buf, 16) != 16)
			bench_die("pipe");
	}
}

__attribute__((noinline)) void loop_file(int fd, long n)
{
	for (long i = 0; i < n; i++) {
		if ((i & 1023) == 0)
			lseek(fd, 0, SEEK_SET);
		if (write(fd, buf, 64) != 64)
			bench_die("file write");
	}
	for (long i = 0; i < n; i++) {
		if ((i & 1023) == 0)
			lseek(fd, 0, SEEK_SET);
		if (read(fd, buf, 64) != 64)
			bench_die("file read");
	}
}

__attribute__((noinline)) void loop_tcp(int fd, long n)
{
	for (long i = 0; i < n; i++)
		if (write(fd, buf, 16) != 16)
			bench_die("tcp write");
}

int main(int argc, char **argv)
{
	long n = 0;
	int port = 0, opt;
	const char *dir = "/tmp";
	while ((opt = getopt(argc, argv, "n:p:d:")) != -1) {
		switch (opt) {
		case 'n': n = atol(optarg); break;
		case 'p': port = atoi(optarg); break;
		case 'd': dir = optarg; break;
		default: n = 0;
		}
	}
	if (n <= 0 || port <= 0) {
		fprintf(stderr, "usage: %s -n CALLS -p PLAIN_TCP_PORT [-d DIR]\n", argv[0]);
		return 2;
	}
	int p[2];
	if (pipe(p) != 0)
		bench_die("pipe");
	char path[4096];
	snprintf(path, sizeof(path), "%s/passthru.XXXXXX", dir);
	int ffd = mkstemp(path);
	if (ffd < 0)
		bench_die("mkstemp");
	unlink(path);

	double t0 = bench_now();
	loop_pipe(p[0], p[1], n);
	double t1 = bench_now();
	loop_file(ffd, n);
	double t2 = bench_now();
	int s = bench_tcp_connect("127.0.0.1", port, 0);
	unsigned char rb[BENCH_REQ_SIZE];
	struct bench_req req = {.op = 'U', .n = (uint64_t)n * 16};
	snprintf(req.tag, sizeof(req.tag), "passthru");
	bench_req_encode(&req, rb);
	if (write(s, rb, sizeof(rb)) != (ssize_t)sizeof(rb))
		bench_die("tcp request");
	loop_tcp(s, n);
	char ack;
	if (read(s, &ack, 1) != 1)
		bench_die("tcp ack");
	double t3 = bench_now();
	close(s);
	printf("mode=passthru calls=%ld pipe_secs=%.6f file_secs=%.6f tcp_secs=%.6f total_secs=%.6f\n", 4 * n + n,
	       t1 - t0, t2 - t1, t3 - t2, t3 - t0);
	return 0;
}
