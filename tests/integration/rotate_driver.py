#!/usr/bin/env python3
"""rotate_driver.py: drives the certificate rotation leak test (test_serve_rotate.sh).

    rotate_driver.py PORT CA DIR N [TICKET_KEY_FILE]

DIR holds gen0.pem/gen0.key ... gen{N-1}.pem/.key (each a new certificate and key) and the live pair
live.pem/live.key (gen0 at the start) that the server's serve rule names. For each generation i: from
i = 1 on, the live pair is replaced (key, then certificate, each by rename) and the driver waits a
little over the shim's one-second check interval; then it opens a TLS connection, checks that the
certificate served is generation i's (by serial: so the rotation really happened), exchanges a line
and keeps the connection open. Each connection is closed two generations later (after the server has
moved on), the last ones at the end; one more connection sends "quit", which ends the server.
With TICKET_KEY_FILE, that file gets 32 new random bytes (by rename) at each rotation as well.
Prints one line per generation and "done N" at the end; exits 1 with a reason on any failure.
"""
import os
import socket
import ssl
import sys
import time


def serial_of_pem(path):
    import subprocess
    out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", path],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip().split("=", 1)[1], 16)


def served_serial(sock):
    import subprocess
    der = sock.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem,
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip().split("=", 1)[1], 16)


def connect(port, ctx):
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def exchange(s, line):
    s.sendall(line)
    got = b""
    while not got.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


def replace(src, dst):
    tmp = dst + ".tmp"
    with open(src, "rb") as f, open(tmp, "wb") as g:
        g.write(f.read())
    os.replace(tmp, dst)


def main():
    port, ca, d, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    ticket_file = sys.argv[5] if len(sys.argv) > 5 else None
    ctx = ssl.create_default_context(cafile=ca)
    open_conns = []
    for i in range(n):
        if i > 0:
            replace(os.path.join(d, "gen%d.key" % i), os.path.join(d, "live.key"))
            replace(os.path.join(d, "gen%d.pem" % i), os.path.join(d, "live.pem"))
            if ticket_file:
                with open(ticket_file + ".tmp", "wb") as f:
                    f.write(os.urandom(32))
                os.replace(ticket_file + ".tmp", ticket_file)
            time.sleep(1.3)
        want = serial_of_pem(os.path.join(d, "gen%d.pem" % i))
        s = connect(port, ctx)
        got = served_serial(s)
        if got != want:
            print("generation %d: served serial %x, want %x (no rotation)" % (i, got, want))
            return 1
        line = b"ping %d\n" % i
        echo = exchange(s, line)
        if echo != line:
            print("generation %d: echo %r, want %r" % (i, echo, line))
            return 1
        open_conns.append((i, s))
        # the connection of two generations ago ends now, after its context was replaced
        for j, c in list(open_conns):
            if j <= i - 2:
                if exchange(c, b"still %d\n" % j) != b"still %d\n" % j:
                    print("generation %d's connection broke after the rotation" % j)
                    return 1
                c.close()
                open_conns.remove((j, c))
        print("generation %d served (serial %x), %d connections open" % (i, got, len(open_conns)),
              flush=True)
    for j, c in open_conns:
        c.close()
    q = connect(port, ctx)
    q.sendall(b"quit\n")
    q.close()
    print("done %d" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
