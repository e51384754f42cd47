#!/usr/bin/env bash
# Which name is verified and which rule applies when several names resolve to one address (issue 11
# item 9; README "Which name is verified"). The file runs in its own mount namespace with a private
# /etc/hosts (bind-mounted) mapping good.names.test, evil.names.test, a.corp.example and other.example
# to 127.0.0.1, so it depends on nothing in this machine's /etc/hosts. Servers present certificates this
# file generates (signed by the test root) that name exactly one of those names.
if [ "${TLSSHIM_NAMES_NS:-}" != 1 ]; then
	hosts=$(mktemp "${TMPDIR:-/tmp}/tlsshim-names-hosts.XXXXXX")
	printf '%s\n' '127.0.0.1 localhost' '::1 localhost ip6-localhost ip6-loopback' \
		'127.0.0.1 good.names.test evil.names.test a.corp.example other.example' >"$hosts"
	if unshare -m true 2>/dev/null; then
		# shellcheck disable=SC2016
		exec unshare -m -- bash -c 'mount --bind "$1" /etc/hosts; r=$?; rm -f "$1"; shift
			[ "$r" = 0 ] || export TLSSHIM_NAMES_NS_ERR="mount --bind of a private /etc/hosts failed"
			TLSSHIM_NAMES_NS=1 exec bash "$@"' names-ns "$hosts" "$0" "$@"
	fi
	rm -f "$hosts"
	export TLSSHIM_NAMES_NS_ERR="unshare -m (a private mount namespace) is not possible here: run as root"
	export TLSSHIM_NAMES_NS=1
fi
source "$(dirname "$0")/lib.sh" "${1:-build}"

NC=$CL/namesclient
CERTS=$T/names-certs
mkdir -p "$CERTS"
# cert NAME SAN: a leaf for SAN signed by the test root.
cert() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$CERTS/$1.key" 2>/dev/null &&
		openssl req -new -key "$CERTS/$1.key" -subj "/CN=$1" -out "$CERTS/$1.csr" 2>/dev/null &&
		printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$2" >"$CERTS/$1.ext" &&
		openssl x509 -req -in "$CERTS/$1.csr" -CA "$ROOT" -CAkey "$PKI/root.key" -CAcreateserial -days 30 \
			-sha256 -extfile "$CERTS/$1.ext" -out "$CERTS/$1.pem" 2>/dev/null
}
cert good DNS:good.names.test && cert evil DNS:evil.names.test || echo "test_names: generating certificates failed" >&2

# setup_ok: the private /etc/hosts is in place (else the case fails with why).
setup_ok() {
	if [ -n "${TLSSHIM_NAMES_NS_ERR:-}" ]; then fail "$TLSSHIM_NAMES_NS_ERR"; return 1; fi
	if [ "$(getent ahostsv4 evil.names.test | awk 'NR==1 {print $1}')" != 127.0.0.1 ]; then
		fail "the private /etc/hosts does not map evil.names.test to 127.0.0.1"
		return 1
	fi
	[ -s "$CERTS/evil.pem" ] || { fail "the test certificates were not generated"; return 1; }
}
# srv CERT [MODE]: python TLS server presenting CERT (good or evil) on 127.0.0.1; sets PORT.
srv() {
	start_py srv tls --cert "$CERTS/$1.pem" --key "$CERTS/$1.key" --mode "${2:-echo}" ||
		{ fail "server did not start"; return 1; }
}
# plain_srv: python plain TCP echo server; sets PORT.
plain_srv() { start_py plain plain --mode echo || { fail "server did not start"; return 1; }; }
nc_errno() { grep -ao 'namesclient: connect: errno=E[A-Z]*' "$ERR" | head -1 | sed 's/.*errno=//'; }
# refused_eacces WHAT...: the last run's connect failed with EACCES and printed one tlsshim: line naming
# the destination and every regex given.
refused_eacces() {
	local e n
	e=$(nc_errno)
	[ -z "$e" ] && e=$(grep -ao 'errno=E[A-Z]*' "$OUT" "$ERR" | head -1 | sed 's/.*errno=//')
	if [ "$RC" = 0 ] || [ "$e" != EACCES ]; then
		fail "expected connect to fail with EACCES, got rc=$RC errno=${e:-none}"
		return 1
	fi
	n=$(n_shim_lines)
	[ "$n" = 1 ] || { fail "expected one tlsshim: line, got $n"; return 1; }
	shim_lines | grep -q "127.0.0.1:$PORT" || { fail "the line does not name the destination: $(shim_lines)"; return 1; }
	local w
	for w in "$@"; do
		shim_lines | grep -Eq -- "$w" || { fail "the line does not say /$w/: $(shim_lines)"; return 1; }
	done
}
echoed() { [ "$RC" = 0 ] && grep -q names-probe "$OUT"; }
RULE_ANY() { echo "tls *:$PORT ca-file=$ROOT"; }

# The reproduction from the issue: the program resolves the name it means (good), then another name for
# another purpose (evil), and connects to good's address. The server holds a certificate for evil only.
# Before the fix the shim verified the most recently resolved name (evil) and accepted the impostor.
t_attack_live_result_verifies_its_own_name() {
	setup_ok && srv evil || return
	TLSSHIM_RULES=$(RULE_ANY) srun nc "$NC" -r good.names.test,evil.names.test -C good.names.test "$PORT"
	if [ "$RC" = 0 ]; then fail "connected to a server whose certificate names only evil.names.test"; return; fi
	[ "$(nc_errno)" = ECONNREFUSED ] || { fail "expected ECONNREFUSED (name mismatch), got $(nc_errno)"; return; }
	shim_lines | grep -q 'good\.names\.test' && shim_lines | grep -q 'evil\.names\.test' && ok ||
		fail "the refusal does not say it wanted good.names.test and got evil.names.test: $(shim_lines)"
}

t_attack_copied_sockaddr_refused() {
	setup_ok && srv evil || return
	TLSSHIM_RULES=$(RULE_ANY) srun nc "$NC" -c -r good.names.test,evil.names.test -C good.names.test "$PORT"
	refused_eacces 'good\.names\.test' 'evil\.names\.test' 'name=' && ok
}

t_attack_python_refused() {
	setup_ok && srv evil || return
	TLSSHIM_RULES=$(RULE_ANY) srun py "$PY" -c '
import socket, sys
port = int(sys.argv[1])
meant = socket.getaddrinfo("good.names.test", port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
socket.getaddrinfo("evil.names.test", port, socket.AF_INET, socket.SOCK_STREAM)
s = socket.socket()
try:
    s.connect(meant)
except OSError as e:
    print("errno=" + __import__("errno").errorcode[e.errno]); sys.exit(3)
s.sendall(b"names-probe\n"); print(s.recv(100))' "$PORT"
	refused_eacces 'good\.names\.test' 'evil\.names\.test' && ok
}

t_attack_other_thread_refused() {
	# the lookups on another thread: the candidates are the process's, whoever resolved them
	setup_ok && srv evil || return
	TLSSHIM_RULES=$(RULE_ANY) srun nc "$NC" -t -c -r good.names.test,evil.names.test -C good.names.test "$PORT"
	refused_eacces 'good\.names\.test' 'evil\.names\.test' && ok
}

t_live_result_of_the_servers_name_works() {
	setup_ok && srv evil || return
	TLSSHIM_RULES=$(RULE_ANY) srun nc "$NC" -r good.names.test,evil.names.test -C evil.names.test "$PORT"
	echoed && ok || fail "connect with evil.names.test's own getaddrinfo result should verify evil.names.test (rc=$RC)"
}

t_one_candidate_copied_other_thread_works() {
	setup_ok && srv good || return
	TLSSHIM_RULES=$(RULE_ANY) srun nc "$NC" -t -c -r good.names.test -C good.names.test "$PORT"
	echoed && ok || fail "one name resolved (on another thread), copied sockaddr: should verify it (rc=$RC)"
}

t_curl_resolver_thread_one_name_works() {
	need curl || return
	setup_ok && srv good http || return
	TLSSHIM_RULES=$(RULE_ANY) srun curl curl -sS --max-time 10 "http://good.names.test:$PORT/"
	[ "$RC" = 0 ] && grep -q tlsshim-test-page "$OUT" && ok || fail "curl to good.names.test (one candidate) failed (rc=$RC)"
}

t_asyncio_two_names_refused_one_name_works() {
	setup_ok && srv good || return
	local prog='
import asyncio, errno, socket, sys
async def main(port, other):
    loop = asyncio.get_running_loop()
    if other:
        await loop.getaddrinfo(other, port, family=socket.AF_INET)   # on the executor thread
    try:
        r, w = await asyncio.open_connection("good.names.test", port, family=socket.AF_INET)
    except OSError as e:
        print("errno=" + errno.errorcode.get(e.errno, str(e.errno))); sys.exit(3)
    w.write(b"names-probe\n"); await w.drain(); w.write_eof()
    print((await r.read()).decode()); w.close()
asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else ""))'
	TLSSHIM_RULES=$(RULE_ANY) srun py1 "$PY" -c "$prog" "$PORT"
	echoed || { fail "asyncio with one name resolved should verify it (rc=$RC)"; return; }
	TLSSHIM_RULES=$(RULE_ANY) srun py2 "$PY" -c "$prog" "$PORT" evil.names.test
	refused_eacces 'good\.names\.test' 'evil\.names\.test' && ok
}

# tls *.corp.example + plain *: the other name must not turn the corp destination plain.
RULES_SUFFIX() { echo "tls *.corp.example:$PORT ca-file=$ROOT; plain *:$PORT"; }

t_suffix_rule_not_weakened_by_other_name() {
	setup_ok && plain_srv || return
	TLSSHIM_RULES=$(RULES_SUFFIX) srun nc "$NC" -c -r a.corp.example,other.example -C a.corp.example "$PORT"
	if echoed; then fail "the probe went in clear to a.corp.example's address (a tls rule)"; return; fi
	refused_eacces 'a\.corp\.example: tls' 'other\.example: plain' 'different rules' && ok
}

t_suffix_live_results_pick_their_rules() {
	setup_ok && plain_srv || return
	TLSSHIM_RULES=$(RULES_SUFFIX) srun corp "$NC" -r a.corp.example,other.example -C a.corp.example "$PORT"
	if echoed; then fail "a.corp.example's own result went plain"; return; fi
	[ "$(nc_errno)" = ECONNREFUSED ] || { fail "a.corp.example: expected a TLS handshake to fail against the plain server (ECONNREFUSED), got rc=$RC $(nc_errno)"; return; }
	TLSSHIM_RULES=$(RULES_SUFFIX) srun other "$NC" -r a.corp.example,other.example -C other.example "$PORT"
	echoed && ok || fail "other.example's own result should be plain (rc=$RC)"
}

t_rule_for_the_address_with_name_settles_it() {
	# the fix the refusal names: a rule written for the address with name=
	setup_ok && srv evil || return
	TLSSHIM_RULES="tls 127.0.0.1:$PORT name=evil.names.test ca-file=$ROOT; $(RULE_ANY)" \
		srun nc "$NC" -c -r good.names.test,evil.names.test -C good.names.test "$PORT"
	echoed && ok || fail "a rule for the address with name= should apply whatever was resolved (rc=$RC)"
}

t_rule_written_with_the_name_settles_it() {
	setup_ok && srv evil || return
	TLSSHIM_RULES="tls evil.names.test:$PORT ca-file=$ROOT" \
		srun nc "$NC" -c -r good.names.test,evil.names.test -C good.names.test "$PORT"
	echoed && ok || fail "a rule written with a host name verifies that name, both candidates pick it (rc=$RC)"
}

t_same_plain_rule_not_refused() {
	setup_ok && plain_srv || return
	TLSSHIM_RULES="plain *:$PORT" srun nc "$NC" -c -r good.names.test,evil.names.test -C good.names.test "$PORT"
	echoed && [ "$(n_shim_lines)" = 0 ] && ok || fail "every candidate picks plain: nothing to refuse (rc=$RC)"
}

t_udp_deny_of_any_candidate_applies() {
	setup_ok || return
	local p
	p=$(free_port)
	PORT=$p
	TLSSHIM_RULES="deny *.corp.example:$p; plain *:$p" srun udp "$PY" -c '
import errno, socket, sys
port = int(sys.argv[1])
a = socket.getaddrinfo(sys.argv[2], port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
socket.getaddrinfo(sys.argv[3], port, socket.AF_INET, socket.SOCK_DGRAM)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b"names-probe", a); print("sent")
except OSError as e:
    print("errno=" + errno.errorcode[e.errno]); sys.exit(3)' "$p" a.corp.example other.example
	grep -q 'errno=EACCES' "$OUT" || { fail "a datagram to an address a.corp.example (deny) also resolved to was sent: $(cat "$OUT")"; return; }
	shim_lines | grep -q 'denied' && ok || fail "no deny line: $(shim_lines)"
}

t_audit_reports_the_refusal() {
	setup_ok && srv evil || return
	TLSSHIM_MODE=audit TLSSHIM_RULES=$(RULE_ANY) srun nc "$NC" -c -r good.names.test,evil.names.test -C good.names.test "$PORT"
	grep -q "tlsshim: audit: connect dest=127.0.0.1:$PORT name=- action=refused-names pid=[0-9]* rule=none (enforcing would refuse: .*good.names.test, evil.names.test" "$ERR" ||
		{ fail "no audit line with action=refused-names: $(grep -a 'audit' "$ERR" | head -3)"; return; }
	grep -q 'would refuse (several resolved names)' "$ERR" && ok || fail "the summary does not say it would refuse"
}

t_info_line_when_a_second_name_arrives() {
	setup_ok && srv evil || return
	TLSSHIM_LOG=info TLSSHIM_RULES=$(RULE_ANY) srun nc "$NC" -r good.names.test,evil.names.test -C evil.names.test "$PORT"
	echoed || { fail "connect failed (rc=$RC)"; return; }
	[ "$(grep -c 'also resolved to' "$ERR")" = 1 ] && grep -q 'evil.names.test resolves to 127.0.0.1, which good.names.test also resolved to' "$ERR" &&
		ok || fail "expected one info line naming both names: $(grep -a 'resolve' "$ERR" | head -3)"
}

tcase attack_live_result_verifies_its_own_name
tcase attack_copied_sockaddr_refused
tcase attack_python_refused
tcase attack_other_thread_refused
tcase live_result_of_the_servers_name_works
tcase one_candidate_copied_other_thread_works
tcase curl_resolver_thread_one_name_works
tcase asyncio_two_names_refused_one_name_works
tcase suffix_rule_not_weakened_by_other_name
tcase suffix_live_results_pick_their_rules
tcase rule_for_the_address_with_name_settles_it
tcase rule_written_with_the_name_settles_it
tcase same_plain_rule_not_refused
tcase udp_deny_of_any_candidate_applies
tcase audit_reports_the_refusal
tcase info_line_when_a_second_name_arrives
finish
