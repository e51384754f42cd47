/* SPDX-License-Identifier: GPL-2.0-or-later */
/* metrics.h: TLSSHIM_METRICS_FILE=PATH (%p = the pid; the name must end in .prom, for node_exporter's
 * textfile collector) writes the counters of stats.c in the Prometheus text format, atomically (a
 * temporary file renamed over PATH), at exit and at most every 10 s while connections come and go. The
 * writes ride on the shim's own connection events: no thread is added to the program. */
#ifndef TLSSHIM_METRICS_H
#define TLSSHIM_METRICS_H

#include <stdbool.h>

/* Reads TLSSHIM_METRICS_FILE; returns true when metrics are on. A bad name is reported once and turns
 * metrics off (the program's connections are not affected). */
bool metrics_init(void);
/* Writes the file when the last write is 10 s old (or there was none). File I/O: call it only where no
 * lock is held (the connect hook, the end of a TLS fd in conn_detach_fd). */
void metrics_tick(void);
/* In a fork child: the pid changed; without %p in the name the child writes nothing (it would overwrite
 * its parent's file). */
void metrics_after_fork_child(void);
/* At exit: the final file, when anything was counted or a file was written before. */
void metrics_at_exit(void);

#endif
