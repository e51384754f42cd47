#!/usr/bin/env bash
# bench/profile.sh: where the shim spends its time (`make bench-profile`). Writes into OUTDIR
# (default bench/results/, not committed): syscalls per TLS record for the shim vs the in-process
# wolfSSL client (perf stat on syscall tracepoints), flat CPU profiles of the shim client (perf record),
# and where the pass-through instructions go (callgrind_annotate). Loopback only; every run is bounded.
# usage: bench/profile.sh [BUILD] [OUTDIR]
set -euo pipefail
BUILD=$(realpath "${1:-build}")
OUT=$(realpath -m "${2:-$(dirname "$0")/results}")
B=$BUILD/bench
mkdir -p "$OUT"
T=$(mktemp -d /tmp/tlsshim-profile.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -days 2 -subj "/CN=tlsshim bench CA" -out ca.pem 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out leaf.key
openssl req -new -key leaf.key -subj "/CN=localhost" -out leaf.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > ext.cnf
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out leaf.pem 2>/dev/null
"$B/server" -p 0 -s TLS13-AES128-GCM-SHA256 -c leaf.pem -k leaf.key > srv.out & pids+=($!)
"$B/server" -p 0 -P > plain.out & pids+=($!)
for f in srv.out plain.out; do for _ in $(seq 50); do grep -q port= $f && break; sleep 0.1; done; done
PORT=$(sed -n 's/port=//p' srv.out); PPORT=$(sed -n 's/port=//p' plain.out)
export BENCH_CA=$T/ca.pem
SHIM=(env LD_PRELOAD=$BUILD/libtlsshim.so "TLSSHIM_RULES=tls 127.0.0.1:$PORT name=localhost ca-file=$T/ca.pem")
N=$((256 << 20)); RECORDS=$((N / 16384)); PINGS=20000
EV=raw_syscalls:sys_enter,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_poll,syscalls:sys_enter_ppoll,syscalls:sys_enter_fcntl,syscalls:sys_enter_getsockopt

count() { # label units unit-name cmd...: syscalls per unit
  local label=$1 units=$2 what=$3; shift 3
  perf stat -x, -e "$EV" -o "$T/stat" -- "$@" > /dev/null
  awk -F, -v l="$label" -v u="$units" -v w="$what" '/^[0-9]/ { n=$3; sub(/.*sys_enter_?/, "", n); if (n=="") n="all"; out = out sprintf(" %s=%.2f", n, $1/u) }
      END { printf "%-28s per %s:%s\n", l, w, out }' "$T/stat"
}
{
  echo "# syscalls per unit (perf stat on syscall tracepoints); 256 MiB = $RECORDS full 16 KiB records; ping = one 64-byte round trip"
  count "wolfssl in-process down" $RECORDS record "$B/wolfclient" -p "$PORT" -m down -n $N
  count "shim down" $RECORDS record "${SHIM[@]}" "$B/client" -p "$PORT" -m down -n $N
  count "wolfssl in-process up" $RECORDS record "$B/wolfclient" -p "$PORT" -m up -n $N
  count "shim up" $RECORDS record "${SHIM[@]}" "$B/client" -p "$PORT" -m up -n $N
  count "wolfssl in-process ping" $PINGS ping "$B/wolfclient" -p "$PORT" -m ping -n $PINGS
  count "shim ping" $PINGS ping "${SHIM[@]}" "$B/client" -p "$PORT" -m ping -n $PINGS
  count "wolfssl in-process conn" 300 conn "$B/wolfclient" -p "$PORT" -m conn -n 300
  count "shim conn (resumption off)" 300 conn env LD_PRELOAD=$BUILD/libtlsshim.so "TLSSHIM_RULES=tls 127.0.0.1:$PORT name=localhost ca-file=$T/ca.pem session-resumption=off" "$B/client" -p "$PORT" -m conn -n 300
} | tee "$OUT/profile-syscalls.txt"

prof() { # name cmd...: flat profile, self time by symbol
  local name=$1; shift
  perf record -q -e cpu-clock -F 2000 -g -o "$T/perf.data" -- "$@" > /dev/null 2> "$T/perf.err" || { echo "perf record failed: $(tail -3 "$T/perf.err")"; return 0; }
  perf report -i "$T/perf.data" --no-children --sort dso,symbol --percent-limit 0.7 --stdio -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | sed 's/ *- *- *$//' | head -40 > "$OUT/profile-$name.txt"
  echo "== $name"; head -25 "$OUT/profile-$name.txt"
}
prof shim-down "${SHIM[@]}" "$B/client" -p "$PORT" -m down -n $((1 << 30))
prof shim-up "${SHIM[@]}" "$B/client" -p "$PORT" -m up -n $((1 << 30))
prof wolfssl-down "$B/wolfclient" -p "$PORT" -m down -n $((1 << 30))
prof shim-ping "${SHIM[@]}" "$B/client" -p "$PORT" -m ping -n 50000
prof shim-conn "${SHIM[@]}" "$B/client" -p "$PORT" -m conn -n 2000 -T 10

if command -v valgrind > /dev/null; then
  # LD_PRELOAD set around valgrind: valgrind hands it on to the program it runs.
  "${SHIM[@]}" valgrind -q --tool=callgrind --toggle-collect='loop_*' --callgrind-out-file="$T/cg.with" \
    "$B/passthru" -n 100000 -p "$PPORT" -d "$T" > /dev/null
  callgrind_annotate --inclusive=no "$T/cg.with" 2>/dev/null | head -40 > "$OUT/profile-passthru-callgrind.txt"
  echo "== passthru (callgrind, with the shim)"; sed -n 1,40p "$OUT/profile-passthru-callgrind.txt"
fi
