/* stats.h: TLSSHIM_STATS=1 prints one summary line per process at exit: TLS connections, handshakes
 * (and how many resumed), failures, bytes in and out. Counters are added once per connection (at its
 * end), never per read or write. */
#ifndef TLSSHIM_STATS_H
#define TLSSHIM_STATS_H

#include <stdbool.h>

enum stats_counter {
	STATS_CONNECTIONS,
	STATS_HANDSHAKES,
	STATS_RESUMED,
	STATS_FAILURES,
	STATS_BYTES_IN,
	STATS_BYTES_OUT,
	STATS_N
};

void stats_init(void);
void stats_add(enum stats_counter which, unsigned long long n);
void stats_print(void);

#endif
