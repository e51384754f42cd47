/* names.h: which host name each address came from, as the program's resolver calls returned them.
 * Bounded (NAMES_CAPACITY entries, least recently used dropped first), one mutex (resolver and connect
 * paths only, never the data path). When one address is returned for several names, the most recently
 * resolved name wins (the program is about to connect to what it just looked up); the change is logged
 * at info by the caller, and a rule's name= always overrides. */
#ifndef TLSSHIM_NAMES_H
#define TLSSHIM_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAMES_CAPACITY 1024
#define NAMES_MAX_LEN  253

/* Remembers that name resolved to addr (4 or 16 bytes by family). IPv4-mapped IPv6 is stored as IPv4.
 * If the address was remembered for another name, *replaced (when not NULL) receives true and prev
 * (when not NULL, prev_len bytes) the old name. */
void names_remember(const char *name, int family, const void *addr, bool *replaced, char *prev,
		    size_t prev_len);

/* Copies the remembered name for addr into out; false when none. */
bool names_lookup(int family, const void *addr, char *out, size_t out_len);

/* A count that changes whenever an address gets a new name (or the memory is cleared): a verdict
 * cached for an address (udp.c) is stale once it changed. */
unsigned long names_generation(void);

/* Forgets everything (tests, fork). */
void names_clear(void);

#endif
