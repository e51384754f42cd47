/* proxy_names.c: the proxy= host name cache (see proxy_names.h). */
#include "preload/proxy_names.h"
#include "preload/forkgate.h"
#include "preload/libc.h"
#include "preload/log.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PROXY_NAMES_SLOTS 32 /* distinct proxy hosts of a policy; beyond that the oldest is replaced */

struct proxy_name {
	char host[256]; /* "": empty slot */
	time_t expires; /* CLOCK_MONOTONIC seconds */
	struct proxy_addrs addrs;
};

/* The cache. Written and read by proxy_names_lookup from any thread, under cache_lock, which is held
 * only to copy one entry in or out (never across the lookup or any other call that can block), inside
 * the fork gate (forkgate.h), so a child never inherits it locked. */
static struct proxy_name cache[PROXY_NAMES_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static time_t now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

static int lookup(const char *host, struct proxy_addrs *out, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res = NULL;
	int rc = libc.getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve the proxy %s: %s", host, gai_strerror(rc));
		return -1;
	}
	out->n = 0;
	for (const struct addrinfo *ai = res; ai && out->n < PROXY_NAMES_ADDRS; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			out->family[out->n] = AF_INET;
			memcpy(out->addr[out->n++], &((const struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
		} else if (ai->ai_family == AF_INET6) {
			out->family[out->n] = AF_INET6;
			memcpy(out->addr[out->n++], &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
			       16);
		}
	}
	freeaddrinfo(res);
	if (out->n == 0) {
		snprintf(err, errlen, "cannot resolve the proxy %s: no IPv4 or IPv6 address", host);
		return -1;
	}
	return 0;
}

int proxy_names_lookup(const char *host, struct proxy_addrs *out, char *err, size_t errlen)
{
	time_t now = now_s();
	bool hit = false;
	forkgate_lock(&cache_lock);
	for (size_t i = 0; i < PROXY_NAMES_SLOTS && !hit; i++)
		if (cache[i].host[0] && cache[i].expires > now && strcasecmp(cache[i].host, host) == 0) {
			*out = cache[i].addrs;
			hit = true;
		}
	forkgate_unlock(&cache_lock);
	if (hit)
		return 0;
	if (lookup(host, out, err, errlen) != 0) /* no lock held */
		return -1;
	if (log_enabled(LOG_DEBUG)) {
		char a[INET6_ADDRSTRLEN] = "?";
		inet_ntop(out->family[0], out->addr[0], a, sizeof(a));
		log_msg(LOG_DEBUG, "proxy %s resolved: %s%s (kept %d s)", host, a,
			out->n > 1 ? " and more" : "", PROXY_NAMES_TTL_S);
	}
	if (strlen(host) >= sizeof(cache[0].host))
		return 0; /* not kept (a valid host name is at most 253 bytes) */
	forkgate_lock(&cache_lock);
	size_t slot = 0; /* the same name (another thread's answer), else an empty or the oldest slot */
	for (size_t i = 0; i < PROXY_NAMES_SLOTS; i++) {
		if (strcasecmp(cache[i].host, host) == 0) {
			slot = i;
			break;
		}
		if (!cache[i].host[0] || cache[i].expires < cache[slot].expires)
			slot = i;
	}
	snprintf(cache[slot].host, sizeof(cache[slot].host), "%s", host);
	cache[slot].expires = now + PROXY_NAMES_TTL_S;
	cache[slot].addrs = *out;
	forkgate_unlock(&cache_lock);
	return 0;
}
