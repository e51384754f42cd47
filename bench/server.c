/* server.c: the one bench server every path talks to. Thread per connection (blocking I/O, 512 KiB
 * stacks, so 1,000+ idle connections are cheap), TLS 1.3 only with wolfSSL from build/wolfssl (AES-NI,
 * Intel asm) and exactly ONE suite (-s), so every client path negotiates the same suite; or plain TCP (-P).
 * Serves the requests of common.h. Each connection is logged to -l FILE as
 *   tag version suite group resumed
 * so the runner can prove what each path negotiated.
 * usage: server -p PORT(0: any) [-P | -s SUITE -c CERT -k KEY] [-l LOGFILE]; prints "port=N" when ready. */
#include "common.h"

#include <pthread.h>
#include <signal.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#define IOBUF (256 * 1024)

static WOLFSSL_CTX *ctx; /* NULL: plain TCP */
static FILE *logf;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char zeros[IOBUF];

struct sconn {
	int fd;
	WOLFSSL *ssl;
};

static int s_read(struct sconn *c, void *buf, int len)
{
	if (!c->ssl) {
		ssize_t r = read(c->fd, buf, (size_t)len);
		return r < 0 ? -1 : (int)r;
	}
	int r = wolfSSL_read(c->ssl, buf, len);
	return r < 0 ? -1 : r;
}

static int s_write(struct sconn *c, const void *buf, int len)
{
	if (!c->ssl) {
		ssize_t w = write(c->fd, buf, (size_t)len);
		return w < 0 ? -1 : (int)w;
	}
	int w = wolfSSL_write(c->ssl, buf, len);
	return w <= 0 ? -1 : w;
}

static int s_read_all(struct sconn *c, void *buf, int len)
{
	char *p = buf;
	while (len > 0) {
		int r = s_read(c, p, len);
		if (r <= 0)
			return -1;
		p += r;
		len -= r;
	}
	return 0;
}

static int s_write_all(struct sconn *c, const void *buf, int len)
{
	const char *p = buf;
	while (len > 0) {
		int w = s_write(c, p, len);
		if (w <= 0)
			return -1;
		p += w;
		len -= w;
	}
	return 0;
}

static void *serve(void *arg)
{
	struct sconn c = {.fd = (int)(intptr_t)arg};
	char *buf = NULL;
	int on = 1;
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (ctx) {
		c.ssl = wolfSSL_new(ctx);
		if (!c.ssl)
			goto out;
		wolfSSL_set_fd(c.ssl, c.fd);
		if (wolfSSL_accept(c.ssl) != WOLFSSL_SUCCESS)
			goto out;
	}
	unsigned char rb[BENCH_REQ_SIZE];
	struct bench_req req;
	if (s_read_all(&c, rb, sizeof(rb)) != 0)
		goto out;
	bench_req_decode(rb, &req);
	if (logf) {
		const char *group = c.ssl ? wolfSSL_get_curve_name(c.ssl) : NULL;
		pthread_mutex_lock(&log_lock);
		fprintf(logf, "%s %s %s %s %d\n", req.tag[0] ? req.tag : "-", c.ssl ? wolfSSL_get_version(c.ssl) : "plain",
			c.ssl ? wolfSSL_get_cipher_name(c.ssl) : "-", group ? group : "-",
			c.ssl ? wolfSSL_session_reused(c.ssl) : 0);
		fflush(logf);
		pthread_mutex_unlock(&log_lock);
	}
	char one = 'k';
	switch (req.op) {
	case 'D': {
		uint64_t left = req.n;
		while (left) {
			int len = left < IOBUF ? (int)left : IOBUF;
			int w = s_write(&c, zeros, len);
			if (w <= 0)
				goto out;
			left -= (uint64_t)w;
		}
		break;
	}
	case 'U': {
		buf = malloc(IOBUF);
		uint64_t left = req.n;
		while (buf && left) {
			int r = s_read(&c, buf, left < IOBUF ? (int)left : IOBUF);
			if (r <= 0)
				goto out;
			left -= (uint64_t)r;
		}
		if (s_write_all(&c, &one, 1) != 0)
			goto out;
		break;
	}
	case 'E': {
		buf = malloc(65536);
		for (;;) {
			int r = buf ? s_read(&c, buf, 65536) : -1;
			if (r <= 0 || s_write_all(&c, buf, r) != 0)
				goto out;
		}
	}
	case 'H':
		if (s_write_all(&c, &one, 1) != 0)
			goto out;
		break;
	default:
		goto out;
	}
	/* Wait for the client to close (bounded by the client: every client closes when done). */
	char sink[512];
	while (s_read(&c, sink, sizeof(sink)) > 0)
		;
out:
	if (c.ssl) {
		wolfSSL_shutdown(c.ssl);
		wolfSSL_free(c.ssl);
	}
	free(buf);
	close(c.fd);
	return NULL;
}

int main(int argc, char **argv)
{
	int port = -1, plain = 0, opt;
	const char *suite = NULL, *cert = NULL, *key = NULL, *logpath = NULL;
	while ((opt = getopt(argc, argv, "p:Ps:c:k:l:")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'P': plain = 1; break;
		case 's': suite = optarg; break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'l': logpath = optarg; break;
		default: port = -1;
		}
	}
	if (port < 0 || (!plain && (!suite || !cert || !key))) {
		fprintf(stderr, "usage: %s -p PORT [-P | -s SUITE -c CERT -k KEY] [-l LOG]\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (logpath && !(logf = fopen(logpath, "a")))
		bench_die(logpath);
	if (!plain) {
		if (wolfSSL_Init() != WOLFSSL_SUCCESS)
			return 2;
		ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
		if (!ctx || wolfSSL_CTX_use_certificate_chain_file(ctx, cert) != WOLFSSL_SUCCESS ||
		    wolfSSL_CTX_use_PrivateKey_file(ctx, key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
			fprintf(stderr, "server: cannot load %s / %s\n", cert, key);
			return 2;
		}
		if (wolfSSL_CTX_set_cipher_list(ctx, suite) != WOLFSSL_SUCCESS) {
			fprintf(stderr, "server: unknown suite %s\n", suite);
			return 2;
		}
	}
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int on = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(ls, 4096) != 0)
		bench_die("bind/listen");
	socklen_t sl = sizeof(sa);
	getsockname(ls, (struct sockaddr *)&sa, &sl);
	printf("port=%d\n", ntohs(sa.sin_port));
	fflush(stdout);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) { /* runs until the runner kills it */
		int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				usleep(10000);
				continue;
			}
			bench_die("accept");
		}
		pthread_t t;
		if (pthread_create(&t, &attr, serve, (void *)(intptr_t)fd) != 0)
			close(fd);
	}
}
