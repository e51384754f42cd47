#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Debian package, for real: `make deb` (scripts/make-deb.sh: dpkg-buildpackage as nobody without
# network, lintian --fail-on error,warning; skipped when the package is up to date) builds it once; then
# it is installed with dpkg into an overlay over the Debian 12 minbase root the compatibility suite
# caches (build/compat-rootfs; the cached root is never written: all changes land in the overlay's upper
# directory in this test's temp dir). Inside that root (chroot, its own mount namespace): `tlsshim
# version`, `tlsshim run -- curl` against a TLS server outside the root, `tlsshim enable` on sample
# units (plain, template, RootDirectory=) with the drop-ins' text checked, removal refused while
# drop-ins exist, disable, purge, and then nothing left behind but dpkg's own records; and the
# TLSSHIM_REMOVE_DROPINS=1 path of the prerm. curl and its libraries are fetched from the Debian archive
# once (apt-get download) into build/deb-test-cache.
source "$(dirname "$0")/lib.sh" "${1:-build}"

SUITE_T0=$(date +%s)
ROOTFS=${TLSSHIM_DEB_ROOTFS:-$BUILD/compat-rootfs}
ROOTFS_STAMP="debootstrap --variant=minbase bookworm http://deb.debian.org/debian (tlsshim compat v1)"
CACHE=$BUILD/deb-test-cache
DEB=""
DEB_WHY=""

build_deb() {
	# TLSSHIM_DEB=FILE tests an already built package instead (for iterating on this file).
	if [ -n "${TLSSHIM_DEB:-}" ]; then
		DEB=$TLSSHIM_DEB
		cp "$BUILD/deb/lintian.txt" "$T/lintian.txt" 2>/dev/null
		return 0
	fi
	# The package build gets at most 420 s of this file's 600 s.
	if ! timeout -k 10 420 bash "$REPO/scripts/make-deb.sh" "$BUILD" >"$T/make-deb.log" 2>&1; then
		DEB_WHY="make deb failed: $(tail -5 "$T/make-deb.log" | tr '\n' ' ' | cut -c1-600)"
		return 1
	fi
	DEB=$(ls "$BUILD"/deb/tlsshim_*_amd64.deb 2>/dev/null | head -1)
	[ -n "$DEB" ] || { DEB_WHY="make deb made no .deb"; return 1; }
}

ensure_rootfs() {
	if [ -f "$ROOTFS/stamp" ] && [ "$(cat "$ROOTFS/stamp")" = "$ROOTFS_STAMP" ] && [ -x "$ROOTFS/root/bin/bash" ]; then
		return 0
	fi
	command -v debootstrap >/dev/null || { DEB_WHY="debootstrap is not installed"; return 1; }
	rm -rf "$ROOTFS/root.tmp" && mkdir -p "$ROOTFS"
	local budget=$((540 - ($(date +%s) - SUITE_T0)))
	[ "$budget" -gt 60 ] || { DEB_WHY="no time left for debootstrap"; return 1; }
	timeout -k 10 "$budget" debootstrap --variant=minbase bookworm "$ROOTFS/root.tmp" http://deb.debian.org/debian \
		>"$ROOTFS/debootstrap.log" 2>&1 || { DEB_WHY="debootstrap failed: $(tail -2 "$ROOTFS/debootstrap.log")"; rm -rf "$ROOTFS/root.tmp"; return 1; }
	mv "$ROOTFS/root.tmp" "$ROOTFS/root" && echo "$ROOTFS_STAMP" >"$ROOTFS/stamp"
}

# curl and everything it depends on, as .debs (once).
ensure_curl_debs() {
	[ -f "$CACHE/stamp" ] && ls "$CACHE"/curl_*.deb >/dev/null 2>&1 && return 0
	rm -rf "$CACHE" && mkdir -p "$CACHE"
	local pkgs
	pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
		--no-enhances curl 2>/dev/null | grep '^[a-z0-9]' | sort -u)
	(cd "$CACHE" && timeout 300 apt-get download -q $pkgs >"$T/download.log" 2>&1) ||
		{ DEB_WHY="apt-get download curl's closure failed: $(tail -2 "$T/download.log")"; return 1; }
	echo "$pkgs" >"$CACHE/stamp"
}

# The run inside the root, once; outputs in $T/out/NAME.{out,rc}.
RAN=0
run_inside() {
	build_deb && ensure_rootfs && ensure_curl_debs || return 1
	start_s_server www leaf -www || { DEB_WHY="s_server did not start"; return 1; }
	local port=$PORT
	mkdir -p "$T/ov/upper" "$T/ov/work" "$T/ov/merged" "$T/out"
	cat >"$T/inside.sh" <<'EOF'
set -u
R=$1 OV=$2 DEB=$3 CACHE=$4 OUTD=$5 CA=$6 PORT=$7
mount -t overlay overlay -o "lowerdir=$R,upperdir=$OV/upper,workdir=$OV/work" "$OV/merged" || exit 90
M=$OV/merged
mount -t proc proc "$M/proc" || exit 91
mkdir -p "$M/tmp/debs" && cp "$DEB" "$M/tmp/debs/" && cp "$CA" "$M/tmp/ca.pem" || exit 92
# step NAME CMD...: runs CMD in the root; output and exit status in OUTD.
step() {
	local n=$1
	shift
	timeout 60 chroot "$M" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@" >"$OUTD/$n.out" 2>&1
	echo $? >"$OUTD/$n.rc"
}
# curl's closure: only what the root lacks (or has in another version).
for d in "$CACHE"/*.deb; do
	p=$(dpkg-deb -f "$d" Package) v=$(dpkg-deb -f "$d" Version)
	have=$(chroot "$M" dpkg-query -W -f='${Version}' "$p" 2>/dev/null)
	[ "$have" = "$v" ] || cp "$d" "$M/tmp/debs/dep-$(basename "$d")"
done
if ls "$M"/tmp/debs/dep-*.deb >/dev/null 2>&1; then
	step deps sh -c 'dpkg -i /tmp/debs/dep-*.deb'
fi
snapshot() {
	chroot "$M" find / -xdev \( -path /proc -o -path /tmp -o -path /dev \) -prune -o -print 2>/dev/null |
		grep -Ev '^/(var/log/|var/lib/dpkg/|var/cache/debconf/)' | sort >"$OUTD/$1.files"
}
snapshot before
step install dpkg -i "/tmp/debs/$(basename "$DEB")"
step version tlsshim version
step status dpkg-query -W -f='${Status} ${Version} ${Depends} | ${Built-Using}' tlsshim
step conffiles sh -c 'cat /var/lib/dpkg/info/tlsshim.conffiles; grep -v "^#" /etc/tlsshim/policy | grep -c . || true'
step man sh -c 'ls /usr/share/man/man1/tlsshim.1.gz /usr/share/man/man5/tlsshim-policy.5.gz /usr/share/doc/tlsshim/examples/ /usr/share/doc/tlsshim/copyright'
step curl tlsshim run --rule "tls 127.0.0.1:$PORT name=localhost ca-file=/tmp/ca.pem" -- curl -sS --max-time 10 "http://127.0.0.1:$PORT/"
step curl_plain curl -sS --max-time 10 "http://127.0.0.1:$PORT/"
# Sample units.
mkdir -p "$M/lib/systemd/system"
printf '[Unit]\nDescription=sample\n\n[Service]\nEnvironment=LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0\nExecStart=/usr/bin/curl -s http://localhost:%s/\n' "$PORT" >"$M/lib/systemd/system/sample-web.service"
printf '[Service]\nExecStart=-/usr/bin/curl -s http://%%i/\n' >"$M/lib/systemd/system/sample-job@.service"
printf '[Service]\nRootDirectory=/srv/jail\nExecStart=/usr/bin/curl -s http://localhost/\n' >"$M/lib/systemd/system/sample-jail.service"
step enable_web tlsshim enable sample-web
step enable_job tlsshim enable sample-job@.service
step enable_inst tlsshim enable sample-job@example.org
step enable_jail tlsshim enable sample-jail
cp "$M/etc/systemd/system/sample-web.service.d/zz-tlsshim.conf" "$OUTD/web.dropin" 2>/dev/null
cp "$M/etc/systemd/system/sample-job@.service.d/zz-tlsshim.conf" "$OUTD/job.dropin" 2>/dev/null
ls -d "$M/etc/systemd/system/sample-jail.service.d" >"$OUTD/jail.dropin" 2>/dev/null
# Removal with drop-ins present stops and lists them; the package stays.
step remove_refused dpkg -r tlsshim
step still_installed dpkg-query -W -f='${Status}' tlsshim
step disable_web tlsshim disable sample-web
step disable_job tlsshim disable sample-job@.service
step disable_inst tlsshim disable sample-job@example.org
step purge dpkg --purge tlsshim
rm -f "$M"/lib/systemd/system/sample-*.service
snapshot after
# The other prerm path: TLSSHIM_REMOVE_DROPINS=1 removes the drop-ins and names them.
step install2 dpkg -i "/tmp/debs/$(basename "$DEB")"
printf '[Service]\nExecStart=/usr/bin/curl -s http://localhost/\n' >"$M/lib/systemd/system/sample-web.service"
step enable_web2 tlsshim enable sample-web
step purge2 env TLSSHIM_REMOVE_DROPINS=1 dpkg --purge tlsshim
ls "$M/etc/systemd/system/sample-web.service.d" >"$OUTD/after2.dropins" 2>&1
umount "$M/proc"
EOF
	TMO=260 prun inside timeout -k 5 240 unshare --mount --propagation private \
		bash "$T/inside.sh" "$ROOTFS/root" "$T/ov" "$DEB" "$CACHE" "$T/out" "$ROOT" "$port"
	[ "$RC" = 0 ] || { DEB_WHY="the script in the root failed (rc=$RC: 90 overlay, 91 proc, 92 copy): $(tail -3 "$ERR" | tr '\n' ' ')"; return 1; }
	RAN=1
}

need_ran() {
	[ "$RAN" = 1 ] && return 0
	fail "cannot run: $DEB_WHY"
	return 1
}
# out NAME: the output of a step; rc NAME: its exit status.
out() { cat "$T/out/$1.out" 2>/dev/null; }
rc() { cat "$T/out/$1.rc" 2>/dev/null || echo missing; }
step_ok() {
	[ "$(rc "$1")" = 0 ] && return 0
	fail "step $1: exit $(rc "$1"): $(out "$1" | tail -5 | tr '\n' ' ' | cut -c1-500)"
	return 1
}

t_build_and_lintian() {
	need dpkg-buildpackage lintian unshare chroot || return
	run_inside
	[ -n "$DEB" ] || { fail "cannot run: $DEB_WHY"; return; }
	CASE_LOGS+=("$BUILD/deb/lintian.txt")
	grep -Eq '^[EW]: ' "$BUILD/deb/lintian.txt" && { fail "lintian: $(grep -E '^[EW]: ' "$BUILD/deb/lintian.txt" | head -5)"; return; }
	local f
	f=$(dpkg-deb -f "$DEB" Depends)
	[[ $f =~ ^libc6\ \(\>=\ [0-9.]+\)$ ]] || { fail "Depends: '$f' (libc only expected)"; return; }
	f=$(dpkg-deb -f "$DEB" Built-Using)
	[[ $f =~ ^wolfssl\ \(=\ 5\.5\.4-[^\)]+\)$ ]] || { fail "Built-Using: '$f'"; return; }
	ls "$BUILD"/deb/tlsshim_*.orig-wolfssl.tar.gz "$BUILD"/deb/tlsshim_*.dsc >/dev/null 2>&1 || { fail "no component tarball or .dsc"; return; }
	grep -q '^Format: 3.0 (quilt)' "$BUILD"/deb/tlsshim_*.dsc || { fail "the source package is not 3.0 (quilt)"; return; }
	ok "lintian clean; Depends: $(dpkg-deb -f "$DEB" Depends); Built-Using: $f"
}

t_installed_version_and_files() {
	need_ran || return
	step_ok install && step_ok version || return
	local v
	v=$(dpkg-parsechangelog -l "$REPO/debian/changelog" -S Version)
	out version | grep -qx "tlsshim ${v%-*}" || { fail "version prints '$(out version | head -1)', changelog says ${v%-*}"; return; }
	out version | grep -qx 'library: /usr/lib/x86_64-linux-gnu/tlsshim/libtlsshim.so' || { fail "library: $(out version | grep library)"; return; }
	step_ok man || return
	out conffiles | grep -qx /etc/tlsshim/policy || { fail "/etc/tlsshim/policy is not a conffile: $(out conffiles)"; return; }
	[ "$(out conffiles | tail -1)" = 0 ] || { fail "the shipped policy has rules: it must change nothing until edited"; return; }
	ok "$(out version | head -1); conffile /etc/tlsshim/policy without rules"
}

t_run_curl_inside() {
	need_ran || return
	step_ok curl || return
	out curl | grep -q 's_server' || { fail "no page: $(out curl | head -c 200)"; return; }
	# Control: without the shim the TLS server refuses curl's plaintext.
	out curl_plain | grep -q 's_server' && { fail "control: plain curl got the page from a TLS server?"; return; }
	ok "curl in the Debian root reached the TLS server outside through the installed library"
}

t_enable_inside() {
	need_ran || return
	step_ok enable_web && step_ok enable_job && step_ok enable_inst || return
	local lib=/usr/lib/x86_64-linux-gnu/tlsshim/libtlsshim.so
	# A merged-/usr root (bookworm's debootstrap) finds the unit in /usr/lib/systemd/system first.
	local unitdir=/lib/systemd/system want_web
	[ -L "$ROOTFS/root/lib" ] && unitdir=/usr/lib/systemd/system
	want_web=$(printf '%s\n' \
		"# Written by tlsshim enable $(out version | head -1 | cut -d' ' -f2) for sample-web.service. Remove it with: tlsshim disable sample-web.service" \
		"# It sorts after every other drop-in, so this LD_PRELOAD (which keeps the unit's own entries, from $unitdir/sample-web.service:5)" \
		"# is the one the service gets." \
		"[Service]" \
		"Environment=\"LD_PRELOAD=$lib:/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0\" \"TLSSHIM_POLICY=/etc/tlsshim/policy\"")
	[ "$(cat "$T/out/web.dropin" 2>/dev/null)" = "$want_web" ] || { fail "sample-web drop-in: $(cat "$T/out/web.dropin" 2>&1)"; return; }
	grep -qx "Environment=\"LD_PRELOAD=$lib\" \"TLSSHIM_POLICY=/etc/tlsshim/policy\"" "$T/out/job.dropin" || { fail "template drop-in: $(cat "$T/out/job.dropin" 2>&1)"; return; }
	[ "$(rc enable_jail)" = 1 ] && out enable_jail | grep -q 'RootDirectory=/srv/jail' || { fail "RootDirectory= not refused: $(rc enable_jail) $(out enable_jail)"; return; }
	[ -s "$T/out/jail.dropin" ] && { fail "a drop-in directory was made for the refused unit"; return; }
	out enable_web | grep -q 'systemctl daemon-reload && systemctl restart sample-web.service' || { fail "no restart line"; return; }
	ok "plain and template drop-ins as expected, RootDirectory= refused"
}

t_remove_guard_and_purge() {
	need_ran || return
	[ "$(rc remove_refused)" != 0 ] || { fail "dpkg -r succeeded with drop-ins present"; return; }
	out remove_refused | grep -q 'sample-web.service' && out remove_refused | grep -q 'sample-job@.service' ||
		{ fail "the refusal does not list the services: $(out remove_refused)"; return; }
	out still_installed | grep -q 'install ok installed' || { fail "package state after the refused removal: $(out still_installed)"; return; }
	step_ok disable_web && step_ok disable_job && step_ok disable_inst && step_ok purge || return
	local diff
	diff=$(diff "$T/out/before.files" "$T/out/after.files")
	[ -z "$diff" ] || { fail "left behind after purge: $(echo "$diff" | head -10 | tr '\n' ' ')"; return; }
	step_ok purge2 || return
	out purge2 | grep -q 'removed /etc/systemd/system/sample-web.service.d/zz-tlsshim.conf' || { fail "TLSSHIM_REMOVE_DROPINS=1 did not say what it removed: $(out purge2)"; return; }
	grep -q 'No such file' "$T/out/after2.dropins" || { fail "drop-in left after TLSSHIM_REMOVE_DROPINS=1 purge: $(cat "$T/out/after2.dropins")"; return; }
	ok "removal refused with the list; after disable + purge the root is as before ($(wc -l <"$T/out/before.files") paths compared)"
}

tcase build_and_lintian
tcase installed_version_and_files
tcase run_curl_inside
tcase enable_inside
tcase remove_guard_and_purge
finish
