#!/usr/bin/env bash
# The libFuzzer targets (tests/fuzz/) run briefly in every test run: 30 s each (the two policy targets and
# the seven dialogue reply parsers: 4.5 minutes in all), with AddressSanitizer and
# UndefinedBehaviorSanitizer; any crash, leak, UB report, timeout or broken invariant fails the case.
# FUZZ_SECONDS overrides the time per target.
source "$(dirname "$0")/lib.sh" "${1:-build}"

fuzz_target() { # TARGET
	need clang || return
	local secs=${FUZZ_SECONDS:-30}
	if ! (cd "$REPO" && make -s BUILD="$BUILD" fuzz-build) >"$T/build.log" 2>&1; then
		fail "fuzz targets did not build: $(tail -5 "$T/build.log" | tr '\n' ' ')"
		return
	fi
	mkdir -p "$T/corpus"
	local rc=0
	local dict=()
	if [ -f "$REPO/tests/fuzz/$1.dict" ]; then dict=(-dict="tests/fuzz/$1.dict")
	elif [[ $1 == policy_* ]]; then dict=(-dict=tests/fuzz/policy.dict); fi
	(cd "$REPO" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		timeout -k 5 $((secs + 60)) "$BUILD/fuzz/fuzz_$1" -max_total_time="$secs" -max_len=8192 -timeout=10 \
		"${dict[@]}" -print_final_stats=1 -artifact_prefix="$T/$1-" \
		"$T/corpus" "tests/fuzz/corpus/$1") >"$T/$1.log" 2>&1 || rc=$?
	local execs
	execs=$(grep -a 'stat::number_of_executed_units' "$T/$1.log" | awk '{print $2}')
	if [ "$rc" = 0 ] && [ -n "$execs" ]; then
		ok "$execs runs in $secs s"
	else
		fail "fuzzer exit $rc; $(grep -a -m3 -E 'ERROR|SUMMARY|runtime error|deadly' "$T/$1.log" | tr '\n' ' ')"
	fi
}

t_policy_parse() { fuzz_target policy_parse; }
t_policy_match() { fuzz_target policy_match; }
t_serve_allow() { fuzz_target serve_allow; }

# The dialogue reply parsers (starttls=, proxy=): what a hostile server or proxy may send.
for t in smtp imap pop3 postgres ldap http socks5; do
	eval "t_dlg_$t() { fuzz_target dlg_$t; }"
done

tcase policy_parse
tcase policy_match
tcase serve_allow
for t in smtp imap pop3 postgres ldap http socks5; do tcase "dlg_$t"; done
finish
