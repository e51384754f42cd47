#!/usr/bin/env python3
"""TLS stream server for the compatibility suite (Python's ssl module, i.e. OpenSSL). Never run under
the shim. Used where the test needs TLS half-close (the client shuts down its sending side and then
reads the answer): stunnel ends the whole connection soon after the client's close_notify, so an echo
through stunnel loses the tail of the answer.

  tls_server.py --host ADDR --cert C --key K --mode MODE --portfile F [--lifetime S]
Modes: echo (send back everything until the client's EOF), hash (read to EOF, answer
"<sha256> <bytes>\\n"), source:N (send N deterministic bytes, then close).
Listens on ADDR (IPv4 or IPv6), port 0; writes the port to --portfile; one line per event on stdout;
exits by itself after --lifetime seconds.
"""
import argparse
import hashlib
import socket
import ssl
import threading
import time


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def det_bytes(n):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"tlsshim-%d" % i).digest()
        i += 1
    return bytes(out[:n])


def serve(conn, peer, mode):
    try:
        conn.settimeout(10)
        conn.do_handshake()
        conn.settimeout(60)
        log("handshake", peer, conn.version(), conn.cipher()[0])
        h = hashlib.sha256()
        n = 0
        if mode.startswith("source:"):
            data = det_bytes(int(mode.split(":", 1)[1]))
            conn.sendall(data)
            log("source sent", len(data))
        else:
            while True:
                d = conn.recv(65536)
                if not d:
                    break
                h.update(d)
                n += len(d)
                if mode == "echo":
                    conn.sendall(d)
            if mode == "hash":
                conn.sendall(b"%s %d\n" % (h.hexdigest().encode(), n))
            log(mode, "done", n, "sha256", h.hexdigest())
        try:
            conn = conn.unwrap()  # close_notify
        except (OSError, ssl.SSLError) as e:
            log("unwrap:", type(e).__name__, e)
        conn.close()
    except Exception as e:
        log("conn error", peer, type(e).__name__, e)
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--mode", default="echo")
    p.add_argument("--portfile", required=True)
    p.add_argument("--lifetime", type=float, default=600)
    a = p.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.host, 0))
    s.listen(16)
    s.settimeout(1)
    with open(a.portfile + ".tmp", "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    import os
    os.rename(a.portfile + ".tmp", a.portfile)
    log("listening", s.getsockname())
    end = time.time() + a.lifetime
    while time.time() < end:
        try:
            c, peer = s.accept()
        except socket.timeout:
            continue
        c = ctx.wrap_socket(c, server_side=True, do_handshake_on_connect=False)
        threading.Thread(target=serve, args=(c, peer, a.mode), daemon=True).start()


if __name__ == "__main__":
    main()
