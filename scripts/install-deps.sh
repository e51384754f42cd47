#!/usr/bin/env bash
# Installs every Debian package the build, the demo and the tests need. Idempotent; quiet when all is there.
# Run as root on Debian 12 (or with sudo available).
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
PKGS=(build-essential autoconf automake libtool pkg-config dpkg-dev
      libcriterion-dev openssl ca-certificates curl netcat-openbsd python3 stunnel4 socat
      iproute2 valgrind clang libclang-rt-14-dev clang-format tcpdump
      # harness: `man` for the man-page test (tests/integration/test_cli.sh man_pages); debootstrap for
      # `make check-fresh` and the container test
      man-db debootstrap
      # server side (tests/integration/test_serve.sh): real daemons under `serve` rules and their clients
      nginx redis-server redis-tools mosquitto mosquitto-clients nodejs
      # make deb and its test (debhelper, lintian, fakeroot; git lists the tracked files for the source
      # tarball); promtool (prometheus checks TLSSHIM_METRICS_FILE)
      debhelper lintian fakeroot git prometheus
      # starttls= and proxy= tests: real servers that require TLS, and the proxies
      postgresql-15 postgresql-client-15 dovecot-imapd dovecot-pop3d slapd ldap-utils postfix msmtp
      tinyproxy dante-server
      # readiness tests (tests/integration/test_readiness.sh): PHP's file_get_contents
      php-cli
      # serve nginx_keepalive_syscalls: counts the worker's system calls per keep-alive request
      strace)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# wolfSSL's source package needs a deb-src entry for the same archive: deb822 files (Debian 12's
# container images: /etc/apt/sources.list.d/debian.sources) get "Types: deb deb-src"; a one-line
# /etc/apt/sources.list (debootstrap, some installs) gets a deb-src twin of each deb line.
src=/etc/apt/sources.list.d/debian.sources
list=/etc/apt/sources.list
if [ -f "$src" ] && ! grep -q '^Types:.*deb-src' "$src"; then
  echo "install-deps: enabling deb-src in $src"
  $SUDO sed -i 's/^Types: deb$/Types: deb deb-src/' "$src"
  $SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
elif [ ! -f "$src" ] && [ -f "$list" ] && grep -q '^deb ' "$list" && ! grep -q '^deb-src ' "$list"; then
  echo "install-deps: adding deb-src lines to $list"
  sed -n 's/^deb \(.*\)$/deb-src \1/p' "$list" | $SUDO tee -a "$list" >/dev/null
  $SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
fi
