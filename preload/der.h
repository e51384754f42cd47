/* der.h: the few DER walks tlsshim needs (bounded; never trusts a length). */
#ifndef TLSSHIM_DER_H
#define TLSSHIM_DER_H

#include <stddef.h>
#include <stdint.h>

/* Finds the SubjectPublicKeyInfo (tag and length included) inside an X.509 certificate.
 * Returns 0 with *spki and *spki_len pointing into cert, or -1 if the certificate does not parse. */
int der_cert_spki(const uint8_t *cert, size_t len, const uint8_t **spki, size_t *spki_len);

#endif
