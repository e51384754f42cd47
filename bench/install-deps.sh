#!/usr/bin/env bash
# Installs the Debian packages `make bench` needs (idempotent, quiet when all is there). Run as root or with sudo.
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
# nginx, wrk, curl: the server section (nginx's own TLS vs the shim's serve rule vs stunnel)
PKGS=(build-essential python3 openssl libssl-dev stunnel4 socat gnuplot-nox valgrind linux-perf procps
      nginx wrk curl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench/install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # linux-perf is optional (only for the profile): a failure to install it must not stop the bench.
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    $SUDO apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | grep -v '^linux-perf$') >/dev/null
fi
