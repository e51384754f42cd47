/* fuzz_dlg_postgres.c: libFuzzer target for the PostgreSQL message parser of preload/dlg_parse.c (a hostile
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
	uint8_t type;
	uint32_t len;
	int st = dlg_pg_header(buf, size, 1u << 20, &type, &len);
	CHECK(st == DLG_OK || st == DLG_NEED || st == DLG_BAD);
	if (st == DLG_OK)
		CHECK(len >= 4 && len <= 1u << 20);
	uint8_t out[DLG_PG_SASL_MAX];
	unsigned kept;
	long n = dlg_pg_strip_plus(buf, size, out, sizeof(out), &kept);
	if (n >= 0) {
		CHECK((size_t)n <= size && n >= 5 && out[n - 1] == 0);
		/* No mechanism left ends in -PLUS, and stripping again changes nothing. */
		uint8_t again[DLG_PG_SASL_MAX];
		unsigned kept2;
		CHECK(dlg_pg_strip_plus(out, (size_t)n, again, sizeof(again), &kept2) == n);
		CHECK(kept2 == kept && memcmp(again, out, (size_t)n) == 0);
	}
	char text[64];
	dlg_pg_error_text(buf, size, text, sizeof(text));
	CHECK(strlen(text) < sizeof(text));
	free(buf);
	return 0;
}
