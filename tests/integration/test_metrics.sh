#!/bin/sh
# Integration tests of GET /metrics (issue 13) against a real lemon serve
# over the real llama-server CPU bundle and the tiny model: behind the API
# key, valid Prometheus text (promtool check metrics, Debian's prometheus
# package), lemon_requests_total moving by exactly the requests made (under
# every Lemonade prefix, named by the route), tokens and latency histograms
# per model, the loaded children, a killed child counted as a restart, and
# each child's own llama-server metrics
# re-exported with model and role labels, and every backend install the
# server makes counted: the first run's, a real install through POST
# /api/v1/backends/install from the loopback mirror (in progress while it
# runs, completed, failed, bytes), an install resumed by a new process
# (only the bytes it downloaded), and a fallback candidate's bundle the
# supervisor installs on the first request. Prints "ok NAME" or "FAIL NAME:
# why"; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/lemon-metrics.XXXXXX)
FAILS=0
MPID=
LPID=
KEY=metrics-key

. tests/integration/lib.sh

cleanup() {
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

need_lemon
need_bundle
command -v promtool > /dev/null || { echo "FAIL setup: promtool missing (scripts/install-deps.sh installs prometheus)"; exit 1; }
MODEL=$BUILD/models/tiny.gguf
[ -f "$MODEL" ] || python3 tests/tools/make-tiny-gguf.py --out "$MODEL" > /dev/null ||
	{ echo "FAIL setup: make-tiny-gguf.py"; exit 1; }
start_bundle_mirror_vulkan

export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND
"$LEMON" pull --file "$MODEL" tiny > /dev/null || { echo "FAIL setup: pull tiny"; exit 1; }
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$LEMON" serve --port "$PORT" --backend cpu --mirror "$MIRROR" --api-key "$KEY" > "$T/lemon.log" 2>&1 &
LPID=$!
i=0
while [ $i -lt 600 ] && ! grep -q "listening on" "$T/lemon.log" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
grep -q "listening on" "$T/lemon.log" || { echo "FAIL setup: lemon serve: $(tail -n 3 "$T/lemon.log")"; exit 1; }

chat() { # path [stream]
	curl -s -o /dev/null -w '%{http_code}\n' -m 60 -H 'Content-Type: application/json' \
		-H "Authorization: Bearer $KEY" "$URL$1" \
		-d "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4${2:-}}"
}
scrape() { curl -s -m 30 -H "Authorization: Bearer $KEY" "$URL/metrics"; }
# the value of the sample whose name and labels are exactly $1, 0 if none
value() { awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$2"; }

name=behind_the_key
if [ "$(curl -s -o "$T/k" -w '%{http_code}' "$URL/metrics")" = 401 ] && jq -e '.error.code == "invalid_api_key"' "$T/k" > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/k")"
fi

name=requests_counted_exactly
N=5
scrape > "$T/m0"
i=0
while [ $i -lt $N ]; do
	chat /v1/chat/completions >> "$T/codes"
	i=$((i + 1))
done
chat /api/v1/chat/completions ',"stream":true' >> "$T/codes"
chat /v1/chat/completions ',"messages":3' >> "$T/codes"
scrape > "$T/m1"
k='lemon_requests_total{route="/v1/chat/completions",code="200"}'
b='lemon_requests_total{route="/v1/chat/completions",code="400"}'
if [ "$(value "$k" "$T/m0")" = 0 ] && [ "$(value "$k" "$T/m1")" = $((N + 1)) ] &&
   [ "$(value "$b" "$T/m1")" = 1 ] && [ "$(grep -c '^200$' "$T/codes")" = $((N + 1)) ] &&
   [ "$(value 'lemon_requests_total{route="/metrics",code="200"}' "$T/m1")" = 1 ] &&
   [ "$(value 'lemon_requests_total{route="/metrics",code="401"}' "$T/m1")" = 1 ]; then
	ok $name
else
	fail $name "before $(value "$k" "$T/m0"), after $(value "$k" "$T/m1"), 400s $(value "$b" "$T/m1"); $(grep '^lemon_requests_total' "$T/m1" | tr '\n' ' ')"
fi

name=promtool_check_metrics
if promtool check metrics < "$T/m1" > "$T/promtool.out" 2>&1; then
	ok $name
else
	fail $name "$(head -n 5 "$T/promtool.out")"
fi

name=tokens_latency_loaded_and_children
cnt=$(value 'lemon_time_to_first_token_seconds_count{model="tiny",backend="cpu"}' "$T/m1")
inf=$(value 'lemon_tokens_per_second_bucket{model="tiny",backend="cpu",le="+Inf"}' "$T/m1")
tin=$(value 'lemon_input_tokens_total{model="tiny"}' "$T/m1")
tout=$(value 'lemon_output_tokens_total{model="tiny"}' "$T/m1")
pred=$(value 'lemon_llamacpp_tokens_predicted_total{model="tiny",role="chat"}' "$T/m1")
if [ "$cnt" = $((N + 1)) ] && [ "$inf" = $((N + 1)) ] && [ "$tin" -gt 0 ] &&
   [ "$tout" -gt 0 ] && [ "$pred" = "$tout" ] &&
   [ "$(value 'lemon_model_loaded{model="tiny",role="chat",backend="cpu"}' "$T/m1")" = 1 ] &&
   grep -q '^# TYPE lemon_llamacpp_tokens_predicted_total counter$' "$T/m1"; then
	ok $name
else
	fail $name "ttft count $cnt, tps +Inf $inf, in $tin, out $tout, child predicted $pred"
fi

name=child_restart_counted
pid=$(curl -s -H "Authorization: Bearer $KEY" "$URL/api/v1/health" | jq -r '.loaded[] | select(.role == "chat") | .pid')
scrape > "$T/m2"
r='lemon_child_restarts_total{model="tiny",role="chat",backend="cpu"}'
kill -9 "$pid" 2>/dev/null
i=0
while [ $i -lt 50 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
c=$(chat /v1/chat/completions)
scrape > "$T/m3"
if [ -n "$pid" ] && [ "$(value "$r" "$T/m2")" = 0 ] && [ "$c" = 200 ] && [ "$(value "$r" "$T/m3")" = 1 ] &&
   promtool check metrics < "$T/m3" > /dev/null 2>&1; then
	ok $name
else
	fail $name "pid '$pid', before $(value "$r" "$T/m2"), after $(value "$r" "$T/m3"), chat $c"
fi

# a real install of the pinned llamacpp:vulkan bundle (the CPU build's
# bytes under its name, tests/integration/lib.sh) from the mirror, slowed
# to ~2 s so a scrape sees it running; then one whose bytes are tampered
# with, refused by its digest
install() { # NAME OUT
	curl -s -N -m 60 -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
		-d "{\"name\":\"$1\"}" "$URL/api/v1/backends/install" > "$2"
}
name=backend_installs_counted
ASSET=$(jq -r '.assets | keys[] | select(test("vulkan"))' "$T/mirror/manifest.json")
SIZE=$(jq --arg a "$ASSET" '.assets[$a].size' "$T/mirror/manifest.json")
CPU_ASSET=$(jq -r '.assets | keys[] | select(test("vulkan") | not)' "$T/mirror/manifest.json")
CPU_SIZE=$(jq --arg a "$CPU_ASSET" '.assets[$a].size' "$T/mirror/manifest.json")
scrape > "$T/m4"
echo '{"rate": 3000000}' > "$T/mctl"
install llamacpp:vulkan "$T/inst1" &
IPID=$!
i=0
while [ $i -lt 100 ] && ! grep -q '"downloading"' "$T/inst1"; do sleep 0.1; i=$((i + 1)); done
scrape > "$T/m5"
wait "$IPID"
scrape > "$T/m6"
echo '{"tamper": ["'"$ASSET"'"]}' > "$T/mctl"
install llamacpp:vulkan "$T/inst2"
rm -f "$T/mctl"
scrape > "$T/m7"
g=lemon_backend_installs_in_progress
c=lemon_backend_installs_completed_total
f=lemon_backend_installs_failed_total
by=lemon_backend_install_bytes_total
# the first run's install of llamacpp:cpu (nothing was installed in the
# fresh data directory) counts too: one completed, the CPU asset's bytes
if [ "$(value $g "$T/m4")" = 0 ] && [ "$(value $c "$T/m4")" = 1 ] && [ "$(value $f "$T/m4")" = 0 ] &&
   [ "$(value $by "$T/m4")" = "$CPU_SIZE" ] && [ "$(value $g "$T/m5")" = 1 ] &&
   sed -n 's/^data: //p' "$T/inst1" | tail -n 1 | jq -e '.status == "success"' > /dev/null &&
   [ "$(value $g "$T/m6")" = 0 ] && [ "$(value $c "$T/m6")" = 2 ] && [ "$(value $f "$T/m6")" = 0 ] &&
   [ "$(value $by "$T/m6")" = $((CPU_SIZE + SIZE)) ] &&
   sed -n 's/^data: //p' "$T/inst2" | tail -n 1 | jq -e '.error.message | test("sha256|digest|checksum"; "i")' > /dev/null &&
   [ "$(value $g "$T/m7")" = 0 ] && [ "$(value $c "$T/m7")" = 2 ] && [ "$(value $f "$T/m7")" = 1 ] &&
   promtool check metrics < "$T/m7" > /dev/null 2>&1; then
	ok $name
else
	fail $name "before $(grep '^lemon_backend_install' "$T/m4" | tr '\n' ' '); running $(grep '^lemon_backend_install' "$T/m5" | tr '\n' ' '); done $(grep '^lemon_backend_install' "$T/m6" | tr '\n' ' ') (size $SIZE); tampered $(grep '^lemon_backend_install' "$T/m7" | tr '\n' ' '): $(tail -c 300 "$T/inst2")"
fi

# an install that resumes a download an earlier process left: the first
# lemon serve is stopped (SIGTERM) while it installs llamacpp:vulkan from
# the slowed mirror, which keeps the .part; a new lemon serve on the same
# data directory installs it again, resuming from the .part, and counts
# only the bytes it downloaded itself: the asset's size less the .part's
name=resumed_install_bytes_counted_once
PART=$T/data/lemon/backends/.downloads/$ASSET.part
echo '{"rate": 1000000}' > "$T/mctl"
install llamacpp:vulkan "$T/inst3" &
IPID=$!
i=0
while [ $i -lt 100 ] && [ "$(stat -c %s "$PART" 2>/dev/null || echo 0)" -lt 500000 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -TERM "$LPID" 2>/dev/null
wait "$LPID"
LPID=
wait "$IPID"
rm -f "$T/mctl"
KEPT=$(stat -c %s "$PART" 2>/dev/null || echo 0)
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$LEMON" serve --port "$PORT" --backend cpu --mirror "$MIRROR" --api-key "$KEY" > "$T/lemon3.log" 2>&1 &
LPID=$!
i=0
while [ $i -lt 600 ] && ! grep -q "listening on" "$T/lemon3.log" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
scrape > "$T/m10"
install llamacpp:vulkan "$T/inst4"
scrape > "$T/m11"
if [ "$KEPT" -gt 0 ] && [ "$KEPT" -lt "$SIZE" ] && [ "$(value $by "$T/m10")" = 0 ] &&
   sed -n 's/^data: //p' "$T/inst4" | tail -n 1 | jq -e '.status == "success"' > /dev/null &&
   [ ! -e "$PART" ] && [ "$(value $g "$T/m11")" = 0 ] && [ "$(value $c "$T/m11")" = 1 ] &&
   [ "$(value $f "$T/m11")" = 0 ] && [ "$(value $by "$T/m11")" = $((SIZE - KEPT)) ] &&
   promtool check metrics < "$T/m11" > /dev/null 2>&1; then
	ok $name
else
	fail $name "kept $KEPT of $SIZE bytes; before $(grep '^lemon_backend_install' "$T/m10" | tr '\n' ' '); after $(grep '^lemon_backend_install' "$T/m11" | tr '\n' ' ') (want bytes $((SIZE - KEPT))): $(tail -c 300 "$T/inst4")"
fi

# a fallback candidate's bundle provisioned by the supervisor on the first
# request: a second lemon serve on a fresh data directory whose GPU
# candidates (ROCm, and Vulkan where this machine has it: a stand-in that
# exits at once) need no install, so
# llamacpp:cpu, not installed, is installed from the mirror when the chat
# falls back to it; that install moves completed by 1 and bytes by the
# CPU asset's size
name=fallback_install_counted
kill "$LPID" 2>/dev/null
wait "$LPID" 2>/dev/null
LPID=
mkdir -p "$T/fake-rocm"
printf '#!/bin/sh\necho "error: failed to load model"\nexit 1\n' > "$T/fake-rocm/llama-server"
chmod +x "$T/fake-rocm/llama-server"
XDG_DATA_HOME=$T/data2 "$LEMON" pull --file "$MODEL" tiny > /dev/null
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
XDG_DATA_HOME=$T/data2 LEMON_LLAMA_SERVER_ROCM=$T/fake-rocm/llama-server \
	LEMON_LLAMA_SERVER_VULKAN=$T/fake-rocm/llama-server "$LEMON" serve --port "$PORT" \
	--backend rocm --mirror "$MIRROR" --api-key "$KEY" > "$T/lemon2.log" 2>&1 &
LPID=$!
i=0
while [ $i -lt 600 ] && ! grep -q "listening on" "$T/lemon2.log" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
scrape > "$T/m8"
cc=$(chat /v1/chat/completions)
scrape > "$T/m9"
if [ "$(value $c "$T/m8")" = 0 ] && [ "$(value $by "$T/m8")" = 0 ] && [ "$cc" = 200 ] &&
   [ -d "$T/data2/lemon/backends" ] && grep -q '"llamacpp:cpu"' "$T/data2/lemon/backends/installed.json" &&
   grep -q "falling back to" "$T/lemon2.log" &&
   [ "$(value $g "$T/m9")" = 0 ] && [ "$(value $c "$T/m9")" = 1 ] && [ "$(value $f "$T/m9")" = 0 ] &&
   [ "$(value $by "$T/m9")" = "$CPU_SIZE" ] && promtool check metrics < "$T/m9" > /dev/null 2>&1; then
	ok $name
else
	fail $name "chat $cc; before $(grep '^lemon_backend_install' "$T/m8" | tr '\n' ' '); after $(grep '^lemon_backend_install' "$T/m9" | tr '\n' ' ') (cpu size $CPU_SIZE); $(tail -n 3 "$T/lemon2.log")"
fi

[ "$FAILS" -eq 0 ]
