"""The two ends of the write-coalescing cases (test_serve_coalesce.sh).

server PORT PORTFILE: a plain HTTP/1.1 keep-alive server (one thread per connection, TCP_NODELAY on, as
  nginx sets it for keep-alive connections) whose answer depends on the path:
    /pair    headers and body in two send() calls, one right after the other (plain nginx's writev and
             sendfile);
    /more    the same with MSG_MORE on the first;
    /one     headers and body in one send(), then the next recv() (a request-response server);
    /select  the same, but it waits for the next request in select() first;
    /sleep   headers, then 1 s in time.sleep() (a call the shim does not hook), then the body.
client PORT CA PATH... : a python ssl client on one keep-alive connection, one request after the other.
  For each request prints "PATH segs=N first_ms=F all_ms=A": the TCP segments its socket received for
  the answer (tcpi_segs_in of TCP_INFO), and when the answer's first byte and last byte came.
"""
import socket
import ssl
import struct
import sys
import threading
import time

BODY = b"b" * 1024


def serve_conn(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                c.close()
                return
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        path = head.split(b" ")[1].decode()
        hdr = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(BODY)
        if path == "/pair":
            c.send(hdr)
            c.sendall(BODY)
        elif path == "/more":
            c.send(hdr, socket.MSG_MORE)
            c.sendall(BODY)
        elif path == "/sleep":
            c.send(hdr)
            time.sleep(1.0)
            c.sendall(BODY)
        else:
            c.sendall(hdr + BODY)
            if path == "/select":
                import select
                select.select([c], [], [], 10)


def server(port, portfile):
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", port))
    lst.listen(16)
    with open(portfile, "w") as f:
        f.write(str(port))
    while True:
        c, _ = lst.accept()
        threading.Thread(target=serve_conn, args=(c,), daemon=True).start()


def segs_in(raw):
    info = raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    return struct.unpack_from("I", info, 140)[0]  # tcpi_segs_in


def client(port, ca, paths):
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    for path in paths:
        before = segs_in(s)
        t0 = time.monotonic()
        s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path.encode())
        got, first = b"", None
        while True:
            d = s.recv(65536)
            if not d:
                print("closed", flush=True)
                return 1
            if first is None:
                first = time.monotonic()
            got += d
            if b"\r\n\r\n" in got:
                head, body = got.split(b"\r\n\r\n", 1)
                n = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")][0].split(b":")[1])
                if len(body) >= n:
                    break
        done = time.monotonic()
        print("%s segs=%d first_ms=%.1f all_ms=%.1f" % (path, segs_in(s) - before, (first - t0) * 1000,
                                                        (done - t0) * 1000), flush=True)
    s.close()
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(client(int(sys.argv[2]), sys.argv[3], sys.argv[4:]))
