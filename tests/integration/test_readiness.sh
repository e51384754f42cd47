#!/usr/bin/env bash
# Issue 12, readiness (items 2, 3, 8, 9): only application data is readiness. A TLS 1.3 server that sends
# its NewSessionTickets and then stays silent: poll, ppoll, select and pselect keep waiting (the whole
# timeout, not restarted), FIONREAD counts 0, a blocking read keeps blocking, recv(MSG_DONTWAIT) after
# readable returns data (PHP's pattern, with PHP's own file_get_contents 50 runs in a row). TCP_NODELAY set
# during an asynchronous handshake is kept; select with nfds above FD_SETSIZE; 300 waiters all woken.
# Blocking readers woken when another thread takes their record (two readers and a watcher); zero
# timeouts return at once; FIONREAD is exact (a program reading exactly that much never waits) and
# nginx's FIONREAD pattern gets every byte.
source "$(dirname "$0")/lib.sh" "${1:-build}"
source "$HERE/ev/evlib.sh"

# tickets_case METHOD: rd_tickets METHOD against evserver delayecho:300 (TLS 1.3, tickets, then silence).
tickets_case() {
	local m=$1
	ev_server tk tls delayecho:300 || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun "tk_$m" "$CL/rd_tickets" "$m" localhost "$PORT"
	expect_clean_client || return
	ok "$(grep -a '=' "$OUT" | tr '\n' ' ')"
}
t_tickets_only_poll() { tickets_case poll; }
t_tickets_only_ppoll() { tickets_case ppoll; }
t_tickets_only_select() { tickets_case select; }
t_tickets_only_pselect() { tickets_case pselect; }
# The same waits made with syscall(SYS_poll/SYS_ppoll/SYS_select/SYS_pselect6): the raw calls reach the
# poll-family hooks too (before, they went to the kernel, which said readable for the tickets).
t_tickets_only_syscall_poll() { tickets_case sys_poll; }
t_tickets_only_syscall_ppoll() { tickets_case sys_ppoll; }
t_tickets_only_syscall_select() { tickets_case sys_select; }
t_tickets_only_syscall_pselect6() { tickets_case sys_pselect6; }
t_tickets_only_fionread_zero() { tickets_case fionread; }
t_tickets_only_blocking_read_blocks() { tickets_case blockread; }
t_tickets_only_dontwait_eagain() { tickets_case dontwait; }

# ---- item 2: PHP 8.2 file_get_contents against a TLS 1.3 server (tickets, then the answer 50 ms later).
# PHP polls, then reads with MSG_DONTWAIT, and takes an EAGAIN after "readable" for a failed request.
# php -n: no php.ini, so no opcache.so, which PHP dlopens with RTLD_DEEPBIND, refused by the ASan runtime.
t_php_file_get_contents_50_in_a_row() {
	need php || return
	ev_server ph tls http:50 || { fail "server did not start"; return; }
	cat >"$T/fgc.php" <<'PHP'
<?php
$port = $argv[1];
$bad = 0;
for ($i = 1; $i <= 50; $i++) {
    $d = @file_get_contents("http://127.0.0.1:$port/$i");
    if ($d === false) {
        $e = error_get_last();
        echo "run $i failed: " . ($e ? $e["message"] : "?") . "\n";
        $bad++;
        continue;
    }
    echo "run $i n=" . strlen($d) . " sha=" . hash("sha256", $d) . "\n";
}
echo "bad=$bad\n";
exit($bad ? 1 : 0);
PHP
	TMO=120 TLSSHIM_RULES="tls 127.0.0.1:$PORT name=localhost ca-file=$ROOT" srun php php -n -d default_socket_timeout=10 "$T/fgc.php" "$PORT"
	[ "$RC" = 0 ] || { fail "php exit $RC: $(grep -a 'failed' "$OUT" | head -3 | tr '\n' ' ') $(tail -1 "$OUT")"; return; }
	local i want got bad=""
	for i in $(seq 1 50); do
		want=$(grep -a "^.* http $i " "$T/ph.log" | head -1 | awk '{print $4, $5}')
		got=$(grep -a "^run $i " "$OUT" | sed 's/.* n=\([0-9]*\) sha=\(.*\)/\2 \1/')
		[ -n "$want" ] && [ "$want" = "$got" ] || bad="$bad $i(server '$want', php '$got')"
	done
	[ -z "$bad" ] && ok "50 of 50 bodies arrived whole (SHA-256 and length match the server's)" || fail "bodies differ:$bad"
}

# ---- item 8: full duplex across two threads (python: writer thread sendall 32 MiB in 1 MiB pieces, main
# thread recv), against an asyncio TLS echo server that applies back-pressure. 100 runs in a row, each
# within 5 s, while a second copy of the same client runs beside it (load).
t_duplex_two_threads_100_runs_with_load() {
	local n=${RD_DUPLEX_RUNS:-100}
	rm -f "$T/dx.port"
	bg dx "$PY" -u "$HERE/rd_duplex.py" server --cert "$PKI/leaf.pem" --key "$PKI/leaf.key" --portfile "$T/dx.port"
	wait_portfile dx || { fail "duplex server did not start"; return; }
	# the second copy: same client, same server, until the first is done (bounded by its own runs)
	TLSSHIM_RULES="$(rule)" timeout -k 2 600 env "${SAN_ENV[@]}" LD_PRELOAD="$PRELOAD" "$PY" "$HERE/rd_duplex.py" client localhost "$PORT" $((32 << 20)) "$n" >"$T/dx2.out" 2>&1 &
	local p2=$!
	CASE_PIDS+=("$p2")
	TMO=900 TLSSHIM_RULES="$(rule)" srun dx1 "$PY" "$HERE/rd_duplex.py" client localhost "$PORT" $((32 << 20)) "$n"
	local r1=$RC sum1
	sum1=$(tail -1 "$OUT")
	wait "$p2"
	local r2=$? sum2
	sum2=$(tail -1 "$T/dx2.out")
	[ "$r1" = 0 ] && [ "$r2" = 0 ] && ok "copy 1: $sum1; copy 2 (load): $sum2" ||
		fail "copy 1 exit $r1: $(grep -a 'hung\|bad' "$OUT" | head -2 | tr '\n' ' ') $sum1; copy 2 exit $r2: $(grep -a 'hung\|bad' "$T/dx2.out" | head -2 | tr '\n' ' ') $sum2"
}

# ---- a blocking reader and another thread: two threads blocked in read() on one TLS fd and a third
# watching it, against a server that sends 32-byte records one at a time with pauses of 300-600 ms
# (evserver drip). A reader must be woken when another thread takes the next record out of the kernel
# just before the reader goes to sleep: every record reaches a reader within 250 ms of being sent (a missed wake-up waits for the next record, at least 300 ms) and both
# readers see EOF. The watcher cycles through poll + FIONREAD, a poll(0) spin and a FIONREAD spin
# (rd_readers.c). RD_READERS_RUNS runs in a row (default 21), each within 5 s, while a second copy runs
# beside it.
t_two_readers_and_a_watcher_with_load() {
	local n=${RD_READERS_RUNS:-21} i m bad="" slow="" worst=0 lat maxlat=0 bad2 p2
	local modes=(poll spin fionread)
	ev_server dr tls drip:8:600 || { fail "server did not start"; return; }
	# the second copy: the same client against the same server, as many runs
	(
		for i in $(seq 1 "$n"); do
			TLSSHIM_RULES="$(rule)" timeout -k 2 20 env "${SAN_ENV[@]}" LD_PRELOAD="$PRELOAD" \
				"$CL/rd_readers" "${modes[$((i % 3))]}" localhost "$PORT" 8 250 600 >>"$T/dr2.out" 2>&1 ||
				echo "copy2 run $i: exit $?" >>"$T/dr2.out"
		done
	) &
	p2=$!
	CASE_PIDS+=("$p2")
	for i in $(seq 1 "$n"); do
		m=${modes[$((i % 3))]}
		TMO=20 TLSSHIM_RULES="$(rule)" srun "dr_$i" "$CL/rd_readers" "$m" localhost "$PORT" 8 250 600
		[ "$MS" -gt "$worst" ] && worst=$MS
		[ "$MS" -gt 5000 ] && slow="$slow $i/$m(${MS} ms)"
		lat=$(kv max_latency_ms)
		[ -n "$lat" ] && [ "$lat" -gt "$maxlat" ] && maxlat=$lat
		if [ "$RC" != 0 ] || grep -aq 'FAIL\|^tlsshim: ' "$ERR"; then
			bad="$bad run $i/$m: exit $RC $(grep -a 'FAIL\|^tlsshim: ' "$ERR" | head -2 | tr '\n' ' ')"
		fi
	done
	wait "$p2"
	bad2=$(grep -a 'FAIL\|copy2 run\|^tlsshim: ' "$T/dr2.out" | head -3 | tr '\n' ' ')
	if [ -z "$bad" ] && [ -z "$slow" ] && [ -z "$bad2" ]; then
		ok "$n runs (poll, spin, fionread watcher) of 8 records: every record within 250 ms (worst $maxlat ms), both readers saw EOF, slowest run $worst ms; the second copy beside: $n clean runs"
	else
		fail "${bad:+failed:$bad }${slow:+over 5 s:$slow }${bad2:+copy 2: $bad2}"
	fi
}

# ---- zero timeouts: poll(fd, POLLIN, 0), ppoll and select with zero timeouts on a silent TLS fd, 100,000
# of each, every one returns at once (poll.c read the clock twice, so a millisecond boundary between the
# reads turned a timeout that had just run out into -1: forever).
t_zero_timeouts_return_at_once() {
	ev_server zt tls idle || { fail "server did not start"; return; }
	TMO=60 TLSSHIM_RULES="$(rule)" srun zt "$CL/rd_zero" localhost "$PORT" 100000
	expect_clean_client || return
	ok "$(grep -a '=' "$OUT" | tr '\n' ' ')"
}

# ---- FIONREAD is what reads return without waiting (rd_fionread.c against evserver onreq): 43,107 bytes in
# six records give exactly 43107 and a program that then reads exactly that many bytes with blocking
# reads never waits; nginx's own pattern (8 KiB recv, FIONREAD when one fills the buffer, stop at
# available <= 0, wait for an EPOLLET edge) gets all of a 200,000-byte answer. First without the shim
# against a plain server (the kernel's own answers), then under the shim against a TLS one.
t_fionread_exact_and_nginx_pattern() {
	ev_server fp plain onreq || { fail "plain server did not start"; return; }
	TMO=30 prun fr_plain "$CL/rd_fionread" localhost "$PORT"
	if [ "$RC" != 0 ]; then
		fail "plain TCP baseline failed (exit $RC): $(grep -a FAIL "$ERR" | head -2 | tr '\n' ' ')"
		return
	fi
	ev_server ft tls onreq || { fail "server did not start"; return; }
	TMO=30 TLSSHIM_RULES="$(rule)" srun fr "$CL/rd_fionread" localhost "$PORT"
	expect_clean_client || return
	ok "$(grep -a '=' "$OUT" | tr '\n' ' ')(plain TCP baseline: same checks passed)"
}

# ---- the lost echo of the scale bench: one active TLS connection registered after 9,000 idle ones in one
# epoll set (rd_manyidle.c against the asyncio echo server); an epoll_wait that finds nothing, then a
# write: its echo is reported within 5 s, 3 rounds. epoll.c took at most 4,096 events from its inner set
# per kernel edge, and the rest (the active connection's among them) waited for the next edge. First
# without the shim against the plain echo server.
t_echo_beside_9000_idle() {
	local n=${RD_MANYIDLE:-9000}
	if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt $((n + 100)) ]; then
		fail "RLIMIT_NOFILE hard limit $(ulimit -Hn) is below $((n + 100)) (run as root or raise it)"
		return
	fi
	rm -f "$T/mip.port" "$T/mit.port"
	bg mip "$PY" -u "$EVDIR/aio_echo_server.py" --plain --portfile "$T/mip.port"
	wait_portfile mip || { fail "plain echo server did not start"; return; }
	TMO=120 prun mi_plain "$CL/rd_manyidle" 127.0.0.1 "$PORT" "$n"
	if [ "$RC" != 0 ]; then
		fail "plain TCP baseline failed (exit $RC): $(grep -a FAIL "$ERR" | head -2 | tr '\n' ' ')"
		return
	fi
	bg mit "$PY" -u "$EVDIR/aio_echo_server.py" --cert "$PKI/leaf.pem" --key "$PKI/leaf.key" --portfile "$T/mit.port"
	wait_portfile mit || { fail "echo server did not start"; return; }
	TMO=180 TLSSHIM_RULES="tls 127.0.0.1:$PORT name=localhost ca-file=$ROOT" srun mi "$CL/rd_manyidle" 127.0.0.1 "$PORT" "$n"
	expect_clean_client || return
	ok "$(grep -a '=' "$OUT" | tr '\n' ' ')(plain TCP baseline: same checks passed)"
}

# ---- item 9: TCP_NODELAY kept, select above FD_SETSIZE, waiters not capped ----
t_tcp_nodelay_set_during_handshake_kept() {
	ev_server nd tls slowhs:800 || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun nd "$CL/rd_misc" nodelay localhost "$PORT"
	expect_clean_client || return
	ok "$(grep -a '_after=' "$OUT" | tr '\n' ' ')"
}

t_select_nfds_above_fd_setsize() {
	ev_server bs tls onreq || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun bs "$CL/rd_misc" bigselect localhost "$PORT"
	expect_clean_client || return
	ok "$(grep -a '=' "$OUT" | tr '\n' ' ')"
}

# The same with the waiters polling a dup() of the fd that is read: one socket, one TLS connection (the
# wake-ups matched waiters by fd number, so these slept into their 10 s timeout).
t_waiters_on_a_dup_woken() {
	ev_server wd tls onreq || { fail "server did not start"; return; }
	TMO=40 TLSSHIM_RULES="$(rule)" srun wd "$CL/rd_misc" dupwaiters localhost "$PORT" 8
	expect_clean_client || return
	ok "$(grep -a '=' "$OUT" | tr '\n' ' ')"
}

t_wake_eventfd_closed_and_reused_by_tls() {
	ev_server we tls onreq || { fail "server did not start"; return; }
	TMO=30 TLSSHIM_RULES="$(rule)" srun we "$CL/rd_misc" efdreuse localhost "$PORT"
	expect_clean_client || return
	ok "$(grep -a '=' "$OUT" | tr '\n' ' ')"
}

# misc_delay MODE: rd_misc MODE against evserver delayecho:300.
misc_delay() {
	ev_server "md$1" tls delayecho:300 || { fail "server did not start"; return; }
	TMO=30 TLSSHIM_RULES="$(rule)" srun "md_$1" "$CL/rd_misc" "$1" localhost "$PORT"
	expect_clean_client || return
	ok "$(grep -a '=' "$OUT" | tr '\n' ' ')"
}
t_siglongjmp_out_of_a_blocking_read() { misc_delay longjmp; }
# siglongjmp out of poll, ppoll, select and pselect on a TLS fd, then a wake-up for bytes left inside the
# shim (rd_misc.c: pollljmp). Under TLSSHIM_ASAN=1 the sanitizer keeps frames a jump abandoned poisoned
# (detect_stack_use_after_return), so a wake-up that reads such a frame is a report that fails the case.
t_siglongjmp_out_of_the_poll_family() {
	ev_server pj tls onreq || { fail "server did not start"; return; }
	local saved=("${SAN_ENV[@]}")
	if [ "${#SAN_ENV[@]}" -gt 0 ]; then
		SAN_ENV=("${SAN_ENV[0]}:detect_stack_use_after_return=1" "${SAN_ENV[@]:1}")
	fi
	TMO=30 TLSSHIM_RULES="$(rule)" srun pj "$CL/rd_misc" pollljmp localhost "$PORT"
	SAN_ENV=("${saved[@]}")
	expect_clean_client || return
	ok "$(grep -a '=' "$OUT" | tr '\n' ' ')"
}
t_fork_child_never_wakes_parent_sleepers() { misc_delay forksleep; }
t_closefrom_then_pipe_on_the_wake_eventfd() { misc_delay closefrom_pipe; }

t_epoll_waiters_on_a_dup_woken() {
	ev_server we2 tls onreq || { fail "server did not start"; return; }
	TMO=40 TLSSHIM_RULES="$(rule)" srun we2 "$CL/rd_misc" dupepoll localhost "$PORT" 8
	expect_clean_client || return
	ok "$(grep -a '=' "$OUT" | tr '\n' ' ')"
}

t_300_waiters_all_woken() {
	ev_server wt tls onreq || { fail "server did not start"; return; }
	TMO=40 TLSSHIM_RULES="$(rule)" srun wt "$CL/rd_misc" waiters localhost "$PORT" 300
	expect_clean_client || return
	ok "$(grep -a '=' "$OUT" | tr '\n' ' ')"
}

tcase tickets_only_poll
tcase tickets_only_ppoll
tcase tickets_only_select
tcase tickets_only_pselect
tcase tickets_only_syscall_poll
tcase tickets_only_syscall_ppoll
tcase tickets_only_syscall_select
tcase tickets_only_syscall_pselect6
tcase tickets_only_fionread_zero
tcase tickets_only_blocking_read_blocks
tcase tickets_only_dontwait_eagain
tcase php_file_get_contents_50_in_a_row
tcase duplex_two_threads_100_runs_with_load
tcase two_readers_and_a_watcher_with_load
tcase zero_timeouts_return_at_once
tcase fionread_exact_and_nginx_pattern
tcase echo_beside_9000_idle
tcase tcp_nodelay_set_during_handshake_kept
tcase select_nfds_above_fd_setsize
tcase 300_waiters_all_woken
tcase waiters_on_a_dup_woken
tcase epoll_waiters_on_a_dup_woken
tcase wake_eventfd_closed_and_reused_by_tls
tcase siglongjmp_out_of_a_blocking_read
tcase siglongjmp_out_of_the_poll_family
tcase fork_child_never_wakes_parent_sleepers
tcase closefrom_then_pipe_on_the_wake_eventfd
finish
