#!/usr/bin/env bash
# run-all.sh [BUILD_DIR]: the whole test suite: Criterion unit tests ($BUILD/unit-tests), then every
# tests/integration/test_*.sh. The last line printed is "N passed, N failed" (unit + integration);
# exit status is nonzero if anything failed or nothing ran. A case that cannot run under the sanitizer
# runtime (lib.sh: skip, only with TLSSHIM_ASAN=1) is listed as "SKIP suite/case: why" before that line.
#   TLSSHIM_ASAN=1        preload the ASan runtime before the shim (make asan sets it)
#   TLSSHIM_TESTS="word..."  only run integration files whose name contains one of the words (e.g. verify,
#                         or "basic matrix")
#   TLSSHIM_CASES="word..."  within those files, only the cases whose name contains one of the words
#                         (for repeated runs of one case: concurrency tests 20 times in a row)
#   TLSSHIM_TEST_KEEP=1   keep the per-file temp dirs
set -u
BUILD_ARG=${1:-build}
REPO=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD_ARG in /*) BUILD=$BUILD_ARG ;; *) BUILD=$REPO/$BUILD_ARG ;; esac
cd "$REPO" || exit 2

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tlsshim-run.XXXXXX")
trap 'rm -rf "$RUN_DIR"' EXIT
export TLSSHIM_TEST_PKI=$RUN_DIR/pki
export TLSSHIM_RESULTS=$RUN_DIR/results
: >"$TLSSHIM_RESULTS"

passed=0
failed=0
failures=()
start=$(date +%s)

# ---- unit tests (Criterion) ----
echo "== unit tests: $BUILD/unit-tests"
if [ -x "$BUILD/unit-tests" ]; then
	timeout -k 5 300 "$BUILD/unit-tests" --jobs 2 --ascii >"$RUN_DIR/unit.log" 2>&1
	urc=$?
	# Criterion prints failures as "[FAIL] ..." / "[----] ..." lines; show them all, plus the synthesis.
	grep -aE '^\[(FAIL|----|ERR|WARN)\]|Synthesis' "$RUN_DIR/unit.log" | sed 's/\x1b\[[0-9;]*m//g' | head -200
	syn=$(sed 's/\x1b\[[0-9;]*m//g' "$RUN_DIR/unit.log" | grep -a 'Synthesis: Tested:' | tail -1)
	if [ -n "$syn" ]; then
		up=$(echo "$syn" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
		uf=$(echo "$syn" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
		uc=$(echo "$syn" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p')
		passed=$((passed + ${up:-0}))
		failed=$((failed + ${uf:-0} + ${uc:-0}))
		[ $((${uf:-0} + ${uc:-0})) -gt 0 ] && failures+=("unit: ${uf:-0} failing, ${uc:-0} crashing")
		if [ "$urc" != 0 ] && [ $((${uf:-0} + ${uc:-0})) -eq 0 ]; then
			failed=$((failed + 1))
			failures+=("unit: exit status $urc with no failing test reported")
		fi
	else
		echo "unit-tests printed no Synthesis line (exit $urc); last lines:"
		tail -20 "$RUN_DIR/unit.log"
		failed=$((failed + 1))
		failures+=("unit: no Synthesis line (exit $urc)")
	fi
else
	echo "FAIL unit: $BUILD/unit-tests does not exist (make $BUILD_ARG/unit-tests)"
	failed=$((failed + 1))
	failures+=("unit: $BUILD/unit-tests missing")
fi

# ---- integration tests ----
for f in "$REPO"/tests/integration/test_*.sh; do
	[ -e "$f" ] || continue
	name=$(basename "$f")
	if [ -n "${TLSSHIM_TESTS:-}" ]; then
		selected=0
		for word in $TLSSHIM_TESTS; do [[ $name == *"$word"* ]] && selected=1; done
		[ "$selected" = 1 ] || continue
	fi
	echo "== $name"
	before=$(wc -l <"$TLSSHIM_RESULTS")
	t0=$(date +%s)
	timeout -k 10 600 bash "$f" "$BUILD"
	rc=$?
	after=$(wc -l <"$TLSSHIM_RESULTS")
	echo "-- $name: exit $rc in $(($(date +%s) - t0)) s"
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "FAIL $name: the file did not finish within 600 s (killed)"
		echo "FAIL ${name%.sh}: timed out" >>"$TLSSHIM_RESULTS"
	elif [ "$rc" != 0 ] && ! tail -n +"$((before + 1))" "$TLSSHIM_RESULTS" | grep -q '^FAIL'; then
		echo "FAIL $name: exit status $rc but no failed case recorded"
		echo "FAIL ${name%.sh}: exit $rc without a failed case" >>"$TLSSHIM_RESULTS"
	elif [ "$after" = "$before" ]; then
		echo "FAIL $name: ran no case"
		echo "FAIL ${name%.sh}: ran no case" >>"$TLSSHIM_RESULTS"
	fi
done

ip=$(grep -c '^PASS ' "$TLSSHIM_RESULTS")
if_=$(grep -c '^FAIL ' "$TLSSHIM_RESULTS")
is=$(grep -c '^SKIP ' "$TLSSHIM_RESULTS")
passed=$((passed + ip))
failed=$((failed + if_))
echo
echo "== summary ($(($(date +%s) - start)) s): integration $ip passed, $if_ failed, $is skipped"
grep '^SKIP ' "$TLSSHIM_RESULTS"
for x in "${failures[@]}"; do echo "FAIL $x"; done
grep '^FAIL ' "$TLSSHIM_RESULTS"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
