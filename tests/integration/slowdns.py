#!/usr/bin/env python3
"""slowdns.py: a tiny DNS server for tests that need a slow answer (test_forkgate.sh).

  slowdns.py ADDR LOGFILE NAME=DELAY_MS[,ADDRESS] ...

Listens on UDP ADDR:53. A query for a listed NAME is answered after DELAY_MS: type A with ADDRESS
(default 127.0.0.1), any other type with no records (NOERROR). Every other name: NXDOMAIN at once.
Answers are scheduled, so a slow name never delays another. Each query is logged as
"<ms since start> <name> <type>" to LOGFILE; "ready" is written there once the socket is bound.
With SLOWDNS_TCP_PORT set, it also answers one-line queries on TCP 127.0.0.1:PORT for nss_fgtest.c
("NAME\n" -> "ADDRESS\n" at once, or "-\n"), logged as "<ms> tcp <name> <first bytes in hex>".
Written for this project; only the RFC 1035 message format is used."""
import heapq
import os
import select
import socket
import struct
import sys
import time

addr, logpath = sys.argv[1], sys.argv[2]
names = {}
for spec in sys.argv[3:]:
    name, rest = spec.split("=", 1)
    delay, _, ip = rest.partition(",")
    names[name.lower().rstrip(".")] = (int(delay), ip or "127.0.0.1")

start = time.monotonic()
log = open(logpath, "a", buffering=1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((addr, 53))
tcp = None
if os.environ.get("SLOWDNS_TCP_PORT"):
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", int(os.environ["SLOWDNS_TCP_PORT"])))
    tcp.listen(16)
log.write("ready\n")


def tcp_query(conn):
    conn.settimeout(5)
    data = b""
    try:
        while b"\n" not in data and len(data) < 512:
            d = conn.recv(512)
            if not d:
                break
            data += d
        name = data.split(b"\n")[0].decode("ascii", "replace").lower().rstrip(".")
        log.write("%d tcp %s %s\n" % ((time.monotonic() - start) * 1000, name, data[:8].hex()))
        conn.sendall(((names[name][1] if name in names else "-") + "\n").encode())
    except OSError:
        pass
    conn.close()


def parse_question(msg):
    off, labels = 12, []
    while True:
        n = msg[off]
        off += 1
        if n == 0:
            break
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
    return ".".join(labels).lower(), qtype, msg[12:off + 4]


def answer(msg, rcode, question, qtype, ip):
    qid, flags = struct.unpack("!HH", msg[:4])
    rd = flags & 0x0100
    records = b""
    if rcode == 0 and qtype == 1:
        records = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + socket.inet_aton(ip)
    head = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1, 1 if records else 0, 0, 0)
    return head + question + records


pending = []  # (due, seq, reply, peer)
seq = 0
while True:
    timeout = None
    if pending:
        timeout = max(0.0, pending[0][0] - time.monotonic())
    r, _, _ = select.select([sock] + ([tcp] if tcp else []), [], [], timeout)
    if tcp in r:
        tcp_query(tcp.accept()[0])
    if sock in r:
        msg, peer = sock.recvfrom(4096)
        try:
            name, qtype, question = parse_question(msg)
        except (IndexError, struct.error):
            continue
        log.write("%d %s %d\n" % ((time.monotonic() - start) * 1000, name, qtype))
        if name in names:
            delay, ip = names[name]
            reply = answer(msg, 0, question, qtype, ip)
        else:
            delay, reply = 0, answer(msg, 3, question, qtype, "")
        seq += 1
        heapq.heappush(pending, (time.monotonic() + delay / 1000.0, seq, reply, peer))
    now = time.monotonic()
    while pending and pending[0][0] <= now:
        _, _, reply, peer = heapq.heappop(pending)
        sock.sendto(reply, peer)
