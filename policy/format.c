/* format.c: turning rules back into text for logs and the CLI: policy_action_name and
 * policy_rule_pattern. A pattern written here parses back to the same host and port selection
 * (the fuzz target fuzz_policy_parse checks this). */
#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>

#include "policy/internal.h"

const char *policy_action_name(enum policy_action a)
{
	switch (a) {
	case POLICY_PLAIN:
		return "plain";
	case POLICY_TLS:
		return "tls";
	case POLICY_DENY:
		return "deny";
	case POLICY_SERVE:
		return "serve";
	}
	return "unknown";
}

/* "host:port": the port is always written (* for 0-65535, N, or lo-hi). */
void policy_rule_pattern(const struct policy_rule *r, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN], host[INET6_ADDRSTRLEN + 16], port[16];
	bool v6;

	if (!buf || len == 0)
		return;
	if (!r) {
		buf[0] = '\0';
		return;
	}
	v6 = r->family == AF_INET6;
	switch (r->host_kind) {
	case POLICY_HOST_ANY:
		snprintf(host, sizeof(host), "*");
		break;
	case POLICY_HOST_NAME:
	case POLICY_HOST_SUFFIX:
		host[0] = '\0';
		break;
	case POLICY_HOST_ADDR:
	case POLICY_HOST_CIDR:
		if (!inet_ntop(v6 ? AF_INET6 : AF_INET, r->addr, addr, sizeof(addr)))
			snprintf(addr, sizeof(addr), "?");
		if (r->host_kind == POLICY_HOST_ADDR)
			snprintf(host, sizeof(host), v6 ? "[%s]" : "%s", addr);
		else
			snprintf(host, sizeof(host), v6 ? "[%s]/%u" : "%s/%u", addr, r->prefix_len);
		break;
	default:
		snprintf(host, sizeof(host), "?");
		break;
	}
	if (r->port_lo == 0 && r->port_hi == 65535)
		snprintf(port, sizeof(port), "*");
	else if (r->port_lo == r->port_hi)
		snprintf(port, sizeof(port), "%u", (unsigned)r->port_lo);
	else
		snprintf(port, sizeof(port), "%u-%u", (unsigned)r->port_lo, (unsigned)r->port_hi);

	if (r->host_kind == POLICY_HOST_NAME)
		snprintf(buf, len, "%s:%s", r->host ? r->host : "?", port);
	else if (r->host_kind == POLICY_HOST_SUFFIX)
		snprintf(buf, len, "*%s:%s", r->host ? r->host : ".?", port);
	else
		snprintf(buf, len, "%s:%s", host, port);
}
