/* fuzz_dlg_http.c: libFuzzer target for the HTTP CONNECT reply parser of preload/dlg_parse.c (a hostile
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
	struct dlg_http_reply r;
	int st = dlg_http_reply(buf, size, &r);
	CHECK(st == DLG_OK || st == DLG_NEED || st == DLG_BAD);
	if (st == DLG_OK) {
		CHECK(r.consumed > 0 && r.consumed <= size && r.consumed <= DLG_HTTP_HEADERS_MAX);
		CHECK(r.status >= 0 && r.status <= 999 && r.status_len < r.consumed);
	}
	if (size >= DLG_HTTP_HEADERS_MAX)
		CHECK(st != DLG_NEED); /* bounded: a huge header block is refused, never waited for */
	free(buf);
	return 0;
}
