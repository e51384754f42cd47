# shellcheck shell=bash
# tests/compat/compat-lib.sh: helpers for the compatibility suite (tests/integration/test_compat.sh).
# Sourced after tests/integration/lib.sh, whose reporting (tcase/ok/fail) and runners (prun) it uses.
#
# Network: every client runs in a network namespace of its own, joined to the root namespace by a
# veth pair. Only these addresses are used, and nothing is routed anywhere else (the namespaces get no
# default route):
#   client      ns tlsshimc-PID    10.203.0.2/30   <->  root 10.203.0.1/30   (servers bind 10.203.0.1)
#   container   ns tlsshimck-PID   10.203.0.6/30   <->  root 10.203.0.5/30   (servers bind 10.203.0.5)
#   IPv6-only   ns tlsshimc6-PID   fd00:203:6::2/64 <-> root fd00:203:6::1/64 (no IPv4 at all)
# Names: /etc/netns/NS/hosts (bind-mounted over /etc/hosts by `ip netns exec`) maps
# compat-server.test -> 10.203.0.1 and compat-v6.test -> fd00:203:6::1.
#
#   crun NAME RULEVAR CMD...    runs CMD in the client namespace with `env -i`: PATH, HOME, LD_PRELOAD
#                               and RULEVAR (TLSSHIM_RULES=... or TLSSHIM_POLICY=...) and nothing else;
#                               sets RC/OUT/ERR/MS like srun. CNS=other-ns selects another namespace.
#   stunnel_front NAME ADDR BACKEND_PORT   stunnel4 TLS server on ADDR:PORT -> 127.0.0.1:BACKEND_PORT
#   http_backend NAME           python3 -m http.server on 127.0.0.1 serving $DOCROOT; sets PORT
#   record PROGRAM VERSION RESULT   one row of the compatibility table
#   ccase CASE PROGRAM VERSION  tcase CASE, then a table row from its outcome (NOTE / RESULT_AS)

SRV4=10.203.0.1
CLI4=10.203.0.2
SRVK=10.203.0.5
CLIK=10.203.0.6
SRV6=fd00:203:6::1
CLI6=fd00:203:6::2
NS=tlsshimc-$$
NS6=tlsshimc6-$$
NSK=tlsshimck-$$
CPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COMPAT=$REPO/tests/compat
CERTS=$T/certs
CA=$CERTS/ca.pem
DOCROOT=$T/docroot
NET_OK=0
NET_ERR="not set up"
MADE_NS=()

# ---------- network namespaces ----------
# mk_ns NS HOSTIF NSIF ROOT_ADDR/LEN NS_ADDR/LEN HOSTS_LINE...
mk_ns() {
	local ns=$1 hif=$2 nif=$3 raddr=$4 naddr=$5
	shift 5
	local v6=0
	[[ $raddr == *:* ]] && v6=1
	timeout 10 ip netns add "$ns" || return 1
	MADE_NS+=("$ns")
	mkdir -p "/etc/netns/$ns" || return 1
	{
		echo "127.0.0.1 localhost"
		echo "::1 localhost ip6-localhost"
		printf '%s\n' "$@"
	} >"/etc/netns/$ns/hosts"
	timeout 10 ip link add "$hif" type veth peer name "$nif" netns "$ns" || return 1
	timeout 10 ip -n "$ns" link set lo up || return 1
	if [ "$v6" = 1 ]; then
		timeout 10 ip addr add "$raddr" dev "$hif" nodad || return 1
		timeout 10 ip -n "$ns" addr add "$naddr" dev "$nif" nodad || return 1
	else
		timeout 10 ip addr add "$raddr" dev "$hif" || return 1
		timeout 10 ip -n "$ns" addr add "$naddr" dev "$nif" || return 1
	fi
	timeout 10 ip link set "$hif" up || return 1
	timeout 10 ip -n "$ns" link set "$nif" up || return 1
}

# Namespaces left by a run that was killed (its PID is gone) would hold the same addresses.
reap_stale_ns() {
	local ns pid
	for ns in $(timeout 10 ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^tlsshimc[6k]?-[0-9]+$'); do
		pid=${ns##*-}
		kill -0 "$pid" 2>/dev/null && continue
		timeout 10 ip netns del "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns"
	done
}

net_setup() {
	# One suite at a time on a machine: the addresses are fixed.
	exec 8>>"${TMPDIR:-/tmp}/tlsshim-compat.lock"
	if ! flock -w 300 8; then
		NET_ERR="another compatibility run held ${TMPDIR:-/tmp}/tlsshim-compat.lock for 300 s"
		return 1
	fi
	reap_stale_ns
	if [ "$(id -u)" != 0 ]; then
		NET_ERR="network namespaces need root (ip netns add)"
		return 1
	fi
	local e=$T/net-setup.err
	if ! {
		mk_ns "$NS" "tsc$$h" "tsc$$n" "$SRV4/30" "$CLI4/30" "$SRV4 compat-server.test" &&
			mk_ns "$NSK" "tsk$$h" "tsk$$n" "$SRVK/30" "$CLIK/30" &&
			mk_ns "$NS6" "ts6$$h" "ts6$$n" "$SRV6/64" "$CLI6/64" "$SRV6 compat-v6.test"
	} 2>"$e"; then
		NET_ERR="network namespace setup failed: $(tr '\n' ' ' <"$e" | cut -c1-300)"
		return 1
	fi
	# Both ends up and addressed (bounded).
	for _ in $(seq 1 50); do
		if timeout 5 ip netns exec "$NS" ping -c1 -W1 "$SRV4" >/dev/null 2>&1 &&
			timeout 5 ip netns exec "$NS6" ping -c1 -W1 "$SRV6" >/dev/null 2>&1; then
			NET_OK=1
			return 0
		fi
		sleep 0.2
	done
	# ping may be missing: accept the setup if the addresses are there.
	if timeout 5 ip -n "$NS" addr show | grep -q "$CLI4" && timeout 5 ip -n "$NS6" addr show | grep -q "$CLI6"; then
		NET_OK=1
		return 0
	fi
	NET_ERR="namespaces made but $SRV4/$SRV6 not reachable from them"
	return 1
}

net_cleanup() {
	local ns
	for ns in "${MADE_NS[@]}"; do
		timeout 10 ip netns del "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns"
	done
	[ ${#MADE_NS[@]} -gt 0 ] && rmdir /etc/netns 2>/dev/null
	MADE_NS=()
	return 0
}

# need_net: fails the case when the namespaces are not there.
need_net() {
	[ "$NET_OK" = 1 ] && return 0
	fail "cannot run: $NET_ERR"
	return 1
}

# need_san TOOL...: under TLSSHIM_ASAN=1, the tool must start with the ASan runtime alone preloaded
# (wget, like curl, hangs there in Debian 12): otherwise the case cannot run (counted as failed).
need_san() {
	[ "${#SAN_ENV[@]}" -gt 0 ] || return 0
	local t
	for t in "$@"; do
		if ! timeout 5 env "${SAN_ENV[@]}" LD_PRELOAD="${PRELOAD%%:*}" "$t" --version >/dev/null 2>&1; then
			fail "cannot run: '$t --version' does not finish under the preloaded ASan runtime alone (no shim involved)"
			return 1
		fi
	done
}
# not_under_asan: the container cases test the release build's one-file property.
not_under_asan() {
	[ "${#SAN_ENV[@]}" -gt 0 ] || return 0
	fail "cannot run under TLSSHIM_ASAN=1: the sanitizer build of the .so needs the ASan runtime, so it is not one self-contained file"
	return 1
}

# ---------- running a client the way a container would ----------
CHOME=$T/home
crun() {
	local name=$1 pol=$2
	shift 2
	prun "$name" ip netns exec "${CNS:-$NS}" env -i "PATH=$CPATH" "HOME=$CHOME" "${SAN_ENV[@]}" \
		"LD_PRELOAD=$PRELOAD" "$pol" "$@"
}
# The same without the shim (negative controls).
crun_plain() {
	local name=$1
	shift
	prun "$name" ip netns exec "${CNS:-$NS}" env -i "PATH=$CPATH" "HOME=$CHOME" "$@"
}
# rules NAME-OR-ADDR:PORT [OPTIONS]: a TLSSHIM_RULES assignment trusting the suite's CA.
rules() { printf 'TLSSHIM_RULES=tls %s ca-file=%s%s' "$1" "$CA" "${2:+ $2}"; }

# shim_evidence: the tlsshim: lines of the last run (for failure messages).
shim_evidence() {
	local l
	l=$(grep -a '^tlsshim: ' "$ERR" 2>/dev/null | head -3 | paste -sd';' -)
	[ -n "$l" ] && printf 'stderr: %s' "$l" || printf 'no tlsshim: line on stderr'
}

# ---------- servers ----------
# wait_listen_addr ADDR PORT: something listens on ADDR:PORT (max 10 s).
wait_listen_addr() {
	for _ in $(seq 1 100); do
		ss -Hltn "sport = :$2" 2>/dev/null | grep -qF "$1" && return 0
		sleep 0.1
	done
	return 1
}

# stunnel_front NAME ADDR BACKEND_PORT [FIXED_PORT]: sets PORT.
stunnel_front() {
	local name=$1 addr=$2 backend=$3
	PORT=${4:-$(free_port)}
	cat >"$T/$name.conf" <<EOF
foreground = yes
pid =
debug = 5
[compat]
accept = $addr:$PORT
connect = 127.0.0.1:$backend
cert = $CERTS/server.pem
key = $CERTS/server.key
EOF
	bg "$name" stunnel4 "$T/$name.conf"
	wait_listen_addr "$addr" "$PORT" || { echo "[harness: stunnel not listening on $addr:$PORT]" >>"$T/$name.log"; return 1; }
}

# http_backend NAME: python3's http.server on 127.0.0.1 (plain) serving $DOCROOT; sets PORT.
http_backend() {
	PORT=$(free_port)
	bg "$1" "$PY" -m http.server "$PORT" --bind 127.0.0.1 --directory "$DOCROOT"
	wait_listen "$PORT" || { echo "[harness: http.server not listening]" >>"$T/$1.log"; return 1; }
}

# tls_http NAME [ADDR]: an HTTP server behind stunnel on ADDR (default $SRV4); sets PORT.
tls_http() {
	http_backend "$1-backend" || return 1
	stunnel_front "$1" "${2:-$SRV4}" "$PORT"
}
# tls_stream NAME MODE [ADDR]: tests/compat/tls_server.py (echo, hash, source:N) with TLS of its own
# on ADDR (default $SRV4); sets PORT. (Not stunnel: these modes need TLS half-close.)
tls_stream() {
	local name=$1
	rm -f "$T/$name.port"
	bg "$name" "$PY" -u "$COMPAT/tls_server.py" --host "${3:-$SRV4}" --cert "$CERTS/server.pem" \
		--key "$CERTS/server.key" --mode "$2" --portfile "$T/$name.port"
	PORT=0
	for _ in $(seq 1 100); do
		[ -s "$T/$name.port" ] && { PORT=$(cat "$T/$name.port"); return 0; }
		sleep 0.1
	done
	echo "[harness: $name did not start within 10 s]" >>"$T/$name.log"
	return 1
}
# stunnel_py NAME MODE: servers.py plain MODE (127.0.0.1) behind stunnel on $SRV4; sets PORT.
stunnel_py() {
	start_py "$1-backend" plain --mode "$2" || return 1
	stunnel_front "$1" "$SRV4" "$PORT"
}

# ---------- the compatibility table ----------
ROWS=()
NOT_RUN=()
# Table cells: no '|' (escaped), no newlines, no trailing blanks.
cell() { local c=${1//$'\n'/ }; c=${c//|/\\|}; c=${c%"${c##*[! ]}"}; printf '%s' "$c"; }
record() { ROWS+=("| $(cell "$1") | $(cell "$2") | $(cell "$3") |"); }
ver_dpkg() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }

# ccase CASE PROGRAM VERSION: runs tcase CASE; the row says "works" (plus NOTE), RESULT_AS (for a
# passing check of something that cannot work), or the failure reason.
ccase() {
	local c=$1 prog=$2 ver=$3 line
	# TLSSHIM_COMPAT_CASES=regex: only the matching cases (while developing).
	if [ -n "${TLSSHIM_COMPAT_CASES:-}" ] && ! [[ $c =~ $TLSSHIM_COMPAT_CASES ]]; then return 0; fi
	NOTE=""
	RESULT_AS=""
	tcase "$c"
	line=$(grep -a " $SUITE/$c\(:\|\$\)" "$RESULTS" | tail -1)
	case $line in
	PASS*)
		if [ -n "$RESULT_AS" ]; then
			record "$prog" "$ver" "$RESULT_AS"
		else
			record "$prog" "$ver" "works${NOTE:+ ($NOTE)}"
		fi
		;;
	*) record "$prog" "$ver" "**FAILS**: ${line#*: }" ;;
	esac
}

# not_run PROGRAM VERSION REASON: a case that could not be run (allowed only for node and the JVM
# when their packages cannot be installed). Printed, never counted as passed.
not_run() {
	NOT_RUN+=("| $1 | $2 | NOT RUN: $3 |")
	say "NOT-RUN $SUITE/$1: $3"
}

write_table() {
	local f=$T/results.md
	{
		echo "# tlsshim compatibility results"
		echo
		echo "Generated by \`tests/integration/test_compat.sh\` (TLSSHIM_WRITE_COMPAT=1) on $(date -u +%Y-%m-%d)," \
			"$(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -m), shim $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?')."
		echo "Every client is the unmodified Debian program, run in its own network namespace with only"
		echo "\`LD_PRELOAD\` and \`TLSSHIM_RULES\`/\`TLSSHIM_POLICY\` set; every server speaks TLS only."
		echo
		echo "| program | version | result |"
		echo "| --- | --- | --- |"
		printf '%s\n' "${ROWS[@]}"
		[ ${#NOT_RUN[@]} -gt 0 ] && printf '%s\n' "${NOT_RUN[@]}"
		echo
		echo "The Debian minbase root for the container test is made once by debootstrap (31-61 s measured on"
		echo "the development machine; the whole suite then took 44 s) and cached under build/compat-rootfs"
		echo "(keyed by build/compat-rootfs/stamp); with the cache the suite takes about 15 s."
		printf '%s\n' "${TABLE_NOTES[@]}"
	} >"$f"
	echo "---- compatibility table ----"
	cat "$f"
	echo "---- end of table ----"
	if [ "${TLSSHIM_WRITE_COMPAT:-0}" = 1 ]; then
		cp "$f" "$COMPAT/results.md" && echo "wrote $COMPAT/results.md"
	fi
}
TABLE_NOTES=()
