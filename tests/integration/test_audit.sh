#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Audit mode (TLSSHIM_MODE=audit, `tlsshim audit`): a recording relay shows that a connection the policy
# would wrap (or deny) carries exactly the bytes it carries without the shim; every connect is logged
# with the destination, the resolved name, the rule and the would-be action; the suggested policy passes
# `tlsshim check`, and applied, wraps exactly the destinations seen (TLS servers on those ports answer,
# a plain server on a port not seen still answers in plain). Also: --from on a service-style log, a
# policy that does not load, and processes started by the audited program.
source "$(dirname "$0")/lib.sh" "${1:-build}"

TLSSHIM=$BUILD/tlsshim
SENTINEL="tlsshim-AUDIT-$$-$RANDOM"

relay_to() {
	rm -f "$T/rec" "$T/rec.s2c"
	start_py relay relay --to "$1" --rec "$T/rec" --v6
}
# pyc HOST PORT TEXT: the plain python client, as a command line.
pyc() { echo "$PY $HERE/pyclient.py tcp $1 $2 --send $3 --shut"; }

t_no_byte_changed() {
	start_py echo plain --mode echo --v6 || { fail "echo server did not start"; return; }
	local backend=$PORT
	relay_to "$backend" || { fail "relay did not start"; return; }
	# Without the shim: the reference recording.
	prun ref $(pyc 127.0.0.1 "$PORT" "$SENTINEL")
	[ "$RC" = 0 ] && grep -qF "$SENTINEL" "$OUT" || { fail "reference run failed: rc=$RC"; return; }
	cp "$T/rec" "$T/rec.ref" && cp "$T/rec.s2c" "$T/rec.s2c.ref" && cp "$OUT" "$T/out.ref"
	local why=() rule
	for rule in "tls 127.0.0.1:$PORT ca-file=$ROOT" "deny 127.0.0.1:$PORT"; do
		rm -f "$T/rec" "$T/rec.s2c"
		prun audit "$TLSSHIM" audit --rule "$rule" -- $(pyc 127.0.0.1 "$PORT" "$SENTINEL")
		[ "$RC" = 0 ] || { why+=("'$rule': rc=$RC $(head -c 300 "$ERR")"); continue; }
		cmp -s "$T/rec" "$T/rec.ref" || why+=("'$rule': client->server bytes differ from the run without the shim")
		cmp -s "$T/rec.s2c" "$T/rec.s2c.ref" || why+=("'$rule': server->client bytes differ")
		cmp -s "$OUT" "$T/out.ref" || why+=("'$rule': the program's output differs")
		local act=${rule%% *}
		grep -q "tlsshim: audit: connect dest=127.0.0.1:$PORT name=- action=$act pid=[0-9]* rule=TLSSHIM_RULES:1" "$ERR" ||
			why+=("'$rule': no audit line with action=$act: $(grep audit "$ERR" | head -2)")
	done
	[ ${#why[@]} = 0 ] && ok "$(stat -c %s "$T/rec.ref")+$(stat -c %s "$T/rec.s2c.ref") bytes identical under would-be tls and deny" ||
		fail "${why[*]}"
}

t_suggested_policy_wraps_exactly_what_was_seen() {
	local pa pb pc
	pa=$(free_port) && pb=$(free_port) && pc=$(free_port)
	while [ "$pb" = "$pa" ]; do pb=$(free_port); done
	while [ "$pc" = "$pa" ] || [ "$pc" = "$pb" ]; do pc=$(free_port); done
	# Phase 1: plain servers on A and B; the program (two processes, via bash) talks to both by name.
	start_py a plain --mode echo --v6 --port "$pa" || { fail "A did not start"; return; }
	start_py b plain --mode echo --v6 --port "$pb" || { fail "B did not start"; return; }
	prun audit "$TLSSHIM" audit --output "$T/suggested.policy" -- bash -c "$(pyc localhost "$pa" A-$SENTINEL) && $(pyc localhost "$pb" B-$SENTINEL)"
	[ "$RC" = 0 ] || { fail "audited program failed: rc=$RC $(head -c 300 "$ERR")"; return; }
	[ -s "$T/suggested.policy" ] || { fail "no suggested policy written"; return; }
	CASE_LOGS+=("$T/suggested.policy")
	grep -q "localhost:$pa " "$ERR" && grep -q "localhost:$pb " "$ERR" || { fail "the summary lacks A or B: $(cat "$ERR")"; return; }
	local rules
	rules=$(grep -v '^#' "$T/suggested.policy" | grep -c .)
	[ "$rules" = 2 ] || { fail "expected 2 rules, got $rules: $(cat "$T/suggested.policy")"; return; }
	grep -Eq "^tls +localhost:$pa " "$T/suggested.policy" && grep -Eq "^tls +localhost:$pb " "$T/suggested.policy" ||
		{ fail "suggested rules are not 'tls localhost:PORT': $(cat "$T/suggested.policy")"; return; }
	prun check "$TLSSHIM" check "$T/suggested.policy"
	[ "$RC" = 0 ] || { fail "tlsshim check on the suggested policy: rc=$RC $(cat "$OUT" "$ERR" | head -c 300)"; return; }
	stop_case_servers
	# Phase 2: TLS servers on A and B, a plain one on C (never seen); the suggested policy with our CA.
	start_py ta tls --cert "$PKI/leaf.pem" --key "$PKI/leaf.key" --mode echo --v6 --port "$pa" || { fail "TLS A did not start"; return; }
	start_py tb tls --cert "$PKI/leaf.pem" --key "$PKI/leaf.key" --mode echo --v6 --port "$pb" || { fail "TLS B did not start"; return; }
	start_py c plain --mode echo --v6 --port "$pc" || { fail "C did not start"; return; }
	{ echo "defaults ca-file=$ROOT"; cat "$T/suggested.policy"; } >"$T/applied.policy"
	prun apply "$TLSSHIM" run --policy "$T/applied.policy" -- bash -c "$(pyc localhost "$pa" A-$SENTINEL) && $(pyc localhost "$pb" B-$SENTINEL) && $(pyc localhost "$pc" C-$SENTINEL)"
	[ "$RC" = 0 ] || { fail "with the suggested policy: rc=$RC $(head -c 400 "$ERR")"; return; }
	grep -q "A-$SENTINEL" "$OUT" && grep -q "B-$SENTINEL" "$OUT" && grep -q "C-$SENTINEL" "$OUT" ||
		{ fail "an echo is missing: $(cat "$OUT")"; return; }
	# The TLS servers logged a TLS connection each; the plain server on C got the sentinel in clear.
	grep -q "A-$SENTINEL" "$T/c.log" && { fail "C saw A's data?"; return; }
	ok "A and B wrapped (TLS servers answered), C (not seen) plain"
}

t_service_log_and_from() {
	start_py echo plain --mode echo --v6 || { fail "echo server did not start"; return; }
	printf 'deny 127.0.0.1:%s\n' "$PORT" >"$T/svc.policy"
	TLSSHIM_MODE=audit TLSSHIM_POLICY="$T/svc.policy" TLSSHIM_LOG_FILE="$T/svc.log" srun svc $(pyc 127.0.0.1 "$PORT" "$SENTINEL")
	[ "$RC" = 0 ] && grep -qF "$SENTINEL" "$OUT" || { fail "a denied destination was not reached in audit mode: rc=$RC $(cat "$ERR")"; return; }
	grep -q "action=deny pid=[0-9]* rule=$T/svc.policy:1" "$T/svc.log" || { fail "no deny line in the log: $(cat "$T/svc.log")"; return; }
	grep -q "tlsshim: audit: summary: .*127.0.0.1:$PORT: 1 connects, would deny" "$T/svc.log" || { fail "no exit summary: $(cat "$T/svc.log")"; return; }
	# journalctl-style prefixes before the message do not matter.
	sed 's/^/Dec 01 12:00:00 host svc[42]: /' "$T/svc.log" >"$T/journal.txt"
	prun from bash -c "'$TLSSHIM' audit --from - <'$T/journal.txt'"
	[ "$RC" = 0 ] && grep -Eq "^deny +127\.0\.0\.1:$PORT " "$ERR" && ok "deny not enforced, logged, --from suggests it" ||
		fail "--from: rc=$RC $(cat "$ERR")"
}

t_broken_policy_still_observed() {
	start_py echo plain --mode echo || { fail "echo server did not start"; return; }
	printf 'tls 127.0.0.1:%s bogus=1\n' "$PORT" >"$T/broken.policy"
	TLSSHIM_MODE=audit TLSSHIM_POLICY="$T/broken.policy" srun broken $(pyc 127.0.0.1 "$PORT" "$SENTINEL")
	[ "$RC" = 0 ] && grep -qF "$SENTINEL" "$OUT" && grep -q "action=refused-policy-error" "$ERR" &&
		ok "connected, and told that enforcing would refuse" || fail "rc=$RC $(head -c 300 "$ERR")"
	# The command itself refuses to start with a broken policy (as run does).
	prun cmd "$TLSSHIM" audit --policy "$T/broken.policy" -- true
	[ "$RC" = 1 ] || fail "tlsshim audit with a broken policy: rc=$RC"
}

# A plain server under audit mode with a serve rule for its port: it still answers in plain (not
# wrapped), and the accept is logged with the serve rule.
t_accept_observed() {
	local port
	port=$(free_port)
	TLSSHIM_MODE=audit TLSSHIM_RULES="serve 127.0.0.1:$port cert=$PKI/leaf.pem key=$PKI/leaf.key" TLSSHIM_LOG_FILE="$T/srv-shim.log" \
		LD_PRELOAD="$PRELOAD" bg srv "$PY" -u "$SERVERS" plain --mode echo --port "$port" --portfile "$T/srv.port"
	wait_portfile srv || { fail "server under audit did not start"; return; }
	prun cli $(pyc 127.0.0.1 "$port" "$SENTINEL")
	[ "$RC" = 0 ] && grep -qF "$SENTINEL" "$OUT" || { fail "plain client to the audited server: rc=$RC $(cat "$ERR")"; return; }
	grep -q "tlsshim: audit: accept local=127.0.0.1:$port peer=127.0.0.1:[0-9]* action=serve pid=[0-9]* rule=TLSSHIM_RULES:1" "$T/srv-shim.log" ||
		{ fail "no accept line: $(cat "$T/srv-shim.log")"; return; }
	# The report: the accepts per port, and a serve line to fill in (commented: it needs the server's key).
	prun from "$TLSSHIM" audit --from "$T/srv-shim.log" --output "$T/acc.policy"
	[ "$RC" = 0 ] || { fail "audit --from the server's log: rc=$RC $(cat "$ERR")"; return; }
	grep -q "1 accepted connection on 1 port" "$ERR" && grep -q "port $port  (127.0.0.1)  1 accept, would serve (rule TLSSHIM_RULES:1)" "$ERR" ||
		{ fail "the summary does not list the accept: $(cat "$ERR")"; return; }
	grep -q "^# serve \*:$port .*cert=.*key=.*# 1 accept on 127.0.0.1; served today by rule TLSSHIM_RULES:1" "$T/acc.policy" ||
		{ fail "no serve suggestion: $(cat "$T/acc.policy")"; return; }
	prun check "$TLSSHIM" check "$T/acc.policy"
	[ "$RC" = 0 ] || { fail "tlsshim check on the suggestion: rc=$RC $(cat "$OUT" "$ERR")"; return; }
	ok "accept logged (would serve), connection left plain; the report lists it with a serve line to fill in"
}

tcase no_byte_changed
tcase accept_observed
tcase suggested_policy_wraps_exactly_what_was_seen
tcase service_log_and_from
tcase broken_policy_still_observed
finish
