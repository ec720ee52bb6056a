#!/bin/sh
# Benchmark of `lemon serve` against the same llama-server started
# directly (same executable, model and flags): decode tokens/s and time to
# first token, alternating lemon/direct in one run; CLIENTS concurrent
# streaming clients through each; lemon's RSS idle and under load.
# Prints a markdown section for bench/RESULTS.md.
#   ROUNDS=20 MAXTOK=128 CLIENTS=256 CTOK=32 bench/serve.sh
set -eu
cd "$(dirname "$0")/.."
LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
ROUNDS=${ROUNDS:-20}
MAXTOK=${MAXTOK:-128}
CLIENTS=${CLIENTS:-256}
CTOK=${CTOK:-32}
CTX=4096
T=$(mktemp -d /tmp/lemon-bench.XXXXXX)
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
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
wait_http() { # url
	i=0
	until curl -s -o /dev/null -m 2 "$1"; do
		i=$((i + 1))
		[ $i -lt 300 ] || { echo "bench: $1 did not come up" >&2; tail -n 5 "$T"/*.log >&2; exit 1; }
		sleep 0.1
	done
}

# the real CPU bundle, installed the way users get it
BUNDLE=$(scripts/build-backend.sh cpu 2>/dev/null | tail -n 1)
python3 tests/tools/mirror.py --dir "$BUNDLE" > "$T/mport" 2>/dev/null &
MPID=$!
while [ ! -s "$T/mport" ]; do sleep 0.1; done
"$LEMON" install-backend llamacpp:cpu --mirror "http://127.0.0.1:$(head -n 1 "$T/mport")" > /dev/null
kill "$MPID"
MPID=
EXE=$(find "$XDG_DATA_HOME/lemon/backends" -name llama-server -type f -perm -u+x | head -n 1)
[ -f build/models/tiny.gguf ] || python3 tests/tools/make-tiny-gguf.py > /dev/null
"$LEMON" pull --file build/models/tiny.gguf tiny > /dev/null

LP=$(free_port)
"$LEMON" serve --port "$LP" --backend cpu --ctx-size $CTX --timeout 60 2> "$T/lemon.log" &
LPID=$!
wait_http "http://127.0.0.1:$LP/api/v1/health"
curl -s -H 'Content-Type: application/json' -m 60 "http://127.0.0.1:$LP/api/v1/load" -d '{"model_name":"tiny"}' > /dev/null
DP=$(free_port)
# the direct llama-server gets exactly the arguments lemon gave its child
# (read from the child's /proc cmdline), only the port differs
CPID=$(pgrep -P "$LPID" -f llama-server | head -n 1)
[ -n "$CPID" ] || { echo "serve.sh: lemon's llama-server child not found" >&2; exit 1; }
CHILD_ARGS=$(python3 bench/child-args.py "$CPID" "$DP")
echo "direct llama-server arguments: $CHILD_ARGS" >&2
eval "set -- $CHILD_ARGS"
"$EXE" "$@" > "$T/direct.log" 2>&1 &
DPID=$!
wait_http "http://127.0.0.1:$DP/health"
sleep 1
IDLE=$(rss_kb $LPID)

python3 bench/serve-client.py alternate "http://127.0.0.1:$LP" "http://127.0.0.1:$DP" \
	"$ROUNDS" "$MAXTOK" > "$T/alt.json"
python3 bench/serve-client.py paired "http://127.0.0.1:$LP" "http://127.0.0.1:$DP" \
	"${PAIRED:-150}" > "$T/paired.json"
# two passes in opposite order, so neither side always runs on a warm or
# a cold server
python3 bench/serve-client.py concurrent "http://127.0.0.1:$LP" "$CLIENTS" "$CTOK" > "$T/cl.json"
python3 bench/serve-client.py concurrent "http://127.0.0.1:$DP" "$CLIENTS" "$CTOK" > "$T/cd.json"
python3 bench/serve-client.py concurrent "http://127.0.0.1:$DP" "$CLIENTS" "$CTOK" > "$T/cd2.json"
python3 bench/serve-client.py concurrent "http://127.0.0.1:$LP" "$CLIENTS" "$CTOK" > "$T/cl2.json"
LOADED=$(hwm_kb $LPID)
AFTER=$(rss_kb $LPID)

python3 - "$T" "$IDLE" "$LOADED" "$AFTER" "$ROUNDS" "$MAXTOK" "$CLIENTS" "$CTOK" <<'PY'
import json, sys
t, idle, hwm, after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rounds, maxtok, clients, ctok = sys.argv[5:9]
alt = json.load(open(t + "/alt.json"))
passes = [(json.load(open(t + "/cl.json")), json.load(open(t + "/cd.json")), "lemon first"),
          (json.load(open(t + "/cl2.json")), json.load(open(t + "/cd2.json")), "direct first")]
a, b = alt["a"], alt["b"]
print("| metric | lemon | direct llama-server | lemon/direct |")
print("|---|---|---|---|")
print("| decode tokens/s (median of %s, %s tokens) | %.1f | %.1f | %.3fx |" % (
    rounds, maxtok, a["tokens_per_s_median"], b["tokens_per_s_median"],
    a["tokens_per_s_median"] / b["tokens_per_s_median"]))
print("| time to first token, median ms | %.2f | %.2f | %+.2f ms |" % (
    a["ttft_ms_median"], b["ttft_ms_median"], a["ttft_ms_median"] - b["ttft_ms_median"]))
pr = json.load(open(t + "/paired.json"))
print("| paired, %d alternating requests: response head, median ms | %.2f | %.2f | %+.2f ms |" % (
    pr["n"], pr["a_head_ms"], pr["b_head_ms"], pr["a_head_ms"] - pr["b_head_ms"]))
print("| paired: first content chunk, median ms (median of paired differences) | %.2f | %.2f | %+.2f ms |" % (
    pr["a_content_ms"], pr["b_content_ms"], pr["added_content_ms"]))
for cl, cd, order in passes:
    print("| %s concurrent streams (%s tokens, %s): errors | %d | %d | |" % (
        clients, ctok, order, cl["errors"], cd["errors"]))
    print("| %s concurrent streams (%s): aggregate tokens/s | %.1f | %.1f | %.3fx |" % (
        clients, order, cl["chunks_per_s"], cd["chunks_per_s"], cl["chunks_per_s"] / cd["chunks_per_s"]))
    print("| %s concurrent streams (%s): wall s | %.2f | %.2f | |" % (
        clients, order, cl["wall_s"], cd["wall_s"]))
cl, cd = passes[0][0], passes[0][1]
print()
print("lemon RSS: idle (model loaded, no request) %.1f MiB; peak during the concurrent run %.1f MiB; after %.1f MiB" % (
    idle / 1024, hwm / 1024, after / 1024))
if cl["first_errors"] or cd["first_errors"]:
    print("\nfirst errors: lemon %s; direct %s" % (cl["first_errors"], cd["first_errors"]))
PY
