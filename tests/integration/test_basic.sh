#!/usr/bin/env bash
# Unmodified programs (curl, nc, python3, the C clients) talk TLS through the shim, and every byte
# arrives intact.
source "$(dirname "$0")/lib.sh" "${1:-build}"

GET='GET / HTTP/1.0\r\nHost: localhost\r\n\r\n'

t_curl_rules_by_name() {
	need curl openssl || return
	start_s_server www leaf -www || { fail "s_server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun curl curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" = 0 ] || { fail "curl exited $RC"; return; }
	grep -q 'Ciphers supported in s_server' "$OUT" || { fail "curl did not get the s_server -www page"; return; }
	ok
}

t_curl_policy_file() {
	need curl openssl || return
	start_s_server www leaf -www || { fail "s_server did not start"; return; }
	cat >"$T/policy" <<EOF
# tlsshim test policy
defaults ca-file=$ROOT

plain 127.0.0.1:1        # unrelated rule first
tls localhost:$PORT
EOF
	TLSSHIM_POLICY=$T/policy srun curl curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" = 0 ] && grep -q 'Ciphers supported in s_server' "$OUT" && ok ||
		fail "curl via TLSSHIM_POLICY file did not get the page (rc=$RC)"
}

t_curl_quiet_on_success() {
	need curl || return
	tls_py www leaf --mode http --v6 || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun curl curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" = 0 ] && grep -q tlsshim-test-page "$OUT" || { fail "curl failed (rc=$RC)"; return; }
	[ "$(n_shim_lines)" = 0 ] && ok || fail "default log level (warn) printed on a good connection: $(shim_lines)"
}

t_curl_ipv6_literal() {
	need curl || return
	tls_py www leaf --mode http --v6 || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls [::1]:$PORT ca-file=$ROOT" srun curl curl -sS --max-time 10 "http://[::1]:$PORT/"
	[ "$RC" = 0 ] && grep -q tlsshim-test-page "$OUT" && grep -q "'::1'" "$T/www.log" && ok ||
		fail "curl http://[::1]:PORT/ through rule [::1] failed (rc=$RC)"
}

t_python_ipv4_address() {
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls 127.0.0.1:$PORT ca-file=$ROOT" srun py "$PY" "$HERE/pyclient.py" tcp 127.0.0.1 "$PORT" --send 'hello-v4\n' --shut
	[ "$RC" = 0 ] && grep -q hello-v4 "$OUT" && grep -q handshake "$T/echo.log" && ok ||
		fail "python raw socket to 127.0.0.1 (IP SAN) did not round-trip (rc=$RC)"
}

t_python_ipv6_address() {
	tls_py echo leaf --mode echo --v6 || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls [::1]:$PORT ca-file=$ROOT" srun py "$PY" "$HERE/pyclient.py" tcp ::1 "$PORT" --family 6 --send 'hello-v6\n' --shut
	[ "$RC" = 0 ] && grep -q hello-v6 "$OUT" && grep -q "handshake.*::1" "$T/echo.log" && ok ||
		fail "python raw socket to [::1] (IP SAN ::1) did not round-trip (rc=$RC)"
}

t_v4mapped_matches_ipv4_rule() {
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls 127.0.0.1:$PORT ca-file=$ROOT" srun py "$PY" "$HERE/pyclient.py" tcp 127.0.0.1 "$PORT" --family mapped --send 'hello-mapped\n' --shut
	[ "$RC" = 0 ] && grep -q hello-mapped "$OUT" && grep -q handshake "$T/echo.log" && ok ||
		fail "AF_INET6 connect to ::ffff:127.0.0.1 did not use the IPv4 tls rule (rc=$RC)"
}

t_name_rule_without_resolver() {
	# tcpclient -N never calls getaddrinfo: the rule written as "localhost" must still match 127.0.0.1.
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun tc "$CL/tcpclient" -N -s 'no-resolver\n' -W 127.0.0.1 "$PORT"
	[ "$RC" = 0 ] && grep -q no-resolver "$OUT" && grep -q handshake "$T/echo.log" && ok ||
		fail "a name rule did not catch a client that never resolved the name (rc=$RC)"
}

t_nonblocking_connect() {
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun tc "$CL/tcpclient" -4 -b -s 'non-blocking\n' -W localhost "$PORT"
	[ "$RC" = 0 ] && grep -q non-blocking "$OUT" && ok "$(grep -o 'connect: \(EINPROGRESS\|returned 0\)[^,]*' "$ERR" | head -1)" ||
		fail "non-blocking connect + echo failed (rc=$RC)"
}

t_nonblocking_connect_is_asynchronous() {
	# contract (issue 4): a non-blocking connect to a tls destination returns EINPROGRESS at once; the
	# program's poll for writability completes TCP and the handshake; then data flows
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun tc "$CL/tcpclient" -4 -b -s 'nb\n' -W localhost "$PORT"
	[ "$RC" = 0 ] || { fail "non-blocking connect + echo failed (rc=$RC)"; return; }
	grep -q 'connect: EINPROGRESS' "$ERR" && ok ||
		fail "non-blocking connect did not return EINPROGRESS: $(grep -o 'connect: [^,]*' "$ERR" | head -1)"
}

t_nodelay_restored() {
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun tc "$CL/tcpclient" -4 -d -s 'x' -W localhost "$PORT"
	grep -q '^nodelay=0' "$OUT" || { fail "TCP_NODELAY not restored to 0 after the handshake: $(head -1 "$OUT")"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun tc2 "$CL/tcpclient" -4 -D -d -s 'x' -W localhost "$PORT"
	grep -q '^nodelay=1' "$OUT" && ok || fail "TCP_NODELAY set by the program before connect was not kept: $(head -1 "$OUT")"
}

t_iov_and_fortified_calls() {
	if ! nm -D "$CL/iovclient" 2>/dev/null | grep -q '__read_chk'; then
		fail "iovclient does not import __read_chk (fortify not in effect), test would prove nothing"
		return
	fi
	tls_py echo leaf --mode echo --v6 || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun iov "$CL/iovclient" localhost "$PORT"
	[ "$RC" = 0 ] && grep -q 'all steps ok' "$OUT" && ok || fail "iovclient: $(grep -a FAIL "$OUT" | head -1)"
}

t_shutdown_half_close() {
	tls_py hash leaf --mode hash --v6 || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun sd "$CL/shutdownclient" localhost "$PORT" 1048576
	[ "$RC" = 0 ] && ok || fail "shutdown(SHUT_WR) then read the reply failed"
}

t_partial_write_8mib_nonblocking() {
	tls_py echo leaf --mode echo --v6 || { fail "server did not start"; return; }
	TMO=90 TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun pw "$CL/partialwrite" localhost "$PORT" 8388608
	[ "$RC" = 0 ] || { fail "partialwrite 8 MiB failed"; return; }
	local sent srv
	sent=$(grep -o 'sent_sha256=[0-9a-f]*' "$OUT" | cut -d= -f2)
	srv=$(grep -o 'echo done 8388608 sha256 [0-9a-f]*' "$T/echo.log" | awk '{print $5}')
	[ -n "$sent" ] && [ "$sent" = "$srv" ] || { fail "server received a different stream: client sent $sent, server hashed '${srv}'"; return; }
	local sw ew
	sw=$(grep -o 'short_writes=[0-9]*' "$OUT" | cut -d= -f2)
	ew=$(grep -o 'eagain_writes=[0-9]*' "$OUT" | cut -d= -f2)
	[ $((${sw:-0} + ${ew:-0})) -gt 0 ] && ok "$(grep -o 'short_writes.*' "$OUT")" ||
		fail "no short write and no EAGAIN happened: the non-blocking write path was not exercised ($(grep -o 'short_writes.*' "$OUT"))"
}

t_threads_8x4() {
	tls_py echo leaf --mode echo --v6 || { fail "server did not start"; return; }
	TMO=60 TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun th "$CL/threadsclient" localhost "$PORT" 8 4 65536
	local n
	n=$(grep -c handshake "$T/echo.log")
	[ "$RC" = 0 ] && [ "$n" = 32 ] && ok || fail "threadsclient: $(cat "$OUT"), server saw $n TLS handshakes (want 32)"
}

t_threads_8x4_session_resumption_off() {
	# the same load with session-resumption=off: tells a resumption race from a general one
	tls_py echo leaf --mode echo --v6 || { fail "server did not start"; return; }
	TMO=60 TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT session-resumption=off" srun th "$CL/threadsclient" localhost "$PORT" 8 4 65536
	[ "$RC" = 0 ] && ok || fail "threadsclient with session-resumption=off: $(cat "$OUT")"
}

t_nc_send_file_hash_via_stunnel() {
	need nc stunnel4 || return
	start_py hash plain --mode hash || { fail "hash server did not start"; return; }
	start_stunnel stunnel leaf "$PORT" || { fail "stunnel did not start"; return; }
	det_file "$T/data" 4000000
	local want
	want="$(sha_of "$T/data") 4000000"
	TMO=30 TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun_in "$T/data" nc nc -N localhost "$PORT"
	[ "$RC" = 0 ] && grep -q "^$want\$" "$OUT" && ok || fail "nc -N: want reply '$want', got '$(head -c 200 "$OUT")' (rc=$RC)"
}

t_nc_receive_via_stunnel() {
	need nc stunnel4 || return
	start_py src plain --mode source:3000000 || { fail "source server did not start"; return; }
	start_stunnel stunnel leaf "$PORT" || { fail "stunnel did not start"; return; }
	det_file "$T/want" 3000000
	TMO=30 TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun nc nc -d localhost "$PORT"
	[ "$RC" = 0 ] && [ "$(sha_of "$OUT")" = "$(sha_of "$T/want")" ] && ok ||
		fail "nc -d received $(stat -c %s "$OUT") bytes, sha256 $(sha_of "$OUT"), want 3000000 bytes $(sha_of "$T/want") (rc=$RC)"
}

t_transfer_64mib_each_way() {
	tls_py echo leaf --mode echo --v6 || { fail "server did not start"; return; }
	TMO=240 TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun pw "$CL/partialwrite" localhost "$PORT" 67108864
	[ "$RC" = 0 ] || { fail "64 MiB echo transfer failed"; return; }
	local sent srv
	sent=$(grep -o 'sent_sha256=[0-9a-f]*' "$OUT" | cut -d= -f2)
	srv=$(grep -o 'echo done 67108864 sha256 [0-9a-f]*' "$T/echo.log" | awk '{print $5}')
	[ -n "$sent" ] && [ "$sent" = "$srv" ] && ok "${MS} ms" || fail "64 MiB: client sent $sent, server hashed '${srv}'"
}

tcase curl_rules_by_name
tcase curl_policy_file
tcase curl_quiet_on_success
tcase curl_ipv6_literal
tcase python_ipv4_address
tcase python_ipv6_address
tcase v4mapped_matches_ipv4_rule
tcase name_rule_without_resolver
tcase nonblocking_connect
tcase nonblocking_connect_is_asynchronous
tcase nodelay_restored
tcase iov_and_fortified_calls
tcase shutdown_half_close
tcase partial_write_8mib_nonblocking
tcase threads_8x4
tcase threads_8x4_session_resumption_off
tcase nc_send_file_hash_via_stunnel
tcase nc_receive_via_stunnel
tcase transfer_64mib_each_way
finish
