#!/usr/bin/env python3
"""rd_duplex.py: full duplex across two threads on one socket (issue 12 item 8).

  rd_duplex.py server --cert C --key K --portfile F   an asyncio TLS echo server on 127.0.0.1 (never
                                                      under the shim); exits after --lifetime seconds
  rd_duplex.py client HOST PORT BYTES [RUNS]          run under the shim (plain TCP to the program): per
                                                      run, one connection; a writer thread sendall()s
                                                      BYTES in 1 MiB pieces while the main thread
                                                      recv(65536)s the echo; both ends blocking sockets.

The client prints one line per run "run I ms=M ok" (or "bad ..."), then "runs=N ok=K max_ms=M". A run
that is not done within --limit seconds (default 5) is a failure: the client then prints "hung" and
exits 2 at once (a hung thread cannot be joined). Exit 0 only when every run was ok."""
import argparse
import asyncio
import hashlib
import os
import socket
import ssl
import sys
import threading
import time


def server(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)

    async def echo(reader, writer):
        try:
            while True:
                d = await reader.read(65536)
                if not d:
                    break
                writer.write(d)
                await writer.drain()  # back-pressure: stop reading while the client does not read
            writer.close()
        except Exception:  # noqa: BLE001 (a client killed by the harness)
            pass

    async def main():
        srv = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=ctx, backlog=128)
        port = srv.sockets[0].getsockname()[1]
        with open(args.portfile + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(args.portfile + ".tmp", args.portfile)
        print("listening", port, flush=True)
        await asyncio.sleep(args.lifetime)

    asyncio.run(main())


def one_run(host, port, n):
    piece = hashlib.sha256(b"duplex").digest() * (1 << 15)  # 1 MiB
    s = socket.create_connection((host, port))
    sent = hashlib.sha256()
    got = hashlib.sha256()
    err = []

    def writer():
        try:
            left = n
            while left:
                p = piece[: min(left, len(piece))]
                s.sendall(p)
                sent.update(p)
                left -= len(p)
        except Exception as e:  # noqa: BLE001
            err.append("send: %r" % e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    k = 0
    try:
        while k < n:
            d = s.recv(65536)
            if not d:
                err.append("EOF after %d of %d bytes" % (k, n))
                break
            got.update(d)
            k += len(d)
    except Exception as e:  # noqa: BLE001
        err.append("recv: %r" % e)
    t.join()
    s.close()
    if not err and sent.hexdigest() != got.hexdigest():
        err.append("echo differs: sent sha %s, got %s" % (sent.hexdigest()[:16], got.hexdigest()[:16]))
    return err


def client(args):
    ok = 0
    max_ms = 0
    for i in range(args.runs):
        t0 = time.monotonic()
        done = threading.Event()
        res = []

        def body():
            res.extend(one_run(args.host, args.port, args.bytes))
            done.set()

        threading.Thread(target=body, daemon=True).start()
        if not done.wait(args.limit):
            print("run %d hung: not done after %.1f s" % (i, args.limit), flush=True)
            print("runs=%d ok=%d max_ms=%d" % (i + 1, ok, max_ms), flush=True)
            os._exit(2)
        ms = int((time.monotonic() - t0) * 1000)
        max_ms = max(max_ms, ms)
        if res:
            print("run %d ms=%d bad %s" % (i, ms, "; ".join(res)), flush=True)
        else:
            ok += 1
            print("run %d ms=%d ok" % (i, ms), flush=True)
    print("runs=%d ok=%d max_ms=%d" % (args.runs, ok, max_ms), flush=True)
    sys.exit(0 if ok == args.runs else 1)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="role", required=True)
    s = sub.add_parser("server")
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--portfile", required=True)
    s.add_argument("--lifetime", type=float, default=600)
    c = sub.add_parser("client")
    c.add_argument("host")
    c.add_argument("port", type=int)
    c.add_argument("bytes", type=int)
    c.add_argument("runs", type=int, nargs="?", default=1)
    c.add_argument("--limit", type=float, default=5.0)
    a = p.parse_args()
    server(a) if a.role == "server" else client(a)


if __name__ == "__main__":
    main()
