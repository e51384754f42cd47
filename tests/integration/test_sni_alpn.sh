#!/usr/bin/env bash
# SNI and ALPN, as recorded by a python ssl server (sni_callback, selected_alpn_protocol).
source "$(dirname "$0")/lib.sh" "${1:-build}"

# rec_field FIELD: the value of FIELD in the server's last handshake record (JSON line).
rec_field() {
	[ -s "$T/rec" ] || { echo "NO-HANDSHAKE-RECORDED"; return; }
	tail -1 "$T/rec" | "$PY" -c 'import json,sys; v=json.loads(sys.stdin.read())[sys.argv[1]]; print("null" if v is None else v)' "$1"
}
probe() { # probe RULE [tcpclient args...] HOST
	local rule=$1
	shift
	TLSSHIM_RULES="$rule" srun tc "$CL/tcpclient" -s 'sni-probe\n' -W "$@" "$PORT"
}
works() { [ "$RC" = 0 ] && grep -q sni-probe "$OUT"; }

t_sni_sent_by_default() {
	tls_py echo dnsonly --mode echo --rec "$T/rec" || { fail "server did not start"; return; }
	probe "tls localhost:$PORT ca-file=$ROOT" -4 localhost
	works || { fail "connection failed (rc=$RC)"; return; }
	[ "$(rec_field sni)" = localhost ] && ok || fail "server saw SNI '$(rec_field sni)', want 'localhost'"
}

t_sni_off_sends_none() {
	tls_py echo dnsonly --mode echo --rec "$T/rec" || { fail "server did not start"; return; }
	probe "tls localhost:$PORT ca-file=$ROOT sni=off" -4 localhost
	works || { fail "connection failed (rc=$RC)"; return; }
	[ "$(rec_field sni)" = NONE ] && ok || fail "sni=off: server saw SNI '$(rec_field sni)', want none"
}

t_no_sni_for_ip_destination() {
	tls_py echo leaf --mode echo --rec "$T/rec" || { fail "server did not start"; return; }
	probe "tls 127.0.0.1:$PORT ca-file=$ROOT" -N 127.0.0.1
	works || { fail "connection failed (rc=$RC)"; return; }
	[ "$(rec_field sni)" = NONE ] && ok || fail "IP destination: server saw SNI '$(rec_field sni)', want none"
}

t_name_option_sets_sni() {
	tls_py echo dnsonly --mode echo --rec "$T/rec" || { fail "server did not start"; return; }
	probe "tls 127.0.0.1:$PORT ca-file=$ROOT name=localhost" -N 127.0.0.1
	works || { fail "connection failed (rc=$RC)"; return; }
	[ "$(rec_field sni)" = localhost ] && ok || fail "name=localhost: server saw SNI '$(rec_field sni)', want 'localhost'"
}

t_s_server_sni_selects_cert() {
	# s_server serves -cert2 (good leaf) only to clients whose SNI is "localhost", else -cert
	# (the wildcard leaf, which does not match localhost).
	need openssl || return
	start_s_server www wildcard -www -servername localhost -cert2 "$PKI/leaf.pem" -key2 "$PKI/leaf.key" ||
		{ fail "s_server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun tc "$CL/tcpclient" -4 -s 'GET / HTTP/1.0\r\n\r\n' localhost "$PORT"
	[ "$RC" = 0 ] && grep -q 'Ciphers supported' "$OUT" || { fail "with SNI localhost s_server should serve the good leaf (rc=$RC)"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT sni=off" srun tc2 "$CL/tcpclient" -4 -s 'GET / HTTP/1.0\r\n\r\n' localhost "$PORT"
	expect_refused "localhost:$PORT" "wildcard|example\.test|name" && ok
}

t_alpn_negotiated() {
	tls_py echo leaf --mode echo --rec "$T/rec" --alpn http/1.1 || { fail "server did not start"; return; }
	probe "tls localhost:$PORT ca-file=$ROOT alpn=h2,http/1.1" -4 localhost
	works || { fail "connection failed (rc=$RC)"; return; }
	[ "$(rec_field alpn)" = http/1.1 ] || { fail "server selected ALPN '$(rec_field alpn)', want http/1.1"; return; }
	stop_case_servers
	rm -f "$T/rec"
	tls_py echo leaf --mode echo --rec "$T/rec" --alpn h2,http/1.1 || { fail "server did not start"; return; }
	probe "tls localhost:$PORT ca-file=$ROOT alpn=h2,http/1.1" -4 localhost
	works || { fail "connection failed (rc=$RC)"; return; }
	[ "$(rec_field alpn)" = h2 ] && ok || fail "server selected ALPN '$(rec_field alpn)', want h2 (client's first)"
}

t_no_alpn_by_default() {
	tls_py echo leaf --mode echo --rec "$T/rec" --alpn http/1.1 || { fail "server did not start"; return; }
	probe "tls localhost:$PORT ca-file=$ROOT" -4 localhost
	works || { fail "connection failed (rc=$RC)"; return; }
	[ "$(rec_field alpn)" = null ] && ok || fail "no alpn= given but server selected '$(rec_field alpn)'"
}

tcase sni_sent_by_default
tcase sni_off_sends_none
tcase no_sni_for_ip_destination
tcase name_option_sets_sni
tcase s_server_sni_selects_cert
tcase alpn_negotiated
tcase no_alpn_by_default
finish
