/* shutdownclient HOST PORT BYTES: sends BYTES of the deterministic stream, shutdown(SHUT_WR), then
 * keeps reading the reply to EOF. Against a HASH server (replies "<sha256> <bytes>\n" after EOF).
 * Prints "sent_sha256=HEX sent=N" and "reply=..."; exit 0 only if the reply matches what was sent. */
#include "../integration/clientlib.h"

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: shutdownclient HOST PORT BYTES\n");
		return 2;
	}
	unsigned long long total = strtoull(argv[3], NULL, 10);
	const char *stage = "connect";
	int fd = connect_host(argv[1], argv[2], AF_UNSPEC, &stage);
	if (fd < 0) {
		fprintf(stderr, "shutdownclient: %s: errno=%s (%s)\n", stage, errno_name(errno), strerror(errno));
		return 1;
	}
	struct detstream d;
	det_init(&d);
	struct sha256 h;
	sha256_init(&h);
	uint8_t buf[16384];
	unsigned long long sent = 0;
	while (sent < total) {
		size_t n = total - sent < sizeof buf ? (size_t)(total - sent) : sizeof buf;
		det_next(&d, buf, n);
		if (write_full(fd, buf, n) != 0) {
			fprintf(stderr, "shutdownclient: write after %llu: errno=%s\n", sent, errno_name(errno));
			return 1;
		}
		sha256_update(&h, buf, n);
		sent += n;
	}
	if (shutdown(fd, SHUT_WR) != 0) {
		fprintf(stderr, "shutdownclient: shutdown(SHUT_WR): errno=%s\n", errno_name(errno));
		return 1;
	}
	char reply[256];
	ssize_t r = read_full(fd, reply, sizeof reply - 1);
	if (r < 0) {
		fprintf(stderr, "shutdownclient: read reply after SHUT_WR: errno=%s (%s)\n", errno_name(errno),
			strerror(errno));
		return 1;
	}
	reply[r] = 0;
	char hex[65], want[128];
	sha256_hex(&h, hex);
	snprintf(want, sizeof want, "%s %llu\n", hex, sent);
	printf("sent_sha256=%s sent=%llu\nreply=%s", hex, sent, reply);
	close(fd);
	if (strcmp(reply, want) != 0) {
		fprintf(stderr, "shutdownclient: reply does not match: want \"%s\"\n", want);
		return 1;
	}
	return 0;
}
