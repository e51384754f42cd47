/* log.h: one-line messages for people. Every line starts "tlsshim: " and is written with a single
 * write(2) so lines from threads and processes never interleave. Configured once from the environment
 * (TLSSHIM_LOG, TLSSHIM_LOG_FILE, TLSSHIM_LOG_FORMAT); never allocates, never calls a hooked function. */
#ifndef TLSSHIM_LOG_H
#define TLSSHIM_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Reads TLSSHIM_LOG and TLSSHIM_LOG_FILE. Returns 0, or -1 with a message already printed to stderr
 * (a bad level name; an unopenable file: messages then go to stderr). */
int log_init(void);

/* True when messages of this level are printed. */
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when TLSSHIM_LOG_FORMAT=json: one JSON object per line, with a timestamp and the pid. */
bool log_json(void);

/* A connection event (connect, handshake, verify-failed, handshake-failed, close) for JSON logs:
 * json_fields are extra members already rendered ("\"version\":\"TLSv1.3\",..."), may be "".
 * Printed only in JSON mode and when `level` is enabled; text mode has its own lines. */
void log_event(enum log_level level, const char *event, int fd, const char *dest, const char *rule_source,
	       unsigned rule_line, const char *json_fields);

/* Writes a preformatted line as it is (to the log destination, one write). */
void log_raw(const char *line, size_t len);

/* Writes s as a JSON string body (no quotes) into out; always NUL-terminates. */
void log_json_escape(char *out, size_t out_len, const char *s);

#endif
