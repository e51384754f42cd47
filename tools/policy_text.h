/* policy_text.h: the policy text as `tlsshim check` needs it beyond what policy/ exposes: where each
 * rule starts and ends (numbered exactly as policy/parse.c numbers them: one a line in a file; in
 * TLSSHIM_RULES one per ';' or newline, quotes and comments respected), the column of a rule's
 * tokens and options, and blanking a rule so parsing can go on past an error. */
#ifndef TLSSHIM_TOOLS_POLICY_TEXT_H
#define TLSSHIM_TOOLS_POLICY_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct ptext_rule {
	size_t start, end; /* [start, end) in the text, the terminator excluded */
	unsigned number;   /* the rule's "line" as policy/parse.c reports it */
};

struct ptext {
	const char *name; /* the source name, as given to policy_parse */
	char *text;	  /* owned, may be blanked */
	size_t len;
	bool rules_mode;
	struct ptext_rule *rules;
	size_t n_rules;
};

/* Splits text (taking ownership of it). Returns 0, or -1 when out of memory. */
int ptext_init(struct ptext *t, const char *name, char *text, size_t len, bool rules_mode);
void ptext_free(struct ptext *t);
/* The rule with this number, or NULL. */
const struct ptext_rule *ptext_rule(const struct ptext *t, unsigned number);
/* Removes the rule's bytes (its terminator stays, so later rules keep their numbers but not their
 * offsets). Returns false if it was already empty (or when out of memory). */
bool ptext_blank(struct ptext *t, unsigned number);
/* 1-based column of the rule's token number idx (0-based), or 0. */
unsigned ptext_token_col(const struct ptext *t, unsigned number, unsigned idx);
/* 1-based column of the first option "key=..." in the rule, or 0. */
unsigned ptext_option_col(const struct ptext *t, unsigned number, const char *key);
/* True when the rule is a `defaults` line. */
bool ptext_is_defaults(const struct ptext *t, unsigned number);

#endif
