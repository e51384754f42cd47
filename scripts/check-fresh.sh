#!/usr/bin/env bash
# scripts/check-fresh.sh [BUILD_DIR] (make check-fresh): the README's two commands, `make demo` then
# `make check`, run as a new user runs them on a stock Debian 12 machine: in a debootstrap'd minbase
# root, on a clone of the committed tree (HEAD: uncommitted changes are not in it). Needs root and the
# Debian archive; it is for developers before they stop, not for .ci/run.
#
#  - The base root (debootstrap --variant=minbase bookworm, the compatibility suite's mechanism) is
#    made once and cached in BUILD/fresh-rootfs/base, keyed by BUILD/fresh-rootfs/stamp. It is never
#    written after that: every run works in an overlay whose upper layer is a fresh directory.
#  - Downloaded packages are kept in BUILD/fresh-rootfs/apt-archives (bind-mounted on
#    /var/cache/apt/archives), so later runs install from there instead of downloading again.
#  - What a stock machine has and debootstrap does not make: /etc/hosts as Debian's installer writes it
#    (localhost is 127.0.0.1 and ::1) and /etc/hostname. The one-line /etc/apt/sources.list stays as
#    debootstrap wrote it (deb lines only): install-deps.sh must add the deb-src lines itself.
#  - /usr/sbin/policy-rc.d says "no" (exit 101, as Debian's container images do): daemons whose
#    packages the tests install (stunnel4, redis-server, mosquitto, slapd) must not start from a chroot
#    that shares this machine's network. On a booted machine they would start under systemd; the tests
#    never use them and start their own instances on free ports.
#  - / is a mount point (the overlay, bind-mounted onto itself), with /proc, /sys, /dev, /dev/pts,
#    /dev/shm and /run as on a booted machine, in a private mount namespace that dies with the run.
#  - The network is this machine's (the archive is needed); loopback is shared, so the tests' free
#    ports keep them apart, and the compatibility suite's machine-wide lock file is bind-mounted from
#    this machine, so its fixed 10.203.0.x addresses are never used by two runs at once.
# The last line is "check-fresh: make demo OK|FAILED (exit N); make check: <its last line> (exit N)";
# exit status 0 only when both commands succeeded. Full log: BUILD/fresh-rootfs/last-run.log.
#   CHECK_FRESH_KEEP=1   keep the run's upper layer (BUILD/fresh-rootfs/run.*) for inspection
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD_ARG=${1:-build}
case $BUILD_ARG in /*) BUILD=$BUILD_ARG ;; *) BUILD=$REPO/$BUILD_ARG ;; esac
CACHE=$BUILD/fresh-rootfs
BASE=$CACHE/base
STAMP="debootstrap --variant=minbase bookworm http://deb.debian.org/debian (tlsshim check-fresh v1)"
# The whole run (package installation, the wolfSSL build, the demo and the suite) is bounded.
RUN_LIMIT=${CHECK_FRESH_LIMIT:-5400}

die() {
	echo "check-fresh: $*" >&2
	exit 2
}

# ---------- inside the private mount namespace (the script runs itself with __inside) ----------
inside() {
	local W=$1 SHA=$2
	local M=$W/root
	mkdir -p "$W/upper" "$W/work" "$M"
	mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$W/upper,workdir=$W/work" "$M" || die "overlay mount failed"
	mount --bind "$M" "$M" || die "bind-mounting the root onto itself failed"
	mount -t proc proc "$M/proc" && mount -t sysfs sysfs "$M/sys" && mount --rbind /dev "$M/dev" &&
		mount --make-rslave "$M/dev" && mount -t tmpfs -o mode=755 tmpfs "$M/run" || die "mounting /proc /sys /dev /run failed"
	mkdir -p "$M/run/lock" "$M/dev/shm" "$CACHE/apt-archives/partial"
	# /tmp on this machine's own file system, as /tmp is on a booted one: an overlay's upper layer cannot
	# be an overlay itself, and the compatibility suite makes overlays under /tmp.
	mkdir -p "$W/tmp" && chmod 1777 "$W/tmp" && mount --bind "$W/tmp" "$M/tmp" || die "bind-mounting /tmp failed"
	mount --bind "$CACHE/apt-archives" "$M/var/cache/apt/archives" || die "bind-mounting the package cache failed"
	local lock=${TMPDIR:-/tmp}/tlsshim-compat.lock
	touch "$lock" "$M/tmp/tlsshim-compat.lock" && mount --bind "$lock" "$M/tmp/tlsshim-compat.lock" ||
		die "sharing the compatibility suite's lock file failed"

	# A stock machine's files (see the header).
	printf '127.0.0.1\tlocalhost\n127.0.1.1\tfresh\n\n# The following lines are desirable for IPv6 capable hosts\n::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n' >"$M/etc/hosts"
	echo fresh >"$M/etc/hostname"
	cp /etc/resolv.conf "$M/etc/resolv.conf"
	printf '#!/bin/sh\n# check-fresh: no daemon starts from this chroot\nexit 101\n' >"$M/usr/sbin/policy-rc.d"
	chmod 755 "$M/usr/sbin/policy-rc.d"

	# The committed tree, cloned as a user would.
	git clone -q --no-checkout "$REPO" "$M/root/tlsshim" && git -C "$M/root/tlsshim" checkout -q --detach "$SHA" ||
		die "git clone of $REPO at $SHA failed"

	# The README: "if make itself is missing, apt-get install make first"; then the two commands.
	cat >"$M/root/check-fresh-run.sh" <<'EOF'
set -u
cd /root/tlsshim
echo "== check-fresh: apt-get install make"
apt-get -o DPkg::Lock::Timeout=900 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends make >/dev/null
echo "make_install_rc=$?" >/root/rc.txt
echo "== check-fresh: make demo"
make demo
echo "demo_rc=$?" >>/root/rc.txt
echo "== check-fresh: make check"
make check
echo "check_rc=$?" >>/root/rc.txt
EOF
	timeout -k 30 "$RUN_LIMIT" chroot "$M" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root TERM=dumb bash /root/check-fresh-run.sh
	echo "run_rc=$?" >>"$M/root/rc.txt"
	cp "$M/root/rc.txt" "$W/rc.txt"

	# Nothing started in the chroot may outlive the run (the namespace's mounts go with its last process).
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$M" ] && kill -9 "${p#/proc/}" 2>/dev/null
	done
	return 0
}

if [ "${1:-}" = __inside ]; then
	BASE=$2
	CACHE=$3
	REPO=$4
	inside "$5" "$6"
	exit 0
fi

# ---------- outside ----------
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, mounts, chroot); run it as root or with sudo"
command -v git >/dev/null || die "needs git (it clones the committed tree)"
SHA=$(git -C "$REPO" rev-parse HEAD) || die "$REPO is not a git checkout"
git -C "$REPO" diff --quiet HEAD 2>/dev/null ||
	echo "check-fresh: note: uncommitted changes in $REPO are not tested (only HEAD $SHA is cloned)"
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
	--no-install-recommends debootstrap >/dev/null || die "debootstrap is missing and could not be installed"
mkdir -p "$CACHE"

# The base root: made once, under a lock, into a temporary name first.
exec 9>>"$CACHE/.lock"
flock 9
if ! { [ -f "$CACHE/stamp" ] && [ "$(cat "$CACHE/stamp")" = "$STAMP" ] && [ -x "$BASE/bin/bash" ]; }; then
	echo "check-fresh: making the Debian 12 minbase root (debootstrap, about a minute; cached in $BASE)"
	rm -rf "$BASE" "$BASE.tmp" "$CACHE/stamp"
	if ! timeout -k 10 900 debootstrap --variant=minbase bookworm "$BASE.tmp" http://deb.debian.org/debian \
		>"$CACHE/debootstrap.log" 2>&1; then
		tail -5 "$CACHE/debootstrap.log"
		rm -rf "$BASE.tmp"
		die "debootstrap failed (log: $CACHE/debootstrap.log)"
	fi
	mv "$BASE.tmp" "$BASE" && echo "$STAMP" >"$CACHE/stamp"
fi
flock -u 9

W=$(mktemp -d "$CACHE/run.XXXXXX")
LOG=$CACHE/last-run.log
echo "check-fresh: HEAD $SHA in a fresh Debian 12 minbase root ($W); log: $LOG"
t0=$(date +%s)
unshare --mount --propagation private bash "$0" __inside "$BASE" "$CACHE" "$REPO" "$W" "$SHA" >"$LOG" 2>&1
urc=$?
secs=$(($(date +%s) - t0))
rc_of() { sed -n "s/^$1=//p" "$W/rc.txt" 2>/dev/null | tail -1; }
demo_rc=$(rc_of demo_rc)
check_rc=$(rc_of check_rc)
echo "--- make demo (last lines)"
sed -n '/^== check-fresh: make demo/,/^== check-fresh: make check/p' "$LOG" | grep -av '^== check-fresh' | tail -8
echo "--- make check (FAIL lines and last lines)"
sed -n '/^== check-fresh: make check/,$p' "$LOG" | grep -a '^FAIL ' | sort -u | head -40
tail -3 "$LOG"
check_last=$(grep -aE '^[0-9]+ passed, [0-9]+ failed$' "$LOG" | tail -1)
if [ "${CHECK_FRESH_KEEP:-0}" = 1 ]; then
	echo "check-fresh: kept $W"
else
	rm -rf "$W"
fi
demo_word=FAILED
[ "$demo_rc" = 0 ] && demo_word=OK
echo "check-fresh: make demo $demo_word (exit ${demo_rc:-none}); make check: ${check_last:-no summary line} (exit ${check_rc:-none}); $secs s (namespace exit $urc)"
[ "$demo_rc" = 0 ] && [ "$check_rc" = 0 ]
