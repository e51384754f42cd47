/* ev_dup HOST PORT: copies of a TLS fd share the session. Server: an echo server that logs/records what it
 * received at EOF (evserver echo). For each way to copy (dup, dup2, dup3, F_DUPFD, F_DUPFD_CLOEXEC), one
 * connection:
 *   copy = COPY(fd); F_GETFD on the copy shows FD_CLOEXEC (README: every copy is close-on-exec);
 *   write "<way> one" on the copy, read the echo on the original;
 *   close the original (not the last copy: the session must go on), write "<way> two" on the copy and
 *   read its echo on the copy; close the copy (the last: the server now sees close_notify).
 * dup2 and dup3 copy onto an fd number that holds ANOTHER TLS connection (the "victim"), which dup2
 * closes: the victim's session must end (its server sees EOF) and the number must now be the copy.
 * Prints "way=W sent_n=N sent_sha=H" per connection (and victim lines). */
#include "ev_common.h"

static const char *host, *port;

static void exchange(int wfd, int rfd, const char *text, struct sha256 *s, size_t *n, const char *what)
{
	char line[128], in[128];
	int len = snprintf(line, sizeof line, "%s\n", text);
	ev_write_all(wfd, line, (size_t)len, what);
	ev_read_exact(rfd, in, (size_t)len, what);
	if (memcmp(in, line, (size_t)len) != 0)
		ev_fail("%s: echo differs", what);
	sha256_update(s, line, (size_t)len);
	*n += (size_t)len;
}

static void one_way(const char *way)
{
	int fd = ev_connect(host, port);
	int victim = -1, copy = -1;
	struct sha256 s, vs;
	size_t n = 0, vn = 0;
	sha256_init(&s);
	sha256_init(&vs);
	char what[96];
	if (!strcmp(way, "dup2") || !strcmp(way, "dup3")) {
		victim = ev_connect(host, port);
		snprintf(what, sizeof what, "%s victim", way);
		exchange(victim, victim, what, &vs, &vn, what);
	}
	if (!strcmp(way, "dup"))
		copy = dup(fd);
	else if (!strcmp(way, "dup2"))
		copy = dup2(fd, victim);
	else if (!strcmp(way, "dup3"))
		copy = dup3(fd, victim, O_CLOEXEC);
	else if (!strcmp(way, "F_DUPFD"))
		copy = fcntl(fd, F_DUPFD, 50);
	else
		copy = fcntl(fd, F_DUPFD_CLOEXEC, 60);
	if (copy < 0)
		ev_die("%s: errno=%s", way, errno_name(errno));
	if (victim >= 0 && copy != victim)
		ev_fail("%s returned %d, want %d", way, copy, victim);
	int fdfl = fcntl(copy, F_GETFD);
	printf("way=%s copy_cloexec=%d\n", way, fdfl >= 0 && (fdfl & FD_CLOEXEC));
	if (fdfl < 0 || !(fdfl & FD_CLOEXEC))
		ev_fail("%s: the copy is not close-on-exec (F_GETFD=%d)", way, fdfl);

	snprintf(what, sizeof what, "%s one: written on the copy, read on the original", way);
	exchange(copy, fd, what, &s, &n, what);
	close(fd); /* not the last copy */
	snprintf(what, sizeof what, "%s two: after closing the original, on the copy", way);
	exchange(copy, copy, what, &s, &n, what);
	char hex[65];
	sha256_hex(&s, hex);
	printf("way=%s sent_n=%zu sent_sha=%s\n", way, n, hex);
	if (victim >= 0) {
		sha256_hex(&vs, hex);
		printf("way=%s victim_n=%zu victim_sha=%s\n", way, vn, hex);
	}
	fflush(stdout);
	close(copy); /* the last one: close_notify */
}

int main(int argc, char **argv)
{
	ev_prog = "ev_dup";
	if (argc != 3)
		ev_die("usage: ev_dup HOST PORT");
	host = argv[1];
	port = argv[2];
	const char *ways[] = {"dup", "dup2", "dup3", "F_DUPFD", "F_DUPFD_CLOEXEC"};
	for (size_t i = 0; i < sizeof ways / sizeof ways[0]; i++)
		one_way(ways[i]);
	return ev_exit_status();
}
