#!/usr/bin/env bash
# The `tlsshim` command (tools/): run, check, explain, probe, certs, version, the man pages and
# `make install`, against real servers (openssl s_server with the test PKI and with `tlsshim certs`
# output), real programs (curl, a static and a setuid binary) and real policy files.
source "$(dirname "$0")/lib.sh" "${1:-build}"

TLSSHIM=$BUILD/tlsshim
# cli NAME ARGS...: runs the command (not preloaded itself) with timeout; sets RC, OUT, ERR.
cli() {
	local name=$1
	shift
	prun "$name" "$TLSSHIM" "$@"
}
# want RC [REGEX...]: the last run exited RC and its stdout+stderr match every REGEX (grep -E).
# Returns 0, or calls fail and returns 1.
want() {
	local rc=$1 re
	shift
	if [ "$RC" != "$rc" ]; then
		fail "exit status $RC, expected $rc"
		return 1
	fi
	for re in "$@"; do
		if ! cat "$OUT" "$ERR" | grep -Eq -- "$re"; then
			fail "output lacks /$re/"
			return 1
		fi
	done
	return 0
}
# lacks REGEX: neither stdout nor stderr of the last run matches.
lacks() {
	if cat "$OUT" "$ERR" | grep -Eq -- "$1"; then
		fail "output unexpectedly matches /$1/"
		return 1
	fi
	return 0
}
# re_escape TEXT: TEXT as a literal grep -E pattern.
re_escape() { printf '%s' "$1" | sed 's/[][\\.*^$+?(){}|/]/\\&/g'; }
# spki_pin PEM: the base64 SHA-256 of the certificate's SubjectPublicKeyInfo, computed by openssl.
spki_pin() {
	openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
}
# www NAME CERT KEY [s_server args...]: openssl s_server -www with arbitrary files; sets PORT.
www() {
	local name=$1 cert=$2 key=$3
	shift 3
	PORT=$(free_port)
	bg "$name" openssl s_server -accept "127.0.0.1:$PORT" -cert "$cert" -key "$key" -www "$@"
	wait_listen "$PORT" || { fail "s_server did not listen"; return 1; }
}
page_ok() { grep -q 's_server' "$OUT"; }
# via_run NAME RULE CMD...: CMD through `tlsshim run --rule RULE`. Under TLSSHIM_ASAN=1 the command is
# itself ASan-linked and cannot hand the ASan runtime to an uninstrumented CMD, so there the library is
# preloaded by lib.sh's srun instead (the `run` plumbing is still covered by the other cases).
via_run() {
	local name=$1 rule=$2
	shift 2
	if [ "${TLSSHIM_ASAN:-0}" = 1 ]; then
		TLSSHIM_RULES=$rule srun "$name" "$@"
	else
		cli "$name" run --rule "$rule" -- "$@"
	fi
}

# ---------------- usage and help ----------------

t_help_and_bad_usage() {
	need "$TLSSHIM" || return
	local c
	cli help "$TLSSHIM" --help
	cli help --help
	want 0 'usage: tlsshim COMMAND' 'probe' 'certs' || return
	for c in run check explain probe certs version; do
		cli "help-$c" "$c" --help
		want 0 "usage: tlsshim $c" || return
	done
	cli nocmd
	want 2 'usage: tlsshim' || return
	cli unknown frobnicate
	want 2 "unknown command 'frobnicate'" || return
	cli check-badopt check --bogus
	want 2 "unknown option '--bogus'" "tlsshim check --help" || return
	cli explain-noarg explain
	want 2 'missing HOST:PORT' || return
	cli explain-unbracketed explain ::1:443
	want 2 'IPv6 addresses go in brackets' || return
	cli probe-badport probe localhost:99999
	want 2 'port must be a number' || return
	cli probe-badtimeout probe --timeout -3 localhost:443
	want 2 'timeout' || return
	cli certs-noarg certs
	want 2 'missing DIR' || return
	cli certs-badip certs "$T/x" --ip 300.1.1.1
	want 2 'not an IPv4 or IPv6 address' || return
	cli run-noprog run --rule 'tls localhost:1'
	want 2 'missing the program' || return
	cli run-badlog run --log loud --rule 'tls localhost:1' -- true
	want 2 'not a level' || return
	cli version-extra version extra
	want 2 || return
	ok
}

# ---------------- version ----------------

t_version() {
	need "$TLSSHIM" || return
	cli version version
	want 0 '^tlsshim 0\.1\.0$' '^wolfSSL [0-9]+\.[0-9]+\.[0-9]+' '^AES-NI: (yes|no) \(' || return
	# The build script enables AES-NI, so the answer follows the CPU's "aes" flag.
	if grep -qw aes /proc/cpuinfo; then
		want 0 '^AES-NI: yes \(built in, CPU supports it\)$' || return
	else
		want 0 '^AES-NI: no \(built in, but this CPU lacks it' || return
	fi
	local lib
	lib=$(realpath "$SHIM")
	grep -qF "library: $lib" "$OUT" && ok || fail "version does not name the library beside the command ($lib)"
}

# ---------------- check ----------------

t_check_clean_policy() {
	need "$TLSSHIM" || return
	printf '# a clean policy\ndefaults ca-file=%s\ntls localhost:8443 alpn=http/1.1\ntls 10.0.0.0/8:443 name=svc.internal\ndeny *:25\nplain *:*\n' \
		"$ROOT" >"$T/clean.policy"
	cli check check "$T/clean.policy"
	want 0 'clean.policy: 4 rules, 0 errors, 0 warnings' || return
	cli strict check --strict "$T/clean.policy"
	want 0 || return
	ok
}

t_check_reports_every_error() {
	need "$TLSSHIM" || return
	local f=$T/broken.policy
	{
		echo 'tls localhost:8443'
		echo 'tls localhost:99999'                # port error: line 2, column 15
		echo 'tls example.com:443 verify=maybe'   # value error: line 3, column 28
		echo 'bogus example.com'                  # action error: line 4, column 1
		echo 'tls example.org:443 name="unterminated' # line 5, column 26
		echo 'deny *:25'
	} >"$f"
	cli check check "$f"
	want 1 "^$f:2:15: error: invalid port '1-?99999'|^$f:2:15: error: invalid port" \
		"^$f:3:28: error: invalid verify value 'maybe'" \
		"^$f:4:1: error: unknown action 'bogus'" \
		"^$f:5:26: error: unterminated quoted value" \
		"2 rules, 4 errors" || return
	# The same in TLSSHIM_RULES: the "line" is the number of the ';'-separated rule.
	TLSSHIM_RULES='tls a.example:1; tls b.example:0; deny *:25; frob' cli env-check check
	want 1 '^TLSSHIM_RULES:2:16: error: invalid port' '^TLSSHIM_RULES:4:2: error: unknown action' || return
	# A file that is not there is an error about the file.
	cli missing check "$T/nope.policy"
	want 1 "nope.policy: error: cannot open the policy file" && ok
}

t_check_lint_warnings() {
	need "$TLSSHIM" || return
	local f=$T/lint.policy
	: >"$T/pw.txt"
	{
		echo "defaults ca-file=$T/no-such-ca.pem"                         # 1: missing ca-file (reported once)
		echo 'tls localhost:8443 alpn=h2,http/1.1'                          # 2: alpn-h2
		echo 'tls localhost:8443 alpn=http/1.1'                             # 3: shadowed by 2
		echo 'tls 127.0.0.1:9000 verify=off'                                # 4: verify-off
		echo 'tls 10.0.0.0/8:*'                                             # 5: no-name
		echo 'tls 10.1.0.0/16:443 name=svc.internal'                        # 6: shadowed by 5
		echo 'tls *.corp.example:* name=host.123'                           # 7: bad-name
		echo "tls db.example:5432 cert=$T/no.pem key=$T/no.key"             # 8: missing cert and key
		echo "tls ldap.example:636 ca-dir=$T/pw.txt"                        # 9: ca-dir not a directory
		echo 'tls *.a.corp.example:*'                                       # 10: shadowed by 7
	} >"$f"
	cli lint check "$f"
	want 0 \
		"^$f:1:10: warning: ca-file=$T/no-such-ca.pem: does not exist \[missing-file\]" \
		"^$f:2:20: warning: alpn=h2,http/1.1 offers h2.*\[alpn-h2\]" \
		"^$f:3:5: warning: this rule never applies: the earlier rule at $f:2 .*\[shadowed\]" \
		"^$f:4:20: warning: verify=off.*\[verify-off\]" \
		"^$f:5:5: warning: tls 10.0.0.0/8:\* has no name=.*IP SAN.*\[no-name\]" \
		"^$f:6:5: warning: .*earlier rule at $f:5 .*\[shadowed\]" \
		"^$f:7:22: warning: name=host.123 is not a valid host name \[bad-name\]|^$f:7:22: warning: name=host.123 is not a valid host name.*\[bad-name\]" \
		"^$f:8:21: warning: cert=$T/no.pem: does not exist" \
		"^$f:8:[0-9]+: warning: key=$T/no.key: does not exist" \
		"^$f:9:22: warning: ca-dir=$T/pw.txt: is not a directory" \
		"^$f:10:5: warning: .*earlier rule at $f:7 .*\[shadowed\]" \
		"9 rules, 0 errors, 11 warnings" || return
	[ "$(grep -c 'no-such-ca.pem' "$OUT")" = 1 ] || { fail "a defaults warning was repeated for every rule"; return; }
	cli lint-strict check --strict "$f"
	want 1 'failing: --strict' || return
	if [ "$(id -u)" != 0 ]; then
		echo x >"$T/secret.pem"
		chmod 000 "$T/secret.pem"
		printf 'tls a.example:443 ca-file=%s\n' "$T/secret.pem" >"$T/unreadable.policy"
		cli unreadable check "$T/unreadable.policy"
		want 0 'unreadable-file' || return
	fi
	ok
}

# starttls= on an implicit-TLS port, and a deny rule covering a proxy= rule's proxy (the first rule that
# matches the proxy decides: an earlier plain rule for it means no warning).
t_check_dialogue_warnings() {
	need "$TLSSHIM" || return
	local f=$T/dlg.policy
	{
		echo 'tls mail.example:465 starttls=smtp name=mail.example'          # 1: implicit-tls-port
		echo 'tls imap.example:1-1000 starttls=imap'                         # 2: 993 in the range
		echo 'tls pop.example:110 starttls=pop3'                             # 3: fine
		echo 'tls ldap.example:636 starttls=ldap'                            # 4: implicit-tls-port
		echo 'tls db.example:5432 starttls=postgres'                         # 5: fine (no implicit port)
		echo 'tls a.example:443 proxy=http://10.0.0.1:3128'                  # 6: proxy-denied (line 10)
		echo 'tls b.example:443 proxy=socks5://proxy.corp:1080'              # 7: plain rule first: fine
		echo 'tls c.example:443 proxy=socks5h://[::ffff:10.0.0.2]:1080'      # 8: mapped: proxy-denied
		echo 'plain proxy.corp:*'                                            # 9
		echo 'deny 10.0.0.0/8:*'                                             # 10
		echo 'tls d.example:443 proxy=http://192.0.2.1:3128'                 # 11: nothing denies it
	} >"$f"
	cli dlg check "$f"
	want 0 \
		"^$f:1:22: warning: starttls=smtp on port 465: that is the implicit-TLS port.*\[implicit-tls-port\]" \
		"^$f:2:25: warning: starttls=imap on port 993 \(the rule's ports 1-1000 include it\).*\[implicit-tls-port\]" \
		"^$f:4:22: warning: starttls=ldap on port 636.*\[implicit-tls-port\]" \
		"^$f:6:19: warning: proxy=http://10.0.0.1:3128 is covered by the deny rule at $f:10 \(deny 10.0.0.0/8:\*\).*\[proxy-denied\]" \
		"^$f:8:19: warning: proxy=socks5://10.0.0.2:1080 is covered by the deny rule at $f:10.*\[proxy-denied\]" \
		"11 rules, 0 errors, 5 warnings" || return
	grep -E "^$f:(3|5|7|11):" "$OUT" && { fail "a warning for a rule that is fine"; return; }
	# a trailing deny *:* covers every proxy not matched before it
	echo 'deny *:*' >>"$f"
	cli dlg2 check "$f"
	want 0 "^$f:11:19: warning: proxy=http://192.0.2.1:3128 is covered by the deny rule at $f:12 \(deny \*:\*\)" \
		"12 rules, 0 errors, 6 warnings" || return
	ok
}

t_check_json() {
	need "$TLSSHIM" || return
	printf 'tls localhost:8443 verify=off\ntls localhost:8443\nfrob x\n' >"$T/j.policy"
	cli json check --json "$T/j.policy"
	[ "$RC" = 1 ] || { fail "exit $RC, expected 1 (one error)"; return; }
	"$PY" -m json.tool "$OUT" >/dev/null || { fail "--json output does not parse with python3 -m json.tool"; return; }
	"$PY" - "$OUT" "$T/j.policy" <<'PY' || { fail "JSON content is not as expected"; return; }
import json, sys
d = json.load(open(sys.argv[1]))
f = sys.argv[2]
assert d["ok"] is False and d["rules"] == 2, d
assert [(e["file"], e["line"], e["column"]) for e in d["errors"]] == [(f, 3, 1)], d["errors"]
codes = sorted(w["code"] for w in d["warnings"])
assert codes == ["shadowed", "verify-off"], codes
assert all(set(w) == {"file", "line", "column", "code", "message"} for w in d["warnings"])
PY
	# Clean JSON with --strict and a warning: ok is false, exit 1.
	printf 'tls 127.0.0.1:1 verify=off\n' >"$T/j2.policy"
	cli json2 check --json --strict "$T/j2.policy"
	want 1 '"ok": false' && "$PY" -m json.tool "$OUT" >/dev/null && ok || fail "--json --strict output"
}

t_check_uses_environment() {
	need "$TLSSHIM" || return
	printf 'tls localhost:1\ntls localhost:1\n' >"$T/envp.policy"
	TLSSHIM_POLICY=$T/envp.policy TLSSHIM_RULES='tls localhost:1 verify=off' cli env check
	want 0 '^TLSSHIM_RULES:1:[0-9]+: warning: verify=off' \
		"^$T/envp.policy:1:5: warning: this rule never applies: the earlier rule at TLSSHIM_RULES:1" \
		"^$T/envp.policy:2:5: warning: .*\[shadowed\]" 'TLSSHIM_RULES \+ .*envp.policy: 3 rules' || return
	cli none check
	want 2 'no policy to check' && ok
}

# ---------------- explain ----------------

t_explain_name_rule() {
	need "$TLSSHIM" || return
	printf 'defaults ca-file=%s min-version=1.3\ntls localhost:8443 alpn=http/1.1\n' "$ROOT" >"$T/ex.policy"
	cli explain explain --policy "$T/ex.policy" localhost:8443
	want 0 '^127\.0\.0\.1:8443 \(localhost\)' \
		"matches +$T/ex.policy:2 \(tls localhost:8443\)" \
		'verify name +localhost \(from the rule.s host name' \
		'sni +localhost$' \
		"trust store +ca-file=$ROOT$" \
		'min-version +1\.3$' 'max-version +1\.3 \(default\)' \
		'ciphers +TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:.*ECDHE-RSA-CHACHA20-POLY1305 \(default\)' \
		'alpn +http/1\.1' 'handshake-timeout +10000 ms \(default\)' || return
	# The environment's policy when no option is given.
	TLSSHIM_RULES="tls localhost:8443 name=svc.example sni=off" cli explain-env explain localhost:8443
	want 0 'matches +TLSSHIM_RULES:1' 'verify name +svc\.example \(from name= in the rule' 'sni +none \(sni=off\)' \
		'trust store +the system.s, /etc/ssl/certs/ca-certificates.crt' && ok
}

t_explain_address_rule() {
	need "$TLSSHIM" || return
	printf 'deny 192.168.0.0/16\ntls 127.0.0.0/8:* ca-file=%s\ntls [::1]:443 name=localhost\n' "$ROOT" >"$T/ea.policy"
	cli v4 explain --policy "$T/ea.policy" 127.0.0.1:6379
	want 0 "matches +$T/ea.policy:2 \(tls 127\.0\.0\.0/8:\*\)" \
		'verify name +none: the address 127\.0\.0\.1 is checked against IP SANs' 'sni +none \(no name to send' || return
	cli v6 explain --policy "$T/ea.policy" '[::1]:443'
	want 0 '^\[::1\]:443$' "matches +$T/ea.policy:3" 'verify name +localhost \(from name= in the rule' || return
	cli deny explain --policy "$T/ea.policy" 192.168.1.10:80
	want 0 'deny: connect\(\) fails with EACCES' || return
	cli nomatch explain --policy "$T/ea.policy" 10.9.9.9:80
	want 0 'matches +no rule' 'plain: the connection passes through' || return
	printf 'tls localhost:1\nfrob\n' >"$T/eb.policy"
	cli broken explain --policy "$T/eb.policy" localhost:1
	want 1 "eb.policy:2:1: error: unknown action" && ok
}

# ---------------- probe ----------------

t_probe_success() {
	need "$TLSSHIM" openssl || return
	start_s_server srv leaf -www || { fail "s_server did not start"; return; }
	cli probe probe --rule "tls localhost:$PORT ca-file=$ROOT" "localhost:$PORT"
	local pin
	pin=$(spki_pin "$PKI/leaf.pem")
	want 0 "rule: TLSSHIM_RULES:1 \(tls localhost:$PORT\)" \
		'verify name: localhost \(the rule.s host name\); sni: localhost' \
		'^tls: TLSv1\.3, cipher TLS13-[A-Z0-9-]+' 'alpn: not offered' '^resumption: (yes|no)' \
		'\[0\] subject: .*CN=tlsshim test leaf' 'issuer: +.*CN=tlsshim test root CA' \
		'valid: +[0-9]{4}-[0-9]{2}-[0-9]{2} .* to [0-9]{4}-' 'names: +DNS:localhost, IP:127\.0\.0\.1, IP:::1' \
		"pin-sha256=$(re_escape "$pin")" "verification: ok \(chain trusted by ca-file=$ROOT; name localhost matches\)" || return
	cli probe12 probe --rule "tls localhost:$PORT ca-file=$ROOT max-version=1.2" "localhost:$PORT"
	want 0 '^tls: TLSv1\.2, cipher ECDHE-ECDSA-' && ok
}

t_probe_alpn_and_address() {
	need "$TLSSHIM" openssl || return
	start_s_server srv leaf -www -alpn http/1.1 || { fail "s_server did not start"; return; }
	cli alpn probe --rule "tls localhost:$PORT ca-file=$ROOT alpn=http/1.1" "localhost:$PORT"
	want 0 'alpn: http/1\.1 \(offered http/1\.1\)' || return
	cli ip probe --rule "tls 127.0.0.1:$PORT ca-file=$ROOT" "127.0.0.1:$PORT"
	want 0 'verify name: IP 127\.0\.0\.1 \(no name is known: the address itself\); sni: none' \
		'verification: ok .*IP 127\.0\.0\.1 matches' && ok
}

t_probe_wrong_name() {
	need "$TLSSHIM" openssl || return
	start_s_server srv wrongname -www || { fail "s_server did not start"; return; }
	cli probe probe --rule "tls localhost:$PORT ca-file=$ROOT" "localhost:$PORT"
	want 1 'verification: FAILED: certificate name mismatch: want localhost, certificate has wrong\.example' \
		'\[0\] subject: ' 'names: +DNS:wrong\.example' 'pin-sha256=' && ok
}

t_probe_unknown_ca() {
	need "$TLSSHIM" openssl || return
	start_s_server srv untrusted -www || { fail "s_server did not start"; return; }
	cli probe probe --rule "tls localhost:$PORT ca-file=$ROOT" "localhost:$PORT"
	want 1 'verification: FAILED: certificate chain does not lead to a trusted CA' \
		'issuer: +.*CN=tlsshim untrusted other root CA' || return
	# No policy at all: default options, the system store, which does not know the test root either.
	cli default probe "localhost:$PORT"
	want 1 'rule: none \(no policy given\): default options' 'trust: the system.s' \
		'verification: FAILED: certificate chain does not lead to a trusted CA' && ok
}

t_probe_pins_paste_into_rule() {
	need "$TLSSHIM" openssl curl || return
	www srv "$PKI/selfsigned.pem" "$PKI/selfsigned.key" || return
	cli pins probe --pins "localhost:$PORT"
	[ "$RC" = 1 ] || { fail "probe --pins of an untrusted self-signed server: exit $RC, expected 1"; return; }
	local pins
	pins=$(grep '^pin-sha256=' "$OUT" | tr '\n' ' ')
	[ -n "$pins" ] || { fail "no pin-sha256= lines on stdout"; return; }
	grep -v '^pin-sha256=' "$OUT" | grep -q . && { fail "--pins printed something else on stdout"; return; }
	grep -q "pin-sha256=$(spki_pin "$PKI/selfsigned.pem")" "$OUT" || { fail "the pin differs from openssl's"; return; }
	local rule="tls localhost:$PORT verify=pin-only $pins"
	cli pinned-probe probe --rule "$rule" "localhost:$PORT"
	want 0 'verification: ok \(a certificate matches pin-sha256\)' || return
	via_run pinned-curl "$rule" curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" = 0 ] && page_ok || { fail "curl through the shim with the pasted pins did not get the page (rc=$RC)"; return; }
	via_run wrongpin-curl "tls localhost:$PORT verify=pin-only pin-sha256=$(spki_pin "$PKI/leaf.pem")" \
		curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" != 0 ] && ! page_ok && ok || fail "a wrong pin still let curl through"
}

# probe --pins lists the path the library compares pins with: a genuine leaf the server appends to a
# leaf from another trusted CA is not on it, and the library refuses a pin of it just as probe does.
t_probe_pins_follow_the_verified_path() {
	need "$TLSSHIM" openssl curl || return
	cat "$ROOT" "$PKI/other-root.pem" >"$T/two-roots.pem"
	www srv "$PKI/untrusted.pem" "$PKI/untrusted.key" -cert_chain "$PKI/leaf.pem" || return
	local base="tls localhost:$PORT ca-file=$T/two-roots.pem"
	cli pathpins probe --pins --rule "$base" "localhost:$PORT"
	want 0 'certificate 1 the server sent is not on the path' || return
	local pins appended
	pins=$(grep '^pin-sha256=' "$OUT" | tr '\n' ' ')
	appended="pin-sha256=$(spki_pin "$PKI/leaf.pem")"
	[ "$pins" = "pin-sha256=$(spki_pin "$PKI/untrusted.pem") pin-sha256=$(spki_pin "$PKI/other-root.pem") " ] ||
		{ fail "probe --pins listed '$pins', expected the leaf and its anchor (other-root)"; return; }
	cli showpath probe --rule "$base" "localhost:$PORT"
	want 0 'NOT on the path from the leaf' 'trust anchor \(from the rule.s CA options\)' || return
	cli badpin probe --rule "$base $appended" "localhost:$PORT"
	want 1 'no certificate on the verified path' || return
	via_run badpin-curl "$base $appended" curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" != 0 ] && ! page_ok || { fail "the library accepted a pin of the appended certificate"; return; }
	grep -q 'no certificate on the verified path' "$ERR" || { fail "the library's reason differs: $(grep tlsshim: "$ERR")"; return; }
	via_run goodpin-curl "$base $(echo "$pins" | cut -d' ' -f2)" curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" = 0 ] && page_ok && ok || fail "the anchor's pin from probe --pins did not work in the library (rc=$RC)"
}

t_check_reports_combinations() {
	need "$TLSSHIM" || return
	local p=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
	printf 'tls a:1 verify=off pin-sha256=%s\ntls b:1 verify=pin-only pin-sha256=%s crl-file=/c\ntls c:1 verify=pin-only pin-sha256=%s ocsp-stapling=require\ntls d:1 verify=pin-only pin-sha256=%s ocsp-stapling=require ca-file=/ca\n' \
		"$p" "$p" "$p" "$p" >"$T/combo.policy"
	cli combo check "$T/combo.policy"
	want 1 "combo.policy:1:20: error: verify=off ignores pin-sha256=" \
		"combo.policy:2:81: error: verify=pin-only with crl-file= needs ca-file= or ca-dir=" \
		"combo.policy:3:81: error: verify=pin-only with ocsp-stapling=require needs ca-file= or ca-dir=" || return
	grep -q 'combo.policy:4:[0-9]*: error' "$OUT" "$ERR" && { fail "rule 4 (with ca-file=) was reported as an error"; return; }
	ok
}

t_probe_policy_plain_deny_and_down() {
	need "$TLSSHIM" || return
	cli plain probe --rule 'plain localhost:1234' localhost:1234
	want 1 'the library would not use TLS \(plain\); not probing' || return
	cli deny probe --rule 'deny *:*' 127.0.0.1:1234
	want 1 'refuse the connection \(EACCES\)' || return
	local p
	p=$(free_port)
	cli down probe --timeout 3 --rule "tls 127.0.0.1:$p" "127.0.0.1:$p"
	want 1 'TCP connect failed: Connection refused' 'could not connect' && ok
}

# ---------------- certs ----------------

t_certs_well_formed() {
	need "$TLSSHIM" openssl || return
	local d=$T/certs
	cli certs certs "$d"
	want 0 "tls localhost:\* ca-file=$d/ca.pem" "tls 127\.0\.0\.1:\* ca-file=$d/ca.pem" "tls \[::1\]:\* ca-file=$d/ca.pem" || return
	local f
	for f in ca.pem ca.key server.pem server.key client.pem client.key; do
		[ -s "$d/$f" ] || { fail "$f missing"; return; }
	done
	for f in ca.key server.key client.key; do
		[ "$(stat -c %a "$d/$f")" = 600 ] || { fail "$f has mode $(stat -c %a "$d/$f"), expected 600"; return; }
	done
	prun verify openssl verify -CAfile "$d/ca.pem" "$d/server.pem" "$d/client.pem"
	want 0 'server.pem: OK' 'client.pem: OK' || return
	prun text openssl x509 -in "$d/server.pem" -noout -text
	want 0 'Signature Algorithm: ecdsa-with-SHA256' 'prime256v1|P-256' \
		'DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1' 'TLS Web Server Authentication' || return
	prun catext openssl x509 -in "$d/ca.pem" -noout -text
	want 0 'CA:TRUE' 'Certificate Sign' || return
	prun ctext openssl x509 -in "$d/client.pem" -noout -text
	want 0 'TLS Web Client Authentication' || return
	# 90 days: still valid in 89 days, no longer in 91.
	openssl x509 -in "$d/server.pem" -noout -checkend $((89 * 86400)) >/dev/null || { fail "expires within 89 days"; return; }
	! openssl x509 -in "$d/server.pem" -noout -checkend $((91 * 86400)) >/dev/null || { fail "valid beyond 91 days"; return; }
	# The keys parse and match their certificates.
	[ "$(openssl pkey -in "$d/server.key" -pubout 2>/dev/null)" = "$(openssl x509 -in "$d/server.pem" -pubkey -noout)" ] ||
		{ fail "server.key does not match server.pem"; return; }
	# Existing files are kept unless --force.
	cli again certs "$d"
	want 1 'File exists \(use --force to overwrite\)' || return
	cli force certs "$d" --force --name svc.test --name '*.svc.test' --ip 127.0.0.2 --ip '[::2]'
	want 0 'tls svc\.test:\*' || return
	prun text2 openssl x509 -in "$d/server.pem" -noout -text
	want 0 'DNS:svc\.test, DNS:\*\.svc\.test, IP Address:127\.0\.0\.2, IP Address:0:0:0:0:0:0:0:2' 'Subject: .*CN *= *svc\.test' && ok
}

t_certs_work_with_s_server_and_shim() {
	need "$TLSSHIM" openssl curl || return
	local d=$T/certs2
	cli certs certs "$d"
	want 0 || return
	www srv "$d/server.pem" "$d/server.key" || return
	# openssl s_client accepts them (chain and name).
	prun s_client openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$d/ca.pem" -verify_hostname localhost \
		-verify_return_error -brief
	want 0 'Verification: OK|Verified peername: localhost' || return
	# The printed policy line, with the port, makes curl work through the shim, by name and by address.
	via_run curl "tls localhost:$PORT ca-file=$d/ca.pem" curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" = 0 ] && page_ok || { fail "curl by name through the shim failed (rc=$RC)"; return; }
	via_run curl-ip "tls 127.0.0.1:$PORT ca-file=$d/ca.pem" curl -sS --max-time 10 "http://127.0.0.1:$PORT/"
	[ "$RC" = 0 ] && page_ok || { fail "curl by address (IP SAN) through the shim failed (rc=$RC)"; return; }
	cli probe probe --rule "tls localhost:$PORT ca-file=$d/ca.pem" "localhost:$PORT"
	want 0 'verification: ok' || return
	stop_case_servers
	# Mutual TLS: the server requires a client certificate from the same CA.
	www mtls "$d/server.pem" "$d/server.key" -Verify 1 -CAfile "$d/ca.pem" || return
	via_run mtls "tls localhost:$PORT ca-file=$d/ca.pem cert=$d/client.pem key=$d/client.key" curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" = 0 ] && page_ok || { fail "mutual TLS with client.pem/client.key failed (rc=$RC)"; return; }
	via_run nocert "tls localhost:$PORT ca-file=$d/ca.pem" curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" != 0 ] && ok || fail "a server requiring a client certificate accepted none"
}

# ---------------- run ----------------

t_run_curl_through_shim() {
	need "$TLSSHIM" openssl curl || return
	start_s_server srv leaf -www || { fail "s_server did not start"; return; }
	via_run curl "tls localhost:$PORT ca-file=$ROOT" curl -sS --max-time 10 "http://localhost:$PORT/"
	[ "$RC" = 0 ] && page_ok || { fail "curl through tlsshim run did not get the page (rc=$RC)"; return; }
	printf 'tls localhost:%s ca-file=%s\n' "$PORT" "$ROOT" >"$T/run.policy"
	if [ "${TLSSHIM_ASAN:-0}" = 1 ]; then
		TLSSHIM_POLICY=$T/run.policy TLSSHIM_LOG=info srun curl-policy curl -sS --max-time 10 "http://localhost:$PORT/"
	else
		cli curl-policy run --policy "$T/run.policy" --log info -- curl -sS --max-time 10 "http://localhost:$PORT/"
	fi
	[ "$RC" = 0 ] && page_ok || { fail "curl with --policy failed (rc=$RC)"; return; }
	grep -q '^tlsshim: .*handshake done: TLSv1.3' "$ERR" || { fail "--log info did not reach the library"; return; }
	# Without the shim the same curl gets no page: the TLS came from the library.
	prun bare curl -sS --max-time 5 "http://localhost:$PORT/"
	page_ok && fail "plain curl got the page: is the server not TLS?" || ok
}

t_run_environment() {
	need "$TLSSHIM" || return
	printf 'plain *:*\n' >"$T/envrun.policy"
	LD_PRELOAD=/nonexistent/libasan.so.8 TLSSHIM_RULES='deny *:25' cli env run --rule 'tls localhost:1' \
		--policy "$T/envrun.policy" --log debug -- env
	want 0 "^LD_PRELOAD=/nonexistent/libasan\.so\.8:$(realpath "$SHIM")$" '^TLSSHIM_RULES=tls localhost:1;deny \*:25$' \
		"^TLSSHIM_POLICY=$(realpath "$T/envrun.policy")$" '^TLSSHIM_LOG=debug$' || return
	# The inherited policy alone is enough.
	TLSSHIM_RULES='plain *:*' cli inherited run -- env
	want 0 '^TLSSHIM_RULES=plain \*:\*$' || return
	cli nopolicy run -- true
	want 2 'no policy' || return
	cli notfound run --rule 'plain *:*' -- no-such-program-tlsshim
	want 127 'command not found' && ok
}

t_run_refuses_bad_policy() {
	need "$TLSSHIM" || return
	cli bad run --rule 'tls localhost:99999' -- touch "$T/ran"
	want 1 '^TLSSHIM_RULES:1:15: error: invalid port' 'not running touch' || return
	[ -e "$T/ran" ] && { fail "the program ran despite the broken policy"; return; }
	ok
}

t_run_refuses_static() {
	need "$TLSSHIM" gcc || return
	printf '#include <stdio.h>\nint main(void) { puts("static ran"); return 0; }\n' >"$T/hi.c"
	gcc -static -o "$T/hi-static" "$T/hi.c" 2>"$T/gcc.err" || { fail "cannot build a static test binary: $(head -2 "$T/gcc.err")"; return; }
	cli static run --rule 'tls localhost:1' -- "$T/hi-static"
	want 1 'refusing to run: .*hi-static is statically linked' 'LD_PRELOAD cannot load' 'dynamically linked build' || return
	lacks 'static ran' || return
	# A script whose interpreter is static is refused too.
	printf '#!%s\n' "$T/hi-static" >"$T/script"
	chmod +x "$T/script"
	cli script run --rule 'tls localhost:1' -- "$T/script"
	want 1 'is a script run by .*hi-static, and .*statically linked' || return
	# The dynamic build of the same program runs.
	gcc -o "$T/hi-dyn" "$T/hi.c"
	cli dyn run --rule 'tls localhost:1' -- "$T/hi-dyn"
	want 0 'static ran' && ok
}

t_run_refuses_setuid() {
	need "$TLSSHIM" || return
	cp "$(type -P true)" "$T/suid-true" && chmod u+s "$T/suid-true" || { fail "cannot make a setuid copy"; return; }
	cli setuid run --rule 'tls localhost:1' -- "$T/suid-true"
	want 1 'refusing to run: .*suid-true is setuid \(mode 4755\)' 'ignores LD_PRELOAD' 'without the bit' || return
	cp "$(type -P true)" "$T/sgid-true" && chmod g+s "$T/sgid-true"
	cli setgid run --rule 'tls localhost:1' -- "$T/sgid-true"
	want 1 'is setgid' && ok
}

# ---------------- man pages and install ----------------

t_man_pages() {
	need man || return
	local m
	for m in "$REPO/tools/man/tlsshim.1" "$REPO/tools/man/tlsshim-policy.5"; do
		prun man-warn env LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$m"
		[ "$RC" = 0 ] && [ ! -s "$ERR" ] || { fail "$(basename "$m") renders with warnings: $(head -3 "$ERR")"; return; }
	done
	prun man1 env MANWIDTH=80 man -l "$REPO/tools/man/tlsshim.1"
	want 0 'tlsshim run' 'tlsshim check' 'tlsshim explain' 'tlsshim probe' 'tlsshim certs' 'tlsshim version' 'EXIT STATUS' || return
	prun man5 env MANWIDTH=80 man -l "$REPO/tools/man/tlsshim-policy.5"
	local k
	for k in name= sni= ca-file= ca-dir= min-version= max-version= ciphers= alpn= handshake-timeout= \
		verify=on cert= key= key-password-file= pin-sha256= crl-file= crl-dir= ocsp-stapling= truncation= \
		session-resumption= TLSSHIM_RULES TLSSHIM_POLICY defaults 'first match wins'; do
		grep -q -- "$k" "$OUT" || { fail "tlsshim-policy(5) does not mention $k"; return; }
	done
	ok
}

t_make_install() {
	need make || return
	# Install what is built; -o: never rebuild anything from the tests.
	prun install make -s -C "$REPO" BUILD="$BUILD" -o "$BUILD/tlsshim" -o "$BUILD/libtlsshim.so" install \
		DESTDIR="$T/inst" PREFIX=/usr/local
	[ "$RC" = 0 ] || { fail "make install failed"; return; }
	local f
	for f in bin/tlsshim lib/tlsshim/libtlsshim.so share/man/man1/tlsshim.1 share/man/man5/tlsshim-policy.5; do
		[ -f "$T/inst/usr/local/$f" ] || { fail "make install did not install $f"; return; }
	done
	prun installed "$T/inst/usr/local/bin/tlsshim" version
	want 0 "library: $T/inst/usr/local/lib/tlsshim/libtlsshim.so" || return
	prun installed-run "$T/inst/usr/local/bin/tlsshim" run --rule 'plain *:*' -- env
	want 0 "^LD_PRELOAD=$T/inst/usr/local/lib/tlsshim/libtlsshim.so$" && ok
}

NOSHIM=1 tcase help_and_bad_usage
NOSHIM=1 tcase version
NOSHIM=1 tcase check_clean_policy
NOSHIM=1 tcase check_reports_every_error
NOSHIM=1 tcase check_lint_warnings
NOSHIM=1 tcase check_dialogue_warnings
NOSHIM=1 tcase check_json
NOSHIM=1 tcase check_uses_environment
NOSHIM=1 tcase explain_name_rule
NOSHIM=1 tcase explain_address_rule
NOSHIM=1 tcase probe_success
NOSHIM=1 tcase probe_alpn_and_address
NOSHIM=1 tcase probe_wrong_name
NOSHIM=1 tcase probe_unknown_ca
tcase probe_pins_paste_into_rule
tcase probe_pins_follow_the_verified_path
tcase check_reports_combinations
NOSHIM=1 tcase probe_policy_plain_deny_and_down
NOSHIM=1 tcase certs_well_formed
tcase certs_work_with_s_server_and_shim
tcase run_curl_through_shim
tcase run_environment
tcase run_refuses_bad_policy
tcase run_refuses_static
tcase run_refuses_setuid
NOSHIM=1 tcase man_pages
tcase make_install
finish
