#!/bin/sh
# Runs the unit test binaries given as arguments, then every integration
# script under tests/integration/, and closes with "N passed, N failed".
set -u
LEMON=${LEMON:-build/lemon}
export LEMON
passed=0
failed=0
failures=""
for t in "$@"; do
	if "$t"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures="$failures $(basename "$t")"
	fi
done
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] || continue
	echo "== $t"
	if sh "$t"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures="$failures $(basename "$t")"
	fi
done
[ -z "$failures" ] || echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
