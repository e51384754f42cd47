#!/usr/bin/env python3
"""serve_client.py: real clients for test_serve.sh (python ssl, no shim).

  serve_client.py tls HOST PORT --ca CA [--cert C --key K] [--sni NAME] [--line TEXT] [--greet]
      TLS handshake (verified against CA, SNI NAME or HOST), sends TEXT + newline, prints each line
      received ("got: ..."), the server certificate's subject ("subject: ..."), and "ms: N" for the
      whole exchange. --greet reads one line before sending. Exit 0 on a reply, 3 on a TLS error
      (printed "tls-error: ..."), 4 on a closed/reset connection.
  serve_client.py plain HOST PORT --line TEXT      plaintext: sends TEXT, prints what comes back
  serve_client.py garbage HOST PORT                 random bytes, then waits for the close
  serve_client.py half HOST PORT --ca CA            half a ClientHello, then waits (holds the socket)
  serve_client.py idle HOST PORT --count N --hold S opens N connections that never speak, holds S s
  serve_client.py vanish HOST PORT --ca CA          starts a handshake and resets mid-way
"""
import argparse
import os
import socket
import ssl
import sys
import time


def tls(a):
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.check_hostname = bool(a.sni or not a.host[0].isdigit())
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    t0 = time.monotonic()
    try:
        raw = socket.create_connection((a.host, a.port), timeout=a.timeout)
        s = ctx.wrap_socket(raw, server_hostname=a.sni or a.host)
        if a.greet:
            f = s.makefile("rb")
            print("got: " + f.readline().decode(errors="replace").rstrip())
        s.sendall(a.line.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ssl.SSLError as e:
        print("tls-error: %s" % e)
        return 3
    except (ConnectionError, OSError) as e:
        print("closed: %s" % e)
        return 4
    cert = s.getpeercert()
    subj = ",".join("%s=%s" % kv[0] for kv in cert.get("subject", ()))
    for line in data.decode(errors="replace").splitlines():
        print("got: " + line)
    print("subject: " + subj)
    print("version: " + str(s.version()))
    print("ms: %d" % int((time.monotonic() - t0) * 1000))
    s.close()
    return 0 if data else 4


def resume(a):
    """Two TLS connections: the second offers the first one's session (ticket). Prints reused: True/False.
    --port2: the second connection goes to another port (a replica)."""
    ctx = ssl.create_default_context(cafile=a.ca)
    sess = None
    for i, port in enumerate((a.port, a.port2 or a.port)):
        raw = socket.create_connection((a.host, port), timeout=a.timeout)
        s = ctx.wrap_socket(raw, server_hostname=a.sni or a.host, session=sess)
        s.sendall(b"resume %d\n" % i)
        data = b""
        while not data.endswith(b"\n"):
            c = s.recv(4096)
            if not c:
                break
            data += c
        if i == 0:
            sess = s.session
        else:
            print("reused: %s" % s.session_reused)
        s.close()
    return 0


def client_hello(a):
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    ctx = ssl.create_default_context(cafile=a.ca)
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--sni")
    ap.add_argument("--line", default="hello")
    ap.add_argument("--greet", action="store_true")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--hold", type=float, default=5)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--port2", type=int, default=0)
    a = ap.parse_args()
    if a.mode == "tls":
        return tls(a)
    if a.mode == "resume":
        return resume(a)
    s = socket.create_connection((a.host, a.port), timeout=a.timeout)
    if a.mode == "plain":
        s.sendall(a.line.encode() + b"\r\n\r\n")
        data = b""
        try:
            while True:
                c = s.recv(4096)
                if not c:
                    break
                data += c
        except OSError as e:
            print("closed: %s" % e)
        print("plain-reply-bytes: %d" % len(data))
        sys.stdout.write("plain-reply: %r\n" % data[:200])
        return 0
    if a.mode == "garbage":
        s.sendall(os.urandom(3000))
        try:
            n = len(s.recv(4096))
        except OSError:
            n = 0
        print("garbage-reply-bytes: %d" % n)
        return 0
    if a.mode == "half":
        h = client_hello(a)
        s.sendall(h[: len(h) // 2])
        time.sleep(a.hold)
        return 0
    if a.mode == "vanish":
        h = client_hello(a)
        s.sendall(h)
        time.sleep(0.2)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        return 0
    if a.mode == "idle":
        socks = [s] + [socket.create_connection((a.host, a.port), timeout=a.timeout) for _ in range(a.count - 1)]
        print("idle-open: %d" % len(socks))
        sys.stdout.flush()
        time.sleep(a.hold)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
