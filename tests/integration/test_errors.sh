#!/usr/bin/env bash
# Failure behaviour: handshake timeout, clean and unclean closes, resets, forged records, non-TLS
# servers, MSG_OOB, a server that rejects the (missing) client certificate.
source "$(dirname "$0")/lib.sh" "${1:-build}"

rule() { echo "tls localhost:$PORT ca-file=$ROOT $*"; }

t_handshake_timeout_blocking() {
	start_py silent plain --mode silent || { fail "server did not start"; return; }
	TMO=15 TLSSHIM_RULES="$(rule handshake-timeout=1s)" srun tc "$CL/tcpclient" -4 -s 'x' localhost "$PORT"
	[ "$RC" != 124 ] || { fail "connect hung: killed by the harness after 15 s"; return; }
	local e
	e=$(client_errno)
	[ "$MS" -le 3500 ] || { fail "connect returned after $MS ms (errno=$e), want <= ~3 s with handshake-timeout=1s"; return; }
	[ "$e" = ETIMEDOUT ] && ok "errno=$e after $MS ms" || fail "handshake timeout gave errno=$e after $MS ms, want ETIMEDOUT"
}

t_handshake_timeout_nonblocking() {
	start_py silent plain --mode silent || { fail "server did not start"; return; }
	TMO=15 TLSSHIM_RULES="$(rule handshake-timeout=500ms)" srun tc "$CL/tcpclient" -4 -b -s 'x' localhost "$PORT"
	[ "$RC" != 124 ] || { fail "non-blocking connect hung: killed by the harness after 15 s"; return; }
	local e
	e=$(client_errno)
	[ "$MS" -le 3000 ] || { fail "non-blocking connect failed after $MS ms (errno=$e), want <= ~2 s with 500ms"; return; }
	[ "$e" = ETIMEDOUT ] && ok "errno=$e after $MS ms" || fail "non-blocking handshake timeout gave errno=$e after $MS ms, want ETIMEDOUT"
}

t_close_notify_gives_eof() {
	tls_py srv leaf --mode close || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun tc "$CL/tcpclient" -4 localhost "$PORT"
	[ "$RC" = 0 ] && grep -q 'hello from tlsshim test server' "$OUT" && grep -q 'EOF after 31 bytes' "$ERR" && ok ||
		fail "after close_notify the read should return 0 (EOF) with the greeting delivered (rc=$RC)"
}

t_tcp_reset_gives_econnreset() {
	tls_py srv leaf --mode reset || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun tc "$CL/tcpclient" -4 localhost "$PORT"
	[ "$RC" = 4 ] && grep -q 'tcpclient: read.*errno=ECONNRESET' "$ERR" && ok ||
		fail "TCP reset mid-stream: want read() to fail ECONNRESET (rc=$RC, $(grep -a 'tcpclient: \(read\|EOF\)' "$ERR"))"
}

t_fin_without_close_notify_is_error() {
	# truncation=error is the default: a TCP FIN without close_notify must not look like a clean EOF
	tls_py srv leaf --mode eof || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun tc "$CL/tcpclient" -4 localhost "$PORT"
	[ "$RC" = 4 ] && grep -q 'tcpclient: read.*errno=ECONNRESET' "$ERR" && ok ||
		fail "FIN without close_notify: want read() to fail ECONNRESET (rc=$RC, $(grep -a 'tcpclient: \(read\|EOF\)' "$ERR"))"
}

t_forged_record_gives_econnreset() {
	tls_py srv leaf --mode badrecord || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun tc "$CL/tcpclient" -4 localhost "$PORT"
	[ "$RC" = 4 ] && grep -q 'tcpclient: read.*errno=ECONNRESET' "$ERR" && ok ||
		fail "forged application-data record: want read() to fail ECONNRESET (rc=$RC, $(grep -a 'tcpclient: \(read\|EOF\)' "$ERR"))"
}

t_write_after_reset_gives_epipe() {
	tls_py srv leaf --mode reset || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun tc "$CL/tcpclient" -4 -w 1500 -r -s 'late write\n' localhost "$PORT"
	[ "$RC" = 3 ] && grep -q 'tcpclient: write.*errno=EPIPE' "$ERR" && ok ||
		fail "write after the server reset the connection: want EPIPE (rc=$RC, $(grep -a 'tcpclient: write' "$ERR"))"
}

t_garbage_instead_of_serverhello() {
	start_py junk plain --mode garbage || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun tc "$CL/tcpclient" -4 -s 'x' localhost "$PORT"
	expect_refused "localhost:$PORT" || return
	grep -q 'not TLS' "$OUT" && { fail "the server's plaintext reached the program"; return; }
	ok
}

t_msg_oob_not_supported() {
	tls_py srv leaf --mode echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun tc "$CL/tcpclient" -4 -o localhost "$PORT"
	[ "$RC" = 0 ] && grep -q 'send-oob: errno=EOPNOTSUPP' "$ERR" && ok ||
		fail "send(MSG_OOB) on a TLS fd: want -1/EOPNOTSUPP (rc=$RC, $(grep -a 'tcpclient: send' "$ERR"))"
}

t_server_rejects_missing_client_cert() {
	# TLS 1.3: the server's rejection arrives after the client's handshake is done, so connect()
	# succeeds and the failure shows on I/O: ECONNRESET on read, EPIPE on write.
	tls_py srv leaf --mode echo --client-ca "$ROOT" --min 1.3 || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun tc "$CL/tcpclient" -4 localhost "$PORT"
	grep -q 'tcpclient: connect:' "$ERR" && { fail "want connect() to succeed (TLS 1.3), got connect errno=$(client_errno)"; return; }
	grep -q 'tcpclient: read.*errno=ECONNRESET' "$ERR" || { fail "read after the server rejected the client certificate: want ECONNRESET, got $(client_errno) (rc=$RC)"; return; }
	TLSSHIM_RULES="$(rule)" srun tc2 "$CL/tcpclient" -4 -w 300 -s 'x\n' localhost "$PORT"
	grep -q 'x' "$OUT" && { fail "data was echoed although the server requires a client certificate"; return; }
	grep -q 'tcpclient: write.*errno=EPIPE' "$ERR" && ok || fail "write after the server rejected the client certificate: want EPIPE, got $(client_errno) (rc=$RC)"
}

t_refused_tcp_port_stays_econnrefused() {
	local p
	p=$(free_port) # nothing listens there
	TLSSHIM_RULES="tls localhost:$p ca-file=$ROOT" srun tc "$CL/tcpclient" -4 -s 'x' localhost "$p"
	has_errno connect ECONNREFUSED && ok || fail "connect to a closed port: want ECONNREFUSED, got $(client_errno)"
}

tcase handshake_timeout_blocking
tcase handshake_timeout_nonblocking
tcase close_notify_gives_eof
tcase tcp_reset_gives_econnreset
tcase fin_without_close_notify_is_error
tcase forged_record_gives_econnreset
tcase write_after_reset_gives_epipe
tcase garbage_instead_of_serverhello
tcase msg_oob_not_supported
tcase server_rejects_missing_client_cert
tcase refused_tcp_port_stays_econnrefused
finish
