#!/usr/bin/env bash
# proxy=: the TLS connection goes through an HTTP CONNECT proxy (tinyproxy) or a SOCKS5 proxy (dante),
# started here on free loopback ports with their own configuration, in front of a TLS server. Clients:
# curl, python, the C tcpclient. Also: the proxy's refusals and their errnos (403 -> ECONNREFUSED,
# 407 -> EACCES, SOCKS5 host unreachable -> EHOSTUNREACH), Basic credentials from proxy-user-file=,
# getpeername() showing the destination, proxy= with starttls=, and a recording relay between the shim and
# the proxy showing no program plaintext.
source "$(dirname "$0")/lib.sh" "${1:-build}"

SENTINEL="tlsshim-PROXY-SENTINEL-$$-$RANDOM"
keep_last_bg() { unset 'CASE_PIDS[-1]'; }

TP=""
TPA=""
start_tinyproxy() { # "" or a (Basic credentials required)
	local auth=$1 port
	if [ -n "$auth" ]; then [ -n "$TPA" ] && return 0; else [ -n "$TP" ] && return 0; fi
	port=$(free_port)
	cat >"$T/tinyproxy$auth.conf" <<EOF
Port $port
Listen 127.0.0.1
Timeout 30
LogLevel Info
MaxClients 20
Allow 127.0.0.1
EOF
	[ -n "$auth" ] && echo "BasicAuth puser ppass" >>"$T/tinyproxy$auth.conf"
	bg "tinyproxy$auth" tinyproxy -d -c "$T/tinyproxy$auth.conf"
	keep_last_bg
	wait_listen "$port" || return 1
	if [ -n "$auth" ]; then TPA=$port; else TP=$port; fi
}
DANTE=""
start_dante() {
	[ -n "$DANTE" ] && return 0
	local port
	port=$(free_port)
	cat >"$T/danted.conf" <<EOF
logoutput: $T/danted.out
internal: 127.0.0.1 port = $port
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks block { from: 0.0.0.0/0 to: 127.0.0.1/32 port = 9 }
socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
EOF
	bg danted danted -f "$T/danted.conf" -N 1
	keep_last_bg
	wait_listen "$port" || return 1
	DANTE=$port
}
www() { tls_py www leaf --mode http; }

t_curl_http_connect() {
	need curl tinyproxy || return
	start_tinyproxy "" || { fail "tinyproxy did not start"; return; }
	www || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT proxy=http://127.0.0.1:$TP ca-file=$ROOT" srun curl curl -sS --max-time 10 \
		-H "X-S: $SENTINEL" "http://localhost:$PORT/"
	[ "$RC" = 0 ] && grep -q tlsshim-test-page "$OUT" || { fail "curl through tinyproxy failed (rc=$RC)"; return; }
	grep -aq "CONNECT localhost:$PORT" "$T/tinyproxy.log" || grep -aq "localhost:$PORT" "$T/tinyproxy.log" ||
		{ fail "tinyproxy did not see a CONNECT to localhost:$PORT"; return; }
	ok
}

t_curl_socks5() {
	need curl danted || return
	start_dante || { fail "dante did not start: $(tail -3 "$T/danted.out" 2>/dev/null)"; return; }
	www || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT proxy=socks5h://127.0.0.1:$DANTE ca-file=$ROOT" srun curl curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" = 0 ] && grep -q tlsshim-test-page "$OUT" || { fail "curl through dante failed (rc=$RC)"; return; }
	ok
}

py_client() { # RULES HOST PORT
	TLSSHIM_RULES=$1 srun py "$PY" -c '
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=10)
print("peer", s.getpeername()[1])
s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d: break
    data += d
print("page" if b"tlsshim-test-page" in data else "nopage")
' "$2" "$3"
}
t_python_socks5_getpeername() {
	need danted || return
	start_dante || { fail "dante did not start"; return; }
	www || { fail "server did not start"; return; }
	py_client "tls localhost:$PORT proxy=socks5://127.0.0.1:$DANTE ca-file=$ROOT" localhost "$PORT"
	[ "$RC" = 0 ] && grep -q '^page' "$OUT" || { fail "python through dante failed (rc=$RC): $(tail -2 "$ERR")"; return; }
	grep -q "^peer $PORT\$" "$OUT" || { fail "getpeername shows $(grep peer "$OUT"), want the destination port $PORT"; return; }
	ok "getpeername: port $PORT"
}
t_python_http_connect() {
	need tinyproxy || return
	start_tinyproxy "" || { fail "tinyproxy did not start"; return; }
	www || { fail "server did not start"; return; }
	py_client "tls localhost:$PORT proxy=http://127.0.0.1:$TP ca-file=$ROOT" localhost "$PORT"
	[ "$RC" = 0 ] && grep -q '^page' "$OUT" && grep -q "^peer $PORT\$" "$OUT" || { fail "python through tinyproxy failed (rc=$RC)"; return; }
	ok
}
# A proxy host name is looked up once and kept 30 s: three connections, one lookup (the debug line).
t_proxy_name_cached() {
	need tinyproxy || return
	start_tinyproxy "" || { fail "tinyproxy did not start"; return; }
	www || { fail "server did not start"; return; }
	TLSSHIM_LOG=debug TLSSHIM_RULES="tls 127.0.0.1:$PORT name=localhost proxy=http://localhost:$TP ca-file=$ROOT" srun py "$PY" -c '
import socket, sys
for i in range(3):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        d = s.recv(65536)
        if not d: break
        data += d
    s.close()
    print("page" if b"tlsshim-test-page" in data else "nopage")
' "$PORT"
	[ "$RC" = 0 ] && [ "$(grep -c '^page' "$OUT")" = 3 ] || { fail "three connections through tinyproxy failed (rc=$RC)"; return; }
	local n
	n=$(grep -c 'tlsshim: proxy localhost resolved: ' "$ERR") # ::1 first on a stock /etc/hosts
	[ "$n" = 1 ] || { fail "the proxy name was looked up $n times for 3 connections"; return; }
	ok "3 connections, 1 lookup"
}

t_c_client_socks5_by_address() {
	need danted || return
	start_dante || { fail "dante did not start"; return; }
	tls_py echo leaf --mode echo || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls 127.0.0.1:$PORT proxy=socks5://127.0.0.1:$DANTE ca-file=$ROOT" srun c "$CL/tcpclient" -N -s "$SENTINEL" -W 127.0.0.1 "$PORT"
	[ "$RC" = 0 ] && grep -aq "$SENTINEL" "$OUT" || { fail "tcpclient through dante failed (rc=$RC)"; return; }
	ok
}

# Refusal cases use -4: on a stock /etc/hosts localhost is ::1 too, each address goes through the proxy
# and prints its own line; one address makes "exactly one line" a sharp assertion.
t_http_proxy_407_is_eacces() {
	need tinyproxy || return
	start_tinyproxy a || { fail "tinyproxy did not start"; return; }
	www || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT proxy=http://127.0.0.1:$TPA ca-file=$ROOT" srun c "$CL/tcpclient" -4 -s x localhost "$PORT"
	expect_conn_errno EACCES "localhost:$PORT" "407" || return
	ok "$(shim_lines | cut -c1-150)"
}
t_http_proxy_basic_auth() {
	need curl tinyproxy || return
	start_tinyproxy a || { fail "tinyproxy did not start"; return; }
	www || { fail "server did not start"; return; }
	printf 'puser:ppass\n' >"$T/cred"
	TLSSHIM_RULES="tls localhost:$PORT proxy=http://127.0.0.1:$TPA proxy-user-file=$T/cred ca-file=$ROOT" srun curl curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" = 0 ] && grep -q tlsshim-test-page "$OUT" || { fail "curl with Basic credentials failed (rc=$RC): $(head -2 "$ERR")"; return; }
	ok
}
t_socks5_blocked_is_refused() {
	need danted || return
	start_dante || { fail "dante did not start"; return; }
	TLSSHIM_RULES="tls 127.0.0.1:9 proxy=socks5://127.0.0.1:$DANTE ca-file=$ROOT" srun c "$CL/tcpclient" -N -s x 127.0.0.1 9
	expect_conn_errno ECONNREFUSED "127.0.0.1:9" "SOCKS5 proxy: CONNECT refused" || return
	ok "$(shim_lines | cut -c1-150)"
}
# A SOCKS5 proxy answering "host unreachable" (REP 4): EHOSTUNREACH.
t_socks5_host_unreachable() {
	local port
	port=$(free_port)
	bg fakesocks "$PY" -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4)
while True:
    c, _ = s.accept(); c.recv(16); c.sendall(b"\x05\x00"); c.recv(300)
    c.sendall(b"\x05\x04\x00\x01\x00\x00\x00\x00\x00\x00"); c.close()
' "$port"
	wait_listen "$port" || { fail "fake proxy did not start"; return; }
	TLSSHIM_RULES="tls localhost:4433 proxy=socks5://127.0.0.1:$port ca-file=$ROOT" srun c "$CL/tcpclient" -4 -s x localhost 4433
	expect_conn_errno EHOSTUNREACH "localhost:4433" "host unreachable" || return
	ok
}
t_wrong_name_through_proxy() {
	need tinyproxy || return
	start_tinyproxy "" || { fail "tinyproxy did not start"; return; }
	tls_py www wrongname --mode http || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT proxy=http://127.0.0.1:$TP ca-file=$ROOT" srun c "$CL/tcpclient" -4 -s "$SENTINEL" localhost "$PORT"
	expect_refused "localhost:$PORT" "name mismatch" || return
	ok
}

# The recording relay between the shim and the proxy: the CONNECT is visible, the program's data is not.
t_relay_no_plaintext() {
	need curl tinyproxy || return
	start_tinyproxy "" || { fail "tinyproxy did not start"; return; }
	www || { fail "server did not start"; return; }
	local dest=$PORT
	rm -f "$T/rec" "$T/rec.s2c"
	start_py relay relay --to "$TP" --rec "$T/rec" || { fail "relay did not start"; return; }
	TLSSHIM_RULES="tls localhost:$dest proxy=http://127.0.0.1:$PORT ca-file=$ROOT" srun curl curl -sS --max-time 10 \
		-H "X-S: $SENTINEL" "http://localhost:$dest/"
	[ "$RC" = 0 ] && grep -q tlsshim-test-page "$OUT" || { fail "curl through relay and proxy failed (rc=$RC)"; return; }
	grep -aq "CONNECT localhost:$dest HTTP/1.1" "$T/rec" || { fail "the relay did not see the CONNECT"; return; }
	grep -aqF "$SENTINEL" "$T/rec" && { fail "PLAINTEXT ON THE WIRE: the sentinel is in the recording"; return; }
	grep -aq tlsshim-test-page "$T/rec.s2c" && { fail "PLAINTEXT ON THE WIRE: the page is in the recording"; return; }
	ok "$(stat -c %s "$T/rec") bytes recorded"
}

# proxy= with starttls=: the SMTP greeting arrives right behind the proxy's reply.
t_socks5_with_starttls_smtp() {
	need danted || return
	start_dante || { fail "dante did not start"; return; }
	rm -f "$T/sts.port"
	bg sts "$PY" -u "$HERE/starttls_server.py" smtp --cert "$PKI/leaf.pem" --key "$PKI/leaf.key" --portfile "$T/sts.port" --lifetime 60
	wait_portfile sts || { fail "peer did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT starttls=smtp proxy=socks5://127.0.0.1:$DANTE ca-file=$ROOT" srun c "$CL/tcpclient" -s "$SENTINEL\r\n" -W localhost "$PORT"
	[ "$RC" = 0 ] && grep -aq "ECHO $SENTINEL" "$OUT" && head -1 "$OUT" | grep -q '^220-mail.test' ||
		{ fail "SMTP STARTTLS through dante failed (rc=$RC)"; return; }
	ok
}

# tlsshim probe goes through the proxy as the library does, and shows the proxy's answer.
TLSSHIM=$BUILD/tlsshim
t_probe_http_connect() {
	need tinyproxy || return
	start_tinyproxy "" || { fail "tinyproxy did not start"; return; }
	www || { fail "server did not start"; return; }
	prun probe "$TLSSHIM" probe --rule "tls localhost:$PORT proxy=http://127.0.0.1:$TP ca-file=$ROOT" "localhost:$PORT"
	[ "$RC" = 0 ] && grep -q "^the HTTP proxy's CONNECT:" "$OUT" && grep -q "^  C: CONNECT localhost:$PORT HTTP/1.1" "$OUT" &&
		grep -Eq '^  S: HTTP/1\.[01] 200' "$OUT" && grep -q '^verification: ok' "$OUT" ||
		{ fail "probe through tinyproxy failed (rc=$RC): $(grep -E 'FAILED|  S:' "$OUT" | head -3)"; return; }
	ok "$(grep -E '^  S: HTTP' "$OUT")"
}
t_probe_socks5_with_starttls() {
	need danted || return
	start_dante || { fail "dante did not start"; return; }
	rm -f "$T/sts.port"
	bg sts "$PY" -u "$HERE/starttls_server.py" smtp --cert "$PKI/leaf.pem" --key "$PKI/leaf.key" --portfile "$T/sts.port" --lifetime 60
	wait_portfile sts || { fail "peer did not start"; return; }
	prun probe "$TLSSHIM" probe --rule "tls localhost:$PORT starttls=smtp proxy=socks5://127.0.0.1:$DANTE ca-file=$ROOT" "localhost:$PORT"
	[ "$RC" = 0 ] && grep -q "^the SOCKS5 proxy's CONNECT:" "$OUT" && grep -q '^  S: 250-STARTTLS' "$OUT" &&
		grep -q '^verification: ok' "$OUT" || { fail "probe through dante failed (rc=$RC): $(grep FAILED "$OUT")"; return; }
	ok
}
t_probe_http_proxy_407() {
	need tinyproxy || return
	start_tinyproxy a || { fail "tinyproxy did not start"; return; }
	prun probe "$TLSSHIM" probe --rule "tls localhost:4433 proxy=http://127.0.0.1:$TPA ca-file=$ROOT" "localhost:4433"
	[ "$RC" = 1 ] && grep -q "^dialogue: FAILED: .*407" "$OUT" || { fail "probe did not show the 407 (rc=$RC)"; return; }
	ok "$(grep '^dialogue: FAILED' "$OUT" | cut -c1-140)"
}

tcase curl_http_connect
tcase curl_socks5
tcase python_socks5_getpeername
tcase python_http_connect
tcase proxy_name_cached
tcase c_client_socks5_by_address
tcase http_proxy_407_is_eacces
tcase http_proxy_basic_auth
tcase socks5_blocked_is_refused
tcase socks5_host_unreachable
tcase wrong_name_through_proxy
tcase relay_no_plaintext
tcase socks5_with_starttls_smtp
tcase probe_http_connect
tcase probe_socks5_with_starttls
tcase probe_http_proxy_407
finish
