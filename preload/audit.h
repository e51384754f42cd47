/* SPDX-License-Identifier: GPL-2.0-or-later */
/* audit.h: TLSSHIM_MODE=audit, observe-only. The connect hook hands every TCP connect here instead of
 * acting on it: the destination, the name the program resolved, the rule that would match and what it
 * would do are logged (one line, "tlsshim: audit: connect ..."), and the connect goes to libc untouched,
 * whatever the policy says (also when it does not load). No connection is ever made TLS, refused or
 * changed. At exit, a summary per destination. With TLSSHIM_AUDIT_FILE (set by `tlsshim audit`) the
 * event lines are also appended to that file, which the command reads back for its report. */
#ifndef TLSSHIM_AUDIT_H
#define TLSSHIM_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Reads TLSSHIM_MODE (once, at load time). An unknown mode is reported and treated as enforcing. */
void audit_init(void);
/* True in audit mode. */
bool audit_on(void);
/* The audit path of the connect hook: log what would happen, then the real connect, unchanged. */
int audit_connect(int fd, const struct sockaddr *sa, socklen_t salen, int family, const uint8_t *addr,
		  uint16_t port, const char *addr_text);
/* The audit path of accept: fd was just accepted; logs "tlsshim: audit: accept ..." with the serve rule
 * that would match its local address. The socket is left exactly as accepted. */
void audit_accept(int fd);
/* At exit: one summary line per destination (nothing when there was no connect). */
void audit_at_exit(void);

#endif
