#!/usr/bin/env bash
# Hostile configuration: unreadable, huge, binary and symlinked policy files, overlong lines, 10,000
# rules, invalid UTF-8 names. Each bad policy fails closed (every TCP connect: EACCES) with a message
# naming the source and the problem, and never crashes the program. Plus the setuid rule: a setuid
# program never takes TLSSHIM_* from the environment (secure_getenv).
source "$(dirname "$0")/lib.sh" "${1:-build}"
source "$HERE/matrix/mlib.sh"
unset SSLKEYLOGFILE TLSSHIM_LOG_FORMAT TLSSHIM_STATS

# $T is private (0700); cases that run a client as another user need a world-accessible corner of it.
chmod 0711 "$T"
PUB=$T/pub
mkdir -p "$PUB" && chmod 1777 "$PUB"
NOBODY=65534
MiB=1048576

# ---------- helpers ----------
# probe: tcpclient to 127.0.0.1:$PORT (a plain echo server behind the recording relay), numeric (no
# resolver), sends the sentinel. Environment (TLSSHIM_POLICY / TLSSHIM_RULES) comes from the caller.
probe() { srun tc "$CL/tcpclient" -N -s "$SENT\\n" -W 127.0.0.1 "$PORT"; observe; }
# The client and the library run from copies in $PUB: a checkout under /root (mode 0700, as on a stock
# machine where root clones into its home) is out of nobody's reach, and ld.so would skip the preload.
public_shim() {
	[ -r "$PUB/libtlsshim.so" ] || install -m 0755 "$SHIM" "$PUB/libtlsshim.so"
	echo "$PUB/libtlsshim.so"
}
probe_as_nobody() {
	[ -x "$PUB/tcpclient" ] || install -m 0755 "$CL/tcpclient" "$PUB/tcpclient"
	local keep=$PRELOAD
	PRELOAD=${PRELOAD/"$SHIM"/"$(public_shim)"}
	srun tc setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups "$PUB/tcpclient" -N -s "$SENT\\n" -W 127.0.0.1 "$PORT"
	PRELOAD=$keep
	observe
}
plain_server() { mplain s --mode echo; }

no_crash() {
	if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then fail "the program hung (killed after ${TMO}s)"; return 1; fi
	if [ "$RC" -ge 128 ]; then fail "the program died of signal $((RC - 128))"; return 1; fi
	if grep -aqiE 'AddressSanitizer|runtime error:|Segmentation|core dumped' "$ERR"; then
		fail "sanitizer or crash report in stderr: $(grep -aiE 'AddressSanitizer|runtime error:|Segmentation' "$ERR" | head -1)"
		return 1
	fi
	return 0
}

# closed SOURCE_RE REASON_RE: the last probe failed closed: connect EACCES, exactly one load message
# "tlsshim: SOURCE:LINE:COL: <reason> ... EACCES ...", nothing reached the server, no crash.
closed() {
	local src=$1 reason=$2
	no_crash || return 1
	if ! has_errno connect EACCES; then
		fail "expected connect() to fail with EACCES (fail closed), client said: $(grep -a 'tcpclient:' "$ERR" | head -2 | tr '\n' ' ')"
		return 1
	fi
	local load
	load=$(grep -a '^tlsshim: ' "$ERR" | grep -a 'EACCES' | grep -av 'refused' || true)
	local n
	n=$(printf '%s' "$load" | grep -c . || true)
	if [ "$n" != 1 ]; then fail "expected exactly one load message saying every connect fails with EACCES, got $n: $(shim_lines | head -3)"; return 1; fi
	if ! printf '%s' "$load" | grep -Eq -- "^tlsshim: $src:[0-9]+:[0-9]+: "; then
		fail "the load message does not name the source ($src) with line:column: $load"
		return 1
	fi
	if ! printf '%s' "$load" | grep -Eiq -- "$reason"; then
		fail "the load message does not say what is wrong (/$reason/): $load"
		return 1
	fi
	M_REASON=$load
	no_sentinel
}
# works: the last probe connected and the echo came back.
works() {
	no_crash || return 1
	[ "$RC" = 0 ] && grep -aqF -- "$SENT" "$OUT" && return 0
	fail "the connection should work (rc=$RC, $(client_errno)): $(shim_lines | head -2)"
	return 1
}
qre() { printf '%s' "$1" | sed 's/[][\.*^$+?(){}|/]/\\&/g'; }

# ---------- unreadable ----------
t_policy_unreadable() {
	# root reads any file, so the client runs as nobody; the control shows the same file works once readable
	need setpriv || return
	plain_server || return
	local f=$PUB/unreadable.policy
	echo "plain 127.0.0.1:*" >"$f"
	chmod 0644 "$f"
	TLSSHIM_POLICY=$f probe_as_nobody
	works || { fail "control: the readable policy did not work for nobody: $(tail -2 "$ERR" | tr '\n' ' ')"; return; }
	chmod 0000 "$f"
	sleep 0.2
	: >"$REC" # the control's bytes went through in plaintext, as its policy says
	TLSSHIM_POLICY=$f probe_as_nobody
	closed "$(qre "$f")" 'permission denied' && ok
}
t_policy_is_directory() {
	plain_server || return
	mkdir -p "$T/policy.d"
	TLSSHIM_POLICY=$T/policy.d probe
	closed "$(qre "$T/policy.d")" 'not a regular file' && ok
}
t_policy_missing() {
	plain_server || return
	TLSSHIM_POLICY=$T/no-such.policy probe
	closed "$(qre "$T/no-such.policy")" 'no such file' && ok
}

# ---------- huge ----------
# fill FILE BYTES: "plain 127.0.0.1:*" then comment lines, exactly BYTES bytes long
fill() {
	"$PY" - "$1" "$2" <<'PYEOF'
import sys
path, size = sys.argv[1], int(sys.argv[2])
head = b"plain 127.0.0.1:*\n"
line = b"# " + b"x" * 125 + b"\n"  # 128 bytes
body = head + line * ((size - len(head)) // len(line))
rest = size - len(body)
if rest:
    body += (b"#" + b"y" * (rest - 2) + b"\n") if rest >= 2 else b"\n"
assert len(body) == size, (len(body), size)
open(path, "wb").write(body)
PYEOF
}
t_policy_exactly_1mib_loads() {
	plain_server || return
	fill "$T/big.policy" $MiB
	TLSSHIM_POLICY=$T/big.policy probe
	works && ok "$(stat -c %s "$T/big.policy") bytes"
}
t_policy_over_1mib() {
	plain_server || return
	fill "$T/huge.policy" $((MiB + 1))
	TLSSHIM_POLICY=$T/huge.policy probe
	closed "$(qre "$T/huge.policy")" 'larger than 1 MiB' && ok
}
t_policy_64mib_sparse() {
	plain_server || return
	truncate -s 64M "$T/sparse.policy" # all NUL bytes, never read: the size alone refuses it
	TLSSHIM_POLICY=$T/sparse.policy probe
	closed "$(qre "$T/sparse.policy")" 'larger than 1 MiB' && ok
}

# ---------- binary ----------
t_policy_nul_bytes() {
	plain_server || return
	printf 'plain 127.0.0.1:*\0 # NUL\ntls localhost:1\n' >"$T/nul.policy"
	TLSSHIM_POLICY=$T/nul.policy probe
	closed "$(qre "$T/nul.policy")" 'NUL' && ok
}
t_policy_elf_binary() {
	plain_server || return
	head -c 65536 "$CL/tcpclient" >"$T/elf.policy"
	TLSSHIM_POLICY=$T/elf.policy probe
	closed "$(qre "$T/elf.policy")" 'NUL|control|invalid|unknown|expected' && ok
}
t_policy_control_chars() {
	plain_server || return
	printf 'plain 127.0.0.1:*\ntls\033[2J localhost:1\n' >"$T/esc.policy"
	TLSSHIM_POLICY=$T/esc.policy probe
	closed "$(qre "$T/esc.policy")" 'control|invalid|unknown|expected' && ok
}

# ---------- symlinks ----------
# A symlink to a regular file is followed by design (policy/parse.c: "a symlink is followed only to a
# regular file"); every other symlink target fails closed.
t_symlink_to_regular_file_works() {
	plain_server || return
	echo "plain 127.0.0.1:*" >"$T/real.policy"
	ln -sfn "$T/real.policy" "$T/link.policy"
	TLSSHIM_POLICY=$T/link.policy probe
	works && ok "followed to a regular file, as designed"
}
t_symlink_dangling() {
	plain_server || return
	ln -sfn "$T/nowhere" "$T/dangling.policy"
	TLSSHIM_POLICY=$T/dangling.policy probe
	closed "$(qre "$T/dangling.policy")" 'no such file' && ok
}
t_symlink_loop() {
	plain_server || return
	ln -sfn "$T/loop-b.policy" "$T/loop-a.policy"
	ln -sfn "$T/loop-a.policy" "$T/loop-b.policy"
	TLSSHIM_POLICY=$T/loop-a.policy probe
	closed "$(qre "$T/loop-a.policy")" 'symbolic links' && ok
}
t_symlink_to_dev_zero() {
	plain_server || return
	ln -sfn /dev/zero "$T/zero.policy"
	TLSSHIM_POLICY=$T/zero.policy probe
	closed "$(qre "$T/zero.policy")" 'not a regular file' && ok
}
t_symlink_to_fifo_never_blocks() {
	plain_server || return
	mkfifo "$T/fifo"
	ln -sfn "$T/fifo" "$T/fifo.policy"
	TMO=10 TLSSHIM_POLICY=$T/fifo.policy probe
	closed "$(qre "$T/fifo.policy")" 'not a regular file' || return
	[ "$MS" -lt 3000 ] && ok "$MS ms" || fail "took $MS ms: opening the FIFO blocked"
}
t_symlink_to_directory() {
	plain_server || return
	ln -sfn /etc "$T/etc.policy"
	TLSSHIM_POLICY=$T/etc.policy probe
	closed "$(qre "$T/etc.policy")" 'not a regular file' && ok
}

# ---------- overlong lines ----------
# rule_of_len N: "plain 127.0.0.1:*" padded with a comment to exactly N bytes
rule_of_len() { "$PY" -c 'import sys; n=int(sys.argv[1]); r="plain 127.0.0.1:* #"; print(r + "x"*(n-len(r)), end="")' "$1"; }
t_rule_4096_bytes_accepted() {
	plain_server || return
	local r
	r=$(rule_of_len 4096)
	[ "${#r}" = 4096 ] || { fail "harness: rule is ${#r} bytes"; return; }
	TLSSHIM_RULES=$r probe
	works && ok
}
t_rule_4097_bytes_rules() {
	plain_server || return
	TLSSHIM_RULES=$(rule_of_len 4097) probe
	closed 'TLSSHIM_RULES' 'longer than 4096' && ok
}
t_line_100k_in_file() {
	plain_server || return
	{ echo "plain 127.0.0.1:*"; rule_of_len 100000; echo; } >"$T/long.policy"
	TLSSHIM_POLICY=$T/long.policy probe
	closed "$(qre "$T/long.policy")" 'longer than 4096' || return
	grep -aq "long.policy:2:" "$ERR" && ok || fail "the message does not point at line 2: $(shim_lines | head -1)"
}
t_unterminated_quote_long() {
	plain_server || return
	TLSSHIM_RULES="tls localhost:1 name=\"$(head -c 3000 /dev/zero | tr '\0' a)" probe
	closed 'TLSSHIM_RULES' 'quot|unterminated|closing' && ok
}

# ---------- many rules ----------
# 9,999 "deny *:N" rules (N = 1..9999), two decoys for the same host/port, then the one that matches:
# 10,002 rules in TLSSHIM_RULES (about 119 KB: an environment string is limited to 128 KiB).
many_rules() { # many_rules LAST_RULE
	local i
	for i in $(seq 1 9999); do printf 'deny *:%d;' "$i"; done
	printf 'deny 127.0.0.2:%d;deny 127.0.0.1:%d;%s' "$PORT" $((PORT + 1)) "$1"
}
t_ten_thousand_rules_last_matches_tls() {
	mpy s "$PKI/leaf.pem" "$PKI/leaf.key" --mode echo || return
	[ "$PORT" -gt 10000 ] || { fail "harness: port $PORT would be caught by the deny *:N rules"; return; }
	local rules
	rules=$(many_rules "tls 127.0.0.1:$PORT ca-file=$ROOT")
	TLSSHIM_LOG=info TLSSHIM_RULES=$rules srun tc "$CL/tcpclient" -N -n 2 -s "$SENT\\n" -W 127.0.0.1 "$PORT"
	observe
	works || return
	[ "$(grep -ac "$SENT" "$OUT")" = 2 ] || { fail "want two echoes"; return; }
	[ "$(shim_lines | grep -c 'handshake done')" = 2 ] || { fail "the last rule (tls) did not apply to both connections: $(shim_lines | head -3)"; return; }
	grep -aqF -- "$SENT" "$REC" && { fail "PLAINTEXT ON THE WIRE: the last rule was not applied"; return; }
	[ "$MS" -lt 3000 ] && ok "$(printf '%s' "$rules" | tr ';' '\n' | grep -c .) rules, ${#rules} bytes, $MS ms for load + 2 connections" ||
		fail "load + 2 connections took $MS ms (want < 3000)"
}
t_ten_thousand_rules_last_deny() {
	plain_server || return
	[ "$PORT" -gt 10000 ] || { fail "harness: port $PORT would be caught by the deny *:N rules"; return; }
	TLSSHIM_RULES=$(many_rules "deny 127.0.0.1:$PORT;plain *") probe
	no_crash || return
	has_errno connect EACCES || { fail "the last deny rule did not apply: $(client_errno)"; return; }
	no_sentinel || return
	TLSSHIM_RULES=$(many_rules "plain 127.0.0.1:$PORT") probe
	works || return
	[ "$MS" -lt 2000 ] && ok "$MS ms" || fail "took $MS ms"
}
t_ten_thousand_rules_in_file() {
	plain_server || return
	many_rules "plain 127.0.0.1:$PORT" | tr ';' '\n' >"$T/many.policy"
	TLSSHIM_POLICY=$T/many.policy probe
	works || return
	[ "$MS" -lt 2000 ] && ok "$(wc -l <"$T/many.policy") lines, $MS ms" || fail "took $MS ms"
}
t_ten_thousand_name_rules() {
	# 10,000 rules written with host names for the destination's port: each must be resolved before the
	# last rule can match (README: "resolved by the shim on the connect path (the connect waits for DNS, outside any lock; cached 30 s)").
	# A counting resolver answers these names at once, without network, so the time is the shim's own.
	need gcc || return
	gcc -O2 -shared -fPIC -o "$T/fakeres.so" "$HERE/matrix/fakeres.c" -ldl 2>"$T/gcc.err" ||
		{ fail "cannot build matrix/fakeres.c: $(head -3 "$T/gcc.err")"; return; }
	plain_server || return
	local i
	for i in $(seq 1 10000); do echo "deny n$i.fake-matrix.invalid:$PORT"; done >"$T/names.policy"
	echo "plain 127.0.0.1:$PORT" >>"$T/names.policy"
	local pre=$PRELOAD
	PRELOAD="$pre:$T/fakeres.so" TLSSHIM_POLICY=$T/names.policy probe
	PRELOAD=$pre
	works || return
	local one
	one=$(grep -ao 'fakeres: lookups=[0-9]*' "$ERR" | cut -d= -f2)
	[ -n "$one" ] || { fail "the counting resolver did not report (was it loaded?)"; return; }
	[ "$MS" -lt 5000 ] || { fail "one connect took $MS ms with instant name answers"; return; }
	PRELOAD="$pre:$T/fakeres.so" TLSSHIM_POLICY=$T/names.policy srun tc "$CL/tcpclient" -N -n 3 -s "$SENT\\n" -W 127.0.0.1 "$PORT"
	PRELOAD=$pre
	observe
	works || return
	local three
	three=$(grep -ao 'fakeres: lookups=[0-9]*' "$ERR" | cut -d= -f2)
	M_REASON="1 connect: $one lookups; 3 connects in one process: $three lookups"
	[ "$three" = "$one" ] && ok "$M_REASON" ||
		fail "the rule names are not cached: 1 connect made $one lookups, 3 connects within seconds made $three (README: cached 30 s); with a real resolver each lookup costs a DNS round trip on every connect, under one global lock"
}

# ---------- invalid UTF-8 ----------
t_invalid_utf8_host_rules() {
	plain_server || return
	TLSSHIM_RULES=$'plain 127.0.0.1:*;tls h\xff\xfe.example:443' probe
	closed 'TLSSHIM_RULES' 'invalid host' && ok
}
t_invalid_utf8_name_option_file() {
	plain_server || return
	printf 'plain 127.0.0.1:*\ntls localhost:1 name=\xc3\x28.example\n' >"$T/utf8.policy"
	TLSSHIM_POLICY=$T/utf8.policy probe
	closed "$(qre "$T/utf8.policy")" 'invalid name' || return
	grep -aq 'utf8.policy:2:' "$ERR" && ok || fail "the message does not point at line 2"
}
t_invalid_utf8_sni_option() {
	plain_server || return
	TLSSHIM_RULES=$'tls localhost:1 sni=\xe2\x82' probe
	closed 'TLSSHIM_RULES' 'invalid sni' && ok
}
t_utf8_idn_name_not_punycode() {
	plain_server || return
	TLSSHIM_RULES=$'tls b\xc3\xbccher.example:443' probe
	closed 'TLSSHIM_RULES' 'invalid host' && ok
}
t_message_escapes_bytes() {
	# the load message must not copy raw control bytes to the terminal
	plain_server || return
	TLSSHIM_RULES=$'tls h\x1b]0;pwned\x07x.example:443' probe
	closed 'TLSSHIM_RULES' 'invalid|control' || return
	shim_lines | grep -aq $'\x1b' && { fail "the message contains a raw ESC byte"; return; }
	ok
}

# ---------- setuid ----------
# A copy of matrix/suidprobe.c, setuid to nobody, run by root: ruid 0, euid 65534, so the kernel sets
# AT_SECURE (the probe prints it). The probe dlopen()s the shim and connects through the shim's connect,
# with TLSSHIM_RULES / TLSSHIM_POLICY / TLSSHIM_LOG_FILE in the environment: the shim must ignore them.
build_suidprobe() {
	need gcc || return 1
	gcc -O2 -Wall -o "$PUB/suidprobe" "$HERE/matrix/suidprobe.c" -ldl 2>"$T/gcc.err" ||
		{ fail "cannot build matrix/suidprobe.c: $(head -3 "$T/gcc.err")"; return 1; }
	cp "$PUB/suidprobe" "$PUB/suidprobe-setuid"
	chown $NOBODY:$NOBODY "$PUB/suidprobe-setuid" && chmod 4700 "$PUB/suidprobe-setuid" ||
		{ fail "cannot make a setuid copy of the probe here"; return 1; }
}
t_setuid_ignores_tlsshim_env() {
	build_suidprobe || return
	plain_server || return
	local logf=$PUB/suid-shim.log pol=$PUB/deny.policy
	echo "deny 127.0.0.1:$PORT" >"$pol"
	chmod 0644 "$pol"
	# control: not setuid, the environment applies (deny -> EACCES, log file written)
	TLSSHIM_RULES="deny 127.0.0.1:$PORT" TLSSHIM_LOG=debug TLSSHIM_LOG_FILE=$logf \
		prun ctl "$PUB/suidprobe" "$SHIM" "$PORT" "$SENT"
	grep -q 'at_secure=0' "$OUT" || { fail "control: at_secure is not 0: $(head -1 "$OUT")"; return; }
	grep -q 'connect: errno=EACCES' "$OUT" || { fail "control: the deny rule from the environment did not apply: $(tail -1 "$OUT")"; return; }
	[ -s "$logf" ] || { fail "control: TLSSHIM_LOG_FILE was not written by a normal program"; return; }
	rm -f "$logf"
	# setuid: the same environment must be ignored
	TLSSHIM_RULES="deny 127.0.0.1:$PORT" TLSSHIM_POLICY=$pol TLSSHIM_LOG=debug TLSSHIM_LOG_FILE=$logf \
		prun suid "$PUB/suidprobe-setuid" "$(public_shim)" "$PORT" "$SENT"
	M_REASON=$(head -2 "$OUT" | tr '\n' ' ')
	grep -q 'at_secure=1 ruid=0 euid=65534' "$OUT" ||
		{ fail "cannot run here: the setuid copy did not run with AT_SECURE=1 (nosuid mount or no_new_privs?): $(head -1 "$OUT")"; return; }
	no_crash || return
	grep -q 'connect: ok' "$OUT" || { fail "a setuid program took the policy from the environment: $(tail -1 "$OUT")"; return; }
	[ -e "$logf" ] && { fail "a setuid program created TLSSHIM_LOG_FILE=$logf from the environment"; return; }
	grep -aq '^tlsshim: ' "$ERR" && { fail "the shim logged from the environment's TLSSHIM_LOG in a setuid program: $(shim_lines | head -1)"; return; }
	sleep 0.3
	grep -aqF -- "$SENT" "$REC" || { fail "harness: the probe's bytes did not reach the relay"; return; }
	ok "AT_SECURE=1: TLSSHIM_RULES, TLSSHIM_POLICY and TLSSHIM_LOG_FILE ignored"
}
t_setuid_ld_preload_ignored_by_glibc() {
	build_suidprobe || return
	plain_server || return
	TLSSHIM_RULES="deny *" prun ctl env LD_PRELOAD="$SHIM" "$PUB/suidprobe" "$SHIM" "$PORT" "$SENT"
	grep -q 'preloaded=1' "$OUT" || { fail "control: LD_PRELOAD did not load the shim into a normal program: $(head -1 "$OUT")"; return; }
	TLSSHIM_RULES="deny *" prun suid env LD_PRELOAD="$SHIM" "$PUB/suidprobe-setuid" "$SHIM" "$PORT" "$SENT"
	M_REASON=$(head -1 "$OUT")
	grep -q 'at_secure=1' "$OUT" || { fail "cannot run here: no AT_SECURE for the setuid copy: $(head -1 "$OUT")"; return; }
	grep -q 'preloaded=0' "$OUT" && ok "glibc did not preload the shim into the setuid program" ||
		fail "LD_PRELOAD loaded the shim into a setuid program: $(head -1 "$OUT")"
}

mcase policy_unreadable "plain echo; TLSSHIM_POLICY mode 0000, client as nobody" "EACCES, Permission denied"
mcase policy_is_directory "plain echo; TLSSHIM_POLICY=a directory" "EACCES, not a regular file"
mcase policy_missing "plain echo; TLSSHIM_POLICY=missing file" "EACCES"
mcase policy_exactly_1mib_loads "plain echo; policy file of exactly 1 MiB" "loads, connects"
mcase policy_over_1mib "plain echo; policy file of 1 MiB + 1 byte" "EACCES, larger than 1 MiB"
mcase policy_64mib_sparse "plain echo; 64 MiB sparse file" "EACCES, larger than 1 MiB"
mcase policy_nul_bytes "plain echo; policy with a NUL byte" "EACCES, NUL"
mcase policy_elf_binary "plain echo; policy = 64 KiB of an ELF binary" "EACCES"
mcase policy_control_chars "plain echo; policy with an ESC sequence" "EACCES"
mcase symlink_to_regular_file_works "plain echo; symlink -> regular policy file" "loads (by design)"
mcase symlink_dangling "plain echo; dangling symlink" "EACCES"
mcase symlink_loop "plain echo; symlink loop" "EACCES"
mcase symlink_to_dev_zero "plain echo; symlink -> /dev/zero" "EACCES, not a regular file"
mcase symlink_to_fifo_never_blocks "plain echo; symlink -> FIFO" "EACCES at once"
mcase symlink_to_directory "plain echo; symlink -> /etc" "EACCES"
mcase rule_4096_bytes_accepted "plain echo; TLSSHIM_RULES rule of 4096 bytes" "loads"
mcase rule_4097_bytes_rules "plain echo; TLSSHIM_RULES rule of 4097 bytes" "EACCES, longer than 4096"
mcase line_100k_in_file "plain echo; 100 KB line in a file" "EACCES, line 2"
mcase unterminated_quote_long "plain echo; name=\"aaa... unterminated" "EACCES"
mcase ten_thousand_rules_last_matches_tls "TLS echo; 10,002 rules in TLSSHIM_RULES, last = tls" "TLS on both connects, < 3 s"
mcase ten_thousand_rules_last_deny "plain echo; 10,002 rules, last = deny / plain" "EACCES / connects"
mcase ten_thousand_rules_in_file "plain echo; 10,002 rules in a file" "connects, < 2 s"
mcase ten_thousand_name_rules "plain echo; 10,000 name rules for the port (instant fake resolver)" "names cached: 3 connects = 1 connect's lookups"
mcase invalid_utf8_host_rules "plain echo; host h\\xff\\xfe.example" "EACCES, invalid host"
mcase invalid_utf8_name_option_file "plain echo; name=\\xc3\\x28.example in a file" "EACCES, line 2"
mcase invalid_utf8_sni_option "plain echo; sni=\\xe2\\x82" "EACCES, invalid sni"
mcase utf8_idn_name_not_punycode "plain echo; host bücher.example (UTF-8, not A-label)" "EACCES, invalid host"
mcase message_escapes_bytes "plain echo; host with ESC ] ... BEL" "EACCES, no raw ESC in message"
mcase setuid_ignores_tlsshim_env "setuid(nobody) probe run by root, shim dlopen()ed" "env ignored: connects plain, no log file"
mcase setuid_ld_preload_ignored_by_glibc "setuid(nobody) probe with LD_PRELOAD" "shim not loaded"
print_table() { # this file's table goes to stdout only
	echo
	echo "| case | server / input | expected | observed errno | message (excerpt) | result |"
	echo "| --- | --- | --- | --- | --- | --- |"
	printf '%s\n' "${M_ROWS[@]}"
}
print_table
finish
