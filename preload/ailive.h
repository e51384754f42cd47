/* ailive.h: the getaddrinfo results for a host name that the program still holds (not yet given to
 * freeaddrinfo), so that connect can tell which name an address came from when several names share it:
 * a connect whose sockaddr pointer is the ai_addr of such a result was made from that lookup. Bounded
 * (AILIVE_LISTS lists, the oldest dropped when full; AILIVE_ADDRS addresses of each); one mutex held for
 * memory operations only, taken by fork handlers so a child never inherits it locked. */
#ifndef TLSSHIM_AILIVE_H
#define TLSSHIM_AILIVE_H

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define AILIVE_LISTS 256
#define AILIVE_ADDRS 16

/* Records res (the answer for host name node) until freeaddrinfo(res). Recording the same list twice
 * (gai_error asked again) keeps one record. */
void ailive_track(const char *node, const struct addrinfo *res);

/* The host name whose live result holds the sockaddr at sa, when that sockaddr still holds the address
 * family/addr (4 or 16 bytes; IPv4-mapped IPv6 is compared as IPv4). Copies it into out; false when none. */
bool ailive_name_for(const struct sockaddr *sa, int family, const uint8_t *addr, char *out, size_t out_len);

#endif
