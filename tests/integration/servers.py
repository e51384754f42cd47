#!/usr/bin/env python3
"""Test servers for the tlsshim integration suite. Never run under the shim.

Every server binds loopback only (127.0.0.1, plus ::1 on the same port when --v6), on port 0 unless
--port is given, writes the chosen port to --portfile once listening, logs one line per event to
stdout, and exits by itself after --lifetime seconds (bounded even if the harness dies).

  servers.py tls   --cert C --key K [--chain F] [--mode M] [--rec FILE] [--alpn a,b] [--min 1.2]
                   [--max 1.3] [--ciphers S] [--client-ca F]   (TLS server; --rec: JSON line per conn)
  servers.py plain [--mode M]            (plain TCP server)
  servers.py udpecho                     (UDP echo)
  servers.py relay --to PORT --rec FILE  (records client->server bytes to FILE, forwards both ways)

Modes: echo, hash (read to EOF, reply "<sha256> <bytes>\\n"), source:N (send N deterministic bytes,
then close cleanly), close (greeting then close_notify), reset (greeting then TCP RST), eof (greeting
then FIN without close_notify), badrecord (greeting then a forged application-data record),
http (minimal HTTP/1.0 page), silent (accept, never read or write), garbage (read, answer non-TLS).
"""
import argparse
import hashlib
import json
import os
import selectors
import socket
import ssl
import struct
import sys
import threading
import time

LOCK = threading.Lock()


def log(*a):
    with LOCK:
        print(time.strftime("%H:%M:%S"), *a, flush=True)


def det_bytes(n):
    """n deterministic bytes (the same stream the C clients and tests expect: sha256 counter blocks)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"tlsshim-%d" % i).digest()
        i += 1
    return bytes(out[:n])


def recv_all(conn):
    h = hashlib.sha256()
    n = 0
    while True:
        d = conn.recv(65536)
        if not d:
            return h.hexdigest(), n
        h.update(d)
        n += len(d)


def clean_close(conn, is_tls):
    if is_tls:
        try:
            conn.settimeout(5)
            conn = conn.unwrap()
        except Exception as e:  # peer may already be gone
            log("unwrap:", type(e).__name__, e)
    try:
        conn.close()
    except OSError:
        pass


def serve_conn(conn, peer, args, is_tls, held):
    mode = args.mode
    greeting = b"hello from tlsshim test server\n"
    try:
        if mode == "silent":
            held.append(conn)  # keep it open, never read
            log("silent accept", peer)
            return
        if mode == "garbage":
            conn.settimeout(5)
            try:
                conn.recv(4096)
            except OSError:
                pass
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\nthis is not TLS at all\n" * 4)
            log("garbage sent", peer)
            conn.close()
            return
        if is_tls:
            conn.settimeout(10)
            conn.do_handshake()
            conn.settimeout(60)
            rec = {
                "peer": str(peer),
                "sni": getattr(conn, "_tlsshim_sni", "NOT-CALLED"),
                "alpn": conn.selected_alpn_protocol(),
                "version": conn.version(),
                "cipher": conn.cipher()[0],
            }
            log("handshake", json.dumps(rec))
            if args.rec:
                with LOCK, open(args.rec, "a") as f:
                    f.write(json.dumps(rec) + "\n")
        else:
            conn.settimeout(60)
            log("accept", peer)
        if mode == "echo":
            n = 0
            h = hashlib.sha256()
            while True:
                d = conn.recv(65536)
                if not d:
                    break
                h.update(d)
                conn.sendall(d)
                n += len(d)
            log("echo done", n, "sha256", h.hexdigest())
            clean_close(conn, is_tls)
        elif mode == "hash":
            hx, n = recv_all(conn)
            log("hash", hx, n)
            conn.sendall(b"%s %d\n" % (hx.encode(), n))
            clean_close(conn, is_tls)
        elif mode.startswith("source:"):
            data = det_bytes(int(mode.split(":", 1)[1]))
            conn.sendall(data)
            log("source sent", len(data), hashlib.sha256(data).hexdigest())
            clean_close(conn, is_tls)
        elif mode == "close":
            conn.sendall(greeting)
            clean_close(conn, is_tls)
            log("closed with close_notify")
        elif mode == "reset":
            conn.sendall(greeting)
            time.sleep(0.3)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            socket.socket.close(conn) if not is_tls else conn.close()
            log("reset sent")
        elif mode == "eof":
            conn.sendall(greeting)
            time.sleep(0.3)
            conn.shutdown(socket.SHUT_RDWR)  # SSLSocket.shutdown: plain TCP FIN, no close_notify
            conn.close()
            log("eof without close_notify")
        elif mode == "badrecord":
            conn.sendall(greeting)
            time.sleep(0.3)
            forged = b"\x17\x03\x03\x00\x40" + os.urandom(64)
            socket.socket.send(conn, forged)  # bypass TLS: raw bytes on the wire
            time.sleep(1)
            conn.close()
            log("forged record sent")
        elif mode == "http":
            buf = b""
            while b"\r\n\r\n" not in buf and len(buf) < 65536:
                d = conn.recv(4096)
                if not d:
                    break
                buf += d
            body = b"tlsshim-test-page\nrequest was:\n" + buf
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % len(body) + body)
            log("http served", len(buf))
            clean_close(conn, is_tls)
        else:
            log("unknown mode", mode)
            conn.close()
    except Exception as e:
        log("conn error", peer, type(e).__name__, e)
        try:
            conn.close()
        except OSError:
            pass


def listeners(args, kind=socket.SOCK_STREAM):
    socks = []
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.host, args.port))
    port = s.getsockname()[1]
    socks.append(s)
    if args.v6:
        try:
            s6 = socket.socket(socket.AF_INET6, kind)
            s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s6.bind(("::1", port))
            socks.append(s6)
        except OSError as e:
            log("no ::1 listener:", e)
    if kind == socket.SOCK_STREAM:
        for x in socks:
            x.listen(64)
    if args.portfile:
        tmp = args.portfile + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.portfile)
    log("listening", port, [x.getsockname() for x in socks])
    return socks


def make_ctx(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.chain or args.cert, args.key)
    vers = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
    if args.min:
        ctx.minimum_version = vers[args.min]
    if args.max:
        ctx.maximum_version = vers[args.max]
    if args.ciphers:
        ctx.set_ciphers(args.ciphers)
    if args.alpn:
        ctx.set_alpn_protocols(args.alpn.split(","))
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args.client_ca)

    def sni_cb(sock, name, _ctx):
        # called for every ClientHello; name is None when the client sent no SNI
        sock._tlsshim_sni = name if name is not None else "NONE"
        return None

    ctx.sni_callback = sni_cb
    return ctx


def serve_stream(args, is_tls):
    ctx = make_ctx(args) if is_tls else None
    socks = listeners(args)
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    held = []
    deadline = time.time() + args.lifetime
    while time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            conn, peer = key.fileobj.accept()
            if is_tls and args.mode not in ("silent", "garbage"):
                conn = ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            threading.Thread(target=serve_conn, args=(conn, peer, args, is_tls, held), daemon=True).start()
    log("lifetime over")


def serve_udp(args):
    socks = listeners(args, socket.SOCK_DGRAM)
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    deadline = time.time() + args.lifetime
    while time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            d, peer = key.fileobj.recvfrom(65536)
            log("udp", peer, len(d))
            key.fileobj.sendto(b"udp-echo:" + d, peer)


def relay(args):
    socks = listeners(args)
    rec_lock = threading.Lock()
    deadline = time.time() + args.lifetime

    def pump(src, dst, recfile):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                if recfile:
                    with rec_lock, open(recfile, "ab") as f:
                        f.write(d)
                dst.sendall(d)
        except OSError as e:
            log("relay pump:", e)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def handle(c):
        try:
            up = socket.create_connection(("127.0.0.1", args.to), timeout=10)
        except OSError as e:
            log("relay upstream failed:", e)
            c.close()
            return
        up.settimeout(120)
        c.settimeout(120)
        t1 = threading.Thread(target=pump, args=(c, up, args.rec), daemon=True)
        t2 = threading.Thread(target=pump, args=(up, c, args.rec + ".s2c" if args.rec else None), daemon=True)
        t1.start(); t2.start(); t1.join(130); t2.join(130)
        c.close(); up.close()
        log("relay conn done")

    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    while time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            c, peer = key.fileobj.accept()
            log("relay accept", peer)
            threading.Thread(target=handle, args=(c,), daemon=True).start()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["tls", "plain", "udpecho", "relay"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--v6", action="store_true", help="also listen on ::1 (same port)")
    p.add_argument("--portfile")
    p.add_argument("--lifetime", type=float, default=900)
    p.add_argument("--mode", default="echo")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--chain", help="PEM with leaf + intermediates (used instead of --cert)")
    p.add_argument("--rec")
    p.add_argument("--alpn")
    p.add_argument("--min")
    p.add_argument("--max")
    p.add_argument("--ciphers")
    p.add_argument("--client-ca")
    p.add_argument("--to", type=int)
    args = p.parse_args()
    if args.kind == "tls":
        serve_stream(args, True)
    elif args.kind == "plain":
        serve_stream(args, False)
    elif args.kind == "udpecho":
        serve_udp(args)
    else:
        relay(args)


if __name__ == "__main__":
    main()
