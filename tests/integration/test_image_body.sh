#!/bin/sh
# Request body limits and images: a base64 photo makes a chat body
# megabytes long, so the routes whose bodies carry images (OpenAI chat,
# Responses, Anthropic messages, Ollama chat and generate) take up to
# --max-image-body (32 MiB by default) while every other route keeps
# --max-body (1 MiB). Against a real lemon serve and the real CPU
# llama-server started with a vision projector (tests/tools/
# make-tiny-mmproj.py): a 5 MiB image request answered on /v1/chat/completions
# and /api/chat, a body above the image limit refused 413 in each API's own
# error shape, a 2 MiB body on a route without images refused 413, and
# LEMON_MAX_IMAGE_BODY / --max-image-body honoured and checked.
# Prints "ok NAME" or "FAIL NAME: why"; exits non-zero on any failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/lemon-imgbody.XXXXXX)
FAILS=0
MPID=
LPID=

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
MODEL=$BUILD/models/tiny.gguf
[ -f "$MODEL" ] || python3 tests/tools/make-tiny-gguf.py --out "$MODEL" > /dev/null ||
	{ echo "FAIL setup: make-tiny-gguf.py"; exit 1; }
start_bundle_mirror

export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND
unset LEMON_MAX_BODY LEMON_MAX_IMAGE_BODY
python3 tests/tools/make-tiny-mmproj.py --out "$T/proj.gguf" > /dev/null ||
	{ echo "FAIL setup: make-tiny-mmproj.py"; exit 1; }
"$LEMON" pull --file "$MODEL" --mmproj "$T/proj.gguf" eye > /dev/null ||
	{ echo "FAIL setup: pull eye"; exit 1; }

# a noise PNG (it does not compress) whose base64 is about 5 MiB: a phone
# photo's size; the child decodes it and scales it to the projector's 16x16
python3 - "$T" <<'EOF' || { echo "FAIL setup: png"; exit 1; }
import base64, os, struct, sys, zlib
t = sys.argv[1]
w = h = 1150
raw = b"".join(b"\0" + os.urandom(w * 3) for _ in range(h))
def chunk(k, d):
    return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))
b64 = base64.b64encode(png).decode()
part = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64}}
import json
msgs = [{"role": "user", "content": [{"type": "text", "text": "what is this"}, part]}]
json.dump({"model": "eye", "max_tokens": 2, "messages": msgs}, open(t + "/oai.json", "w"))
json.dump({"model": "eye", "stream": False, "options": {"num_predict": 2},
           "messages": [{"role": "user", "content": "what is this", "images": [b64]}]},
          open(t + "/oll.json", "w"))
# above 32 MiB: seven such images in one message
big = [{"role": "user", "content": [{"type": "text", "text": "x"}] + [part] * 7}]
json.dump({"model": "eye", "max_tokens": 2, "messages": big}, open(t + "/big-oai.json", "w"))
json.dump({"model": "eye", "max_tokens": 2, "messages": big}, open(t + "/big-ant.json", "w"))
json.dump({"model": "eye", "stream": False,
           "messages": [{"role": "user", "content": "x", "images": [b64] * 7}]},
          open(t + "/big-oll.json", "w"))
# 2 MiB on routes whose bodies never carry images
pad = "a" * (2 << 20)
json.dump({"model": "eye", "input": pad}, open(t + "/embed.json", "w"))
json.dump({"model": "eye", "pad": pad}, open(t + "/show.json", "w"))
json.dump({"model_name": "eye", "pad": pad}, open(t + "/load.json", "w"))
EOF

start_lemon() { # LOG ARGS...
	log=$1
	shift
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	"$LEMON" serve --port "$PORT" --backend cpu --mirror "$MIRROR" "$@" > "$log" 2>&1 &
	LPID=$!
	i=0
	while [ $i -lt 600 ] && ! grep -q "listening on" "$log" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	grep -q "listening on" "$log" || { echo "FAIL setup: lemon serve: $(tail -n 3 "$log")"; exit 1; }
}
stop_lemon() {
	kill "$LPID" 2>/dev/null
	wait "$LPID" 2>/dev/null
	LPID=
}
postf() { # path file -> body, status on the last line
	curl -s -m 60 -H 'Content-Type: application/json' -H 'Expect:' -w '\n%{http_code}' \
		"$URL$1" --data-binary "@$2"
}
code() { tail -n 1 "$1"; }
body() { sed '$d' "$1"; }
size() { stat -c %s "$1"; }

start_lemon "$T/l1.log" --idle-timeout 300

name=five_mib_image_answered
printf '%s' '{"model":"eye","max_tokens":2,"messages":[{"role":"user","content":"what is this"}]}' > "$T/text.json"
postf /v1/chat/completions "$T/text.json" > "$T/r0"
postf /v1/chat/completions "$T/oai.json" > "$T/r1"
postf /api/chat "$T/oll.json" > "$T/r2"
n0=$(body "$T/r0" | jq '.usage.prompt_tokens' 2>/dev/null)
# (the image's tokens count only when the child decoded it)
if [ "$(size "$T/oai.json")" -gt $((5 << 20)) ] && [ "$(size "$T/oai.json")" -lt $((6 << 20)) ] &&
   [ "$(code "$T/r1")" = 200 ] && body "$T/r1" | jq -e ".usage.prompt_tokens > ${n0:-999999}" > /dev/null &&
   [ "$(code "$T/r2")" = 200 ] && body "$T/r2" | jq -e ".prompt_eval_count > ${n0:-999999}" > /dev/null; then
	ok $name
else
	fail $name "$(size "$T/oai.json") bytes: $(tail -c 300 "$T/r1") / $(tail -c 300 "$T/r2")"
fi

# above the image limit: 413, in the route's own error shape
name=above_image_limit_413_in_api_shape
postf /v1/chat/completions "$T/big-oai.json" > "$T/b1"
postf /api/chat "$T/big-oll.json" > "$T/b2"
postf /v1/messages "$T/big-ant.json" > "$T/b3"
# a chunked body is counted as it is decoded
curl -s -m 60 -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' -o "$T/b4" \
	-w '%{http_code}' "$URL/api/generate" --data-binary "@$T/big-oll.json" > "$T/b4c"
if [ "$(size "$T/big-oai.json")" -gt $((32 << 20)) ] &&
   [ "$(code "$T/b1")" = 413 ] && body "$T/b1" | jq -e '.error.message | type == "string"' > /dev/null &&
   [ "$(code "$T/b2")" = 413 ] && body "$T/b2" | jq -e '.error | type == "string"' > /dev/null &&
   [ "$(code "$T/b3")" = 413 ] && body "$T/b3" | jq -e '.type == "error" and (.error.type | type == "string")' > /dev/null &&
   [ "$(cat "$T/b4c")" = 413 ] && jq -e '.error | type == "string"' "$T/b4" > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/b1") / $(cat "$T/b2") / $(cat "$T/b3") / $(cat "$T/b4c") $(cat "$T/b4")"
fi

# every route without images keeps the small limit
name=two_mib_on_other_routes_413
postf /v1/embeddings "$T/embed.json" > "$T/o1"
postf /api/show "$T/show.json" > "$T/o2"
postf /api/v1/load "$T/load.json" > "$T/o3"
if [ "$(code "$T/o1")" = 413 ] && [ "$(code "$T/o2")" = 413 ] && [ "$(code "$T/o3")" = 413 ] &&
   body "$T/o2" | jq -e '.error | type == "string"' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/o1") / $(cat "$T/o2") / $(cat "$T/o3")"
fi

# a client that writes its whole body before it reads (Python's
# http.client, most simple clients) still gets the 413: lemon drains the
# refused body until the client's FIN instead of closing with it arriving
# (before: a reset after 256 KiB, BrokenPipeError for 7 of 10 posts)
name=naive_client_reads_413
if python3 - "$PORT" > "$T/naive" 2>&1 <<'PY'
import http.client, sys
port = int(sys.argv[1])
bad = 0
for path, size, n in (("/v1/embeddings", 3 << 20, 6), ("/v1/chat/completions", 40 << 20, 3)):
    for _ in range(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = b'{"model":"tiny","input":"' + b"a" * size + b'"}'
        try:
            c.request("POST", path, body, {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 413:
                bad += 1
                print(path, "status", r.status)
        except OSError as e:
            bad += 1
            print(path, type(e).__name__, e)
        c.close()
sys.exit(1 if bad else 0)
PY
then
	ok $name
else
	fail $name "$(tail -n 3 "$T/naive")"
fi

# the image limit is a setting: 4 MiB refuses the 5 MiB image, the small
# limit still applies elsewhere; a value out of range is refused at start
name=image_limit_configurable
stop_lemon
LEMON_MAX_IMAGE_BODY=4194304 start_lemon "$T/l2.log"
postf /v1/chat/completions "$T/oai.json" > "$T/c1"
stop_lemon
"$LEMON" serve --port "$(free_port)" --max-image-body 12 > "$T/c2" 2>&1
rc=$?
if [ "$(code "$T/c1")" = 413 ] && [ $rc = 2 ] && grep -q 'max_image_body' "$T/c2"; then
	ok $name
else
	fail $name "$(cat "$T/c1"); exit $rc: $(cat "$T/c2")"
fi

[ $FAILS -eq 0 ] || exit 1
