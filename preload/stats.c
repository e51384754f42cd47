/* stats.c: see stats.h. */
#include "preload/stats.h"
#include "preload/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set once by stats_init at load time; the counters are atomics added from any thread. */
static bool stats_on;
static _Atomic unsigned long long counters[STATS_N];

void stats_init(void)
{
	const char *v = secure_getenv("TLSSHIM_STATS");
	stats_on = v && *v && strcmp(v, "0") != 0;
}

void stats_add(enum stats_counter which, unsigned long long n)
{
	if (stats_on)
		atomic_fetch_add_explicit(&counters[which], n, memory_order_relaxed);
}

void stats_print(void)
{
	if (!stats_on)
		return;
	unsigned long long v[STATS_N];
	for (int i = 0; i < STATS_N; i++)
		v[i] = atomic_load(&counters[i]);
	if (v[STATS_CONNECTIONS] == 0) /* shells and helpers the shim was loaded into stay quiet */
		return;
	if (log_json()) {
		char fields[300];
		snprintf(fields, sizeof(fields),
			 "\"connections\":%llu,\"handshakes\":%llu,\"resumed\":%llu,\"failures\":%llu,"
			 "\"bytes_in\":%llu,"
			 "\"bytes_out\":%llu",
			 v[STATS_CONNECTIONS], v[STATS_HANDSHAKES], v[STATS_RESUMED], v[STATS_FAILURES],
			 v[STATS_BYTES_IN], v[STATS_BYTES_OUT]);
		log_event(LOG_ERROR, "stats", -1, NULL, NULL, 0, fields);
		return;
	}
	/* Printed whatever TLSSHIM_LOG says: the person asked for it. */
	char line[300];
	int n = snprintf(
	    line, sizeof(line),
	    "tlsshim: stats: pid %d: %llu TLS connections, %llu handshakes (%llu resumed), %llu failures, "
	    "%llu bytes in, %llu bytes out\n",
	    (int)getpid(), v[STATS_CONNECTIONS], v[STATS_HANDSHAKES], v[STATS_RESUMED], v[STATS_FAILURES],
	    v[STATS_BYTES_IN], v[STATS_BYTES_OUT]);
	log_raw(line, (size_t)n);
}
