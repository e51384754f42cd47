#!/usr/bin/env bash
# Write coalescing on served connections (coalesce=, preload/cork.h): a response a plain server writes in
# two calls (headers, then body) leaves in one TCP segment once the connection has shown the pattern; a
# response written in one call is never held past the server's next read or wait; a thread that blocks
# where the shim does not look is held up by the kernel's cork ceiling (200 ms) at most. Segments are
# counted on the client's own socket (TCP_INFO tcpi_segs_in), a python ssl client on one keep-alive
# connection; the server is coalesce_apps.py, and for the real thing nginx without tcp_nopush.
source "$(dirname "$0")/lib.sh" "${1:-build}"
APP=$HERE/coalesce_apps.py
SRV=$T/srv
mkdir -p "$SRV"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$SRV/srv.key" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$SRV/srv.ext"
openssl req -new -key "$SRV/srv.key" -subj "/CN=srv" -out "$SRV/srv.csr" 2>/dev/null
openssl x509 -req -in "$SRV/srv.csr" -CA "$PKI/root.pem" -CAkey "$PKI/root.key" -CAcreateserial \
	-CAserial "$T/root.srl" -days 30 -sha256 -extfile "$SRV/srv.ext" -out "$SRV/srv.pem" 2>/dev/null
CK="cert=$SRV/srv.pem key=$SRV/srv.key"
WARM=8 # pairs before the measured ones: the connection learns (cork.c: CORK_SCORE_ON pairs) and the
# TLS 1.3 tickets and the first ACKs are behind it

# app NAME OPTS: coalesce_apps.py's server under the shim with one serve rule (OPTS appended) on PORT.
app() {
	local name=$1 opts=$2
	PORT=$(free_port)
	rm -f "$T/$name.port"
	bg "$name" env TLSSHIM_LOG=info TLSSHIM_RULES="serve 127.0.0.1:$PORT $CK $opts" LD_PRELOAD="$PRELOAD" \
		"$PY" -u "$APP" server "$PORT" "$T/$name.port"
	wait_portfile "$name"
}

# ask PATH...: the client, one request after the other, on one connection; its lines in $OUT.
ask() { prun client "$PY" "$APP" client "$PORT" "$ROOT" "$@"; }

# segs_of PATH: the segments of PATH's answers after the first WARM lines, summed.
segs_of() { grep "^$1 " "$OUT" | tail -n +$((WARM + 1)) | sed 's/.*segs=\([0-9]*\).*/\1/' | awk '{s+=$1} END {print s+0}'; }

repeat() {
	local i
	for i in $(seq 1 "$2"); do printf '%s ' "$1"; done
}

t_pairs_leave_in_one_segment() {
	local n=40 on off more
	app pairs ""
	# shellcheck disable=SC2046
	ask $(repeat /pair $((WARM + n)))
	[ "$RC" = 0 ] && [ "$(grep -c '^/pair ' "$OUT")" = $((WARM + n)) ] || { fail "client failed (rc=$RC): $(tail -2 "$ERR")"; return; }
	on=$(segs_of /pair)
	app pairs_off "coalesce=off"
	# shellcheck disable=SC2046
	ask $(repeat /pair $((WARM + n)))
	[ "$RC" = 0 ] || { fail "client failed with coalesce=off (rc=$RC)"; return; }
	off=$(segs_of /pair)
	# The program's own MSG_MORE is the kernel's meaning, with coalesce=off too.
	# shellcheck disable=SC2046
	ask $(repeat /more $((WARM + n)))
	[ "$RC" = 0 ] || { fail "client failed for /more (rc=$RC)"; return; }
	more=$(segs_of /more)
	[ "$more" -le $((n + n / 4)) ] || { fail "the program's MSG_MORE: $more segments for $n answers (want at most $((n + n / 4)))"; return; }
	# One segment an answer, plus the odd pure ACK; with coalesce=off two an answer (the control: the
	# count sees the difference).
	[ "$on" -le $((n + n / 4)) ] || { fail "coalesce=auto: $on segments for $n two-write answers (want at most $((n + n / 4)))"; return; }
	[ "$off" -ge $((2 * n - n / 4)) ] || { fail "coalesce=off: only $off segments for $n two-write answers: the count cannot tell"; return; }
	ok "segments for $n answers written as headers + body: $on (coalesce=auto), $off (coalesce=off), $more (coalesce=off, the program's MSG_MORE on the headers)"
}

t_single_writes_never_wait() {
	app single ""
	# shellcheck disable=SC2046
	ask $(repeat /pair $WARM) $(repeat /one 6) $(repeat /pair $WARM) $(repeat /select 6)
	[ "$RC" = 0 ] || { fail "client failed (rc=$RC): $(tail -2 "$ERR")"; return; }
	# The first answers after the pairs are held (the connection expects a second write) and pushed by
	# the server's recv or select; the kernel alone would take 200 ms.
	local worst
	worst=$(grep -E '^/(one|select) ' "$OUT" | sed 's/.*all_ms=\([0-9.]*\).*/\1/' | sort -n | tail -1)
	[ "$(grep -cE '^/(one|select) ' "$OUT")" = 12 ] || { fail "12 single-write answers expected"; return; }
	awk -v w="$worst" 'BEGIN {exit !(w < 100)}' || { fail "a single-write answer took $worst ms (held until the kernel's 200 ms ceiling?): $(grep -E '^/(one|select) ' "$OUT" | tr '\n' ' ')"; return; }
	ok "12 single-write answers after learnt pairs (6 then recv, 6 then select): slowest $worst ms"
}

t_unhooked_sleep_bounded() {
	app sleeper ""
	# shellcheck disable=SC2046
	ask $(repeat /pair $WARM) /sleep
	[ "$RC" = 0 ] || { fail "client failed (rc=$RC): $(tail -2 "$ERR")"; return; }
	local line first all
	line=$(grep '^/sleep ' "$OUT")
	first=$(echo "$line" | sed 's/.*first_ms=\([0-9.]*\).*/\1/')
	all=$(echo "$line" | sed 's/.*all_ms=\([0-9.]*\).*/\1/')
	awk -v a="$all" 'BEGIN {exit !(a >= 1000)}' || { fail "the body came before the server's 1 s sleep ended: $line"; return; }
	awk -v f="$first" 'BEGIN {exit !(f < 600)}' || { fail "the headers waited for the body: $line"; return; }
	ok "headers held across a 1 s sleep came after $first ms (the kernel's ceiling is 200 ms), the body after $all ms"
}

t_nginx_response_one_segment() {
	need nginx || return
	local d=$T/ngx n=40
	mkdir -p "$d/tmp" && head -c 1024 /dev/zero | tr '\0' b >"$d/one.txt"
	chmod 711 "$T" && chmod 755 "$d" && chmod 644 "$d/one.txt"
	PORT=$(free_port)
	plain_nginx_conf "$d" "$PORT" 1 64 "sendfile on; tcp_nopush off; keepalive_timeout 30; keepalive_requests 1000;"
	bg nginx env TLSSHIM_LOG=info TLSSHIM_RULES="serve 127.0.0.1:$PORT $CK" LD_PRELOAD="$PRELOAD" nginx -c "$d/nginx.conf" -p "$d"
	wait_listen "$PORT" || { fail "nginx did not start"; return; }
	# shellcheck disable=SC2046
	ask $(repeat /one.txt $((WARM + n)))
	[ "$RC" = 0 ] && [ "$(grep -c '^/one.txt ' "$OUT")" = $((WARM + n)) ] || { fail "client failed (rc=$RC): $(tail -2 "$ERR")"; return; }
	local on
	on=$(segs_of /one.txt)
	[ "$on" -le $((n + n / 4)) ] || { fail "nginx (writev + sendfile): $on segments for $n answers (want at most $((n + n / 4)))"; return; }
	ok "nginx without tcp_nopush (headers by writev, body by sendfile): $on segments for $n answers"
}

tcase pairs_leave_in_one_segment
tcase single_writes_never_wait
tcase unhooked_sleep_bounded
tcase nginx_response_one_segment
finish
