#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""pg_wire_client.py HOST PORT USER PASSWORD QUERY: a PostgreSQL client that is not libpq, speaking the
frontend/backend protocol 3.0 itself over what it believes is plain TCP: StartupMessage, SCRAM-SHA-256
(RFC 5802/7677, no channel binding) or a cleartext password, one simple query. Prints
"mechanisms=..." (what the server offered, as the client saw it) and "row=VALUE" for each row's first
column; exit 0 on success, 1 with the server's error message otherwise."""
import base64
import hashlib
import hmac
import os
import socket
import struct
import sys


def msg(kind, body):
    return kind + struct.pack("!I", len(body) + 4) + body


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=20)
        self.buf = b""

    def read(self):
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack("!I", self.buf[1:5])[0]
                if len(self.buf) >= 1 + n:
                    kind, body = self.buf[:1], self.buf[5:1 + n]
                    self.buf = self.buf[1 + n:]
                    if kind == b"E":
                        fields = dict((f[:1], f[1:]) for f in body.split(b"\0") if f)
                        sys.exit("server error: " + fields.get(b"M", b"?").decode())
                    return kind, body
            d = self.s.recv(65536)
            if not d:
                sys.exit("the server closed the connection")
            self.buf += d

    def auth(self, kind, body):
        code = struct.unpack("!I", body[:4])[0] if kind == b"R" else None
        return code, body[4:]


def scram(c, user, password, mechanisms):
    if "SCRAM-SHA-256" not in mechanisms:
        sys.exit("SCRAM-SHA-256 was not offered: %s" % mechanisms)
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=,r=" + nonce
    first = ("n,," + first_bare).encode()
    c.s.sendall(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
    code, server_first = c.auth(*c.read())
    if code != 11:
        sys.exit("expected SASLContinue, got %r" % code)
    attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
    if not attrs["r"].startswith(nonce):
        sys.exit("the server's nonce does not extend ours")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    final_bare = "c=biws,r=" + attrs["r"]
    auth_message = ",".join([first_bare, server_first.decode(), final_bare]).encode()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    c.s.sendall(msg(b"p", (final_bare + ",p=" + base64.b64encode(proof).decode()).encode()))
    code, server_final = c.auth(*c.read())
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    want = "v=" + base64.b64encode(hmac.new(server_key, auth_message, hashlib.sha256).digest()).decode()
    if code != 12 or server_final.decode() != want:
        sys.exit("the server's SCRAM signature does not verify")


def main():
    host, port, user, password, query = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    c = Conn(host, port)
    params = b"user\0" + user.encode() + b"\0database\0postgres\0\0"
    c.s.sendall(struct.pack("!II", len(params) + 8, 196608) + params)
    code, rest = c.auth(*c.read())
    if code == 10:  # AuthenticationSASL: the mechanisms, NUL-terminated, then an empty one
        mechanisms = [m.decode() for m in rest.split(b"\0") if m]
        print("mechanisms=" + ",".join(mechanisms))
        scram(c, user, password, mechanisms)
        code, rest = c.auth(*c.read())
    elif code == 3:  # AuthenticationCleartextPassword
        print("mechanisms=password")
        c.s.sendall(msg(b"p", password.encode() + b"\0"))
        code, rest = c.auth(*c.read())
    if code != 0:
        sys.exit("authentication did not succeed (code %r)" % code)
    while True:
        kind, body = c.read()
        if kind == b"Z":
            break
    c.s.sendall(msg(b"Q", query.encode() + b"\0"))
    while True:
        kind, body = c.read()
        if kind == b"D":
            (ncols,) = struct.unpack("!H", body[:2])
            (n,) = struct.unpack("!i", body[2:6])
            print("row=" + (body[6:6 + n].decode() if ncols and n >= 0 else "NULL"))
        elif kind == b"Z":
            break
    c.s.sendall(msg(b"X", b""))
    c.s.close()


if __name__ == "__main__":
    main()
