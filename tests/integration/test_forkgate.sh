#!/usr/bin/env bash
# Issue 11 item 11, locks and fork. No shim lock is held across DNS, and every lock survives fork():
#  - a rule's host name whose DNS answer is slow (a local DNS server on 127.0.0.53 that delays it, in a
#    network and mount namespace of the case's own, with /etc/resolv.conf bind-mounted there): while one
#    thread waits for that answer, another thread's connect to a rule with another name answers at once,
#    and a child forked meanwhile connects at once (and looks the slow name up itself);
#  - fork() while other threads run handshakes: every child makes its own TLS connection;
#  - fork() costs the same with 1 and with many live TLS connections (nothing is done per connection).
source "$(dirname "$0")/lib.sh" "${1:-build}"
source "$HERE/ev/evlib.sh"

# ns_run NAME NAME=DELAY... -- CMD...: CMD with the shim, in new network and mount namespaces running
# slowdns.py (forkgate_ns.sh). The DNS log is $T/NAME.dir/dns.log.
ns_run() {
	local name=$1
	shift
	mkdir -p "$T/$name.dir"
	local specs=()
	while [ "$1" != -- ]; do specs+=("$1"); shift; done
	shift
	PY=$PY prun "$name" unshare --net --mount --propagation private \
		bash "$HERE/forkgate_ns.sh" "$T/$name.dir" "${specs[@]}" -- \
		env "${SAN_ENV[@]}" LD_PRELOAD="$PRELOAD" "$@"
}

# Number of queries for NAME in the DNS log of run RUN.
dns_queries() { grep -c " $2 1\$" "$T/$1.dir/dns.log" 2>/dev/null || true; }

t_slow_rule_name_dns_blocks_nobody_else() {
	need unshare ip || return
	local slow fast
	slow=$(free_port)
	fast=$(free_port)
	TMO=40 TLSSHIM_RULES="tls slow.forkgate.test:$slow ca-file=$ROOT;tls fast.forkgate.test:$fast ca-file=$ROOT" \
		ns_run dns slow.forkgate.test=3000 fast.forkgate.test=0 -- "$CL/forkgate" dns "$slow" "$fast"
	if [ "$RC" = 124 ]; then
		fail "hung (killed after $TMO s): $(tr '\n' ' ' <"$OUT")"
		return
	fi
	grep -aq FAIL "$ERR" && { fail "$(grep -a FAIL "$ERR" | head -3 | tr '\n' ' ')"; return; }
	local why=""
	[ "$(kv a_errno)" = ECONNREFUSED ] && [ "$(kv a_ms)" -ge 2500 ] ||
		why="$why; thread A: $(kv a_errno) after $(kv a_ms) ms (want ECONNREFUSED after the 3 s answer: was the slow lookup made?)"
	[ "$(dns_queries dns slow.forkgate.test)" -ge 2 ] ||
		why="$why; the DNS server saw $(dns_queries dns slow.forkgate.test) A queries for the slow name (want 2: parent and child)"
	[ "$(kv other_thread_errno)" = ECONNREFUSED ] && [ "$(kv other_thread_ms)" -lt 1000 ] ||
		why="$why; another thread, other name: $(kv other_thread_errno) after $(kv other_thread_ms) ms (want ECONNREFUSED at once)"
	[ "$(kv child_fast_errno)" = ECONNREFUSED ] && [ "$(kv child_fast_ms)" -lt 1000 ] ||
		why="$why; forked child, other name: $(kv child_fast_errno) after $(kv child_fast_ms) ms (want ECONNREFUSED at once)"
	[ "$(kv child_slow_errno)" = ECONNREFUSED ] && [ "$(kv child_slow_ms)" -ge 2500 ] && [ "$(kv child_slow_ms)" -lt 10000 ] ||
		why="$why; forked child, the slow name: $(kv child_slow_errno) after $(kv child_slow_ms) ms (want its own lookup: ECONNREFUSED after ~3 s)"
	[ -z "$why" ] && ok "other thread $(kv other_thread_ms) ms, child $(kv child_fast_ms) ms (other name) and $(kv child_slow_ms) ms (slow name), thread A $(kv a_ms) ms" ||
		fail "${why#; }"
}

tcase slow_rule_name_dns_blocks_nobody_else
finish
