#!/usr/bin/env python3
"""serve_apps.py: small *plain* servers built on Python's standard socketserver, for test_serve.sh. They
know nothing of TLS: the shim, preloaded, serves TLS on their sockets.

  serve_apps.py KIND --port N [--bind ADDR] [--record FILE] [--portfile FILE]
  KIND  echo    threads, blocking sockets: echoes each line back, prefixed "echo: "
        fork    ForkingTCPServer: a child process per connection, same echo
        greet   server-first: writes "220 greeting from PID\\r\\n" at once, then echoes
  --record FILE  appends every byte the program receives to FILE (to prove what reached the program)
"""
import argparse
import os
import socketserver
import sys


def make_handler(record, greet):
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            if greet:
                self.wfile.write(b"220 greeting from %d\r\n" % os.getpid())
                self.wfile.flush()
            while True:
                try:
                    line = self.rfile.readline(65536)
                except OSError as e:
                    sys.stderr.write("serve_apps: read failed: %s\n" % e)
                    return
                if not line:
                    return
                if record:
                    with open(record, "ab") as f:
                        f.write(line)
                try:
                    self.wfile.write(b"echo: " + line)
                    self.wfile.flush()
                except OSError as e:
                    sys.stderr.write("serve_apps: write failed: %s\n" % e)
                    return

    return Handler


class Threaded(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class Forking(socketserver.ForkingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    request_queue_size = 256


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["echo", "fork", "greet"])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--record")
    ap.add_argument("--portfile")
    a = ap.parse_args()
    cls = Forking if a.kind == "fork" else Threaded
    srv = cls((a.bind, a.port), make_handler(a.record, a.kind == "greet"))
    if a.portfile:
        with open(a.portfile + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        os.rename(a.portfile + ".tmp", a.portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
