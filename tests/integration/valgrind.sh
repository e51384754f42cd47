#!/usr/bin/env bash
# valgrind.sh BUILD_DIR (make valgrind): the C test clients run under the shim inside
# valgrind --error-exitcode=99 --leak-check=full, against openssl s_server and python TLS servers,
# on good paths and on refusal paths. Any valgrind error (or definite leak) fails the case.
# Ends with "N passed, N failed"; exit status 1 if anything failed.
source "$(dirname "$0")/lib.sh" "${1:-build}"

GET='GET / HTTP/1.0\r\nHost: localhost\r\n\r\n'

# vrun NAME EXPECTED_RC CMD...: CMD under valgrind with the shim preloaded. Fails the case on a
# valgrind error (exit 99) or an unexpected exit status; returns 1 then.
vrun() {
	local name=$1 want=$2
	shift 2
	TMO=300 srun "$name" valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
		--num-callers=30 --log-file="$T/$name.vg" "$@"
	CASE_LOGS+=("$T/$name.vg")
	if [ "$RC" = 99 ] || grep -q 'ERROR SUMMARY: [1-9]' "$T/$name.vg" 2>/dev/null; then
		fail "valgrind reported errors: $(grep -E 'ERROR SUMMARY|definitely lost' "$T/$name.vg" | tr '\n' ' ')"
		echo "    --- first valgrind error:"
		grep -m1 -A25 -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and|Argument|[0-9,]+ bytes in)' "$T/$name.vg" | sed 's/^/    | /'
		return 1
	fi
	if [ "$RC" != "$want" ]; then
		fail "exit status $RC, want $want"
		return 1
	fi
	return 0
}

t_tcpclient_s_server_www() {
	need valgrind openssl || return
	start_s_server www leaf -www || { fail "s_server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" vrun tc 0 "$CL/tcpclient" -4 -s "$GET" localhost "$PORT" || return
	grep -q 'Ciphers supported' "$OUT" && ok || fail "page not received"
}

t_tcpclient_nonblocking_tls12() {
	need valgrind openssl || return
	start_s_server www rsa -www -tls1_2 || { fail "s_server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" vrun tc 0 "$CL/tcpclient" -4 -b -s "$GET" localhost "$PORT" || return
	grep -q 'TLSv1.2' "$OUT" && ok || fail "TLS 1.2 page not received"
}

t_iovclient() {
	need valgrind || return
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" vrun iov 0 "$CL/iovclient" localhost "$PORT" && ok
}

t_partialwrite_1mib() {
	need valgrind || return
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" vrun pw 0 "$CL/partialwrite" localhost "$PORT" 1048576 && ok
}

t_shutdownclient() {
	need valgrind || return
	tls_py hash leaf --mode hash || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" vrun sd 0 "$CL/shutdownclient" localhost "$PORT" 200000 && ok
}

t_threadsclient() {
	need valgrind || return
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" vrun th 0 "$CL/threadsclient" localhost "$PORT" 4 2 16384 && ok
}

t_refused_wrong_name() {
	need valgrind openssl || return
	start_s_server www wrongname -www || { fail "s_server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" vrun tc 2 "$CL/tcpclient" -4 -s "$GET" localhost "$PORT" || return
	has_errno connect ECONNREFUSED && ok || fail "want ECONNREFUSED, got $(client_errno)"
}

t_reset_midstream() {
	need valgrind || return
	tls_py srv leaf --mode reset || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" vrun tc 4 "$CL/tcpclient" -4 localhost "$PORT" && ok
}

t_broken_policy() {
	need valgrind || return
	start_py echo plain --mode echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT frobnicate=1" vrun tc 2 "$CL/tcpclient" -4 -s x localhost "$PORT" && ok
}

tcase tcpclient_s_server_www
tcase tcpclient_nonblocking_tls12
tcase iovclient
tcase partialwrite_1mib
tcase shutdownclient
tcase threadsclient
tcase refused_wrong_name
tcase reset_midstream
tcase broken_policy
say "$N_PASS passed, $N_FAIL failed"
[ "$N_FAIL" -eq 0 ]
exit $?
