#!/usr/bin/env bash
# Self-test of the test harness WITHOUT the shim: the PKI verifies, the servers speak TLS, the relay
# records. If these fail, the shim cases' results mean nothing.
source "$(dirname "$0")/lib.sh" "${1:-build}"

t_pki_verifies() {
	local c bad=""
	for c in leaf rsa wrongname dnsip cnonly wildcard ip2 dnsonly; do
		openssl verify -CAfile "$ROOT" "$PKI/$c.pem" >/dev/null 2>&1 || bad="$bad $c"
	done
	openssl verify -CAfile "$ROOT" -untrusted "$PKI/inter.pem" "$PKI/chained.pem" >/dev/null 2>&1 || bad="$bad chained"
	openssl verify -CAfile "$ROOT" "$PKI/chained.pem" >/dev/null 2>&1 && bad="$bad chained-without-intermediate-verified"
	openssl verify -CAfile "$ROOT" "$PKI/expired.pem" 2>&1 | grep -q 'expired' || bad="$bad expired"
	openssl verify -CAfile "$ROOT" "$PKI/notyet.pem" 2>&1 | grep -q 'not yet valid' || bad="$bad notyet"
	openssl verify -CAfile "$ROOT" "$PKI/untrusted.pem" >/dev/null 2>&1 && bad="$bad untrusted"
	openssl x509 -in "$PKI/cnonly.pem" -noout -ext subjectAltName 2>/dev/null | grep -q DNS && bad="$bad cnonly-has-san"
	[ -z "$bad" ] && ok || fail "PKI certificates not as designed:$bad"
}

t_s_server_https() {
	need curl openssl || return
	start_s_server www leaf -www || { fail "s_server did not start"; return; }
	prun curl curl -sS --max-time 10 --cacert "$ROOT" "https://localhost:$PORT/"
	[ "$RC" = 0 ] && grep -q 's_server' "$OUT" && ok || fail "curl https to s_server failed (rc=$RC)"
}

t_python_tls_echo() {
	tls_py echo leaf --mode echo --v6 --rec "$T/echo.rec" || { fail "server did not start"; return; }
	prun py "$PY" "$HERE/pyclient.py" tcp localhost "$PORT" --tls --ca "$ROOT" --sni localhost --send 'ping\n' --shut
	[ "$RC" = 0 ] && grep -q ping "$OUT" && grep -q '"sni": "localhost"' "$T/echo.rec" && ok ||
		fail "python TLS echo round trip or SNI record failed: $(cat "$T/echo.rec" 2>/dev/null)"
}

t_stunnel_hash() {
	need stunnel4 socat || return
	start_py hash plain --mode hash || { fail "hash server did not start"; return; }
	local hp=$PORT
	start_stunnel stunnel leaf "$hp" || { fail "stunnel did not start"; return; }
	det_file "$T/data" 1000000
	STDIN=$T/data prun socat socat -t 5 - "OPENSSL:127.0.0.1:$PORT,cafile=$ROOT,commonname=localhost"
	local want
	want="$(sha_of "$T/data") 1000000"
	[ "$RC" = 0 ] && grep -q "$want" "$OUT" && ok || fail "stunnel->hash via socat: want '$want' got '$(cat "$OUT")'"
}

t_relay_records() {
	start_py www plain --mode http || { fail "http server did not start"; return; }
	start_py relay relay --to "$PORT" --rec "$T/rec" || { fail "relay did not start"; return; }
	prun curl curl -sS --max-time 10 -H 'X-Sentinel: harness-sentinel-1' "http://127.0.0.1:$PORT/"
	[ "$RC" = 0 ] && grep -q tlsshim-test-page "$OUT" && grep -aq harness-sentinel-1 "$T/rec" && ok ||
		fail "relay did not forward or record (rc=$RC)"
}

t_c_clients_plain() {
	start_py echo plain --mode echo || { fail "echo server did not start"; return; }
	local ep=$PORT bad=""
	prun iov "$CL/iovclient" 127.0.0.1 "$ep"
	[ "$RC" = 0 ] || bad="$bad iovclient($(grep FAIL "$OUT"))"
	prun pw "$CL/partialwrite" 127.0.0.1 "$ep" 4194304
	[ "$RC" = 0 ] || bad="$bad partialwrite"
	prun th "$CL/threadsclient" 127.0.0.1 "$ep" 4 2 20000
	[ "$RC" = 0 ] || bad="$bad threadsclient"
	start_py hash plain --mode hash || { fail "hash server did not start"; return; }
	prun sd "$CL/shutdownclient" 127.0.0.1 "$PORT" 300000
	[ "$RC" = 0 ] || bad="$bad shutdownclient"
	[ -z "$bad" ] && ok || fail "C clients failed against plain servers:$bad"
}

NOSHIM=1 tcase pki_verifies
NOSHIM=1 tcase s_server_https
NOSHIM=1 tcase python_tls_echo
NOSHIM=1 tcase stunnel_hash
NOSHIM=1 tcase relay_records
NOSHIM=1 tcase c_clients_plain
finish
