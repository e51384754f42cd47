/* clientlib.h: helpers shared by the test clients in tests/clients/ (header-only, static functions).
 * Errno names, a tiny SHA-256 (written from FIPS 180-4), the deterministic test stream, connect
 * helpers, and monotonic time. Kept free of any non-libc dependency. */
#ifndef TLSSHIM_TEST_CLIENTLIB_H
#define TLSSHIM_TEST_CLIENTLIB_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define UNUSED_OK __attribute__((unused))

UNUSED_OK static const char *errno_name(int e)
{
	switch (e) {
#define E(x) \
	case x: return #x
		E(EPERM); E(ENOENT); E(EINTR); E(EIO); E(EBADF); E(EAGAIN); E(ENOMEM); E(EACCES);
		E(EFAULT); E(EINVAL); E(EMFILE); E(EPIPE); E(ENOSYS); E(ENOTSOCK); E(EDESTADDRREQ);
		E(EMSGSIZE); E(EPROTOTYPE); E(ENOPROTOOPT); E(EPROTONOSUPPORT); E(EOPNOTSUPP);
		E(EAFNOSUPPORT); E(EADDRINUSE); E(EADDRNOTAVAIL); E(ENETDOWN); E(ENETUNREACH);
		E(ECONNABORTED); E(ECONNRESET); E(ENOBUFS); E(EISCONN); E(ENOTCONN); E(ETIMEDOUT);
		E(ECONNREFUSED); E(EHOSTUNREACH); E(EALREADY); E(EINPROGRESS); E(EPROTO); E(EBADMSG);
		E(ECANCELED); E(EKEYREJECTED); E(ESHUTDOWN); E(ENODATA); E(ESPIPE); E(EXDEV);
#undef E
	default: {
		static __thread char unknown[32];
		snprintf(unknown, sizeof unknown, "E_UNKNOWN_%d", e);
		return unknown;
	}
	}
}

UNUSED_OK static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- SHA-256 ---- */
struct sha256 {
	uint32_t h[8];
	uint8_t buf[64];
	size_t used;
	uint64_t total;
};

static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror32(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

UNUSED_OK static void sha256_init(struct sha256 *s)
{
	static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
				       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	memcpy(s->h, iv, sizeof iv);
	s->used = 0;
	s->total = 0;
}

static void sha256_block(struct sha256 *s, const uint8_t *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, h;
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
		       p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3];
	e = s->h[4]; f = s->h[5]; g = s->h[6]; h = s->h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = h + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) +
			      sha256_k[i] + w[i];
		uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		h = g; g = f; f = e; e = d + t1;
		d = c; c = b; b = a; a = t1 + t2;
	}
	s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
	s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

UNUSED_OK static void sha256_update(struct sha256 *s, const void *data, size_t n)
{
	const uint8_t *p = data;
	s->total += n;
	while (n > 0) {
		size_t take = 64 - s->used;
		if (take > n)
			take = n;
		memcpy(s->buf + s->used, p, take);
		s->used += take;
		p += take;
		n -= take;
		if (s->used == 64) {
			sha256_block(s, s->buf);
			s->used = 0;
		}
	}
}

UNUSED_OK static void sha256_final(struct sha256 *s, uint8_t out[32])
{
	uint64_t bits = s->total * 8;
	uint8_t pad = 0x80, zero = 0, len[8];
	sha256_update(s, &pad, 1);
	while (s->used != 56)
		sha256_update(s, &zero, 1);
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)(bits >> (56 - 8 * i));
	sha256_update(s, len, 8);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(s->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)s->h[i];
	}
}

UNUSED_OK static void sha256_hex(struct sha256 *s, char hex[65])
{
	uint8_t d[32];
	sha256_final(s, d);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* ---- the deterministic stream: block i is SHA-256("tlsshim-<i>") (same as servers.py det_bytes) */
struct detstream {
	uint64_t pos;
	uint8_t block[32];
	uint64_t block_no; /* which block is in `block`, UINT64_MAX for none */
};

UNUSED_OK static void det_init(struct detstream *d)
{
	d->pos = 0;
	d->block_no = UINT64_MAX;
}

/* Fills out[0..n) with stream bytes starting at d->pos and advances. */
UNUSED_OK static void det_next(struct detstream *d, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t b = d->pos / 32;
		if (b != d->block_no) {
			char msg[40];
			struct sha256 s;
			int len = snprintf(msg, sizeof msg, "tlsshim-%llu", (unsigned long long)b);
			sha256_init(&s);
			sha256_update(&s, msg, (size_t)len);
			sha256_final(&s, d->block);
			d->block_no = b;
		}
		out[i] = d->block[d->pos % 32];
		d->pos++;
	}
}

/* ---- connecting ---- */
/* addr_text: "ADDR port P" for a sockaddr (for messages). */
UNUSED_OK static const char *addr_text(const struct sockaddr *sa, char *buf, size_t n)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
		port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
		port = ntohs(s6->sin6_port);
	}
	snprintf(buf, n, "%s port %u", host, port);
	return buf;
}

/* seen_before: ai's address equals one earlier in the list. glibc returns 127.0.0.1 twice for an AF_INET
 * lookup of localhost when /etc/hosts also maps ::1 to it (a stock Debian does): it is tried once. */
UNUSED_OK static int seen_before(const struct addrinfo *list, const struct addrinfo *ai)
{
	for (const struct addrinfo *p = list; p != ai; p = p->ai_next)
		if (p->ai_addrlen == ai->ai_addrlen && memcmp(p->ai_addr, ai->ai_addr, ai->ai_addrlen) == 0)
			return 1;
	return 0;
}

/* Resolves host/port with getaddrinfo (family AF_UNSPEC/AF_INET/AF_INET6) and tries every distinct
 * address in the order getaddrinfo returns them, as real clients do (a stock Debian maps localhost to
 * ::1 and 127.0.0.1), until one connects. An address that fails while another is left is reported on
 * stderr as "connect_host: ADDR port P failed (ENAME), trying the next address". Returns the connected
 * fd, or -1 with errno set to the last address's error; *stage tells where it failed. */
UNUSED_OK static int connect_host(const char *host, const char *port, int family, const char **stage)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		*stage = "getaddrinfo";
		fprintf(stderr, "getaddrinfo(%s, %s): %s\n", host, port, gai_strerror(rc));
		errno = EADDRNOTAVAIL;
		return -1;
	}
	int fd = -1, e = EADDRNOTAVAIL;
	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		if (seen_before(res, ai))
			continue;
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0) {
			*stage = "socket";
			e = errno;
		} else {
			*stage = "connect";
			if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
				break;
			e = errno;
			close(fd);
			fd = -1;
		}
		if (ai->ai_next != NULL) {
			char where[80];
			fprintf(stderr, "connect_host: %s failed (%s), trying the next address\n",
				addr_text(ai->ai_addr, where, sizeof where), errno_name(e));
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		errno = e;
	return fd;
}

/* Reads exactly n bytes (blocking fd). Returns n, or the short count at EOF, or -1 on error. */
UNUSED_OK static ssize_t read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

UNUSED_OK static int write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, (const char *)buf + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

#endif
