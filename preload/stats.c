/* SPDX-License-Identifier: GPL-2.0-or-later */
/* stats.c: see stats.h. */
#include "preload/stats.h"
#include "preload/log.h"
#include "preload/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One (rule, direction): the counters, then the failures by reason. */
#define STATS_SLOTS (STATS_N + STATS_REASONS)
typedef _Atomic unsigned long long stats_slots[STATS_DIRECTIONS][STATS_SLOTS];

/* stats_on, counting and the_policy/rows/n_rows are set once by stats_init and stats_policy_loaded,
 * inside the library's pthread_once initialisation, and read-only afterwards. The counters themselves
 * are atomics added from any thread with relaxed ordering (they are only ever summed); the fork child
 * handler zeroes them while the child has a single thread. */
static bool stats_on; /* TLSSHIM_STATS=1 */
static bool counting; /* stats_on or the metrics file */
static const struct policy *the_policy;
static stats_slots *rows; /* n_rows = rules + 1: the last is "no rule" */
static size_t n_rows;
static stats_slots no_rule_row; /* used before (or without) a loaded policy */
static _Atomic unsigned long long totals[STATS_N];

static void stats_after_fork_child(void)
{
	/* A child starts from zero, so what the parent counted is never counted twice. */
	for (int i = 0; i < STATS_N; i++)
		atomic_store_explicit(&totals[i], 0, memory_order_relaxed);
	memset((void *)no_rule_row, 0, sizeof(no_rule_row));
	if (rows)
		memset((void *)rows, 0, n_rows * sizeof(*rows));
	metrics_after_fork_child();
}

void stats_init(void)
{
	const char *v = secure_getenv("TLSSHIM_STATS");
	stats_on = v && *v && strcmp(v, "0") != 0;
	counting = metrics_init() || stats_on;
	if (counting)
		pthread_atfork(NULL, NULL, stats_after_fork_child);
}

void stats_policy_loaded(const struct policy *p)
{
	if (!counting)
		return;
	stats_slots *r = calloc(p->n_rules + 1, sizeof(*r));
	if (!r) {
		log_msg(LOG_WARN, "out of memory for per-rule statistics; counting totals only");
		return;
	}
	the_policy = p;
	n_rows = p->n_rules + 1;
	rows = r;
}

static _Atomic unsigned long long *slot(const struct policy_rule *rule, enum stats_direction dir, int which)
{
	stats_slots *row = &no_rule_row;
	if (rows && rule) {
		size_t idx = (size_t)(rule - the_policy->rules);
		if (idx < n_rows - 1)
			row = &rows[idx];
	}
	return &(*row)[dir][which];
}

void stats_add(const struct policy_rule *rule, enum stats_direction dir, enum stats_counter which,
	       unsigned long long n)
{
	if (!counting)
		return;
	atomic_fetch_add_explicit(&totals[which], n, memory_order_relaxed);
	atomic_fetch_add_explicit(slot(rule, dir, which), n, memory_order_relaxed);
}

void stats_failure(const struct policy_rule *rule, enum stats_direction dir, enum stats_reason why)
{
	if (!counting)
		return;
	atomic_fetch_add_explicit(&totals[STATS_FAILURES], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(slot(rule, dir, STATS_FAILURES), 1, memory_order_relaxed);
	atomic_fetch_add_explicit(slot(rule, dir, STATS_N + why), 1, memory_order_relaxed);
}

bool stats_any(void)
{
	return atomic_load_explicit(&totals[STATS_CONNECTIONS], memory_order_relaxed) != 0 ||
	       atomic_load_explicit(&totals[STATS_FAILURES], memory_order_relaxed) != 0;
}

static void emit_row(stats_slots *row, const struct policy_rule *rule,
		     void (*fn)(const struct stats_row *row, void *arg), void *arg)
{
	for (int d = 0; d < STATS_DIRECTIONS; d++) {
		struct stats_row r = {.rule = rule, .dir = (enum stats_direction)d};
		bool any = false;
		for (int i = 0; i < STATS_N; i++) {
			r.v[i] = atomic_load_explicit(&(*row)[d][i], memory_order_relaxed);
			any = any || r.v[i];
		}
		for (int i = 0; i < STATS_REASONS; i++)
			r.reasons[i] = atomic_load_explicit(&(*row)[d][STATS_N + i], memory_order_relaxed);
		if (any)
			fn(&r, arg);
	}
}

void stats_foreach(void (*fn)(const struct stats_row *row, void *arg), void *arg)
{
	for (size_t i = 0; rows && i + 1 < n_rows; i++)
		emit_row(&rows[i], &the_policy->rules[i], fn, arg);
	if (rows)
		emit_row(&rows[n_rows - 1], NULL, fn, arg);
	emit_row(&no_rule_row, NULL, fn, arg);
}

static void stats_print(void)
{
	if (!stats_on)
		return;
	unsigned long long v[STATS_N];
	for (int i = 0; i < STATS_N; i++)
		v[i] = atomic_load(&totals[i]);
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

void stats_at_exit(void)
{
	stats_print();
	metrics_at_exit();
}
