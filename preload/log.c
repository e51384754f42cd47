/* log.c: see log.h. */
#include "preload/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/syscall.h>

/* Set once by log_init() at load time (before any connection exists); read-only afterwards. */
static int log_level = LOG_WARN;
static int log_fd = 2;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void log_write(const char *buf, size_t len)
{
	/* The raw syscall: the shim's own write() hook must never see its log lines. */
	while (len > 0) {
		long n = syscall(SYS_write, log_fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
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
			log_msg(LOG_ERROR, "TLSSHIM_LOG=%s is not a level; use error, warn, info or debug (using warn)",
				lvl);
			ret = -1;
		} else {
			log_level = (int)i;
		}
	}
	const char *path = secure_getenv("TLSSHIM_LOG_FILE");
	if (path && *path) {
		int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			log_msg(LOG_ERROR, "TLSSHIM_LOG_FILE=%s: %s (logging to stderr)", path, strerror(errno));
			ret = -1;
		} else {
			log_fd = fd;
		}
	}
	return ret;
}

int log_enabled(enum log_level level)
{
	return (int)level <= log_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	int saved = errno;
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
