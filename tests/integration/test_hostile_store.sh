#!/bin/sh
# Hostile and careless use of the model store (issue 9 items 2, 3, 9, 10),
# against a loopback Hugging Face-style mirror (tests/tools/hf-mirror.py,
# throttled so that pulls overlap) and a real `lemon serve`:
#  race-*      `lemon pull big` racing `lemon rm big` and a second pull
#              (CLI, and DELETE /api/delete + POST /api/pull on a server):
#              every pull that reports success has published the whole
#              verified model, and after each round the store holds that
#              model or nothing; the delete is refused (BUSY) while the
#              pull runs
#  truncated-* a GGUF cut short is refused at `pull --file` and at a
#              registry pull (single file and one part of a split model),
#              the message naming the expected and the actual size
#  fifo        `pull --file` of a FIFO returns at once with an error
#  dash-name   names never start with '-': `lemon rm -rf` is a usage
#              error, not a name; `lemon rm -- -rf` removes an entry an
#              older lemon stored as -rf.gguf; pull --file, a registry pull,
#              a user's models.json entry and run refuse such a name
#  pull-stream-error-paths  a server pull's failure in /api/v1/pull's
#              and /api/pull's streams names the file without the data
#              directory's absolute path
#  shutdown    a pull running in `lemon serve` is cancelled when the server
#              shuts down, its .part kept, and the next pull resumes it
# Prints "ok NAME" or "FAIL NAME: why"; exits non-zero on any failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
T=$(mktemp -d /tmp/lemon-hstore.XXXXXX)
FAILS=0
MPID=
SPID=
. tests/integration/lib.sh

cleanup() {
	[ -n "$SPID" ] && kill "$SPID" 2>/dev/null
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
need_lemon

BIG_MB=64
RATE=$((32 << 20)) # bytes per second: a pull of big takes about 2 s
HUB=$T/hub
python3 tests/tools/hf-mirror.py make "$HUB" --big-mb $BIG_MB --registry "$T/models.json" >/dev/null ||
	{ echo "FAIL setup: hf-mirror.py make"; exit 1; }
# a registry model whose file is a GGUF cut short, and a split model whose
# second part is
python3 - "$HUB" "$T/models.json" <<'EOF' || { echo "FAIL setup: truncated models"; exit 1; }
import json, os, shutil, sys
hub, reg = sys.argv[1], sys.argv[2]
def cut(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    data = open(src, "rb").read()
    open(dst, "wb").write(data[:len(data) - 1000])
cut(hub + "/lemon-test/tiny-GGUF/tiny.gguf", hub + "/lemon-test/trunc-GGUF/trunc.gguf")
s = hub + "/lemon-test/split-GGUF/tiny-split-0000%d-of-00002.gguf"
d = hub + "/lemon-test/trunc-split-GGUF/trunc-split-0000%d-of-00002.gguf"
os.makedirs(os.path.dirname(d), exist_ok=True)
shutil.copyfile(s % 1, d % 1)
cut(s % 2, d % 2)
r = json.load(open(reg))
r["models"] += [
    {"name": "trunc", "repo": "lemon-test/trunc-GGUF", "recipe": "llamacpp",
     "files": [{"file": "trunc.gguf"}], "labels": ["llm"], "source": "test"},
    {"name": "trunc-split", "repo": "lemon-test/trunc-split-GGUF",
     "recipe": "llamacpp", "labels": ["llm"], "source": "test",
     "files": [{"file": "trunc-split-0000%d-of-00002.gguf" % i} for i in (1, 2)]}]
json.dump(r, open(reg, "w"))
EOF
python3 tests/tools/hf-mirror.py serve "$HUB" --control "$T/ctl" --log "$T/log" \
	>"$T/port" 2>"$T/mirror.err" &
MPID=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
PORT=$(head -n 1 "$T/port")
[ -n "$PORT" ] || { echo "FAIL setup: mirror did not start"; exit 1; }

export HF_ENDPOINT=http://127.0.0.1:$PORT
export LEMON_MODELS_JSON=$T/models.json
export XDG_DATA_HOME=$T/data
export XDG_CONFIG_HOME=$T/config
unset HF_TOKEN
MODELS=$T/data/lemon/models
BIG=$HUB/lemon-test/big-GGUF/big.gguf
BIG_SIZE=$(stat -c %s "$BIG")
BIG_SHA=$(sha256sum "$BIG" | cut -d' ' -f1)
PART=$MODELS/.pull-big/big.gguf.part
knobs() { printf '%s\n' "$1" >"$T/ctl"; }
size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# waits until the running pull's .part holds at least $1 MiB
wait_part() {
	_i=0
	while [ "$(size "$PART")" -lt $(($1 << 20)) ] && [ $_i -lt 200 ]; do
		sleep 0.02
		_i=$((_i + 1))
	done
}

# a pull just reported success: what it published must be whole and
# verified at this instant (a second pull may still be writing)
check_published() {
	_s=$(size "$MODELS/big.gguf")
	if [ "$_s" -ne "$BIG_SIZE" ]; then
		fail "$1" "a pull reported success but big.gguf has $_s of $BIG_SIZE bytes"
		return
	fi
	_h=$(sha256sum "$MODELS/big.gguf" | cut -d' ' -f1)
	[ "$_h" = "$BIG_SHA" ] || fail "$1" "a pull reported success but big.gguf has sha256 $_h"
}

# after a round: the verified model, or nothing
check_store() {
	if [ -e "$MODELS/big.gguf" ]; then
		_h=$(sha256sum "$MODELS/big.gguf" | cut -d' ' -f1)
		[ "$_h" = "$BIG_SHA" ] || { fail "$1" "store holds a big.gguf with sha256 $_h"; return 1; }
	fi
	return 0
}

# 1. CLI: pull, rm while it downloads, a second pull
knobs "{\"rate\": $RATE}"
for r in 1 2 3; do
	f0=$FAILS
	"$LEMON" rm big >/dev/null 2>&1
	timeout 60 "$LEMON" pull big >"$T/a.out" 2>"$T/a.err" &
	APID=$!
	wait_part $((r * 6))
	"$LEMON" rm big >"$T/rm.out" 2>&1 &&
		fail race-cli-$r-rm "rm succeeded while a pull of big ran"
	grep -q "removing 'big': a pull of 'big' is already running" "$T/rm.out" ||
		fail race-cli-$r-rm "rm during the pull: $(cat "$T/rm.out")"
	timeout 60 "$LEMON" pull big >"$T/b.out" 2>"$T/b.err" &
	BPID=$!
	wait $APID
	arc=$?
	[ $arc -eq 0 ] && check_published race-cli-$r-first
	wait $BPID && check_published race-cli-$r-second
	if [ $arc -ne 0 ]; then
		fail race-cli-$r "the first pull failed: $(cat "$T/a.err")"
	elif check_store race-cli-$r && [ $FAILS -eq $f0 ]; then
		ok race-cli-$r
	fi
done

# 2. the same over HTTP: POST /api/pull, DELETE /api/delete, POST /api/pull
SPORT=$(free_port)
LEMON_LLAMA_SERVER_CPU=/bin/true "$LEMON" serve --port "$SPORT" --backend cpu \
	>"$T/serve.log" 2>&1 &
SPID=$!
i=0
while ! curl -sf "http://127.0.0.1:$SPORT/api/v1/health" >/dev/null 2>&1 && [ $i -lt 150 ]; do
	sleep 0.2
	i=$((i + 1))
done
api() { # METHOD PATH [curl options]
	_m=$1 _p=$2
	shift 2
	curl -s -m 60 -X "$_m" -H 'Content-Type: application/json' -d '{"model":"big"}' \
		"$@" "http://127.0.0.1:$SPORT$_p"
}
for r in 1 2 3; do
	f0=$FAILS
	"$LEMON" rm big >/dev/null 2>&1
	api POST /api/pull -N >"$T/a.out" 2>&1 &
	APID=$!
	wait_part $((r * 6))
	api DELETE /api/delete >"$T/rm.out" 2>&1
	grep -q "a pull of 'big' is already running" "$T/rm.out" ||
		fail race-http-$r-delete "DELETE during the pull: $(cat "$T/rm.out")"
	api POST /api/pull -N >"$T/b.out" 2>&1 &
	BPID=$!
	wait $APID
	grep -q '"status":"success"' "$T/a.out" && check_published race-http-$r-first
	wait $BPID
	grep -q '"status":"success"' "$T/b.out" && check_published race-http-$r-second
	if ! grep -q '"status":"success"' "$T/a.out"; then
		fail race-http-$r "the first pull failed: $(tail -c 300 "$T/a.out")"
	elif check_store race-http-$r && [ $FAILS -eq $f0 ]; then
		ok race-http-$r
	fi
done

# a pull that fails on a file of the store (a GGUF cut short, checked in
# the staging directory) says which file in both streams without the data
# directory's absolute path: "<data>/..." as in every error body
name=pull-stream-error-paths
for f in "/api/v1/pull model_name sse" "/api/pull model nd"; do
	set -- $f
	curl -s -N -m 60 -H 'Content-Type: application/json' -d "{\"$2\":\"trunc\"}" \
		"http://127.0.0.1:$SPORT$1" >"$T/perr.$3" 2>&1
done
if sed -n 's/^data: //p' "$T/perr.sse" | tail -n 1 |
	jq -e '.error.message | test("^<data>/models/[.]pull-trunc/trunc[.]gguf: truncated gguf")' >/dev/null &&
	tail -n 1 "$T/perr.nd" |
	jq -e '.error | test("^<data>/models/[.]pull-trunc/trunc[.]gguf: truncated gguf")' >/dev/null &&
	! grep -q -e "$T" -e "$XDG_DATA_HOME" "$T/perr.sse" "$T/perr.nd"; then
	ok $name
else
	fail $name "$(tail -c 300 "$T/perr.sse") / $(tail -c 300 "$T/perr.nd")"
fi

# 3. shutdown cancels a pull in the server; its .part is resumed later
"$LEMON" rm big >/dev/null 2>&1
knobs '{"rate": 4000000}'
api POST /api/pull -N >"$T/a.out" 2>&1 &
APID=$!
wait_part 2
kill -TERM "$SPID"
i=0
while kill -0 "$SPID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
have=$(size "$PART")
if kill -0 "$SPID" 2>/dev/null; then
	fail shutdown-cancels-pull "lemon serve still running 10 s after SIGTERM (pull at $have bytes)"
	kill -KILL "$SPID" 2>/dev/null
elif [ $i -gt 50 ]; then
	fail shutdown-cancels-pull "lemon serve took $((i / 10)) s to exit"
elif [ "$have" -lt $((2 << 20)) ] || [ "$have" -ge "$BIG_SIZE" ] || [ -e "$MODELS/big.gguf" ]; then
	fail shutdown-cancels-pull "the .part has $have bytes (want a partial download kept)"
else
	ok shutdown-cancels-pull
fi
wait "$SPID" 2>/dev/null
SPID=
wait $APID 2>/dev/null
knobs '{}'
: >"$T/log"
if "$LEMON" pull big >"$T/out" 2>"$T/err" && check_store shutdown-resume &&
	[ -e "$MODELS/big.gguf" ] && grep -q '"range": "bytes=[1-9][0-9]*-"' "$T/log"; then
	ok shutdown-resume
else
	fail shutdown-resume "$(cat "$T/err"; cat "$T/log")"
fi
"$LEMON" rm big >/dev/null 2>&1

# 4. truncated GGUF files: import and registry pull, sizes named
TINY=$HUB/lemon-test/tiny-GGUF/tiny.gguf
TSIZE=$(stat -c %s "$TINY")
head -c $((TSIZE - 1000)) "$TINY" >"$T/trunc.gguf"
if "$LEMON" pull --file "$T/trunc.gguf" trunc >"$T/out" 2>"$T/err"; then
	fail truncated-import "import succeeded"
elif grep -q "truncated gguf: its tensors need $TSIZE bytes, the file has $((TSIZE - 1000))" "$T/err" &&
	[ ! -e "$MODELS/trunc.gguf" ] && ! ls -a "$MODELS" | grep -q import; then
	ok truncated-import
else
	fail truncated-import "$(cat "$T/err"; ls -a "$MODELS")"
fi
if "$LEMON" pull trunc >"$T/out" 2>"$T/err"; then
	fail truncated-pull "pull succeeded"
elif grep -q "trunc.gguf: truncated gguf: its tensors need $TSIZE bytes, the file has $((TSIZE - 1000))" "$T/err" &&
	[ ! -e "$MODELS/trunc.gguf" ] && ! "$LEMON" list | grep -q '^trunc '; then
	ok truncated-pull
else
	fail truncated-pull "$(cat "$T/err")"
fi
S2=$HUB/lemon-test/split-GGUF/tiny-split-00002-of-00002.gguf
S2SIZE=$(stat -c %s "$S2")
if "$LEMON" pull trunc-split >"$T/out" 2>"$T/err"; then
	fail truncated-split "pull succeeded"
elif grep -q "trunc-split-00002-of-00002.gguf: truncated gguf: its tensors need $S2SIZE bytes, the file has $((S2SIZE - 1000))" "$T/err" &&
	[ ! -e "$MODELS/trunc-split" ]; then
	ok truncated-split
else
	fail truncated-split "$(cat "$T/err")"
fi

# 5. a FIFO given to pull --file: a prompt error, never a blocking open
mkfifo "$T/fifo"
timeout 10 "$LEMON" pull --file "$T/fifo" fifo >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 2 ] && grep -q "not a regular file" "$T/err"; then
	ok fifo
else
	fail fifo "rc $rc (124: it hung): $(cat "$T/err")"
fi

# 6. names never start with '-' (they read as options wherever a name meets
# a command line); before "--" such an argument is an option, after it a
# name that only rm takes, for an entry an older lemon stored
mkdir -p "$MODELS"
cp "$TINY" "$MODELS/-rf.gguf"
"$LEMON" rm -rf >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 2 ] && grep -q "usage: lemon rm" "$T/err" && [ -e "$MODELS/-rf.gguf" ]; then
	ok dash-option-refused
else
	fail dash-option-refused "rc $rc: $(cat "$T/err")"
fi
if "$LEMON" rm -- -rf >"$T/out" 2>"$T/err" && [ ! -e "$MODELS/-rf.gguf" ] &&
	grep -q "deleted -rf" "$T/out"; then
	ok dash-name-rm
else
	fail dash-name-rm "$(cat "$T/err")"
fi
NAME_RULE="not starting with '-' or '.'"
if "$LEMON" pull --file "$TINY" -- -x >"$T/out" 2>"$T/err"; then
	fail dash-name-import "imported as -x"
elif grep -q "invalid model name '-x'.*$NAME_RULE" "$T/err" && [ ! -e "$MODELS/-x.gguf" ] &&
	! ls -a "$MODELS" | grep -q -- '-x'; then
	ok dash-name-import
else
	fail dash-name-import "$(cat "$T/err"; ls -a "$MODELS")"
fi
if "$LEMON" pull -- --help >"$T/out" 2>"$T/err"; then
	fail dash-name-pull "pulled --help"
elif grep -q "invalid model name '--help'.*$NAME_RULE" "$T/err"; then
	ok dash-name-pull
else
	fail dash-name-pull "$(cat "$T/err")"
fi
# a user's registry entry named -x is refused where it is read, naming it
jq '.models += [(.models[] | select(.name == "tiny") | .name = "-x")]' "$T/models.json" >"$T/dash.json"
if LEMON_MODELS_JSON=$T/dash.json "$LEMON" pull tiny >"$T/out" 2>"$T/err"; then
	fail dash-name-registry "a registry with an entry named -x was used"
elif grep -q "dash.json.*$NAME_RULE.*(got '-x')" "$T/err"; then
	ok dash-name-registry
else
	fail dash-name-registry "$(cat "$T/err")"
fi

# lemon run refuses such a name before it asks any server (none runs here)
"$LEMON" run --port "$(free_port)" -- -x hello >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] && grep -q "invalid model name '-x'.*$NAME_RULE" "$T/err" &&
	! grep -q "no lemon server is running" "$T/err"; then
	ok dash-name-run
else
	fail dash-name-run "rc $rc: $(cat "$T/err")"
fi

[ $FAILS -eq 0 ]
