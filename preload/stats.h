/* SPDX-License-Identifier: GPL-2.0-or-later */
/* stats.h: the shim's counters, kept per policy rule and direction: TLS connections, handshakes,
 * resumptions, failures by reason, bytes in and out. Two readers: TLSSHIM_STATS=1 prints one summary
 * line per process at exit (the totals), and TLSSHIM_METRICS_FILE (metrics.c) writes them all in the
 * Prometheus text format. Counters are added at connection events (start, handshake, failure, end),
 * never per read or write, so pass-through calls never touch them. A child after fork starts from zero. */
#ifndef TLSSHIM_STATS_H
#define TLSSHIM_STATS_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/policy.h"

enum stats_counter {
	STATS_CONNECTIONS,
	STATS_HANDSHAKES,
	STATS_RESUMED,
	STATS_FAILURES,
	STATS_BYTES_IN,
	STATS_BYTES_OUT,
	STATS_N
};

/* outbound: the program connected (the connect hook); inbound: the program accepted. */
enum stats_direction { STATS_OUTBOUND, STATS_INBOUND, STATS_DIRECTIONS };

/* Why a connection failed (the "reason" label of tlsshim_failures_total). */
enum stats_reason {
	STATS_REASON_TCP,	/* the TCP connect itself failed */
	STATS_REASON_TIMEOUT,	/* handshake-timeout= passed */
	STATS_REASON_VERIFY,	/* certificate, name or pin verification */
	STATS_REASON_HANDSHAKE, /* any other handshake failure (version, suites, alert, garbage) */
	STATS_REASON_SETUP,	/* the rule's TLS context could not be built (CA file, key) */
	STATS_REASONS
};

/* Reads TLSSHIM_STATS and TLSSHIM_METRICS_FILE (once, at load time). */
void stats_init(void);
/* The policy is loaded with n_rules rules: the per-rule counters can be made. Called once. */
void stats_policy_loaded(const struct policy *p);

/* Adds n to a counter of rule (NULL: not attributed to a rule) in direction dir. STATS_FAILURES is
 * counted by stats_failure instead. Callable with a connection lock held: it never does I/O (the metrics
 * file is written by metrics_tick, which the hooks call where they hold no lock). */
void stats_add(const struct policy_rule *rule, enum stats_direction dir, enum stats_counter which,
	       unsigned long long n);
/* One failed connection (counted in STATS_FAILURES and by reason). */
void stats_failure(const struct policy_rule *rule, enum stats_direction dir, enum stats_reason why);

/* At exit: the TLSSHIM_STATS line and the last metrics file. */
void stats_at_exit(void);

/* ---- for metrics.c ---- */
bool stats_any(void);
/* Calls fn for every (rule index, direction) that counted anything; idx == n_rules is "no rule". */
struct stats_row {
	const struct policy_rule *rule; /* NULL for "no rule" */
	enum stats_direction dir;
	unsigned long long v[STATS_N];
	unsigned long long reasons[STATS_REASONS];
};
void stats_foreach(void (*fn)(const struct stats_row *row, void *arg), void *arg);

#endif
