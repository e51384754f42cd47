/* ev_duplex HOST PORT N CONNS: full duplex across threads. CONNS connections, each in its own thread; on
 * each, after the header "DUPLEX N TAG\n", a writer thread writes N pattern bytes (64 KiB writes) while the
 * connection's thread is blocked in read() taking N bytes (64 KiB reads) on the SAME socket. The server
 * (evserver duplex, e.g. behind stunnel) receives and sends N bytes at the same time and records both
 * SHA-256s under TAG. Prints one line per connection:
 *   conn TAG sent_n=N sent_sha=H recv_n=N recv_sha=H ms=T
 * and total_ms / MiB_per_s. Exit 0 only if every connection moved N bytes each way. */
#include "ev_common.h"

static const char *host, *port;
static size_t nbytes;
static long run_id;

struct job {
	int idx, fd;
	char tag[64];
	char sent_sha[65], recv_sha[65];
	size_t sent, got;
	long long ms;
	int werr, rerr;
};

static void *writer(void *arg)
{
	struct job *j = arg;
	struct ev_pattern *p = malloc(sizeof *p);
	uint8_t *buf = malloc(EV_BLOCK);
	ev_pattern_init(p, (uint64_t)run_id * 1000 + (uint64_t)j->idx);
	struct sha256 s;
	sha256_init(&s);
	while (j->sent < nbytes) {
		size_t take = nbytes - j->sent < EV_BLOCK ? nbytes - j->sent : EV_BLOCK;
		ev_pattern_fill(p, j->sent, buf, take);
		size_t off = 0;
		while (off < take) {
			ssize_t w = write(j->fd, buf + off, take - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				j->werr = w < 0 ? errno : EIO;
				goto out;
			}
			sha256_update(&s, buf + off, (size_t)w);
			off += (size_t)w;
			j->sent += (size_t)w;
		}
	}
out:
	sha256_hex(&s, j->sent_sha);
	free(buf);
	free(p);
	return NULL;
}

static void *conn_thread(void *arg)
{
	struct job *j = arg;
	long long t0 = now_ms();
	j->fd = ev_connect(host, port);
	char hdr[128];
	int len = snprintf(hdr, sizeof hdr, "DUPLEX %zu %s\n", nbytes, j->tag);
	ev_write_all(j->fd, hdr, (size_t)len, "header");
	pthread_t wt;
	pthread_create(&wt, NULL, writer, j);
	uint8_t *buf = malloc(EV_BLOCK);
	struct sha256 s;
	sha256_init(&s);
	while (j->got < nbytes) {
		size_t want = nbytes - j->got < EV_BLOCK ? nbytes - j->got : EV_BLOCK;
		ssize_t r = read(j->fd, buf, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			j->rerr = r < 0 ? errno : -1;
			break;
		}
		sha256_update(&s, buf, (size_t)r);
		j->got += (size_t)r;
	}
	sha256_hex(&s, j->recv_sha);
	pthread_join(wt, NULL);
	j->ms = now_ms() - t0;
	close(j->fd);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	ev_prog = "ev_duplex";
	if (argc != 5)
		ev_die("usage: ev_duplex HOST PORT N CONNS");
	host = argv[1];
	port = argv[2];
	nbytes = strtoull(argv[3], NULL, 10);
	int conns = atoi(argv[4]);
	if (conns < 1 || conns > 256)
		ev_die("CONNS out of range");
	run_id = (long)getpid();
	struct job *jobs = calloc((size_t)conns, sizeof *jobs);
	pthread_t *th = calloc((size_t)conns, sizeof *th);
	long long t0 = now_ms();
	for (int i = 0; i < conns; i++) {
		jobs[i].idx = i;
		snprintf(jobs[i].tag, sizeof jobs[i].tag, "p%ld-c%d", run_id, i);
		pthread_create(&th[i], NULL, conn_thread, &jobs[i]);
	}
	for (int i = 0; i < conns; i++)
		pthread_join(th[i], NULL);
	long long ms = now_ms() - t0;
	for (int i = 0; i < conns; i++) {
		struct job *j = &jobs[i];
		printf("conn %s sent_n=%zu sent_sha=%s recv_n=%zu recv_sha=%s ms=%lld\n", j->tag, j->sent,
		       j->sent_sha, j->got, j->recv_sha, j->ms);
		if (j->sent != nbytes)
			ev_fail("%s: wrote %zu of %zu bytes (errno=%s)", j->tag, j->sent, nbytes,
				ev_err(j->werr));
		if (j->got != nbytes)
			ev_fail("%s: read %zu of %zu bytes (%s)", j->tag, j->got, nbytes,
				j->rerr == -1 ? "EOF" : ev_err(j->rerr));
	}
	double mib = (double)nbytes * (double)conns / 1048576.0;
	printf("total_ms=%lld MiB_each_way=%.0f MiB_per_s_each_way=%.1f\n", ms, mib,
	       ms ? mib * 1000.0 / (double)ms : 0.0);
	return ev_exit_status();
}
