#!/usr/bin/env python3
"""Plain (non-TLS) Python clients for the compatibility suite; run under the shim, which adds TLS.

  py_client.py urllib URL                 GET with urllib.request
  py_client.py httpclient HOST PORT PATH  GET with http.client.HTTPConnection
  py_client.py socket HOST PORT NBYTES    raw socket: send NBYTES deterministic bytes to an echo
                                          server, shutdown(SHUT_WR), read everything back
  py_client.py asyncio HOST PORT NBYTES   the same with asyncio streams (open_connection)
Prints one line "OK ..." (with the body's or the echo's sha256 and length) and exits 0; anything
else raises (traceback on stderr, exit 1).
"""
import asyncio
import hashlib
import socket
import sys


def det_bytes(n):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"tlsshim-%d" % i).digest()
        i += 1
    return bytes(out[:n])


def report(kind, data):
    print("OK %s %d %s" % (kind, len(data), hashlib.sha256(data).hexdigest()), flush=True)


def echo_check(kind, sent, got):
    if got != sent:
        raise SystemExit("%s: echo mismatch: sent %d bytes, got %d back" % (kind, len(sent), len(got)))
    report(kind, got)


def main():
    mode = sys.argv[1]
    if mode == "urllib":
        import urllib.request
        with urllib.request.urlopen(sys.argv[2], timeout=15) as r:
            if r.status != 200:
                raise SystemExit("HTTP status %d" % r.status)
            report("urllib", r.read())
    elif mode == "httpclient":
        import http.client
        c = http.client.HTTPConnection(sys.argv[2], int(sys.argv[3]), timeout=15)
        c.request("GET", sys.argv[4])
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise SystemExit("HTTP status %d" % r.status)
        report("http.client", body)
        c.close()
    elif mode == "socket":
        host, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        data = det_bytes(n)
        s = socket.create_connection((host, port), timeout=15)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = bytearray()
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
        s.close()
        echo_check("socket", data, bytes(got))
    elif mode == "asyncio":
        host, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        data = det_bytes(n)

        async def run():
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 15)
            got = bytearray()

            async def rd():
                while True:
                    d = await reader.read(65536)
                    if not d:
                        return
                    got.extend(d)

            task = asyncio.create_task(rd())
            writer.write(data)
            await writer.drain()
            writer.write_eof()
            await asyncio.wait_for(task, 30)
            writer.close()
            await writer.wait_closed()
            return bytes(got)

        echo_check("asyncio", data, asyncio.run(run()))
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
