#!/bin/sh
# Hostile review of this session's routes and the worker endpoint, against
# a real lemon serve and a real `lemon worker` (real rpc-server from the
# CPU bundle) over loopback:
# - GET /api/v1/plans lists a stored model whose header cannot be read
#   with the reason, but never with lemon's data directory in it (error
#   messages are cleaned of data paths everywhere else), nor does GET
#   /api/v1/logs;
# - the worker's endpoint (GET /api/v1/worker) gives a client 2 s in all
#   for its request head: a client that drips a byte a second cannot hold
#   the one endpoint thread and hide the worker from its head;
# - a shutdown while POST /api/v1/backends/install downloads (slowed
#   mirror) stops the install: lemon exits within a few seconds (not after
#   its 10 s limit for busy connections), and the bundle that was being
#   installed is not installed; the stream's last event is the install's
#   error with code "cancelled" saying the server is shutting down (it was
#   cut before it, so a client could not tell a shutdown from a network
#   cut), and the .part stays for the next install to resume;
# - the same for pulls: a shutdown while POST /api/v1/pull (SSE) and
#   Ollama's POST /api/pull (NDJSON) download from a slowed loopback
#   Hugging Face-style mirror ends both streams with their cancel event
#   (lemon's error with code "cancelled", Ollama's {"error"}), the .part
#   files kept, and lemon exits within a few seconds;
# - a backend install's staging directory (backends/.staging, where the
#   bundle is unpacked as it arrives) does not outlive the install: gone
#   after the cancelled install above (it stayed beside the .part), and
#   one left by an install killed mid-download (SIGKILL) is removed by the
#   next install before it begins, even one that then fails at once (its
#   manifest unreachable); the next complete install succeeds from the
#   kept .part and leaves none;
# - model names never start with '-' (nor '.'): every route that takes a
#   model (OpenAI chat, Anthropic messages, Ollama chat, pull and delete in
#   both flavours) answers 400 in its own error shape naming the rule, and
#   an entry an older lemon stored as -rf.gguf is not served, not deleted
#   over HTTP, and removed by `lemon rm -- -rf`.
# Prints "ok NAME" or "FAIL NAME: why"; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/lemon-hsess.XXXXXX)
FAILS=0
LPID=
MPID=
WPID=
DPID=
IPID=
HPID=
KEY=hostile-key

. tests/integration/lib.sh

cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null
	[ -n "$IPID" ] && kill "$IPID" 2>/dev/null
	[ -n "$WPID" ] && kill "$WPID" 2>/dev/null && wait "$WPID" 2>/dev/null
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	[ -n "$HPID" ] && kill "$HPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { echo "ok $1"; }
fail() {
	echo "FAIL $1: $2"
	FAILS=$((FAILS + 1))
}

need_lemon
need_bundle
start_bundle_mirror_vulkan
export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND LEMON_WORKERS
# a stored model that is not a GGUF
mkdir -p "$T/data/lemon/models"
printf 'this is not a gguf header, only text that is long enough\n' > "$T/data/lemon/models/broken.gguf"
# an entry an older lemon accepted under a name that reads as an option
printf 'stored by an older lemon\n' > "$T/data/lemon/models/-rf.gguf"

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$LEMON" serve --port "$PORT" --backend cpu --mirror "$MIRROR" --api-key "$KEY" \
	--sysroot tests/fixtures/cpu-vm > "$T/lemon.log" 2>&1 &
LPID=$!
i=0
while [ $i -lt 300 ] && ! grep -q "listening on" "$T/lemon.log" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
grep -q "listening on" "$T/lemon.log" || { echo "FAIL setup: lemon serve: $(tail -n 3 "$T/lemon.log")"; exit 1; }

# --- plans: the broken model is listed with its reason, no data path
code=$(curl -s -o "$T/plans" -w '%{http_code}' -H "Authorization: Bearer $KEY" "$URL/api/v1/plans")
if [ "$code" != 200 ] || ! jq -e '.data[] | select(.id == "broken") | .plan == null' "$T/plans" > /dev/null; then
	fail plans_lists_broken_model "status $code: $(head -c 300 "$T/plans")"
elif grep -q "$T" "$T/plans"; then
	fail plans_hide_data_dir "$(jq -c '.data[] | select(.id == "broken")' "$T/plans")"
else
	ok plans_hide_data_dir
fi

# --- the log stream names no data path either
curl -s -m 2 -H "Authorization: Bearer $KEY" "$URL/api/v1/logs" > "$T/logs"
if ! grep -q 'backend cpu' "$T/logs"; then
	fail logs_hide_data_dir "no 'backend cpu' line: $(head -c 300 "$T/logs")"
elif grep -q "$T" "$T/logs"; then
	fail logs_hide_data_dir "$(grep "$T" "$T/logs" | head -n 1)"
else
	ok logs_hide_data_dir
fi

# --- model names starting with '-': 400 in each route's shape, naming the
# rule; the legacy entry stays until `lemon rm -- -rf`
dash() { # NAME METHOD PATH BODY JQ-CHECK
	code=$(curl -s -o "$T/dash" -w '%{http_code}' -X "$2" -H "Authorization: Bearer $KEY" \
		-H 'Content-Type: application/json' -H 'anthropic-version: 2023-06-01' -d "$4" "$URL$3")
	if [ "$code" = 400 ] && jq -e "$5" "$T/dash" > /dev/null 2>&1; then
		ok "$1"
	else
		fail "$1" "status $code: $(head -c 300 "$T/dash")"
	fi
}
MSG='{"role":"user","content":"hi"}'
RULE="test(\"invalid model name '(-rf|--help)'.*not starting with '-'\")"
dash dash_name_openai_chat POST /v1/chat/completions "{\"model\":\"-rf\",\"messages\":[$MSG]}" \
	".error.code == \"invalid_model_name\" and (.error.message | $RULE)"
dash dash_name_anthropic POST /v1/messages "{\"model\":\"--help\",\"max_tokens\":8,\"messages\":[$MSG]}" \
	".type == \"error\" and (.error.message | $RULE)"
dash dash_name_ollama_chat POST /api/chat "{\"model\":\"-rf\",\"messages\":[$MSG]}" ".error | $RULE"
# the pull and delete routes answer every bad argument as invalid_value
dash dash_name_pull POST /api/v1/pull '{"model_name":"--help"}' \
	".error.code == \"invalid_value\" and (.error.message | $RULE)"
dash dash_name_ollama_pull POST /api/pull '{"model":"-rf"}' ".error | $RULE"
dash dash_name_delete POST /api/v1/delete '{"model_name":"-rf"}' \
	".error.code == \"invalid_value\" and (.error.message | $RULE)"
dash dash_name_ollama_delete DELETE /api/delete '{"model":"-rf"}' ".error | $RULE"
if [ -e "$T/data/lemon/models/-rf.gguf" ] && "$LEMON" rm -- -rf > "$T/rm.out" 2>&1 &&
	[ ! -e "$T/data/lemon/models/-rf.gguf" ]; then
	ok dash_name_legacy_rm
else
	fail dash_name_legacy_rm "$(cat "$T/rm.out" 2>/dev/null; ls -a "$T/data/lemon/models")"
fi

# --- the worker endpoint against a client that drips its request head
# both ports picked free (the endpoint's default, port + 1, was not
# checked: once it was taken, 'Address already in use')
WP=$(free_port)
AP=$(free_port)
while [ "$AP" = "$WP" ]; do AP=$(free_port); done
"$LEMON" worker --port "$WP" --api-port "$AP" --backend cpu > "$T/worker.log" 2>&1 &
WPID=$!
i=0
while [ $i -lt 200 ] && ! grep -q "worker on" "$T/worker.log" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
if ! grep -q "worker on" "$T/worker.log"; then
	fail worker_started "$(tail -n 3 "$T/worker.log")"
else
	# one byte a second, never ending the head, for 10 s
	python3 - "$AP" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for b in b"GET /api/v1/worker HTTP/1.1\r\nX-Slow: aaaa":
    try:
        s.send(bytes([b]))
    except OSError:
        break
    time.sleep(1)
PY
	DPID=$!
	sleep 0.5
	t0=$(date +%s)
	code=$(curl -s -m 6 -o "$T/w" -w '%{http_code}' "http://127.0.0.1:$AP/api/v1/worker")
	t1=$(date +%s)
	if [ "$code" = 200 ] && jq -e '.lemon_worker == 1' "$T/w" > /dev/null && [ $((t1 - t0)) -le 4 ]; then
		ok worker_endpoint_head_deadline
	else
		fail worker_endpoint_head_deadline "status $code after $((t1 - t0)) s while a client dripped its head"
	fi
fi

# --- shutdown during an install from a slowed mirror (llamacpp:vulkan is
# the CPU bundle under the Vulkan asset's name, start_bundle_mirror_vulkan)
echo '{"rate": 200000}' > "$T/mctl"
curl -s -N -m 30 -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	-d '{"name":"llamacpp:vulkan"}' "$URL/api/v1/backends/install" > "$T/inst" &
IPID=$!
i=0
while [ $i -lt 100 ] && ! grep -q '"downloading"' "$T/inst" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
t0=$(date +%s)
kill -TERM "$LPID"
wait "$LPID"
lrc=$?
t1=$(date +%s)
LPID=
wait "$IPID"
last=$(grep '^data: ' "$T/inst" | tail -n 1 | cut -c 7-)
# 7 s: the stop's flush window for streams is 3 s of its 10 s limit, and
# this 2-core CI machine runs the ASan build too; waiting out the 10 s
# limit (what a stuck download did) still fails
if ! grep -q '"downloading"' "$T/inst"; then
	fail shutdown_stops_install "no download started: $(head -c 300 "$T/inst")"
elif [ $((t1 - t0)) -gt 7 ]; then
	fail shutdown_stops_install "lemon took $((t1 - t0)) s to exit during an install"
elif grep -q "still busy" "$T/lemon.log"; then
	fail shutdown_stops_install "$(grep "still busy" "$T/lemon.log")"
elif echo "$last" | jq -e '.status == "success"' > /dev/null 2>&1; then
	fail shutdown_stops_install "the install went on to the end: $last"
elif [ -d "$T/data/lemon/backends/llamacpp-vulkan-v0.5.0" ]; then
	fail shutdown_stops_install "the bundle was installed"
else
	ok shutdown_stops_install
fi
# a clean exit (0: every connection ended within the stop limit; an
# ASan or UBSan report would make it non-zero)
if [ "$lrc" -eq 0 ]; then
	ok shutdown_install_exit_status
else
	fail shutdown_install_exit_status "lemon exited with $lrc: $(tail -n 3 "$T/lemon.log")"
fi
# the client is told: the stream's last event is the cancel, not a cut
if echo "$last" | jq -e '.name == "llamacpp:vulkan" and .error.code == "cancelled" and
	.error.type == "server_error" and (.error.message | test("shutting down.*cancelled"))' > /dev/null 2>&1; then
	ok shutdown_install_final_event
else
	fail shutdown_install_final_event "the stream's last event: $last"
fi
if [ -s "$T/data/lemon/backends/.downloads/llama-$(jq -r .version "$BUNDLE/manifest.json")-bin-ubuntu-vulkan-x64.tar.gz.part" ]; then
	ok shutdown_install_part_kept
else
	fail shutdown_install_part_kept "$(ls -la "$T/data/lemon/backends/.downloads" 2>&1)"
fi

if [ ! -e "$T/data/lemon/backends/.staging" ]; then
	ok shutdown_install_no_staging
else
	fail shutdown_install_no_staging "$(find "$T/data/lemon/backends/.staging" | head -n 5)"
fi

# --- shutdown during two pulls (lemon's SSE and Ollama's NDJSON) from a
# slowed Hugging Face-style mirror: each stream's last event is its cancel
HUB=$T/hub
python3 tests/tools/hf-mirror.py make "$HUB" --big-mb 16 --registry "$T/models.json" > /dev/null ||
	{ echo "FAIL setup: hf-mirror.py make"; exit 1; }
# big2: the same file under a second name, so the two pulls do not share
# one lock
jq '.models += [(.models[] | select(.name == "big") | .name = "big2")]' "$T/models.json" > "$T/m2.json" &&
	mv "$T/m2.json" "$T/models.json"
echo '{"rate": 1000000}' > "$T/hctl"
python3 tests/tools/hf-mirror.py serve "$HUB" --control "$T/hctl" > "$T/hport" 2> "$T/hub.log" &
HPID=$!
i=0
while [ ! -s "$T/hport" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
HF_ENDPOINT=http://127.0.0.1:$(head -n 1 "$T/hport") LEMON_MODELS_JSON=$T/models.json \
	"$LEMON" serve --port "$PORT" --backend cpu --api-key "$KEY" \
	--sysroot tests/fixtures/cpu-vm > "$T/lemon2.log" 2>&1 &
LPID=$!
i=0
while [ $i -lt 300 ] && ! grep -q "listening on" "$T/lemon2.log" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
curl -s -N -m 30 -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	-d '{"model_name":"big"}' "$URL/api/v1/pull" > "$T/pull_sse" &
P1=$!
curl -s -N -m 30 -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	-d '{"model":"big2"}' "$URL/api/pull" > "$T/pull_nd" &
P2=$!
i=0
while [ $i -lt 100 ] && ! { grep -q '"completed"' "$T/pull_sse" && grep -q '"completed"' "$T/pull_nd"; } 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
t0=$(date +%s)
kill -TERM "$LPID"
wait "$LPID"
lrc=$?
t1=$(date +%s)
LPID=
wait "$P1" "$P2"
kill "$HPID" 2>/dev/null
last=$(grep '^data: ' "$T/pull_sse" | tail -n 1 | cut -c 7-)
lastnd=$(tail -n 1 "$T/pull_nd")
if ! grep -q '"completed"' "$T/pull_sse" || ! grep -q '"completed"' "$T/pull_nd"; then
	fail shutdown_pull_setup "the pulls did not start: $(tail -c 300 "$T/pull_sse") $(tail -c 300 "$T/pull_nd")"
elif [ $((t1 - t0)) -gt 7 ] || [ "$lrc" -ne 0 ] || grep -q "still busy" "$T/lemon2.log"; then
	fail shutdown_pull_exit "lemon exited with $lrc after $((t1 - t0)) s during two pulls: $(tail -n 2 "$T/lemon2.log")"
else
	ok shutdown_pull_exit
fi
if echo "$last" | jq -e '.error.code == "cancelled" and .error.type == "server_error" and
	(.error.message | test("shutting down.*big.*cancelled"))' > /dev/null 2>&1; then
	ok shutdown_pull_sse_final_event
else
	fail shutdown_pull_sse_final_event "the stream's last event: $last"
fi
if echo "$lastnd" | jq -e '.error | test("shutting down.*big2.*cancelled")' > /dev/null 2>&1; then
	ok shutdown_pull_ollama_final_event
else
	fail shutdown_pull_ollama_final_event "the stream's last line: $lastnd"
fi
M=$T/data/lemon/models
if [ -s "$M/.pull-big/big.gguf.part" ] && [ -s "$M/.pull-big2/big.gguf.part" ] &&
	[ ! -e "$M/big.gguf" ] && [ ! -e "$M/big2.gguf" ]; then
	ok shutdown_pull_part_kept
else
	fail shutdown_pull_part_kept "$(ls -la "$M" "$M"/.pull-* 2>&1 | head -n 20)"
fi

# --- an install killed mid-download leaves its staging directory; the
# next install removes it before it begins, even one that fails at once
B=$T/data/lemon/backends
V=$(jq -r .version "$BUNDLE/manifest.json")
STAGE=$B/.staging/llamacpp-vulkan-$V
echo '{"rate": 300000}' > "$T/mctl"
"$LEMON" install-backend llamacpp:vulkan --force --mirror "$MIRROR" --progress none \
	--sysroot tests/fixtures/cpu-vm > "$T/kill.out" 2>&1 &
KPID=$!
i=0
while [ $i -lt 100 ] && [ -z "$(ls -A "$STAGE" 2>/dev/null)" ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -KILL "$KPID"
wait "$KPID" 2>/dev/null
if [ -z "$(ls -A "$STAGE" 2>/dev/null)" ]; then
	fail killed_install_setup "no unpacked file in $STAGE before the kill: $(cat "$T/kill.out")"
else
	echo '{"not_found": ["manifest.json"]}' > "$T/mctl"
	"$LEMON" install-backend llamacpp:vulkan --force --mirror "$MIRROR" --progress none \
		--sysroot tests/fixtures/cpu-vm > "$T/next.out" 2>&1
	rc=$?
	if [ $rc -ne 0 ] && [ ! -e "$B/.staging" ] && grep -q "left by an install that did not end" "$T/next.out"; then
		ok killed_install_staging_cleared
	else
		fail killed_install_staging_cleared "rc $rc, $(find "$B/.staging" 2>&1 | head -n 3): $(tail -n 3 "$T/next.out")"
	fi
	echo '{}' > "$T/mctl"
	# the install's smoke test loads the smallest stored model: not the
	# unreadable one the plans check used
	rm -f "$T/data/lemon/models/broken.gguf"
	if "$LEMON" install-backend llamacpp:vulkan --force --mirror "$MIRROR" --progress none \
		--sysroot tests/fixtures/cpu-vm > "$T/last.out" 2>&1 &&
		[ -x "$B/llamacpp-vulkan-$V/llama-$V/llama-server" ] &&
		[ ! -e "$B/.staging" ] && [ -z "$(ls -A "$B/.downloads")" ]; then
		ok killed_install_then_complete
	else
		fail killed_install_then_complete "$(tail -n 3 "$T/last.out"); $(find "$B" -maxdepth 2 | head -n 12)"
	fi
fi

[ "$FAILS" -eq 0 ] || exit 1
