/* choose.c: the rule and the name for a destination, from the candidate names (see choose.h). */
#include "preload/choose.h"

#include "preload/ailive.h"
#include "preload/hooks.h"
#include "preload/shim.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const struct policy_rule *match(int family, const uint8_t *addr, uint16_t port, const char *name)
{
	struct policy_dest pd = {
	    .family = family, .addr = addr, .port = port, .name = name && name[0] ? name : NULL};
	return policy_match(shim_policy(), &pd, resolve_rule_name_has_addr, NULL);
}

static const char *action_word(const struct policy_rule *r)
{
	if (!r)
		return "no rule (plain)";
	return r->action == POLICY_TLS ? "tls" : r->action == POLICY_DENY ? "deny" : "plain";
}

/* Whether a tls rule verifies a name of its own (name= or the rule's host name) rather than the name the
 * program resolved: then several candidates that all pick it leave nothing open. */
static bool rule_fixes_name(const struct policy_rule *r)
{
	return r->tls.name != NULL || r->host_kind == POLICY_HOST_NAME;
}

/* A crowded address (more names than the memory keeps) in the ANY uses: the first rule with action want
 * that a name we do not know could pick. Only rules matched by name tell names apart, so: a name or
 * suffix rule with that action whose port range holds port. NULL when there is none. */
static const struct policy_rule *unknown_name_could_pick(enum policy_action want, uint16_t port)
{
	const struct policy *p = shim_policy();
	for (size_t i = 0; p && i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];
		if (r->action == want && port >= r->port_lo && port <= r->port_hi &&
		    (r->host_kind == POLICY_HOST_SUFFIX || r->host_kind == POLICY_HOST_NAME))
			return r;
	}
	return NULL;
}

static void set_name(struct choice *out, const char *name, const char *how)
{
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->how = how;
}

static void join_names(const struct names_set *s, struct choice *out)
{
	size_t used = 0;
	out->names_text[0] = '\0';
	for (size_t i = 0; i < s->n; i++) {
		int n = snprintf(out->names_text + used, sizeof(out->names_text) - used, "%s%s",
				 i ? ", " : "", s->name[i]);
		if (n < 0 || (size_t)n >= sizeof(out->names_text) - used) {
			snprintf(out->names_text + sizeof(out->names_text) - 5, 5, "...");
			return;
		}
		used += (size_t)n;
	}
	if (s->crowded)
		snprintf(out->names_text + used, sizeof(out->names_text) - used, " and more");
}

static void refuse(struct choice *out, int family, const uint8_t *addr, uint16_t port, const char *what)
{
	char text[INET6_ADDRSTRLEN] = "";
	inet_ntop(family, addr, text, sizeof(text));
	out->refused = true;
	out->rule = NULL;
	out->name[0] = '\0';
	snprintf(out->reason, sizeof(out->reason),
		 "refused with EACCES: the program resolved several names to this address (%s), connect() "
		 "was not given the getaddrinfo result of one of them, and %s; write a rule for the address "
		 "first that says which server it is, e.g. tls %s%s%s:%u name=NAME",
		 out->names_text, what, family == AF_INET6 ? "[" : "", text, family == AF_INET6 ? "]" : "",
		 port);
}

void choose_dest(enum choose_use use, const struct sockaddr *sa, int family, const uint8_t *addr,
		 uint16_t port, struct choice *out)
{
	memset(out, 0, sizeof(*out));
	out->how = "no name is known";
	if (ailive_name_for(sa, family, addr, out->name, sizeof(out->name))) {
		out->how = "the getaddrinfo result passed to connect";
		out->from_result = true;
		snprintf(out->names_text, sizeof(out->names_text), "%s", out->name);
		out->rule = match(family, addr, port, out->name);
		return;
	}
	struct names_set s;
	names_candidates(family, addr, &s);
	join_names(&s, out);
	if (s.n == 0) {
		out->rule = match(family, addr, port, NULL);
		return;
	}
	if (s.n == 1 && !s.crowded) {
		set_name(out, s.name[0], "the only name resolved to this address");
		out->rule = match(family, addr, port, out->name);
		return;
	}
	const struct policy_rule *picked[NAMES_PER_ADDR];
	for (size_t i = 0; i < s.n; i++)
		picked[i] = match(family, addr, port, s.name[i]);
	if (use != CHOOSE_CONNECT) { /* the strictest: the wanted action of any candidate */
		enum policy_action want = use == CHOOSE_ANY_DENY ? POLICY_DENY : POLICY_TLS;
		for (size_t i = 0; i < s.n; i++) {
			if (picked[i] && picked[i]->action == want) {
				set_name(out, s.name[i], "one of the names resolved to this address");
				out->rule = picked[i];
				return;
			}
		}
		out->rule = picked[0];
		const struct policy_rule *r = s.crowded ? unknown_name_could_pick(want, port) : NULL;
		if (r) {
			out->rule = r;
			out->how = "a name the memory did not keep could pick it";
		}
		return;
	}
	if (s.crowded) {
		refuse(out, family, addr, port, "there are more than the shim keeps for one address");
		return;
	}
	for (size_t i = 1; i < s.n; i++) {
		if (picked[i] == picked[0])
			continue;
		char what[1000];
		size_t used = (size_t)snprintf(what, sizeof(what), "they pick different rules (");
		for (size_t j = 0; j < s.n && used < sizeof(what); j++) {
			int n = picked[j] ? snprintf(what + used, sizeof(what) - used, "%s%s: %s, rule %s:%u",
						     j ? "; " : "", s.name[j], action_word(picked[j]),
						     picked[j]->source, picked[j]->line)
					  : snprintf(what + used, sizeof(what) - used, "%s%s: %s",
						     j ? "; " : "", s.name[j], action_word(NULL));
			if (n < 0)
				break;
			used += (size_t)n;
		}
		if (used < sizeof(what))
			snprintf(what + used, sizeof(what) - used, ")");
		refuse(out, family, addr, port, what);
		return;
	}
	out->rule = picked[0];
	out->how = "several names resolved to this address pick this rule";
	if (picked[0] && picked[0]->action == POLICY_TLS && !rule_fixes_name(picked[0])) {
		char what[300];
		snprintf(what, sizeof(what), "rule %s:%u would verify whichever name the program meant",
			 picked[0]->source, picked[0]->line);
		refuse(out, family, addr, port, what);
	}
}
