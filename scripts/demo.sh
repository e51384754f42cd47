#!/usr/bin/env bash
# demo.sh [BUILD_DIR] (make demo): shows tlsshim adding TLS to an unmodified curl.
#  1. a test CA and certificates are generated in a temp dir;
#  2. `openssl s_server -www` listens on a free localhost port;
#  3. `curl http://localhost:PORT/` runs with the shim preloaded and gets the page over TLS,
#     with the handshake line of TLSSHIM_LOG=info;
#  4. a recording relay between curl and the server proves no plaintext crossed the wire
#     (and, for contrast, that it does record plaintext when the shim is not there);
#  5. a server with a wrong-name certificate is refused, with the reason;
#  6. the server side: an unmodified plaintext `python3 -m http.server` under a `serve` rule answers
#     `curl https://` (verified against the test CA), and a plaintext http:// client gets nothing.
# Everything stays on 127.0.0.1. Exits nonzero if any step does not behave as shown.
set -u
BUILD_ARG=${1:-build}
REPO=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD_ARG in /*) BUILD=$BUILD_ARG ;; *) BUILD=$REPO/$BUILD_ARG ;; esac
SHIM=$BUILD/libtlsshim.so
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
D=$(mktemp -d "${TMPDIR:-/tmp}/tlsshim-demo.XXXXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
unset TLSSHIM_RULES TLSSHIM_POLICY TLSSHIM_LOG TLSSHIM_LOG_FILE

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() {
	printf '\nDEMO FAILED: %s\n' "$*"
	exit 1
}
# show CMD...: prints the command as it could be typed, then runs it (bounded to 20 s).
show() {
	printf '$ %s\n' "$*"
	timeout 20 bash -c "$*"
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listen() {
	local i
	for i in $(seq 1 100); do
		ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}
# bg CMD...: runs CMD in the background (bounded to 300 s), output in $BG_LOG ($D/bg.N.log).
BG_N=0
bg() {
	BG_N=$((BG_N + 1))
	BG_LOG=$D/bg.$BG_N.log
	timeout 300 "$@" >"$BG_LOG" 2>&1 </dev/null &
	PIDS+=("$!")
}

[ -f "$SHIM" ] || die "$SHIM not found: run make first"
for t in openssl curl ss; do command -v "$t" >/dev/null || die "missing tool: $t"; done

step "1. a test CA and a certificate for localhost (in $D/pki)"
bash "$REPO/tests/integration/pki.sh" "$D/pki" || die "certificate generation failed"
CA=$D/pki/root.pem
openssl x509 -in "$D/pki/leaf.pem" -noout -subject -issuer -ext subjectAltName | sed 's/^/   /'

step "2. an ordinary TLS server: openssl s_server -www"
PORT=$(free_port)
bg openssl s_server -accept "127.0.0.1:$PORT" -cert "$D/pki/leaf.pem" -key "$D/pki/leaf.key" -www -quiet
wait_listen "$PORT" || die "s_server did not start"
echo "   listening on 127.0.0.1:$PORT (it speaks only TLS)"

step "3. unmodified curl, plain http:// URL, with the shim preloaded"
show "TLSSHIM_RULES='tls localhost:$PORT ca-file=$CA' TLSSHIM_LOG=info LD_PRELOAD=$SHIM curl -sS http://localhost:$PORT/ >$D/page 2>$D/err; cat $D/err; head -3 $D/page"
grep -q 's_server' "$D/page" || die "curl did not get the s_server page through the shim"
grep -q '^tlsshim: ' "$D/err" || die "no tlsshim: handshake line at TLSSHIM_LOG=info"
grep -a 'New, TLS' "$D/page" | head -1 | sed 's/^/   the server says: /'

step "4. no plaintext on the wire: a relay records every byte curl sends"
RPORT=$(free_port)
bg "$PY" "$REPO/tests/integration/servers.py" relay --port "$RPORT" --to "$PORT" --rec "$D/wire"
wait_listen "$RPORT" || die "relay did not start"
SECRET="demo-secret-$RANDOM$RANDOM"
show "TLSSHIM_RULES='tls localhost:$RPORT ca-file=$CA' LD_PRELOAD=$SHIM curl -sS -H 'X-Secret: $SECRET' http://localhost:$RPORT/ -o $D/page2"
grep -q 's_server' "$D/page2" || die "curl through the relay did not get the page"
echo "   the relay recorded $(stat -c %s "$D/wire") bytes from curl; they start with:"
head -c 16 "$D/wire" | od -An -tx1 | sed 's/^/  /'
show "grep -c '$SECRET' $D/wire || echo '   -> the secret header is NOT on the wire'"
grep -qF "$SECRET" "$D/wire" && die "the secret header crossed the wire in plaintext"
[ "$(head -c 1 "$D/wire" | od -An -tx1 | tr -d ' ')" = 16 ] || die "the recording does not start with a TLS handshake record"
echo "   for contrast, the same curl WITHOUT the shim (the server will reject it; the point is the wire):"
: >"$D/wire"
show "curl -sS --max-time 5 -H 'X-Secret: $SECRET' http://localhost:$RPORT/ -o /dev/null 2>/dev/null; grep -ac '$SECRET' $D/wire"
grep -qF "$SECRET" "$D/wire" || die "the recorder did not see the plaintext secret without the shim"

step "5. a server whose certificate is for another name is refused"
WPORT=$(free_port)
bg openssl s_server -accept "127.0.0.1:$WPORT" -cert "$D/pki/wrongname.pem" -key "$D/pki/wrongname.key" -www -quiet
wait_listen "$WPORT" || die "second s_server did not start"
show "TLSSHIM_RULES='tls localhost:$WPORT ca-file=$CA' LD_PRELOAD=$SHIM curl -sS http://localhost:$WPORT/ >$D/page3 2>$D/err3; echo \"curl exit status: \$?\"; cat $D/err3"
[ -s "$D/page3" ] && die "curl got a page from a server with a wrong-name certificate"
grep -q "^tlsshim: .*localhost:$WPORT.*name" "$D/err3" || die "no tlsshim: line naming the destination and the name problem"

step "6. the server side: a plaintext python3 -m http.server serves TLS under a serve rule"
SPORT=$(free_port)
mkdir -p "$D/www" && echo "served by plain http.server through tlsshim ($RANDOM)" >"$D/www/index.html"
echo "\$ cd $D/www; TLSSHIM_RULES='serve 127.0.0.1:$SPORT cert=$D/pki/leaf.pem key=$D/pki/leaf.key' TLSSHIM_LOG=info LD_PRELOAD=$SHIM python3 -m http.server $SPORT --bind 127.0.0.1 &"
bg env -C "$D/www" TLSSHIM_RULES="serve 127.0.0.1:$SPORT cert=$D/pki/leaf.pem key=$D/pki/leaf.key" TLSSHIM_LOG=info \
	LD_PRELOAD="$SHIM" "$PY" -m http.server "$SPORT" --bind 127.0.0.1
SLOG=$BG_LOG
wait_listen "$SPORT" || die "http.server did not start"
show "curl -sS --cacert $CA https://localhost:$SPORT/index.html"
timeout 20 curl -sS --cacert "$CA" "https://localhost:$SPORT/index.html" 2>/dev/null | grep -q 'served by plain http.server' ||
	die "curl https:// did not get the page from http.server"
echo "   the shim in http.server logged:"
grep -a 'accepted TLS' "$SLOG" | head -1 | sed 's/^/   /'
grep -qa 'accepted TLS' "$SLOG" || die "no 'accepted TLS' line from the server side"
show "curl -sS --max-time 5 http://127.0.0.1:$SPORT/index.html; echo \"curl exit status: \$?\""
timeout 20 curl -sS --max-time 5 "http://127.0.0.1:$SPORT/index.html" 2>/dev/null | grep -q 'served by plain' &&
	die "a plaintext client got the page"
grep -a 'did not start a TLS handshake' "$SLOG" | head -1 | sed 's/^/   /'

printf '\nDemo OK: TLS added to plain curl, nothing in clear on the wire, wrong name refused, and a plain server served TLS.\n'
