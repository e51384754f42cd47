/* partialwrite HOST PORT BYTES: full-duplex transfer on a NON-BLOCKING socket to an ECHO server.
 * Writes BYTES of the deterministic stream in large chunks (short writes and EAGAIN handled with
 * poll), reads the echo at the same time and checks every byte against what was sent, then
 * shutdown(SHUT_WR) and reads to EOF. To make sure short writes / EAGAIN really happen, the send
 * buffer is made small and nothing is read until the first write comes back short or EAGAIN
 * ("fill" phase: the echo server then stalls on its own full send buffer). Prints
 *   sent=N sent_sha256=HEX recv=N recv_sha256=HEX short_writes=N eagain_writes=N eagain_reads=N
 * Exit 0 only if all bytes came back identical and EOF followed. Bounded: 240 s wall clock. */
#include "../integration/clientlib.h"

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: partialwrite HOST PORT BYTES\n");
		return 2;
	}
	unsigned long long total = strtoull(argv[3], NULL, 10);
	const char *stage = "connect";
	int fd = connect_host(argv[1], argv[2], AF_UNSPEC, &stage);
	if (fd < 0) {
		fprintf(stderr, "partialwrite: %s: errno=%s (%s)\n", stage, errno_name(errno), strerror(errno));
		return 1;
	}
	int small = 65536;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
		perror("fcntl");
		return 1;
	}
	enum { CHUNK = 1 << 20 };
	uint8_t *out = malloc(CHUNK), *in = malloc(CHUNK), *expect = malloc(CHUNK);
	struct detstream wr, chk;
	det_init(&wr);
	det_init(&chk);
	struct sha256 hs, hr;
	sha256_init(&hs);
	sha256_init(&hr);
	unsigned long long sent = 0, recvd = 0, short_w = 0, again_w = 0, again_r = 0;
	size_t out_len = 0, out_off = 0;
	int wr_closed = 0, eof = 0, filling = 1;
	long long deadline = now_ms() + 240000;
	while (!eof) {
		if (now_ms() > deadline) {
			fprintf(stderr, "partialwrite: timed out: sent=%llu recv=%llu\n", sent, recvd);
			return 1;
		}
		if (out_off == out_len && sent < total) {
			out_len = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
			det_next(&wr, out, out_len);
			out_off = 0;
		}
		if (out_off == out_len && sent == total && !wr_closed) {
			if (shutdown(fd, SHUT_WR) != 0) {
				fprintf(stderr, "partialwrite: shutdown: errno=%s\n", errno_name(errno));
				return 1;
			}
			wr_closed = 1;
		}
		if (filling && (sent == total || short_w + again_w > 0))
			filling = 0;
		struct pollfd p = {.fd = fd, .events = (filling ? 0 : POLLIN) | (out_off < out_len ? POLLOUT : 0)};
		int pr = poll(&p, 1, 20000);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			fprintf(stderr, "partialwrite: poll %s: sent=%llu recv=%llu\n", pr ? errno_name(errno) : "timeout",
				sent, recvd);
			return 1;
		}
		if (out_off < out_len && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(fd, out + out_off, out_len - out_off);
			if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				again_w++;
			} else if (w < 0 && errno != EINTR) {
				fprintf(stderr, "partialwrite: write after %llu bytes: errno=%s (%s)\n", sent,
					errno_name(errno), strerror(errno));
				return 1;
			} else if (w > 0) {
				if ((size_t)w < out_len - out_off)
					short_w++;
				sha256_update(&hs, out + out_off, (size_t)w);
				out_off += (size_t)w;
				sent += (unsigned long long)w;
			}
		}
		if (!filling && (p.revents & (POLLIN | POLLERR | POLLHUP))) {
			for (int k = 0; k < 64; k++) { /* drain what is there, bounded */
				ssize_t r = read(fd, in, CHUNK);
				if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
					again_r++;
					break;
				}
				if (r < 0 && errno == EINTR)
					continue;
				if (r < 0) {
					fprintf(stderr, "partialwrite: read after %llu bytes: errno=%s (%s)\n", recvd,
						errno_name(errno), strerror(errno));
					return 1;
				}
				if (r == 0) {
					eof = 1;
					break;
				}
				det_next(&chk, expect, (size_t)r);
				if (memcmp(expect, in, (size_t)r) != 0) {
					fprintf(stderr, "partialwrite: echoed data differs in bytes %llu..%llu\n", recvd,
						recvd + (unsigned long long)r);
					return 1;
				}
				sha256_update(&hr, in, (size_t)r);
				recvd += (unsigned long long)r;
			}
		}
	}
	char hx1[65], hx2[65];
	sha256_hex(&hs, hx1);
	sha256_hex(&hr, hx2);
	printf("sent=%llu sent_sha256=%s recv=%llu recv_sha256=%s short_writes=%llu eagain_writes=%llu "
	       "eagain_reads=%llu\n",
	       sent, hx1, recvd, hx2, short_w, again_w, again_r);
	close(fd);
	free(out);
	free(in);
	free(expect);
	if (sent != total || recvd != total || strcmp(hx1, hx2) != 0) {
		fprintf(stderr, "partialwrite: byte count or hash mismatch (want %llu each way)\n", total);
		return 1;
	}
	return 0;
}
