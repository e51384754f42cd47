#!/usr/bin/env python3
"""aio_client.py [--slow] [--tls CA] HOST PORT N: a plain-TCP asyncio client (run under the shim): N concurrent connections
to an echo server. Every connection is opened first and all wait until all N are open (so N are open at
once), then each sends its own payload (distinct content and size), half-closes (write_eof), reads the
echo to EOF and compares. With --tls CA the client does TLS itself (python's ssl, no shim: the
control run). Prints "conn I n=BYTES sha=HEX ok|bad" per connection and a summary
"ok=K failed=F open_at_once=M seconds=S". Exit 0 only if all N were ok. Bounded: each step (connect,
waiting for all, the echo) 60 s, 120 s overall; --slow multiplies both by 2.5 (150 s, 300 s)."""
import asyncio
import hashlib
import ssl
import sys
import time


def payload(i):
    seed = hashlib.sha256(b"aio-%d" % i).digest()
    size = 3000 + (i * 211) % 60000  # distinct sizes; bounded, so 5,000 connections stay cheap
    return (seed * (size // 32 + 1))[:size]


STEP, TOTAL = 60, 120


async def one(i, host, port, all_open, counter, results, ctx):
    data = payload(i)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx), STEP)
    except Exception as e:  # noqa: BLE001
        results[i] = ("connect-error %s: %s" % (type(e).__name__, e), data)
        counter[0] += 1
        if counter[0] == counter[1]:
            all_open.set()
        return
    counter[0] += 1
    counter[2] = max(counter[2], counter[0] - counter[3])
    if counter[0] == counter[1]:
        all_open.set()
    try:
        await asyncio.wait_for(all_open.wait(), STEP)
        writer.write(data)
        await writer.drain()
        if ctx is None:
            writer.write_eof()
            got = await asyncio.wait_for(reader.read(), STEP)  # to EOF
        else:  # asyncio's SSL transport cannot half-close: read the echo's length
            got = await asyncio.wait_for(reader.readexactly(len(data)), STEP)
        results[i] = ("ok" if got == data else "bad: got %d bytes, sent %d" % (len(got), len(data)), data)
    except Exception as e:  # noqa: BLE001
        results[i] = ("error %s: %s" % (type(e).__name__, e), data)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except Exception:  # noqa: BLE001
            pass


async def main():
    global STEP, TOTAL
    args = sys.argv[1:]
    if args[:1] == ["--slow"]:
        STEP, TOTAL = 150, 300
        args = args[1:]
    ctx = None
    if args[:1] == ["--tls"]:
        ctx = ssl.create_default_context(cafile=args[1])
        args = args[2:]
    host, port, n = args[0], int(args[1]), int(args[2])
    all_open = asyncio.Event()
    counter = [0, n, 0, 0]  # connected, wanted, most open at once, failed connects (unused)
    results = {}
    t0 = time.time()
    await asyncio.wait_for(asyncio.gather(*(one(i, host, port, all_open, counter, results, ctx) for i in range(n))), TOTAL)
    okc = 0
    for i in range(n):
        status, data = results.get(i, ("missing", payload(i)))
        okc += status == "ok"
        print("conn %d n=%d sha=%s %s" % (i, len(data), hashlib.sha256(data).hexdigest(), status))
    print("ok=%d failed=%d open_at_once=%d seconds=%.1f" % (okc, n - okc, counter[2], time.time() - t0))
    return 0 if okc == n else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
