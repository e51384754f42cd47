/* hosts.c: host names and IP literals as the policy language spells them: the LDH host-name check
 * (policy_valid_hostname), strict IPv4/IPv6 literal parsing, lower-casing, and quoting untrusted
 * bytes for error messages. No allocation except pol_lower_dup. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/internal.h"

static bool is_ldh(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool pol_hostname_ok(const char *s, size_t n)
{
	size_t i, label = 0;

	if (!s || n == 0)
		return false;
	if (s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!is_ldh(c) || (label == 0 && c == '-') || ++label > 63)
			return false;
	}
	return label > 0 && s[n - 1] != '-';
}

bool policy_valid_hostname(const char *name)
{
	return name && pol_hostname_ok(name, strlen(name));
}

bool pol_parse_ipv4(const char *s, size_t n, uint8_t out[4])
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;

		if (part > 0) {
			if (i >= n || s[i] != '.')
				return false;
			i++;
		}
		while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(s[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && s[i - digits] == '0'))
			return false;
		out[part] = (uint8_t)v;
	}
	return i == n;
}

bool pol_parse_ipv6(const char *s, size_t n, uint8_t out[16])
{
	char buf[INET6_ADDRSTRLEN + 1];

	if (n == 0 || n >= sizeof(buf) || memchr(s, '\0', n))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, out) == 1;
}

bool pol_is_v4_mapped(const uint8_t a[16])
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return memcmp(a, prefix, sizeof(prefix)) == 0;
}

bool pol_digits_dots(const char *s, size_t n)
{
	bool digit = false;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			digit = true;
		else if (s[i] != '.')
			return false;
	}
	return digit;
}

char *pol_lower_dup(const char *s, size_t n)
{
	char *d;
	size_t i;

	if (n > 1 && s[n - 1] == '.')
		n--;
	d = malloc(n + 1);
	if (!d)
		return NULL;
	for (i = 0; i < n; i++)
		d[i] = (char)pol_lower((unsigned char)s[i]);
	d[n] = '\0';
	return d;
}

char *pol_quote(char *out, size_t cap, const char *s, size_t n, size_t max)
{
	size_t o = 0, i;

	if (cap == 0)
		return out;
	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		char tmp[5];
		size_t k;

		if (c >= 0x20 && c < 0x7f) {
			tmp[0] = (char)c;
			k = 1;
		} else {
			snprintf(tmp, sizeof(tmp), "\\x%02x", (unsigned)c);
			k = 4;
		}
		if (o + k > max || o + k + 4 > cap) {
			if (o + 4 <= cap) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(out + o, tmp, k);
		o += k;
	}
	out[o < cap ? o : cap - 1] = '\0';
	return out;
}
