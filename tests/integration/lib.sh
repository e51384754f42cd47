# lib.sh: sourced by tests/integration/test_*.sh (and valgrind.sh). Not executable on its own.
#
#   source "$(dirname "$0")/lib.sh" "$1"     # $1 = BUILD dir (default: build)
#   tcase NAME            runs function t_NAME as case NAME; it must call ok or fail (once)
#   ok / fail REASON      report the current case (fail prints the last command's output + server logs)
#   srun NAME CMD...      runs CMD with the shim preloaded (env vars given before srun apply), timeout
#                         $TMO s (default 20); sets RC, OUT, ERR (files), MS (elapsed ms)
#   prun NAME CMD...      the same without the shim
#   start_py NAME KIND ARGS...   servers.py KIND in background; sets PORT
#   start_s_server NAME CERTNAME [s_server args...]   openssl s_server on 127.0.0.1 and ::1; sets PORT
#   start_stunnel NAME CERTNAME BACKEND_PORT          stunnel4 server (127.0.0.1 and ::1) in front of
#                                                     BACKEND_PORT; sets PORT
#   finish                prints this file's totals; exit status 1 if any case failed
# Results go to $TLSSHIM_RESULTS (set by run-all.sh) as "PASS suite/case" / "FAIL suite/case: why".
# TLSSHIM_TEST_KEEP=1 keeps the temp dir. TLSSHIM_ASAN=1 preloads the ASan runtime before the shim.

set -u
BUILD_ARG=${1:-build}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
case $BUILD_ARG in /*) BUILD=$BUILD_ARG ;; *) BUILD=$REPO/$BUILD_ARG ;; esac
SHIM=$BUILD/libtlsshim.so
CL=$BUILD/clients
SUITE=$(basename "$0" .sh)
SUITE=${SUITE#test_}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3 || echo python3)
SERVERS=$HERE/servers.py
T=$(mktemp -d "${TMPDIR:-/tmp}/tlsshim-$SUITE.XXXXXX")
PKI=${TLSSHIM_TEST_PKI:-$T/pki}
RESULTS=${TLSSHIM_RESULTS:-$T/results}
: >>"$RESULTS"
TMO=20
N_PASS=0
N_FAIL=0
N_SKIP=0
CASE=""
CASE_DONE=1
CASE_PIDS=()
CASE_LOGS=()
ALL_PIDS=()
LAST=""
RC=0
MS=0
OUT=/dev/null
ERR=/dev/null
PORT=0

# Nothing from the caller's environment may steer the shim in a test.
unset TLSSHIM_RULES TLSSHIM_POLICY TLSSHIM_LOG TLSSHIM_LOG_FILE LD_PRELOAD

PRELOAD=$SHIM
SAN_ENV=()
# SAN_DIR: where the sanitizer runtime writes its reports (log_path: one file per reporting process, so
# a report from a forked child or a program with its stderr closed is not lost). Any report during a
# case fails it (ok checks), with the report in the details.
SAN_DIR=$T/san
if [ "${TLSSHIM_ASAN:-0}" = 1 ]; then
	asan_rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so 2>/dev/null || true)
	if [ -f "$asan_rt" ]; then
		PRELOAD="$asan_rt:$SHIM"
		mkdir -p "$SAN_DIR/seen"
		SAN_ENV=("ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:log_path=$SAN_DIR/asan"
			"UBSAN_OPTIONS=print_stacktrace=1:log_path=$SAN_DIR/ubsan")
	else
		echo "lib.sh: TLSSHIM_ASAN=1 but the ASan runtime was not found (clang -print-file-name)" >&2
	fi
fi

cleanup() {
	local p
	for p in "${ALL_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${ALL_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	if [ "${TLSSHIM_TEST_KEEP:-0}" = 1 ]; then
		echo "lib.sh: kept $T" >&2
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The PKI is generated once per run (run-all.sh shares it between files through TLSSHIM_TEST_PKI).
if ! (flock 9 && bash "$HERE/pki.sh" "$PKI") 9>>"$T/.pki.lock" >"$T/pki.out" 2>&1; then
	echo "lib.sh: generating the test PKI failed:" >&2
	cat "$T/pki.out" "$PKI/pki.log" 2>/dev/null | tail -20 >&2
fi
ROOT=$PKI/root.pem

# ---------- reporting ----------
say() { printf '%s\n' "$*"; }

show_details() {
	if [ -n "$LAST" ]; then
		say "    last command ($LAST): rc=$RC after ${MS} ms: $(cat "$T/$LAST.cmd" 2>/dev/null)"
		if [ -s "$T/$LAST.out" ]; then
			say "    --- stdout (first 15 lines)"
			head -c 2000 "$T/$LAST.out" | cat -v | head -15 | sed 's/^/    | /'
		fi
		if [ -s "$T/$LAST.err" ]; then
			say "    --- stderr (last 25 lines)"
			tail -25 "$T/$LAST.err" | cut -c1-400 | cat -v | sed 's/^/    | /'
		fi
	fi
	local l
	for l in "$SAN_DIR"/asan.* "$SAN_DIR"/ubsan.*; do
		[ -f "$l" ] || continue
		say "    --- sanitizer report $(basename "$l") (first 30 lines)"
		head -30 "$l" | cut -c1-300 | sed 's/^/    | /'
	done
	for l in "${CASE_LOGS[@]}"; do
		[ -f "$l" ] || continue
		say "    --- $(basename "$l") (last 12 lines)"
		tail -12 "$l" | sed 's/^/    | /'
	done
}

# san_report: the first error line of a sanitizer report written during this case (empty if none).
san_report() {
	local f
	for f in "$SAN_DIR"/asan.* "$SAN_DIR"/ubsan.*; do
		[ -f "$f" ] || continue
		echo "$(basename "$f"): $(grep -a -m1 -E 'ERROR|runtime error|SUMMARY' "$f" | cut -c1-200)"
		return 0
	done
}

ok() {
	[ "$CASE_DONE" = 1 ] && { say "lib.sh: ok called twice in $CASE" >&2; return 0; }
	local rep
	rep=$(san_report)
	if [ -n "$rep" ]; then
		fail "the sanitizer reported an error (the case itself passed): $rep"
		return 0
	fi
	CASE_DONE=1
	N_PASS=$((N_PASS + 1))
	say "PASS $SUITE/$CASE${1:+ ($1)}"
	say "PASS $SUITE/$CASE" >>"$RESULTS"
}

fail() {
	[ "$CASE_DONE" = 1 ] && { say "lib.sh: fail called after the case was reported in $CASE: $*" >&2; return 0; }
	CASE_DONE=1
	N_FAIL=$((N_FAIL + 1))
	say "FAIL $SUITE/$CASE: $*"
	show_details
	say "FAIL $SUITE/$CASE: $*" >>"$RESULTS"
}

stop_case_servers() {
	local p
	for p in "${CASE_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${CASE_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	CASE_PIDS=()
}

# tcase NAME: runs t_NAME. Every case needs the shim unless NOSHIM=1 is given.
tcase() {
	if [ -n "${TLSSHIM_CASES:-}" ]; then # only the cases whose name contains one of these words
		local w hit=0
		for w in $TLSSHIM_CASES; do [[ $1 == *"$w"* ]] && hit=1; done
		[ "$hit" = 1 ] || return 0
	fi
	CASE=$1
	CASE_DONE=0
	CASE_LOGS=()
	LAST=""
	if [ "${NOSHIM:-0}" != 1 ] && [ ! -f "$SHIM" ]; then
		fail "cannot run: $SHIM does not exist (build it with make)"
		return
	fi
	"t_$1"
	[ "$CASE_DONE" = 1 ] || fail "case ended without reporting ok/fail (harness bug)"
	stop_case_servers
	# This case's sanitizer reports were judged (ok) or shown (fail): keep them out of the next case.
	local f
	for f in "$SAN_DIR"/asan.* "$SAN_DIR"/ubsan.*; do
		[ -f "$f" ] && mv "$f" "$SAN_DIR/seen/$CASE.$(basename "$f")"
	done
	return 0
}

# skip REASON: the case cannot run here and is reported as "SKIP suite/case: REASON". Only under
# TLSSHIM_ASAN=1: need() calls it for a program that does not start under the sanitizer runtime alone,
# test_serve_rotate.sh for valgrind, which cannot run a program with that runtime.
skip() {
	[ "$CASE_DONE" = 1 ] && return 0
	CASE_DONE=1
	N_SKIP=$((N_SKIP + 1))
	say "SKIP $SUITE/$CASE: $*"
	say "SKIP $SUITE/$CASE: $*" >>"$RESULTS"
}

# need TOOL...: fails the case (returns 1) if a tool is missing. Under TLSSHIM_ASAN=1, curl and wget
# must also start with the ASan runtime preloaded (without the shim): Debian 12's deadlock in setlocale
# under clang 14's runtime. When `TOOL --version` does not finish so, the case is skipped (SKIP line,
# not counted as passed); make asan's file list (Makefile ASAN_GATE) and the README name those cases.
declare -A ASAN_TOOL_OK=()
need() {
	local t
	for t in "$@"; do
		if ! command -v "$t" >/dev/null 2>&1 && [ ! -x "$t" ]; then
			fail "cannot run: required tool '$t' is missing"
			return 1
		fi
		if [ "${#SAN_ENV[@]}" -gt 0 ] && { [ "$t" = curl ] || [ "$t" = wget ]; } && [ "${NOSHIM:-0}" != 1 ]; then
			if [ -z "${ASAN_TOOL_OK[$t]:-}" ]; then
				if timeout 5 env "${SAN_ENV[@]}" LD_PRELOAD="${PRELOAD%%:*}" "$t" --version >/dev/null 2>&1; then
					ASAN_TOOL_OK[$t]=yes
				else
					ASAN_TOOL_OK[$t]=no
				fi
			fi
			if [ "${ASAN_TOOL_OK[$t]}" = no ]; then
				skip "'$t --version' does not finish under the preloaded ASan runtime alone (no shim involved)"
				return 1
			fi
		fi
	done
}

finish() {
	local skipped=""
	[ "$N_SKIP" -gt 0 ] && skipped=", $N_SKIP skipped"
	say "$SUITE: $N_PASS passed, $N_FAIL failed$skipped"
	[ "$N_FAIL" -eq 0 ]
	exit $?
}

# ---------- running clients ----------
_run() {
	local preload=$1 name=$2
	shift 2
	LAST=$name
	OUT=$T/$name.out
	ERR=$T/$name.err
	printf '%q ' "$@" >"$T/$name.cmd"
	local t0 t1
	t0=$(date +%s%N)
	if [ "$preload" = 1 ]; then
		timeout -k 3 "$TMO" env "${SAN_ENV[@]}" LD_PRELOAD="$PRELOAD" "$@" >"$OUT" 2>"$ERR" <"${STDIN:-/dev/null}"
	else
		timeout -k 3 "$TMO" "$@" >"$OUT" 2>"$ERR" <"${STDIN:-/dev/null}"
	fi
	RC=$?
	t1=$(date +%s%N)
	MS=$(((t1 - t0) / 1000000))
	[ "$RC" = 124 ] && echo "[harness: killed by timeout after ${TMO}s]" >>"$ERR"
	if [ "$preload" = 1 ] && grep -q 'from LD_PRELOAD cannot be preloaded' "$ERR"; then
		# the shim did not load (e.g. rebuilt mid-run): whatever happened proves nothing
		echo "[harness: the shim was NOT loaded; result forced to rc=125]" >>"$ERR"
		RC=125
	fi
	return 0
}
srun() { _run 1 "$@"; }
prun() { _run 0 "$@"; }
# srun_in FILE NAME CMD...: like srun with standard input from FILE.
srun_in() {
	local f=$1
	shift
	STDIN=$f _run 1 "$@"
}

# ---------- assertions on the last run ----------
# shim_lines: the "tlsshim: " lines of the last run's stderr.
shim_lines() { grep -a '^tlsshim: ' "$ERR" || true; }
n_shim_lines() { grep -ac '^tlsshim: ' "$ERR" || true; }
# has_errno STAGE NAME: tcpclient reported "STAGE...: errno=NAME"
has_errno() { grep -aq "tcpclient: $1.*errno=$2 " "$ERR"; }
client_errno() { grep -ao 'errno=E[A-Z_0-9]*' "$ERR" | head -1 | cut -d= -f2; }

# expect_refused DEST_REGEX [REASON_REGEX]: last tcpclient run failed connect with ECONNREFUSED,
# printed exactly one tlsshim: line matching DEST_REGEX (and REASON_REGEX, case-insensitive).
# Returns 0 or calls fail and returns 1.
expect_conn_errno() {
	local want=$1 dest=$2 reason=${3:-}
	if [ "$RC" = 0 ]; then fail "connect succeeded; expected $want"; return 1; fi
	if ! has_errno connect "$want"; then
		fail "expected connect() to fail with $want, client said: $(grep -a 'tcpclient:' "$ERR" | head -2 | tr '\n' ' ')"
		return 1
	fi
	local n
	n=$(n_shim_lines)
	if [ "$n" != 1 ]; then fail "expected exactly one 'tlsshim: ' stderr line, got $n"; return 1; fi
	if ! shim_lines | grep -Eq -- "$dest"; then
		fail "the tlsshim: line does not name the destination (/$dest/): $(shim_lines)"
		return 1
	fi
	if [ -n "$reason" ] && ! shim_lines | grep -Eiq -- "$reason"; then
		fail "the tlsshim: line does not say what failed (/$reason/): $(shim_lines)"
		return 1
	fi
	return 0
}
expect_refused() { expect_conn_errno ECONNREFUSED "$@"; }

# ---------- servers ----------
# Servers listen on loopback only. Clients that look a name up (curl, nc, the C clients without -4) try
# every address getaddrinfo returns, and a stock Debian maps localhost to ::1 as well as 127.0.0.1: so
# start_s_server and start_stunnel listen on 127.0.0.1 and on ::1 (same port) whenever this machine has
# IPv6 loopback, and start_py/tls_py do with --v6.
# HAVE_V6: 1 when ::1 can be bound here (set once, below).
HAVE_V6=0
"$PY" -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null && HAVE_V6=1

# free_port: a TCP port that is free on 127.0.0.1 and (with HAVE_V6) on ::1 too.
free_port() {
	"$PY" -c 'import errno, socket
for _ in range(100):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    try:
        s6 = socket.socket(socket.AF_INET6)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s6.bind(("::1", p))
        s6.close()
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            s.close()
            continue
    print(p)
    break'
}

# wait_listen PORT [ADDR]: waits (max 10 s) until something listens on PORT (on ADDR when given:
# 127.0.0.1, or [::1] in brackets).
# plain_nginx_conf DIR PORT WORKERS CONNECTIONS HTTP...: DIR/nginx.conf for a plain (no TLS) nginx in the
# foreground serving DIR on 127.0.0.1:PORT, its pid, logs and temp files in DIR (DIR/tmp made here); the
# rest of the arguments are added to the http block (keep-alive, sendfile, tcp_nopush, ...).
plain_nginx_conf() {
	local d=$1 port=$2 workers=$3 conns=$4
	shift 4
	mkdir -p "$d/tmp"
	cat >"$d/nginx.conf" <<EOF
worker_processes $workers;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections $conns; }
http {
  access_log off; $*
  client_body_temp_path $d/tmp; proxy_temp_path $d/tmp; fastcgi_temp_path $d/tmp; uwsgi_temp_path $d/tmp; scgi_temp_path $d/tmp;
  server { listen 127.0.0.1:$port; root $d; }
}
EOF
}

wait_listen() {
	local i filter="sport = :$1"
	[ -n "${2:-}" ] && filter="src $2:$1"
	for i in $(seq 1 100); do
		if ss -Hltn "$filter" 2>/dev/null | grep -q .; then return 0; fi
		sleep 0.1
	done
	return 1
}

# bg NAME CMD...: background process, output to $T/NAME.log, killed at case end (and at exit).
bg() {
	local name=$1
	shift
	timeout -k 2 900 "$@" >"$T/$name.log" 2>&1 </dev/null &
	local p=$!
	CASE_PIDS+=("$p")
	ALL_PIDS+=("$p")
	CASE_LOGS+=("$T/$name.log")
}

# start_py NAME KIND ARGS...: servers.py; waits for its port file. Sets PORT (0 on failure).
start_py() {
	local name=$1
	shift
	rm -f "$T/$name.port"
	bg "$name" "$PY" -u "$SERVERS" "$@" --portfile "$T/$name.port"
	wait_portfile "$name"
}

# wait_portfile NAME: waits (10 s at most) for the server NAME to write $T/NAME.port. Sets PORT (0 on failure).
wait_portfile() {
	local name=$1 i
	PORT=0
	for i in $(seq 1 100); do
		if [ -s "$T/$name.port" ]; then
			PORT=$(cat "$T/$name.port")
			return 0
		fi
		sleep 0.1
	done
	echo "[harness: $name did not start within 10 s]" >>"$T/$name.log"
	return 1
}
# tls_py NAME CERTNAME [ARGS...]: python TLS server with PKI cert CERTNAME.
tls_py() {
	local name=$1 c=$2
	shift 2
	start_py "$name" tls --cert "$PKI/$c.pem" --key "$PKI/$c.key" "$@"
}

# start_s_server NAME CERTNAME [ARGS...]: openssl s_server on 127.0.0.1:PORT (log $T/NAME.log) and, with
# HAVE_V6, a second one with the same arguments on [::1]:PORT (log $T/NAME-v6.log).
start_s_server() {
	local name=$1 c=$2
	shift 2
	PORT=$(free_port)
	bg "$name" openssl s_server -accept "127.0.0.1:$PORT" -cert "$PKI/$c.pem" -key "$PKI/$c.key" "$@"
	[ "$HAVE_V6" = 1 ] && bg "$name-v6" openssl s_server -accept "[::1]:$PORT" -cert "$PKI/$c.pem" -key "$PKI/$c.key" "$@"
	wait_listen "$PORT" 127.0.0.1 || { echo "[harness: s_server not listening]" >>"$T/$name.log"; return 1; }
	[ "$HAVE_V6" = 1 ] || return 0
	wait_listen "$PORT" '[::1]' || { echo "[harness: s_server not listening on [::1]]" >>"$T/$name-v6.log"; return 1; }
}

# start_stunnel NAME CERTNAME BACKEND_PORT: stunnel4 TLS server on 127.0.0.1:PORT (and, with HAVE_V6,
# [::1]:PORT) -> 127.0.0.1:BACKEND.
start_stunnel() {
	local name=$1 c=$2 backend=$3
	PORT=$(free_port)
	cat >"$T/$name.conf" <<EOF
foreground = yes
pid =
debug = 5
[tlsshim-test]
accept = 127.0.0.1:$PORT
connect = 127.0.0.1:$backend
cert = $PKI/$c.pem
key = $PKI/$c.key
EOF
	[ "$HAVE_V6" = 1 ] && cat >>"$T/$name.conf" <<EOF
[tlsshim-test-v6]
accept = ::1:$PORT
connect = 127.0.0.1:$backend
cert = $PKI/$c.pem
key = $PKI/$c.key
EOF
	bg "$name" stunnel4 "$T/$name.conf"
	wait_listen "$PORT" 127.0.0.1 || { echo "[harness: stunnel not listening]" >>"$T/$name.log"; return 1; }
	[ "$HAVE_V6" = 1 ] || return 0
	wait_listen "$PORT" '[::1]' || { echo "[harness: stunnel not listening on [::1]]" >>"$T/$name.log"; return 1; }
}

# det_file PATH BYTES: writes the deterministic stream (same as servers.py det_bytes).
det_file() {
	"$PY" -c 'import sys; sys.path.insert(0, sys.argv[3]); import servers
open(sys.argv[1], "wb").write(servers.det_bytes(int(sys.argv[2])))' "$1" "$2" "$HERE"
}
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
