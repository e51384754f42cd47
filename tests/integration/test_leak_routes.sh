#!/usr/bin/env bash
# Leak hunt: every way a program has to put bytes into a socket other than the ordinary hooked calls
# (README "Every libc export that moves bytes or file descriptors" and the threat model). Each case
# runs a real program (python3, or tests/clients/routes.c where C is the only way to reach the route)
# against a TLS echo server through the recording relay, and asserts that the sentinel never crossed
# in clear, plus the errno and reason line of a refusal, or that the route went through TLS.
source "$(dirname "$0")/lib.sh" "${1:-build}"

SENTINEL="tlsshim-ROUTE-SENTINEL-$$-$RANDOM"
ROUTES=$CL/routes

rec_has() { grep -aqF -- "$1" "$2" 2>/dev/null; }
starts_with_tls() { [ "$(head -c 2 "$T/rec" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 1603 ]; }
route_line() { grep -a "^routes: $1: " "$ERR" | head -1; }
echo_line() { grep -a '^routes: echo=' "$ERR" | head -1; }

# tls_echo_relay: a TLS echo server with the relay in front; sets PORT (the relay's) and RULE.
tls_echo_relay() {
	rm -f "$T/rec" "$T/rec.s2c"
	tls_py echo leaf --mode echo || return 1
	start_py relay relay --to "$PORT" --rec "$T/rec" || return 1
	RULE="tls 127.0.0.1:$PORT ca-file=$ROOT"
}

# no_sentinel_on_wire: the relay saw a TLS connection and never the sentinel (either direction).
no_sentinel_on_wire() {
	[ -s "$T/rec" ] || { fail "the relay recorded nothing"; return 1; }
	starts_with_tls || { fail "client->server bytes do not start with a TLS handshake record"; return 1; }
	if rec_has "$SENTINEL" "$T/rec" || rec_has "$SENTINEL" "$T/rec.s2c"; then
		fail "PLAINTEXT ON THE WIRE: the sentinel is in the recording"
		return 1
	fi
	return 0
}

# refused ROUTE ERRNO REASON_REGEX: the routes client ran ROUTE, which failed with ERRNO and one reason
# line; the connection still works (start and end came back through TLS) and nothing leaked.
refused() {
	local route=$1 want=$2 reason=$3
	tls_echo_relay || { fail "servers did not start"; return; }
	TLSSHIM_RULES="$RULE" srun "$route" "$ROUTES" "$route" 127.0.0.1 "$PORT" "$SENTINEL"
	[ "$RC" = 0 ] || { fail "routes client failed (rc=$RC)"; return; }
	no_sentinel_on_wire || return
	route_line "$route" | grep -q "rc=-1 errno=$want\$" || { fail "expected $route to fail with $want: $(route_line "$route")"; return; }
	shim_lines | grep -Eq -- "$reason" || { fail "no reason line /$reason/: $(shim_lines | head -3)"; return; }
	echo_line | grep -q '^routes: echo=start|end|$' || { fail "the TLS connection did not keep working: $(echo_line)"; return; }
	ok "$want, one reason line"
}

# through_tls ROUTE: the route is mapped onto the TLS session: the sentinel came back in the echo and
# never crossed in clear.
through_tls() {
	local route=$1
	tls_echo_relay || { fail "servers did not start"; return; }
	TLSSHIM_RULES="$RULE" srun "$route" "$ROUTES" "$route" 127.0.0.1 "$PORT" "$SENTINEL"
	[ "$RC" = 0 ] || { fail "routes client failed (rc=$RC)"; return; }
	no_sentinel_on_wire || return
	route_line "$route" | grep -q "rc=${#SENTINEL} errno=none" || { fail "expected $route to write ${#SENTINEL} bytes: $(route_line "$route")"; return; }
	echo_line | grep -qF "start|$SENTINEL""end|" || { fail "the sentinel did not come back through TLS: $(echo_line)"; return; }
	ok "encrypted, echoed back"
}

# kernel_refuses ROUTE ERRNO_REGEX: calls the shim leaves alone because the kernel refuses a socket
# before moving a byte (no file position, pipes only, regular files only).
kernel_refuses() {
	local route=$1 want=$2
	tls_echo_relay || { fail "servers did not start"; return; }
	TLSSHIM_RULES="$RULE" srun "$route" "$ROUTES" "$route" 127.0.0.1 "$PORT" "$SENTINEL"
	[ "$RC" = 0 ] || { fail "routes client failed (rc=$RC)"; return; }
	no_sentinel_on_wire || return
	route_line "$route" | grep -Eq "rc=-1 errno=($want)\$" || { fail "expected the kernel to refuse $route with $want: $(route_line "$route")"; return; }
	echo_line | grep -q '^routes: echo=start|end|$' || { fail "the TLS connection did not keep working: $(echo_line)"; return; }
	ok "$(route_line "$route" | sed 's/.*errno=//') from the kernel"
}
t_pwrite_kernel_espipe() { kernel_refuses pwrite ESPIPE; }
t_pwritev_kernel_espipe() { kernel_refuses pwritev ESPIPE; }
t_vmsplice_kernel_refuses() { kernel_refuses vmsplice 'EBADF|EINVAL'; }
t_copy_file_range_kernel_refuses() { kernel_refuses copy_file_range 'EINVAL|EXDEV|EBADF'; }
t_io_file_attach_refused() { refused io_file_attach EBADF '_IO_file_attach on a TLS socket.*EBADF'; }

# The README's table of libc exports that move bytes or fds covers every such export of this libc.
t_routes_table_covers_libc() {
	bash "$HERE/routes_table.sh" "$REPO/README.md" >"$T/table.out" 2>&1 && ok "$(tail -1 "$T/table.out")" ||
		fail "$(tr '\n' ' ' <"$T/table.out" | cut -c1-600)"
}

# ---- POSIX AIO ----
t_aio_write() { refused aio_write EOPNOTSUPP 'aio_write on a TLS socket.*EOPNOTSUPP'; }
t_aio_write64() { refused aio_write64 EOPNOTSUPP 'aio_write64 on a TLS socket.*EOPNOTSUPP'; }
t_aio_write_compat_symbol() { refused aio_write_compat EOPNOTSUPP 'aio_write on a TLS socket'; }
t_aio_read() { refused aio_read EOPNOTSUPP 'aio_read on a TLS socket'; }
t_aio_fsync() { refused aio_fsync EOPNOTSUPP 'aio_fsync on a TLS socket'; }

lio_case() {
	local route=$1
	tls_echo_relay || { fail "servers did not start"; return; }
	TLSSHIM_RULES="$RULE" srun "$route" "$ROUTES" "$route" 127.0.0.1 "$PORT" "$SENTINEL"
	[ "$RC" = 0 ] || { fail "routes client failed (rc=$RC)"; return; }
	no_sentinel_on_wire || return
	route_line "$route" | grep -q 'rc=-1 errno=EIO$' || { fail "lio_listio should return -1/EIO: $(route_line "$route")"; return; }
	grep -aq '^routes: socket aiocb: error=EOPNOTSUPP$' "$ERR" || { fail "the socket's aiocb should report EOPNOTSUPP"; return; }
	grep -aq '^routes: file aiocb: error=0 return=10$' "$ERR" && grep -aq '^routes: file size=10$' "$ERR" ||
		{ fail "the file's aiocb in the same list did not complete: $(grep -a 'file' "$ERR" | tr '\n' ' ')"; return; }
	shim_lines | grep -q 'lio_listio.* on a TLS socket' || { fail "no reason line: $(shim_lines | head -2)"; return; }
	ok "socket entry EOPNOTSUPP, file entry written"
}
t_lio_listio_per_aiocb() { lio_case lio_listio; }
t_lio_listio_compat_symbol() { lio_case lio_listio_compat; }

# Control: the same aio_write under a plain rule does put the sentinel on the wire, so the relay and
# the client would show a leak if there were one.
t_control_aio_write_plain_leaks() {
	rm -f "$T/rec" "$T/rec.s2c"
	start_py echo plain --mode echo || { fail "server did not start"; return; }
	start_py relay relay --to "$PORT" --rec "$T/rec" || { fail "relay did not start"; return; }
	TLSSHIM_RULES="plain 127.0.0.1:$PORT" srun aio "$ROUTES" aio_write 127.0.0.1 "$PORT" "$SENTINEL"
	route_line aio_write | grep -q 'rc=0 ' || { fail "aio_write on a plain socket should be queued: $(route_line aio_write)"; return; }
	rec_has "$SENTINEL" "$T/rec" && ok "plain aio_write visible on the wire" || fail "control: the relay did not capture the plain aio_write"
}

# ---- syscall() ----
t_syscall_write() { through_tls syscall_write; }
t_syscall_sendto() { through_tls syscall_sendto; }
t_syscall_writev() { through_tls syscall_writev; }
t_syscall_dup_then_write() { through_tls syscall_dup_write; }
t_syscall_io_submit() { refused syscall_io_submit EOPNOTSUPP 'native AIO \(io_submit\).*EOPNOTSUPP'; }
t_syscall_io_uring_setup() {
	tls_echo_relay || { fail "servers did not start"; return; }
	TLSSHIM_RULES="$RULE" srun uring "$ROUTES" syscall_io_uring_setup 127.0.0.1 "$PORT" "$SENTINEL"
	route_line syscall_io_uring_setup | grep -q 'rc=-1 errno=ENOSYS$' || { fail "io_uring_setup should be refused with ENOSYS: $(route_line syscall_io_uring_setup)"; return; }
	shim_lines | grep -q 'io_uring_setup refused' || { fail "no reason line"; return; }
	# without tls rules io_uring stays available (when the kernel has it)
	TLSSHIM_RULES="plain *:*" srun uring2 "$ROUTES" syscall_io_uring_setup 127.0.0.1 "$PORT" "$SENTINEL"
	route_line syscall_io_uring_setup | grep -q 'errno=ENOSYS$' && { fail "io_uring_setup refused without any tls rule"; return; }
	ok
}

# ---- libc's other names ----
t_alias_write() { through_tls alias_write; }
t_alias_send() { through_tls alias_send; }
t_alias_write_nocancel() { through_tls alias_write_nocancel; }

# ---- stdio streams that predate the TLS ----
# stdio_case ROUTE: the FILE's write fails (EBADF), nothing it held reaches the wire, the socket works.
stdio_case() {
	local route=$1
	tls_echo_relay || { fail "servers did not start"; return; }
	TLSSHIM_RULES="$RULE" srun "$route" "$ROUTES" "$route" 127.0.0.1 "$PORT" "$SENTINEL"
	[ "$RC" = 0 ] || { fail "routes client failed (rc=$RC)"; return; }
	no_sentinel_on_wire || return
	rec_has "buffered-before" "$T/rec" && { fail "PLAINTEXT ON THE WIRE: the FILE's old buffer was written"; return; }
	route_line "$route" | grep -q 'rc=-1 errno=EBADF$' || { fail "the stream's flush should fail with EBADF: $(route_line "$route")"; return; }
	echo_line | grep -q '^routes: echo=start|end|$' || { fail "the TLS connection did not keep working: $(echo_line)"; return; }
	ok "stream detached (EBADF)"
}
t_stdio_fdopen_before_connect() { stdio_case stdio_fdopen_before_connect; }
t_stdio_stdout_kept_then_dup2() { stdio_case stdio_stdout_kept; }
t_stdio_socket_takes_fd1() { stdio_case stdio_socket_on_fd1; }

t_fileno_on_shim_stream() {
	tls_echo_relay || { fail "servers did not start"; return; }
	TLSSHIM_RULES="$RULE" srun fileno "$ROUTES" fileno 127.0.0.1 "$PORT" "$SENTINEL"
	route_line fileno | grep -Eq 'rc=[0-9]+ errno=none' || { fail "fileno on the shim's stream: $(route_line fileno)"; return; }
	local fd
	fd=$(route_line fileno | sed 's/.*rc=\([0-9]*\).*/\1/')
	grep -aq "^routes: fileno_unlocked=$fd\$" "$ERR" || { fail "fileno_unlocked differs: $(grep -a fileno_unlocked "$ERR")"; return; }
	grep -aq '^routes: fstat_socket=1$' "$ERR" || { fail "the number fileno gave is not the socket"; return; }
	no_sentinel_on_wire || return
	ok "fileno=$fd"
}

# ---- an fd copied out of another process ----
t_pidfd_getfd_tls_socket() {
	tls_echo_relay || { fail "servers did not start"; return; }
	TLSSHIM_RULES="$RULE" srun pidfd "$ROUTES" pidfd_getfd 127.0.0.1 "$PORT" "$SENTINEL"
	route_line pidfd_getfd | grep -q 'rc=-1 errno=EACCES$' || { fail "pidfd_getfd of a TLS socket should fail with EACCES: $(route_line pidfd_getfd) $(grep -a 'routes:' "$ERR" | head -3)"; return; }
	shim_lines | grep -q 'received through pidfd_getfd.*EACCES' || { fail "no reason line: $(shim_lines | head -2)"; return; }
	rec_has "$SENTINEL" "$T/rec" && { fail "PLAINTEXT ON THE WIRE"; return; }
	ok
}

# ---- getaddrinfo_a teaches the name memory (a *.suffix rule must match its answers) ----
gai_case() {
	local route=$1
	need unshare mount || return
	tls_echo_relay || { fail "servers did not start"; return; }
	printf '127.0.0.1 svc.routes.test\n' >"$T/hosts"
	TLSSHIM_RULES="tls *.routes.test:$PORT name=localhost ca-file=$ROOT" srun "$route" unshare -m sh -c \
		'mount --bind "$1" /etc/hosts && exec "$2" "$3" svc.routes.test "$4" "$5"' sh "$T/hosts" "$ROUTES" "$route" "$PORT" "$SENTINEL"
	[ "$RC" = 0 ] || { fail "routes client failed (rc=$RC)"; return; }
	no_sentinel_on_wire || return
	echo_line | grep -qF "start|$SENTINEL""end|" || { fail "the sentinel did not come back through TLS: $(echo_line)"; return; }
	ok "the suffix rule matched the asynchronous answer"
}
t_getaddrinfo_a_wait() { gai_case gai_wait; }
t_getaddrinfo_a_nowait() { gai_case gai_nowait; }

# ---- UDP under deny ----
UDP_PY='
import errno, socket, sys
port = int(sys.argv[1]); msg = sys.argv[2].encode()
def attempt(name, fn):
    try:
        fn(); print(name, "sent")
    except OSError as e:
        print(name, errno.errorcode[e.errno])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
attempt("sendto", lambda: s.sendto(msg, ("127.0.0.1", port)))
attempt("sendto_again", lambda: s.sendto(msg, ("127.0.0.1", port)))
attempt("sendmsg", lambda: s.sendmsg([msg], [], 0, ("127.0.0.1", port)))
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
attempt("connect", lambda: c.connect(("127.0.0.1", port)))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
attempt("sendto_mapped", lambda: s6.sendto(msg, ("::ffff:127.0.0.1", port)))
'
t_udp_denied() {
	start_py udp udpecho || { fail "udp echo did not start"; return; }
	TLSSHIM_RULES="deny *:*" srun udp "$PY" -c "$UDP_PY" "$PORT" "$SENTINEL"
	local w
	for w in sendto sendto_again sendmsg connect sendto_mapped; do
		grep -q "^$w EACCES\$" "$OUT" || { fail "$w should fail with EACCES: $(tr '\n' ' ' <"$OUT")"; return; }
	done
	sleep 0.3
	grep -q ' udp ' "$T/udp.log" && { fail "a datagram reached the server: $(grep ' udp ' "$T/udp.log" | head -2)"; return; }
	# one reason line per destination, not per datagram (the verdict is cached)
	local n
	n=$(shim_lines | grep -c 'denied by rule')
	[ "$n" -ge 1 ] && [ "$n" -le 3 ] || { fail "expected one reason line per socket and destination, got $n"; return; }
	ok "$n reason lines for 5 refusals"
}
t_udp_plain_and_tls_rules_pass() {
	start_py udp udpecho || { fail "udp echo did not start"; return; }
	TLSSHIM_RULES="tls 127.0.0.1:$PORT ca-file=$ROOT; deny 10.0.0.0/8" srun udp "$PY" -c "$UDP_PY" "$PORT" "$SENTINEL"
	grep -q '^sendto sent$' "$OUT" && grep -q '^connect sent$' "$OUT" || { fail "UDP to a tls/plain destination must pass: $(tr '\n' ' ' <"$OUT")"; return; }
	sleep 0.3
	grep -q ' udp ' "$T/udp.log" || { fail "the datagram did not arrive"; return; }
	ok
}

# ---- the shim's own bytes ----
# A daemon with stdio closed: its first socket is fd 2, and log lines must not go into it.
LOG_PY='
import os, socket, sys
port = int(sys.argv[1])
os.close(2)
s = socket.socket()
assert s.fileno() == 2, s.fileno()
s.connect(("127.0.0.1", port))
s.sendall(b"start\n")
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    d = s.recv(4096)
    if not d: break
    got += d
print("echo=" + got.decode("latin-1").replace("\n", "|"))
'
t_log_lines_never_into_socket_on_fd2() {
	tls_echo_relay || { fail "servers did not start"; return; }
	TLSSHIM_LOG=debug TLSSHIM_STATS=1 TLSSHIM_RULES="$RULE" srun logfd2 "$PY" -c "$LOG_PY" "$PORT"
	[ "$RC" = 0 ] || { fail "python failed (rc=$RC)"; return; }
	grep -q '^echo=start|$' "$OUT" || { fail "the echo is not exactly what was sent (a log line went into the socket?): $(head -c 300 "$OUT")"; return; }
	rec_has "tlsshim" "$T/rec" && { fail "PLAINTEXT ON THE WIRE: a log line is in the recording"; return; }
	starts_with_tls || { fail "the recording does not start with a TLS handshake"; return; }
	ok
}

# journald-style: stderr is an AF_UNIX socket at load; it stays the log sink.
UNIX_PY='
import socket, subprocess, sys
a, b = socket.socketpair()
p = subprocess.Popen(sys.argv[1:], stderr=b, stdout=subprocess.DEVNULL)
b.close(); p.wait()
a.settimeout(2)
data = b""
try:
    while True:
        d = a.recv(65536)
        if not d: break
        data += d
except socket.timeout:
    pass
sys.stdout.write(data.decode("latin-1"))
'
t_log_to_unix_socket_stderr() {
	tls_echo_relay || { fail "servers did not start"; return; }
	srun unixerr env TLSSHIM_LOG=info TLSSHIM_RULES="$RULE" "$PY" -c "$UNIX_PY" "$ROUTES" syscall_write 127.0.0.1 "$PORT" "$SENTINEL"
	grep -q '^tlsshim: .*TLSv1' "$OUT" || { fail "no handshake log line arrived on the AF_UNIX stderr: $(head -c 300 "$OUT")"; return; }
	ok
}

# closefrom(3) in a daemon, then the numbers reused: the key log and the log file are opened again;
# no secret and no log line goes into the program's socket.
CLOSEFROM_PY='
import os, socket, sys
port = int(sys.argv[1])
os.closerange(3, 1024)
s = socket.socket()
print("socket fd", s.fileno())
s.connect(("127.0.0.1", port))
s.sendall(b"start\n")
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    d = s.recv(4096)
    if not d: break
    got += d
print("echo=" + got.decode("latin-1").replace("\n", "|"))
'
t_keylog_and_logfile_after_closefrom() {
	tls_echo_relay || { fail "servers did not start"; return; }
	rm -f "$T/keys" "$T/shim.log"
	SSLKEYLOGFILE=$T/keys TLSSHIM_LOG_FILE=$T/shim.log TLSSHIM_LOG=info TLSSHIM_RULES="$RULE" srun closefrom "$PY" -c "$CLOSEFROM_PY" "$PORT"
	[ "$RC" = 0 ] || { fail "python failed (rc=$RC)"; return; }
	grep -q '^socket fd 3$' "$OUT" || { fail "the socket did not reuse fd 3: $(head -1 "$OUT")"; return; }
	grep -q '^echo=start|$' "$OUT" || { fail "the echo is not exactly what was sent (secrets went into the socket?): $(head -c 300 "$OUT")"; return; }
	rec_has "TRAFFIC_SECRET" "$T/rec" && { fail "SECRETS ON THE WIRE"; return; }
	rec_has "tlsshim" "$T/rec" && { fail "a log line is on the wire"; return; }
	grep -q '^CLIENT_TRAFFIC_SECRET_0 ' "$T/keys" || { fail "the key log was not re-created: $(head -c 200 "$T/keys" 2>/dev/null)"; return; }
	grep -q 'TLSv1' "$T/shim.log" || { fail "the handshake line did not reach the re-created log file"; return; }
	ok
}

tcase routes_table_covers_libc
tcase pwrite_kernel_espipe
tcase pwritev_kernel_espipe
tcase vmsplice_kernel_refuses
tcase copy_file_range_kernel_refuses
tcase io_file_attach_refused
tcase aio_write
tcase aio_write64
tcase aio_write_compat_symbol
tcase aio_read
tcase aio_fsync
tcase lio_listio_per_aiocb
tcase lio_listio_compat_symbol
tcase control_aio_write_plain_leaks
tcase syscall_write
tcase syscall_sendto
tcase syscall_writev
tcase syscall_dup_then_write
tcase syscall_io_submit
tcase syscall_io_uring_setup
tcase alias_write
tcase alias_send
tcase alias_write_nocancel
tcase stdio_fdopen_before_connect
tcase stdio_stdout_kept_then_dup2
tcase stdio_socket_takes_fd1
tcase fileno_on_shim_stream
tcase pidfd_getfd_tls_socket
tcase getaddrinfo_a_wait
tcase getaddrinfo_a_nowait
tcase udp_denied
tcase udp_plain_and_tls_rules_pass
tcase log_lines_never_into_socket_on_fd2
tcase log_to_unix_socket_stderr
tcase keylog_and_logfile_after_closefrom
finish
