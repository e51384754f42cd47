"""bench/serverbench.py: the server section of `make bench` (issue 13), used by bench/run.py.

One nginx (Debian's 1.22, one worker, sendfile on) measured three ways in the same run, runs interleaved
(run 1 of every path, then run 2, ...):
  nginx-tls   nginx's own TLS (OpenSSL, in-process: the ceiling)
  shim        plain nginx under LD_PRELOAD=libtlsshim.so with a `serve` rule
  stunnel     plain nginx behind stunnel4 in server mode (the usual sidecar)
All three: TLS 1.3 only, TLS_AES_128_GCM_SHA256 only, the bench's EC P-256 certificate, the P-256 group
(nginx: ssl_ecdh_curve, stunnel: curves, the serve rule: groups=P-256; without it the shim's server would
take the X25519 key share OpenSSL's clients send): the section prints what each negotiated. The clients use Debian's OpenSSL (curl and wrk) and are the same for every path:
  bulk        curl downloads a BULK-byte file: MB/s (curl's speed_download) and the server side's CPU
              (nginx master + worker, plus stunnel for that path: user+system s from /proc) per GiB
  keep-alive  wrk -t1 -c10 on a 1 KiB file over keep-alive connections: requests/s
  new conns   wrk -t1 -c4 with "Connection: close": every request a new TCP connection and a full TLS
              handshake (wrk does not resume sessions): connections/s
  keep-alive, tcp_nopush on
              the same wrk run against a second server block of the same nginx with `tcp_nopush on`
              (Debian's default nginx.conf has it): plain nginx then corks the socket (TCP_CORK) around
              the headers (writev) and the body (sendfile), which the shim passes to the kernel, so
              the two TLS records leave in one TCP segment; without it they are two segments, where
              nginx's own TLS writes one record. Not one of the issue's targets: a column beside them.
Only loopback addresses; every client call is bounded in time."""
import os
import re
import shutil
import socket
import subprocess
import time

SRV_PATHS = ("nginx-tls", "shim", "stunnel")
SUITE_OSSL = "TLS_AES_128_GCM_SHA256"
SUITE_WOLF = "TLS13-AES128-GCM-SHA256"


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _wait_listen(port, proc, what, secs=15):
    end = time.time() + secs
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"bench: server: {what} exited ({proc.returncode}) before listening")
            time.sleep(0.05)
    raise SystemExit(f"bench: server: {what} is not listening on {port}")


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _cpu(pid):
    """user+system seconds of pid (its threads, its reaped children)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


class ServerBench:
    def __init__(self, b, cfg, log):
        self.b, self.cfg, self.log = b, cfg, log
        self.dir = os.path.join(b.tmp, "srv")
        self.www = os.path.join(self.dir, "www")
        self.paths = {}  # path -> (port, [pids whose CPU counts])
        self.nopush = {}  # path -> port of the same server with `tcp_nopush on`

    def nginx(self, name, port, tls, env=None, np_port=None):
        d = os.path.join(self.dir, name)
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        ssl = ""
        if tls:
            ssl = (f"ssl_certificate {self.b.tmp}/leaf.pem; ssl_certificate_key {self.b.tmp}/leaf.key; "
                   f"ssl_protocols TLSv1.3; ssl_conf_command Ciphersuites {SUITE_OSSL}; ssl_ecdh_curve prime256v1; "
                   f"ssl_session_tickets off; ssl_session_cache off;")
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n"
                    f"events {{ worker_connections 4096; }}\n"
                    f"http {{ access_log off; sendfile on; keepalive_timeout 60; keepalive_requests 1000000;\n"
                    f"  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;\n"
                    f"  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n"
                    f"  server {{ listen 127.0.0.1:{port}{' ssl' if tls else ''}; root {self.www}; {ssl} }}\n"
                    f"  server {{ listen 127.0.0.1:{np_port}{' ssl' if tls else ''}; root {self.www}; tcp_nopush on; "
                    f"{ssl} }}\n}}\n")
        e = dict(os.environ)
        e.pop("LD_PRELOAD", None)
        e.update(env or {})
        p = self.b.spawn(["nginx", "-c", conf, "-p", d], f"srv-{name}", env=e)
        _wait_listen(port, p, f"nginx ({name})")
        _wait_listen(np_port, p, f"nginx ({name}, tcp_nopush)")
        return p

    def start(self):
        os.makedirs(self.www, exist_ok=True)
        # The workers run as nobody: the pages must be readable by it (keys are read by the master, as root).
        os.chmod(self.b.tmp, 0o711)
        os.chmod(self.dir, 0o755)
        os.chmod(self.www, 0o755)
        with open(os.path.join(self.www, "big.bin"), "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(self.cfg["srv_bulk_bytes"] >> 20):
                f.write(block)
        with open(os.path.join(self.www, "1k.bin"), "wb") as f:
            f.write(os.urandom(1024))
        for fn in ("big.bin", "1k.bin"):
            os.chmod(os.path.join(self.www, fn), 0o644)
        # 1. nginx's own TLS
        port, np = _free_port(), _free_port()
        p = self.nginx("own-tls", port, True, np_port=np)
        self.paths["nginx-tls"] = (port, [p.pid])
        self.nopush["nginx-tls"] = np
        # 2. plain nginx under the shim, serve rule (one rule line per server block's port)
        port, np = _free_port(), _free_port()
        rules = "; ".join(f"serve 127.0.0.1:{x} cert={self.b.tmp}/leaf.pem key={self.b.tmp}/leaf.key min-version=1.3 "
                          f"ciphers={SUITE_WOLF} groups=P-256 session-tickets=off" for x in (port, np))
        p = self.nginx("shim", port, False, {"LD_PRELOAD": self.b.shim, "TLSSHIM_RULES": rules}, np_port=np)
        self.paths["shim"] = (port, [p.pid])
        self.nopush["shim"] = np
        # 3. stunnel4 (server mode) in front of plain nginx
        nport, nnp = _free_port(), _free_port()
        pn = self.nginx("plain", nport, False, np_port=nnp)
        sport, snp = _free_port(), _free_port()
        conf = os.path.join(self.dir, "stunnel.conf")
        with open(conf, "w") as f:
            f.write(f"foreground = yes\npid =\ndebug = 3\noutput = {self.dir}/stunnel.log\n"
                    f"socket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n"
                    f"[www]\naccept = 127.0.0.1:{sport}\nconnect = 127.0.0.1:{nport}\n"
                    f"cert = {self.b.tmp}/leaf.pem\nkey = {self.b.tmp}/leaf.key\n"
                    f"sslVersionMin = TLSv1.3\nciphersuites = {SUITE_OSSL}\ncurves = prime256v1\n"
                    f"options = NO_TICKET\nsessionCacheSize = 1\n"
                    f"[www-nopush]\naccept = 127.0.0.1:{snp}\nconnect = 127.0.0.1:{nnp}\n"
                    f"cert = {self.b.tmp}/leaf.pem\nkey = {self.b.tmp}/leaf.key\n"
                    f"sslVersionMin = TLSv1.3\nciphersuites = {SUITE_OSSL}\ncurves = prime256v1\n"
                    f"options = NO_TICKET\nsessionCacheSize = 1\n")
        st = self.b.spawn(["stunnel4", conf], "srv-stunnel")
        _wait_listen(sport, st, "stunnel4")
        _wait_listen(snp, st, "stunnel4 (tcp_nopush)")
        self.paths["stunnel"] = (sport, [pn.pid, st.pid])
        self.nopush["stunnel"] = snp

    def pids(self, path):
        """Every process whose CPU counts for path: nginx masters and their workers, stunnel."""
        out = []
        for pid in self.paths[path][1]:
            out += [pid] + _children(pid)
        return out

    def cpu(self, path):
        return sum(_cpu(p) for p in self.pids(path))

    def negotiated(self, path):
        """What the server side negotiated, as openssl s_client sees it (one extra connection)."""
        port = self.paths[path][0]
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                            "-CAfile", self.b.ca, "-verify_return_error", "-brief"],
                           input="", capture_output=True, text=True, timeout=15)
        txt = r.stdout + r.stderr
        ver = re.search(r"Protocol version: (\S+)", txt)
        cip = re.search(r"Ciphersuite: (\S+)", txt)
        grp = re.search(r"(?:Server Temp Key|Negotiated TLS1.3 group): ([^\n]+)", txt)
        return " ".join(x.group(1).strip() for x in (ver, cip, grp) if x) or "handshake failed: " + txt[-200:]

    def url(self, path, name, nopush=False):
        return f"https://localhost:{self.nopush[path] if nopush else self.paths[path][0]}/{name}"

    def run(self):
        b, cfg = self.b, self.cfg
        self.start()
        b.srv_neg = {path: self.negotiated(path) for path in SRV_PATHS}
        n = cfg["srv_bulk_bytes"]
        wrk_secs = str(cfg["srv_wrk_secs"])
        for rep in range(cfg["srv_reps"]):
            for path in SRV_PATHS:
                # bulk download
                c0 = self.cpu(path)
                r = subprocess.run(["curl", "-sS", "--max-time", "120", "--cacert", b.ca, "--tlsv1.3",
                                    "-o", "/dev/null", "-w", "%{speed_download} %{size_download}",
                                    self.url(path, "big.bin")], capture_output=True, text=True, timeout=130)
                cpu = self.cpu(path) - c0
                if r.returncode != 0 or not r.stdout.strip():
                    raise SystemExit(f"bench: server: curl on {path} failed ({r.returncode}): {r.stderr[-500:]}")
                speed, size = (float(x) for x in r.stdout.split())
                if int(size) != n:
                    raise SystemExit(f"bench: server: {path}: downloaded {size:.0f} of {n} bytes")
                key = ("srv", path, "-")
                b.record(key, "mbps", speed / 1e6)
                b.record(key, "cpu_per_gib", cpu * (1 << 30) / n)
                # keep-alive requests/s and new connections/s (wrk)
                for metric, args, np in (("req_per_s", ["-c", "10"], False),
                                         ("conn_per_s", ["-c", "4", "-H", "Connection: close"], False),
                                         ("req_per_s_nopush", ["-c", "10"], True)):
                    r = subprocess.run(["wrk", "-t", "1", "-d", wrk_secs, "--timeout", "5s"] + args +
                                       [self.url(path, "1k.bin", np)], capture_output=True, text=True,
                                       timeout=cfg["srv_wrk_secs"] + 30)
                    m = re.search(r"Requests/sec:\s+([0-9.]+)", r.stdout)
                    errs = re.search(r"Socket errors: (.*)", r.stdout)
                    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
                    if r.returncode != 0 or not m or non2xx:
                        raise SystemExit(f"bench: server: wrk on {path} failed: {r.stdout[-800:]} {r.stderr[-300:]}")
                    b.record(key, metric, float(m.group(1)))
                    if errs:
                        b.notes.append(f"server bench, {path}, {metric}: wrk reported socket errors: {errs.group(1)}")
            self.log(f"server run {rep + 1}: " + ", ".join(
                f"{p} {b.results[('srv', p, '-')]['mbps'][-1]:.0f} MB/s {b.results[('srv', p, '-')]['req_per_s'][-1]:.0f} req/s "
                f"{b.results[('srv', p, '-')]['conn_per_s'][-1]:.0f} conn/s" for p in SRV_PATHS))


def run(b, cfg, log):
    if not (shutil.which("nginx") and shutil.which("wrk") and shutil.which("curl")):
        b.notes.append("server section not run: nginx, wrk or curl missing (bench/install-deps.sh installs them)")
        return
    ServerBench(b, cfg, log).run()


def section(b, med, trio, fmt, mach, wolf, cfg):
    R = b.results
    if ("srv", "shim", "-") not in R:
        return []
    neg = "; ".join(f"{p}: {b.srv_neg[p]}" for p in SRV_PATHS)
    L = ["\n## Server side: nginx's own TLS vs plain nginx under the shim (`serve`) vs plain nginx behind stunnel\n",
         f"One nginx 1.22 worker each, TLS 1.3, one suite, an EC P-256 certificate, the P-256 key-exchange group on "
         f"every path (nginx `ssl_ecdh_curve`, stunnel `curves`, the `serve` rule `groups=P-256`), as `openssl s_client` "
         f"saw it: {neg}. "
         f"Clients (the same for every path, Debian's OpenSSL): curl downloading {cfg['srv_bulk_bytes'] >> 20} MiB; "
         f"wrk -t1 -c10 for {cfg['srv_wrk_secs']} s on a 1 KiB file over keep-alive; wrk -t1 -c4 with `Connection: close` "
         f"(a full handshake per request). CPU: user+system s of the server side (nginx master and worker; for "
         f"stunnel also stunnel4) per GiB downloaded. Last column: the keep-alive run against a second server block "
         f"of the same nginx with `tcp_nopush on` (Debian's default nginx.conf; plain nginx corks headers and body "
         f"into one TCP segment; not a target). {cfg['srv_reps']} runs, interleaved; medians [min – max].\n",
         "| Machine | TLS | Path | bulk MB/s | vs nginx-tls | keep-alive req/s | vs nginx-tls | new conns/s | vs nginx-tls | "
         "server CPU s/GiB | vs nginx-tls | keep-alive req/s, tcp_nopush on | vs nginx-tls |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    ref = R[("srv", "nginx-tls", "-")]
    for p in SRV_PATHS:
        r = R[("srv", p, "-")]
        cells = []
        for m, nd in (("mbps", 0), ("req_per_s", 0), ("conn_per_s", 0), ("cpu_per_gib", 2), ("req_per_s_nopush", 0)):
            a, lo, hi = trio(r[m], nd)
            cells.append(f"{a} [{lo} – {hi}] | {med(r[m]) / med(ref[m]):.2f}×")
        L.append(f"| {mach} | TLS 1.3 AES-128-GCM | {p} | " + " | ".join(cells) + " |")
    return L


def targets(b, med):
    R = b.results
    if ("srv", "shim", "-") not in R:
        return []
    s, n, st = R[("srv", "shim", "-")], R[("srv", "nginx-tls", "-")], R[("srv", "stunnel", "-")]
    out = []
    why_req = "the shim's server path costs more than nginx's in-process OpenSSL here"
    if "req_per_s_nopush" in s and "req_per_s_nopush" in n:
        why_req = (f"the shim's work per request costs more than nginx's in-process OpenSSL in this run (a response "
                   f"leaves in one segment on both paths: coalesce=auto); with `tcp_nopush on` the shim makes "
                   f"{med(s['req_per_s_nopush']) / med(n['req_per_s_nopush']):.2f}× (bench/README.md)")
    for m, what in (("mbps", "bulk MB/s"), ("req_per_s", "keep-alive requests/s"), ("conn_per_s", "new connections/s")):
        r = med(s[m]) / med(n[m])
        out.append((f"server: shim {what} ≥ 0.9× nginx's own TLS", f"{r:.2f}×", r >= 0.9,
                    why_req if m == "req_per_s" else
                    "the shim's server path costs more than nginx's in-process OpenSSL here"))
    r = med(s["cpu_per_gib"]) / med(n["cpu_per_gib"])
    out.append(("server: shim CPU per GiB ≤ 1.1× nginx's own TLS", f"{r:.2f}×", r <= 1.1,
                "more CPU per GiB than nginx's own TLS"))
    for m, what in (("mbps", "bulk MB/s"), ("req_per_s", "keep-alive requests/s")):
        r = med(s[m]) / med(st[m])
        out.append((f"server: shim {what} ≥ 1.5× stunnel's", f"{r:.2f}×", r >= 1.5,
                    "stunnel's extra hop costs less than 1.5× on this machine"))
    return out


def plot(b, med, outdir, title):
    """bench/results-server.png: the four figures, each relative to nginx's own TLS."""
    R = b.results
    if ("srv", "shim", "-") not in R or not shutil.which("gnuplot"):
        return
    dat = os.path.join(b.tmp, "server.dat")
    ref = R[("srv", "nginx-tls", "-")]
    with open(dat, "w") as f:
        f.write("path bulk lo hi reqs lo hi conns lo hi cpu lo hi\n")
        for p in SRV_PATHS:
            r = R[("srv", p, "-")]
            row = [p]
            for m in ("mbps", "req_per_s", "conn_per_s", "cpu_per_gib"):
                k = med(ref[m])
                row += [f"{med(r[m]) / k:.3f}", f"{min(r[m]) / k:.3f}", f"{max(r[m]) / k:.3f}"]
            f.write(" ".join(row) + "\n")
    png = os.path.join(outdir, "results-server.png")
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run(["gnuplot", "-e", f"datafile='{dat}'; outfile='{png}'; maintitle='{title}'",
                        os.path.join(here, "plot_server.gp")], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("bench: gnuplot (server) failed: " + r.stderr[-2000:])
