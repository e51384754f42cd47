#!/usr/bin/env bash
# Issue 4, processes and fds: dup/dup2/dup3/F_DUPFD/F_DUPFD_CLOEXEC share the session (it ends only at the
# last close); fork (a child that only closes or exits leaves the parent's session alone; one process
# writes while the other reads, both ways; only the owner sends close_notify at exit; both writing breaks
# the connection without plaintext); exec (a TLS fd is close-on-exec and stays so); and every other way
# to move bytes: fdopen+fprintf/fgets, dprintf, sendfile, sendfile64, splice (EINVAL), sendmmsg/recvmmsg,
# preadv2/pwritev2, and EPIPE/SIGPIPE after the server closed, compared with plain TCP.
source "$(dirname "$0")/lib.sh" "${1:-build}"
source "$HERE/ev/evlib.sh"

# the echo server's records, as "recv_n recv_sha close_notify" lines (close_notify: True when the session
# ended with a TLS close_notify, False for a bare TCP FIN)
echo_recs() {
	"$PY" -c 'import json,sys
for l in open(sys.argv[1]): r=json.loads(l); print(r["recv_n"], r["recv_sha"], r["close_notify"])' "$1" 2>/dev/null
}

# session-resumption=off: ev_dup opens a connection right after a resumed one that has read nothing, which
# fails on its own (see resumed_then_new_connection below); this case is about copies of fds.
t_dup_family_share_session() {
	ev_server echo tls echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule session-resumption=off)" srun dup "$CL/ev_dup" localhost "$PORT"
	expect_clean_client || return
	wait_lines "$T/echo.rec" 7 || { fail "the server recorded $(wc -l <"$T/echo.rec") of 7 sessions"; return; }
	local recs bad="" w n s
	recs=$(echo_recs "$T/echo.rec")
	for w in dup dup2 dup3 F_DUPFD F_DUPFD_CLOEXEC; do
		n=$(grep -a "^way=$w sent_n=" "$OUT" | sed 's/.*sent_n=\([0-9]*\).*/\1/')
		s=$(grep -a "^way=$w sent_n=" "$OUT" | sed 's/.*sent_sha=//')
		grep -q "^$n $s True\$" <<<"$recs" || bad="$bad $w"
		if [ "$w" = dup2 ] || [ "$w" = dup3 ]; then
			n=$(grep -a "^way=$w victim_n=" "$OUT" | sed 's/.*victim_n=\([0-9]*\).*/\1/')
			s=$(grep -a "^way=$w victim_n=" "$OUT" | sed 's/.*victim_sha=//')
			grep -q "^$n $s True\$" <<<"$recs" || bad="$bad $w-victim"
		fi
	done
	local errs
	errs=$(grep -ac 'conn error' "$T/echo.log")
	[ -z "$bad" ] && [ "$errs" = 0 ] && ok "5 ways: write on the copy/read on the original, the session lived past closing the original, close_notify at the last close (and for the fd dup2/dup3 replaced)" ||
		fail "sessions not ended cleanly with the bytes sent:${bad:- none missing}; server errors: $errs ($(grep -a 'conn error' "$T/echo.log" | head -2 | tr '\n' ' '))"
}

t_fork_child_close_and_exit_keep_parent_session() {
	ev_server echo tls echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun fk "$CL/ev_fork" childclose localhost "$PORT"
	expect_clean_client || return
	wait_lines "$T/echo.rec" 1 || { fail "no clean end of the session at the parent's exit (no close_notify): $(tail -2 "$T/echo.log" | tr '\n' ' ')"; return; }
	local want
	want="$(kv sent_n) $(kv sent_sha) True"
	[ "$(echo_recs "$T/echo.rec")" = "$want" ] && [ "$(wc -l <"$T/echo.rec")" = 1 ] &&
		ok "children closed/exited; the parent went on; its exit sent close_notify" ||
		fail "server recorded '$(echo_recs "$T/echo.rec" | tr '\n' ' ')', the parent sent '$want'"
}

fork_split() {
	local mode=$1 w=$2 r=$3 n=$((8 << 20))
	ev_server echo tls echo || { fail "server did not start"; return; }
	TMO=60 TLSSHIM_RULES="$(rule)" srun "fk_$mode" "$CL/ev_fork" "$mode" localhost "$PORT" "$n"
	expect_clean_client || return
	wait_lines "$T/echo.rec" 1 || { fail "the server recorded nothing"; return; }
	local sent got srv
	sent=$(kv "${w}_sent_sha")
	got=$(kv "${r}_recv_sha")
	srv=$(rec_get "$T/echo.rec" recv_sha)
	[ -n "$sent" ] && [ "$sent" = "$got" ] && [ "$sent" = "$srv" ] && [ "$(rec_get "$T/echo.rec" recv_n)" = "$n" ] &&
		[ "$(rec_get "$T/echo.rec" close_notify)" = True ] &&
		ok "$w wrote 8 MiB, the server got the same SHA-256, $r read it back and then EOF" ||
		fail "$w sent $sent, server got $srv (close_notify $(rec_get "$T/echo.rec" close_notify)), $r received $got"
}
t_fork_parent_writes_child_reads() { fork_split pwcr parent child; }
t_fork_child_writes_parent_reads() { fork_split cwpr child parent; }

# README: both writing -> the server sees a bad record MAC, drops the connection; no plaintext ever.
t_fork_both_write_breaks_without_plaintext() {
	ev_server echo tls echo || { fail "server did not start"; return; }
	start_py relay relay --to "$PORT" --rec "$T/wire" || { fail "relay did not start"; return; }
	TMO=30 TLSSHIM_RULES="$(rule)" srun fkboth "$CL/ev_fork" bothwrite localhost "$PORT"
	[ "$RC" != 124 ] || { fail "hung"; return; }
	sleep 0.5
	local seen
	seen=$(grep -a 'conn error\|echo done' "$T/echo.log" | head -2 | cut -c1-160 | tr '\n' ' ')
	say "    observed: $(grep -a 'writes_ok' "$OUT" | tr '\n' ' ')"
	say "    server: $seen"
	if grep -aq 'secret' "$T/wire" "$T/wire.s2c" 2>/dev/null; then fail "PLAINTEXT on the wire: $(grep -ao '[a-z]*-secret-[0-9]*' "$T/wire" | head -3 | tr '\n' ' ')"; return; fi
	grep -aqi 'bad record mac\|decrypt\|conn error' "$T/echo.log" &&
		ok "no plaintext on the wire; the server dropped the connection ($seen)" ||
		fail "the server did not see a broken record stream: $seen"
}

t_exec_closes_tls_fd() {
	ev_server echo tls echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun ex "$CL/ev_exec" localhost "$PORT"
	expect_clean_client || return
	[ "$(kv getfd_initial)" = FD_CLOEXEC ] && [ "$(kv getfd_after_setfd0)" = FD_CLOEXEC ] &&
		[ "$(kv exec_tls_fd)" = EBADF ] && [ "$(kv exec_pipe_fd)" = open ] &&
		ok "F_GETFD shows FD_CLOEXEC (also after F_SETFD 0); after exec the TLS fd is EBADF, the control pipe open" ||
		fail "$(tr '\n' ' ' <"$OUT")"
}

# ---- every other way to move bytes ----
io_echo_case() {
	local cmd=$1
	ev_server echo tls echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun "io_$cmd" "$CL/ev_io" "$cmd" localhost "$PORT"
	expect_clean_client || return
	wait_lines "$T/echo.rec" 1 || { fail "the server recorded nothing (no close_notify at the last close?)"; return; }
	local want got
	want="$(kv sent_n) $(kv sent_sha) True"
	got=$(echo_recs "$T/echo.rec" | head -1)
	[ "$want" = "$got" ] && ok "server received $got" || fail "the server received '$got', the client sent '$want'"
}
t_fdopen_fprintf_fgets() { io_echo_case stdio; }
t_dprintf() { io_echo_case dprintf; }
t_sendmmsg_recvmmsg() { io_echo_case mmsg; }
t_pwritev2_preadv2() { io_echo_case prwv2; }

sendfile_case() {
	local client=$1 cmd=${2:-}
	tls_py hash leaf --mode hash || { fail "server did not start"; return; }
	det_file "$T/sf.data" 3000017
	if [ "$client" = ev_sendfile64 ]; then
		nm -D "$CL/ev_sendfile64" | grep -q ' U sendfile64' || { fail "ev_sendfile64 does not import sendfile64 (check _FILE_OFFSET_BITS)"; return; }
		TLSSHIM_RULES="$(rule)" srun sf64 "$CL/ev_sendfile64" localhost "$PORT" "$T/sf.data"
	else
		TLSSHIM_RULES="$(rule)" srun "sf_$cmd" "$CL/ev_io" "$cmd" localhost "$PORT" "$T/sf.data"
	fi
	expect_clean_client || return
	local want
	want="$(sha_of "$T/sf.data") 3000017"
	[ "$(kv reply)" = "$(cut -d' ' -f1 <<<"$want")" ] && grep -aq "reply=$want" "$OUT" &&
		ok "the server hashed $want" || fail "server replied '$(grep -a reply= "$OUT")', want '$want'"
}
t_sendfile_with_offset() { sendfile_case ev_io sendfile; }
t_sendfile_file_position() { sendfile_case ev_io sendfilepos; }
t_sendfile64() { sendfile_case ev_sendfile64; }

t_splice_einval_no_plaintext() {
	ev_server echo tls echo || { fail "server did not start"; return; }
	local ep=$PORT
	start_py relay relay --to "$ep" --rec "$T/wire" || { fail "relay did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun splice "$CL/ev_io" splice localhost "$PORT"
	expect_clean_client || return
	grep -aq 'SPLICE-PLAINTEXT-PROBE' "$T/wire" && { fail "the splice probe crossed the wire in plaintext"; return; }
	wait_lines "$T/echo.rec" 1 || { fail "the server recorded nothing"; return; }
	[ "$(echo_recs "$T/echo.rec")" = "$(kv sent_n) $(kv sent_sha) True" ] &&
		ok "splice into and out of the TLS socket: EINVAL; the connection went on; the server got only the later write" ||
		fail "the server received '$(echo_recs "$T/echo.rec")', want only '$(kv sent_n) $(kv sent_sha)' (the probe must not arrive)"
}

# Found by the dup case: a connection opened after a resumed connection (TLS 1.3) that has not read its
# post-handshake ticket yet fails (server: BINDER_DOES_NOT_VERIFY). Modes: 0 B open unread, 1 B read
# first, 2 B closed unread. Every mode must connect and echo.
t_resumed_then_new_connection() {
	ev_server echo tls echo || { fail "server did not start"; return; }
	local m bad=""
	for m in 0 1 2; do
		TLSSHIM_RULES="$(rule)" srun "resume_$m" "$CL/ev_resume" localhost "$PORT" "$m"
		[ "$RC" = 0 ] && [ "$(kv c_echo)" = ok ] || bad="$bad mode$m($(kv c_connect); $(shim_lines | head -1 | cut -c1-120))"
	done
	[ -z "$bad" ] && ok "C connects after a resumed B in all 3 modes" ||
		fail "connection C failed:$bad; server: $(grep -ao 'SSLError.*' "$T/echo.log" | head -1)"
}

# EPIPE/SIGPIPE after the server closed: the TLS socket must behave as plain TCP does.
t_epipe_sigpipe_like_plain_tcp() {
	start_py pclose plain --mode close || { fail "plain server did not start"; return; }
	prun plain "$CL/ev_io" epipe 127.0.0.1 "$PORT"
	local plain
	plain=$(grep -a 'error=' "$OUT" | tr '\n' ' ')
	tls_py tclose leaf --mode close || { fail "TLS server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun tls "$CL/ev_io" epipe localhost "$PORT"
	local tls
	tls=$(grep -a 'error=' "$OUT" | tr '\n' ' ')
	[ "$RC" = 0 ] || { fail "client exit $RC"; return; }
	[ "$plain" = "nosignal_error=EPIPE sigpipe_after_nosignal=0 write_error=EPIPE sigpipe_after_write=1 " ] ||
		{ fail "harness: plain TCP did not give the expected baseline: $plain"; return; }
	[ "$tls" = "$plain" ] && ok "TLS as plain TCP: $tls" || fail "TLS: '$tls'; plain TCP: '$plain'"
}

tcase dup_family_share_session
tcase fork_child_close_and_exit_keep_parent_session
tcase fork_parent_writes_child_reads
tcase fork_child_writes_parent_reads
tcase fork_both_write_breaks_without_plaintext
tcase exec_closes_tls_fd
tcase fdopen_fprintf_fgets
tcase dprintf
tcase sendmmsg_recvmmsg
tcase pwritev2_preadv2
tcase sendfile_with_offset
tcase sendfile_file_position
tcase sendfile64
tcase splice_einval_no_plaintext
tcase resumed_then_new_connection
tcase epipe_sigpipe_like_plain_tcp
finish
