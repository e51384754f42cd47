/* cli.c: small helpers every subcommand uses: messages and usage errors, finding the library beside
 * the command, base64 for pins, and recognising address literals. */
#include "tools/cli.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("tlsshim: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tlsshim %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'tlsshim %s --help'.\n", cmd);
	return CLI_USAGE;
}

static bool readable_file(const char *path)
{
	return access(path, R_OK) == 0;
}

int cli_find_library(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		snprintf(buf, len, "(cannot read /proc/self/exe to find the command's directory)");
		return -1;
	}
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash) {
		snprintf(buf, len, "(the command's path %s has no directory)", exe);
		return -1;
	}
	*slash = '\0';
	/* The build tree, `make install`'s layout, and the Debian package's multiarch directory. */
	static const char *const places[] = {"/libtlsshim.so", "/../lib/tlsshim/libtlsshim.so",
					     "/../lib/" TLSSHIM_MULTIARCH "/tlsshim/libtlsshim.so"};
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		char path[PATH_MAX + 64], real[PATH_MAX];
		snprintf(path, sizeof(path), "%s%s", exe, places[i]);
		if (readable_file(path)) {
			snprintf(buf, len, "%s", i == 0 ? path : realpath(path, real) ? real : path);
			return 0;
		}
		if (used < len) {
			int w = snprintf(buf + used, len - used, "%s%s", i ? " or " : "", path);
			used += w > 0 ? (size_t)w : 0;
		}
	}
	return -1;
}

void cli_base64(const uint8_t *in, size_t n, char *out)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned long v = (unsigned long)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned long)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = abc[(v >> 18) & 63];
		out[o++] = abc[(v >> 12) & 63];
		out[o++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? abc[v & 63] : '=';
	}
	out[o] = '\0';
}

bool cli_is_ip_literal(const char *s)
{
	uint8_t buf[16];
	return s && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

bool cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}
