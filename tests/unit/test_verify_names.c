/* Unit tests for certificate name matching (RFC 6125 wildcards; the CN is never consulted). */
#include <criterion/criterion.h>
#include <string.h>

#include "preload/verify.h"

struct name_case {
	const char *pattern, *host;
	bool match;
};

static const struct name_case cases[] = {
    {"example.com", "example.com", true},
    {"EXAMPLE.com", "example.COM", true},
    {"example.com.", "example.com", true},
    {"example.com", "example.com.", true},
    {"example.com", "www.example.com", false},
    {"*.example.com", "a.example.com", true},
    {"*.example.com", "A.Example.Com", true},
    {"*.example.com", "a.b.example.com", false},
    {"*.example.com", "example.com", false},
    {"*.example.com", ".example.com", false},
    {"*.com", "example.com", false},
    {"*", "example", false},
    {"f*.example.com", "foo.example.com", false},
    {"*oo.example.com", "foo.example.com", false},
    {"a.*.example.com", "a.b.example.com", false},
    {"*.*.example.com", "a.b.example.com", false},
    {"*.example.com", "xn--bcher-kva.example.com", false},
    {"", "example.com", false},
    {"example.com", "", false},
    {"127.0.0.1", "127.0.0.1", true}, /* text compare only; the shim never asks this for an address */
};

Test(verify_names, table)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct name_case *c = &cases[i];
		cr_expect_eq(verify_dns_name_matches(c->pattern, strlen(c->pattern), c->host), c->match,
			     "pattern '%s' host '%s': want %s", c->pattern, c->host,
			     c->match ? "match" : "no match");
	}
}

Test(verify_names, embedded_nul_never_matches)
{
	const char pattern[] = "example.com\0.evil.test";
	cr_assert_not(verify_dns_name_matches(pattern, sizeof(pattern) - 1, "example.com"));
}
