/* fuzz_dlg_ldap.c: libFuzzer target for the LDAP BER ExtendedResponse parser of preload/dlg_parse.c (a
 * hostile server's bytes). Invariants: no crash or UB, nothing read past the input, consumed within the
 * input, results in range. */
#include "preload/dlg_parse.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(x)                                                                                             \
	do {                                                                                                 \
		if (!(x))                                                                                    \
			abort();                                                                             \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so AddressSanitizer catches a read one byte past the end. */
	uint8_t *buf = malloc(size ? size : 1);
	CHECK(buf);
	memcpy(buf, data, size);
	struct dlg_ldap_reply r;
	int st = dlg_ldap_reply(buf, size, &r);
	CHECK(st == DLG_OK || st == DLG_NEED || st == DLG_BAD);
	if (st == DLG_OK) {
		CHECK(r.consumed >= 2 && r.consumed <= size && r.consumed <= DLG_LDAP_MAX + 8);
		CHECK(strlen(r.diag) < sizeof(r.diag));
		struct dlg_ldap_reply p;
		CHECK(dlg_ldap_reply(buf, r.consumed - 1, &p) == DLG_NEED);
	}
	free(buf);
	return 0;
}
