#!/usr/bin/env bash
# No plaintext on the wire: a recording relay between the program and the TLS server keeps every
# byte the client sent (and the server's bytes in *.s2c). A sentinel sent by curl / nc must never
# appear there while the transfer itself works; with a `plain` rule it does appear (control).
source "$(dirname "$0")/lib.sh" "${1:-build}"

SENTINEL="tlsshim-SENTINEL-$$-$RANDOM-wire-check"

# relay_to BACKEND_PORT: starts the relay in front of it; sets PORT (the relay's).
relay_to() {
	rm -f "$T/rec" "$T/rec.s2c"
	start_py relay relay --to "$1" --rec "$T/rec" --v6
}
rec_has() { grep -aqF -- "$1" "$2" 2>/dev/null; }
# The recording must start with a TLS handshake record (0x16 0x03).
starts_with_tls() { [ "$(head -c 2 "$T/rec" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 1603 ]; }

t_curl_header_never_on_wire() {
	need curl || return
	tls_py www leaf --mode http || { fail "server did not start"; return; }
	relay_to "$PORT" || { fail "relay did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun curl curl -sS --max-time 10 -H "X-Sentinel: $SENTINEL" "http://localhost:$PORT/"
	[ "$RC" = 0 ] && grep -q tlsshim-test-page "$OUT" || { fail "curl through relay failed (rc=$RC)"; return; }
	grep -qF "$SENTINEL" "$OUT" || { fail "the server did not receive the sentinel header (echoed request lacks it)"; return; }
	[ -s "$T/rec" ] || { fail "the relay recorded nothing"; return; }
	rec_has "$SENTINEL" "$T/rec" && { fail "PLAINTEXT ON THE WIRE: the sentinel is in the client->server recording"; return; }
	rec_has "X-Sentinel" "$T/rec" && { fail "PLAINTEXT ON THE WIRE: header name in the recording"; return; }
	rec_has "tlsshim-test-page" "$T/rec.s2c" && { fail "PLAINTEXT ON THE WIRE: server's page in the server->client recording"; return; }
	starts_with_tls || { fail "client->server bytes do not start with a TLS handshake record"; return; }
	ok "$(stat -c %s "$T/rec") bytes recorded, no sentinel"
}

t_nc_file_never_on_wire() {
	need nc stunnel4 || return
	start_py hash plain --mode hash || { fail "hash server did not start"; return; }
	start_stunnel stunnel leaf "$PORT" || { fail "stunnel did not start"; return; }
	relay_to "$PORT" || { fail "relay did not start"; return; }
	local i
	for i in $(seq 1 2000); do echo "line $i $SENTINEL"; done >"$T/data"
	local want
	want="$(sha_of "$T/data") $(stat -c %s "$T/data")"
	TMO=30 TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun_in "$T/data" nc nc -N localhost "$PORT"
	[ "$RC" = 0 ] && grep -q "^$want\$" "$OUT" || { fail "nc transfer through relay failed: got '$(head -c 200 "$OUT")' want '$want'"; return; }
	[ -s "$T/rec" ] || { fail "the relay recorded nothing"; return; }
	rec_has "$SENTINEL" "$T/rec" && { fail "PLAINTEXT ON THE WIRE: the sentinel is in the recording"; return; }
	starts_with_tls || { fail "client->server bytes do not start with a TLS handshake record"; return; }
	ok
}

t_python_never_on_wire() {
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	relay_to "$PORT" || { fail "relay did not start"; return; }
	TLSSHIM_RULES="tls 127.0.0.1:$PORT ca-file=$ROOT" srun py "$PY" "$HERE/pyclient.py" tcp 127.0.0.1 "$PORT" --send "$SENTINEL" --shut
	[ "$RC" = 0 ] && grep -qF "$SENTINEL" "$OUT" || { fail "python echo through relay failed (rc=$RC)"; return; }
	rec_has "$SENTINEL" "$T/rec" && { fail "PLAINTEXT ON THE WIRE: the sentinel is in the recording"; return; }
	rec_has "$SENTINEL" "$T/rec.s2c" && { fail "PLAINTEXT ON THE WIRE: the echoed sentinel is in the server->client recording"; return; }
	ok
}

t_control_plain_rule_shows_sentinel() {
	need curl || return
	start_py www plain --mode http || { fail "server did not start"; return; }
	relay_to "$PORT" || { fail "relay did not start"; return; }
	TLSSHIM_RULES="plain localhost:$PORT" srun curl curl -sS --max-time 10 -H "X-Sentinel: $SENTINEL" "http://localhost:$PORT/"
	[ "$RC" = 0 ] && grep -q tlsshim-test-page "$OUT" || { fail "curl through relay with a plain rule failed (rc=$RC)"; return; }
	rec_has "$SENTINEL" "$T/rec" && ok || fail "control: the recorder did not capture the plaintext sentinel, so the other cases prove nothing"
}

tcase curl_header_never_on_wire
tcase nc_file_never_on_wire
tcase python_never_on_wire
tcase control_plain_rule_shows_sentinel
finish
