#!/bin/sh
# Lint rules from shared STYLE.md that a compiler cannot check:
#  - no layer includes a later layer's header, and no private header is
#    included from outside its folder
#  - no literal /sys, /proc, /dev or /lib/firmware path outside detect/root.c
#  - no banned functions (atoi, sscanf, strtok, strcpy, strcat, sprintf)
#  - every compat JSON file parses and has schema and about
set -u
cd "$(dirname "$0")/.."
rc=0
fail() { echo "check: $*"; rc=1; }

order="util detect compat doctor provision backends server cli"
rank() { i=0; for l in $order; do [ "$l" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done; echo 99; }

for f in $(git ls-files '*.c' '*.h' | grep -v '^tests/'); do
	layer=${f%%/*}
	lr=$(rank "$layer")
	for inc in $(grep -o '#include "[a-z_]*/[a-z_-]*\.h"' "$f" | sed 's/#include "//; s/"$//'); do
		il=${inc%%/*}
		case "$inc" in
		*-private.h) [ "$il" = "$layer" ] || fail "$f includes $inc, private to $il/" ;;
		esac
		[ "$(rank "$il")" -le "$lr" ] || fail "$f ($layer) includes $inc from the later layer $il"
	done
done

git ls-files '*.c' '*.h' | grep -v -e '^detect/root.c$' -e '^tests/' |
	xargs grep -n -E '"/(sys|proc|dev|lib/firmware)(/|")' && fail "literal machine path outside detect/root.c"

git ls-files '*.c' '*.h' | xargs grep -n -E '\b(atoi|atol|sscanf|strtok|strcpy|strcat|sprintf|vsprintf|gets)\s*\(' &&
	fail "banned function used"

# timed waits go through util/cond.c (the monotonic clock): a deadline on
# CLOCK_REALTIME stalls the wait when the wall clock is stepped back
git ls-files '*.c' | grep -v -e '^util/cond.c$' -e '^tests/' |
	xargs grep -n -E '\b(pthread_cond_timedwait|pthread_timedjoin_np|sem_timedwait|pthread_mutex_timedlock)\s*\(' &&
	fail "timed wait outside util/cond.c (lemon_cond_wait_ms on a cond made by lemon_cond_init)"

# functions stay short: a body (from "{" to "}" in column 0) over 150 lines
for f in $(git ls-files '*.c' | grep -v '^tests/'); do
	awk -v f="$f" '/^\{/ { s = NR } /^\}/ { if (s && NR - s > 150) print f ":" s ": function body of " NR - s " lines"; s = 0 }' "$f"
done | grep . && fail "function longer than 150 lines"

for j in compat/*.json; do
	jq -e 'has("schema") and has("about")' "$j" >/dev/null || fail "$j lacks schema/about or is not JSON"
done

# every AMD GPU id of libdrm's amdgpu.ids (this machine's copy and the newest
# upstream copy in compat/upstream/) and of the kernel pciidlist resolves
scripts/check-amdgpu-ids.py || fail "AMD GPU ids without a gfx target (listed above)"

# server/: the router, handlers and leaves (responses, the upstream client)
# form no call or include cycle among its files
scripts/check-cycles.sh server || fail "server/ files call each other in a loop"

[ "$rc" -eq 0 ] && echo "check: ok"
exit $rc
