/* Unit tests for the name choice (preload/choose.c): which rule and which resolved name a connect to
 * an address gets from the candidate names, with the shim's policy, the rule-name lookup and the live
 * getaddrinfo results replaced by the stubs below. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "preload/ailive.h"
#include "preload/choose.h"
#include "preload/names.h"
#include "preload/shim.h"

/* ---- stubs for what choose.c asks the rest of the library ---- */
static struct policy test_policy;
static const char *live_name; /* the name ailive_name_for reports for any sockaddr, or NULL */

const struct policy *shim_policy(void)
{
	return &test_policy;
}

bool resolve_rule_name_has_addr(void *ctx, const char *name, int family, const uint8_t *addr)
{
	(void)ctx;
	(void)name;
	(void)family;
	(void)addr;
	return false; /* no rule name resolves anywhere: only remembered names match name rules */
}

bool ailive_name_for(const struct sockaddr *sa, int family, const uint8_t *addr, char *out, size_t out_len)
{
	(void)family;
	(void)addr;
	if (!sa || !live_name || strlen(live_name) >= out_len)
		return false;
	strcpy(out, live_name);
	return true;
}

static uint8_t A[4];
static struct sockaddr_in SA;

static void setup(const char *rules)
{
	names_clear();
	policy_free(&test_policy);
	memset(&test_policy, 0, sizeof(test_policy));
	struct policy_error e;
	cr_assert_eq(policy_parse(&test_policy, rules, strlen(rules), "TLSSHIM_RULES", true, &e), 0, "%s: %s",
		     rules, e.message);
	live_name = NULL;
	inet_pton(AF_INET, "10.7.7.7", A);
	SA.sin_family = AF_INET;
	memcpy(&SA.sin_addr, A, 4);
}

static void resolved(const char *name)
{
	names_remember(name, AF_INET, A, NULL, 0);
}

static void choose(enum choose_use use, struct choice *ch)
{
	choose_dest(use, (const struct sockaddr *)&SA, AF_INET, A, 443, ch);
}

Test(choose, no_candidate_no_name)
{
	struct choice ch;
	setup("tls *:443");
	choose(CHOOSE_CONNECT, &ch);
	cr_assert_not(ch.refused);
	cr_assert_not_null(ch.rule);
	cr_assert_eq(ch.rule->line, 1);
	cr_assert_str_eq(ch.name, "");
}

Test(choose, one_candidate_is_used)
{
	struct choice ch;
	setup("tls *:443");
	resolved("good.example");
	choose(CHOOSE_CONNECT, &ch);
	cr_assert_not(ch.refused);
	cr_assert_str_eq(ch.name, "good.example");
}

Test(choose, several_candidates_and_a_tls_rule_that_verifies_the_name_refuse)
{
	struct choice ch;
	setup("tls *:443");
	resolved("good.example");
	resolved("evil.example");
	choose(CHOOSE_CONNECT, &ch);
	cr_assert(ch.refused);
	cr_assert_null(ch.rule);
	cr_assert_str_eq(ch.name, "");
	cr_assert(strstr(ch.reason, "EACCES") && strstr(ch.reason, "good.example, evil.example") &&
		      strstr(ch.reason, "name=") && strstr(ch.reason, "10.7.7.7:443"),
		  "%s", ch.reason);
}

Test(choose, the_live_result_settles_it)
{
	struct choice ch;
	setup("tls *:443");
	resolved("good.example");
	resolved("evil.example");
	live_name = "good.example";
	choose(CHOOSE_CONNECT, &ch);
	cr_assert_not(ch.refused);
	cr_assert(ch.from_result);
	cr_assert_str_eq(ch.name, "good.example");
}

Test(choose, different_rules_refuse_never_the_weaker)
{
	struct choice ch;
	setup("tls *.corp.example:443; plain *:443");
	resolved("a.corp.example");
	resolved("other.example");
	choose(CHOOSE_CONNECT, &ch);
	cr_assert(ch.refused);
	cr_assert(strstr(ch.reason, "different rules") && strstr(ch.reason, "a.corp.example: tls") &&
		      strstr(ch.reason, "other.example: plain"),
		  "%s", ch.reason);
	live_name = "other.example";
	choose(CHOOSE_CONNECT, &ch);
	cr_assert_not(ch.refused);
	cr_assert_eq(ch.rule->action, POLICY_PLAIN, "other.example's own result picks plain");
	live_name = "a.corp.example";
	choose(CHOOSE_CONNECT, &ch);
	cr_assert_eq(ch.rule->action, POLICY_TLS, "a.corp.example's own result picks tls");
}

Test(choose, the_same_rule_with_a_name_of_its_own_applies)
{
	struct choice ch;
	setup("tls 10.7.7.7:443 name=server.example; tls *:443");
	resolved("good.example");
	resolved("evil.example");
	choose(CHOOSE_CONNECT, &ch);
	cr_assert_not(ch.refused, "%s", ch.reason);
	cr_assert_eq(ch.rule->line, 1);
	setup("tls good.example:443; tls *:443");
	resolved("good.example");
	resolved("evil.example");
	choose(CHOOSE_CONNECT, &ch);
	cr_assert(ch.refused, "good.example picks rule 1, evil.example rule 2");
}

Test(choose, the_same_plain_or_deny_rule_applies)
{
	struct choice ch;
	setup("plain *:443");
	resolved("good.example");
	resolved("evil.example");
	choose(CHOOSE_CONNECT, &ch);
	cr_assert_not(ch.refused);
	cr_assert_eq(ch.rule->action, POLICY_PLAIN);
	setup("deny *:443");
	resolved("good.example");
	resolved("evil.example");
	choose(CHOOSE_CONNECT, &ch);
	cr_assert_not(ch.refused);
	cr_assert_eq(ch.rule->action, POLICY_DENY);
}

Test(choose, crowded_address_refuses_a_connect)
{
	struct choice ch;
	char name[32];
	setup("plain *:443");
	for (int i = 0; i <= NAMES_PER_ADDR; i++) {
		snprintf(name, sizeof(name), "n%d.example", i);
		resolved(name);
	}
	choose(CHOOSE_CONNECT, &ch);
	cr_assert(ch.refused, "names not kept could pick another rule");
	cr_assert(strstr(ch.names_text, "and more"), "%s", ch.names_text);
}

Test(choose, datagrams_take_a_deny_of_any_candidate)
{
	struct choice ch;
	setup("deny *.corp.example:443; plain *:443");
	resolved("a.corp.example");
	resolved("other.example");
	choose(CHOOSE_ANY_DENY, &ch);
	cr_assert_eq(ch.rule->action, POLICY_DENY);
	cr_assert_str_eq(ch.name, "a.corp.example");
	live_name = "other.example";
	choose(CHOOSE_ANY_DENY, &ch);
	cr_assert_eq(ch.rule->action, POLICY_PLAIN, "the live result names other.example");
	cr_assert(ch.from_result);
}

Test(choose, crowded_datagrams_take_a_deny_a_lost_name_could_pick)
{
	struct choice ch;
	char name[32];
	setup("deny *.corp.example:443; plain *:443");
	for (int i = 0; i <= NAMES_PER_ADDR; i++) {
		snprintf(name, sizeof(name), "n%d.example", i);
		resolved(name);
	}
	choose(CHOOSE_ANY_DENY, &ch);
	cr_assert_eq(ch.rule->action, POLICY_DENY);
	setup("deny 10.9.9.9:443; plain *:443");
	for (int i = 0; i <= NAMES_PER_ADDR; i++) {
		snprintf(name, sizeof(name), "n%d.example", i);
		resolved(name);
	}
	choose(CHOOSE_ANY_DENY, &ch);
	cr_assert_eq(ch.rule->action, POLICY_PLAIN, "no name rule could deny it");
}

Test(choose, foreign_sockets_take_a_tls_rule_of_any_candidate)
{
	struct choice ch;
	setup("tls *.corp.example:443; plain *:443");
	resolved("other.example");
	resolved("a.corp.example");
	choose_dest(CHOOSE_ANY_TLS, NULL, AF_INET, A, 443, &ch);
	cr_assert_eq(ch.rule->action, POLICY_TLS);
}
