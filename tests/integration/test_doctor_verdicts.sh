#!/bin/sh
# test_doctor_verdicts.sh: one verdict per fact. Replays every recorded
# machine under tests/fixtures (each directory with a sys/ tree) through
# `lemon doctor --json --sysroot DIR` and asserts that
#   - no two checks carry the same id;
#   - no device node (/dev/...) named in the checks' messages is judged
#     "ok" by one check and "warn" or "fail" by another ("unknown" is its
#     own state and opposes neither);
#   - every check's status is one of ok, warn, fail, skip, unknown;
#   - every NPU name is written whole: the product names in compat/npus.json
#     appear in the report unshortened.
# Prints `ok <fixture>` or `FAIL <fixture>: <why>`; exits 1 on any failure.
set -u
. tests/integration/lib.sh

LEMON=${LEMON:-build/lemon}
FIXTURES=${FIXTURES:-tests/fixtures}
unset LEMON_SYSROOT
FAILS=0
need_lemon
command -v jq > /dev/null || { echo "FAIL setup: jq not found"; exit 1; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM

# one line per violation
VERDICTS='
def nodes: [.message | scan("/dev/[A-Za-z0-9_./-]*[A-Za-z0-9_]")] | unique;
(.checks | group_by(.id)[] | select(length > 1) |
	"check id \(.[0].id) appears \(length) times"),
(.checks[] | select(.status | test("^(ok|warn|fail|skip|unknown)$") | not) |
	"check \(.id) has status \(.status)"),
([.checks[] | . as $c | nodes[] | {node: ., id: $c.id, status: $c.status}] |
	group_by(.node)[] |
	select((map(.status) | index("ok")) and
	       (map(.status) | (index("warn") or index("fail")))) |
	"\(.[0].node): " + (map("\(.id)=\(.status)") | join(", ")))
'

count=0
for dir in "$FIXTURES"/*/; do
	dir=${dir%/}
	[ -d "$dir/sys" ] || continue
	name=$(basename "$dir")
	count=$((count + 1))
	"$LEMON" doctor --json --sysroot "$dir" > "$T/out" 2> "$T/err"
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
		fail "$name" "doctor exited $rc: $(head -c 300 "$T/err")"
		continue
	fi
	if ! jq -r "$VERDICTS" "$T/out" > "$T/bad" 2>&1; then
		fail "$name" "jq: $(head -c 300 "$T/bad")"
		continue
	fi
	# an NPU's product name, when the data names it, is whole
	jq -r '.npus[] | select(.name != null) | .name' "$T/out" |
		while IFS= read -r n; do
			jq -e --arg n "$n" '[.devices[].product // empty] | index($n) != null' \
				compat/npus.json > /dev/null ||
				echo "NPU name '$n' is not a whole product name of compat/npus.json"
		done >> "$T/bad"
	if [ -s "$T/bad" ]; then
		fail "$name" "$(sed 's/^/    /' "$T/bad")"
	else
		ok "$name"
	fi
done

[ "$count" -gt 0 ] || fail setup "no fixture with a sys/ tree under $FIXTURES"
[ "$FAILS" -eq 0 ] || exit 1
exit 0
