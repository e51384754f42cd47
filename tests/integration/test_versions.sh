#!/usr/bin/env bash
# Protocol versions and cipher suites: TLS 1.2 and 1.3 work, min-/max-version are honoured, and only
# AEAD suites with ECDHE key exchange are accepted.
source "$(dirname "$0")/lib.sh" "${1:-build}"

GET='GET / HTTP/1.0\r\nHost: localhost\r\n\r\n'

# www_get RULE_OPTS: tcpclient GET through the shim to the current s_server $PORT.
www_get() {
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT $1" srun tc "$CL/tcpclient" -4 -s "$GET" localhost "$PORT"
}

# page_proto: the protocol line of the s_server -www page ("New, TLSv1.3, Cipher is ...").
page_proto() { grep -ao 'New, TLSv1\.[0-9], Cipher is [A-Za-z0-9_-]*' "$OUT" | head -1; }

t_tls12_only_server() {
	need openssl || return
	start_s_server www leaf -www -tls1_2 || { fail "s_server did not start"; return; }
	www_get ""
	[ "$RC" = 0 ] && page_proto | grep -q 'TLSv1.2' && ok "$(page_proto)" || fail "TLS 1.2-only server: no 1.2 page (rc=$RC, '$(page_proto)')"
}

t_tls13_only_server() {
	need openssl || return
	start_s_server www leaf -www -tls1_3 || { fail "s_server did not start"; return; }
	www_get ""
	[ "$RC" = 0 ] && page_proto | grep -q 'TLSv1.3' && ok "$(page_proto)" || fail "TLS 1.3-only server: no 1.3 page (rc=$RC, '$(page_proto)')"
}

t_default_prefers_tls13() {
	need openssl || return
	start_s_server www leaf -www || { fail "s_server did not start"; return; }
	www_get ""
	[ "$RC" = 0 ] && page_proto | grep -q 'TLSv1.3' && ok || fail "default did not negotiate TLS 1.3 with a 1.2+1.3 server (rc=$RC, '$(page_proto)')"
}

t_min13_refuses_tls12_server() {
	need openssl || return
	start_s_server www leaf -www -tls1_2 || { fail "s_server did not start"; return; }
	www_get "min-version=1.3"
	expect_refused "localhost:$PORT" && ok
}

t_max12_negotiates_tls12() {
	need openssl || return
	start_s_server www leaf -www || { fail "s_server did not start"; return; }
	www_get "max-version=1.2"
	[ "$RC" = 0 ] && page_proto | grep -q 'TLSv1.2' && ok || fail "max-version=1.2 did not negotiate 1.2 (rc=$RC, '$(page_proto)')"
}

t_max12_refuses_tls13_server() {
	need openssl || return
	start_s_server www leaf -www -tls1_3 || { fail "s_server did not start"; return; }
	www_get "max-version=1.2"
	expect_refused "localhost:$PORT" && ok
}

t_cbc_only_ecdhe_server_refused() {
	need openssl || return
	start_s_server www leaf -www -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256 || { fail "s_server did not start"; return; }
	www_get ""
	expect_refused "localhost:$PORT" && ok
}

t_cbc_only_rsa_kx_server_refused() {
	need openssl || return
	start_s_server www rsa -www -tls1_2 -cipher AES128-SHA256 || { fail "s_server did not start"; return; }
	www_get ""
	expect_refused "localhost:$PORT" && ok
}

t_gcm_without_ecdhe_refused() {
	need openssl || return
	start_s_server www rsa -www -tls1_2 -cipher AES128-GCM-SHA256 || { fail "s_server did not start"; return; }
	www_get ""
	expect_refused "localhost:$PORT" && ok
}

t_rsa_leaf_ecdhe_gcm_works() {
	need openssl || return
	start_s_server www rsa -www -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256 || { fail "s_server did not start"; return; }
	www_get ""
	[ "$RC" = 0 ] && page_proto | grep -q 'ECDHE-RSA-AES128-GCM-SHA256' && ok ||
		fail "RSA-2048 leaf with ECDHE-RSA-AES128-GCM-SHA256 failed (rc=$RC, '$(page_proto)')"
}

t_rsa_leaf_tls13_works() {
	need openssl || return
	start_s_server www rsa -www -tls1_3 || { fail "s_server did not start"; return; }
	www_get ""
	[ "$RC" = 0 ] && page_proto | grep -q 'TLSv1.3' && ok || fail "RSA-2048 leaf over TLS 1.3 failed (rc=$RC)"
}

t_python_tls12_server() {
	tls_py echo leaf --mode echo --max 1.2 || { fail "server did not start"; return; }
	TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun tc "$CL/tcpclient" -4 -s 'py12\n' -W localhost "$PORT"
	[ "$RC" = 0 ] && grep -q py12 "$OUT" && grep -q '"version": "TLSv1.2"' "$T/echo.log" && ok ||
		fail "python TLS 1.2 server echo failed (rc=$RC)"
}

tcase tls12_only_server
tcase tls13_only_server
tcase default_prefers_tls13
tcase min13_refuses_tls12_server
tcase max12_negotiates_tls12
tcase max12_refuses_tls13_server
tcase cbc_only_ecdhe_server_refused
tcase cbc_only_rsa_kx_server_refused
tcase gcm_without_ecdhe_refused
tcase rsa_leaf_ecdhe_gcm_works
tcase rsa_leaf_tls13_works
tcase python_tls12_server
finish
