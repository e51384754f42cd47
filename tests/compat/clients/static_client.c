/* static_client.c: built with `gcc -static` by the compatibility suite to show what the shim cannot
 * do. A statically linked program has no dynamic loader, so LD_PRELOAD is never read and the shim
 * never loads: the connection to a `tls` destination is plain TCP.
 *   static_client HOST-IPv4 PORT
 * Prints "shim-loaded=yes|no" (whether any mapping of this process is libtlsshim), connects, sends
 * one plaintext line, prints what came back (as "reply-bytes=N") and exits 0 when connect worked. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: static_client HOST-IPv4 PORT\n");
		return 2;
	}
	char line[512];
	int loaded = 0;
	FILE *maps = fopen("/proc/self/maps", "r");
	while (maps && fgets(line, sizeof line, maps))
		if (strstr(line, "libtlsshim"))
			loaded = 1;
	if (maps)
		fclose(maps);
	printf("shim-loaded=%s\n", loaded ? "yes" : "no");

	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
	if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[1]);
		return 2;
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("connect");
		return 1;
	}
	printf("connected\n");
	const char msg[] = "PLAINTEXT-FROM-STATIC-CLIENT\n";
	if (write(fd, msg, sizeof msg - 1) != (ssize_t)(sizeof msg - 1))
		perror("write");
	long total = 0;
	char buf[4096];
	for (int i = 0; i < 100; i++) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r <= 0)
			break;
		total += r;
	}
	printf("reply-bytes=%ld\n", total);
	close(fd);
	return 0;
}
