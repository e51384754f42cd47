/* check_serve.h: `tlsshim check` findings on serve rules (check_serve.c). */
#ifndef TLSSHIM_CHECK_SERVE_H
#define TLSSHIM_CHECK_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "policy/policy.h"

#define CHECK_SERVE_NO_DATE	     (-100000) /* the certificate could not be read */
#define CHECK_SERVE_EXPIRY_WARN_DAYS 30

/* True (with msg) when cert= and key= load but the key does not belong to the certificate. */
bool check_serve_key_mismatch(const struct policy_tls_opts *o, char *msg, size_t len);

/* Whole days until the certificate's notAfter (negative: expired), or CHECK_SERVE_NO_DATE. */
int check_serve_days_left(const char *cert);

/* True (with msg) when no certificate could carry this allow= entry, or it allows far more than meant. */
bool check_serve_allow_entry(const struct policy_allow *a, char *msg, size_t len);

#endif
