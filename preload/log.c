/* log.c: see log.h. */
#include "preload/log.h"
#include "preload/ownfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Set once by log_init() at load time (before any connection exists); read-only afterwards. */
static int log_level = LOG_WARN;
static bool log_format_json;
/* Where lines go: stderr as it was at load, or TLSSHIM_LOG_FILE. Set up by log_init (or, for a line
 * printed before it, by log_write); afterwards ownfd.c keeps it honest with atomics of its own. */
static struct ownfd log_sink;
static atomic_bool log_sink_ready;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void log_write(const char *buf, size_t len)
{
	/* Never into a TLS or other inet socket that took fd 2's number, never into the program's file
	 * that took TLSSHIM_LOG_FILE's number: ownfd checks the fd is still the sink first. */
	if (!atomic_load_explicit(&log_sink_ready, memory_order_acquire)) {
		ownfd_adopt(&log_sink, 2);
		atomic_store_explicit(&log_sink_ready, true, memory_order_release);
	}
	ownfd_write(&log_sink, buf, len);
}

void log_raw(const char *line, size_t len)
{
	log_write(line, len);
}

int log_init(void)
{
	int ret = 0;
	const char *lvl = secure_getenv("TLSSHIM_LOG");
	if (lvl && *lvl) {
		size_t i;
		for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
			if (strcasecmp(lvl, level_names[i]) == 0)
				break;
		if (i == sizeof(level_names) / sizeof(level_names[0])) {
			log_msg(LOG_ERROR,
				"TLSSHIM_LOG=%s is not a level; use error, warn, info or debug (using warn)",
				lvl);
			ret = -1;
		} else {
			log_level = (int)i;
		}
	}
	const char *fmt = secure_getenv("TLSSHIM_LOG_FORMAT");
	if (fmt && *fmt) {
		if (strcasecmp(fmt, "json") == 0) {
			log_format_json = true;
		} else if (strcasecmp(fmt, "text") != 0) {
			log_msg(LOG_ERROR,
				"TLSSHIM_LOG_FORMAT=%s is not a format; use text or json (using text)", fmt);
			ret = -1;
		}
	}
	ownfd_adopt(&log_sink, 2); /* stderr as it is at load: the fallback and the default */
	atomic_store_explicit(&log_sink_ready, true, memory_order_release);
	const char *path = secure_getenv("TLSSHIM_LOG_FILE");
	if (path && *path) {
		if (ownfd_open(&log_sink, path) != 0) {
			int e = errno;
			ownfd_adopt(&log_sink, 2);
			log_msg(LOG_ERROR, "TLSSHIM_LOG_FILE=%s: %s (logging to stderr)", path, strerror(e));
			ret = -1;
		}
	}
	return ret;
}

int log_enabled(enum log_level level)
{
	return (int)level <= log_level;
}

bool log_json(void)
{
	return log_format_json;
}

void log_json_escape(char *out, size_t out_len, const char *s)
{
	size_t o = 0;
	for (; s && *s && o + 7 < out_len; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, out_len - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o < out_len ? o : out_len - 1] = '\0';
}

/* "2026-11-23T13:14:15.123Z" */
static void timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void json_line(enum log_level level, const char *event, int fd, const char *dest,
		      const char *rule_source, unsigned rule_line, const char *fields, const char *msg)
{
	char ts[40], d[400], r[300], m[1200], line[2600];
	timestamp(ts, sizeof(ts));
	int n = snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"pid\":%d,\"level\":\"%s\"", ts, (int)getpid(),
			 level_names[level]);
	if (event)
		n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"event\":\"%s\"", event);
	if (fd >= 0)
		n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"fd\":%d", fd);
	if (dest) {
		log_json_escape(d, sizeof(d), dest);
		n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"destination\":\"%s\"", d);
	}
	if (rule_source) {
		log_json_escape(r, sizeof(r), rule_source);
		n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"rule\":\"%s:%u\"", r, rule_line);
	}
	if (fields && *fields)
		n += snprintf(line + n, sizeof(line) - (size_t)n, ",%s", fields);
	if (msg) {
		log_json_escape(m, sizeof(m), msg);
		n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"message\":\"%s\"", m);
	}
	if (n < 0 || (size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	line[n++] = '}';
	line[n++] = '\n';
	log_write(line, (size_t)n);
}

void log_event(enum log_level level, const char *event, int fd, const char *dest, const char *rule_source,
	       unsigned rule_line, const char *json_fields)
{
	if (!log_format_json || !log_enabled(level))
		return;
	int saved = errno;
	json_line(level, event, fd, dest, rule_source, rule_line, json_fields, NULL);
	errno = saved;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	int saved = errno;
	if (log_format_json) {
		char msg[1024];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		json_line(level, NULL, -1, NULL, NULL, 0, NULL, msg);
		errno = saved;
		return;
	}
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "tlsshim: ");
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';
	log_write(buf, len);
	errno = saved;
}
