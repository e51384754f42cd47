"""bench/scale.py: the scale benchmark of `make bench` (issue 12), used by bench/run.py.

Round trips per second on ONE active TLS connection while N idle TLS connections sit in the same epoll
set (N = 10, 1,000, 10,000), and the resident memory each idle connection costs, for the plain client
under the shim; the same client without the shim against a plain server is the baseline. The server is
the asyncio TLS echo server the tests use (tests/integration/ev/aio_echo_server.py; `--plain` for the
baseline). One client process per (path, N), bench/scale.c, is set up once (its N idle connections made
and added to its epoll set); then the measurement runs are interleaved: run 1 of every (path, N), then
run 2, ... Each run is SECS seconds of 64-byte round trips. Every figure is the median of the runs."""
import os
import resource
import select
import shutil
import subprocess
import time

from procinfo import proc_status

HERE = os.path.dirname(os.path.abspath(__file__))
ECHO = os.path.join(HERE, "..", "tests", "integration", "ev", "aio_echo_server.py")
NS = (10, 1000, 10000)
SCALE_PATHS = ("plain", "shim")


def _readline(p, timeout, what):
    """One line of p's stdout within timeout seconds, else SystemExit."""
    end = time.time() + timeout
    while time.time() < end:
        r, _, _ = select.select([p.stdout], [], [], max(0.0, end - time.time()))
        if r:
            line = p.stdout.readline()
            if not line:
                raise SystemExit(f"bench: scale: {what} exited ({p.poll()}) without an answer")
            return line
    raise SystemExit(f"bench: scale: {what} gave no answer within {timeout:.0f} s")


def run(b, med, parse_kv, cfg, log):
    """Runs the scale benchmark; results go to b.results[("scale", path, N)]."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ns = [n for n in NS if n + 64 <= hard]
    if len(ns) < len(NS):
        b.notes.append(f"scale: RLIMIT_NOFILE hard limit {hard}: N = {', '.join(str(n) for n in NS if n not in ns)} "
                       "not measured (raise the hard limit, e.g. `ulimit -Hn 20000` as root)")
    leaf, key = os.path.join(b.tmp, "leaf.pem"), os.path.join(b.tmp, "leaf.key")
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
    servers = {}
    for path in SCALE_PATHS:
        pf = os.path.join(b.tmp, f"scale-{path}.port")
        args = [py, "-u", ECHO, "--portfile", pf] + (["--plain"] if path == "plain" else ["--cert", leaf, "--key", key])
        p = b.spawn(args, f"scale-server-{path}")
        end = time.time() + 15
        while not os.path.exists(pf) and time.time() < end and p.poll() is None:
            time.sleep(0.05)
        if not os.path.exists(pf):
            raise SystemExit(f"bench: scale: the asyncio {path} echo server did not start")
        servers[path] = (p, int(open(pf).read()))
    clients = {}
    try:
        for path in SCALE_PATHS:
            srv, port = servers[path]
            env = dict(os.environ)
            env.pop("LD_PRELOAD", None)
            if path == "shim":
                env["LD_PRELOAD"] = b.shim
                env["TLSSHIM_RULES"] = f"tls 127.0.0.1:{port} name=localhost ca-file={b.ca}"
            for n in ns:
                err = open(os.path.join(b.tmp, f"scale-{path}-{n}.err"), "w")
                p = subprocess.Popen([os.path.join(b.bin, "scale"), "-p", str(port), "-n", str(n)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
                clients[(path, n)] = p
                kv = parse_kv(_readline(p, cfg["scale_setup_max"], f"{path} client with {n} idle connections"))
                key = ("scale", path, n)
                b.record(key, "rss_per_idle", float(kv["rss_per_idle_bytes"]))
                b.record(key, "setup_s", float(kv["setup_s"]))
                b.record(key, "server_rss_kib", float(proc_status(srv.pid, "VmRSS")))
                log(f"scale: {path} with {n} idle connections set up in {kv['setup_s']} s")
        failed = set()
        for rep in range(cfg["scale_reps"]):
            for n in ns:
                for path in SCALE_PATHS:
                    if (path, n) in failed:
                        continue
                    p = clients[(path, n)]
                    key = ("scale", path, n)
                    try:
                        p.stdin.write(f"{cfg['scale_secs']}\n")
                        p.stdin.flush()
                        kv = parse_kv(_readline(p, cfg["scale_secs"] + 60, f"{path} client with {n} idle connections"))
                    except (SystemExit, OSError) as e:
                        # A client that stops answering is a result (a lost wake-up, a crash), not a reason to
                        # lose the rest of the bench: recorded, shown in the table and the targets.
                        failed.add((path, n))
                        p.wait(timeout=5) if p.poll() is not None else p.kill()
                        err = open(os.path.join(b.tmp, f"scale-{path}-{n}.err")).read().strip()[-300:]
                        b.record(key, "failed", f"run {rep + 1}: {e}; its stderr: {err or '(empty)'}")
                        b.notes.append(f"scale: {path} with {n:,} idle connections failed in run {rep + 1}: {err or e}")
                        log(f"scale: {path}/{n} failed: {err or e}")
                        continue
                    b.record(key, "rt_per_s", float(kv["rt_per_s"]))
                    b.record(key, "idle_events", float(kv["idle_events"]))
                    b.record(key, "cpu_us_per_rt", float(kv["cpu_us_per_rt"]))
    finally:
        for p in clients.values():
            try:
                p.stdin.close()
            except OSError:
                pass
        for p in clients.values():
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for srv, _ in servers.values():
            srv.terminate()
    log("scale: " + ", ".join(f"{p}/{n} {med(b.results[('scale', p, n)]['rt_per_s']):.0f}/s"
                              for p in SCALE_PATHS for n in ns
                              if "rt_per_s" in b.results.get(("scale", p, n), {})))  # a failed client has none


def section(b, med, trio, fmt, mach, wolf, cfg):
    """The results.md lines of the scale section."""
    R = b.results
    L = [f"\n## Scale: one active TLS connection beside N idle ones in the same epoll set "
         f"(64-byte round trips per second; higher is better)\n",
         f"The plain epoll client `bench/scale.c` under the shim (path shim) and, as the baseline, without it "
         f"against a plain server (path plain); the server is the asyncio echo server of the tests "
         f"(`tests/integration/ev/aio_echo_server.py`, one python thread). Each (path, N) is one client process "
         f"set up once; {cfg['scale_reps']} runs of {cfg['scale_secs']} s each, interleaved across every (path, N). "
         f"Idle events: readiness reported for an idle connection during the runs (nothing is ever sent on "
         f"them, so every one is false). Memory: the client's VmRSS growth while its N idle connections were "
         f"made, per connection (small N includes 16 set-up threads' stacks). Client CPU: the client process's own "
         f"user+system CPU time per round trip (getrusage); on this virtual machine it, too, moves with the "
         f"load of other processes.\n",
         "| Machine | wolfSSL build | TLS | Path | N idle | round trips/s median [min – max] | vs N = 10 | idle events (all runs) | "
         "RSS per idle connection | set-up s | client CPU µs per round trip median [min – max] | vs N = 10 |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for path in SCALE_PATHS:
        ref = R.get(("scale", path, NS[0]))
        for n in NS:
            r = R.get(("scale", path, n))
            if not r:
                continue
            if "failed" in r:
                L.append(f"| {mach} | {wolf} | {'none' if path == 'plain' else 'TLS 1.3'} | {path} | {n:,} | "
                         f"**failed**: {r['failed'][0]} (runs before: {len(r.get('rt_per_s', []))}) | | | "
                         f"{fmt(med(r['rss_per_idle']))} B | {fmt(med(r['setup_s']), 1)} | | |")
                continue
            m, lo, hi = trio(r["rt_per_s"])
            ratio = med(r["rt_per_s"]) / med(ref["rt_per_s"]) if ref and ref.get("rt_per_s") else float("nan")
            tls = "none" if path == "plain" else "TLS 1.3 (the shim's defaults)"
            cpu = r.get("cpu_us_per_rt") or [float("nan")]
            ref_cpu = (ref or {}).get("cpu_us_per_rt")
            cpu_ratio = med(cpu) / med(ref_cpu) if ref_cpu else float("nan")
            L.append(f"| {mach} | {wolf} | {tls} | {path} | {n:,} | "
                     f"{m} [{lo} – {hi}] | {ratio:.3f}× | {sum(r['idle_events']):.0f} | "
                     f"{fmt(med(r['rss_per_idle']))} B | {fmt(med(r['setup_s']), 1)} | "
                     f"{med(cpu):.2f} [{min(cpu):.2f} – {max(cpu):.2f}] | {cpu_ratio:.3f}× |")
    return L


def targets(b, med):
    R = b.results
    out = []
    lo, hi = R.get(("scale", "shim", NS[0])), R.get(("scale", "shim", NS[-1]))
    for r, n in ((lo, NS[0]), (hi, NS[-1])):
        if r and "failed" in r:
            out.append((f"scale: the shim client with {n:,} idle TLS connections answers every run", "failed: " +
                        r["failed"][0][:200], False, "see the note: the active connection's echo was not reported"))
            return out
    if lo and hi:
        r = med(hi["rt_per_s"]) / med(lo["rt_per_s"])
        cr = med(hi["cpu_us_per_rt"]) / med(lo["cpu_us_per_rt"])
        why = (f"the client's own CPU time per round trip (getrusage) is {cr:.2f}× the N = {NS[0]} figure; "
               f"both figures move with the machine's other load (ranges in the table), so rerun on a quiet "
               f"machine before reading either as work per idle connection")
        out.append((f"scale: shim round trips/s with {NS[-1]:,} idle TLS connections ≥ 0.8× the rate with {NS[0]}",
                    f"{r:.3f}× ({med(hi['rt_per_s']):,.0f} vs {med(lo['rt_per_s']):,.0f}/s); client CPU per "
                    f"round trip {cr:.3f}×", r >= 0.8, why))
        m = med(hi["rss_per_idle"])
        out.append((f"scale: resident memory per idle TLS connection under the shim (N = {NS[-1]:,}) ≤ 16 KiB",
                    f"{m / 1024:.1f} KiB", m <= 16384, "wolfSSL's per-session buffers plus the shim's state"))
        ev = sum(sum(R[("scale", "shim", n)]["idle_events"]) for n in NS if ("scale", "shim", n) in R)
        out.append(("scale: no readiness reported for idle TLS connections", f"{ev:.0f} false events", ev == 0,
                    "the shim reported idle connections readable with nothing for the program"))
    return out


def plot(b, med, outdir, title):
    """bench/results-scale.png: round trips/s against N idle connections (log x), both paths."""
    if not shutil.which("gnuplot"):
        return
    R = b.results
    dat = os.path.join(b.tmp, "scale.dat")
    with open(dat, "w") as f:
        for path in SCALE_PATHS:
            f.write(f'"{path}"\n')
            for n in NS:
                r = R.get(("scale", path, n))
                if r and r.get("rt_per_s"):
                    f.write(f"{n} {med(r['rt_per_s']):.1f} {min(r['rt_per_s']):.1f} {max(r['rt_per_s']):.1f}\n")
            f.write("\n\n")
    png = os.path.join(outdir, "results-scale.png")
    r = subprocess.run(["gnuplot", "-e", f"datafile='{dat}'; outfile='{png}'; maintitle='{title}'",
                        os.path.join(HERE, "plot_scale.gp")], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("bench: gnuplot (scale) failed: " + r.stderr[-2000:])
