/* nss_fgtest.c: an NSS hosts module for test_forkgate.sh that resolves names over TCP, as LDAP, SSSD-less
 * DNS-over-TCP or database-backed NSS modules do: it connect()s (through the PLT, so a preloaded shim sees
 * the call) to 127.0.0.1:$FGTEST_NSS_PORT, sends "NAME\n" and reads one line, an IPv4 address or "-"
 * (not found). Built by the test as libnss_fgtest.so.2 and found through LD_LIBRARY_PATH. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <nss.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int ask(const char *name, struct in_addr *out)
{
	const char *port = getenv("FGTEST_NSS_PORT");
	if (!port)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	char line[300], in[64];
	int len = snprintf(line, sizeof line, "%s\n", name);
	int ok = -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && write(fd, line, (size_t)len) == len) {
		ssize_t n = read(fd, in, sizeof in - 1);
		if (n > 0) {
			in[n] = '\0';
			in[strcspn(in, "\r\n")] = '\0';
			ok = inet_pton(AF_INET, in, out) == 1 ? 0 : -1;
		}
	}
	close(fd);
	return ok;
}

enum nss_status _nss_fgtest_gethostbyname4_r(const char *name, struct gaih_addrtuple **pat, char *buf,
					     size_t buflen, int *errnop, int *herrnop, int32_t *ttlp)
{
	struct in_addr a;
	size_t nlen = strlen(name) + 1;
	if (buflen < sizeof(struct gaih_addrtuple) + nlen) {
		*errnop = ERANGE;
		*herrnop = NETDB_INTERNAL;
		return NSS_STATUS_TRYAGAIN;
	}
	if (ask(name, &a) != 0) {
		*errnop = ENOENT;
		*herrnop = HOST_NOT_FOUND;
		return NSS_STATUS_NOTFOUND;
	}
	struct gaih_addrtuple *t = (struct gaih_addrtuple *)buf;
	char *n = buf + sizeof(*t);
	memcpy(n, name, nlen);
	memset(t, 0, sizeof(*t));
	t->name = n;
	t->family = AF_INET;
	memcpy(t->addr, &a, sizeof(a));
	*pat = t;
	if (ttlp)
		*ttlp = 0;
	return NSS_STATUS_SUCCESS;
}
