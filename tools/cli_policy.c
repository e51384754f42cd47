/* cli_policy.c: where a subcommand's policy comes from. --policy FILE and --rule RULE (repeatable,
 * joined with ';' in the order given) when any is given; otherwise the environment the library reads:
 * TLSSHIM_RULES, then TLSSHIM_POLICY. Loading goes through policy_load, exactly as the library does. */
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_policy_add_rule(struct cli_policy_src *s, const char *rule)
{
	size_t old = s->rules ? strlen(s->rules) : 0, add = strlen(rule);
	char *n = realloc(s->rules, old + add + 2);
	if (!n)
		return -1;
	if (old)
		n[old++] = ';';
	memcpy(n + old, rule, add + 1);
	s->rules = n;
	return 0;
}

int cli_policy_option(struct cli_policy_src *s, int opt, const char *arg)
{
	if (opt == 'p') {
		s->file = arg;
		return 1;
	}
	if (opt != 'r')
		return 0;
	if (cli_policy_add_rule(s, arg) != 0) {
		cli_error("out of memory");
		return -1;
	}
	return 1;
}

void cli_policy_use_env_if_unset(struct cli_policy_src *s)
{
	if (s->file || s->rules)
		return;
	s->from_env = true;
	const char *rules = getenv("TLSSHIM_RULES"), *file = getenv("TLSSHIM_POLICY");
	if (rules && *rules)
		s->rules = strdup(rules);
	if (file && *file)
		s->file = file;
}

bool cli_policy_is_empty(const struct cli_policy_src *s)
{
	return !s->file && !s->rules;
}

int cli_policy_load(const struct cli_policy_src *s, struct policy *p)
{
	struct policy_error err;
	if (policy_load(p, s->rules, s->file, &err) == 0)
		return 0;
	if (err.line)
		fprintf(stderr, "%s:%u:%u: error: %s\n", err.source, err.line, err.column, err.message);
	else
		fprintf(stderr, "%s: error: %s\n", err.source, err.message);
	fprintf(stderr, "tlsshim: the policy does not load; `tlsshim check` lists every problem in it\n");
	return -1;
}

void cli_policy_src_free(struct cli_policy_src *s)
{
	free(s->rules);
	s->rules = NULL;
}

void cli_rule_where(const struct policy_rule *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%u", r->source ? r->source : "?", r->line);
}
