/* srv_rotate PORT PORTFILE: a plain line echo server for the certificate rotation leak test
 * (test_serve_rotate.sh). It listens on 127.0.0.1:PORT, writes PORT to PORTFILE once listening, and
 * serves any number of connections at once from one poll loop: every read is echoed back, a
 * connection that ends is closed. A connection that sends a line starting with "quit" ends the
 * program: every connection and the listener are closed and main returns 0, so a leak checker running
 * it sees everything the shim still holds at a normal exit. Blocking fds: under a serve rule, poll
 * reports a connection only once its handshake is done and application data (or EOF) waits. */
#include <stdbool.h>

#include "../integration/clientlib.h"

#define MAX_CONNS 64

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: srv_rotate PORT PORTFILE\n");
		return 2;
	}
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 64) != 0) {
		fprintf(stderr, "srv_rotate: listen: %s\n", strerror(errno));
		return 1;
	}
	FILE *pf = fopen(argv[2], "w");
	if (!pf || fprintf(pf, "%s\n", argv[1]) < 0 || fclose(pf) != 0) {
		fprintf(stderr, "srv_rotate: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	struct pollfd p[MAX_CONNS + 1];
	int n = 0; /* connections in p[1..n] */
	p[0].fd = ls;
	p[0].events = POLLIN;
	bool quit = false;
	while (!quit) {
		if (poll(p, (nfds_t)n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "srv_rotate: poll: %s\n", strerror(errno));
			return 1;
		}
		for (int i = n; i >= 1 && !quit; i--) {
			if (!p[i].revents)
				continue;
			char buf[4096];
			ssize_t r = read(p[i].fd, buf, sizeof buf);
			if (r > 0 && r >= 4 && memcmp(buf, "quit", 4) == 0)
				quit = true;
			else if (r > 0 && write(p[i].fd, buf, (size_t)r) == r)
				continue;
			close(p[i].fd); /* EOF, an error, or a failed echo: this connection is done */
			p[i] = p[n--];
		}
		if (!quit && (p[0].revents & POLLIN)) {
			int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0 && n < MAX_CONNS) {
				n++;
				p[n].fd = c;
				p[n].events = POLLIN;
				p[n].revents = 0;
			} else if (c >= 0) {
				close(c);
			}
		}
	}
	for (int i = 1; i <= n; i++)
		close(p[i].fd);
	close(ls);
	return 0;
}
