/* fakeres.so: a counting resolver for test_hostile.sh, preloaded AFTER the shim
 * (LD_PRELOAD=libtlsshim.so:fakeres.so), so the shim's own getaddrinfo calls (dlsym RTLD_NEXT) land here.
 * Names ending in ".fake-matrix.invalid" are answered at once with EAI_NONAME and counted, without any
 * network traffic; everything else goes on to libc. At exit it prints "fakeres: lookups=N" to stderr. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static atomic_ulong lookups;
static const char suffix[] = ".fake-matrix.invalid";

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	if (node) {
		size_t n = strlen(node), s = sizeof(suffix) - 1;
		if (n > s && strcasecmp(node + n - s, suffix) == 0) {
			atomic_fetch_add(&lookups, 1);
			return EAI_NONAME;
		}
	}
	int (*next)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
		(int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))dlsym(RTLD_NEXT,
													 "getaddrinfo");
	return next ? next(node, service, hints, res) : EAI_SYSTEM;
}

__attribute__((destructor)) static void report(void)
{
	char buf[64];
	int k = snprintf(buf, sizeof buf, "fakeres: lookups=%lu\n", (unsigned long)atomic_load(&lookups));
	if (k > 0 && write(2, buf, (size_t)k) < 0)
		return;
}
