#!/usr/bin/env python3
"""starttls_server.py: a small STARTTLS / proxy peer for the dialogue tests, good and hostile.

  starttls_server.py PROTO --cert C --key K --portfile F [--behave B] [--rec FILE]
  PROTO:  smtp imap pop3 postgres ldap
  --behave good     the upgrade as the RFC says, then TLS; inside TLS every line the client sends is
                    answered with "ECHO <line>" (so a test sees what went through the tunnel)
           nooffer  the server does not offer the upgrade (EHLO without STARTTLS, IMAP/POP3/LDAP error,
                    PostgreSQL 'N')
           inject   the upgrade reply is followed, in the same segment, by a forged plaintext reply
           refuse   the greeting itself is an error (554 / * BYE / -ERR)
           split    (postgres) like good, but the AuthenticationSASL message goes in two TLS records,
                    the second 300 ms after the first (the shim's filter sees half a message first)
           plusonly (postgres) AuthenticationSASL offers only SCRAM-SHA-256-PLUS (the program, believing
                    its connection plaintext, could not authenticate: the shim refuses it)
  --rec FILE  records what the client sent before the TLS handshake (must hold no program data).
Each connection is handled in a thread; the process lives at most --lifetime seconds.
"""
import argparse
import os
import socket
import ssl
import struct
import sys
import threading
import time


def readline(sock, buf):
    while b"\n" not in buf[0]:
        d = sock.recv(4096)
        if not d:
            raise EOFError
        buf[0] += d
    line, _, rest = buf[0].partition(b"\n")
    buf[0] = rest
    return line + b"\n"


def tls_echo(conn, ctx, pending, proto, behave="good"):
    if pending:  # the client must not have sent anything between the reply and its ClientHello
        print("client data before ClientHello:", pending[:60], flush=True)
    t = ctx.wrap_socket(conn, server_side=True)
    if proto == "postgres":
        # StartupMessage, then an AuthenticationSASL offering both mechanisms, then echo raw bytes.
        hdr = t.recv(4)
        n = struct.unpack(">I", hdr)[0]
        body = b""
        while len(body) < n - 4:
            body += t.recv(n - 4 - len(body))
        mechs = b"SCRAM-SHA-256-PLUS\0\0" if behave == "plusonly" else b"SCRAM-SHA-256\0SCRAM-SHA-256-PLUS\0\0"
        msg = struct.pack(">I", 10) + mechs
        whole = b"R" + struct.pack(">I", 4 + len(msg)) + msg
        if behave == "split":
            t.sendall(whole[:9])
            time.sleep(0.3)
            t.sendall(whole[9:])
        else:
            t.sendall(whole)
        t.sendall(b"ECHO startup " + body.replace(b"\0", b" ") + b"\n")
        while True:
            d = t.recv(4096)
            if not d:
                break
            t.sendall(b"ECHO " + d)
        return
    buf = [b""]
    while True:
        try:
            line = readline(t, buf)
        except (EOFError, ssl.SSLError, OSError):
            break
        t.sendall(b"ECHO " + line)
        if line.strip().upper() in (b"QUIT", b"LOGOUT", b"A1 LOGOUT"):
            break
    try:
        t.unwrap()
    except (ssl.SSLError, OSError):
        pass


def ber(tag, body):
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    return bytes([tag, 0x82, n >> 8, n & 255]) + body


def ldap_resp(code, diag):
    op = ber(0x0A, bytes([code])) + ber(0x04, b"") + ber(0x04, diag)
    return ber(0x30, ber(0x02, b"\x01") + ber(0x78, op))


def handle(conn, args, ctx):
    rec = open(args.rec, "ab") if args.rec else None
    buf = [b""]
    b = args.behave

    def rl():
        line = readline(conn, buf)
        if rec:
            rec.write(line)
            rec.flush()
        return line

    try:
        if args.proto == "smtp":
            if b == "refuse":
                conn.sendall(b"554 5.3.2 go away\r\n")
                return
            conn.sendall(b"220-mail.test ESMTP first line\r\n220 mail.test second line\r\n")
            rl()  # EHLO
            caps = b"250-mail.test\r\n250-PIPELINING\r\n"
            if b != "nooffer":
                caps += b"250-STARTTLS\r\n"
            conn.sendall(caps + b"250 8BITMIME\r\n")
            line = rl()
            if not line.upper().startswith(b"STARTTLS"):
                conn.sendall(b"502 no\r\n")
                return
            extra = b"250 forged reply\r\n" if b == "inject" else b""
            conn.sendall(b"220 2.0.0 Ready to start TLS\r\n" + extra)
        elif args.proto == "imap":
            if b == "refuse":
                conn.sendall(b"* BYE not today\r\n")
                return
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] test imap ready\r\n")
            line = rl()
            tag = line.split(b" ", 1)[0]
            if b == "nooffer":
                conn.sendall(tag + b" BAD STARTTLS not available\r\n")
                return
            extra = b"* OK forged\r\n" if b == "inject" else b""
            conn.sendall(tag + b" OK Begin TLS negotiation now\r\n" + extra)
        elif args.proto == "pop3":
            if b == "refuse":
                conn.sendall(b"-ERR not today\r\n")
                return
            conn.sendall(b"+OK test pop3 ready\r\n")
            rl()
            if b == "nooffer":
                conn.sendall(b"-ERR STLS not supported\r\n")
                return
            extra = b"+OK forged\r\n" if b == "inject" else b""
            conn.sendall(b"+OK Begin TLS negotiation\r\n" + extra)
        elif args.proto == "postgres":
            req = b""
            while len(req) < 8:
                d = conn.recv(8 - len(req))
                if not d:
                    return
                req += d
            if rec:
                rec.write(req)
                rec.flush()
            if req != b"\0\0\0\x08\x04\xd2\x16\x2f":
                return
            if b == "nooffer":
                conn.sendall(b"N")
                return
            conn.sendall(b"S" + (b"R\0\0\0\x08\0\0\0\0" if b == "inject" else b""))
        elif args.proto == "ldap":
            req = conn.recv(4096)
            if rec:
                rec.write(req)
                rec.flush()
            if b"1.3.6.1.4.1.1466.20037" not in req:
                return
            if b == "nooffer":
                conn.sendall(ldap_resp(52, b"StartTLS not configured"))
                return
            extra = ldap_resp(0, b"forged") if b == "inject" else b""
            conn.sendall(ldap_resp(0, b"") + extra)
        if b == "inject":
            time.sleep(2)  # the client must refuse by itself
            return
        tls_echo(conn, ctx, buf[0], args.proto, args.behave)
    except (EOFError, OSError, ssl.SSLError) as e:
        print("connection ended:", e, flush=True)
    finally:
        if rec:
            rec.close()
        try:
            conn.close()
        except OSError:
            pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("proto", choices=["smtp", "imap", "pop3", "postgres", "ldap"])
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--behave", default="good", choices=["good", "nooffer", "inject", "refuse", "split", "plusonly"])
    p.add_argument("--rec")
    p.add_argument("--portfile", required=True)
    p.add_argument("--lifetime", type=float, default=300)
    args = p.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    tmp = args.portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(tmp, args.portfile)
    deadline = time.time() + args.lifetime
    s.settimeout(1)
    while time.time() < deadline:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        c.settimeout(20)
        threading.Thread(target=handle, args=(c, args, ctx), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
