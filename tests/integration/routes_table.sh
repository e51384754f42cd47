#!/usr/bin/env bash
# routes_table.sh README: checks that the README's table "Every libc export that moves bytes or file
# descriptors" lists every such export of this machine's libc (nm -D), so the table cannot go stale.
# "Such an export" is defined here, by the names below (with glibc's prefixes __, __libc_, _IO_ and
# suffixes 64, v2, _chk, _nocancel); the table's first column holds the names in backquotes. Every row
# must also say hooked, refused, harmless or out of reach, and name a test. Exit 0 when complete.
set -u
readme=${1:?usage: routes_table.sh README.md}
libc=$(ldconfig -p | awk '$1 == "libc.so.6" && /x86-64/ {print $NF; exit}')
[ -n "$libc" ] || libc=/lib/x86_64-linux-gnu/libc.so.6
BASE='read|write|pread|pwrite|readv|writev|preadv|pwritev|recv|send|sendto|recvfrom|sendmsg|recvmsg|sendmmsg|recvmmsg'
BASE+='|sendfile|splice|tee|vmsplice|copy_file_range|connect|accept|accept4|socket|socketpair|close|close_range'
BASE+='|closefrom|shutdown|dup|dup2|dup3|fcntl|ioctl|syscall|fdopen|dprintf|vdprintf|aio_read|aio_write|aio_fsync'
BASE+='|lio_listio|pidfd_getfd|pidfd_open|getaddrinfo_a|fork|vfork|Fork|clone|clone3|posix_spawn|posix_spawnp'
BASE+='|posix_spawn_file_actions_adddup2|posix_spawn_file_actions_addclose|posix_spawn_file_actions_addclosefrom_np'
BASE+='|posix_spawn_file_actions_addopen|execve|fexecve|execveat|process_vm_readv|process_vm_writev|getsockopt'
BASE+='|setsockopt|file_attach|fopencookie'
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$libc" | awk '$2 ~ /[TWi]/ {print $3}' | sed 's/@.*//' | sort -u |
	grep -E "^(__libc_|__|_IO_|_)?($BASE)(64)?(v2)?(_chk|_nocancel|_2)?\$" >"$tmp/exports"
[ -s "$tmp/exports" ] || { echo "routes_table.sh: no exports found in $libc (nm missing?)"; exit 1; }
# The table: from its heading to the next heading.
awk '/^### Every libc export that moves bytes or file descriptors/ {on=1; next} on && /^#/ {exit} on && /^\|/' "$readme" |
	tail -n +3 >"$tmp/rows"
[ -s "$tmp/rows" ] || { echo "routes_table.sh: the table is missing from $readme"; exit 1; }
bad=0
while IFS= read -r row; do
	status=$(printf '%s' "$row" | awk -F'|' '{print $3}')
	tests=$(printf '%s' "$row" | awk -F'|' '{print $5}')
	if ! printf '%s' "$status" | grep -Eq 'hooked|refused|harmless|out of reach'; then
		echo "row without a status: $row"
		bad=1
	fi
	if ! printf '%s' "$tests" | grep -Eq 'test_[a-z_]+'; then
		echo "row without a test: $row"
		bad=1
	fi
done <"$tmp/rows"
awk -F'|' '{print $2}' "$tmp/rows" | grep -o '`[^`]*`' | tr -d '`' | sort -u >"$tmp/listed"
missing=$(comm -23 "$tmp/exports" "$tmp/listed" | tr '\n' ' ')
if [ -n "$missing" ]; then
	echo "exports of $libc missing from the README's routes table: $missing"
	bad=1
fi
[ "$bad" = 0 ] && echo "$(wc -l <"$tmp/exports") exports, all in the table ($(wc -l <"$tmp/rows") rows)"
exit $bad
