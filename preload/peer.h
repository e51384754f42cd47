/* peer.h: who the server must prove to be, for a tls rule and a destination: the name to verify (or the
 * address, as an IP SAN) and the SNI to send. One function, used by the connect hook and by the CLI
 * (`tlsshim explain` and `probe`), so what the CLI shows is what the library does. */
#ifndef TLSSHIM_PEER_H
#define TLSSHIM_PEER_H

#include <stdint.h>

#include "policy/policy.h"

struct peer_id {
	const char *name; /* the DNS name to verify, or NULL: verify `addr` as an IP SAN */
	int family;	  /* the address to verify when name is NULL */
	uint8_t addr[16];
	const char *sni;      /* NULL: send no SNI */
	const char *why_name; /* where the name (or address) came from, for people */
};

/* The name is name=, else the rule's own host name, else the name the program resolved (remembered,
 * may be NULL), else the destination address. name= holding an address means: verify that address.
 * SNI is sni= (or none with sni=off), else the DNS name, never an address. Strings point into the rule
 * or into remembered. */
void peer_for_rule(const struct policy_rule *rule, const char *remembered, int family, const uint8_t *addr,
		   struct peer_id *out);

#endif
