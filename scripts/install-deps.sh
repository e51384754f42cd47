#!/usr/bin/env bash
# Installs every Debian package the build, the demo and the tests need. Idempotent; quiet when all is there.
# Run as root on Debian 12 (or with sudo available).
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
PKGS=(build-essential autoconf automake libtool pkg-config dpkg-dev
      libcriterion-dev openssl ca-certificates curl netcat-openbsd python3 stunnel4 socat
      iproute2 valgrind clang libclang-rt-14-dev clang-format tcpdump)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# wolfSSL's source package needs a deb-src entry for the same archive.
src=/etc/apt/sources.list.d/debian.sources
if [ -f "$src" ] && ! grep -q '^Types:.*deb-src' "$src"; then
  echo "install-deps: enabling deb-src in $src"
  $SUDO sed -i 's/^Types: deb$/Types: deb deb-src/' "$src"
  $SUDO apt-get update -qq
fi
