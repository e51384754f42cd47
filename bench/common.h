/* common.h: the bench protocol and the client workloads, shared by the plain client (client.c) and the
 * in-process TLS clients (tlsclient.c). A client opens a connection through a small vtable, sends one
 * 32-byte request, then runs one workload and prints one line of key=value results on stdout.
 *
 * Request (32 bytes): op (1 byte), tag (15 bytes, NUL-padded: which path the server should log this
 * connection under), n (8 bytes, little endian), reserved (8 bytes). Ops:
 *   'D' download: the server sends n bytes, then waits for EOF.
 *   'U' upload:   the server reads n bytes, answers 1 byte, then waits for EOF.
 *   'E' echo:     the server echoes whatever it reads until EOF (ping-pong).
 *   'H' hello:    the server answers 1 byte, then waits for EOF (handshake/connection rate, idle hold). */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BENCH_REQ_SIZE 32
#define BENCH_TAG_MAX 15

struct bench_req {
	char op;
	char tag[BENCH_TAG_MAX];
	uint64_t n;
	uint64_t reserved;
};

static inline void bench_req_encode(const struct bench_req *r, unsigned char out[BENCH_REQ_SIZE])
{
	memset(out, 0, BENCH_REQ_SIZE);
	out[0] = (unsigned char)r->op;
	memcpy(out + 1, r->tag, strnlen(r->tag, BENCH_TAG_MAX));
	for (int i = 0; i < 8; i++)
		out[16 + i] = (unsigned char)(r->n >> (8 * i));
}

static inline void bench_req_decode(const unsigned char in[BENCH_REQ_SIZE], struct bench_req *r)
{
	r->op = (char)in[0];
	memcpy(r->tag, in + 1, BENCH_TAG_MAX);
	r->tag[BENCH_TAG_MAX - 1] = '\0';
	r->n = 0;
	for (int i = 0; i < 8; i++)
		r->n |= (uint64_t)in[16 + i] << (8 * i);
	r->reserved = 0;
}

static inline double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void bench_die(const char *what)
{
	fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Resident set of this process in KiB (VmRSS), or -1. */
static inline long bench_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	char line[256];
	long kib = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* A TCP connection to host:port, blocking; TCP_NODELAY if asked. */
static inline int bench_tcp_connect(const char *host, int port, int nodelay)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "bench: %s: not an IPv4 address\n", host);
		exit(2);
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		bench_die("socket");
	if (nodelay) {
		int on = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		bench_die("connect");
	return fd;
}

/* ---- the connection vtable each client provides ---- */
struct bench_conn;
struct bench_ops {
	/* Connects (and handshakes); resume: try to reuse the previous session (TLS clients only). */
	struct bench_conn *(*open)(const char *host, int port, int nodelay, int resume);
	ssize_t (*read)(struct bench_conn *c, void *buf, size_t len);
	ssize_t (*write)(struct bench_conn *c, const void *buf, size_t len);
	/* Called once the server's first byte arrived (TLS: the session ticket is in by then). */
	void (*after_ack)(struct bench_conn *c);
	int (*resumed)(struct bench_conn *c);
	const char *(*describe)(struct bench_conn *c); /* "TLSv1.3 TLS_AES_128_GCM_SHA256" or "plain" */
	void (*close)(struct bench_conn *c);
};

struct bench_opts {
	const char *host;
	int port;
	char mode[16]; /* down up ping conn hold */
	unsigned long long n;
	size_t chunk;
	size_t msg;
	const char *tag;
	int resume;
	double max_secs; /* conn: stop after this long even if n is not reached */
	double hold_secs;
	int nodelay;
};

static inline void bench_write_all(const struct bench_ops *ops, struct bench_conn *c, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t w = ops->write(c, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			bench_die("write");
		p += w;
		len -= (size_t)w;
	}
}

static inline void bench_read_all(const struct bench_ops *ops, struct bench_conn *c, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t r = ops->read(c, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			fprintf(stderr, "bench: unexpected EOF\n");
			exit(2);
		}
		if (r < 0)
			bench_die("read");
		p += r;
		len -= (size_t)r;
	}
}

static inline void bench_send_req(const struct bench_ops *ops, struct bench_conn *c, const struct bench_opts *o,
				  char op, uint64_t n)
{
	struct bench_req r = {.op = op, .n = n};
	snprintf(r.tag, sizeof(r.tag), "%s", o->tag);
	unsigned char b[BENCH_REQ_SIZE];
	bench_req_encode(&r, b);
	bench_write_all(ops, c, b, sizeof(b));
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static inline int bench_usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s -p PORT -m down|up|ping|conn|hold -n N [-h HOST] [-c CHUNK] [-s MSG] [-t TAG] [-r] "
		"[-T MAXSECS] [-w HOLDSECS] [-D]\n"
		"  down/up: N bytes in CHUNK-byte read/write calls (default 65536)\n"
		"  ping: N round trips of MSG bytes (default 64), prints p50/p99 in microseconds\n"
		"  conn: N sequential connections (each: connect, request, 1-byte answer, close); -r resumes sessions\n"
		"  hold: N idle connections held at once; prints the resident set per connection\n",
		argv0);
	return 2;
}

static inline int bench_parse(int argc, char **argv, struct bench_opts *o)
{
	*o = (struct bench_opts){.host = "127.0.0.1", .chunk = 65536, .msg = 64, .tag = "-", .max_secs = 60,
				 .hold_secs = 60, .nodelay = 1};
	int opt;
	while ((opt = getopt(argc, argv, "h:p:m:n:c:s:t:rT:w:D")) != -1) {
		switch (opt) {
		case 'h': o->host = optarg; break;
		case 'p': o->port = atoi(optarg); break;
		case 'm': snprintf(o->mode, sizeof(o->mode), "%s", optarg); break;
		case 'n': o->n = strtoull(optarg, NULL, 0); break;
		case 'c': o->chunk = strtoul(optarg, NULL, 0); break;
		case 's': o->msg = strtoul(optarg, NULL, 0); break;
		case 't': o->tag = optarg; break;
		case 'r': o->resume = 1; break;
		case 'T': o->max_secs = atof(optarg); break;
		case 'w': o->hold_secs = atof(optarg); break;
		case 'D': o->nodelay = 0; break;
		default: return bench_usage(argv[0]);
		}
	}
	if (!o->port || !o->mode[0] || !o->n || !o->chunk || !o->msg || o->msg > 65536)
		return bench_usage(argv[0]);
	return 0;
}

/* Runs the workload; prints one result line. */
static inline int bench_run(const struct bench_ops *ops, const struct bench_opts *o)
{
	if (strcmp(o->mode, "down") == 0 || strcmp(o->mode, "up") == 0) {
		int down = o->mode[0] == 'd';
		char *buf = malloc(o->chunk);
		if (!buf)
			bench_die("malloc");
		memset(buf, 'x', o->chunk);
		double t0 = bench_now();
		struct bench_conn *c = ops->open(o->host, o->port, o->nodelay, 0);
		double t1 = bench_now();
		bench_send_req(ops, c, o, down ? 'D' : 'U', o->n);
		unsigned long long left = o->n;
		while (left) {
			size_t len = left < o->chunk ? (size_t)left : o->chunk;
			ssize_t k = down ? ops->read(c, buf, len) : ops->write(c, buf, len);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				fprintf(stderr, "bench: %s failed after %llu bytes: %s\n", down ? "read" : "write",
					o->n - left, k == 0 ? "EOF" : strerror(errno));
				return 2;
			}
			left -= (unsigned long long)k;
		}
		if (!down) { /* the server has everything when it answers */
			char ack;
			bench_read_all(ops, c, &ack, 1);
		}
		double t2 = bench_now();
		printf("mode=%s bytes=%llu secs=%.6f handshake_secs=%.6f mbps=%.2f proto=\"%s\"\n", o->mode, o->n,
		       t2 - t1, t1 - t0, (double)o->n / (t2 - t1) / 1e6, ops->describe(c));
		ops->close(c);
		free(buf);
		return 0;
	}
	if (strcmp(o->mode, "ping") == 0) {
		const unsigned warm = 200;
		unsigned long long total = o->n + warm;
		double *lat = malloc(sizeof(double) * (size_t)o->n);
		char *buf = malloc(o->msg);
		if (!lat || !buf)
			bench_die("malloc");
		memset(buf, 'p', o->msg);
		struct bench_conn *c = ops->open(o->host, o->port, 1, 0);
		bench_send_req(ops, c, o, 'E', 0);
		for (unsigned long long i = 0; i < total; i++) {
			double t0 = bench_now();
			bench_write_all(ops, c, buf, o->msg);
			bench_read_all(ops, c, buf, o->msg);
			if (i >= warm)
				lat[i - warm] = (bench_now() - t0) * 1e6;
		}
		qsort(lat, (size_t)o->n, sizeof(double), bench_cmp_double);
		double sum = 0;
		for (unsigned long long i = 0; i < o->n; i++)
			sum += lat[i];
		printf("mode=ping n=%llu msg=%zu p50_us=%.2f p99_us=%.2f mean_us=%.2f min_us=%.2f proto=\"%s\"\n", o->n,
		       o->msg, lat[o->n / 2], lat[(o->n * 99) / 100], sum / (double)o->n, lat[0], ops->describe(c));
		ops->close(c);
		free(lat);
		free(buf);
		return 0;
	}
	if (strcmp(o->mode, "conn") == 0) {
		unsigned long long done = 0, resumed = 0;
		char proto[96] = "";
		double t0 = bench_now();
		while (done < o->n && bench_now() - t0 < o->max_secs) {
			struct bench_conn *c = ops->open(o->host, o->port, o->nodelay, o->resume && done > 0);
			bench_send_req(ops, c, o, 'H', 0);
			char ack;
			bench_read_all(ops, c, &ack, 1);
			ops->after_ack(c);
			resumed += ops->resumed(c) ? 1 : 0;
			if (!proto[0])
				snprintf(proto, sizeof(proto), "%s", ops->describe(c));
			ops->close(c);
			done++;
		}
		double secs = bench_now() - t0;
		printf("mode=conn n=%llu resumed=%llu secs=%.6f conns_per_s=%.2f proto=\"%s\"\n", done, resumed, secs,
		       (double)done / secs, proto);
		return 0;
	}
	if (strcmp(o->mode, "hold") == 0) {
		struct bench_conn **cs = calloc((size_t)o->n + 1, sizeof(*cs));
		if (!cs)
			bench_die("calloc");
		char ack;
		/* The first connection pays for one-time set-up (contexts, CA store, tables): not counted. */
		cs[0] = ops->open(o->host, o->port, o->nodelay, 0);
		bench_send_req(ops, cs[0], o, 'H', 0);
		bench_read_all(ops, cs[0], &ack, 1);
		ops->after_ack(cs[0]);
		long base = bench_rss_kib();
		for (unsigned long long i = 1; i <= o->n; i++) {
			cs[i] = ops->open(o->host, o->port, o->nodelay, 0);
			bench_send_req(ops, cs[i], o, 'H', 0);
			bench_read_all(ops, cs[i], &ack, 1);
			ops->after_ack(cs[i]);
		}
		long after = bench_rss_kib();
		printf("mode=hold n=%llu rss_base_kib=%ld rss_kib=%ld per_conn_bytes=%.0f proto=\"%s\"\n", o->n, base,
		       after, (double)(after - base) * 1024.0 / (double)o->n, ops->describe(cs[0]));
		fflush(stdout);
		/* Hold until stdin says go (or closes), at most hold_secs: the runner measures proxies meanwhile. */
		fd_set rf;
		FD_ZERO(&rf);
		FD_SET(0, &rf);
		struct timeval tv = {.tv_sec = (long)o->hold_secs};
		select(1, &rf, NULL, NULL, &tv);
		for (unsigned long long i = 0; i <= o->n; i++)
			ops->close(cs[i]);
		free(cs);
		return 0;
	}
	return bench_usage("client");
}

#endif
