#!/usr/bin/env bash
# groups=: the key-exchange groups of tls and serve rules, against real OpenSSL peers. Client side:
# openssl s_server -groups ... -trace shows what the shim's ClientHello offers (supported_groups, the
# key share) and which group the handshake used (ServerHello key_share, TLS 1.2 ServerKeyExchange);
# tlsshim probe prints the group it negotiated. Server side: openssl s_client -groups ... prints
# "Server Temp Key". No overlap is refused on both sides with one reason line.
source "$(dirname "$0")/lib.sh" "${1:-build}"

GET='GET / HTTP/1.0\r\nHost: localhost\r\n\r\n'

# trace_server NAME CERT GROUPS [ARGS...]: s_server -www -trace with -groups GROUPS (log $T/NAME.log).
trace_server() {
	local name=$1 c=$2 g=$3
	shift 3
	start_s_server "$name" "$c" -www -trace -groups "$g" "$@"
}

# get OPTS: tcpclient GET through the shim to $PORT with a tls rule plus OPTS.
get() {
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT $1" srun tc "$CL/tcpclient" -4 -s "$GET" localhost "$PORT"
}

# offered LOG: the groups of the first ClientHello's supported_groups in an s_server trace, e.g. "24 29".
offered() { awk '/extension_type=supported_groups/ {on=1; next} on && /\([0-9]+\)$/ {gsub(/.*\(|\)/, ""); printf "%s ", $0; next} on {exit}' "$1" | sed 's/ $//'; }
# shares LOG: every key_share NamedGroup in the trace, in order (ClientHello, HelloRetryRequest, ...).
shares() { grep -a 'NamedGroup:' "$1" | grep -ao '([0-9]*)$' | tr -d '()' | tr '\n' ' ' | sed 's/ $//'; }
# curve LOG: the TLS 1.2 ServerKeyExchange named_curve code point.
curve() { grep -a 'named_curve:' "$1" | head -1 | grep -ao '([0-9]*)$' | tr -d '()'; }

t_client_offers_only_its_groups() {
	need openssl || return
	trace_server www leaf P-384:P-256 || { fail "s_server did not start"; return; }
	get "groups=P-384"
	[ "$RC" = 0 ] || { fail "no page with groups=P-384 (rc=$RC)"; return; }
	local o s
	o=$(offered "$T/www.log")
	s=$(shares "$T/www.log")
	[ "$o" = 24 ] || { fail "supported_groups offered '$o', want 24 (P-384) alone"; return; }
	[ "$s" = "24 24" ] || { fail "key shares '$s', want P-384 (24) from the client and the server"; return; }
	ok "supported_groups [$o], key shares [$s]"
}

t_client_default_offers_more() {
	# control: without groups= the same client offers several groups, so the case above can fail
	need openssl || return
	trace_server www leaf P-384:P-256 || { fail "s_server did not start"; return; }
	get ""
	[ "$RC" = 0 ] || { fail "no page (rc=$RC)"; return; }
	local o
	o=$(offered "$T/www.log")
	case " $o " in *" 29 "*" "* | *" "*" 29 "*) ;; *) fail "default supported_groups '$o' lack X25519 among others"; return ;; esac
	ok "default supported_groups [$o]"
}

t_client_order_then_retry() {
	need openssl || return
	trace_server www leaf P-256 || { fail "s_server did not start"; return; }
	get "groups=X25519:P-256"
	[ "$RC" = 0 ] || { fail "no page with groups=X25519:P-256 against a P-256 server (rc=$RC)"; return; }
	local o s
	o=$(offered "$T/www.log")
	s=$(shares "$T/www.log")
	[ "$o" = "29 23" ] || { fail "supported_groups '$o', want 29 23 (X25519 then P-256, the rule's order)"; return; }
	# X25519 key share first, the server's HelloRetryRequest asks for P-256, the second ClientHello and
	# the ServerHello carry P-256
	[ "$s" = "29 23 23 23" ] || { fail "key shares '$s', want 29 23 23 23 (X25519, HRR P-256, P-256, P-256)"; return; }
	ok "supported_groups [$o], key shares [$s]"
}

t_client_no_overlap_refused() {
	need openssl || return
	trace_server www leaf P-384 || { fail "s_server did not start"; return; }
	get "groups=X25519:P-256"
	expect_refused "localhost:$PORT" "group.*groups=" || return
	ok "$(shim_lines)"
}

t_client_tls12_curve() {
	need openssl || return
	trace_server www rsa P-256:P-384 -tls1_2 || { fail "s_server did not start"; return; }
	get "groups=P-384 max-version=1.2"
	[ "$RC" = 0 ] || { fail "no TLS 1.2 page with groups=P-384 (rc=$RC)"; return; }
	local o c
	o=$(offered "$T/www.log")
	c=$(curve "$T/www.log")
	[ "$o" = 24 ] && [ "$c" = 24 ] || { fail "TLS 1.2: offered '$o', ServerKeyExchange curve '$c', want 24 and 24"; return; }
	ok "TLS 1.2 supported_groups [$o], ECDHE curve $c (P-384)"
}

t_probe_prints_group() {
	need openssl || return
	start_s_server www leaf -www -groups P-521:P-256 || { fail "s_server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT groups=P-521" prun probe "$BUILD/tlsshim" probe "localhost:$PORT"
	grep -q 'key exchange SECP521R1' "$OUT" || { fail "probe did not report P-521: $(grep '^tls:' "$OUT")"; return; }
	ok "$(grep '^tls:' "$OUT")"
}

# ---- serve rules ----
# serve_echo NAME CERT OPTS: srv_rotate (a C echo server) under a serve rule with OPTS; sets PORT.
serve_echo() {
	local name=$1 c=$2 opts=$3
	PORT=$(free_port)
	rm -f "$T/$name.port"
	bg "$name" env TLSSHIM_LOG=info TLSSHIM_RULES="serve 127.0.0.1:$PORT cert=$PKI/$c.pem key=$PKI/$c.key $opts" \
		LD_PRELOAD="$PRELOAD" "$CL/srv_rotate" "$PORT" "$T/$name.port"
	wait_portfile "$name"
}

# s_client NAME ARGS...: openssl s_client to $PORT that sends a line; sets OUT/ERR.
s_client() {
	local name=$1
	shift
	STDIN=<(printf 'ping\n'; sleep 0.5) prun "$name" openssl s_client -connect "127.0.0.1:$PORT" -servername localhost \
		-CAfile "$ROOT" -verify_return_error "$@"
}
temp_key() { grep -a 'Server Temp Key' "$OUT" | head -1 | sed 's/^Server Temp Key: //'; }

t_serve_pins_group() {
	need openssl || return
	serve_echo srv leaf "groups=P-256" || { fail "server did not start"; return; }
	s_client sc -groups X25519:P-256
	grep -q '^ping' "$OUT" || { fail "no echo with s_client -groups X25519:P-256 (rc=$RC)"; return; }
	temp_key | grep -q 'prime256v1' || { fail "Server Temp Key '$(temp_key)', want P-256 (prime256v1)"; return; }
	local pinned
	pinned=$(temp_key)
	# control: the same client against a rule without groups= gets X25519
	serve_echo dflt leaf "" || { fail "second server did not start"; return; }
	s_client sc2 -groups X25519:P-256
	temp_key | grep -q 'X25519' || { fail "without groups= the Server Temp Key is '$(temp_key)', want X25519 (control)"; return; }
	ok "groups=P-256: $pinned; without groups=: $(temp_key)"
}

# The rule's order decides when the client's key share is not one of the rule's groups: the
# HelloRetryRequest asks for the rule's first group that the client supports. A key share the rule lists
# is taken as it is (no extra round trip), as OpenSSL's own server does.
t_serve_order_of_preference() {
	need openssl || return
	local a b c
	serve_echo srv leaf "groups=P-384:P-256" || { fail "server did not start"; return; }
	s_client sc -groups X25519:P-256:P-384
	grep -q '^ping' "$OUT" || { fail "no echo (rc=$RC)"; return; }
	a=$(temp_key)
	echo "$a" | grep -q 'secp384r1' || { fail "groups=P-384:P-256, client X25519:P-256:P-384: Server Temp Key '$a', want P-384"; return; }
	s_client sc2 -groups P-256:P-384
	b=$(temp_key)
	echo "$b" | grep -q 'prime256v1' || { fail "groups=P-384:P-256, client key share P-256: Server Temp Key '$b', want P-256 taken as it is"; return; }
	serve_echo srv2 leaf "groups=P-256:P-384" || { fail "second server did not start"; return; }
	s_client sc3 -groups X25519:P-256:P-384
	c=$(temp_key)
	echo "$c" | grep -q 'prime256v1' || { fail "groups=P-256:P-384, client X25519:P-256:P-384: Server Temp Key '$c', want P-256"; return; }
	ok "P-384:P-256 -> $a; key share P-256 -> $b; P-256:P-384 -> $c"
}

t_serve_no_overlap_refused() {
	need openssl || return
	serve_echo srv leaf "groups=P-256" || { fail "server did not start"; return; }
	s_client sc -groups X25519
	grep -q '^ping' "$OUT" && { fail "a client with X25519 only was served by a groups=P-256 rule"; return; }
	local line
	for _ in $(seq 1 20); do
		line=$(grep -a "client 127.0.0.1:[0-9]* -> 127.0.0.1:$PORT" "$T/srv.log" | grep -v 'accepted TLS' | head -1)
		[ -n "$line" ] && break
		sleep 0.1
	done
	echo "$line" | grep -q 'groups=P-256' || { fail "the refusal line does not name groups=P-256: '$line'"; return; }
	ok "$line"
}

t_serve_tls12_curve() {
	need openssl || return
	serve_echo srv rsa "groups=P-384 max-version=1.2" || { fail "server did not start"; return; }
	s_client sc -tls1_2 -groups P-256:P-384
	grep -q '^ping' "$OUT" || { fail "no TLS 1.2 echo (rc=$RC)"; return; }
	temp_key | grep -q 'secp384r1' || { fail "TLS 1.2 Server Temp Key '$(temp_key)', want P-384"; return; }
	ok "TLS 1.2: $(temp_key)"
}

# wolfSSL 5.5.4's TLS 1.2 server, when the client offers none of the curves it allows, falls back to
# P-256 instead of failing; the shim checks the group after every handshake, on both sides.
t_serve_tls12_fallback_refused() {
	need openssl || return
	serve_echo srv rsa "groups=P-384" || { fail "server did not start"; return; }
	s_client sc -tls1_2 -groups P-256
	grep -q '^ping' "$OUT" && { fail "a TLS 1.2 client with P-256 only was served by a groups=P-384 rule ($(temp_key))"; return; }
	local line
	for _ in $(seq 1 20); do
		line=$(grep -a "client 127.0.0.1:[0-9]* -> 127.0.0.1:$PORT" "$T/srv.log" | grep -v 'accepted TLS' | head -1)
		[ -n "$line" ] && break
		sleep 0.1
	done
	echo "$line" | grep -q 'offers none of this rule.s groups=P-384 (the handshake fell back to P-256)' ||
		{ fail "no refusal line naming groups=P-384 and the fallback: '$line'"; return; }
	ok "s_client saw '$(temp_key)', the program got nothing; $line"
}

t_client_refuses_group_outside_list() {
	# the peer is the fallback above: a shim serve rule with groups=P-256 (wolfSSL's server) facing a
	# client whose rule allows X25519 only, over TLS 1.2; the server picks P-256 anyway
	need openssl || return
	serve_echo srv rsa "groups=P-256" || { fail "server did not start"; return; }
	get "groups=X25519 max-version=1.2"
	expect_refused "localhost:$PORT" "server chose key-exchange group P-256, which the rule's groups=X25519 excludes" || return
	ok "$(shim_lines)"
}

# a resumption has no key exchange of its own in TLS 1.2 (and a psk_dhe_ke one in TLS 1.3): the
# group check lets it through
t_serve_resumption_with_groups() {
	need openssl || return
	serve_echo srv leaf "groups=P-256" || { fail "server did not start"; return; }
	local v
	for v in -tls1_2 -tls1_3; do
		rm -f "$T/sess"
		s_client new$v $v -sess_out "$T/sess"
		grep -q '^ping' "$OUT" || { fail "$v: no echo on the first connection (rc=$RC)"; return; }
		s_client res$v $v -sess_in "$T/sess"
		grep -q '^ping' "$OUT" && grep -q '^Reused' "$OUT" || { fail "$v: the second connection did not resume and echo: $(grep -a -E '^(New|Reused)' "$OUT")"; return; }
	done
	[ "$(grep -c 'resumed' "$T/srv.log")" = 2 ] || { fail "the server did not log two resumptions"; return; }
	ok "TLS 1.2 and 1.3 resumed under groups=P-256"
}

tcase client_offers_only_its_groups
tcase client_default_offers_more
tcase client_order_then_retry
tcase client_no_overlap_refused
tcase client_tls12_curve
tcase probe_prints_group
tcase serve_pins_group
tcase serve_order_of_preference
tcase serve_no_overlap_refused
tcase serve_tls12_curve
tcase serve_tls12_fallback_refused
tcase client_refuses_group_outside_list
tcase serve_resumption_with_groups
finish
