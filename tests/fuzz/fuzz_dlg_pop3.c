/* fuzz_dlg_pop3.c: libFuzzer target for the POP3 status line parser of preload/dlg_parse.c (a hostile
 * server's bytes). Invariants: no crash or UB, nothing read past the input, consumed within the input,
 * results in range. */
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
	struct dlg_pop3_line r;
	int st = dlg_pop3_line(buf, size, &r);
	CHECK(st == DLG_OK || st == DLG_NEED || st == DLG_BAD);
	if (st == DLG_OK) {
		CHECK(r.consumed > 0 && r.consumed <= size && r.len < r.consumed);
		CHECK(r.status == DLG_ST_OK || r.status == DLG_ST_ERR);
		CHECK(buf[0] == 0x2b || buf[0] == 0x2d);
	}
	free(buf);
	return 0;
}
