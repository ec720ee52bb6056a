#!/bin/sh
# Integration tests of lemon's Ollama API against the real llama-server
# (the CPU bundle from scripts/build-backend.sh, provisioned on first run
# from tests/tools/mirror.py) and the tiny model: the official ollama npm
# client (tests/node/ollama.test.mjs: list, chat and generate streaming,
# embed, show, ps, version, pull and delete from a loopback Hugging
# Face-style mirror), NDJSON lines arriving as they are generated, Ollama's
# error shapes, and lemon's own /api/v1/pull (server-sent events) and
# /api/v1/delete. Prints "ok NAME" or "FAIL NAME: why"; exits non-zero on
# any failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
T=$(mktemp -d /tmp/lemon-ollama.XXXXXX)
FAILS=0
MPID=
HPID=
LPID=
KEY=ollama-key-1

. tests/integration/lib.sh

cleanup() {
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	[ -n "$HPID" ] && kill "$HPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

need_lemon
need_bundle
need_tiny_model
need_node_modules ollama

# wait_port FILE: the first line of FILE once a server has written it
wait_port() {
	i=0
	while [ ! -s "$1" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	head -n 1 "$1"
}

start_bundle_mirror
python3 tests/tools/hf-mirror.py make "$T/hub" --registry "$T/models.json" > /dev/null ||
	{ echo "FAIL setup: hf-mirror.py make"; exit 1; }
python3 tests/tools/hf-mirror.py serve "$T/hub" > "$T/hport" 2> "$T/hub.log" &
HPID=$!
HF_ENDPOINT=http://127.0.0.1:$(wait_port "$T/hport")

export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config HF_ENDPOINT
export LEMON_MODELS_JSON=$T/models.json
unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_LLAMA_SERVER_ROCM \
	LEMON_LLAMA_SERVER_VULKAN LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT

"$LEMON" pull --file "$MODEL" tiny > /dev/null 2>&1 || { echo "FAIL setup: lemon pull --file"; exit 1; }
"$LEMON" serve --port "$PORT" --mirror "$MIRROR" --api-key "$KEY" --backend cpu \
	--ctx-size 4096 > "$T/lemon.log" 2>&1 &
LPID=$!
i=0
while ! grep -q "listening on" "$T/lemon.log" && [ $i -lt 600 ]; do
	kill -0 "$LPID" 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
if ! grep -q "listening on" "$T/lemon.log"; then
	echo "FAIL setup: lemon serve did not come up: $(tail -n 5 "$T/lemon.log")"
	exit 1
fi

# curl with the key: body, then the status code on the last line
req() { # method path [data]
	if [ $# -ge 3 ]; then
		curl -s -H 'Content-Type: application/json' -m 60 -X "$1" -H "Authorization: Bearer $KEY" -w '\n%{http_code}' \
			"$URL$2" -d "$3"
	else
		curl -s -m 60 -X "$1" -H "Authorization: Bearer $KEY" -w '\n%{http_code}' "$URL$2"
	fi
}

name=ollama_node_client
if (cd tests/node && LEMON_URL=$URL LEMON_KEY=$KEY LEMON_MODEL=tiny LEMON_EMBD=64 \
	LEMON_PULL=tiny-split timeout 180 node --test ollama.test.mjs > "$T/node.out" 2>&1); then
	ok "$name ($(grep -c '^ok ' "$T/node.out") cases)"
else
	fail $name "$(grep -E '^not ok|Error|error' "$T/node.out" | head -n 8)"
fi

# each NDJSON line leaves lemon as the child produces it: the first piece
# of a 256-token answer arrives well before the last line, and every line
# is a JSON object of its own
name=ndjson_lines_stream_unbuffered
python3 - "$PORT" "$KEY" > "$T/timing" 2>&1 <<'EOF'
import json, socket, sys, time
port, key = int(sys.argv[1]), sys.argv[2]
body = json.dumps({"model": "tiny", "prompt": "Tell a long story",
                   "options": {"num_predict": 256, "temperature": 0}}).encode()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
          b"Content-Type: application/json\r\n"
          b"Authorization: Bearer " + key.encode() + b"\r\n"
          b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
f = s.makefile("rb")
head = b""
while not head.endswith(b"\r\n\r\n"):
    head += f.read(1)
assert b"application/x-ndjson" in head, head
times, lines, buf = [], [], b""
while True:
    size = f.readline().strip()
    n = int(size, 16)
    if n == 0:
        break
    buf += f.read(n)
    f.read(2)
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        times.append(time.monotonic())
        lines.append(json.loads(line))
assert not lines[0]["done"] and lines[0]["response"], lines[0]
assert lines[-1]["done"] and lines[-1]["eval_count"] >= 2, lines[-1]
assert all(not l["done"] for l in lines[:-1])
gap = times[-1] - times[0]
print(f"{len(lines)} lines over {gap * 1000:.0f} ms")
assert gap > 0.02, f"all lines within {gap * 1000:.1f} ms: buffered"
EOF
if [ $? -eq 0 ]; then
	ok "$name ($(cat "$T/timing"))"
else
	fail $name "$(tail -n 3 "$T/timing")"
fi

name=ollama_error_shapes
curl -s -w '\n%{http_code}' "$URL/api/tags" > "$T/e1"
req POST /api/chat '{"model":"nope","messages":[]}' > "$T/e2"
req POST /api/generate 'not json' > "$T/e3"
req POST /api/generate '{"prompt":"x"}' > "$T/e4"
req POST /api/chat '{"model":"../x","messages":[]}' > "$T/e5"
req GET /api/nothing > "$T/e6"
if [ "$(tail -n 1 "$T/e1")" = 401 ] && sed '$d' "$T/e1" | jq -e '.error | type == "string"' > /dev/null &&
   [ "$(tail -n 1 "$T/e2")" = 404 ] && sed '$d' "$T/e2" | jq -e '.error | test("not found")' > /dev/null &&
   [ "$(tail -n 1 "$T/e3")" = 400 ] && sed '$d' "$T/e3" | jq -e '.error | type == "string"' > /dev/null &&
   [ "$(tail -n 1 "$T/e4")" = 400 ] && sed '$d' "$T/e4" | jq -e '.error == "model is required"' > /dev/null &&
   [ "$(tail -n 1 "$T/e5")" = 400 ] &&
   [ "$(tail -n 1 "$T/e6")" = 404 ] && sed '$d' "$T/e6" | jq -e '.error | type == "string"' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/e1" "$T/e2" "$T/e3" "$T/e4" "$T/e5" "$T/e6" | tr '\n' ' ')"
fi

name=load_and_unload_by_empty_chat
req POST /api/chat '{"model":"tiny","messages":[],"keep_alive":0}' > "$T/u1"
req GET /api/ps > "$T/u2"
req POST /api/chat '{"model":"tiny:latest","messages":[]}' > "$T/u3"
req GET /api/ps > "$T/u4"
if sed '$d' "$T/u1" | jq -e '.done_reason == "unload" and .done' > /dev/null &&
   sed '$d' "$T/u2" | jq -e '[.models[] | select(.name == "tiny")] | length == 0' > /dev/null &&
   sed '$d' "$T/u3" | jq -e '.done_reason == "load" and .message.content == ""' > /dev/null &&
   sed '$d' "$T/u4" | jq -e '[.models[] | select(.name == "tiny")] | length == 1' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/u1" "$T/u2" "$T/u3" "$T/u4" | tr '\n' ' ')"
fi

name=v1_pull_sse_and_delete
curl -s -H 'Content-Type: application/json' -N -m 60 -H "Authorization: Bearer $KEY" "$URL/api/v1/pull" \
	-d '{"model_name":"tiny"}' > "$T/p1"
req POST /api/v1/delete '{"model_name":"tiny-split"}' > "$T/p2"
req POST /api/v1/pull '{"model_name":"bad","stream":false}' > "$T/p3"
if grep -q '^data: {"model":"tiny","status":"pulling manifest"' "$T/p1" &&
   grep '^data: ' "$T/p1" | tail -n 1 | sed 's/^data: //' | jq -e '.status == "success"' > /dev/null &&
   grep '^data: ' "$T/p1" | sed 's/^data: //' | jq -e -s 'map(select(.status == "downloading")) | length >= 1 and (last.completed == last.total)' > /dev/null &&
   [ "$(tail -n 1 "$T/p2")" = 404 ] &&
   [ "$(tail -n 1 "$T/p3")" = 400 ] && sed '$d' "$T/p3" | jq -e '.error.message | test("too large")' > /dev/null &&
   ! ls "$XDG_DATA_HOME/lemon/models" | grep -q '^bad'; then
	ok $name
else
	fail $name "$(tail -n 2 "$T/p1"; cat "$T/p2" "$T/p3" | tr '\n' ' ')"
fi

name=delete_unloads_and_removes
req POST /api/generate '{"model":"tiny","prompt":"hi","stream":false,"options":{"num_predict":2}}' > /dev/null
curl -s -H 'Content-Type: application/json' -m 30 -X DELETE -H "Authorization: Bearer $KEY" -w '\n%{http_code}' "$URL/api/delete" \
	-d '{"name":"tiny"}' > "$T/d1"
req GET /api/ps > "$T/d2"
req POST /api/chat '{"model":"tiny","messages":[{"role":"user","content":"x"}]}' > "$T/d3"
if [ "$(tail -n 1 "$T/d1")" = 200 ] &&
   sed '$d' "$T/d2" | jq -e '.models | length == 0' > /dev/null &&
   [ "$(tail -n 1 "$T/d3")" = 404 ] && [ ! -e "$XDG_DATA_HOME/lemon/models/tiny.gguf" ]; then
	ok $name
else
	fail $name "$(cat "$T/d1" "$T/d2" "$T/d3" | tr '\n' ' ')"
fi

kill -TERM "$LPID"
wait "$LPID"
rc=$?
LPID=
name=clean_shutdown
if [ $rc -eq 0 ]; then ok $name; else fail $name "exit $rc"; fi

[ $FAILS -eq 0 ]
