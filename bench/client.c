/* client.c: the plain bench client. It knows nothing about TLS: it connects, sends the request and
 * downloads/uploads/ping-pongs with plain read(2)/write(2) (64 KiB calls by default). The SAME binary
 * serves the plain path, the shim path (TLS added by LD_PRELOAD), and the stunnel/socat paths (it then
 * connects to the proxy's plain port). See common.h for the modes. */
#include "common.h"

struct bench_conn {
	int fd;
};

static struct bench_conn *plain_open(const char *host, int port, int nodelay, int resume)
{
	struct bench_conn *c = malloc(sizeof(*c));
	if (!c)
		bench_die("malloc");
	c->fd = bench_tcp_connect(host, port, nodelay);
	return c;
}

static ssize_t plain_read(struct bench_conn *c, void *buf, size_t len)
{
	return read(c->fd, buf, len);
}

static ssize_t plain_write(struct bench_conn *c, const void *buf, size_t len)
{
	return write(c->fd, buf, len);
}

static void plain_after_ack(struct bench_conn *c)
{
}

static int plain_resumed(struct bench_conn *c)
{
	return 0;
}

static const char *plain_describe(struct bench_conn *c)
{
	return "plain";
}

static void plain_close(struct bench_conn *c)
{
	close(c->fd);
	free(c);
}

static const struct bench_ops plain_ops = {plain_open,	  plain_read,	  plain_write, plain_after_ack,
					   plain_resumed, plain_describe, plain_close};

int main(int argc, char **argv)
{
	struct bench_opts o;
	if (bench_parse(argc, argv, &o) != 0)
		return 2;
	return bench_run(&plain_ops, &o);
}
