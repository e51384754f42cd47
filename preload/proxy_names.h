/* proxy_names.h: the addresses of proxy= host names, looked up with no lock held and cached for
 * PROXY_NAMES_TTL_S seconds (as a rule's own host names are), so a program that connects often does not
 * ask DNS for its proxy on every connect. Failures are not cached: the next connect asks again. */
#ifndef TLSSHIM_PROXY_NAMES_H
#define TLSSHIM_PROXY_NAMES_H

#include <stddef.h>
#include <stdint.h>

#define PROXY_NAMES_ADDRS 8  /* addresses kept per name (the first ones getaddrinfo returns) */
#define PROXY_NAMES_TTL_S 30 /* seconds an answer is reused */

struct proxy_addrs {
	int n;
	int family[PROXY_NAMES_ADDRS]; /* AF_INET or AF_INET6 */
	uint8_t addr[PROXY_NAMES_ADDRS][16];
};

/* The addresses of host (a name or an address literal), from the cache or from getaddrinfo. 0, or -1
 * with err ("cannot resolve the proxy NAME: ..."). Safe from any thread; never holds a lock across the
 * lookup. */
int proxy_names_lookup(const char *host, struct proxy_addrs *out, char *err, size_t errlen);

#endif
