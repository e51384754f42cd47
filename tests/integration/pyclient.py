#!/usr/bin/env python3
"""A plain-socket Python client for the tlsshim tests (run under the shim; it knows nothing of TLS
unless --tls is given, which only the harness self-test uses without the shim).

  pyclient.py tcp HOST PORT [--send TEXT] [--shut] [--family 4|6|mapped] [--tls --ca F --sni NAME]
  pyclient.py udp HOST PORT --send TEXT        (one datagram, prints the reply)
  pyclient.py unix                              (socketpair + a unix stream listener round trip)
  pyclient.py file PATH                         (reads a file and a pipe, prints their sha256)

Errors print "pyclient: STAGE: errno=ENAME (...)" to stderr and exit 2.
"""
import argparse
import errno
import hashlib
import os
import socket
import sys
import tempfile


def die(stage, e):
    name = errno.errorcode.get(e.errno, "E?") if isinstance(e, OSError) and e.errno else type(e).__name__
    print("pyclient: %s: errno=%s (%s)" % (stage, name, e), file=sys.stderr, flush=True)
    sys.exit(2)


def tcp(a):
    fam = {"4": socket.AF_INET, "6": socket.AF_INET6, "mapped": socket.AF_INET6}.get(a.family, 0)
    host = a.host
    if a.family == "mapped":
        host = "::ffff:" + host
    try:
        if fam:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(30)
            s.connect((host, a.port))  # numeric: no resolver call
        else:
            s = socket.create_connection((host, a.port), timeout=30)  # getaddrinfo
    except OSError as e:
        die("connect", e)
    if a.tls:
        import ssl
        ctx = ssl.create_default_context(cafile=a.ca)
        s = ctx.wrap_socket(s, server_hostname=a.sni)
    out = b""
    payload = a.send.encode().decode("unicode_escape").encode("latin-1") if a.send else b""
    try:
        if payload:
            s.sendall(payload)
        if a.tls:  # harness self-test only: read back exactly what was sent, then stop
            want = len(payload)
            while len(out) < want:
                d = s.recv(65536)
                if not d:
                    break
                out += d
            sys.stdout.buffer.write(out)
            return
        if a.shut:
            s.shutdown(socket.SHUT_WR)
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except OSError as e:
        sys.stdout.buffer.write(out)
        sys.stdout.flush()
        die("io", e)
    sys.stdout.buffer.write(out)
    print("\npyclient: EOF after %d bytes" % len(out), file=sys.stderr)


def udp(a):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(5)
        s.sendto(a.send.encode(), (a.host, a.port))
        d, _ = s.recvfrom(65536)
        print(d.decode())
        # and a connected UDP socket using send/recv
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(5)
        c.connect((a.host, a.port))
        c.send(b"connected-" + a.send.encode())
        print(c.recv(65536).decode())
    except OSError as e:
        die("udp", e)


def unix(_a):
    try:
        x, y = socket.socketpair()
        x.sendall(b"socketpair-ok")
        print(y.recv(100).decode())
        d = tempfile.mkdtemp()
        path = os.path.join(d, "sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(5)
        c.connect(path)
        conn, _ = srv.accept()
        c.sendall(b"unix-stream-ok")
        print(conn.recv(100).decode())
        for f in (c, conn, srv):
            f.close()
        os.unlink(path)
        os.rmdir(d)
    except OSError as e:
        die("unix", e)


def files(a):
    with open(a.host, "rb") as f:
        print("file", hashlib.sha256(f.read()).hexdigest())
    r, w = os.pipe()
    os.write(w, b"pipe-data")
    os.close(w)
    print("pipe", os.read(r, 100).decode())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["tcp", "udp", "unix", "file"])
    p.add_argument("host", nargs="?")
    p.add_argument("port", nargs="?", type=int)
    p.add_argument("--send")
    p.add_argument("--shut", action="store_true")
    p.add_argument("--family")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--ca")
    p.add_argument("--sni")
    a = p.parse_args()
    {"tcp": tcp, "udp": udp, "unix": unix, "file": files}[a.mode](a)


if __name__ == "__main__":
    main()
