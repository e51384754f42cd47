#!/usr/bin/env bash
# Issue 12, epoll: the per-set design (preload/epoll.c). One C client (tests/clients/ev_epoll.c) mode
# per flag and situation: level and edge triggered, EPOLLONESHOT (also with two threads on one set),
# EPOLLEXCLUSIVE (two threads, two sets; the kernel's EINVAL rules compared with a plain socket),
# EPOLLRDHUP/EPOLLPRI, one fd in several sets, the same data value (0) for every fd, a registered fd
# closed and its number reused, fork with an inherited set, and a socket registered before its
# non-blocking connect (nginx's upstream pattern). Each mode runs first without the shim against a
# plain server (the client's expectations are the kernel's own), then under the shim against TLS.
# Then nginx 1.22 as a reverse proxy with a TLS upstream (2 workers, 32 MiB and 48 MiB responses,
# with and without upstream keepalive, SHA-256 compared).
source "$(dirname "$0")/lib.sh" "${1:-build}"
source "$HERE/ev/evlib.sh"

# emode MODE [SERVERMODE]: the baseline without the shim (plain server), then the shim (TLS server).
emode() {
	local m=$1 smode=${2:-onreq}
	ev_server "p_$m" plain "$smode" || { fail "plain server did not start"; return; }
	prun "base_$m" "$CL/ev_epoll" "$m" 127.0.0.1 "$PORT"
	if [ "$RC" != 0 ]; then
		fail "baseline without the shim (plain TCP) failed: the client's expectations are not the kernel's: $(grep -a FAIL "$ERR" | head -3 | tr '\n' ' ')"
		return
	fi
	ev_server "t_$m" tls "$smode" || { fail "TLS server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun "tls_$m" "$CL/ev_epoll" "$m" localhost "$PORT"
	expect_clean_client || return
	local got want
	got=$(kv recv_sha)
	if [ -n "$got" ]; then
		wait_lines "$T/t_$m.rec" 1
		want=$(rec_get "$T/t_$m.rec" sent_sha)
		[ "$got" = "$want" ] || { fail "received SHA-256 $got, the server sent $want"; return; }
	fi
	ok "$(grep -a "^$m=ok" "$OUT" | head -1) (plain TCP baseline: same checks passed)"
}

t_lt() { emode lt; }
t_et() { emode et; }
t_oneshot() { emode oneshot; }
t_exclusive() { emode exclusive; }
t_rdhup() { emode rdhup burst:5000; }
t_multi() { emode multi; }
t_shared_data() { emode shared; }
t_close_reuse() { emode close; }
t_fork() { emode fork; }
t_prereg() { emode prereg; }

tcase lt
tcase et
tcase oneshot
tcase exclusive
tcase rdhup
tcase multi
tcase shared_data
tcase close_reuse
tcase fork
tcase prereg
finish
