/* probe_dialogue.h: `tlsshim probe` runs a rule's proxy= tunnel and starttls= upgrade with the library's
 * own dialogue engine (preload/dialogue.c and the dlg_*.c steps, linked into the CLI), then hands the
 * connected socket to the TLS handshake. Prints what was said on the way (the transcript: the greeting,
 * the capabilities, the proxy's status line) when asked to. */
#ifndef TLSSHIM_PROBE_DIALOGUE_H
#define TLSSHIM_PROBE_DIALOGUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "policy/policy.h"

/* Whether the rule runs anything between the TCP connect and the handshake. */
bool probe_dialogue_wanted(const struct policy_tls_opts *o);

/* Where the TCP connection goes first: the proxy of a proxy= rule (a host name is resolved here; an
 * address of the destination's family is preferred), else the destination itself. 0, or -1 with err. */
int probe_dialogue_first_hop(const struct policy_tls_opts *o, int family, const uint8_t *addr, uint16_t port,
			     int *hop_family, uint8_t hop_addr[16], uint16_t *hop_port, char *err,
			     size_t errlen);

/* Runs the dialogue on the connected socket fd, for the destination family/addr/port whose name (or
 * NULL) is asked of a proxy, within timeout_ms. transcript: where to print what each side said, and the
 * greeting the program would read first (NULL: silent). 0 when TLS may start, or -1 with reason. */
int probe_dialogue_run(const struct policy_tls_opts *o, const char *name, int family, const uint8_t *addr,
		       uint16_t port, int fd, unsigned timeout_ms, FILE *transcript, char *reason,
		       size_t reason_len);

#endif
