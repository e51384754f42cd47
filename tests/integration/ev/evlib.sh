# shellcheck shell=bash
# evlib.sh: sourced after lib.sh by test_eventloop.sh, test_threads.sh and test_process.sh.
#   ev_server NAME tls|plain MODE [ARGS...]   tests/integration/ev/evserver.py (TLS with the PKI's cert
#                                             ${EV_CERT:-leaf}), records to $T/NAME.rec; sets PORT
#   rule [OPTS...]                            "tls localhost:$PORT ca-file=$ROOT OPTS"
#   rec_get FILE KEY [N]                      KEY's value in the Nth (default 1st) JSON line of FILE
#   kv KEY                                    the value of KEY=VALUE in the last run's stdout (first one)
#   expect_clean_client                       fails the case (returns 1) unless the last run exited 0 with
#                                             no "FAIL" line and no tlsshim: error line
EVDIR=$HERE/ev
EVSERVER=$EVDIR/evserver.py

ev_server() {
	local name=$1 kind=$2 mode=$3
	shift 3
	rm -f "$T/$name.port" "$T/$name.rec"
	local certargs=()
	[ "$kind" = tls ] && certargs=(--cert "$PKI/${EV_CERT:-leaf}.pem" --key "$PKI/${EV_CERT:-leaf}.key")
	bg "$name" "$PY" -u "$EVSERVER" "$kind" --mode "$mode" "${certargs[@]}" --rec "$T/$name.rec" \
		--portfile "$T/$name.port" "$@"
	wait_portfile "$name"
}

rule() { echo "tls localhost:$PORT ca-file=$ROOT $*"; }

rec_get() {
	"$PY" -c 'import json,sys
lines=[l for l in open(sys.argv[1]) if l.strip()]
n=int(sys.argv[3])
print(json.loads(lines[n-1]).get(sys.argv[2], "") if len(lines) >= n else "")' "$1" "$2" "${3:-1}" 2>/dev/null
}

# waits (max 5 s) until FILE has at least N lines
wait_lines() {
	local i
	for i in $(seq 1 50); do
		[ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

kv() { grep -ao "\(^\| \)$1=[^ ]*" "$OUT" | head -1 | sed "s/^ *$1=//"; }

expect_clean_client() {
	if [ "$RC" = 124 ]; then
		fail "the client hung: killed by the harness after $TMO s; last output: $(tail -3 "$OUT" | tr '\n' ' ')"
		return 1
	fi
	if grep -aq 'FAIL' "$ERR" || [ "$RC" != 0 ]; then
		fail "client exit $RC: $(grep -a 'FAIL' "$ERR" | head -4 | tr '\n' ' ')"
		return 1
	fi
	if grep -aq '^tlsshim: ' "$ERR"; then
		fail "the shim complained: $(shim_lines | head -3 | tr '\n' ' ')"
		return 1
	fi
	return 0
}
