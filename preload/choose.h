/* choose.h: which rule applies to a destination and which name the server must prove, when the program
 * connected to an address (issue 11 item 9). The candidates are the distinct names the process resolved
 * to that address (names.h, any thread). The rule:
 *  - connect() was given the ai_addr of a live getaddrinfo result for a name (ailive.h): that name;
 *  - else no candidate: no name (the address itself is matched and verified);
 *  - else one candidate: that name;
 *  - else several: each candidate picks its rule; if they pick different rules, or the one rule they
 *    pick is a tls rule that would verify the resolved name (no name=, not written with a host name), or
 *    more names were resolved than the memory keeps, the connect is refused (EACCES): the weaker rule or
 *    the other name is never taken. Plain, deny and name-fixed tls rules that every candidate picks apply.
 * Callers check shim_policy_ok() first. No lock is held while the policy's resolve callback runs. */
#ifndef TLSSHIM_CHOOSE_H
#define TLSSHIM_CHOOSE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "policy/policy.h"
#include "preload/names.h"

enum choose_use {
	CHOOSE_CONNECT,	 /* a TCP connect (and audit): one rule and one name, or a refusal */
	CHOOSE_ANY_DENY, /* a datagram or non-TCP connect: a deny rule that any candidate picks wins */
	CHOOSE_ANY_TLS,	 /* a connected socket from outside: a tls rule that any candidate picks wins */
};

struct choice {
	const struct policy_rule *rule; /* NULL: no rule matches (plain) */
	char name[NAMES_MAX_LEN + 1];	/* the resolved name the rule and the peer check use; "" for none */
	const char *how;		/* how the name was settled, for people */
	bool from_result;     /* settled by sa being a live getaddrinfo result (not by the address) */
	char names_text[300]; /* the candidates, comma-separated ("" for none), for log lines */
	bool refused;	      /* CHOOSE_CONNECT only: refuse with EACCES and reason */
	char reason[1400];    /* one line without the destination, ending with the fix */
};

/* Fills *out for destination family/addr (4 or 16 bytes, IPv4-mapped already unmapped)/port, reached
 * through sockaddr sa (the program's own pointer, or NULL when the call has none). */
void choose_dest(enum choose_use use, const struct sockaddr *sa, int family, const uint8_t *addr,
		 uint16_t port, struct choice *out);

#endif
