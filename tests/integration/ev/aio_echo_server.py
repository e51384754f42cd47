#!/usr/bin/env python3
"""aio_echo_server.py: the asyncio TLS echo server (one thread, one event loop, any number of
connections). Used by test_runtimes.sh (the 5,000-connection asyncio client) and by `make bench`'s scale
benchmark (N idle TLS connections beside one active one). Never run under the shim.

  aio_echo_server.py --cert C --key K --portfile F [--rec FILE] [--backlog N] [--lifetime S] [--plain]

Binds 127.0.0.1, port 0, writes the port to --portfile (atomically). Every connection is echoed (each
chunk written back as soon as it is read) until the client's EOF; then one JSON line
{"recv_n", "recv_sha", "peak"} goes to --rec (peak: the most connections open at once so far) and the
connection is closed (with close_notify under TLS). Raises its own RLIMIT_NOFILE to the hard limit.
SIGTERM or --lifetime (default 900 s) ends it. --plain: plain TCP (the bench's baseline)."""
import argparse
import asyncio
import hashlib
import json
import os
import resource
import signal
import ssl

OPEN = [0, 0]  # connections open now, most open at once (one event loop: no lock needed)


class Echo(asyncio.Protocol):
    def __init__(self, rec):
        self.rec = rec
        self.h = hashlib.sha256()
        self.n = 0
        self.t = None

    def connection_made(self, transport):
        self.t = transport
        OPEN[0] += 1
        OPEN[1] = max(OPEN[1], OPEN[0])

    def data_received(self, data):
        self.h.update(data)
        self.n += len(data)
        self.t.write(data)

    def eof_received(self):
        if self.rec:
            with open(self.rec, "a") as f:
                f.write(json.dumps({"recv_n": self.n, "recv_sha": self.h.hexdigest(), "peak": OPEN[1]}) + "\n")
        self.t.close()
        return False

    def connection_lost(self, exc):
        OPEN[0] -= 1


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--plain", action="store_true")
    p.add_argument("--portfile", required=True)
    p.add_argument("--rec")
    p.add_argument("--backlog", type=int, default=8192)
    p.add_argument("--lifetime", type=float, default=900)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = None
    if not a.plain:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: Echo(a.rec), "127.0.0.1", 0, ssl=ctx, backlog=a.backlog,
                                   ssl_handshake_timeout=120 if ctx else None)
    port = srv.sockets[0].getsockname()[1]
    with open(a.portfile + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(a.portfile + ".tmp", a.portfile)
    print("listening", port, "plain" if a.plain else "tls", flush=True)
    done = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: done.done() or done.set_result(None))
    try:
        await asyncio.wait_for(done, a.lifetime)
    except asyncio.TimeoutError:
        pass
    print("exit; most connections open at once:", OPEN[1], flush=True)


if __name__ == "__main__":
    asyncio.run(main())
