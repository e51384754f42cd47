#!/usr/bin/env python3
"""aio_client.py HOST PORT N: a plain-TCP asyncio client (run under the shim): N concurrent connections
to an echo server. Every connection is opened first and all wait until all N are open (so N are open at
once), then each sends its own payload (distinct content and size), half-closes (write_eof), reads the
echo to EOF and compares. Prints "conn I n=BYTES sha=HEX ok|bad" per connection and a summary
"ok=K failed=F open_at_once=M seconds=S". Exit 0 only if all N were ok. Bounded: 120 s overall."""
import asyncio
import hashlib
import sys
import time


def payload(i):
    seed = hashlib.sha256(b"aio-%d" % i).digest()
    size = 3000 + i * 211
    return (seed * (size // 32 + 1))[:size]


async def one(i, host, port, all_open, counter, results):
    data = payload(i)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 60)
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
        await asyncio.wait_for(all_open.wait(), 60)
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        got = await asyncio.wait_for(reader.read(), 60)  # to EOF
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
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    all_open = asyncio.Event()
    counter = [0, n, 0, 0]  # connected, wanted, most open at once, failed connects (unused)
    results = {}
    t0 = time.time()
    await asyncio.wait_for(asyncio.gather(*(one(i, host, port, all_open, counter, results) for i in range(n))), 120)
    okc = 0
    for i in range(n):
        status, data = results.get(i, ("missing", payload(i)))
        okc += status == "ok"
        print("conn %d n=%d sha=%s %s" % (i, len(data), hashlib.sha256(data).hexdigest(), status))
    print("ok=%d failed=%d open_at_once=%d seconds=%.1f" % (okc, n - okc, counter[2], time.time() - t0))
    return 0 if okc == n else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
