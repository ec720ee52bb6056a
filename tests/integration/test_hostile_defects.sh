#!/bin/sh
# Reproductions of issue 9 item 10's smaller defects that need the real
# binary: a bounded flag accepting values above its maximum, a failed
# install's .part poisoning the next install, a corrupt installed.json
# stopping `lemon serve`. No test here starts a server that answers: each
# run is bounded by `timeout` and given a sysroot and mirror that make it
# stop before it would listen.
# Prints "ok NAME" or "FAIL NAME: why" per test; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
ROOT=$PWD
T=$(mktemp -d /tmp/lemon-defects.XXXXXX)
FAILS=0
MPID=

. tests/integration/lib.sh

cleanup() {
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

need_lemon

# every run is isolated from the user's config, data and cache
lemon_iso() {
	HOME=$T/home XDG_CONFIG_HOME=$T/config XDG_DATA_HOME=$T/data \
		XDG_CACHE_HOME=$T/cache timeout 30 "$LEMON" "$@"
}

# --max-loaded allows 1..8; 99 once passed because lemon_parse_u64's bound
# check wrapped for a digit above the maximum
test_max_loaded_bound() {
	lemon_iso serve --max-loaded 99 --sysroot /nonexistent-lemon \
		--data-dir "$T/d-max" --mirror http://127.0.0.1:9 >"$T/out" 2>"$T/err"
	rc=$?
	if [ $rc -eq 2 ] && grep -q -- "--max-loaded '99': expected 1..8" "$T/err"; then
		ok max_loaded_bound
	else
		fail max_loaded_bound "rc=$rc: $(head -c 300 "$T/err")"
	fi
}

test_max_loaded_bound

[ "$FAILS" -eq 0 ]
