/* fuzz_dlg_imap.c: libFuzzer target for the IMAP status line and greeting rewrite parser of
 * preload/dlg_parse.c (a hostile server's bytes). Invariants: no crash or UB, nothing read past the input,
 * consumed within the input, results in range. */
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
	struct dlg_imap_line r;
	int st = dlg_imap_line(buf, size, "T1", &r);
	CHECK(st == DLG_OK || st == DLG_NEED || st == DLG_BAD);
	if (st == DLG_OK) {
		CHECK(r.consumed > 0 && r.consumed <= size && r.len < r.consumed);
		CHECK((int)r.untagged + (int)r.tagged + (int)r.continuation == 1);
		uint8_t out[DLG_LINE_MAX + 2];
		size_t n = dlg_imap_strip_capability(buf, r.len, out, sizeof(out));
		CHECK(n >= 2 && n <= r.len + 2 && out[n - 2] == 0x0d && out[n - 1] == 0x0a);
		/* Only a greeting's code is removed: other lines come back unchanged. */
		if (!r.untagged)
			CHECK(n == r.len + 2 && memcmp(out, buf, r.len) == 0);
		else
			CHECK(n >= 4 && memcmp(out, buf, 2) == 0);
	}
	uint8_t small[8];
	CHECK(dlg_imap_strip_capability(buf, size, small, sizeof(small)) <= sizeof(small));
	free(buf);
	return 0;
}
