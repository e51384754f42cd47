#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `tlsshim enable` / `tlsshim disable` against unit files in a root of the test's own (--root DIR): the
# unit search path, drop-ins and templates, ExecStart= prefixes and specifiers, the checks shared with
# `tlsshim run` (static, setuid, another machine) on real binaries, the refusals (RootDirectory=,
# RootImage=, a missing library or policy, an EnvironmentFile= that sets LD_PRELOAD), the exact drop-in
# text, and that the drop-in's LD_PRELOAD really loads the library (the unit's program is run with the
# environment the drop-in gives it). The .deb test (test_deb.sh) repeats enable inside a Debian root.
source "$(dirname "$0")/lib.sh" "${1:-build}"

TLSSHIM=$BUILD/tlsshim
R=$T/root
LIB=$("$TLSSHIM" version | sed -n 's/^library: //p')

# A root with a unit directory, a policy, the library at the path the drop-in names, and programs.
mkroot() {
	rm -rf "$R"
	mkdir -p "$R/etc/systemd/system" "$R/lib/systemd/system" "$R/usr/bin" "$R/etc/tlsshim" "$R$(dirname "$LIB")"
	cp "$LIB" "$R$LIB"
	cp /bin/true "$R/usr/bin/true"
	cp "$(readlink -f /usr/bin/python3)" "$R/usr/bin/python3"
	echo "tls localhost:8443 ca-file=$ROOT" >"$R/etc/tlsshim/policy"
}
unit() { cat >"$R/lib/systemd/system/$1"; }
# en NAME ARGS...: tlsshim enable --root $R ARGS...
en() {
	local name=$1
	shift
	prun "$name" "$TLSSHIM" enable --root "$R" "$@"
}
dropin() { cat "$R/etc/systemd/system/$1.d/zz-tlsshim.conf" 2>/dev/null; }
env_line() { dropin "$1" | grep '^Environment='; }
no_dropin() {
	if [ -e "$R/etc/systemd/system/$1.d/zz-tlsshim.conf" ]; then
		fail "a drop-in was written for $1 although it was refused"
		return 1
	fi
}
want_rc() {
	[ "$RC" = "$1" ] && return 0
	fail "exit status $RC, expected $1: $(head -c 400 "$ERR")"
	return 1
}

t_plain_unit() {
	mkroot
	printf '[Unit]\nDescription=web\n\n[Service]\nEnvironment="A=b c" LD_PRELOAD=/usr/lib/libfoo.so\nExecStart=-/usr/bin/python3 -m http.server \\\n  8080\n' |
		unit web.service
	en plain web
	want_rc 0 || return
	local want="Environment=\"LD_PRELOAD=$LIB:/usr/lib/libfoo.so\" \"TLSSHIM_POLICY=/etc/tlsshim/policy\""
	[ "$(env_line web.service)" = "$want" ] || { fail "drop-in line is '$(env_line web.service)', want '$want'"; return; }
	dropin web.service | head -1 | grep -q '^# Written by tlsshim enable' || { fail "no marker line: $(dropin web.service | head -1)"; return; }
	dropin web.service | grep -qx '\[Service\]' || { fail "no [Service] section"; return; }
	grep -q 'systemctl daemon-reload && systemctl restart web.service' "$OUT" || { fail "no restart line: $(cat "$OUT")"; return; }
	grep -qF "Wrote $R/etc/systemd/system/web.service.d/zz-tlsshim.conf" "$OUT" || { fail "does not say what it wrote"; return; }
	ok "$want"
}

# What the drop-in says is what loads the library: the program runs with that environment (as systemd
# would give it) and the shim refuses a deny destination, which it can only do if it is loaded.
t_dropin_loads_library() {
	mkroot
	echo "deny 127.0.0.1:9" >"$R/etc/tlsshim/policy"
	printf '[Service]\nExecStart=/usr/bin/python3 -c pass\n' | unit py.service
	en env py
	want_rc 0 || return
	local pre
	pre=$(env_line py.service | sed -n 's/^Environment="LD_PRELOAD=\([^"]*\)".*/\1/p')
	[ "$pre" = "$LIB" ] || { fail "LD_PRELOAD is '$pre'"; return; }
	prun run env LD_PRELOAD="$pre" TLSSHIM_POLICY="$R/etc/tlsshim/policy" python3 -c \
		'import socket,sys
try:
    socket.create_connection(("127.0.0.1", 9), timeout=5)
except PermissionError:
    print("EACCES"); sys.exit(0)
except OSError as e:
    print("other", e); sys.exit(1)'
	[ "$RC" = 0 ] && grep -q EACCES "$OUT" && grep -q 'denied by rule' "$ERR" && ok "the drop-in's LD_PRELOAD loads the shim (deny enforced)" ||
		fail "rc=$RC out=$(cat "$OUT") err=$(head -c 300 "$ERR")"
}

t_dropins_and_prefixes() {
	mkroot
	printf '[Service]\nExecStart=/usr/bin/true\n' | unit api.service
	# A drop-in of the unit's own replaces ExecStart= (reset, then a new one with prefixes).
	mkdir -p "$R/etc/systemd/system/api.service.d"
	printf '[Service]\nExecStart=\nExecStart=!!@/usr/bin/python3 api-server --port 1\nEnvironment=LD_PRELOAD=/opt/x.so\n' \
		>"$R/etc/systemd/system/api.service.d/override.conf"
	en dropins api
	want_rc 0 || return
	env_line api.service | grep -qF "LD_PRELOAD=$LIB:/opt/x.so\"" || { fail "the override.conf LD_PRELOAD was not kept: $(env_line api.service)"; return; }
	# The same drop-in now points ExecStart= at a static program: refused, so the drop-in was read.
	gcc -static -O2 -o "$R/usr/bin/static-prog" -x c - <<<'int main(void){return 0;}' || { fail "gcc -static failed"; return; }
	printf '[Service]\nExecStart=\nExecStart=-/usr/bin/static-prog\n' >"$R/etc/systemd/system/api.service.d/override.conf"
	en dropins2 api
	want_rc 1 || return
	grep -q 'static-prog is statically linked' "$ERR" || { fail "no static refusal: $(head -c 300 "$ERR")"; return; }
	grep -q 'override.conf:3' "$ERR" || { fail "the refusal does not name the drop-in line: $(head -c 300 "$ERR")"; return; }
	# Re-enabling over our own earlier drop-in starts from the unit's own settings (ours is skipped).
	ok "override.conf read (ExecStart reset, !!@ prefixes, LD_PRELOAD kept)"
}

t_template() {
	mkroot
	printf '[Service]\nExecStart=/usr/bin/%%p-%%i\n' | unit worker@.service
	cp /bin/true "$R/usr/bin/worker-blue"
	en inst worker@blue
	want_rc 0 || return
	[ -n "$(env_line worker@blue.service)" ] || { fail "no drop-in for the instance"; return; }
	# An instance whose %i names a program that is not there is refused (specifiers are expanded).
	en inst2 worker@green
	want_rc 1 || return
	grep -q '/usr/bin/worker-green is not there' "$ERR" || { fail "no missing-program refusal: $(head -c 300 "$ERR")"; return; }
	no_dropin worker@green.service || return
	# The template itself: the drop-in covers every instance.
	printf '[Service]\nExecStart=/usr/bin/true %%i\n' | unit pool@.service
	en tmpl pool@.service
	want_rc 0 || return
	[ -n "$(env_line pool@.service)" ] && grep -q "restart 'pool@\*.service'" "$OUT" && ok "instance, template, specifiers" ||
		fail "template drop-in or hint missing: $(cat "$OUT")"
}

t_refusals() {
	mkroot
	local why=()
	printf '[Service]\nRootDirectory=/srv/jail\nExecStart=/usr/bin/true\n' | unit jail.service
	en rootdir jail
	[ "$RC" = 1 ] && grep -q 'RootDirectory=/srv/jail' "$ERR" && no_dropin jail.service || why+=("RootDirectory: rc=$RC")
	printf '[Service]\nRootImage=/srv/img.raw\nExecStart=/usr/bin/true\n' | unit img.service
	en rootimg img
	[ "$RC" = 1 ] && grep -q 'RootImage=/srv/img.raw' "$ERR" && no_dropin img.service || why+=("RootImage: rc=$RC")
	cp /bin/true "$R/usr/bin/suid-true" && chmod 4755 "$R/usr/bin/suid-true"
	printf '[Service]\nExecStart=/usr/bin/suid-true\n' | unit suid.service
	en suid suid
	[ "$RC" = 1 ] && grep -q 'is setuid' "$ERR" && no_dropin suid.service || why+=("setuid: rc=$RC")
	# A real binary with its ELF machine changed to AArch64 (183).
	cp /bin/true "$R/usr/bin/arm-true" && printf '\xb7\x00' | dd of="$R/usr/bin/arm-true" bs=1 seek=18 conv=notrunc 2>/dev/null
	printf '[Service]\nExecStart=/usr/bin/arm-true\n' | unit arm.service
	en arm arm
	[ "$RC" = 1 ] && grep -q 'another machine' "$ERR" && no_dropin arm.service || why+=("machine: rc=$RC")
	printf '[Service]\nEnvironmentFile=-/etc/default/envy\nExecStart=/usr/bin/true\n' | unit envy.service
	mkdir -p "$R/etc/default" && echo 'LD_PRELOAD=/usr/lib/other.so' >"$R/etc/default/envy"
	en envfile envy
	[ "$RC" = 1 ] && grep -q 'EnvironmentFile=/etc/default/envy sets LD_PRELOAD' "$ERR" && no_dropin envy.service || why+=("EnvironmentFile: rc=$RC")
	echo 'OTHER=1' >"$R/etc/default/envy"
	en envfile2 envy
	[ "$RC" = 0 ] && grep -q 'warning: EnvironmentFile=/etc/default/envy' "$ERR" || why+=("EnvironmentFile warning: rc=$RC")
	printf '[Service]\nExecStart=/usr/bin/true\n' | unit ok.service
	en badpolicy --policy /etc/tlsshim/missing ok
	[ "$RC" = 1 ] && no_dropin ok.service || why+=("missing policy: rc=$RC")
	printf 'tls localhost:8443 bogus=1\n' >"$R/etc/tlsshim/broken"
	en brokenpolicy --policy /etc/tlsshim/broken ok
	[ "$RC" = 1 ] && grep -q 'broken:1' "$ERR" && no_dropin ok.service || why+=("broken policy: rc=$RC")
	rm -f "$R$LIB"
	en nolib ok
	[ "$RC" = 1 ] && grep -q "library $LIB is not in" "$ERR" && no_dropin ok.service || why+=("missing library: rc=$RC")
	en nounit nosuch
	[ "$RC" = 1 ] && grep -q 'no unit file for nosuch.service' "$ERR" || why+=("missing unit: rc=$RC")
	en socket foo.socket
	[ "$RC" = 1 ] && grep -q 'not a service' "$ERR" || why+=("socket unit: rc=$RC")
	ln -s /dev/null "$R/etc/systemd/system/masked.service"
	en masked masked
	[ "$RC" = 1 ] && grep -q 'masked' "$ERR" || why+=("masked: rc=$RC")
	[ ${#why[@]} = 0 ] && ok "12 refusals, no drop-in written" || fail "${why[*]}"
}

t_unit_path_and_notes() {
	mkroot
	mkdir -p "$R/opt/units"
	printf '[Service]\nDynamicUser=yes\nProtectSystem=strict\nExecStart=python3 -c pass\n' >"$R/opt/units/dyn.service"
	chmod 0600 "$R/etc/tlsshim/policy"
	SYSTEMD_UNIT_PATH=/opt/units: prun unitpath "$TLSSHIM" enable --root "$R" dyn
	want_rc 0 || return
	grep -q 'DynamicUser=yes' "$ERR" && grep -q 'not world-readable' "$ERR" || { fail "no DynamicUser warning: $(cat "$ERR")"; return; }
	grep -q 'ProtectSystem=strict' "$ERR" || { fail "no ProtectSystem note"; return; }
	ok "SYSTEMD_UNIT_PATH, bare ExecStart name found on systemd's path, DynamicUser/ProtectSystem notes"
}

t_audit_option() {
	mkroot
	printf '[Service]\nExecStart=/usr/bin/true\n' | unit aud.service
	en audit --audit --policy /etc/tlsshim/policy aud
	want_rc 0 || return
	env_line aud.service | grep -q '"TLSSHIM_MODE=audit"' && ok || fail "no TLSSHIM_MODE=audit: $(env_line aud.service)"
}

t_disable() {
	mkroot
	printf '[Service]\nExecStart=/usr/bin/true\n' | unit d.service
	mkdir -p "$R/etc/systemd/system/d.service.d"
	echo '[Service]' >"$R/etc/systemd/system/d.service.d/keep.conf"
	en en d
	want_rc 0 || return
	prun dis "$TLSSHIM" disable --root "$R" d
	want_rc 0 || return
	[ ! -e "$R/etc/systemd/system/d.service.d/zz-tlsshim.conf" ] && [ -e "$R/etc/systemd/system/d.service.d/keep.conf" ] ||
		{ fail "disable removed the wrong files"; return; }
	grep -q 'systemctl daemon-reload && systemctl restart d.service' "$OUT" || { fail "no restart line"; return; }
	prun dis2 "$TLSSHIM" disable --root "$R" d
	want_rc 1 || return
	mkdir -p "$R/etc/systemd/system/e.service.d" && echo '[Service]' >"$R/etc/systemd/system/e.service.d/zz-tlsshim.conf"
	prun dis3 "$TLSSHIM" disable --root "$R" e
	want_rc 1 || return
	[ -e "$R/etc/systemd/system/e.service.d/zz-tlsshim.conf" ] && grep -q 'not written by tlsshim enable' "$ERR" &&
		ok "removes only its own drop-in" || fail "a foreign drop-in was touched"
}

tcase plain_unit
tcase dropin_loads_library
tcase dropins_and_prefixes
tcase template
tcase refusals
tcase unit_path_and_notes
tcase audit_option
tcase disable
finish
