/* policy_text.c: see policy_text.h. The splitting mirrors the lexer in policy/parse.c: blanks are
 * space, tab and CR; '#' at the start of a token comments to the end of the rule; a '"' right after
 * '=' opens a quoted value in which \" and \\ are escapes and ';' is literal; a newline always ends
 * a rule. */
#include "tools/policy_text.h"

#include <stdlib.h>
#include <string.h>

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

int ptext_init(struct ptext *t, const char *name, char *text, size_t len, bool rules_mode)
{
	memset(t, 0, sizeof(*t));
	t->name = name;
	t->text = text;
	t->len = len;
	t->rules_mode = rules_mode;
	size_t cap = 1;
	for (size_t i = 0; i < len; i++)
		if (text[i] == '\n' || (rules_mode && text[i] == ';'))
			cap++;
	t->rules = calloc(cap, sizeof(*t->rules));
	if (!t->rules)
		return -1;
	size_t start = 0;
	unsigned number = 1;
	bool token_start = true, comment = false, quote = false;
	char prev = 0;
	for (size_t i = 0; i <= len && t->n_rules < cap; i++) {
		char c = i < len ? text[i] : '\n';
		bool ends = c == '\n';
		if (!ends && comment) {
			ends = rules_mode && c == ';';
		} else if (!ends && quote) {
			if (c == '\\' && i + 1 < len && text[i + 1] != '\n')
				i++;
			else if (c == '"')
				quote = false;
			continue;
		} else if (!ends && is_blank(c)) {
			token_start = true;
			prev = 0;
			continue;
		} else if (!ends && rules_mode && c == ';') {
			ends = true;
		} else if (!ends && c == '#' && token_start) {
			comment = true;
			continue;
		} else if (!ends) {
			if (c == '"' && prev == '=')
				quote = true;
			token_start = false;
			prev = c;
			continue;
		}
		if (!ends)
			continue;
		t->rules[t->n_rules++] = (struct ptext_rule){start, i, number++};
		start = i + 1;
		token_start = true;
		comment = quote = false;
		prev = 0;
	}
	return 0;
}

void ptext_free(struct ptext *t)
{
	free(t->text);
	free(t->rules);
	memset(t, 0, sizeof(*t));
}

const struct ptext_rule *ptext_rule(const struct ptext *t, unsigned number)
{
	if (number == 0 || number > t->n_rules)
		return NULL;
	return &t->rules[number - 1];
}

bool ptext_blank(struct ptext *t, unsigned number)
{
	const struct ptext_rule *r = ptext_rule(t, number);
	if (!r || r->start >= r->end)
		return false;
	/* Remove the rule's bytes (its terminator stays, so rule numbers do not move), then split again:
	 * spaces would not do, a line over the length limit would stay too long. */
	size_t cut = r->end - r->start;
	memmove(t->text + r->start, t->text + r->end, t->len - r->end);
	t->len -= cut;
	free(t->rules);
	t->rules = NULL;
	return ptext_init(t, t->name, t->text, t->len, t->rules_mode) == 0;
}

/* Calls back for each token of the rule with its offset and length; stops when fn returns true. */
static unsigned each_token(const struct ptext *t, unsigned number,
			   bool (*fn)(const char *tok, size_t n, unsigned idx, const void *arg),
			   const void *arg)
{
	const struct ptext_rule *r = ptext_rule(t, number);
	if (!r)
		return 0;
	unsigned idx = 0;
	size_t i = r->start;
	while (i < r->end) {
		while (i < r->end && is_blank(t->text[i]))
			i++;
		if (i >= r->end || t->text[i] == '#')
			break;
		size_t s = i;
		bool quote = false;
		char prev = 0;
		for (; i < r->end; i++) {
			char c = t->text[i];
			if (quote) {
				if (c == '\\' && i + 1 < r->end)
					i++;
				else if (c == '"')
					quote = false;
				continue;
			}
			if (is_blank(c))
				break;
			if (c == '"' && prev == '=')
				quote = true;
			prev = c;
		}
		if (fn(t->text + s, i - s, idx, arg))
			return (unsigned)(s - r->start + 1);
		idx++;
	}
	return 0;
}

static bool token_is_idx(const char *tok, size_t n, unsigned idx, const void *arg)
{
	return idx == *(const unsigned *)arg;
}

static bool token_is_option(const char *tok, size_t n, unsigned idx, const void *arg)
{
	const char *key = arg;
	size_t k = strlen(key);
	return idx > 0 && n > k && memcmp(tok, key, k) == 0 && tok[k] == '=';
}

unsigned ptext_token_col(const struct ptext *t, unsigned number, unsigned idx)
{
	return each_token(t, number, token_is_idx, &idx);
}

unsigned ptext_option_col(const struct ptext *t, unsigned number, const char *key)
{
	return each_token(t, number, token_is_option, key);
}

static bool token_is_defaults(const char *tok, size_t n, unsigned idx, const void *arg)
{
	return idx == 0 && n == 8 && memcmp(tok, "defaults", 8) == 0;
}

bool ptext_is_defaults(const struct ptext *t, unsigned number)
{
	return each_token(t, number, token_is_defaults, NULL) != 0;
}
