#!/usr/bin/env bash
# Certificate verification: every bad certificate is refused with ECONNREFUSED and one "tlsshim: "
# line naming the destination and the reason; good chains and the name rules work.
source "$(dirname "$0")/lib.sh" "${1:-build}"

# srv CERTNAME [servers.py args]: python TLS echo server on 127.0.0.1 (+ ::1).
srv() {
	local c=$1
	shift
	tls_py echo "$c" --mode echo --v6 "$@" || { fail "server did not start"; return 1; }
}
# conn RULE_OPTS [tcpclient args...]: tcpclient -4 localhost $PORT through "tls localhost:$PORT RULE_OPTS".
conn() {
	local opts=$1
	shift
	TLSSHIM_RULES="tls localhost:$PORT $opts" srun tc "$CL/tcpclient" -4 -s 'verify-probe\n' -W "$@" localhost "$PORT"
}
# conn_ip ADDR RULE_OPTS: tcpclient -N ADDR $PORT through "tls ADDR:$PORT RULE_OPTS".
conn_ip() {
	local addr=$1 opts=$2
	TLSSHIM_RULES="tls $addr:$PORT $opts" srun tc "$CL/tcpclient" -N -s 'verify-probe\n' -W "$addr" "$PORT"
}
works() { [ "$RC" = 0 ] && grep -q verify-probe "$OUT"; }

t_wrong_name_refused() {
	srv wrongname || return
	conn "ca-file=$ROOT"
	expect_refused "localhost:$PORT" 'wrong\.example' || return
	shim_lines | grep -q 'localhost' && ok || fail "reason does not say which name was wanted (localhost): $(shim_lines)"
}

t_unknown_ca_refused() {
	# no ca-file: the system trust store does not know the test root
	srv leaf || return
	conn ""
	expect_refused "localhost:$PORT" && ok
}

t_expired_refused() {
	srv expired || return
	conn "ca-file=$ROOT"
	expect_refused "localhost:$PORT" 'expired' && ok
}

t_not_yet_valid_refused() {
	srv notyet || return
	conn "ca-file=$ROOT"
	expect_refused "localhost:$PORT" 'not yet valid|not valid yet|future' && ok
}

t_self_signed_refused() {
	srv selfsigned || return
	conn "ca-file=$ROOT"
	expect_refused "localhost:$PORT" && ok
}

t_untrusted_root_refused() {
	srv untrusted || return
	conn "ca-file=$ROOT"
	expect_refused "localhost:$PORT" && ok
}

t_missing_intermediate_refused() {
	srv chained || return # leaf only, the intermediate is not sent
	conn "ca-file=$ROOT"
	expect_refused "localhost:$PORT" && ok
}

t_chained_with_intermediate_works() {
	srv chained --chain "$PKI/chained-full.pem" || return
	conn "ca-file=$ROOT"
	works && ok || fail "leaf + intermediate sent, root in ca-file: should verify (rc=$RC)"
}

t_ca_dir_works() {
	srv leaf || return
	conn "ca-dir=$PKI/cadir"
	works && ok || fail "ca-dir= with a hashed CA directory did not verify (rc=$RC)"
}

t_ip_san_v4_works() {
	srv leaf || return
	conn_ip 127.0.0.1 "ca-file=$ROOT"
	works && ok || fail "127.0.0.1 destination with IP SAN 127.0.0.1 refused (rc=$RC)"
}

t_ip_san_v6_works() {
	srv leaf || return
	TLSSHIM_RULES="tls [::1]:$PORT ca-file=$ROOT" srun tc "$CL/tcpclient" -N -s 'verify-probe\n' -W ::1 "$PORT"
	works && ok || fail "::1 destination with IP SAN ::1 refused (rc=$RC)"
}

t_ip_dest_vs_dns_text_san_refused() {
	srv dnsip || return # SAN is DNS:"127.0.0.1", no IP SAN
	conn_ip 127.0.0.1 "ca-file=$ROOT"
	expect_refused "127\.0\.0\.1:$PORT" && ok
}

t_cn_only_refused() {
	srv cnonly || return # CN=localhost, no SAN: no CN fallback
	conn "ca-file=$ROOT"
	expect_refused "localhost:$PORT" && ok
}

t_ip_dest_never_uses_cn() {
	srv cnonly || return
	conn_ip 127.0.0.1 "ca-file=$ROOT"
	expect_refused "127\.0\.0\.1:$PORT" && ok
}

t_name_override_works() {
	srv dnsonly || return # DNS:localhost only
	conn_ip 127.0.0.1 "ca-file=$ROOT"
	expect_refused "127\.0\.0\.1:$PORT" || return # control: without name= the address is checked
	conn_ip 127.0.0.1 "ca-file=$ROOT name=localhost"
	works && ok || fail "name=localhost for 127.0.0.1 with a DNS:localhost cert refused (rc=$RC)"
}

t_ip_san_other_address() {
	# the ip2 leaf has only IP:127.0.0.2
	tls_py echo ip2 --mode echo --host 127.0.0.2 || { fail "server on 127.0.0.2 did not start"; return; }
	conn_ip 127.0.0.2 "ca-file=$ROOT"
	works || { fail "127.0.0.2 with IP SAN 127.0.0.2 refused (rc=$RC)"; return; }
	stop_case_servers
	tls_py echo ip2 --mode echo || { fail "server did not start"; return; }
	conn_ip 127.0.0.1 "ca-file=$ROOT"
	expect_refused "127\.0\.0\.1:$PORT" && ok
}

t_wildcard_names() {
	srv wildcard || return # DNS:*.example.test
	conn_ip 127.0.0.1 "ca-file=$ROOT name=foo.example.test"
	works || { fail "name=foo.example.test vs *.example.test refused (rc=$RC)"; return; }
	# with name= the line may name the destination by that name; it must still show port and address
	local dest=":$PORT\b.*127\.0\.0\.1|127\.0\.0\.1:$PORT"
	conn_ip 127.0.0.1 "ca-file=$ROOT name=example.test"
	expect_refused "$dest" || return
	conn_ip 127.0.0.1 "ca-file=$ROOT name=a.b.example.test"
	expect_refused "$dest" && ok
}

t_verify_off_connects_and_warns() {
	srv selfsigned || return
	conn "verify=off"
	works || { fail "verify=off against a self-signed cert did not connect (rc=$RC)"; return; }
	[ "$(n_shim_lines)" -ge 1 ] && ok || fail "verify=off printed no 'tlsshim: ' warning"
}

t_verify_off_warns_every_connect() {
	srv selfsigned || return
	TLSSHIM_RULES="tls localhost:$PORT verify=off" srun tc "$CL/tcpclient" -4 -n 3 -s 'verify-probe\n' -W localhost "$PORT"
	[ "$RC" = 0 ] || { fail "verify=off: 3 connections did not all work"; return; }
	[ "$(n_shim_lines)" -ge 3 ] && ok || fail "verify=off warned $(n_shim_lines) times for 3 connections"
}

t_curl_wrong_name_fails() {
	need curl || return
	tls_py www wrongname --mode http --v6 || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun curl curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" != 0 ] || { fail "curl succeeded against a wrong-name certificate"; return; }
	grep -q tlsshim-test-page "$OUT" && { fail "page delivered despite wrong name"; return; }
	shim_lines | grep -q "localhost:$PORT" && ok || fail "no 'tlsshim: ' line naming localhost:$PORT in curl's stderr"
}

tcase wrong_name_refused
tcase unknown_ca_refused
tcase expired_refused
tcase not_yet_valid_refused
tcase self_signed_refused
tcase untrusted_root_refused
tcase missing_intermediate_refused
tcase chained_with_intermediate_works
tcase ca_dir_works
tcase ip_san_v4_works
tcase ip_san_v6_works
tcase ip_dest_vs_dns_text_san_refused
tcase cn_only_refused
tcase ip_dest_never_uses_cn
tcase name_override_works
tcase ip_san_other_address
tcase wildcard_names
tcase verify_off_connects_and_warns
tcase verify_off_warns_every_connect
tcase curl_wrong_name_fails
finish
