#!/usr/bin/env bash
# tests/compat/install-deps.sh: installs the Debian packages the compatibility suite needs
# (tests/integration/test_compat.sh). Idempotent and quiet when everything is there; runs
# `apt-get update` once, only when something is missing. Never starts a service: packages whose
# postinst would start a daemon (redis-server, mosquitto, slapd) are installed with a temporary
# /usr/sbin/policy-rc.d that forbids it, when the machine has none already.
#   install-deps.sh            everything (node and the JDK only when `node` / `java` are missing)
#   install-deps.sh --check    print what is missing, install nothing (exit 1 when something is)
set -uo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

PKGS=(openssl ca-certificates curl wget netcat-openbsd python3 perl iproute2 stunnel4
      redis-server redis-tools mosquitto mosquitto-clients slapd ldap-utils
      debootstrap gcc libc6-dev binutils util-linux coreutils python3-yaml iputils-ping)
# node and the JVM: this machine may already have them from elsewhere (e.g. a nodesource build).
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
# `java Client.java` (single-file source launch) needs the jdk.compiler module: a JDK, not a JRE.
if ! command -v java >/dev/null 2>&1 || ! java --list-modules 2>/dev/null | grep -q '^jdk.compiler'; then
	PKGS+=(default-jdk-headless)
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "${1:-}" = --check ]; then
	echo "compat install-deps: missing ${missing[*]}"
	exit 1
fi

echo "compat install-deps: installing ${missing[*]}"
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\n# temporary: tests/compat/install-deps.sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod 755 /usr/sbin/policy-rc.d
	made_policy=1
fi
cleanup() { [ "$made_policy" = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d; }
trap cleanup EXIT

rc=0
timeout -k 10 180 $SUDO apt-get update -qq || echo "compat install-deps: apt-get update failed (continuing with the lists there are)"
# -o Dpkg::Options: keep any existing configuration file; slapd's debconf questions take their
# defaults (noninteractive); the suite never uses the system slapd/redis/mosquitto configuration.
if ! timeout -k 10 240 $SUDO apt-get install -y -qq --no-install-recommends \
	-o Dpkg::Options::=--force-confold "${missing[@]}" >/tmp/compat-apt.log 2>&1; then
	rc=1
	echo "compat install-deps: apt-get install failed; last lines:"
	tail -15 /tmp/compat-apt.log
	# Install what can be installed, one at a time (bounded), so one broken package costs one case.
	for p in "${missing[@]}"; do
		timeout -k 10 60 $SUDO apt-get install -y -qq --no-install-recommends \
			-o Dpkg::Options::=--force-confold "$p" >>/tmp/compat-apt.log 2>&1 ||
			echo "compat install-deps: $p did not install"
	done
fi
exit $rc
