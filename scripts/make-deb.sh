#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `make deb`: builds the Debian package with Debian's own tooling and checks it with lintian.
#   scripts/make-deb.sh [BUILD_DIR]   ->  BUILD_DIR/deb/tlsshim_VERSION_amd64.deb (and the source package)
# 1. Prepare (the only step that may use the network): the upstream tarball tlsshim_V.orig.tar.gz from
#    the work tree's files that git tracks or would track (not ignored; debian/ left out), wolfSSL's Debian source
#    (`apt-get source wolfssl`, cached in BUILD_DIR/deb-cache) as the component tarball
#    tlsshim_V.orig-wolfssl.tar.gz, and debian/ as it is in the work tree.
# 2. Build: dpkg-source -x, then dpkg-buildpackage -us -uc -rfakeroot, in a new network namespace with
#    no interface but loopback (unshare -n), as the unprivileged user nobody.
# 3. lintian --fail-on error,warning on the .deb.
# Cached: when the inputs (every tracked file and the wolfSSL source version) are unchanged since the last
# successful build, nothing is rebuilt (TLSSHIM_DEB_REBUILD=1 forces it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${1:-build}")
out=$build/deb
cache=$build/deb-cache
cd "$here"
version=$(dpkg-parsechangelog -S Version)
upstream=${version%-*}
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=$out/tlsshim_${version}_${arch}.deb

command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null && command -v lintian >/dev/null ||
	bash scripts/install-deps.sh

# wolfSSL's Debian source, patched (dpkg-source -x), fetched once.
mkdir -p "$cache"
wsrc=$(find "$cache" -maxdepth 1 -type d -name 'wolfssl-*' | head -1)
if [ -z "$wsrc" ] || [ ! -f "$wsrc/configure.ac" ]; then
	echo "make-deb: fetching wolfSSL's Debian source (apt-get source wolfssl)"
	rm -rf "$cache"/wolfssl*
	(cd "$cache" && apt-get source -qq wolfssl >/dev/null 2>&1) ||
		{ echo "make-deb: 'apt-get source wolfssl' failed (run scripts/install-deps.sh to enable deb-src)"; exit 1; }
	wsrc=$(find "$cache" -maxdepth 1 -type d -name 'wolfssl-*' | head -1)
fi
wolfssl_version=$(dpkg-parsechangelog -l "$wsrc/debian/changelog" -S Version)

inputs=$( { git ls-files -z --cached --others --exclude-standard | xargs -0 sha256sum; echo "wolfssl $wolfssl_version"; } | sha256sum | cut -d' ' -f1)
if [ "${TLSSHIM_DEB_REBUILD:-0}" != 1 ] && [ -f "$deb" ] && [ "$(cat "$out/inputs" 2>/dev/null)" = "$inputs" ]; then
	echo "make-deb: $deb is up to date"
	exit 0
fi

rm -rf "$out"
mkdir -p "$out"
# dpkg-buildpackage runs as nobody, who may not reach $out (a checkout under /root, mode 0700, as on a
# stock machine): the build happens in a staging directory under /tmp, and its files land in $out after.
work=$(mktemp -d "${TMPDIR:-/tmp}/tlsshim-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
# Every file in the tarballs gets the changelog's date (reproducible, and not "ancient" for lintian).
stamp=@$(dpkg-parsechangelog -S Timestamp)
echo "make-deb: preparing tlsshim $version (wolfssl $wolfssl_version as a component tarball)"
git ls-files -z --cached --others --exclude-standard -- . ':(exclude)debian' |
	tar --null -T - --transform "s,^,tlsshim-$upstream/," --owner=0 --group=0 --mtime="$stamp" --sort=name \
		-czf "$work/tlsshim_$upstream.orig.tar.gz"
tar -C "$(dirname "$wsrc")" --transform "s,^$(basename "$wsrc"),wolfssl," --owner=0 --group=0 --mtime="$stamp" \
	--sort=name -czf "$work/tlsshim_$upstream.orig-wolfssl.tar.gz" "$(basename "$wsrc")"
tree=$work/tlsshim-$upstream
mkdir -p "$tree"
tar -C "$work" -xzf "$work/tlsshim_$upstream.orig.tar.gz"
mkdir -p "$tree/wolfssl"
tar -C "$tree/wolfssl" --strip-components=1 -xzf "$work/tlsshim_$upstream.orig-wolfssl.tar.gz"
git ls-files -z --cached --others --exclude-standard -- debian | tar --null -T - -cf - | tar -C "$tree" -xf -
chown -R nobody:nogroup "$work"

echo "make-deb: dpkg-buildpackage as nobody, without network (about 3 minutes: wolfSSL first)"
log=$work/build.log
if ! unshare --net -- setpriv --reuid=nobody --regid=nogroup --clear-groups --reset-env -- \
	env HOME="$work" PATH=/usr/sbin:/usr/bin:/sbin:/bin DEB_BUILD_OPTIONS="parallel=2" \
	bash -c 'cd "$1" && ip link show 2>/dev/null | grep -q "state UP" && { echo "network is up"; exit 1; }; dpkg-buildpackage -us -uc -rfakeroot' _ "$tree" >"$log" 2>&1; then
	tail -30 "$log"
	cp "$log" "$out/build.log"
	echo "make-deb: dpkg-buildpackage failed; the whole log is $out/build.log"
	exit 1
fi
find "$work" -maxdepth 1 -type f -exec cp -p {} "$out/" \;
chown -R --reference="$build" "$out" 2>/dev/null || true
[ -f "$deb" ] || { echo "make-deb: dpkg-buildpackage made no $deb"; exit 1; }

echo "make-deb: lintian --fail-on error,warning"
if ! lintian --fail-on error,warning --tag-display-limit 0 "$deb" >"$out/lintian.txt" 2>&1; then
	cat "$out/lintian.txt"
	echo "make-deb: lintian found errors or warnings in $deb"
	exit 1
fi
cat "$out/lintian.txt"
echo "$inputs" >"$out/inputs"
echo "make-deb: $deb"
