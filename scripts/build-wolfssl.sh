#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds wolfSSL from Debian's source package as a position-independent static library with AES-NI and the
# Intel assembly, into build/wolfssl (cached: a stamp file names the configuration it was built with).
# Usage: scripts/build-wolfssl.sh BUILD_DIR
# With TLSSHIM_WOLFSSL_SRC=DIR (the Debian package build: debian/rules) it builds a copy of that
# already unpacked source instead, and neither installs packages nor downloads anything.
set -euo pipefail
out=$(realpath -m "${1:-build}")/wolfssl
here=$(cd "$(dirname "$0")/.." && pwd)
# The features the shim uses, and nothing permissive: old TLS (< 1.2) is not even compiled in.
CONFIG=(--enable-static --disable-shared --with-pic --disable-examples --disable-crypttests
        --disable-oldtls --enable-tls13 --enable-tlsx --enable-sni --enable-alpn --enable-session-ticket
        --enable-aesni --enable-intelasm --enable-sp --enable-sp-math-all --enable-sp-asm
        --enable-curve25519 --enable-rsapss --enable-opensslextra --enable-altcertchains
        --enable-crl --enable-ocsp --enable-ocspstapling --enable-ocspstapling2
        --enable-certgen --enable-certreq --enable-certext --enable-keygen)
# ALWAYS_VERIFY_CB: our verify callback sees every certificate, so names and pins are checked before the
# client sends its Finished (and its certificate). GETRANDOM: no /dev/urandom fd inside the host program.
# SECRET_CALLBACK: SSLKEYLOGFILE for TLS 1.3. Hidden visibility: the .so exports only the hooks.
EXTRA_CFLAGS="-O2 -fvisibility=hidden -DWOLFSSL_ALWAYS_VERIFY_CB -DWOLFSSL_VERIFY_CB_ALL_CERTS -DWOLFSSL_GETRANDOM -DHAVE_SECRET_CALLBACK -DWOLFSSL_IP_ALT_NAME"
stamp="$(printf '%s ' "${CONFIG[@]}") $EXTRA_CFLAGS v3"
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] && [ -f "$out/lib/libwolfssl.a" ]; then
  exit 0
fi
src=$out-src
if [ -n "${TLSSHIM_WOLFSSL_SRC:-}" ]; then
  [ -f "$TLSSHIM_WOLFSSL_SRC/configure.ac" ] || { echo "build-wolfssl: $TLSSHIM_WOLFSSL_SRC holds no wolfSSL source"; exit 1; }
  rm -rf "$src"; mkdir -p "$(dirname "$src")"; cp -a "$TLSSHIM_WOLFSSL_SRC" "$src"
else
  bash "$here/scripts/install-deps.sh"
fi
if [ ! -f "$src/configure.ac" ]; then
  rm -rf "$src" "$out-dl"; mkdir -p "$out-dl"
  (cd "$out-dl" && apt-get source -qq wolfssl >/dev/null 2>&1) || {
    echo "build-wolfssl: 'apt-get source wolfssl' failed (is deb-src enabled? run scripts/install-deps.sh)"; exit 1; }
  mv "$out-dl"/wolfssl-*/ "$src"; rm -rf "$out-dl"
fi
echo "build-wolfssl: configuring and building wolfSSL (about 90 s)"
cd "$src"
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
./configure -q --prefix="$out" "${CONFIG[@]}" CFLAGS="$EXTRA_CFLAGS" >/dev/null
make -s clean >/dev/null 2>&1 || true
make -s -j"$(nproc)" >/dev/null 2>&1 || make -j"$(nproc)"
rm -rf "$out"; make -s install >/dev/null
# Debian's 'make install' leaves options.h out: the shim must compile against this build's own.
cp wolfssl/options.h "$out/include/wolfssl/options.h"
echo "$stamp" > "$out/.stamp"
echo "build-wolfssl: done: $out/lib/libwolfssl.a"
