/* peer.c: see peer.h. */
#include "preload/peer.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

void peer_for_rule(const struct policy_rule *rule, const char *remembered, int family, const uint8_t *addr,
		   struct peer_id *out)
{
	const struct policy_tls_opts *o = &rule->tls;
	memset(out, 0, sizeof(*out));
	out->family = family;
	if (addr && (family == AF_INET || family == AF_INET6))
		memcpy(out->addr, addr, family == AF_INET ? 4 : 16);
	out->name = o->name;
	out->why_name = "name= in the rule";
	if (!out->name && rule->host_kind == POLICY_HOST_NAME) {
		out->name = rule->host;
		out->why_name = "the rule's host name";
	}
	if (!out->name && remembered && remembered[0]) {
		out->name = remembered;
		out->why_name = "the name the program resolved";
	}
	uint8_t tmp[16];
	if (out->name && inet_pton(AF_INET, out->name, tmp) == 1) {
		out->family = AF_INET;
		memcpy(out->addr, tmp, 4);
		out->name = NULL;
		out->why_name = "the address in name=";
	} else if (out->name && inet_pton(AF_INET6, out->name, tmp) == 1) {
		out->family = AF_INET6;
		memcpy(out->addr, tmp, 16);
		out->name = NULL;
		out->why_name = "the address in name=";
	} else if (!out->name) {
		out->why_name = "no name is known: the address itself";
	}
	out->sni = o->sni_off ? NULL : o->sni ? o->sni : out->name;
}
