#!/bin/sh
# lemon pull's progress (issue 14): a bar only on a terminal (stderr a pty,
# through script(1)), JSON lines otherwise, and --progress bar|json|none
# overriding that, against the loopback Hugging Face mirror
# (tests/tools/hf-mirror.py, as test_pull.sh). Prints "ok NAME" or
# "FAIL NAME: why"; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/lemon-progress.XXXXXX)
FAILS=0
HPID=

. tests/integration/lib.sh

cleanup() {
	[ -n "$HPID" ] && kill "$HPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

need_lemon
command -v script > /dev/null || { echo "FAIL setup: script(1) is not installed"; exit 1; }
MODEL=$BUILD/models/tiny.gguf
[ -f "$MODEL" ] || python3 tests/tools/make-tiny-gguf.py --out "$MODEL" > /dev/null ||
	{ echo "FAIL setup: make-tiny-gguf.py"; exit 1; }
python3 tests/tools/hf-mirror.py make "$T/hub" --tiny "$MODEL" --registry "$T/models.json" >/dev/null ||
	{ echo "FAIL setup: hf-mirror.py make"; exit 1; }
python3 tests/tools/hf-mirror.py serve "$T/hub" >"$T/hport" 2>"$T/hub.err" &
HPID=$!
i=0
while [ ! -s "$T/hport" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$T/hport" ] || { echo "FAIL setup: hf mirror did not start"; exit 1; }
export HF_ENDPOINT=http://127.0.0.1:$(head -n 1 "$T/hport")
export LEMON_MODELS_JSON=$T/models.json
unset HF_TOKEN NO_COLOR

# pull tiny into a fresh data directory; its output (JSON lines go to
# stdout, the bar to stderr) to $T/err.NAME. With
# "tty", stdout and stderr are a pty, which script(1) copies into $T/err.NAME
pull() {
	name=$1
	tty=$2
	shift 2
	d=$T/data.$name
	if [ "$tty" = tty ]; then
		script -qec "\"$LEMON\" pull --data-dir \"$d\" $* tiny" "$T/err.$name" > /dev/null 2>&1
	else
		"$LEMON" pull --data-dir "$d" "$@" tiny > "$T/err.$name" 2>&1
	fi
}
is_json() { grep -q '^{.*"status"' "$T/err.$1" && ! grep -q "$(printf '\r')" "$T/err.$1"; }
is_bar() { grep -q "$(printf '\r')" "$T/err.$1" && ! grep -q '^{' "$T/err.$1"; }

pull auto-pipe pipe
is_json auto-pipe && ok "not a terminal: JSON lines" || fail "not a terminal: JSON lines" "$(head -c 200 "$T/err.auto-pipe")"
pull auto-tty tty
is_bar auto-tty && ok "terminal: a bar" || fail "terminal: a bar" "$(head -c 200 "$T/err.auto-tty" | od -c | head -n 3)"
pull json-tty tty --progress json
grep -q '{.*"status"' "$T/err.json-tty" && ok "--progress json on a terminal" ||
	fail "--progress json on a terminal" "$(head -c 200 "$T/err.json-tty")"
pull bar-pipe pipe --progress bar
is_bar bar-pipe && ok "--progress bar on a pipe" || fail "--progress bar on a pipe" "$(head -c 200 "$T/err.bar-pipe")"
pull none-pipe pipe --progress none
[ ! -s "$T/err.none-pipe" ] && [ -s "$T/data.none-pipe/lemon/models/tiny.gguf" -o -n "$(ls -A "$T/data.none-pipe" 2>/dev/null)" ] &&
	ok "--progress none is quiet" || fail "--progress none is quiet" "$(head -c 200 "$T/err.none-pipe")"
"$LEMON" pull --progress loud tiny > /dev/null 2>&1
[ $? -eq 2 ] && ok "unknown --progress is a usage error" || fail "unknown --progress is a usage error" "exit $?"

[ "$FAILS" -eq 0 ] || exit 1
