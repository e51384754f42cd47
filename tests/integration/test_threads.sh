#!/usr/bin/env bash
# Issue 4, threads: full duplex on one TLS socket across threads (one thread blocked in read while another
# writes), 256 MiB each way; 16 threads each with its own connection; signals interrupting a blocking read
# (EINTR without SA_RESTART, the data with it); and 1 GiB each way against an unmodified TLS server
# (stunnel in front of a plain Python server that receives and sends at the same time), bounded < 3 min.
# Every transfer compares the SHA-256 of what arrived with the SHA-256 of what was sent, on both sides.
source "$(dirname "$0")/lib.sh" "${1:-build}"
source "$HERE/ev/evlib.sh"

# duplex_via_stunnel NAME BYTES CONNS TIMEOUT: ev_duplex through stunnel -> evserver plain duplex.
# Compares, per connection tag, client sent == server received and server sent == client received.
duplex_via_stunnel() {
	local name=$1 bytes=$2 conns=$3 tmo=$4
	need stunnel4 || return
	ev_server dsrv plain duplex || { fail "duplex server did not start"; return; }
	start_stunnel stunnel leaf "$PORT" || { fail "stunnel did not start"; return; }
	TMO=$tmo TLSSHIM_RULES="$(rule)" srun "$name" "$CL/ev_duplex" localhost "$PORT" "$bytes" "$conns"
	expect_clean_client || return
	wait_lines "$T/dsrv.rec" "$conns" || { fail "the server recorded $(wc -l <"$T/dsrv.rec" 2>/dev/null) of $conns connections"; return; }
	local bad
	bad=$("$PY" - "$T/dsrv.rec" "$OUT" "$bytes" <<'EOF'
import json, sys
rec = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rec[r["tag"]] = r
n = int(sys.argv[3])
bad = []
for line in open(sys.argv[2]):
    if not line.startswith("conn "):
        continue
    f = dict(x.split("=", 1) for x in line.split()[2:])
    tag = line.split()[1]
    r = rec.get(tag)
    if r is None:
        bad.append("%s: no server record" % tag)
        continue
    if int(f["sent_n"]) != n or r["recv_n"] != n or f["sent_sha"] != r["recv_sha"]:
        bad.append("%s up: client sent %s sha %s, server got %s sha %s" % (tag, f["sent_n"], f["sent_sha"][:16], r["recv_n"], r["recv_sha"][:16]))
    if int(f["recv_n"]) != n or r.get("sent_n") != n or f["recv_sha"] != r.get("sent_sha"):
        bad.append("%s down: server sent %s sha %s, client got %s sha %s" % (tag, r.get("sent_n"), str(r.get("sent_sha"))[:16], f["recv_n"], f["recv_sha"][:16]))
print("; ".join(bad[:4]) + (" (+%d more)" % (len(bad) - 4) if len(bad) > 4 else ""))
EOF
)
	[ -z "$bad" ] && ok "$(tail -1 "$OUT"); wall $MS ms" || fail "SHA-256 mismatch: $bad"
}

t_full_duplex_256MiB_each_way() { duplex_via_stunnel duplex $((256 << 20)) 1 150; }
t_sixteen_threads_own_connections() { duplex_via_stunnel sixteen $((16 << 20)) 16 150; }

t_signal_eintr_and_sa_restart() {
	ev_server slowecho tls delayecho:1500 || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun sig "$CL/ev_signal" localhost "$PORT"
	expect_clean_client || return
	local a b
	a=$(kv norestart_ms)
	b=$(kv restart_ms)
	[ "$(kv norestart)" = EINTR ] && [ "$a" -ge 250 ] && [ "$a" -le 1200 ] || { fail "without SA_RESTART: $(kv norestart) after $a ms, want EINTR after ~300 ms"; return; }
	[ "$(kv restart)" = data ] && [ "$b" -ge 1200 ] && ok "EINTR after $a ms without SA_RESTART; the data after $b ms with it" ||
		fail "with SA_RESTART: $(kv restart) after $b ms, want the echoed data after ~1500 ms"
}

t_one_GiB_each_way_unmodified_server() {
	local t0=$SECONDS
	duplex_via_stunnel gib $((1 << 30)) 1 175
	say "    (1 GiB each way: $((SECONDS - t0)) s including setup; limit 180 s)"
}

tcase full_duplex_256MiB_each_way
tcase sixteen_threads_own_connections
tcase signal_eintr_and_sa_restart
tcase one_GiB_each_way_unmodified_server
finish
