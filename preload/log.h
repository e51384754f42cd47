/* log.h: one-line messages for people. Every line starts "tlsshim: " and is written with a single
 * write(2) so lines from threads and processes never interleave. Configured once from the environment
 * (TLSSHIM_LOG, TLSSHIM_LOG_FILE); never allocates, never calls a hooked function. */
#ifndef TLSSHIM_LOG_H
#define TLSSHIM_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Reads TLSSHIM_LOG and TLSSHIM_LOG_FILE. Returns 0, or -1 with a message already printed to stderr
 * (a bad level name; an unopenable file: messages then go to stderr). */
int log_init(void);

/* True when messages of this level are printed. */
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
