/* explain_serve.h: the server half of `tlsshim explain` (explain_serve.c). */
#ifndef TLSSHIM_EXPLAIN_SERVE_H
#define TLSSHIM_EXPLAIN_SERVE_H

#include "policy/policy.h"

/* Prints what the library would do with a connection accepted on local ADDR:PORT, from peer `from`
 * (NULL: unknown) with SNI `sni` (NULL: none). Returns a CLI_* exit status. */
int explain_accept(const struct policy *p, const char *local, const char *from, const char *sni);

#endif
