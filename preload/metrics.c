/* SPDX-License-Identifier: GPL-2.0-or-later */
/* metrics.c: see metrics.h. The text is written through a small buffer straight to the temporary file
 * with the real write(2) (never our hook), then renamed over the file, so a scraper sees the old file or
 * the new one, never half of one. */
#include "preload/metrics.h"
#include "preload/child.h"
#include "preload/conn.h"
#include "preload/libc.h"
#include "preload/log.h"
#include "preload/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define METRICS_PATH_MAX   1024
#define METRICS_INTERVAL_S 10

/* metrics_on and path_template are set once by metrics_init (inside the library's pthread_once) and
 * cleared only by the fork child handler (single-threaded then). last_write_s (monotonic seconds of the
 * last write, 0 = none yet) and writing (one writer at a time; others skip) are atomics any thread
 * updates; written_once records that a file exists. */
static bool metrics_on;
static char path_template[METRICS_PATH_MAX];
static _Atomic long long last_write_s;
static atomic_flag writing = ATOMIC_FLAG_INIT;
static _Atomic bool written_once;
static long long start_time_s; /* wall clock at load (or fork), for tlsshim_process_start_time_seconds */

static const char *const counter_names[STATS_N] = {
    "tlsshim_connections_total", "tlsshim_handshakes_total",	 "tlsshim_resumptions_total",
    "tlsshim_failures_total",	 "tlsshim_received_bytes_total", "tlsshim_sent_bytes_total"};
static const char *const counter_help[STATS_N] = {
    "TLS connections started, by direction and policy rule.",
    "TLS handshakes completed and verified.",
    "Handshakes that resumed a cached session.",
    "TLS connections that failed (TCP connect, handshake, verification, timeout, setup), by reason.",
    "Application bytes received (decrypted), counted when a connection ends.",
    "Application bytes sent (before encryption), counted when a connection ends."};
static const char *const reason_names[STATS_REASONS] = {"tcp", "timeout", "verify", "handshake", "setup"};
static const char *const direction_names[STATS_DIRECTIONS] = {"outbound", "inbound"};

static long long now_s(int clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (long long)ts.tv_sec;
}

bool metrics_init(void)
{
	const char *v = secure_getenv("TLSSHIM_METRICS_FILE");
	if (!v || !*v)
		return false;
	size_t n = strlen(v);
	if (n >= METRICS_PATH_MAX - 32 || n < 6 || strcmp(v + n - 5, ".prom") != 0) {
		log_msg(
		    LOG_ERROR,
		    "TLSSHIM_METRICS_FILE=%s: the name must end in .prom (node_exporter's textfile collector "
		    "reads only those) and be shorter than %d bytes; no metrics are written",
		    v, METRICS_PATH_MAX - 32);
		return false;
	}
	memcpy(path_template, v, n + 1);
	start_time_s = now_s(CLOCK_REALTIME);
	metrics_on = true;
	return true;
}

/* PATH with %p replaced by the pid (%% is a '%'). */
static void expand_path(char *out, size_t len)
{
	size_t o = 0;
	for (const char *p = path_template; *p && o + 24 < len; p++) {
		if (p[0] == '%' && p[1] == 'p') {
			o += (size_t)snprintf(out + o, len - o, "%d", (int)getpid());
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			out[o++] = '%';
			p++;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

struct out {
	int fd;
	bool failed;
	size_t n;
	char buf[8192];
};

static void out_flush(struct out *o)
{
	for (size_t off = 0; off < o->n && !o->failed;) {
		ssize_t w = libc.write(o->fd, o->buf + off, o->n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			o->failed = true;
		else
			off += (size_t)w;
	}
	o->n = 0;
}

__attribute__((format(printf, 2, 3))) static void out_printf(struct out *o, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (o->n + (size_t)n > sizeof(o->buf))
		out_flush(o);
	memcpy(o->buf + o->n, line, (size_t)n);
	o->n += (size_t)n;
}

/* A label value: backslash, double quote and newline escaped, as the text format wants. */
static void label_escape(const char *in, char *out, size_t len)
{
	size_t o = 0;
	for (; *in && o + 3 < len; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

static void rule_label(const struct policy_rule *r, char *out, size_t len)
{
	if (!r) {
		snprintf(out, len, "none");
		return;
	}
	char where[METRICS_PATH_MAX + 16];
	snprintf(where, sizeof(where), "%s:%u", r->source, r->line);
	label_escape(where, out, len);
}

struct emit_ctx {
	struct out *o;
	int counter;
};

static void emit_counter_row(const struct stats_row *row, void *arg)
{
	struct emit_ctx *c = arg;
	char rule[METRICS_PATH_MAX * 2];
	rule_label(row->rule, rule, sizeof(rule));
	if (c->counter != STATS_FAILURES) {
		out_printf(c->o, "%s{direction=\"%s\",rule=\"%s\"} %llu\n", counter_names[c->counter],
			   direction_names[row->dir], rule, row->v[c->counter]);
		return;
	}
	for (int i = 0; i < STATS_REASONS; i++)
		if (row->reasons[i] ||
		    i == STATS_REASON_HANDSHAKE) /* one series always, the rest when seen */
			out_printf(c->o, "%s{direction=\"%s\",rule=\"%s\",reason=\"%s\"} %llu\n",
				   counter_names[STATS_FAILURES], direction_names[row->dir], rule,
				   reason_names[i], row->reasons[i]);
}

static void write_file(void)
{
	char path[METRICS_PATH_MAX + 64], tmp[METRICS_PATH_MAX + 96];
	expand_path(path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		static atomic_flag warned = ATOMIC_FLAG_INIT;
		if (!atomic_flag_test_and_set(&warned))
			log_msg(LOG_WARN,
				"TLSSHIM_METRICS_FILE: cannot create %s: %s; metrics are not written", tmp,
				strerror(errno));
		return;
	}
	struct out *o = malloc(sizeof(*o));
	if (!o) {
		libc.close(fd);
		unlink(tmp);
		return;
	}
	o->fd = fd;
	o->failed = false;
	o->n = 0;
	conn_publish_all_bytes(); /* live connections' traffic so far, not only at their close */
	out_printf(o,
		   "# HELP tlsshim_process_start_time_seconds When the shim was loaded into this process.\n");
	out_printf(o, "# TYPE tlsshim_process_start_time_seconds gauge\n");
	out_printf(o, "tlsshim_process_start_time_seconds{pid=\"%d\"} %lld\n", (int)getpid(), start_time_s);
	for (int i = 0; i < STATS_N; i++) {
		out_printf(o, "# HELP %s %s\n# TYPE %s counter\n", counter_names[i], counter_help[i],
			   counter_names[i]);
		struct emit_ctx c = {.o = o, .counter = i};
		stats_foreach(emit_counter_row, &c);
	}
	out_flush(o);
	bool ok = !o->failed;
	free(o);
	ok = libc.close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return;
	}
	atomic_store(&written_once, true);
}

static void write_once_guarded(void)
{
	if (atomic_flag_test_and_set(&writing))
		return; /* another thread is writing this very moment */
	int saved = errno;
	write_file();
	errno = saved;
	atomic_flag_clear(&writing);
}

void metrics_tick(void)
{
	if (!metrics_on)
		return;
	long long now = now_s(CLOCK_MONOTONIC_COARSE);
	long long last = atomic_load_explicit(&last_write_s, memory_order_relaxed);
	if (last != 0 && now - last < METRICS_INTERVAL_S)
		return;
	if (!atomic_compare_exchange_strong(&last_write_s, &last, now ? now : 1))
		return; /* another thread took this turn */
	if (child_shares_parent_memory())
		return; /* vfork: the parent's connections and file are not the child's to write */
	write_once_guarded();
}

void metrics_after_fork_child(void)
{
	if (!metrics_on)
		return;
	atomic_store(&last_write_s, 0);
	atomic_store(&written_once, false);
	atomic_flag_clear(&writing);
	start_time_s = now_s(CLOCK_REALTIME);
	if (!strstr(path_template, "%p"))
		metrics_on = false;
}

void metrics_at_exit(void)
{
	if (metrics_on && (stats_any() || atomic_load(&written_once)))
		write_once_guarded();
}
