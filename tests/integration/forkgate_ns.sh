#!/usr/bin/env bash
# forkgate_ns.sh DIR NAME=DELAY... -- CMD...: runs CMD in the network and mount namespaces it was started
# in (test_forkgate.sh starts it under `unshare -n -m`): brings lo up, starts slowdns.py on 127.0.0.53
# with the given names (log DIR/dns.log), makes /etc/resolv.conf (bind mount, this namespace only) point
# there, then runs CMD. With SLOWDNS_TCP_PORT set, slowdns.py also answers nss_fgtest.c's TCP queries
# and /etc/nsswitch.conf (bind mount) asks that module first. Nothing here leaves the namespace.
set -eu
dir=$1
shift
specs=()
while [ "$1" != -- ]; do specs+=("$1"); shift; done
shift
ip link set lo up
printf 'nameserver 127.0.0.53\noptions timeout:15 attempts:1\n' >"$dir/resolv.conf"
mount --bind "$dir/resolv.conf" /etc/resolv.conf
if [ -n "${SLOWDNS_TCP_PORT:-}" ]; then # the NSS module nss_fgtest.c first, then the usual sources
	printf 'hosts: fgtest files dns\n' >"$dir/nsswitch.conf"
	mount --bind "$dir/nsswitch.conf" /etc/nsswitch.conf
fi
: >"$dir/dns.log"
"${PY:-python3}" -u "$(dirname "$0")/slowdns.py" 127.0.0.53 "$dir/dns.log" "${specs[@]}" 2>"$dir/dns.err" &
dns=$!
for _ in $(seq 1 100); do grep -q ready "$dir/dns.log" && break; sleep 0.05; done
set +e
"$@"
rc=$?
kill "$dns" 2>/dev/null
wait "$dns" 2>/dev/null
exit $rc
