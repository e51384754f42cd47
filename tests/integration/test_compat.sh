#!/usr/bin/env bash
# Compatibility suite (issue 7): real Debian servers with TLS (or behind stunnel where they have no TLS
# of their own), real unmodified clients under the shim, each client in a network namespace of its own
# with nothing but LD_PRELOAD and TLSSHIM_RULES/TLSSHIM_POLICY in its environment. Also: a static
# binary (cannot work), an IPv6-only namespace, mutual TLS, and a Debian minbase chroot that gets only
# libtlsshim.so, a policy and its CA (examples/Dockerfile, examples/k8s-pod.yaml).
#   bash tests/integration/test_compat.sh [BUILD]      (root; installs its packages first)
#   TLSSHIM_WRITE_COMPAT=1   also write the table to tests/compat/results.md (it is always printed)
#   TLSSHIM_COMPAT_NO_INSTALL=1   do not run tests/compat/install-deps.sh
# Helpers: tests/compat/compat-lib.sh. Clients: tests/compat/clients/.
source "$(dirname "$0")/lib.sh" "${1:-build}"
source "$REPO/tests/compat/compat-lib.sh"
trap 'cleanup; net_cleanup' EXIT
SUITE_T0=$(date +%s)
CLIENTS_DIR=$COMPAT/clients

# ---------- setup: packages, certificates, namespaces, content ----------
if [ "${TLSSHIM_COMPAT_NO_INSTALL:-0}" != 1 ]; then
	t0=$(date +%s)
	timeout -k 10 360 bash "$COMPAT/install-deps.sh" || say "compat: install-deps.sh failed (the cases that need the missing programs will fail)"
	say "compat: install-deps took $(($(date +%s) - t0)) s"
fi
mkdir -p "$CHOME" "$DOCROOT"
if ! timeout 60 bash "$COMPAT/mkcerts.sh" "$CERTS" >"$T/mkcerts.out" 2>&1; then
	say "compat: mkcerts.sh failed: $(tail -3 "$T/mkcerts.out" "$CERTS/mkcerts.log" 2>/dev/null | tr '\n' ' ')"
fi
net_setup || say "compat: $NET_ERR"
printf 'tlsshim-compat-page\nserved through stunnel to an unmodified client\n' >"$DOCROOT/index.html"
det_file "$DOCROOT/blob.bin" 1048576
BLOB_SHA=$(sha_of "$DOCROOT/blob.bin")
PAGE_SHA=$(sha_of "$DOCROOT/index.html")

# expect_ok_line KIND LEN SHA: the last run printed "OK KIND LEN SHA" and exited 0.
expect_ok_line() {
	if [ "$RC" != 0 ]; then
		fail "$1: exit status $RC; $(shim_evidence); $(grep -av '^tlsshim: ' "$ERR" | tail -2 | tr '\n' ' ' | cut -c1-300)"
		return 1
	fi
	if ! grep -q "^OK $1 $2 $3\$" "$OUT"; then
		fail "$1: want 'OK $1 $2 $3', got '$(head -c 200 "$OUT")'"
		return 1
	fi
	return 0
}

# ---------- curl, wget, nc ----------
t_curl() {
	need_net && need curl stunnel4 || return
	tls_http www || { fail "server did not start"; return; }
	crun curl "$(rules "compat-server.test:$PORT")" curl -sS --max-time 15 -o - "http://compat-server.test:$PORT/blob.bin"
	[ "$RC" = 0 ] || { fail "curl exited $RC; $(shim_evidence)"; return; }
	[ "$(sha_of "$OUT")" = "$BLOB_SHA" ] && ok || fail "curl got $(stat -c %s "$OUT") bytes, sha256 differs from blob.bin"
}

t_wget() {
	need_net && need wget stunnel4 && need_san wget || return
	tls_http www || { fail "server did not start"; return; }
	# This one through a policy file (TLSSHIM_POLICY) instead of TLSSHIM_RULES.
	cat >"$T/wget.policy" <<EOF
# compat: wget
defaults ca-file=$CA
plain 10.203.0.1:1
tls $SRV4:$PORT name=compat-server.test
EOF
	crun wget "TLSSHIM_POLICY=$T/wget.policy" wget -q -T 15 -t 1 -O - "http://$SRV4:$PORT/blob.bin"
	[ "$RC" = 0 ] || { fail "wget exited $RC; $(shim_evidence)"; return; }
	[ "$(sha_of "$OUT")" = "$BLOB_SHA" ] && ok || fail "wget got $(stat -c %s "$OUT") bytes, sha256 differs from blob.bin"
}

t_nc_send_file() {
	need_net && need nc stunnel4 || return
	tls_stream hash hash || { fail "server did not start"; return; }
	det_file "$T/up.bin" 4000000
	TMO=40 STDIN=$T/up.bin crun nc "$(rules "compat-server.test:$PORT")" nc -N compat-server.test "$PORT"
	local want
	want="$(sha_of "$T/up.bin") 4000000"
	[ "$RC" = 0 ] && grep -q "^$want\$" "$OUT" && ok ||
		fail "nc -N: server hashed '$(head -c 100 "$OUT")', want '$want' (rc=$RC); $(shim_evidence)"
}

t_nc_receive_file() {
	need_net && need nc stunnel4 || return
	tls_stream src source:3000000 || { fail "server did not start"; return; }
	det_file "$T/down.bin" 3000000
	TMO=40 crun nc "$(rules "$SRV4:$PORT" name=compat-server.test)" nc -d "$SRV4" "$PORT"
	[ "$RC" = 0 ] && [ "$(sha_of "$OUT")" = "$(sha_of "$T/down.bin")" ] && ok ||
		fail "nc -d received $(stat -c %s "$OUT") bytes (want 3000000, sha256 $( [ "$(sha_of "$OUT")" = "$(sha_of "$T/down.bin")" ] && echo equal || echo differs)) (rc=$RC); $(shim_evidence)"
}

# ---------- python3 ----------
PYC=$CLIENTS_DIR/py_client.py
t_python_urllib() {
	need_net && need /usr/bin/python3 stunnel4 || return
	tls_http www || { fail "server did not start"; return; }
	crun py "$(rules "compat-server.test:$PORT")" python3 "$PYC" urllib "http://compat-server.test:$PORT/blob.bin"
	expect_ok_line urllib 1048576 "$BLOB_SHA" && ok
}
t_python_http_client() {
	need_net && need /usr/bin/python3 stunnel4 || return
	tls_http www || { fail "server did not start"; return; }
	crun py "$(rules "compat-server.test:$PORT")" python3 "$PYC" httpclient compat-server.test "$PORT" /index.html
	expect_ok_line http.client "$(stat -c %s "$DOCROOT/index.html")" "$PAGE_SHA" && ok
}
t_python_socket() {
	need_net && need /usr/bin/python3 stunnel4 || return
	tls_stream echo echo || { fail "server did not start"; return; }
	det_file "$T/e.bin" 500000
	crun py "$(rules "$SRV4:$PORT" name=compat-server.test)" python3 "$PYC" socket "$SRV4" "$PORT" 500000
	expect_ok_line socket 500000 "$(sha_of "$T/e.bin")" && ok
}
t_python_asyncio() {
	need_net && need /usr/bin/python3 stunnel4 || return
	tls_stream echo echo || { fail "server did not start"; return; }
	det_file "$T/e.bin" 500000
	crun py "$(rules "compat-server.test:$PORT")" python3 "$PYC" asyncio compat-server.test "$PORT" 500000
	expect_ok_line asyncio 500000 "$(sha_of "$T/e.bin")" && ok
}

# ---------- perl ----------
t_perl_io_socket_inet() {
	need_net && need perl stunnel4 || return
	tls_stream echo echo || { fail "server did not start"; return; }
	crun pl "$(rules "compat-server.test:$PORT")" perl "$CLIENTS_DIR/perl_client.pl" inet compat-server.test "$PORT" 2000
	[ "$RC" = 0 ] && grep -q '^OK inet ' "$OUT" && ok || fail "perl IO::Socket::INET echo failed (rc=$RC): $(head -c 200 "$ERR" | tr '\n' ' ')"
}
t_perl_http_tiny() {
	need_net && need perl stunnel4 || return
	tls_http www || { fail "server did not start"; return; }
	crun pl "$(rules "$SRV4:$PORT" name=compat-server.test)" perl "$CLIENTS_DIR/perl_client.pl" tiny "http://$SRV4:$PORT/blob.bin"
	expect_ok_line tiny 1048576 "$BLOB_SHA" && ok
}

# ---------- redis ----------
# start_redis NAME AUTH(yes|no): redis-server with only a TLS port on $SRV4; sets PORT.
start_redis() {
	PORT=$(free_port)
	mkdir -p "$T/$1.dir"
	bg "$1" redis-server --bind "$SRV4" --port 0 --tls-port "$PORT" \
		--tls-cert-file "$CERTS/server.pem" --tls-key-file "$CERTS/server.key" --tls-ca-cert-file "$CA" \
		--tls-auth-clients "$2" --save '' --appendonly no --dir "$T/$1.dir" --daemonize no --protected-mode no
	wait_listen_addr "$SRV4" "$PORT" || { echo "[harness: redis not listening]" >>"$T/$1.log"; return 1; }
}
t_redis_set_get() {
	need_net && need redis-server redis-cli || return
	start_redis redis no || { fail "redis-server did not start"; return; }
	local R
	R=$(rules "$SRV4:$PORT" name=compat-server.test)
	crun set "$R" redis-cli -h "$SRV4" -p "$PORT" SET compat:key "value through tlsshim"
	[ "$RC" = 0 ] && grep -q '^OK' "$OUT" || { fail "redis-cli SET: rc=$RC out='$(head -c 100 "$OUT")'; $(shim_evidence)"; return; }
	crun get "$R" redis-cli -h "$SRV4" -p "$PORT" GET compat:key
	[ "$RC" = 0 ] && grep -qx 'value through tlsshim' "$OUT" && ok ||
		fail "redis-cli GET: rc=$RC out='$(head -c 100 "$OUT")'; $(shim_evidence)"
}
t_redis_pipe_10000() {
	need_net && need redis-server redis-cli || return
	start_redis redis no || { fail "redis-server did not start"; return; }
	# 10,000 SET commands in the Redis protocol.
	awk 'BEGIN { for (i = 0; i < 10000; i++) { k = "pipe:" i; v = "v" i "-" sprintf("%0200d", i);
		printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v } }' >"$T/pipe.txt"
	local R
	R=$(rules "compat-server.test:$PORT")
	TMO=60 STDIN=$T/pipe.txt crun pipe "$R" redis-cli -h compat-server.test -p "$PORT" --pipe
	[ "$RC" = 0 ] && grep -q 'errors: 0, replies: 10000' "$OUT" ||
		{ fail "redis-cli --pipe: rc=$RC, '$(tail -2 "$OUT" | tr '\n' ' ')'; $(shim_evidence)"; return; }
	crun dbsize "$R" redis-cli -h compat-server.test -p "$PORT" DBSIZE
	grep -qx 10000 "$OUT" || { fail "DBSIZE after the pipe: '$(head -c 50 "$OUT")', want 10000"; return; }
	crun get "$R" redis-cli -h compat-server.test -p "$PORT" GET pipe:9999
	grep -qx "v9999-$(printf '%0200d' 9999)" "$OUT" && ok || fail "GET pipe:9999 returned '$(head -c 80 "$OUT")'"
}

# ---------- mutual TLS: redis demanding client certificates ----------
t_mtls_redis() {
	need_net && need redis-server redis-cli || return
	start_redis redismtls yes || { fail "redis-server did not start"; return; }
	# Control: without cert= the server refuses (so it really demands a client certificate).
	crun nocert "$(rules "$SRV4:$PORT" name=compat-server.test)" redis-cli -h "$SRV4" -p "$PORT" PING
	if grep -qx PONG "$OUT"; then
		fail "control: the server answered PING without a client certificate (tls-auth-clients yes not in effect)"
		return
	fi
	crun cert "$(rules "$SRV4:$PORT" "name=compat-server.test cert=$CERTS/client.pem key=$CERTS/client.key")" \
		redis-cli -h "$SRV4" -p "$PORT" PING
	[ "$RC" = 0 ] && grep -qx PONG "$OUT" && ok "refused without cert=, PONG with it" ||
		fail "PING with cert=/key= (client certificate): rc=$RC out='$(head -c 100 "$OUT")'; $(shim_evidence)"
}

# ---------- mosquitto ----------
start_mosquitto() {
	PORT=$(free_port)
	cat >"$T/mosquitto.conf" <<EOF
user root
per_listener_settings false
allow_anonymous true
persistence false
log_dest file $T/mosquitto.events
log_type all
listener $PORT $SRV4
certfile $CERTS/server.pem
keyfile $CERTS/server.key
cafile $CA
EOF
	: >"$T/mosquitto.events"
	bg mosquitto mosquitto -c "$T/mosquitto.conf"
	CASE_LOGS+=("$T/mosquitto.events")
	wait_listen_addr "$SRV4" "$PORT" || { echo "[harness: mosquitto not listening]" >>"$T/mosquitto.log"; return 1; }
}
t_mosquitto_retained() {
	need_net && need mosquitto mosquitto_pub mosquitto_sub || return
	start_mosquitto || { fail "mosquitto did not start"; return; }
	local R
	R=$(rules "compat-server.test:$PORT")
	crun pub "$R" mosquitto_pub -h compat-server.test -p "$PORT" -i compat-pub -q 1 -r -t compat/retained -m "retained-$$"
	[ "$RC" = 0 ] || { fail "mosquitto_pub -r: rc=$RC $(head -c 200 "$ERR" | tr '\n' ' ')"; return; }
	crun sub "$R" mosquitto_sub -h compat-server.test -p "$PORT" -i compat-sub -q 1 -t compat/retained -C 1 -W 15
	[ "$RC" = 0 ] && grep -qx "retained-$$" "$OUT" && ok ||
		fail "mosquitto_sub did not get the retained message: rc=$RC out='$(head -c 100 "$OUT")' $(head -c 200 "$ERR" | tr '\n' ' ')"
}
t_mosquitto_live() {
	need_net && need mosquitto mosquitto_pub mosquitto_sub || return
	start_mosquitto || { fail "mosquitto did not start"; return; }
	local R
	R=$(rules "compat-server.test:$PORT")
	# The subscriber waits in the background (in the client namespace, under the shim).
	bg livesub ip netns exec "$NS" env -i "PATH=$CPATH" "HOME=$CHOME" "${SAN_ENV[@]}" "LD_PRELOAD=$PRELOAD" "$R" \
		mosquitto_sub -h compat-server.test -p "$PORT" -i compat-live-sub -q 1 -t compat/live -C 1 -W 20
	for _ in $(seq 1 100); do
		grep -q 'Received SUBSCRIBE from compat-live-sub' "$T/mosquitto.events" && break
		sleep 0.1
	done
	grep -q 'Received SUBSCRIBE from compat-live-sub' "$T/mosquitto.events" ||
		{ fail "the subscriber never subscribed: $(tail -3 "$T/livesub.log" | tr '\n' ' ')"; return; }
	crun pub "$R" mosquitto_pub -h compat-server.test -p "$PORT" -i compat-live-pub -q 1 -t compat/live -m "live-$$"
	[ "$RC" = 0 ] || { fail "mosquitto_pub: rc=$RC $(head -c 200 "$ERR" | tr '\n' ' ')"; return; }
	for _ in $(seq 1 100); do
		grep -qx "live-$$" "$T/livesub.log" && break
		sleep 0.1
	done
	grep -qx "live-$$" "$T/livesub.log" && ok || fail "the subscriber did not print the live message: '$(head -c 200 "$T/livesub.log")'"
}

# ---------- ldapsearch against slapd on ldaps ----------
t_ldapsearch_ldaps() {
	need_net && need /usr/sbin/slapd /usr/sbin/slapadd ldapsearch || return
	local d=$T/ldap
	mkdir -p "$d/db"
	cat >"$d/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $d/slapd.pid
argsfile $d/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile $CA
TLSCertificateFile $CERTS/server.pem
TLSCertificateKeyFile $CERTS/server.key
database mdb
maxsize 10485760
suffix "dc=compat,dc=test"
rootdn "cn=admin,dc=compat,dc=test"
rootpw compat-secret
directory $d/db
access to * by * read
EOF
	cat >"$d/data.ldif" <<EOF
dn: dc=compat,dc=test
objectClass: dcObject
objectClass: organization
dc: compat
o: tlsshim compat

dn: ou=people,dc=compat,dc=test
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=compat,dc=test
objectClass: inetOrgPerson
uid: alice
cn: Alice Compat
sn: Compat
mail: alice@compat.test
EOF
	prun slapadd timeout 30 /usr/sbin/slapadd -f "$d/slapd.conf" -l "$d/data.ldif"
	[ "$RC" = 0 ] || { fail "slapadd failed: $(tail -2 "$ERR" | tr '\n' ' ')"; return; }
	PORT=$(free_port)
	bg slapd /usr/sbin/slapd -f "$d/slapd.conf" -h "ldaps://$SRV4:$PORT/" -d 256
	wait_listen_addr "$SRV4" "$PORT" || { fail "slapd did not listen on ldaps://$SRV4:$PORT/"; return; }
	# The client speaks plain LDAP (ldap://); the shim adds TLS.
	crun ldap "$(rules "$SRV4:$PORT" name=compat-server.test)" \
		ldapsearch -x -H "ldap://$SRV4:$PORT" -b dc=compat,dc=test -LLL '(uid=alice)' cn mail
	[ "$RC" = 0 ] && grep -qx 'dn: uid=alice,ou=people,dc=compat,dc=test' "$OUT" && grep -qx 'mail: alice@compat.test' "$OUT" && ok ||
		fail "ldapsearch: rc=$RC out='$(head -c 200 "$OUT" | tr '\n' ' ')' err='$(head -c 300 "$ERR" | tr '\n' ' ')'"
}

# ---------- node ----------
t_node_net() {
	need_net && need node stunnel4 || return
	tls_stream echo echo || { fail "server did not start"; return; }
	det_file "$T/e.bin" 500000
	TMO=40 crun node "$(rules "compat-server.test:$PORT")" node "$CLIENTS_DIR/node_client.js" net compat-server.test "$PORT" 500000
	expect_ok_line net 500000 "$(sha_of "$T/e.bin")" && ok
}
t_node_http() {
	need_net && need node stunnel4 || return
	tls_http www || { fail "server did not start"; return; }
	TMO=40 crun node "$(rules "compat-server.test:$PORT")" node "$CLIENTS_DIR/node_client.js" http "http://compat-server.test:$PORT/blob.bin"
	expect_ok_line http 1048576 "$BLOB_SHA" && ok
}

# ---------- the JVM ----------
t_java_socket() {
	need_net && need java stunnel4 || return
	tls_stream echo echo || { fail "server did not start"; return; }
	det_file "$T/e.bin" 500000
	# The JVM connects AF_INET6 to ::ffff:10.203.0.1; the rule is written for the IPv4 address.
	TMO=90 crun java "$(rules "$SRV4:$PORT" name=compat-server.test)" java "$CLIENTS_DIR/Client.java" "$SRV4" "$PORT" 500000
	expect_ok_line java 500000 "$(sha_of "$T/e.bin")" && ok "$(grep -ao 'connected.*' "$ERR" | head -1)"
}

# ---------- IPv6 only ----------
t_ipv6_only_curl() {
	need_net && need curl stunnel4 || return
	local v4
	v4=$(timeout 5 ip -n "$NS6" -4 -o addr show scope global 2>&1)
	[ -z "$v4" ] || { fail "the IPv6-only namespace has IPv4 addresses: $v4"; return; }
	tls_http www6 "$SRV6" || { fail "server did not start on [$SRV6]"; return; }
	CNS=$NS6 crun curl "$(rules "compat-v6.test:$PORT")" curl -sS --max-time 15 -o - "http://compat-v6.test:$PORT/blob.bin"
	[ "$RC" = 0 ] && [ "$(sha_of "$OUT")" = "$BLOB_SHA" ] && ok ||
		fail "curl to compat-v6.test ([$SRV6]) from an IPv6-only namespace: rc=$RC, $(stat -c %s "$OUT") bytes; $(shim_evidence)"
}
t_ipv6_only_python_literal() {
	need_net && need /usr/bin/python3 stunnel4 || return
	tls_stream echo6 echo "$SRV6" || { fail "TLS echo server did not start on [$SRV6]"; return; }
	det_file "$T/e.bin" 200000
	CNS=$NS6 crun py "$(rules "[$SRV6]:$PORT")" python3 "$PYC" socket "$SRV6" "$PORT" 200000
	expect_ok_line socket 200000 "$(sha_of "$T/e.bin")" && ok
}

# ---------- what cannot work: a static binary ----------
t_static_binary() {
	need_net && need gcc stunnel4 || return
	if ! timeout 60 gcc -static -O2 -o "$T/static_client" "$CLIENTS_DIR/static_client.c" 2>"$T/gcc.err"; then
		fail "cannot run: gcc -static failed: $(head -3 "$T/gcc.err" | tr '\n' ' ')"
		return
	fi
	if readelf -lW "$T/static_client" 2>/dev/null | grep -q 'program interpreter'; then
		fail "gcc -static produced a binary with a program interpreter (not static)"
		return
	fi
	stunnel_py hash hash || { fail "server did not start"; return; }
	crun static "$(rules "$SRV4:$PORT" name=compat-server.test)" "$T/static_client" "$SRV4" "$PORT"
	# The documented limitation: no loader, so no LD_PRELOAD: plaintext goes out and the TLS server
	# refuses it; the plain backend never sees a byte.
	grep -q '^shim-loaded=no' "$OUT" || { fail "expected the shim not to be loaded in a static binary: $(head -2 "$OUT" | tr '\n' ' ')"; return; }
	grep -q '^connected' "$OUT" || { fail "static client did not even connect (rc=$RC): $(cat "$ERR")"; return; }
	sleep 0.3
	if grep -q "accept" "$T/hash-backend.log"; then
		fail "the backend behind stunnel got a connection: stunnel accepted the plaintext?"
		return
	fi
	grep -Eqi 'SSL_accept|wrong version|http request|ssl' "$T/hash.log" ||
		{ fail "stunnel logged no TLS error for the plaintext: $(tail -3 "$T/hash.log" | tr '\n' ' ')"; return; }
	RESULT_AS="cannot work: static binary (no dynamic loader, LD_PRELOAD ignored; plaintext sent, the TLS server refused it: stunnel: $(grep -aoi 'SSL_accept: .*SSL routines::[a-z ]*' "$T/hash.log" | head -1 | sed 's/: .*SSL routines::/: /'))"
	ok "plaintext refused by the server, as documented"
}

# ---------- bash's /dev/tcp ----------
# plaintext_seen LOG: stunnel logged that what it got was not TLS (the shim let plaintext through).
plaintext_seen() { grep -Eai 'wrong version number|http request|packet length too long' "$1" | head -1 | sed 's/.*LOG[0-9]\[[0-9a-z]*\]: //' | cut -c1-120; }

t_bash_dev_tcp() {
	need_net && need bash stunnel4 || return
	tls_http www || { fail "server did not start"; return; }
	# Builtins only: printf >&3 writes the request, read <&3 reads the reply.
	crun bash "$(rules "compat-server.test:$PORT")" bash -c \
		'exec 3<>/dev/tcp/compat-server.test/'"$PORT"' && printf "GET /index.html HTTP/1.0\r\n\r\n" >&3 && while IFS= read -r l || [ -n "$l" ]; do printf "%s\n" "$l"; done <&3'
	local pt
	pt=$(plaintext_seen "$T/www.log")
	if [ -n "$pt" ]; then
		fail "PLAINTEXT reached the TLS server (stunnel: '$pt'); rc=$RC; $(shim_evidence)"
		return
	fi
	[ "$RC" = 0 ] && grep -q tlsshim-compat-page "$OUT" && ok ||
		fail "bash /dev/tcp: rc=$RC out='$(head -c 100 "$OUT")'; $(shim_evidence)"
}

# What cannot work (documented): a TLS fd handed to another program image is closed at exec.
t_bash_exec_cat() {
	need_net && need bash cat stunnel4 || return
	tls_http www || { fail "server did not start"; return; }
	crun exec "$(rules "compat-server.test:$PORT")" bash -c 'exec 3<>/dev/tcp/compat-server.test/'"$PORT"' && cat <&3'
	grep -q 'Bad file descriptor' "$ERR" || { fail "expected cat <&3 to fail with EBADF (TLS fds are close-on-exec), got rc=$RC err='$(head -c 200 "$ERR")'"; return; }
	RESULT_AS="cannot work (documented): an exec'd program reading an inherited TLS fd gets EBADF (close-on-exec)"
	ok "$(grep -m1 'Bad file descriptor' "$ERR")"
}

# ---------- the container: Debian minbase + the one file ----------
ROOTFS_DIR=$BUILD/compat-rootfs
ROOTFS_STAMP="debootstrap --variant=minbase bookworm http://deb.debian.org/debian (tlsshim compat v1)"
ROOTFS_NOTE=""
ensure_rootfs() {
	if [ -f "$ROOTFS_DIR/stamp" ] && [ "$(cat "$ROOTFS_DIR/stamp")" = "$ROOTFS_STAMP" ] && [ -x "$ROOTFS_DIR/root/bin/bash" ]; then
		ROOTFS_NOTE="minbase root cached in build/compat-rootfs"
		return 0
	fi
	command -v debootstrap >/dev/null || { ROOTFS_NOTE="debootstrap is not installed"; return 1; }
	rm -rf "$ROOTFS_DIR/root.tmp" "$ROOTFS_DIR/root" "$ROOTFS_DIR/stamp"
	mkdir -p "$ROOTFS_DIR"
	# run-all.sh gives a file 600 s: debootstrap gets what is left of 480 s (at most 420 s).
	local t0 rc budget
	t0=$(date +%s)
	budget=$((480 - (t0 - SUITE_T0)))
	[ "$budget" -gt 420 ] && budget=420
	if [ "$budget" -lt 60 ]; then
		ROOTFS_NOTE="only ${budget} s left of the file's time for debootstrap (package installation took the rest)"
		return 1
	fi
	timeout -k 10 "$budget" debootstrap --variant=minbase bookworm "$ROOTFS_DIR/root.tmp" http://deb.debian.org/debian \
		>"$ROOTFS_DIR/debootstrap.log" 2>&1
	rc=$?
	if [ "$rc" != 0 ]; then
		ROOTFS_NOTE="debootstrap failed (exit $rc after $(($(date +%s) - t0)) s): $(tail -2 "$ROOTFS_DIR/debootstrap.log" | tr '\n' ' ')"
		rm -rf "$ROOTFS_DIR/root.tmp"
		return 1
	fi
	mv "$ROOTFS_DIR/root.tmp" "$ROOTFS_DIR/root" && echo "$ROOTFS_STAMP" >"$ROOTFS_DIR/stamp"
	ROOTFS_NOTE="first run: debootstrap took $(($(date +%s) - t0)) s (cached afterwards in build/compat-rootfs, keyed by build/compat-rootfs/stamp)"
}

t_examples_consistent() {
	need /usr/bin/python3 || return
	prun ex /usr/bin/python3 "$COMPAT/examples.py" k8s "$REPO/examples/Dockerfile" "$REPO/examples/k8s-pod.yaml" "$REPO/examples/policy"
	[ "$RC" = 0 ] && ok || fail "examples/k8s-pod.yaml does not do what examples/Dockerfile does: $(cat "$OUT" "$ERR" | tr '\n' ' ' | cut -c1-300)"
}

# The chroot run (once): overlay over the cached root, the Dockerfile's COPYs, then in `chroot`:
# ldd of the .so; the Dockerfile's CMD with its ENV; the CMD without the shim (control); bash's
# /dev/tcp with the same ENV. Outputs in $T/cout. CONTAINER_RAN=1 when the script itself worked.
CONTAINER_RAN=0
CONTAINER_WHY="the container case did not run"
run_container() {
	local t0
	t0=$(date +%s)
	ensure_rootfs || { CONTAINER_WHY=$ROOTFS_NOTE; return 1; }
	TABLE_NOTES+=("Container test: $ROOTFS_NOTE; root ready after $(($(date +%s) - t0)) s.")
	# shellcheck disable=SC2034  # FROM is set by the sourced file and not needed here
	local FROM COPY_SRC COPY_DST ENV_KV CMD
	/usr/bin/python3 "$COMPAT/examples.py" dockerfile "$REPO/examples/Dockerfile" >"$T/dockerfile.sh" 2>"$T/dockerfile.err" ||
		{ CONTAINER_WHY="examples/Dockerfile: $(cat "$T/dockerfile.err")"; return 1; }
	source "$T/dockerfile.sh"
	# The build context: build/libtlsshim.so, examples/policy, ca.pem.
	local ctx=$T/ctx
	mkdir -p "$ctx/build" "$ctx/examples"
	cp "$SHIM" "$ctx/build/libtlsshim.so" && cp "$REPO/examples/policy" "$ctx/examples/policy" && cp "$CA" "$ctx/ca.pem" ||
		{ CONTAINER_WHY="could not assemble the build context"; return 1; }
	# tls-backend.internal:8443 = 10.203.0.5:8443 in the root namespace (stunnel in front of http.server).
	http_backend kbackend || { CONTAINER_WHY="backend did not start"; return 1; }
	stunnel_front kserver "$SRVK" "$PORT" 8443 || { CONTAINER_WHY="stunnel did not start on $SRVK:8443"; return 1; }
	mkdir -p "$T/ov/upper" "$T/ov/work" "$T/ov/merged" "$T/cout"
	{
		declare -p COPY_SRC COPY_DST ENV_KV CMD
		cat <<'EOF2'
set -u
R=$1 OV=$2 CTX=$3 OUTD=$4 SRVK=$5 SLOG=$6
# mark NAME: the server log's size now (so each run's server lines can be told apart).
mark() { sleep 0.3; echo "$1=$(stat -c %s "$SLOG")" >>"$OUTD/offsets.txt"; }
mount -t overlay overlay -o "lowerdir=$R,upperdir=$OV/upper,workdir=$OV/work" "$OV/merged" || exit 90
M=$OV/merged
for ((i = 0; i < ${#COPY_SRC[@]}; i++)); do
	mkdir -p "$M$(dirname "${COPY_DST[$i]}")" && cp "$CTX/${COPY_SRC[$i]}" "$M${COPY_DST[$i]}" || exit 91
done
# The container's name service: tls-backend.internal is the server (docker --add-host / cluster DNS).
echo "$SRVK tls-backend.internal" >>"$M/etc/hosts"
find "$M" -xdev \( -name 'libwolfssl*' -o -name 'libssl*' -o -name 'libtlsshim*' \) 2>/dev/null | sed "s|^$M||" >"$OUTD/tlslibs.txt"
P=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SO=$(printf '%s\n' "${ENV_KV[@]}" | sed -n 's/^LD_PRELOAD=//p')
timeout 20 chroot "$M" /usr/bin/env -i "$P" ldd "$SO" >"$OUTD/ldd.txt" 2>&1
echo "ldd_rc=$?" >>"$OUTD/rc.txt"
mark cmd_start
timeout 20 chroot "$M" /usr/bin/env -i "$P" HOME=/root "${ENV_KV[@]}" "${CMD[@]}" >"$OUTD/cmd.out" 2>"$OUTD/cmd.err"
echo "cmd_rc=$?" >>"$OUTD/rc.txt"
mark plain_start
timeout 20 chroot "$M" /usr/bin/env -i "$P" HOME=/root "${CMD[@]}" >"$OUTD/plain.out" 2>"$OUTD/plain.err"
echo "plain_rc=$?" >>"$OUTD/rc.txt"
mark bash_start
timeout 20 chroot "$M" /usr/bin/env -i "$P" HOME=/root "${ENV_KV[@]}" bash -c \
	'exec 3<>/dev/tcp/tls-backend.internal/8443 && printf "GET / HTTP/1.0\r\nHost: tls-backend.internal\r\n\r\n" >&3 && while IFS= read -r l || [ -n "$l" ]; do printf "%s\n" "$l"; done <&3' \
	>"$OUTD/bash.out" 2>"$OUTD/bash.err"
echo "bash_rc=$?" >>"$OUTD/rc.txt"
mark bash_end
EOF2
	} >"$T/container-run.sh"
	# ip netns exec: the container's own network namespace; unshare: its own mount namespace.
	prun container timeout -k 5 120 ip netns exec "$NSK" unshare --mount --propagation private \
		bash "$T/container-run.sh" "$ROOTFS_DIR/root" "$T/ov" "$T/ctx" "$T/cout" "$SRVK" "$T/kserver.log"
	# The server's log lines for each run: the Dockerfile's CMD, the control without the shim, bash.
	local a b c d
	a=$(sed -n 's/^cmd_start=//p' "$T/cout/offsets.txt" 2>/dev/null)
	b=$(sed -n 's/^plain_start=//p' "$T/cout/offsets.txt" 2>/dev/null)
	c=$(sed -n 's/^bash_start=//p' "$T/cout/offsets.txt" 2>/dev/null)
	d=$(sed -n 's/^bash_end=//p' "$T/cout/offsets.txt" 2>/dev/null)
	if [ -n "$a" ] && [ -n "$d" ]; then
		tail -c +"$((a + 1))" "$T/kserver.log" | head -c "$((b - a))" >"$T/cout/stunnel-cmd.log"
		tail -c +"$((b + 1))" "$T/kserver.log" | head -c "$((c - b))" >"$T/cout/stunnel-plain.log"
		tail -c +"$((c + 1))" "$T/kserver.log" | head -c "$((d - c))" >"$T/cout/stunnel-bash.log"
	fi
	[ "$RC" = 0 ] || { CONTAINER_WHY="the container script failed (rc=$RC: 90 overlay mount, 91 COPY): $(tail -2 "$ERR" | tr '\n' ' ')"; return 1; }
	CONTAINER_RAN=1
}

t_container_minbase_chroot() {
	not_under_asan || { CONTAINER_WHY="TLSSHIM_ASAN=1"; return; }
	need_net && need unshare chroot stunnel4 /usr/bin/python3 || return
	run_container || { fail "cannot run: $CONTAINER_WHY"; return; }
	CASE_LOGS+=("$T/cout/rc.txt" "$T/cout/ldd.txt" "$T/cout/cmd.err" "$T/cout/stunnel-cmd.log")
	local pt
	pt=$(plaintext_seen "$T/cout/stunnel-cmd.log")
	[ -n "$pt" ] && { fail "PLAINTEXT reached the TLS server from the Dockerfile's CMD (stunnel: '$pt')"; return; }
	[ -n "$(plaintext_seen "$T/cout/stunnel-plain.log")" ] ||
		{ fail "control: the server did not log the plaintext of the run without the shim (log split wrong?)"; return; }
	grep -q '^ldd_rc=0' "$T/cout/rc.txt" || { fail "ldd inside the chroot failed"; return; }
	local bad
	bad=$(grep -vE '^\s*(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|/lib64/ld-linux-x86-64\.so\.2)\b' "$T/cout/ldd.txt")
	[ -z "$bad" ] || { fail "ldd inside the chroot shows more than libc-family libraries: $(echo "$bad" | tr '\n' ' ')"; return; }
	grep -q tlsshim-compat-page "$T/cout/plain.out" &&
		{ fail "control: the program got the page WITHOUT the shim (the server is not TLS-only?)"; return; }
	grep -q '^cmd_rc=0' "$T/cout/rc.txt" && grep -q '^HTTP/1.0 200' "$T/cout/cmd.out" && grep -q tlsshim-compat-page "$T/cout/cmd.out" ||
		{ fail "the Dockerfile's CMD in the chroot did not get the page through the shim ($(tr '\n' ' ' <"$T/cout/rc.txt")): out='$(head -c 150 "$T/cout/cmd.out" | tr '\n' ' ')' err='$(head -c 300 "$T/cout/cmd.err" | tr '\n' ' ')'"; return; }
	TABLE_NOTES+=("Container: \`ldd\` of the .so inside the minbase chroot: $(awk '{print $1}' "$T/cout/ldd.txt" | tr '\n' ' '); TLS libraries in the image: $(tr '\n' ' ' <"$T/cout/tlslibs.txt")")
	ok "ldd: $(awk '{print $1}' "$T/cout/ldd.txt" | tr '\n' ' ')"
}

t_container_bash_dev_tcp() {
	[ "$CONTAINER_RAN" = 1 ] || { fail "cannot run: $CONTAINER_WHY"; return; }
	CASE_LOGS+=("$T/cout/bash.err" "$T/cout/stunnel-bash.log")
	local pt
	pt=$(plaintext_seen "$T/cout/stunnel-bash.log")
	[ -n "$pt" ] && { fail "PLAINTEXT reached the TLS server (stunnel: '$pt'); bash: $(grep -a '^tlsshim: ' "$T/cout/bash.err" | head -2 | tr '\n' ' ')"; return; }
	grep -q '^bash_rc=0' "$T/cout/rc.txt" && grep -q tlsshim-compat-page "$T/cout/bash.out" && ok ||
		fail "bash /dev/tcp in the chroot: $(grep bash_rc "$T/cout/rc.txt"), err='$(head -c 300 "$T/cout/bash.err" | tr '\n' ' ')'"
}

# ---------- run ----------
V_PY=$(/usr/bin/python3 --version 2>&1 | awk '{print $2}')
ccase curl "curl" "$(ver_dpkg curl)"
ccase wget "wget (TLSSHIM_POLICY file)" "$(ver_dpkg wget)"
ccase nc_send_file "nc (netcat-openbsd), send a file" "$(ver_dpkg netcat-openbsd)"
ccase nc_receive_file "nc (netcat-openbsd), receive a file" "$(ver_dpkg netcat-openbsd)"
ccase python_urllib "python3 urllib.request" "$V_PY"
ccase python_http_client "python3 http.client" "$V_PY"
ccase python_socket "python3 socket" "$V_PY"
ccase python_asyncio "python3 asyncio streams" "$V_PY"
ccase perl_io_socket_inet "perl IO::Socket::INET" "$(ver_dpkg perl)"
ccase perl_http_tiny "perl HTTP::Tiny" "$(ver_dpkg perl)"
ccase redis_set_get "redis-cli SET/GET (redis-server --tls-port)" "$(ver_dpkg redis-tools)"
ccase redis_pipe_10000 "redis-cli --pipe, 10,000 commands" "$(ver_dpkg redis-tools)"
ccase mtls_redis "redis-cli, mutual TLS (tls-auth-clients yes; cert=/key=)" "$(ver_dpkg redis-tools)"
ccase mosquitto_retained "mosquitto_pub/mosquitto_sub, retained message" "$(ver_dpkg mosquitto-clients)"
ccase mosquitto_live "mosquitto_pub/mosquitto_sub, live message" "$(ver_dpkg mosquitto-clients)"
ccase ldapsearch_ldaps "ldapsearch (slapd on ldaps://)" "$(ver_dpkg ldap-utils)"
if command -v node >/dev/null; then
	ccase node_net "node net" "$(node --version)"
	ccase node_http "node http" "$(node --version)"
else
	not_run "node net, node http" "-" "node is not installed and the nodejs package could not be installed"
fi
if command -v java >/dev/null && java --list-modules 2>/dev/null | grep -q '^jdk.compiler'; then
	ccase java_socket "java java.net.Socket (JDK 17 single-file launch; connects AF_INET6 to ::ffff:10.203.0.1)" "$(java -version 2>&1 | head -1 | sed 's/.*"\(.*\)".*/\1/')"
else
	not_run "java java.net.Socket" "-" "no JDK with jdk.compiler (single-file launch) and default-jdk-headless could not be installed"
fi
ccase ipv6_only_curl "curl, IPv6-only namespace (name -> AAAA only)" "$(ver_dpkg curl)"
ccase ipv6_only_python_literal "python3 socket, IPv6-only namespace, [address] rule" "$V_PY"
ccase static_binary "a static C client (gcc -static)" "$(gcc -dumpfullversion 2>/dev/null)"
ccase bash_dev_tcp "bash /dev/tcp (printf >&3, read <&3)" "$(ver_dpkg bash)"
ccase bash_exec_cat "bash /dev/tcp handed to an exec'd cat (cat <&3)" "$(ver_dpkg bash)"
ccase examples_consistent "examples/k8s-pod.yaml = examples/Dockerfile" "-"
ccase container_minbase_chroot "Debian 12 minbase chroot + the .so: examples/Dockerfile's CMD (perl-base IO::Socket::INET)" "$(ver_dpkg perl-base)"
ccase container_bash_dev_tcp "Debian 12 minbase chroot: bash /dev/tcp" "$(ver_dpkg bash)"
NOT_RUN+=("| Go programs | - | NOT RUN (no Go toolchain here); cannot work by design, like the static binary: Go makes system calls directly |")
TABLE_NOTES+=("Suite time: $(($(date +%s) - SUITE_T0)) s.")
write_table
finish
