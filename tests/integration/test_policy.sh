#!/usr/bin/env bash
# Policy actions and matching as seen by real programs: deny, plain, no match, first match wins,
# CIDR / port ranges / '*', broken policies fail closed, non-TCP traffic passes through.
source "$(dirname "$0")/lib.sh" "${1:-build}"

echo_probe() { # echo_probe RULES [tcpclient args...] HOST
	local rules=$1
	shift
	TLSSHIM_RULES="$rules" srun tc "$CL/tcpclient" -s 'policy-probe\n' -W "$@" "$PORT"
}
works() { [ "$RC" = 0 ] && grep -q policy-probe "$OUT"; }

t_deny_gives_eacces() {
	start_py echo plain --mode echo || { fail "server did not start"; return; }
	echo_probe "deny localhost:$PORT" -4 localhost
	expect_conn_errno EACCES "localhost:$PORT" || return
	grep -q accept "$T/echo.log" && { fail "denied destination still got a TCP connection"; return; }
	ok
}

t_plain_rule_passes_through() {
	need curl || return
	start_py www plain --mode http --v6 || { fail "server did not start"; return; }
	TLSSHIM_RULES="plain localhost:$PORT" srun curl curl -sS --max-time 10 -H 'X-Plain: yes' "http://localhost:$PORT/"
	[ "$RC" = 0 ] && grep -q 'X-Plain: yes' "$OUT" && [ "$(n_shim_lines)" = 0 ] && ok ||
		fail "plain rule: curl to a plain HTTP server failed or the shim printed something (rc=$RC)"
}

t_unmatched_passes_through() {
	need curl || return
	start_py www plain --mode http --v6 || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:1 ca-file=$ROOT; tls 127.0.0.9:$PORT ca-file=$ROOT" srun curl curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" = 0 ] && grep -q tlsshim-test-page "$OUT" && ok || fail "unmatched destination was not passed through (rc=$RC)"
}

t_no_policy_at_all_passes_through() {
	need curl || return
	start_py www plain --mode http --v6 || { fail "server did not start"; return; }
	srun curl curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" = 0 ] && grep -q tlsshim-test-page "$OUT" && [ "$(n_shim_lines)" = 0 ] && ok ||
		fail "with no policy the shim changed behaviour (rc=$RC): $(shim_lines)"
}

t_first_match_wins() {
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	echo_probe "deny localhost:$PORT; tls localhost:$PORT ca-file=$ROOT" -4 localhost
	expect_conn_errno EACCES "localhost:$PORT" || return
	echo_probe "tls localhost:$PORT ca-file=$ROOT; deny *:*" -4 localhost
	works && ok || fail "'tls' rule before 'deny *:*' did not win (rc=$RC)"
}

t_cidr_and_port_range() {
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	local lo=$((PORT - 5)) hi=$((PORT + 5))
	echo_probe "tls 127.0.0.0/8:$lo-$hi ca-file=$ROOT" -N 127.0.0.1
	works || { fail "CIDR 127.0.0.0/8 with port range $lo-$hi did not match (rc=$RC)"; return; }
	grep -q handshake "$T/echo.log" && ok || fail "no TLS handshake seen by the server"
}

t_star_star_rule() {
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	echo_probe "tls *:* ca-file=$ROOT" -4 localhost
	works && ok || fail "'tls *:*' did not give a working TLS connection (rc=$RC)"
}

t_ipv6_cidr_rule() {
	tls_py echo leaf --mode echo --v6 || { fail "server did not start"; return; }
	echo_probe "tls [::1]/128:$PORT ca-file=$ROOT" -N ::1
	works && grep -q "handshake.*::1" "$T/echo.log" && ok || fail "[::1]/128 CIDR rule did not match (rc=$RC)"
}

t_defaults_line_in_file() {
	tls_py echo leaf --mode echo --rec "$T/rec" || { fail "server did not start"; return; }
	printf '# defaults apply to every tls rule\ndefaults ca-file=%s min-version=1.3\n\ntls localhost:%s   # comment\n' "$ROOT" "$PORT" >"$T/policy"
	TLSSHIM_POLICY=$T/policy srun tc "$CL/tcpclient" -4 -s 'policy-probe\n' -W localhost "$PORT"
	works && grep -q TLSv1.3 "$T/rec" && ok || fail "defaults ca-file=/min-version= from the policy file not applied (rc=$RC)"
}

# broken-policy checks: every TCP connect (even to an unmatched, plain destination) fails EACCES.
expect_all_eacces() { # expect_all_eacces WHERE_REGEX
	if [ "$RC" = 0 ]; then fail "connects succeeded with a broken policy"; return 1; fi
	local n
	n=$(grep -c 'tcpclient: connect: .*errno=EACCES' "$ERR")
	[ "$n" = 2 ] || { fail "want 2 connects failing with EACCES, got $n"; return 1; }
	grep -Eq -- "$1" "$ERR" || { fail "no message with the location /$1/ in stderr"; return 1; }
	grep -q accept "$T/echo.log" && { fail "the plain server received a connection despite the broken policy"; return 1; }
	return 0
}

t_broken_policy_file_fails_closed() {
	start_py echo plain --mode echo || { fail "server did not start"; return; }
	printf '# line 1\ntls localhost:%s\nfrobnicate localhost:80\n' "$PORT" >"$T/broken.policy"
	TLSSHIM_POLICY=$T/broken.policy srun tc "$CL/tcpclient" -n 2 -4 -s 'x' -W 127.0.0.1 "$PORT"
	expect_all_eacces "$T/broken.policy:3:[0-9]+" && ok
}

t_broken_policy_bad_port() {
	start_py echo plain --mode echo || { fail "server did not start"; return; }
	printf 'tls localhost:99999\n' >"$T/badport.policy"
	TLSSHIM_POLICY=$T/badport.policy srun tc "$CL/tcpclient" -n 2 -4 -s 'x' -W 127.0.0.1 "$PORT"
	expect_all_eacces "$T/badport.policy:1:[0-9]+" && ok
}

t_broken_rules_env_fails_closed() {
	start_py echo plain --mode echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:1 ca-file=$ROOT; tls localhost:2 min-version=banana" srun tc "$CL/tcpclient" -n 2 -4 -s 'x' -W 127.0.0.1 "$PORT"
	expect_all_eacces "TLSSHIM_RULES:2:[0-9]+" && ok
}

t_missing_policy_file_fails_closed() {
	start_py echo plain --mode echo || { fail "server did not start"; return; }
	TLSSHIM_POLICY=$T/does-not-exist.policy srun tc "$CL/tcpclient" -n 2 -4 -s 'x' -W 127.0.0.1 "$PORT"
	expect_all_eacces "does-not-exist.policy" && ok
}

t_udp_passes_through() {
	start_py udp udpecho || { fail "udp echo did not start"; return; }
	TLSSHIM_RULES="tls *:* ca-file=$ROOT" srun py "$PY" "$HERE/pyclient.py" udp 127.0.0.1 "$PORT" --send udp-probe
	[ "$RC" = 0 ] && grep -q '^udp-echo:udp-probe$' "$OUT" && grep -q '^udp-echo:connected-udp-probe$' "$OUT" && ok ||
		fail "UDP (sendto/recvfrom and connected send/recv) broken under 'tls *:*' (rc=$RC)"
}

t_unix_sockets_pass_through() {
	TLSSHIM_RULES="tls *:* ca-file=$ROOT" srun py "$PY" "$HERE/pyclient.py" unix
	[ "$RC" = 0 ] && grep -q socketpair-ok "$OUT" && grep -q unix-stream-ok "$OUT" && ok ||
		fail "unix socketpair / unix stream socket broken under 'tls *:*' (rc=$RC)"
}

t_files_and_pipes_pass_through() {
	det_file "$T/f" 100000
	TLSSHIM_RULES="tls *:* ca-file=$ROOT" srun py "$PY" "$HERE/pyclient.py" file "$T/f"
	[ "$RC" = 0 ] && grep -q "^file $(sha_of "$T/f")\$" "$OUT" && grep -q '^pipe pipe-data$' "$OUT" && ok ||
		fail "file or pipe reads changed under 'tls *:*' (rc=$RC)"
}

t_cat_and_sha256sum_unchanged() {
	det_file "$T/f" 3000000
	TLSSHIM_RULES="tls *:* ca-file=$ROOT" srun cat sh -c "cat '$T/f' | sha256sum"
	[ "$RC" = 0 ] && grep -q "^$(sha_of "$T/f") " "$OUT" && ok || fail "cat | sha256sum gave a different hash under the shim (rc=$RC)"
}

tcase deny_gives_eacces
tcase plain_rule_passes_through
tcase unmatched_passes_through
tcase no_policy_at_all_passes_through
tcase first_match_wins
tcase cidr_and_port_range
tcase star_star_rule
tcase ipv6_cidr_rule
tcase defaults_line_in_file
tcase broken_policy_file_fails_closed
tcase broken_policy_bad_port
tcase broken_rules_env_fails_closed
tcase missing_policy_file_fails_closed
tcase udp_passes_through
tcase unix_sockets_pass_through
tcase files_and_pipes_pass_through
tcase cat_and_sha256sum_unchanged
finish
