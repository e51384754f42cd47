#!/usr/bin/env python3
"""Extra test servers for test_eventloop.sh, test_threads.sh and test_process.sh (issue 4: event loops,
threads, processes). Never run under the shim. Reuses servers.py (make_ctx, log, clean_close).

Binds 127.0.0.1 only, port 0, listen backlog 1024 (200 concurrent connects must not overflow it),
writes the port to --portfile, logs one line per event to stdout, appends one JSON object per
connection to --rec, and exits by itself after --lifetime seconds.

  evserver.py tls|plain --mode M [--cert C --key K] [--rec FILE]

Modes (every byte count is what crossed the connection; every sha256 is of those bytes):
  echo            echo until EOF; rec {"mode","recv_n","recv_sha","close_notify"} (close_notify: the
                  EOF was a TLS close_notify, false for a bare TCP FIN; null for plain)
  burst:N         send N pattern bytes at once (one sendall), then read until "\\n" or EOF, then close
                  cleanly; rec {"sent_n","sent_sha"}
  onreq           read lines "send K\\n", answer each with K pattern bytes in one sendall; at EOF close
                  cleanly; rec {"sent_n","sent_sha","requests"}
  duplex          read a header line "DUPLEX N TAG\\n", then at the same time receive N bytes and send
                  N pattern bytes (two threads); rec {"tag","recv_n","recv_sha","sent_n","sent_sha"};
                  then read to EOF and close
  idle            complete the handshake, then never read and never write (holds the connection)
  slowhs:MS       wait MS before the TLS handshake, then echo
  delayecho:MS    echo each chunk after MS milliseconds
  drip:N:MS       read a line "go\\n", then send N records one at a time (one sendall each: one TLS
                  record), MS/2..MS milliseconds apart (seeded jitter), each 32 bytes
                  "rec KKKKK SSSSSSSSSS.UUUUUU\\n..." (K: number from 0, S.U: time.time() when sent);
                  then close cleanly; logs "drip sent N"
  http:MS         HTTP/1.0: "GET /K" answers a body of 20000+K*1013 pattern bytes (seed K) after MS ms;
                  logs "http K <sha256> <n>" and the highest number of connections open at once
The pattern: 64 KiB blocks, each a 16-byte header (seed, block number) plus a seeded base block.
"""
import argparse
import hashlib
import json
import os
import random
import selectors
import socket
import ssl
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import servers  # noqa: E402  (the shared test servers: make_ctx, log, clean_close)

log = servers.log
REC_LOCK = threading.Lock()
ACTIVE = [0, 0]  # open connections, highest seen
ACTIVE_LOCK = threading.Lock()
BLOCK = 65536


class Pattern:
    """Deterministic bytes for a seed; cheap enough for GiB transfers."""

    def __init__(self, seed):
        self.seed = seed
        self.base = hashlib.shake_256(b"evserver-%d" % seed).digest(BLOCK)

    def chunks(self, n):
        i = 0
        while n > 0:
            blk = struct.pack("<QQ", self.seed, i) + self.base[16:]
            take = min(n, BLOCK)
            yield blk[:take]
            n -= take
            i += 1


def record(args, obj):
    log("rec", json.dumps(obj))
    if args.rec:
        with REC_LOCK, open(args.rec, "a") as f:
            f.write(json.dumps(obj) + "\n")


def send_pattern(conn, n, seed):
    h = hashlib.sha256()
    sent = 0
    for blk in Pattern(seed).chunks(n):
        conn.sendall(blk)
        h.update(blk)
        sent += len(blk)
    return sent, h.hexdigest()


def read_line(conn, limit=4096):
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < limit:
        d = conn.recv(1)
        if not d:
            break
        buf += d
    return buf


def drain_to_eof(conn):
    while True:
        d = conn.recv(65536)
        if not d:
            return


def serve(conn, peer, args, is_tls, held):
    mode, _, arg = args.mode.partition(":")
    with ACTIVE_LOCK:
        ACTIVE[0] += 1
        ACTIVE[1] = max(ACTIVE[1], ACTIVE[0])
    try:
        if mode == "slowhs":
            time.sleep(int(arg) / 1000)
        if is_tls:
            conn.settimeout(10)
            conn.do_handshake()
            log("handshake", peer, conn.version())
        conn.settimeout(120)
        if mode in ("echo", "slowhs", "delayecho"):
            h = hashlib.sha256()
            n = 0
            close_notify = None if not is_tls else True
            while True:
                try:
                    d = conn.recv(65536)
                except ssl.SSLEOFError:  # TCP FIN without close_notify (ragged EOFs are not suppressed)
                    close_notify = False
                    d = b""
                if not d:
                    break
                h.update(d)
                n += len(d)
                if mode == "delayecho":
                    time.sleep(int(arg) / 1000)
                conn.sendall(d)
            log("echo done", n, "sha256", h.hexdigest(), "close_notify", close_notify)
            record(args, {"mode": mode, "recv_n": n, "recv_sha": h.hexdigest(), "close_notify": close_notify})
            servers.clean_close(conn, is_tls)
        elif mode == "burst":
            n, sha = send_pattern(conn, int(arg), 7)
            log("burst sent", n, sha)
            record(args, {"mode": mode, "sent_n": n, "sent_sha": sha})
            line = read_line(conn)
            log("burst got", line)
            servers.clean_close(conn, is_tls)
        elif mode == "onreq":
            h = hashlib.sha256()
            total = 0
            reqs = 0
            seed = 100
            while True:
                line = read_line(conn)
                if not line.startswith(b"send "):
                    break
                k = int(line.split()[1])
                blob = b"".join(Pattern(seed).chunks(k))
                seed += 1
                conn.sendall(blob)  # one call: a single TLS record when k <= 16384
                h.update(blob)
                total += k
                reqs += 1
                log("onreq sent", k)
            record(args, {"mode": mode, "sent_n": total, "sent_sha": h.hexdigest(), "requests": reqs})
            servers.clean_close(conn, is_tls)
        elif mode == "duplex":
            hdr = read_line(conn).split()
            if len(hdr) != 3 or hdr[0] != b"DUPLEX":
                log("duplex: bad header", hdr)
                conn.close()
                return
            n, tag = int(hdr[1]), hdr[2].decode()
            out = {}
            t0 = time.time()

            def sender():
                try:
                    out["sent_n"], out["sent_sha"] = send_pattern(conn, n, 1000 + int(hashlib.sha256(tag.encode()).hexdigest()[:6], 16))
                except OSError as e:
                    out["send_error"] = str(e)

            th = threading.Thread(target=sender, daemon=True)
            th.start()
            h = hashlib.sha256()
            got = 0
            buf = bytearray(262144)
            mv = memoryview(buf)
            while got < n:
                k = conn.recv_into(mv, min(len(buf), n - got))
                if k == 0:
                    break
                h.update(mv[:k])
                got += k
            th.join(300)
            out.update({"mode": mode, "tag": tag, "recv_n": got, "recv_sha": h.hexdigest(),
                        "seconds": round(time.time() - t0, 2)})
            record(args, out)
            drain_to_eof(conn)
            servers.clean_close(conn, is_tls)
        elif mode == "drip":
            count, _, ms = arg.partition(":")
            line = read_line(conn)
            if line != b"go\n":
                log("drip: bad start line", line)
                conn.close()
                return
            jitter = random.Random(int(count) * 7919 + int(ms))
            for k in range(int(count)):
                time.sleep(jitter.uniform(int(ms) / 2000, int(ms) / 1000))
                rec = b"rec %05d %17.6f" % (k, time.time())
                conn.sendall(rec.ljust(31, b".") + b"\n")
            log("drip sent", count)
            servers.clean_close(conn, is_tls)
        elif mode == "idle":
            held.append(conn)
            log("idle: holding", peer)
            return
        elif mode == "http":
            buf = b""
            while b"\r\n\r\n" not in buf and len(buf) < 65536:
                d = conn.recv(4096)
                if not d:
                    break
                buf += d
            path = buf.split(b" ")[1] if buf.count(b" ") >= 2 else b"/0"
            k = int(path.strip(b"/") or b"0")
            body = b"".join(Pattern(k).chunks(20000 + k * 1013))
            time.sleep(int(arg or "0") / 1000)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            log("http", k, hashlib.sha256(body).hexdigest(), len(body), "max_active", ACTIVE[1])
            servers.clean_close(conn, is_tls)
        else:
            log("unknown mode", args.mode)
            conn.close()
    except Exception as e:  # the test reads the log
        log("conn error", peer, type(e).__name__, e)
        try:
            conn.close()
        except OSError:
            pass
    finally:
        with ACTIVE_LOCK:
            ACTIVE[0] -= 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["tls", "plain"])
    p.add_argument("--mode", default="echo")
    p.add_argument("--portfile")
    p.add_argument("--lifetime", type=float, default=900)
    p.add_argument("--rec")
    p.add_argument("--cert")
    p.add_argument("--key")
    args = p.parse_args()
    ctx = None
    if args.kind == "tls":
        ns = argparse.Namespace(chain=None, cert=args.cert, key=args.key, min=None, max=None, ciphers=None,
                                alpn=None, client_ca=None)
        ctx = servers.make_ctx(ns)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1024)
    port = s.getsockname()[1]
    if args.portfile:
        with open(args.portfile + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(args.portfile + ".tmp", args.portfile)
    log("listening", port, args.kind, args.mode)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ)
    held = []
    deadline = time.time() + args.lifetime
    while time.time() < deadline:
        for _key, _ in sel.select(timeout=1):
            conn, peer = s.accept()
            if ctx is not None:
                conn = ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False,
                                       suppress_ragged_eofs=False)
            threading.Thread(target=serve, args=(conn, peer, args, ctx is not None, held), daemon=True).start()
    log("lifetime over")


if __name__ == "__main__":
    main()
