#!/usr/bin/env bash
# Leak hunt, processes and fd numbers (issue 11, items 1, 2 and 7): every way a program can get a TLS
# socket into a child that shares its memory, into the next program image, or into another process, and
# the windows around dup2/dup3. Each case runs a real program (unmodified python3 where that is how the
# route was found, tests/clients/leak_proc.c otherwise) against a TLS echo server behind the recording
# relay, and asserts that the sentinel never crossed in clear, that the route's call failed with the
# documented errno and one reason line, and that the program's own session still works afterwards.
# The control case shows the recording catches the sentinel when the rule is plain.
source "$(dirname "$0")/lib.sh" "${1:-build}"

SENTINEL="tlsshim-PROC-$$-$RANDOM-sentinel"

# One TLS echo server for the whole file (it serves each connection in a thread of its own); started
# outside any case, so only the exit trap stops it.
tls_py echo leaf --mode echo
ECHO_PORT=$PORT
CASE_PIDS=()

# setup: the recording relay in front of the echo server. Sets PORT (the relay's) and RULE.
setup() {
	[ "$ECHO_PORT" != 0 ] || { fail "echo server did not start"; return 1; }
	rm -f "$T/rec" "$T/rec.s2c"
	start_py relay relay --to "$ECHO_PORT" --rec "$T/rec" || { fail "relay did not start"; return 1; }
	RULE="tls 127.0.0.1:$PORT ca-file=$ROOT"
}

# no_plaintext: fails the case (returns 1) if the sentinel is in the client->server recording, or if the
# recording does not start with a TLS handshake record.
no_plaintext() {
	sleep 0.3
	if grep -aqF -- "$SENTINEL" "$T/rec" 2>/dev/null; then
		fail "PLAINTEXT ON THE WIRE: the sentinel is in the client->server recording"
		return 1
	fi
	if [ "$(head -c 2 "$T/rec" 2>/dev/null | od -An -tx1 | tr -d ' \n')" != 1603 ]; then
		fail "the recording does not start with a TLS handshake record (relay saw: $(head -c 40 "$T/rec" 2>/dev/null | cat -v))"
		return 1
	fi
}

# proc_case MODE WANT_ERRNO REASON_REGEX: leak_proc MODE; route_errno must be WANT_ERRNO, the parent's
# session must work afterwards, one tlsshim: line matching REASON_REGEX (none if REASON_REGEX is empty).
proc_case() {
	local mode=$1 want=$2 reason=$3
	setup || return
	TMO=30 TLSSHIM_RULES="$RULE" srun "$mode" "$CL/leak_proc" "$mode" "$PORT" "$SENTINEL"
	[ "$RC" != 124 ] || { fail "leak_proc $mode hung"; return; }
	no_plaintext || return
	local got
	got=$(grep -ao '^route_errno=[A-Za-z0-9_]*' "$OUT" | head -1 | cut -d= -f2)
	[ "$got" = "$want" ] || { fail "the route's call gave '$got', want $want"; return; }
	grep -aq '^parent_after=ok' "$OUT" || { fail "the parent's session did not survive the route"; return; }
	[ "$RC" = 0 ] || { fail "leak_proc exit $RC: $(grep -a FAIL "$ERR" | head -3 | tr '\n' ' ')"; return; }
	local n
	n=$(n_shim_lines)
	if [ -z "$reason" ]; then
		[ "$n" = 0 ] || { fail "expected no tlsshim: line, got: $(shim_lines | head -2 | tr '\n' ' ')"; return; }
	else
		[ "$n" = 1 ] || { fail "expected exactly one tlsshim: line, got $n: $(shim_lines | head -3 | tr '\n' ' ')"; return; }
		shim_lines | grep -Eq -- "$reason" || { fail "the reason line does not match /$reason/: $(shim_lines)"; return; }
	fi
	ok "$want, sentinel not on the wire, the session went on"
}

CHILD_REASON='refused with EBADF: in a child that shares its parent.s memory'

# ---- item 1: vfork and CLONE_VM children ----
t_vfork_close_keeps_parent_session() { proc_case vfork_close ok ""; }
t_vfork_close_range_keeps_parent_session() { proc_case vfork_close_range ok ""; }
t_vfork_dup2_onto_stdout() { proc_case vfork_dup2 EBADF "fd [0-9]+: dup2 $CHILD_REASON"; }
t_vfork_fionclex() { proc_case vfork_fionclex EBADF "ioctl\(FIONCLEX\) $CHILD_REASON"; }
t_vfork_setfd0() { proc_case vfork_setfd0 EBADF "F_SETFD\) clearing FD_CLOEXEC $CHILD_REASON"; }
t_vfork_write() { proc_case vfork_write EBADF "a write $CHILD_REASON"; }
t_vfork_fionread() { proc_case vfork_fionread EBADF "ioctl\(FIONREAD\) $CHILD_REASON"; }
t_clone_vm_write_and_close() { proc_case clone_vm EBADF "a write $CHILD_REASON"; }
t_fork_without_handlers() { proc_case fork_nohandlers EBADF "a write $CHILD_REASON"; }
t_syscall_fork_child() { proc_case sysfork EBADF "a write $CHILD_REASON"; }

# ---- item 2: the next program image ----
t_fionclex_keeps_cloexec() { proc_case fionclex EBADF ""; }
SPAWN_REASON='posix_spawn\(/bin/sh\) refused with EBADF: file action adddup2'
t_posix_spawn_adddup2_onto_stdout() { proc_case spawn_dup2 EBADF "$SPAWN_REASON\(3, 1\) would hand TLS fd 3"; }
t_posix_spawn_adddup2_onto_itself() { proc_case spawn_dup2_self EBADF "$SPAWN_REASON\(3, 3\).*clears close-on-exec"; }
t_posix_spawn_adddup2_chain() { proc_case spawn_dup2_chain EBADF "$SPAWN_REASON\(3, 9\)"; }
t_posix_spawn_harmless_actions_still_spawn() { proc_case spawn_closed_ok ok ""; }

# ---- item 2: sockets made outside the program (inheritance, SCM_RIGHTS) ----
# The helper runs WITHOUT the shim: it connects to the relay in plain TCP (as a program without the shim,
# or any route nobody listed, would), then hands the socket to an unmodified python3 that runs under the
# shim: inherited across exec (pass_fds), or sent with SCM_RIGHTS. That python3 writes the sentinel.
OUTSIDE_HELPER='import os, socket, subprocess, sys
how, port, sentinel, shim, rules = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
env = dict(os.environ, LD_PRELOAD=shim, TLSSHIM_RULES=rules)
t = socket.create_connection(("127.0.0.1", port))
writer = """
import os, socket, sys
fd = int(sys.argv[1])
if sys.argv[2] == "scm":
    u = socket.socket(fileno=fd)
    msg, fds, flags, addr = socket.recv_fds(u, 16, 1)
    fd = fds[0]
try:
    os.write(fd, sys.argv[3].encode())
    print("write=ok")
except OSError as e:
    print("write=errno%d" % e.errno)
"""
if how == "inherit":
    r = subprocess.run([sys.executable, "-c", writer, str(t.fileno()), how, sentinel], pass_fds=[t.fileno()], env=env)
else:
    a, b = socket.socketpair()
    p = subprocess.Popen([sys.executable, "-c", writer, str(b.fileno()), how, sentinel], pass_fds=[b.fileno()], env=env)
    socket.send_fds(a, [b"x"], [t.fileno()])
    p.wait()
t.close()
'

# outside_case NAME HOW [RULES]: runs the helper (RULES default: the tls rule for the relay).
outside_case() {
	setup || return 1
	prun "$1" "$PY" -c "$OUTSIDE_HELPER" "$2" "$PORT" "$SENTINEL" "$PRELOAD" "${3:-$RULE}"
	[ "$RC" != 124 ] || { fail "the helper hung"; return 1; }
	sleep 0.3
}

refused_outside() {
	outside_case "$1" "$2" || return
	grep -aqF -- "$SENTINEL" "$T/rec" 2>/dev/null && { fail "PLAINTEXT ON THE WIRE: the sentinel is in the recording"; return; }
	grep -q '^write=errno9$' "$OUT" || { fail "the write on the socket from outside: want errno 9 (EBADF), got '$(cat "$OUT")'"; return; }
	[ "$(n_shim_lines)" = 1 ] && shim_lines | grep -Eq "fd [0-9]+: a TCP connection to 127.0.0.1:$PORT made outside this program .* matches tls rule TLSSHIM_RULES:1.*fail with EBADF" ||
		{ fail "want one reason line naming the destination and the rule: $(shim_lines | head -2)"; return; }
	ok "EBADF, one reason line, nothing on the wire"
}
t_inherited_socket_to_tls_destination() { refused_outside inh inherit; }
t_scm_rights_received_socket_to_tls_destination() { refused_outside scmr scm; }

# Control: the same inherited socket whose peer no tls rule matches passes through (and the recording
# catches the sentinel, so the case above proves something).
t_inherited_socket_to_plain_destination_passes() {
	outside_case inhp inherit "tls 127.0.0.1:1 ca-file=$ROOT" || return
	grep -q '^write=ok$' "$OUT" && grep -aqF -- "$SENTINEL" "$T/rec" && [ "$(n_shim_lines)" = 0 ] &&
		ok "passed through; the recording holds the sentinel" ||
		fail "want write=ok, the sentinel in the recording, no tlsshim: line; got '$(cat "$OUT")' $(shim_lines | head -2)"
}

# inetd style: a parent without the shim accepts a connection and runs the server program under the shim
# with the socket as its stdin; a serve rule for the local address makes it a TLS server connection
# (serve_adopt_inherited, at load). openssl s_client, a real TLS client, gets the echo.
INETD_HELPER='import os, socket, subprocess, sys
shim, rules, ca = sys.argv[1], sys.argv[2], sys.argv[3]
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
port = ls.getsockname()[1]
cl = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", ca, "-quiet"],
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
c, _ = ls.accept()
env = dict(os.environ, LD_PRELOAD=shim, TLSSHIM_RULES=rules.replace("@PORT@", str(port)))
srv = subprocess.Popen([sys.executable, "-c", "import os\nd = os.read(0, 100)\nos.write(0, b\"echo:\" + d)"], stdin=c, env=env)
c.close()
out, _ = cl.communicate(b"inetd-hello\n", timeout=15)
srv.wait(timeout=15)
print("client_got=%r" % out)
'
t_inherited_accepted_socket_served() {
	need openssl || return
	TMO=30 prun inetd "$PY" -c "$INETD_HELPER" "$PRELOAD" "serve 127.0.0.1:@PORT@ cert=$PKI/leaf.pem key=$PKI/leaf.key" "$ROOT"
	grep -q "^client_got=b'echo:inetd-hello" "$OUT" && ok "the inherited accepted socket served TLS; s_client got the echo" ||
		fail "want the echo through TLS at openssl s_client; got '$(cat "$OUT")' $(tail -3 "$ERR" | tr '\n' ' ')"
}

t_scm_rights_send_tls_fd() { proc_case scm_rights EBADF "sending TLS fd [0-9]+ with SCM_RIGHTS refused with EBADF"; }

# ---- item 7: windows around dup2, CLOSE_RANGE_UNSHARE ----
t_dup2_copy_never_inherited() { proc_case dup_race ok ""; }
t_close_range_unshare() { proc_case unshare EINVAL "CLOSE_RANGE_UNSHARE\) refused with EINVAL: the range holds TLS fd"; }

# ---- unmodified python3 ----
# py_case NAME SCRIPT [ARGS...]: runs python3 -c SCRIPT PORT SENTINEL ARGS under the shim; SCRIPT prints result lines.
py_case() {
	local name=$1 script=$2
	setup || return 1
	TMO=30 TLSSHIM_RULES="$RULE" srun "$name" "$PY" -c "$script" "$PORT" "$SENTINEL" "${@:3}"
	[ "$RC" != 124 ] || { fail "python3 hung"; return 1; }
	no_plaintext || return 1
	[ "$RC" = 0 ] || { fail "python3 exit $RC: $(tail -3 "$ERR" | tr '\n' ' ')"; return 1; }
}

PY_PRELUDE='import socket, subprocess, sys, os
port, sentinel = int(sys.argv[1]), sys.argv[2].encode()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"hello\n")
def finish():
    s.sendall(b"after:" + sentinel + b"\n")
    want = b"hello\n" + b"after:" + sentinel + b"\n"
    got = b""
    while len(got) < len(want):
        d = s.recv(4096)
        if not d: break
        got += d
    print("parent_after=" + ("ok" if got == want else "mismatch %r" % got))
def refused(f):
    try:
        f()
        print("route=succeeded")
    except OSError as e:
        print("route=" + (os.strerror(e.errno) if e.errno else str(e)) + " errno=%s" % (e.errno,))
'

# The reproduction from the issue: subprocess (vfork + close_range in the child) between two writes.
t_python_subprocess_between_writes() {
	py_case py_sub "$PY_PRELUDE"'
r = subprocess.run(["true"])
print("child_rc=%d" % r.returncode)
finish()' || return
	grep -q '^parent_after=ok' "$OUT" && grep -q '^child_rc=0' "$OUT" && [ "$(n_shim_lines)" = 0 ] &&
		ok "subprocess.run between two writes; the second went through TLS" ||
		fail "want child_rc=0, parent_after=ok, no tlsshim: line; got: $(tr '\n' ' ' <"$OUT") $(shim_lines | head -2)"
}

# Copies made before the socket became TLS (precopy.c): each copy shares the TLS connection, so what the
# program writes through a copy goes through TLS (the echo proves it) and never in clear.
PRE_PRELUDE='import socket, sys, os, time
port, sentinel = int(sys.argv[1]), sys.argv[2].encode()
def echo(sock, data):
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        d = sock.recv(4096)
        if not d: break
        got += d
    return got == data
'
t_python_dup_before_connect() {
	py_case py_predup "$PRE_PRELUDE"'
s = socket.socket()
d = s.dup()
s.connect(("127.0.0.1", port))
print("copy=" + ("ok" if echo(d, b"via-copy:" + sentinel + b"\n") else "mismatch"))
print("orig=" + ("ok" if echo(s, b"via-orig:" + sentinel + b"\n") else "mismatch"))
d.close()
print("after_close=" + ("ok" if echo(s, b"after-close:" + sentinel + b"\n") else "mismatch"))' || return
	grep -q '^copy=ok' "$OUT" && grep -q '^orig=ok' "$OUT" && grep -q '^after_close=ok' "$OUT" &&
		[ "$(n_shim_lines)" = 0 ] && ok "the copy made before connect() wrote through TLS; closing it kept the session" ||
		fail "want copy=ok orig=ok after_close=ok, no tlsshim: line; got: $(tr '\n' ' ' <"$OUT") $(shim_lines | head -2)"
}

t_dup2_and_fdupfd_before_connect() {
	py_case py_predup2 "$PRE_PRELUDE"'
import fcntl
s = socket.socket()
n2 = os.dup2(s.fileno(), 57)
n3 = fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, 80)
s.connect(("127.0.0.1", port))
a = socket.socket(fileno=n2)
b = socket.socket(fileno=n3)
print("dup2=" + ("ok" if echo(a, b"dup2:" + sentinel + b"\n") else "mismatch"))
print("dupfd=" + ("ok" if echo(b, b"dupfd:" + sentinel + b"\n") else "mismatch"))
os.write(n2, b"raw-write:" + sentinel + b"\n")
print("raw=" + ("ok" if os.read(n3, 200) == b"raw-write:" + sentinel + b"\n" else "mismatch"))' || return
	grep -q '^dup2=ok' "$OUT" && grep -q '^dupfd=ok' "$OUT" && grep -q '^raw=ok' "$OUT" &&
		ok "dup2 and F_DUPFD copies made before connect() went through TLS" ||
		fail "want dup2=ok dupfd=ok raw=ok; got: $(tr '\n' ' ' <"$OUT") $(shim_lines | head -2)"
}

# A fork() child holding the socket before its parent connected it (through a copy made before the
# fork, or the socket itself): the child cannot continue the parent's session, so its write fails
# (EBADF, one line) and nothing crosses in clear. fork_before_connect USE: USE is "copy" or "socket".
fork_before_connect() {
	py_case "py_prefork_$1" "$PRE_PRELUDE"'
s = socket.socket()
target = s.dup() if sys.argv[3] == "copy" else s
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.read(r, 1)  # the parent has connected
    try:
        os.write(target.fileno(), b"child:" + sentinel + b"\n")
        print("child_write=succeeded", flush=True)
    except OSError as e:
        print("child_write=errno%d" % e.errno, flush=True)
    os._exit(0)
s.connect(("127.0.0.1", port))
os.write(w, b"x")
os.waitpid(pid, 0)
print("parent=" + ("ok" if echo(s, b"parent:" + sentinel + b"\n") else "mismatch"))' "$1" || return
	grep -q '^child_write=errno9' "$OUT" && grep -q '^parent=ok' "$OUT" && [ "$(n_shim_lines)" = 1 ] &&
		shim_lines | grep -q 'made outside this program' &&
		ok "the child's write through its $1 failed with EBADF; the parent's session worked" ||
		fail "want child_write=errno9 parent=ok, one reason line; got: $(tr '\n' ' ' <"$OUT") $(shim_lines | head -2)"
}
t_fork_child_copy_before_connect() { fork_before_connect copy; }
t_fork_child_socket_before_connect() { fork_before_connect socket; }

t_python_subprocess_stdout_socket() {
	py_case py_stdout "$PY_PRELUDE"'
refused(lambda: subprocess.run(["sh", "-c", "printf %s " + sentinel.decode()], stdout=s))
finish()' || return
	grep -q "^route=.* errno=9\$" "$OUT" && grep -q '^parent_after=ok' "$OUT" &&
		[ "$(n_shim_lines)" = 1 ] && shim_lines | grep -q "dup2 $CHILD_REASON" &&
		ok "Popen(stdout=sock) raised EBADF; one reason line" ||
		fail "want route=... errno=9 (EBADF), parent_after=ok, one dup2 reason line; got: $(tr '\n' ' ' <"$OUT") $(shim_lines | head -2)"
}

t_python_set_inheritable_pass_fds() {
	py_case py_inherit "$PY_PRELUDE"'
s.set_inheritable(True)
print("inheritable=%s" % s.get_inheritable())
refused(lambda: subprocess.run(["sh", "-c", "printf %%s %s >&%d" % (sentinel.decode(), s.fileno())], pass_fds=[s.fileno()]))
finish()' || return
	grep -q '^inheritable=False' "$OUT" && grep -q "^route=.* errno=9\$" "$OUT" && grep -q '^parent_after=ok' "$OUT" &&
		[ "$(n_shim_lines)" = 1 ] &&
		ok "set_inheritable(True) left FD_CLOEXEC; Popen(pass_fds=[sock]) raised EBADF" ||
		fail "want inheritable=False, route errno=9, parent_after=ok, one reason line; got: $(tr '\n' ' ' <"$OUT") $(shim_lines | head -2)"
}

t_python_os_posix_spawn_dup2() {
	py_case py_spawn "$PY_PRELUDE"'
def spawn():
    pid = os.posix_spawn("/bin/sh", ["sh", "-c", "printf %s " + sentinel.decode()], os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, s.fileno(), 1)])
    os.waitpid(pid, 0)
refused(spawn)
finish()' || return
	grep -q "^route=.* errno=9\$" "$OUT" && grep -q '^parent_after=ok' "$OUT" &&
		[ "$(n_shim_lines)" = 1 ] && shim_lines | grep -q 'posix_spawn(/bin/sh) refused with EBADF' &&
		ok "os.posix_spawn(file_actions=[DUP2 sock -> 1]) raised EBADF" ||
		fail "want route errno=9, parent_after=ok, one posix_spawn reason line; got: $(tr '\n' ' ' <"$OUT") $(shim_lines | head -2)"
}

# ---- control: with a plain rule the same route puts the sentinel on the wire ----
t_control_plain_rule_shows_sentinel() {
	setup || return
	TLSSHIM_RULES="plain 127.0.0.1:$PORT" srun ctl "$CL/leak_proc" vfork_dup2 "$PORT" "$SENTINEL"
	sleep 0.3
	grep -aqF -- "$SENTINEL" "$T/rec" && ok "the recording holds the sentinel" ||
		fail "control: the recorder did not capture the plaintext sentinel, so the other cases prove nothing"
}

tcase vfork_close_keeps_parent_session
tcase vfork_close_range_keeps_parent_session
tcase vfork_dup2_onto_stdout
tcase vfork_fionclex
tcase vfork_setfd0
tcase vfork_write
tcase vfork_fionread
tcase clone_vm_write_and_close
tcase fork_without_handlers
tcase syscall_fork_child
tcase fionclex_keeps_cloexec
tcase posix_spawn_adddup2_onto_stdout
tcase posix_spawn_adddup2_onto_itself
tcase posix_spawn_adddup2_chain
tcase posix_spawn_harmless_actions_still_spawn
tcase inherited_socket_to_tls_destination
tcase scm_rights_received_socket_to_tls_destination
tcase inherited_socket_to_plain_destination_passes
tcase scm_rights_send_tls_fd
tcase inherited_accepted_socket_served
tcase dup2_copy_never_inherited
tcase close_range_unshare
tcase python_subprocess_between_writes
tcase python_dup_before_connect
tcase dup2_and_fdupfd_before_connect
tcase fork_child_copy_before_connect
tcase fork_child_socket_before_connect
tcase python_subprocess_stdout_socket
tcase python_set_inheritable_pass_fds
tcase python_os_posix_spawn_dup2
tcase control_plain_rule_shows_sentinel
finish
