/* Unit tests for the address -> candidate names memory. */
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

/* The only candidate of addr, or "" when it has none or several. */
static const char *only(int family, const void *addr)
{
	static struct names_set s;
	names_candidates(family, addr, &s);
	return s.n == 1 && !s.crowded ? s.name[0] : "";
}

Test(names, remember_and_lookup, .init = names_clear)
{
	uint8_t a[4], b[16];
	v4("10.1.2.3", a);
	v6("fd00::7", b);
	cr_assert_eq(names_remember("db.example", AF_INET, a, NULL, 0), 1);
	names_remember("v6.example", AF_INET6, b, NULL, 0);
	cr_assert_str_eq(only(AF_INET, a), "db.example");
	cr_assert_str_eq(only(AF_INET6, b), "v6.example");
	v4("10.1.2.4", a);
	struct names_set s;
	names_candidates(AF_INET, a, &s);
	cr_assert_eq(s.n, 0);
}

Test(names, v4_mapped_is_the_v4_address, .init = names_clear)
{
	uint8_t a[4], m[16];
	v4("192.0.2.9", a);
	v6("::ffff:192.0.2.9", m);
	names_remember("mapped.example", AF_INET6, m, NULL, 0);
	cr_assert_str_eq(only(AF_INET, a), "mapped.example", "stored as IPv4");
	cr_assert_str_eq(only(AF_INET6, m), "mapped.example", "looked up as IPv4");
}

Test(names, every_distinct_name_is_a_candidate, .init = names_clear)
{
	uint8_t a[4];
	char other[NAMES_MAX_LEN + 1] = "x";
	v4("10.9.9.9", a);
	cr_assert_eq(names_remember("first.example", AF_INET, a, other, sizeof(other)), 1);
	cr_assert_str_eq(other, "", "a first name has no other");
	unsigned long gen = names_generation();
	cr_assert_eq(names_remember("FIRST.example", AF_INET, a, other, sizeof(other)), 1,
		     "same name, other case: one candidate");
	cr_assert_str_eq(other, "");
	cr_assert_eq(names_generation(), gen, "no new candidate, no new generation");
	cr_assert_eq(names_remember("second.example", AF_INET, a, other, sizeof(other)), 2);
	cr_assert(strcasecmp(other, "first.example") == 0, "the other name: %s", other);
	cr_assert_neq(names_generation(), gen, "a new candidate changes the generation");
	cr_assert_eq(names_remember("first.example", AF_INET, a, other, sizeof(other)), 2,
		     "resolving the first again does not make it the answer");
	cr_assert_str_eq(other, "", "nothing new: nothing to log");
	struct names_set s;
	names_candidates(AF_INET, a, &s);
	cr_assert_eq(s.n, 2);
	cr_assert_not(s.crowded);
	cr_assert_str_eq(s.name[0], "first.example");
	cr_assert_str_eq(s.name[1], "second.example");
	cr_assert_str_eq(only(AF_INET, a), "", "two candidates: no single answer");
}

Test(names, crowded_after_the_per_address_bound, .init = names_clear)
{
	uint8_t a[4];
	char name[32];
	v4("10.8.8.8", a);
	for (unsigned i = 0; i < NAMES_PER_ADDR; i++) {
		snprintf(name, sizeof(name), "n%u.example", i);
		cr_assert_eq(names_remember(name, AF_INET, a, NULL, 0), i + 1);
	}
	struct names_set s;
	names_candidates(AF_INET, a, &s);
	cr_assert_eq(s.n, NAMES_PER_ADDR);
	cr_assert_not(s.crowded);
	cr_assert_eq(names_remember("one-more.example", AF_INET, a, NULL, 0), NAMES_PER_ADDR + 1);
	names_candidates(AF_INET, a, &s);
	cr_assert_eq(s.n, NAMES_PER_ADDR);
	cr_assert(s.crowded, "a name that was not kept marks the address");
}

Test(names, bounded_and_least_recently_used_goes, .init = names_clear)
{
	uint8_t a[4];
	char name[32];
	for (unsigned i = 0; i < NAMES_CAPACITY + 10; i++) {
		uint8_t addr[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
		snprintf(name, sizeof(name), "h%u.example", i);
		names_remember(name, AF_INET, addr, NULL, 0);
		if (i == NAMES_CAPACITY - 1) { /* touch entry 0 just before the table is full: it survives */
			uint8_t first[4] = {10, 0, 0, 0};
			cr_assert_str_eq(only(AF_INET, first), "h0.example");
		}
	}
	uint8_t first[4] = {10, 0, 0, 0}, second[4] = {10, 0, 0, 1};
	cr_assert_str_eq(only(AF_INET, first), "h0.example", "recently used entry kept");
	struct names_set s;
	names_candidates(AF_INET, second, &s);
	cr_assert_eq(s.n, 0, "least recently used entry dropped");
	v4("10.0.4.9", a); /* i = 1033 */
	cr_assert_str_eq(only(AF_INET, a), "h1033.example");
}

Test(names, rejects_bad_input, .init = names_clear)
{
	uint8_t a[4];
	char longname[300];
	v4("10.0.0.1", a);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(names_remember(longname, AF_INET, a, NULL, 0), 0);
	cr_assert_eq(names_remember("", AF_INET, a, NULL, 0), 0);
	cr_assert_eq(names_remember("x.example", AF_UNIX, a, NULL, 0), 0);
	struct names_set s;
	names_candidates(AF_INET, a, &s);
	cr_assert_eq(s.n, 0);
}
