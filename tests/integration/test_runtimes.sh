#!/usr/bin/env bash
# Issue 12 ("Proof"): real runtimes with their own event loops, unmodified, under the shim, against real TLS
# servers: a python3 asyncio client holding 5,000 TLS connections at once (against the asyncio TLS echo
# server, ev/aio_echo_server.py), node's fetch() and node's http module with a keep-alive agent, and
# curl --parallel, the last three against nginx serving with its own TLS (OpenSSL), 2 workers. Every body
# is compared by SHA-256 with what the server holds; parallelism is proven from the server's side (its
# access log: the request intervals that overlap, the distinct connections), not from the client's word.
source "$(dirname "$0")/lib.sh" "${1:-build}"
source "$HERE/ev/evlib.sh"

# ---- nginx with its own TLS ----
# ngx_tls NFILES: nginx on 127.0.0.1:PORT and [::1]:PORT with the PKI's leaf, serving $T/ngx/fI.bin
# (I = 0..NFILES-1, 60,000 + I*1,000 distinct bytes each) at limit_rate 400k (so each transfer lasts
# long enough for overlap to show in the log). Access log: msec request_time connection
# connection_requests uri status bytes. Sets PORT.
NGX=$T/ngx
ngx_tls() {
	local nfiles=$1
	mkdir -p "$NGX/tmp" "$NGX/www"
	"$PY" -c 'import hashlib, sys
for i in range(int(sys.argv[2])):
    seed = hashlib.sha256(b"rt-%d" % i).digest()
    n = 60000 + i * 1000
    open("%s/f%d.bin" % (sys.argv[1], i), "wb").write((seed * (n // 32 + 1))[:n])' "$NGX/www" "$nfiles"
	# The workers run as nobody: the files must be readable by it (the key is read by the master).
	chmod 711 "$T" && chmod 755 "$NGX" "$NGX/www" && chmod 644 "$NGX"/www/*
	PORT=$(free_port)
	local v6=""
	[ "${HAVE_V6:-0}" = 1 ] && v6="listen [::1]:$PORT ssl;"
	cat >"$NGX/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $NGX/nginx.pid;
error_log $NGX/error.log info;
events { worker_connections 1024; }
http {
  log_format rt '\$msec \$request_time \$connection \$connection_requests \$request_uri \$status \$body_bytes_sent';
  access_log $NGX/access.log rt;
  sendfile on; keepalive_timeout 30; keepalive_requests 1000; limit_rate 400k;
  client_body_temp_path $NGX/tmp; proxy_temp_path $NGX/tmp; fastcgi_temp_path $NGX/tmp; uwsgi_temp_path $NGX/tmp; scgi_temp_path $NGX/tmp;
  server {
    listen 127.0.0.1:$PORT ssl; $v6
    ssl_certificate $PKI/leaf.pem; ssl_certificate_key $PKI/leaf.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $NGX/www;
  }
}
EOF
	: >"$NGX/access.log"
	bg nginx nginx -c "$NGX/nginx.conf" -p "$NGX"
	wait_listen "$PORT" 127.0.0.1 || { echo "[harness: nginx not listening]" >>"$T/nginx.log"; return 1; }
}

# ngx_log_stats FIRST_LINE: over the access-log lines from FIRST_LINE on: "requests=R connections=C
# reused=U peak_overlap=P" (P: the most request intervals [msec - request_time, msec] open at one instant).
ngx_log_stats() {
	tail -n +"$1" "$NGX/access.log" | "$PY" -c 'import sys
ev, conns, reused, n = [], set(), 0, 0
for line in sys.stdin:
    f = line.split()
    if len(f) < 7:
        continue
    end, dur = float(f[0]), float(f[1])
    ev += [(end - dur, 1), (end, -1)]
    conns.add(f[2])
    reused += int(f[3]) > 1
    n += 1
cur = peak = 0
for _, d in sorted(ev, key=lambda e: (e[0], e[1])):
    cur += d
    peak = max(peak, cur)
print("requests=%d connections=%d reused=%d peak_overlap=%d" % (n, len(conns), reused, peak))'
}

# check_bodies N: every "file I n=.. sha=HEX" line of the last run names the SHA-256 of $NGX/www/fI.bin.
check_bodies() {
	local n=$1 i bad=0 want got what=""
	for i in $(seq 0 $((n - 1))); do
		want=$(sha_of "$NGX/www/f$i.bin")
		got=$(grep -a "^file $i " "$OUT" | grep -ao 'sha=[0-9a-f]*' | cut -d= -f2)
		[ "$want" = "$got" ] || { bad=$((bad + 1)) && what="$what $(grep -a "^file $i " "$OUT" | cut -d' ' -f1-3) of $(stat -c %s "$NGX/www/f$i.bin") (nginx: $(grep -a " /f$i.bin " "$NGX/access.log" | head -2 | tr '\n' ' '));"; }
	done
	[ "$bad" = 0 ] || { fail "$bad of $n bodies differ from the files nginx served:$what $(grep -av 'sha=' "$OUT" | head -3 | tr '\n' ' ')"; return 1; }
}

# ---- python asyncio, 5,000 TLS connections at once ----
t_python_asyncio_5000() {
	local n=5000
	rm -f "$T/aio.port" "$T/aio.rec"
	bg aio "$PY" -u "$EVDIR/aio_echo_server.py" --cert "$PKI/leaf.pem" --key "$PKI/leaf.key" \
		--rec "$T/aio.rec" --portfile "$T/aio.port"
	wait_portfile aio || { fail "the asyncio TLS echo server did not start"; return; }
	# The client needs n sockets plus its own: raise the soft limit (the hard one is 20000 here).
	# handshake-timeout=60s, as asyncio's own ssl_handshake_timeout: all 5,000 handshakes start at once and
	# the one-threaded python server needs 15-20 s on 2 cores to answer them all (python's own ssl client,
	# no shim, measured by hand: 20 s for the whole run), so the last in its queue would pass the 10 s default.
	# --slow: 150 s per step, 300 s in all (typically 16 s alone, 25-90 s with a second copy beside it).
	TMO=320 TLSSHIM_RULES="$(rule handshake-timeout=60s)" srun aio5k bash -c 'ulimit -n 12000 && exec "$@"' _ \
		"$PY" "$EVDIR/aio_client.py" --slow localhost "$PORT" "$n"
	[ "$RC" = 0 ] || { fail "asyncio client exit $RC: $(tail -1 "$OUT") $(grep -av ' ok$' "$OUT" | head -3 | tr '\n' ' ') $(shim_lines | head -2 | tr '\n' ' ')"; return; }
	local i
	for i in $(seq 1 100); do [ "$(wc -l <"$T/aio.rec" 2>/dev/null || echo 0)" -ge "$n" ] && break; sleep 0.1; done
	[ "$(wc -l <"$T/aio.rec")" -ge "$n" ] || { fail "the server recorded $(wc -l <"$T/aio.rec") of $n connections"; return; }
	# Both sides' SHA-256 lists, sorted, must be equal; the server's peak must be n.
	local res
	res=$("$PY" -c 'import json, re, sys
client = sorted(re.findall(r"sha=([0-9a-f]+)", open(sys.argv[1]).read()))
server, bad = [], 0
for line in open(sys.argv[2]):
    try:
        server.append(json.loads(line))
    except ValueError:
        bad += 1
ss = sorted(r["recv_sha"] for r in server)
diff = len(set(client) ^ set(ss))
print("client=%d server=%d unparsable=%d differ=%d peak=%d" % (len(client), len(ss), bad, diff,
      max([r["peak"] for r in server] or [0])))' "$OUT" "$T/aio.rec" 2>&1 | tail -1)
	case $res in
	"client=$n server=$n unparsable=0 differ=0 peak="*) ;;
	*) fail "the server's record does not match what the client sent: $res"; return ;;
	esac
	local peak at_once
	peak=${res##*peak=}
	at_once=$(kv open_at_once)
	[ "${peak:-0}" -ge "$n" ] && [ "${at_once:-0}" -ge "$n" ] ||
		{ fail "not $n at once: the server saw at most $peak, the client $at_once"; return; }
	ok "$(tail -1 "$OUT"); the server held $peak TLS connections at once; its $n SHA-256s match"
}

# ---- node ----
node_case() {
	local how=$1 n=40 conc=8
	need node nginx || return
	ngx_tls "$n" || { fail "nginx did not start: $(tail -3 "$NGX/error.log" 2>/dev/null | tr '\n' ' ')"; return; }
	TMO=70 TLSSHIM_RULES="$(rule)" srun "node_$how" node "$EVDIR/node_rt.js" "$how" "http://localhost:$PORT" "$n" "$conc"
	[ "$RC" = 0 ] || { fail "node $how exit $RC: $(grep -av 'sha=' "$OUT" | head -3 | tr '\n' ' ') $(tail -2 "$ERR" | tr '\n' ' ')"; return; }
	check_bodies "$n" || return
	local st
	st=$(ngx_log_stats 1)
	local req conns reused peak
	req=$(echo "$st" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
	conns=$(echo "$st" | sed -n 's/.*connections=\([0-9]*\).*/\1/p')
	reused=$(echo "$st" | sed -n 's/.*reused=\([0-9]*\).*/\1/p')
	peak=$(echo "$st" | sed -n 's/.*peak_overlap=\([0-9]*\).*/\1/p')
	[ "$req" = "$n" ] || { fail "nginx logged $req requests, want $n ($st)"; return; }
	# keep-alive: fewer connections than requests, and requests on reused connections
	[ "$conns" -lt "$n" ] && [ "$reused" -gt 0 ] || { fail "no keep-alive reuse: $st"; return; }
	[ "$peak" -ge 4 ] || { fail "not parallel: at most $peak requests overlapped in nginx's log ($st)"; return; }
	ok "$(tail -1 "$OUT"); nginx (own TLS): $st; $n SHA-256s match"
}
t_node_fetch() { node_case fetch; }
t_node_http_keepalive() { node_case http; }

# ---- curl --parallel ----
t_curl_parallel_nginx() {
	local n=60 par=20
	need curl nginx || return
	ngx_tls "$n" || { fail "nginx did not start: $(tail -3 "$NGX/error.log" 2>/dev/null | tr '\n' ' ')"; return; }
	mkdir -p "$T/cp"
	TMO=90 TLSSHIM_RULES="$(rule)" srun curlp curl -sS --max-time 80 --parallel --parallel-max "$par" \
		-o "$T/cp/f#1.bin" -w 'file %{url} %{http_code}\n' "http://localhost:$PORT/f[0-$((n - 1))].bin"
	[ "$RC" = 0 ] || { fail "curl exit $RC: $(tail -3 "$ERR" | tr '\n' ' ')"; return; }
	local i bad=0 what=""
	for i in $(seq 0 $((n - 1))); do
		if [ "$(sha_of "$T/cp/f$i.bin" 2>/dev/null)" != "$(sha_of "$NGX/www/f$i.bin")" ]; then
			bad=$((bad + 1))
			what="$what f$i.bin: got $(stat -c %s "$T/cp/f$i.bin" 2>/dev/null || echo no) bytes of $(stat -c %s "$NGX/www/f$i.bin") ($(cmp "$T/cp/f$i.bin" "$NGX/www/f$i.bin" 2>&1 | head -1); nginx logged: $(grep -a " /f$i.bin " "$NGX/access.log" | head -2 | tr '\n' ' '));"
		fi
	done
	[ "$bad" = 0 ] || { fail "$bad of $n bodies differ:$what nginx: $(ngx_log_stats 1); curl stderr: $(head -c 300 "$ERR" | tr '\n' ' ')"; return; }
	local st peak serial
	st=$(ngx_log_stats 1)
	peak=$(echo "$st" | sed -n 's/.*peak_overlap=\([0-9]*\).*/\1/p')
	# The sum of nginx's request times: what the transfers would take one after the other.
	serial=$(awk '{s += $2} END {printf "%d", s * 1000}' "$NGX/access.log")
	[ "${peak:-0}" -ge 10 ] || { fail "not parallel: at most $peak of $par requests overlapped in nginx's log ($st)"; return; }
	[ "$MS" -lt $((serial / 4)) ] || { fail "took $MS ms; the transfers one after the other take $serial ms: not parallel"; return; }
	ok "$n bodies verified in $MS ms (one after the other: $serial ms); nginx (own TLS): $st"
}

tcase python_asyncio_5000
tcase node_fetch
tcase node_http_keepalive
tcase curl_parallel_nginx
finish
