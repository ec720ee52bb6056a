#!/bin/sh
# Benchmark of a model switch (unload one model, load another, answer a
# one-token request) through `lemon serve --max-loaded 1` against doing the
# same by hand with llama-server (same executable, models and flags: stop
# the running server, start one on the other model, wait for /health, send
# the request). The two are alternated round by round; prints a markdown
# section for bench/RESULTS.md with the medians and their ratio.
#   ROUNDS=10 bench/switch.sh
set -eu
cd "$(dirname "$0")/.."
LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
ROUNDS=${ROUNDS:-10}
CTX=4096
T=$(mktemp -d /tmp/lemon-switch.XXXXXX)
LPID= DPID= MPID=
cleanup() {
	for p in $LPID $DPID $MPID; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
ask() { # port model: one-token chat completion, fails on a non-200
	code=$(curl -s -H 'Content-Type: application/json' -o /dev/null -w '%{http_code}' -m 120 "http://127.0.0.1:$1/v1/chat/completions" \
		-d "{\"model\":\"$2\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":1}")
	[ "$code" = 200 ] || { echo "bench: $2 on port $1 answered $code" >&2; exit 1; }
}

BUNDLE=$(scripts/build-backend.sh cpu 2>/dev/null | tail -n 1)
python3 tests/tools/mirror.py --dir "$BUNDLE" > "$T/mport" 2>/dev/null &
MPID=$!
while [ ! -s "$T/mport" ]; do sleep 0.1; done
"$LEMON" install-backend llamacpp:cpu --mirror "http://127.0.0.1:$(head -n 1 "$T/mport")" > /dev/null
kill "$MPID"
MPID=
EXE=$(find "$XDG_DATA_HOME/lemon/backends" -name llama-server -type f -perm -u+x | head -n 1)
for m in tiny:1234 tiny-b:99; do
	f=build/models/${m%%:*}.gguf
	[ -f "$f" ] || python3 tests/tools/make-tiny-gguf.py --seed "${m#*:}" --out "$f" > /dev/null
	"$LEMON" pull --file "$f" "${m%%:*}" > /dev/null
done

LP=$(free_port)
"$LEMON" serve --port "$LP" --backend cpu --ctx-size $CTX --max-loaded 1 2> "$T/lemon.log" &
LPID=$!
i=0
until grep -q "listening on" "$T/lemon.log"; do
	i=$((i + 1)); [ $i -lt 600 ] || { tail -n 5 "$T/lemon.log" >&2; exit 1; }
	sleep 0.1
done
ask "$LP" tiny # first load, not counted

# one Python process times both sides, alternating, so neither pays for
# forking clients: lemon gets one request naming the other model; direct
# is what a user switching by hand does with the same flags lemon uses
python3 - "$LP" "$EXE" "$XDG_DATA_HOME/lemon/models" "$CTX" "$ROUNDS" "$T" <<'PY'
import http.client, json, socket, subprocess, sys, time
lp, exe, mdir, ctx, rounds, tmp = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
body = lambda m: json.dumps({"model": m, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
def ask(port, m):
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=120)
    c.request("POST", "/v1/chat/completions", body(m), {"Content-Type": "application/json"})
    r = c.getresponse(); r.read(); c.close()
    if r.status != 200:
        sys.exit("bench: %s on %s answered %d" % (m, port, r.status))
def healthy(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/health"); ok = c.getresponse().status == 200; c.close()
        return ok
    except OSError:
        return False
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
log = open(tmp + "/direct.log", "wb")
proc = None
def direct(m, port):
    global proc
    if proc:
        proc.terminate(); proc.wait()
    proc = subprocess.Popen([exe, "-m", "%s/%s.gguf" % (mdir, m), "--host", "127.0.0.1", "--port", str(port),
                             "--alias", m, "--no-webui", "-c", ctx, "--parallel", "4"], stdout=log, stderr=log)
    while not healthy(port):
        if proc.poll() is not None:
            sys.exit("bench: llama-server exited")
        time.sleep(0.01)
    ask(port, m)
direct("tiny", free_port()) # first start, not counted
lt, dt = open(tmp + "/lemon.ms", "w"), open(tmp + "/direct.ms", "w")
for r in range(rounds):
    for m in ("tiny-b", "tiny"):
        t0 = time.monotonic(); ask(lp, m); lt.write("%d\n" % round((time.monotonic() - t0) * 1000))
        port = free_port()
        t0 = time.monotonic(); direct(m, port); dt.write("%d\n" % round((time.monotonic() - t0) * 1000))
proc.terminate(); proc.wait()
PY

# every lemon round was a real switch: one start per request
starts=$(grep -c "starting tiny" "$T/lemon.log")
[ "$starts" -eq $((2 * ROUNDS + 1)) ] ||
	{ echo "bench: expected $((2 * ROUNDS + 1)) starts in lemon, saw $starts" >&2; exit 1; }

med() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mn() { sort -n "$1" | head -n 1; }
mx() { sort -n "$1" | tail -n 1; }
LM=$(med "$T/lemon.ms"); DM=$(med "$T/direct.ms")
cat <<MD
## switch: model switch through \`lemon serve --max-loaded 1\` vs restarting \`llama-server\` by hand

Command: \`ROUNDS=$ROUNDS bench/switch.sh\` ($(nproc) cores, $(date -u +%Y-%m-%d)). Two tiny
models (tests/tools/make-tiny-gguf.py, seeds 1234 and 99), alternated $((2 * ROUNDS)) times.
One switch = stop the loaded model, start the other, answer one 1-token chat request.
lemon: one request naming the other model (LRU eviction, new child, /health, proxy).
direct: SIGTERM the running llama-server and wait for it, start one on the other
model with the same flags (-c $CTX --parallel 4), poll /health every 10 ms, send the
same request. Both sides are timed by one Python client (http.client), alternating.

| | median ms | min ms | max ms |
|---|---|---|---|
| lemon | $LM | $(mn "$T/lemon.ms") | $(mx "$T/lemon.ms") |
| direct | $DM | $(mn "$T/direct.ms") | $(mx "$T/direct.ms") |

Ratio lemon/direct (medians): $(awk -v a="$LM" -v b="$DM" 'BEGIN {printf "%.2f", a / b}')
MD
