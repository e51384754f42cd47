/* cli_dest.c: a HOST:PORT destination as the library would see it: parsing the argument, resolving a
 * name the way a program would (getaddrinfo), the rule policy_match picks for each address, and the
 * verify name and SNI the library would use (the same choice as preload/connect.c connect_tls()). */
#include "preload/peer.h"
#include "tools/cli.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int cli_parse_dest(const char *arg, struct cli_dest *d, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	const char *host = arg, *port;
	size_t hlen;
	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errlen, "'%s': expected [IPv6]:PORT, e.g. [::1]:443", arg);
			return -1;
		}
		host = arg + 1;
		hlen = (size_t)(close - host);
		port = close + 2;
	} else {
		const char *colon = strrchr(arg, ':');
		if (!colon) {
			snprintf(err, errlen, "'%s': expected HOST:PORT, e.g. example.com:443", arg);
			return -1;
		}
		if (memchr(arg, ':', (size_t)(colon - arg))) {
			snprintf(err, errlen, "'%s': IPv6 addresses go in brackets, e.g. [::1]:443", arg);
			return -1;
		}
		hlen = (size_t)(colon - arg);
		port = colon + 1;
	}
	if (hlen == 0 || hlen >= sizeof(d->host)) {
		snprintf(err, errlen, "'%s': missing or overlong host", arg);
		return -1;
	}
	char *end;
	unsigned long p = strtoul(port, &end, 10);
	if (!*port || *end || p == 0 || p > 65535 || port[0] < '0' || port[0] > '9') {
		snprintf(err, errlen, "'%s': the port must be a number from 1 to 65535", arg);
		return -1;
	}
	memcpy(d->host, host, hlen);
	d->host[hlen] = '\0';
	d->port = (uint16_t)p;
	uint8_t tmp[16];
	if (arg[0] == '[' && inet_pton(AF_INET6, d->host, tmp) != 1) {
		snprintf(err, errlen, "'%s': '%s' is not an IPv6 address", arg, d->host);
		return -1;
	}
	d->host_is_name = !cli_is_ip_literal(d->host);
	if (d->host_is_name && !policy_valid_hostname(d->host)) {
		snprintf(err, errlen, "'%s': '%s' is neither a host name nor an address", arg, d->host);
		return -1;
	}
	return 0;
}

static void add_addr(struct cli_dest *d, int family, const void *a)
{
	size_t n = family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < d->n_addrs; i++)
		if (d->family[i] == family && memcmp(d->addr[i], a, n) == 0)
			return;
	if (d->n_addrs >= CLI_MAX_ADDRS)
		return;
	d->family[d->n_addrs] = family;
	memcpy(d->addr[d->n_addrs], a, n);
	inet_ntop(family, a, d->addr_text[d->n_addrs], sizeof(d->addr_text[0]));
	d->n_addrs++;
}

int cli_resolve_dest(struct cli_dest *d, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res = NULL;
	if (!d->host_is_name)
		hints.ai_flags = AI_NUMERICHOST;
	d->n_addrs = 0;
	int r = getaddrinfo(d->host, NULL, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", d->host, gai_strerror(r));
		return -1;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET)
			add_addr(d, AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr);
		else if (ai->ai_family == AF_INET6) {
			const struct in6_addr *a6 = &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
			if (IN6_IS_ADDR_V4MAPPED(a6))
				add_addr(d, AF_INET, (const uint8_t *)a6 + 12);
			else
				add_addr(d, AF_INET6, a6);
		}
	}
	freeaddrinfo(res);
	if (d->n_addrs == 0) {
		snprintf(err, errlen, "%s has no IPv4 or IPv6 address", d->host);
		return -1;
	}
	return 0;
}

/* The library's question for NAME rules: does the rule's name resolve to this address? */
static bool name_has_addr(void *ctx, const char *name, int family, const uint8_t *addr)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res = NULL;
	bool found = false;
	if (getaddrinfo(name, NULL, &hints, &res) != 0)
		return false;
	for (struct addrinfo *ai = res; ai && !found; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET && family == AF_INET)
			found = memcmp(&((struct sockaddr_in *)ai->ai_addr)->sin_addr, addr, 4) == 0;
		else if (ai->ai_family == AF_INET6) {
			const uint8_t *a6 = (const uint8_t *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
			if (family == AF_INET6)
				found = memcmp(a6, addr, 16) == 0;
			else
				found = IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a6) &&
					memcmp(a6 + 12, addr, 4) == 0;
		}
	}
	freeaddrinfo(res);
	return found;
}

const struct policy_rule *cli_match(const struct policy *p, const struct cli_dest *d, size_t i)
{
	struct policy_dest pd = {.port = d->port, .name = d->host_is_name ? d->host : NULL};
	if (i < d->n_addrs) {
		pd.family = d->family[i];
		pd.addr = d->addr[i];
	}
	return policy_match(p, &pd, name_has_addr, NULL);
}

void cli_peer_for(const struct policy_rule *r, const char *remembered, int family, const uint8_t *addr,
		  struct cli_peer *out)
{
	struct peer_id p;
	peer_for_rule(r, remembered, family, addr, &p); /* the library's own choice (preload/peer.c) */
	memset(out, 0, sizeof(*out));
	out->name = p.name;
	out->family = p.family;
	memcpy(out->addr, p.addr, sizeof(out->addr));
	out->sni = p.sni;
	out->why_name = p.why_name;
	if (!out->name && (out->family == AF_INET || out->family == AF_INET6))
		inet_ntop(out->family, out->addr, out->addr_text, sizeof(out->addr_text));
}
