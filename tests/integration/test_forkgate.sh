#!/usr/bin/env bash
# Issue 11 item 11, locks and fork. No shim lock is held across DNS, and every lock survives fork():
#  - a rule's host name whose DNS answer is slow (a local DNS server on 127.0.0.53 that delays it, in a
#    network and mount namespace of the case's own, with /etc/resolv.conf bind-mounted there): while one
#    thread waits for that answer, another thread's connect to a rule with another name answers at once,
#    and a child forked meanwhile connects at once (and looks the slow name up itself);
#  - a connect made from inside the shim's own lookup of a rule name (an NSS module that resolves over TCP,
#    nss_fgtest.c) is matched without looking the name up again, instead of waiting for itself;
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
		fail "hung (killed by the harness): $(tr '\n' ' ' <"$OUT")"
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

t_nested_connect_from_nss_module() {
	need unshare ip gcc || return
	mkdir -p "$T/nss"
	gcc -O2 -shared -fPIC -o "$T/nss/libnss_fgtest.so.2" "$HERE/nss_fgtest.c" 2>"$T/nss/gcc.err" ||
		{ fail "cannot build nss_fgtest.c: $(head -3 "$T/nss/gcc.err")"; return; }
	local closed nssport
	closed=$(free_port)
	nssport=$(free_port)
	# The shim looks the rule's name up; the NSS module connects over TCP from inside that lookup, to a
	# port the same rule matches (*): that nested connect must not look the name up again.
	TMO=30 SLOWDNS_TCP_PORT=$nssport FGTEST_NSS_PORT=$nssport LD_LIBRARY_PATH=$T/nss \
		TLSSHIM_RULES="tls nested.forkgate.test:* ca-file=$ROOT" \
		ns_run nss nested.forkgate.test=0 -- "$CL/forkgate" nss "$closed"
	if [ "$RC" = 124 ]; then
		fail "hung (killed by the harness): the nested connect waited for the lookup it was made from"
		return
	fi
	local q
	q=$(grep -a ' tcp nested.forkgate.test ' "$T/nss.dir/dns.log" | head -1)
	[ -n "$q" ] || { fail "the NSS module was never asked (rc=$RC): $(tr '\n' ' ' <"$OUT")"; return; }
	# "6e6573" = "nes": the module's query arrived as plain text (not a TLS ClientHello, 16 03 ...).
	[ "$(kv connect_errno)" = ECONNREFUSED ] && [ "$(kv connect_ms)" -lt 5000 ] && [ "${q##* }" != "${q##* 6e6573}" ] &&
		ok "the lookup's nested connect went out plain (${q##* }...), the program's connect: ECONNREFUSED after $(kv connect_ms) ms" ||
		fail "connect: $(kv connect_errno) after $(kv connect_ms) ms; module query: $q"
}

t_fork_while_threads_handshake() {
	ev_server hs tls echo || { fail "server did not start"; return; }
	TMO=90 TLSSHIM_RULES="tls 127.0.0.1:$PORT name=localhost ca-file=$ROOT" \
		srun hs "$CL/forkgate" handshakes "$PORT" 4 20
	expect_clean_client || return
	[ "$(kv children_ok)" = 20 ] && [ "$(kv thread_failures)" = 0 ] && [ "$(kv thread_rounds)" -ge 20 ] &&
		ok "20 forks, 20 children made their own TLS connection; 4 threads: $(kv thread_rounds) connections meanwhile, none failed" ||
		fail "children ok $(kv children_ok) of 20, thread rounds $(kv thread_rounds), thread failures $(kv thread_failures)"
}

# fork_cost CONNS FORKS: fork() and _Fork() in a process with CONNS live TLS connections; sets HANDLERS_US
# (median extra microseconds fork() takes over _Fork(): the fork handlers' share) and FORK_TEXT.
fork_cost() {
	TMO=120 TLSSHIM_RULES="tls 127.0.0.1:$PORT name=localhost ca-file=$ROOT" \
		srun "cost$1" "$CL/forkgate" forkcost "$PORT" "$1" "$2"
	expect_clean_client || return 1
	HANDLERS_US=$(kv handlers_us_median)
	FORK_TEXT="fork() $(kv fork_us_median) us, _Fork() $(kv rawfork_us_median) us"
}

t_fork_cost_independent_of_connections() {
	ev_server cost tls echo || { fail "server did not start"; return; }
	local one many one_text
	fork_cost 1 101 || return
	one=$HANDLERS_US
	one_text=$FORK_TEXT
	fork_cost 512 101 || return
	many=$HANDLERS_US
	# The kernel copies more memory with 512 connections, but it does so for _Fork() too: the difference
	# is the handlers' own work. Walking 512 connections took about 1.5 ms here.
	[ "$many" -le $((one + 300)) ] &&
		ok "fork handlers: $one us with 1 connection ($one_text), $many us with 512 ($FORK_TEXT)" ||
		fail "fork handlers: $one us with 1 connection ($one_text), $many us with 512 ($FORK_TEXT); want at most 0.3 ms more"
}

tcase slow_rule_name_dns_blocks_nobody_else
tcase nested_connect_from_nss_module
tcase fork_while_threads_handshake
tcase fork_cost_independent_of_connections
finish
