#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# TLSSHIM_METRICS_FILE: real clients against real TLS servers; the file is checked by Prometheus' own
# parser (`promtool check metrics`, Debian's prometheus package) and its values against what happened:
# connections, handshakes, resumptions, failures by reason, bytes, per rule; %p; a file written while
# the program runs (not only at exit) and at most every 10 s, with a live connection's bytes; a fork child starting from zero; the .prom
# name rule; no temporary file left behind.
source "$(dirname "$0")/lib.sh" "${1:-build}"

PROMTOOL=$(command -v promtool || echo /usr/bin/promtool)

# metric FILE NAME LABELS: the value of the series NAME{LABELS} (exact label text), or "absent".
metric() {
	local v
	v=$(grep -F "$2{$3} " "$1" | awk '{print $2}')
	echo "${v:-absent}"
}
promcheck() {
	"$PROMTOOL" check metrics <"$1" >"$T/promtool.out" 2>&1 && [ ! -s "$T/promtool.out" ]
}

t_curl_counts_and_format() {
	need curl "$PROMTOOL" || return
	start_s_server good leaf -www || { fail "s_server did not start"; return; }
	local good=$PORT
	start_s_server wrong wrongname -www || { fail "second s_server did not start"; return; }
	local bad=$PORT
	rm -f "$T"/m-*.prom
	TLSSHIM_METRICS_FILE="$T/m-%p.prom" TLSSHIM_RULES="tls localhost:$good ca-file=$ROOT; tls 127.0.0.1:$bad name=localhost ca-file=$ROOT" \
		srun curl curl -sS --max-time 10 "http://localhost:$good/" "http://localhost:$good/" "http://127.0.0.1:$bad/"
	local f
	f=$(ls "$T"/m-*.prom 2>/dev/null | head -1)
	[ -n "$f" ] || { fail "no metrics file (rc=$RC): $(ls "$T")"; return; }
	CASE_LOGS+=("$f")
	[[ $(basename "$f") =~ ^m-[0-9]+\.prom$ ]] || { fail "%p not expanded: $f"; return; }
	promcheck "$f" || { fail "promtool check metrics: $(cat "$T/promtool.out")"; return; }
	local r1='direction="outbound",rule="TLSSHIM_RULES:1"' r2='direction="outbound",rule="TLSSHIM_RULES:2"' why=()
	[ "$(metric "$f" tlsshim_connections_total "$r1")" = 2 ] || why+=("connections r1=$(metric "$f" tlsshim_connections_total "$r1")")
	[ "$(metric "$f" tlsshim_handshakes_total "$r1")" = 2 ] || why+=("handshakes r1")
	[ "$(metric "$f" tlsshim_resumptions_total "$r1")" = 1 ] || why+=("resumptions r1=$(metric "$f" tlsshim_resumptions_total "$r1")")
	[ "$(metric "$f" tlsshim_connections_total "$r2")" = 1 ] || why+=("connections r2")
	[ "$(metric "$f" tlsshim_handshakes_total "$r2")" = 0 ] || why+=("handshakes r2")
	[ "$(metric "$f" tlsshim_failures_total "$r2,reason=\"verify\"")" = 1 ] || why+=("verify failures r2=$(metric "$f" tlsshim_failures_total "$r2,reason=\"verify\"")")
	local rx tx
	rx=$(metric "$f" tlsshim_received_bytes_total "$r1")
	tx=$(metric "$f" tlsshim_sent_bytes_total "$r1")
	[ "$rx" -gt 1000 ] 2>/dev/null && [ "$tx" -gt 50 ] 2>/dev/null || why+=("bytes rx=$rx tx=$tx")
	ls "$T" | grep -q '\.tmp' && why+=("a temporary file was left: $(ls "$T" | grep tmp)")
	[ ${#why[@]} = 0 ] && ok "promtool clean; 2+1 connections, 1 resumed, 1 verify failure, $rx/$tx bytes" || fail "${why[*]}"
}

# A long-lived program: the file appears at the first connection (while it runs), a second connection
# 1 s later does not rewrite it (at most every 10 s), the exit writes the final counts.
t_periodic_and_final() {
	need "$PROMTOOL" || return
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	local f=$T/live.prom
	rm -f "$f"
	TLSSHIM_METRICS_FILE="$f" TLSSHIM_RULES="tls 127.0.0.1:$PORT name=localhost ca-file=$ROOT" LD_PRELOAD="$PRELOAD" \
		timeout 30 "$PY" - "$PORT" "$T/step" >"$T/live.out" 2>&1 <<'EOF' &
import socket, sys, time, os
port, step = int(sys.argv[1]), sys.argv[2]
def one():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"ping"); s.recv(100); s.close()
one(); open(step, "w").write("1"); time.sleep(2)
one(); open(step, "w").write("2"); time.sleep(2)
EOF
	local pid=$! i
	for i in $(seq 1 50); do [ "$(cat "$T/step" 2>/dev/null)" = 1 ] && break; sleep 0.1; done
	[ -f "$f" ] || { fail "no file while the program runs, after its first connection"; wait $pid; return; }
	local first
	first=$(metric "$f" tlsshim_connections_total 'direction="outbound",rule="TLSSHIM_RULES:1"')
	for i in $(seq 1 50); do [ "$(cat "$T/step" 2>/dev/null)" = 2 ] && break; sleep 0.1; done
	sleep 0.3
	local second
	second=$(metric "$f" tlsshim_connections_total 'direction="outbound",rule="TLSSHIM_RULES:1"')
	wait $pid
	local rc=$? final
	final=$(metric "$f" tlsshim_connections_total 'direction="outbound",rule="TLSSHIM_RULES:1"')
	[ "$rc" = 0 ] || { fail "program failed rc=$rc: $(cat "$T/live.out")"; return; }
	promcheck "$f" || { fail "promtool: $(cat "$T/promtool.out")"; return; }
	[ "$first" = 1 ] && [ "$second" = 1 ] && [ "$final" = 2 ] && ok "during the run: $first, 1 s later still $second (10 s limit), at exit $final" ||
		fail "first=$first second=$second final=$final"
}

# One long connection: its bytes show in the file written while it is still open (the periodic write
# rides on the connection's own reads and writes and counts live connections' traffic), not only at close.
t_live_connection_bytes() {
	need "$PROMTOOL" || return
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	local f=$T/long.prom
	rm -f "$f" "$T/lstep"
	TLSSHIM_METRICS_FILE="$f" TLSSHIM_RULES="tls 127.0.0.1:$PORT name=localhost ca-file=$ROOT" LD_PRELOAD="$PRELOAD" \
		timeout 40 "$PY" - "$PORT" "$T/lstep" >"$T/long.out" 2>&1 <<'EOF' &
import socket, sys, time
port, step = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
def echo(n):
    s.sendall(b"x" * n)
    got = 0
    while got < n:
        got += len(s.recv(65536))
echo(300000)
time.sleep(10.5)   # the next call on the connection is due to write the file
echo(1000)
open(step, "w").write("1")
time.sleep(3)
s.close()
EOF
	local pid=$! i
	for i in $(seq 1 200); do [ -f "$T/lstep" ] && break; sleep 0.1; done
	local tx rx
	tx=$(metric "$f" tlsshim_sent_bytes_total 'direction="outbound",rule="TLSSHIM_RULES:1"')
	rx=$(metric "$f" tlsshim_received_bytes_total 'direction="outbound",rule="TLSSHIM_RULES:1"')
	wait $pid
	local rc=$?
	[ "$rc" = 0 ] || { fail "program failed rc=$rc: $(cat "$T/long.out")"; return; }
	promcheck "$f" || { fail "promtool: $(cat "$T/promtool.out")"; return; }
	[ "$tx" -ge 300000 ] 2>/dev/null && [ "$rx" -ge 300000 ] 2>/dev/null &&
		ok "while the connection was open: sent $tx, received $rx bytes" ||
		fail "while the connection was open the file said sent=$tx received=$rx (want >= 300000)"
}

t_fork_child_from_zero() {
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	rm -f "$T"/f-*.prom
	cat >"$T/fork.py" <<'EOF'
import socket, sys, os
port = int(sys.argv[1])
def one():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"ping"); s.recv(100); s.close()
one()
pid = os.fork()
if pid == 0:
    one(); one()
    sys.exit(0)          # a normal exit: the child writes its file
os.waitpid(pid, 0)
print("parent", os.getpid(), "child", pid)
EOF
	TLSSHIM_METRICS_FILE="$T/f-%p.prom" TLSSHIM_RULES="tls 127.0.0.1:$PORT name=localhost ca-file=$ROOT" srun fork "$PY" "$T/fork.py" "$PORT"
	[ "$RC" = 0 ] || { fail "rc=$RC $(cat "$ERR")"; return; }
	local parent child
	parent=$(awk '{print $2}' "$OUT") child=$(awk '{print $4}' "$OUT")
	local l='direction="outbound",rule="TLSSHIM_RULES:1"' p c
	p=$(metric "$T/f-$parent.prom" tlsshim_connections_total "$l")
	c=$(metric "$T/f-$child.prom" tlsshim_connections_total "$l")
	[ "$p" = 1 ] && [ "$c" = 2 ] && ok "parent 1, child 2 (not 3)" || fail "parent=$p child=$c ($(ls "$T"/f-*.prom))"
}

t_name_must_end_in_prom() {
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	TLSSHIM_METRICS_FILE="$T/metrics.txt" TLSSHIM_RULES="tls 127.0.0.1:$PORT name=localhost ca-file=$ROOT" srun bad "$PY" "$HERE/pyclient.py" tcp 127.0.0.1 "$PORT" --send hi --shut
	[ "$RC" = 0 ] || { fail "the connection itself must still work: rc=$RC"; return; }
	[ ! -e "$T/metrics.txt" ] && grep -q 'must end in .prom' "$ERR" && ok || fail "file=$(ls "$T/metrics.txt" 2>&1) err=$(head -c 200 "$ERR")"
}

tcase curl_counts_and_format
tcase periodic_and_final
tcase live_connection_bytes
tcase fork_child_from_zero
tcase name_must_end_in_prom
finish
