#!/bin/sh
# A burst of STREAMS simultaneous non-streamed requests through `lemon serve
# --parallel STREAMS` against the same llama-server started directly with
# its child's exact arguments (read from /proc): when each request reaches
# the llama-server process (ftrace, as root), how far apart the engine
# launched the burst's slots (their logs), and the pass time. Alternating
# passes, REPS each; medians. The model is a llama-shaped GGUF whose engine
# step takes tens of milliseconds on a 2-core machine (tests/tools/make-shape-gguf.py).
#   STREAMS=16 TOK=8 REPS=8 SHAPE="--embd 1024 --layers 8 --heads 16 --heads-kv 16 --ffn 2816" bench/burst.sh
# LEMON (default build/lemon), BUNDLE (a CPU bundle directory; default the
# cached scripts/build-backend.sh cpu), VOCAB (make-shape-gguf.py's --vocab)
# and KEEP_JSON (a path for the per-pass rows) serve runs on another machine.
set -eu
cd "$(dirname "$0")/.."
LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
STREAMS=${STREAMS:-16}
TOK=${TOK:-8}
REPS=${REPS:-8}
SHAPE=${SHAPE:---embd 1024 --layers 8 --heads 16 --heads-kv 16 --ffn 2816}
T=$(mktemp -d /tmp/lemon-burst.XXXXXX)
LPID='' DPID='' MPID=''
cleanup() {
	for p in $LPID $DPID $MPID; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
export XDG_DATA_HOME="$T/data" XDG_CONFIG_HOME="$T/config"
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # url
	i=0
	until curl -s -o /dev/null -m 2 "$1"; do
		i=$((i + 1))
		[ $i -lt 600 ] || { echo "burst: $1 did not come up" >&2; tail -n 5 "$T"/*.log >&2; exit 1; }
		sleep 0.1
	done
}

BUNDLE=${BUNDLE:-$(scripts/build-backend.sh cpu 2>/dev/null | tail -n 1)}
python3 tests/tools/mirror.py --dir "$BUNDLE" > "$T/mport" 2>/dev/null &
MPID=$!
while [ ! -s "$T/mport" ]; do sleep 0.1; done
"$LEMON" install-backend llamacpp:cpu --mirror "http://127.0.0.1:$(head -n 1 "$T/mport")" > /dev/null
kill "$MPID"
MPID=
EXE=$(find "$XDG_DATA_HOME/lemon/backends" -name llama-server -type f -perm -u+x | head -n 1)
# shellcheck disable=SC2086 # SHAPE is a list of arguments
python3 tests/tools/make-shape-gguf.py --shape custom $SHAPE ${VOCAB:+--vocab "$VOCAB"} \
	--out "$T/burst.gguf" > /dev/null
"$LEMON" pull --file "$T/burst.gguf" burst > /dev/null
rm -f "$T/burst.gguf"

LP=$(free_port)
"$LEMON" serve --port "$LP" --backend cpu --ctx-size 4096 --parallel "$STREAMS" --timeout 120 \
	2> "$T/lemon.log" &
LPID=$!
wait_http "http://127.0.0.1:$LP/api/v1/health"
curl -s -H 'Content-Type: application/json' -m 300 "http://127.0.0.1:$LP/api/v1/load" \
	-d '{"model_name":"burst"}' > /dev/null
CPID=$(pgrep -P "$LPID" -f llama-server | head -n 1)
[ -n "$CPID" ] || { echo "burst.sh: lemon's llama-server child not found" >&2; exit 1; }
DP=$(free_port)
CHILD_ARGS=$(python3 bench/child-args.py "$CPID" "$DP")
echo "direct llama-server arguments: $CHILD_ARGS" >&2
eval "set -- $CHILD_ARGS"
"$EXE" "$@" > "$T/direct.log" 2>&1 &
DPID=$!
wait_http "http://127.0.0.1:$DP/health"
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$DP/health")" = 200 ]; do
	sleep 0.2
done
# one request each first: neither side's first pass pays a cold start
for u in "http://127.0.0.1:$LP" "http://127.0.0.1:$DP"; do
	curl -s -m 300 -o /dev/null -H 'Content-Type: application/json' "$u/v1/completions" \
		-d '{"model":"burst","prompt":"Hello","max_tokens":2}'
done

python3 bench/burst-client.py "http://127.0.0.1:$LP" "http://127.0.0.1:$DP" burst \
	"$STREAMS" "$TOK" "$REPS" "$CPID" "$DPID" "$T/lemon.log" "$T/direct.log" > "$T/burst.json"
[ -n "${KEEP_JSON:-}" ] && cp "$T/burst.json" "$KEEP_JSON"
python3 - "$T/burst.json" "$(nproc)" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
l, d = j["lemon"], j["direct"]
def f(v, fmt="%.1f"):
    return "n/a" if v is None else fmt % v
print("%d streams x %d tokens, %d passes each, %s cores; medians" % (
    j["streams"], j["max_tokens"], j["reps"], sys.argv[2]))
print()
print("| metric | lemon | direct llama-server | lemon/direct |")
print("|---|---|---|---|")
print("| last request read by llama-server, ms after the first send | %s | %s | %s |" % (
    f(l["last_receipt_ms"], "%.2f"), f(d["last_receipt_ms"], "%.2f"),
    "n/a" if l["last_receipt_ms"] is None else "%+.2f ms" % (l["last_receipt_ms"] - d["last_receipt_ms"])))
print("| launch_slot_ spread, ms | %s | %s | %s |" % (
    f(l["launch_spread_ms"]), f(d["launch_spread_ms"]),
    "%+.1f ms" % (l["launch_spread_ms"] - d["launch_spread_ms"])))
print("| pass wall, s | %.3f | %.3f | %.3fx (throughput) |" % (
    l["wall_s"], d["wall_s"], d["wall_s"] / l["wall_s"]))
print("| errors | %d | %d | |" % (l["errors"], d["errors"]))
PY
