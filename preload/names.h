/* names.h: which host names each address came from, as the program's resolver calls returned them: the
 * candidate memory that choose.c picks the verified name and the rule from. Per process, bounded
 * (NAMES_CAPACITY addresses, least recently used dropped first; NAMES_PER_ADDR distinct names each, after
 * which the address is marked crowded), one mutex (resolver and connect paths only, never the data path).
 * Names never expire with time: a time window would let an old name drop out and leave a newer one
 * looking like the only candidate. */
#ifndef TLSSHIM_NAMES_H
#define TLSSHIM_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAMES_CAPACITY 1024
#define NAMES_PER_ADDR 8
#define NAMES_MAX_LEN  253

/* The distinct names one address is remembered for. */
struct names_set {
	size_t n;     /* names in name[] */
	bool crowded; /* more than NAMES_PER_ADDR distinct names were resolved to it: name[] is incomplete */
	char name[NAMES_PER_ADDR][NAMES_MAX_LEN + 1];
};

/* Remembers that name resolved to addr (4 or 16 bytes by family). IPv4-mapped IPv6 is stored as IPv4.
 * Names are compared ASCII case-insensitively. Returns how many distinct names the address now has
 * (NAMES_PER_ADDR + 1 when crowded; 0 when nothing was stored). other (when not NULL, other_len bytes)
 * receives another of its names when this call added name to an address that had one, else "". */
size_t names_remember(const char *name, int family, const void *addr, char *other, size_t other_len);

/* Copies the candidate names of addr into *out (out->n == 0: none). */
void names_candidates(int family, const void *addr, struct names_set *out);

/* A count that changes whenever an address gets a new candidate (or the memory is cleared): a verdict
 * cached for an address (udp.c) is stale once it changed. */
unsigned long names_generation(void);

/* Forgets everything (tests). */
void names_clear(void);

#endif
