# matrix/mlib.sh: helpers for test_matrix.sh (sourced after ../lib.sh; uses its tcase/ok/fail/srun/bg/
# start_py/free_port/wait_listen). Not executable on its own.
#
#   mcase NAME SERVER EXPECTED   runs t_NAME through tcase and adds a row to the results table
#   msrv NAME CERT KEY [s_server args...]   openssl s_server (stdin held open) on 127.0.0.1:SPORT, with
#                         a recording relay in front of it: PORT is the relay's port, SLOG the server's log
#   mpy NAME CERT KEY [servers.py tls args...]  the same with a servers.py TLS server
#   mplain NAME [servers.py plain args...]      the same with a servers.py plain TCP server
#   mconn RULE_OPTS [tcpclient args...]  tcpclient -4 sends "$SENT\n" to localhost:$PORT through
#                         "tls localhost:$PORT ca-file=$ROOT RULE_OPTS"; observes errno and reason
#   bad_connect ERRNO REASON_RE [DEST_RE]  connect failed with ERRNO, one reason line, no sentinel
#   bad_read ERRNO REASON_RE [DEST_RE]     connect worked, read failed with ERRNO, one reason line, no
#                         sentinel at the server
#   good [NO_SERVER_LOG]  the exchange worked, the server decrypted the sentinel, the wire never saw it
#   print_table           the markdown table (stdout; also $REPO/tests/integration/matrix-results.md
#                         when TLSSHIM_WRITE_MATRIX=1)

SENT="tlsshim-MATRIX-SENTINEL-$$-$RANDOM$RANDOM"
REC=$T/rec
SLOG=/dev/null
SPORT=0
M_ERRNO="-"
M_REASON="-"
M_ROWS=()
M_NOTES=()

# ---------- servers ----------
relay_to() {
	rm -f "$REC" "$REC.s2c"
	: >"$REC"
	start_py relay relay --to "$1" --rec "$REC" || { fail "the recording relay did not start"; return 1; }
}

msrv() {
	local name=$1 cert=$2 key=$3
	shift 3
	SPORT=$(free_port)
	SLOG=$T/$name.log
	# s_server ends its session (and stops) when its standard input reaches EOF: hold stdin open.
	bg "$name" bash -c 'sleep 900 | exec "$@"' msrv openssl s_server -accept "127.0.0.1:$SPORT" -cert "$cert" -key "$key" "$@"
	if ! wait_listen "$SPORT"; then
		fail "openssl s_server ($name) did not listen on $SPORT: $(tail -3 "$SLOG" | tr '\n' ' ')"
		return 1
	fi
	relay_to "$SPORT"
}

mpy() {
	local name=$1 cert=$2 key=$3
	shift 3
	SLOG=$T/$name.log
	start_py "$name" tls --cert "$cert" --key "$key" "$@" || { fail "servers.py tls ($name) did not start"; return 1; }
	SPORT=$PORT
	relay_to "$SPORT"
}

mplain() {
	local name=$1
	shift
	SLOG=$T/$name.log
	start_py "$name" plain "$@" || { fail "servers.py plain ($name) did not start"; return 1; }
	SPORT=$PORT
	relay_to "$SPORT"
}

# ---------- clients ----------
# observe: the last run's client errno (with the failing stage) and the first tlsshim: line, for the table.
observe() {
	local e
	e=$(grep -ao 'tcpclient: [a-z-]*[a-z0-9 ]*: errno=E[A-Z_0-9]*' "$ERR" | head -1 |
		sed -E 's/^tcpclient: ([a-z-]+)[^:]*: errno=/\1 /')
	if [ -n "$e" ]; then
		M_ERRNO=$e
	elif [ "$RC" = 0 ]; then
		M_ERRNO="none (rc 0)"
	else
		M_ERRNO="rc $RC"
	fi
	M_REASON=$(grep -a '^tlsshim: ' "$ERR" | head -1 | cut -c1-200)
	[ -n "$M_REASON" ] || M_REASON="-"
}

mconn() {
	local opts=$1
	shift
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT $opts" srun tc "$CL/tcpclient" -4 -s "$SENT\\n" -W "$@" localhost "$PORT"
	observe
}

# ---------- assertions ----------
# no_sentinel: the sentinel never crossed the wire in plaintext, and the server never received it.
no_sentinel() {
	if grep -aqF -- "$SENT" "$REC" 2>/dev/null; then
		fail "PLAINTEXT ON THE WIRE: the sentinel is in the relay's client->server recording"
		return 1
	fi
	if grep -aqF -- "$SENT" "$SLOG" 2>/dev/null; then
		fail "the server received the sentinel although the connection must have been refused"
		return 1
	fi
	return 0
}

one_reason() { # one_reason DEST_RE REASON_RE
	local n
	n=$(n_shim_lines)
	if [ "$n" != 1 ]; then fail "expected exactly one 'tlsshim: ' stderr line, got $n"; return 1; fi
	if ! shim_lines | grep -Eq -- "$1"; then fail "the tlsshim: line does not name the destination (/$1/): $(shim_lines)"; return 1; fi
	if ! shim_lines | grep -Eiq -- "$2"; then fail "the tlsshim: line does not say what failed (/$2/): $(shim_lines)"; return 1; fi
	reason_clean
}
# reason_clean: the reason line has no "(null)" (a NULL string given to printf: undefined behaviour, and
# the reader learns nothing).
reason_clean() {
	if shim_lines | grep -qF '(null)'; then fail "the reason line prints '(null)': $(shim_lines | head -1)"; return 1; fi
	return 0
}

bad_connect() {
	local want=$1 reason=$2 dest=${3:-"localhost:$PORT\\b"}
	[ "$RC" != 124 ] || { fail "the client hung (killed after ${TMO}s)"; return 1; }
	expect_conn_errno "$want" "$dest" "$reason" || return 1
	reason_clean || return 1
	grep -aqF -- "$SENT" "$OUT" && { fail "the client received its sentinel back"; return 1; }
	no_sentinel
}

bad_read() {
	local want=$1 reason=$2 dest=${3:-"localhost:$PORT\\b"}
	[ "$RC" != 124 ] || { fail "the client hung (killed after ${TMO}s)"; return 1; }
	if grep -aq 'tcpclient: connect:.*errno=' "$ERR"; then
		fail "connect failed ($(client_errno)); expected it to succeed and the first read to fail with $want"
		return 1
	fi
	if ! grep -aq "tcpclient: read.*errno=$want " "$ERR"; then
		fail "expected read() to fail with $want, client said: $(grep -a 'tcpclient: \(read\|EOF\|write\)' "$ERR" | head -2 | tr '\n' ' ')"
		return 1
	fi
	one_reason "$dest" "$reason" || return 1
	grep -aqF -- "$SENT" "$OUT" && { fail "data came back although the connection must have failed"; return 1; }
	no_sentinel
}

# good [nolog]: rc 0; the server decrypted the sentinel (its log has it, unless nolog); no plaintext on
# the wire; no tlsshim: line other than info lines (none are expected at the default level).
good() {
	[ "$RC" = 0 ] || { fail "the exchange failed (rc=$RC, $(client_errno)): $(shim_lines | head -1)"; return 1; }
	if [ "${1:-}" != nolog ] && ! grep -aqF -- "$SENT" "$SLOG"; then
		fail "the server's log does not show the sentinel: the data did not arrive"
		return 1
	fi
	if [ ! -s "$REC" ]; then fail "the relay recorded nothing: the connection did not go through it"; return 1; fi
	if grep -aqF -- "$SENT" "$REC"; then fail "PLAINTEXT ON THE WIRE: the sentinel is in the relay's recording"; return 1; fi
	if [ "$(head -c 2 "$REC" | od -An -tx1 | tr -d ' \n')" != 1603 ]; then
		fail "the client->server bytes do not start with a TLS handshake record"
		return 1
	fi
	return 0
}

# chain_len N: harness control, without the shim: the server (not the relay) sends N certificates.
chain_len() {
	local n
	n=$(timeout 10 openssl s_client -connect "127.0.0.1:$SPORT" -showcerts </dev/null 2>/dev/null | grep -c 'BEGIN CERTIFICATE')
	[ "$n" = "$1" ] && return 0
	fail "harness control: the server sends $n certificate(s), the case needs $1"
	return 1
}

# pin_of PEM: base64 SHA-256 of the certificate's SubjectPublicKeyInfo
pin_of() {
	openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
}

# ---------- the table ----------
md_cell() { printf '%s' "$1" | tr '\n' ' ' | sed -e 's/|/\\|/g' -e 's/`/'"'"'/g'; }

mcase() {
	local name=$1 server=$2 expected=$3
	M_ERRNO="-"
	M_REASON="-"
	tcase "$name"
	local res
	res=$(grep -a -E "^(PASS|FAIL) $SUITE/$name(:|\$)" "$RESULTS" | tail -1)
	case $res in
	PASS*) res=PASS ;;
	FAIL*) res="FAIL: ${res#*: }" ;;
	*) res="FAIL: not reported" ;;
	esac
	local reason=$M_REASON
	reason=${reason#tlsshim: }
	M_ROWS+=("| $name | $(md_cell "$server") | $(md_cell "$expected") | $(md_cell "$M_ERRNO") | $(md_cell "${reason:0:150}") | $(md_cell "${res:0:160}") |")
}

print_table() {
	local out
	out=$(
		echo "# tlsshim server matrix"
		echo
		echo "Generated by \`tests/integration/test_matrix.sh\` ($(date -u +%Y-%m-%d), $(openssl version | cut -d' ' -f1-2)," \
			"$(grep -a -m1 -o 'LIBWOLFSSL_VERSION_STRING "[^"]*"' "$BUILD/wolfssl/include/wolfssl/version.h" 2>/dev/null | cut -d'"' -f2 | sed 's/^/wolfSSL /')):" \
			"every server is real and on loopback; every client byte went through a recording relay; the" \
			"sentinel the client sends never appeared there in plaintext (nor at a server for a refused case)."
		echo
		echo "| case | server | expected | observed errno | reason line (excerpt) | result |"
		echo "| --- | --- | --- | --- | --- | --- |"
		printf '%s\n' "${M_ROWS[@]}"
		if [ "${#M_NOTES[@]}" -gt 0 ]; then
			echo
			printf -- '- %s\n' "${M_NOTES[@]}"
		fi
		echo
		echo "$N_PASS passed, $N_FAIL failed."
	)
	printf '%s\n' "$out"
	if [ "${TLSSHIM_WRITE_MATRIX:-0}" = 1 ]; then
		printf '%s\n' "$out" >"$REPO/tests/integration/matrix-results.md"
		echo "matrix: wrote $REPO/tests/integration/matrix-results.md"
	fi
}
