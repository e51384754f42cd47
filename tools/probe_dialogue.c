/* probe_dialogue.c: the library's dialogue engine run by `tlsshim probe` (see probe_dialogue.h).
 * The engine reaches the outside world through two seams, both provided here for the CLI (in the
 * library they are preload/libc.c and preload/conn.c):
 *  - the `libc` table: send, recv, read and close. Here they are libc's own, with send and recv also
 *    printing what crossed (the transcript);
 *  - conn_queue_for_program (the greeting the program reads first once TLS is up) and
 *    conn_queue_for_tls (bytes after a proxy's reply that belong to the TLS stream): here the
 *    `struct conn *` the engine passes is a struct probe_sink. */
#include "tools/probe_dialogue.h"
#include "preload/dialogue.h"
#include "preload/dlg_parse.h"
#include "preload/libc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Where send/recv print the transcript: set by probe_dialogue_run for its duration, NULL otherwise.
 * The CLI is single-threaded; nothing else writes it. */
static FILE *transcript_out;

/* Prints one chunk: text line by line ("  C: EHLO ..."), anything else as its length and first bytes in
 * hex (PostgreSQL, LDAP and SOCKS5 are binary). */
static void print_chunk(const char *who, const uint8_t *b, size_t n)
{
	if (!transcript_out || n == 0)
		return;
	bool text = true;
	for (size_t i = 0; i < n && text; i++)
		text = (b[i] >= 0x20 && b[i] < 0x7f) || b[i] == '\r' || b[i] == '\n' || b[i] == '\t';
	if (!text) {
		fprintf(transcript_out, "  %s: (%zu bytes)", who, n);
		for (size_t i = 0; i < n && i < 32; i++)
			fprintf(transcript_out, " %02x", b[i]);
		fprintf(transcript_out, "%s\n", n > 32 ? " ..." : "");
		return;
	}
	for (size_t off = 0; off < n;) {
		const uint8_t *nl = memchr(b + off, '\n', n - off);
		size_t end = nl ? (size_t)(nl - b) : n, len = end - off;
		if (len > 0 && b[off + len - 1] == '\r')
			len--;
		char q[240];
		dlg_quote(b + off, len > 200 ? 200 : len, q, sizeof(q));
		fprintf(transcript_out, "  %s: %s%s\n", who, q, len > 200 ? "..." : "");
		off = nl ? end + 1 : n;
	}
}

static ssize_t probe_send(int fd, const void *buf, size_t len, int flags)
{
	ssize_t n = send(fd, buf, len, flags);
	if (n > 0)
		print_chunk("C", buf, (size_t)n);
	return n;
}

static ssize_t probe_recv(int fd, void *buf, size_t len, int flags)
{
	ssize_t n = recv(fd, buf, len, flags);
	if (n > 0 && !(flags & MSG_PEEK))
		print_chunk("S", buf, (size_t)n);
	else if (n > 0)
		print_chunk("S (waiting)", buf, (size_t)n);
	return n;
}

/* The engine's I/O in the CLI. Written once here (static initialisation), read-only afterwards. */
struct libc_fns libc = {.send = probe_send, .recv = probe_recv, .read = read, .close = close};

/* What the engine hands on (see the file comment). One per probe_dialogue_run, on its stack. */
struct probe_sink {
	uint8_t program[4096]; /* the greeting the program would read first */
	size_t program_len;
	size_t tls_len; /* bytes that belong to the TLS stream (the probe cannot feed them to wolfSSL) */
};

int conn_queue_for_program(struct conn *c, const void *buf, size_t len)
{
	struct probe_sink *s = (struct probe_sink *)c;
	size_t room = sizeof(s->program) - s->program_len;
	memcpy(s->program + s->program_len, buf, len < room ? len : room);
	s->program_len += len < room ? len : room;
	return 0;
}

int conn_queue_for_tls(struct conn *c, const void *buf, size_t len)
{
	(void)buf;
	((struct probe_sink *)c)->tls_len += len;
	return 0;
}

bool probe_dialogue_wanted(const struct policy_tls_opts *o)
{
	return o->starttls != POLICY_STARTTLS_NONE || o->proxy != POLICY_PROXY_NONE;
}

int probe_dialogue_first_hop(const struct policy_tls_opts *o, int family, const uint8_t *addr, uint16_t port,
			     int *hop_family, uint8_t hop_addr[16], uint16_t *hop_port, char *err,
			     size_t errlen)
{
	if (o->proxy == POLICY_PROXY_NONE) {
		*hop_family = family;
		memcpy(hop_addr, addr, family == AF_INET ? 4 : 16);
		*hop_port = port;
		return 0;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int e = getaddrinfo(o->proxy_host, NULL, &hints, &res);
	if (e != 0) {
		snprintf(err, errlen, "the proxy %s cannot be resolved: %s", o->proxy_host, gai_strerror(e));
		return -1;
	}
	const struct addrinfo *pick = res;
	for (const struct addrinfo *a = res; a; a = a->ai_next)
		if (a->ai_family == family) {
			pick = a;
			break;
		}
	*hop_family = pick->ai_family;
	if (pick->ai_family == AF_INET)
		memcpy(hop_addr, &((const struct sockaddr_in *)pick->ai_addr)->sin_addr, 4);
	else
		memcpy(hop_addr, &((const struct sockaddr_in6 *)pick->ai_addr)->sin6_addr, 16);
	*hop_port = o->proxy_port;
	freeaddrinfo(res);
	return 0;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

int probe_dialogue_run(const struct policy_tls_opts *o, const char *name, int family, const uint8_t *addr,
		       uint16_t port, int fd, unsigned timeout_ms, FILE *transcript, char *reason,
		       size_t reason_len)
{
	struct dialogue_target t = {.name = name, .family = family, .port = port};
	memcpy(t.addr, addr, family == AF_INET ? 4 : 16);
	struct dialogue *d = dialogue_new(o, &t, reason, reason_len);
	if (!d)
		return -1;
	struct probe_sink *sink = calloc(1, sizeof(*sink));
	if (!sink) {
		dialogue_free(d);
		snprintf(reason, reason_len, "out of memory");
		return -1;
	}
	transcript_out = transcript;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const char *shown = NULL; /* the stage whose title was printed last */
	int rc = -1;
	for (;;) {
		const char *stage = dialogue_stage(d);
		if (transcript && stage != shown && !dialogue_done(d)) {
			fprintf(transcript, "%s:\n", stage);
			shown = stage;
		}
		short want = 0;
		int r = dialogue_step(d, (struct conn *)sink, fd, &want);
		if (r == 0) {
			rc = 0;
			break;
		}
		if (r < 0) {
			snprintf(reason, reason_len, "%s", dialogue_reason(d));
			break;
		}
		long left = (long)timeout_ms - ms_since(&t0);
		struct pollfd p = {.fd = fd, .events = want};
		int n = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(reason, reason_len, "%s timed out after %u ms (handshake-timeout=)",
				 dialogue_stage(d), timeout_ms);
			break;
		}
	}
	if (rc == 0 && sink->tls_len) {
		snprintf(reason, reason_len,
			 "the proxy's tunnel sent %zu bytes before the TLS handshake (the library hands them "
			 "to TLS; the probe cannot)",
			 sink->tls_len);
		rc = -1;
	}
	if (rc == 0 && transcript && sink->program_len) {
		fprintf(transcript, "greeting the program reads first (inside TLS):\n");
		transcript_out = transcript;
		print_chunk("S", sink->program, sink->program_len);
	}
	transcript_out = NULL;
	free(sink);
	dialogue_free(d);
	return rc;
}
