/* ev_resume HOST PORT MODE: a second TLS connection opened while (or after) a resumed one that has not yet
 * read anything. Server: an echo server (evserver echo: Python/OpenSSL, TLS 1.3 tickets after the
 * handshake). Connection A: full handshake, one exchange, closed (its ticket is cached by the shim).
 * Connection B: resumes with A's ticket. MODE 0: B stays open, unread; 1: B does one exchange first (so
 * its NewSessionTicket is read); 2: B is closed unread. Then connection C must connect and echo.
 * Prints c_connect=ok|ERRNO and c_echo=ok. */
#include "ev_common.h"

static void exchange(int fd, const char *text)
{
	char in[64];
	size_t n = strlen(text);
	ev_write_all(fd, text, n, text);
	ev_read_exact(fd, in, n, text);
	if (memcmp(in, text, n) != 0)
		ev_fail("%s: echo differs", text);
}

int main(int argc, char **argv)
{
	ev_prog = "ev_resume";
	if (argc != 4)
		ev_die("usage: ev_resume HOST PORT MODE");
	int mode = atoi(argv[3]);
	int a = ev_connect(argv[1], argv[2]);
	exchange(a, "connection A\n");
	close(a);
	int b = ev_connect(argv[1], argv[2]);
	if (mode == 1)
		exchange(b, "connection B\n");
	if (mode == 2)
		close(b);
	const char *stage = "connect";
	int c = connect_host(argv[1], argv[2], AF_INET, &stage);
	printf("c_connect=%s\n", c < 0 ? errno_name(errno) : "ok");
	if (c < 0)
		ev_die("connection C (after a resumed connection B, mode %d): %s: errno=%s", mode, stage,
		       errno_name(errno));
	exchange(c, "connection C\n");
	printf("c_echo=ok\n");
	close(c);
	if (mode != 2)
		close(b);
	return ev_exit_status();
}
