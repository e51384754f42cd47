#!/usr/bin/env bash
# Server contexts are freed after certificate rotation. A plain C echo server (tests/clients/srv_rotate)
# runs under a serve rule inside valgrind --leak-check=full; rotate_driver.py replaces the certificate
# and key N-1 times, each time checking that the new certificate is served, and holds every connection
# open across the next rotation (closed two generations later). Then the server exits normally. Every
# replaced context (with its certificate, key and CA store) must have been freed by wolfSSL when its
# last connection went, and nothing made per context may be left behind (the session ticket keys once
# were, ~340 bytes per rotation): valgrind's "definitely lost" and "indirectly lost" must be 0, and
# the shim's log must show N-1 reloads. With session tickets on, off, and from a session-ticket-key-file=
# that is replaced along with the certificate. A build that keeps a reference to a replaced context fails here.
source "$(dirname "$0")/lib.sh" "${1:-build}"
SRV=$T/srv
mkdir -p "$SRV"

# gen_cert DIR NAME: a P-256 server certificate for localhost by the test root into DIR/NAME.{pem,key}.
gen_cert() {
	local d=$1 name=$2
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$name.key" 2>/dev/null
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n' >"$d/$name.ext"
	openssl req -new -key "$d/$name.key" -subj "/CN=$name" -out "$d/$name.csr" 2>/dev/null
	openssl x509 -req -in "$d/$name.csr" -CA "$PKI/root.pem" -CAkey "$PKI/root.key" -CAcreateserial \
		-CAserial "$T/root.srl" -days 30 -sha256 -extfile "$d/$name.ext" -out "$d/$name.pem" 2>/dev/null
}

# rotate_under_valgrind NAME N EXTRA_OPTS [TICKET_KEY_FILE]: srv_rotate under valgrind with a serve rule on
# the live pair plus EXTRA_OPTS, driven through N generations (the ticket key file replaced at each one
# too, when given). Returns 1 (after fail) on any failure.
rotate_under_valgrind() {
	local name=$1 n=$2 extra=$3 tkf=${4:-} d=$SRV/$1 i
	if [ "${#SAN_ENV[@]}" -gt 0 ]; then # the ASan runtime and valgrind cannot share a process
		skip "valgrind cannot run a program with the ASan runtime preloaded (this file is for the plain build)"
		return 1
	fi
	mkdir -p "$d"
	for i in $(seq 0 $((n - 1))); do gen_cert "$d" "gen$i"; done
	cp "$d/gen0.pem" "$d/live.pem" && cp "$d/gen0.key" "$d/live.key"
	PORT=$(free_port)
	rm -f "$T/$name.port"
	bg "$name" env TLSSHIM_LOG=info TLSSHIM_RULES="serve 127.0.0.1:$PORT cert=$d/live.pem key=$d/live.key $extra" \
		LD_PRELOAD="$PRELOAD" valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect \
		--error-exitcode=99 --num-callers=30 --log-file="$T/$name.vg" "$CL/srv_rotate" "$PORT" "$T/$name.port"
	local vpid=$!
	CASE_LOGS+=("$T/$name.vg")
	for i in $(seq 1 300); do [ -s "$T/$name.port" ] && break; sleep 0.1; done
	[ -s "$T/$name.port" ] || { fail "srv_rotate did not start under valgrind within 30 s"; return 1; }
	TMO=300 prun drv "$PY" "$HERE/rotate_driver.py" "$PORT" "$ROOT" "$d" "$n" $tkf
	[ "$RC" = 0 ] && grep -q "^done $n" "$OUT" || { fail "the driver failed (rc=$RC): $(tail -1 "$OUT")"; return 1; }
	local vrc
	for i in $(seq 1 600); do kill -0 "$vpid" 2>/dev/null || break; sleep 0.1; done
	wait "$vpid"
	vrc=$?
	local lost
	lost=$(grep -E 'definitely lost:|indirectly lost:' "$T/$name.vg" | sed 's/^==[0-9]*== *//' | tr '\n' ' ')
	if [ "$vrc" != 0 ] || grep -q 'ERROR SUMMARY: [1-9]' "$T/$name.vg"; then
		fail "srv_rotate exit $vrc under valgrind: $(grep 'ERROR SUMMARY' "$T/$name.vg" | sed 's/^==[0-9]*== *//') $lost"
		echo "    --- first valgrind record:"
		grep -m1 -A25 -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|[0-9,]+ (\([0-9,]+ direct, [0-9,]+ indirect\) )?bytes in)' "$T/$name.vg" | sed 's/^/    | /'
		return 1
	fi
	grep -q 'ERROR SUMMARY: 0 errors' "$T/$name.vg" || { fail "valgrind wrote no summary (exit $vrc)"; return 1; }
	local reloads
	reloads=$(grep -c 'reloaded .*live.pem' "$T/$name.log")
	[ "$reloads" = $((n - 1)) ] || { fail "the shim logged $reloads reloads, want $((n - 1))"; return 1; }
	SUMMARY="$reloads rotations, $(grep -c 'accepted TLS' "$T/$name.log") TLS connections; ${lost:-no leaks (all heap blocks freed)}"
	return 0
}

t_contexts_freed_after_rotation() {
	need valgrind openssl || return
	rotate_under_valgrind ctx 8 "" || return
	ok "$SUMMARY"
}

t_contexts_freed_tickets_off() {
	need valgrind openssl || return
	rotate_under_valgrind noticket 5 "session-tickets=off" || return
	ok "$SUMMARY"
}

t_contexts_freed_ticket_key_file() {
	need valgrind openssl || return
	head -c 32 /dev/urandom >"$T/ticket.key"
	rotate_under_valgrind tkf 5 "session-ticket-key-file=$T/ticket.key" "$T/ticket.key" || return
	ok "$SUMMARY"
}

tcase contexts_freed_after_rotation
tcase contexts_freed_tickets_off
tcase contexts_freed_ticket_key_file
finish
