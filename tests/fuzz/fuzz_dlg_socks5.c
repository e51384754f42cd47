/* fuzz_dlg_socks5.c: libFuzzer target for the SOCKS5 reply parser of preload/dlg_parse.c (a hostile server's
 * bytes). Invariants: no crash or UB, nothing read past the input, consumed within the input, results in
 * range. */
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
	int m, s;
	int st = dlg_socks5_method(buf, size, &m);
	CHECK(st == DLG_OK || st == DLG_NEED || st == DLG_BAD);
	st = dlg_socks5_auth(buf, size, &s);
	CHECK(st == DLG_OK || st == DLG_NEED || st == DLG_BAD);
	struct dlg_socks5_reply r;
	st = dlg_socks5_reply(buf, size, &r);
	CHECK(st == DLG_OK || st == DLG_NEED || st == DLG_BAD);
	if (st == DLG_OK) {
		CHECK(r.consumed >= 7 && r.consumed <= size && r.consumed <= 4 + 1 + 255 + 2);
		CHECK(r.rep >= 0 && r.rep <= 255 && dlg_socks5_rep_text(r.rep) != NULL);
	}
	free(buf);
	return 0;
}
