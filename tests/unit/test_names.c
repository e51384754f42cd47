/* Unit tests for the address -> name memory. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <strings.h>

#include "preload/names.h"

static void v4(const char *s, uint8_t out[4])
{
	cr_assert_eq(inet_pton(AF_INET, s, out), 1);
}

static void v6(const char *s, uint8_t out[16])
{
	cr_assert_eq(inet_pton(AF_INET6, s, out), 1);
}

Test(names, remember_and_lookup, .init = names_clear)
{
	uint8_t a[4], b[16];
	char out[NAMES_MAX_LEN + 1];
	v4("10.1.2.3", a);
	v6("fd00::7", b);
	names_remember("db.example", AF_INET, a, NULL, NULL, 0);
	names_remember("v6.example", AF_INET6, b, NULL, NULL, 0);
	cr_assert(names_lookup(AF_INET, a, out, sizeof(out)));
	cr_assert_str_eq(out, "db.example");
	cr_assert(names_lookup(AF_INET6, b, out, sizeof(out)));
	cr_assert_str_eq(out, "v6.example");
	v4("10.1.2.4", a);
	cr_assert_not(names_lookup(AF_INET, a, out, sizeof(out)));
}

Test(names, v4_mapped_is_the_v4_address, .init = names_clear)
{
	uint8_t a[4], m[16];
	char out[NAMES_MAX_LEN + 1];
	v4("192.0.2.9", a);
	v6("::ffff:192.0.2.9", m);
	names_remember("mapped.example", AF_INET6, m, NULL, NULL, 0);
	cr_assert(names_lookup(AF_INET, a, out, sizeof(out)), "stored as IPv4");
	cr_assert_str_eq(out, "mapped.example");
	names_remember("plain.example", AF_INET, a, NULL, NULL, 0);
	cr_assert(names_lookup(AF_INET6, m, out, sizeof(out)), "looked up as IPv4");
	cr_assert_str_eq(out, "plain.example");
}

Test(names, latest_name_wins_and_says_so, .init = names_clear)
{
	uint8_t a[4];
	char out[NAMES_MAX_LEN + 1], prev[NAMES_MAX_LEN + 1] = "";
	bool replaced = true;
	v4("10.9.9.9", a);
	names_remember("first.example", AF_INET, a, &replaced, prev, sizeof(prev));
	cr_assert_not(replaced);
	names_remember("FIRST.example", AF_INET, a, &replaced, prev, sizeof(prev));
	cr_assert_not(replaced, "same name, other case: no change of name");
	names_remember("second.example", AF_INET, a, &replaced, prev, sizeof(prev));
	cr_assert(replaced);
	cr_assert(strcasecmp(prev, "first.example") == 0, "previous name %s", prev);
	cr_assert(names_lookup(AF_INET, a, out, sizeof(out)));
	cr_assert_str_eq(out, "second.example");
}

Test(names, bounded_and_least_recently_used_goes, .init = names_clear)
{
	uint8_t a[4];
	char name[32], out[NAMES_MAX_LEN + 1];
	for (unsigned i = 0; i < NAMES_CAPACITY + 10; i++) {
		uint8_t addr[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
		snprintf(name, sizeof(name), "h%u.example", i);
		names_remember(name, AF_INET, addr, NULL, NULL, 0);
		if (i == NAMES_CAPACITY - 1) { /* touch entry 0 just before the table is full: it survives */
			uint8_t first[4] = {10, 0, 0, 0};
			cr_assert(names_lookup(AF_INET, first, out, sizeof(out)));
		}
	}
	uint8_t first[4] = {10, 0, 0, 0}, second[4] = {10, 0, 0, 1};
	cr_assert(names_lookup(AF_INET, first, out, sizeof(out)), "recently used entry kept");
	cr_assert_not(names_lookup(AF_INET, second, out, sizeof(out)), "least recently used entry dropped");
	v4("10.0.4.9", a); /* i = 1033 */
	cr_assert(names_lookup(AF_INET, a, out, sizeof(out)));
	cr_assert_str_eq(out, "h1033.example");
}

Test(names, rejects_bad_input, .init = names_clear)
{
	uint8_t a[4];
	char out[8], longname[300];
	v4("10.0.0.1", a);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	names_remember(longname, AF_INET, a, NULL, NULL, 0);
	names_remember("", AF_INET, a, NULL, NULL, 0);
	names_remember("x.example", AF_UNIX, a, NULL, NULL, 0);
	cr_assert_not(names_lookup(AF_INET, a, out, sizeof(out)));
	names_remember("much-too-long-for-out.example", AF_INET, a, NULL, NULL, 0);
	cr_assert_not(names_lookup(AF_INET, a, out, sizeof(out)), "never truncates a name");
}
