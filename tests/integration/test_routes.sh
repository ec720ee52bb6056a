#!/bin/sh
# Integration tests of the route table and the forwarded routes (issue 13)
# against a real lemon serve over the real llama-server CPU bundle and the
# tiny model: Lemonade's four prefixes (/api/v0, /api/v1, /v0, /v1), 405
# for a path served under another method, GET /live (without the key;
# every other route still needs it), GET /v1/models/{id}
# from lemon's own list, the OpenAI Responses API (whole and streamed, the
# stream ending with response.completed), Anthropic's Messages API (x-api-key
# as the key, anthropic-version ignored, errors in Anthropic's shape, the
# stream ending with message_stop) and count_tokens, rerank over a child
# started with --reranking, and one status for one error code whatever the
# route's shape (a model too large for the machine: 503 on the OpenAI and
# the Ollama route). Prints "ok NAME" or "FAIL NAME: why"; exits non-zero
# on failure. The key is checked from the request head, before a body is
# read (a 32 MiB declared body without the key: 401 at once, no memory).
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/lemon-routes.XXXXXX)
FAILS=0
MPID=
LPID=
KEY=routes-key

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
"$LEMON" pull --file "$MODEL" tiny > /dev/null || { echo "FAIL setup: pull tiny"; exit 1; }
# a 70B-class f16 header in a sparse file of its full size: the memory plan
# refuses it on the cpu-vm fixture (7941 MiB of RAM) before any child starts
python3 - "$T/huge.gguf" <<'PY'
import struct, sys
def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b
kvs = [s("general.architecture") + struct.pack("<I", 8) + s("llama")]
for k, v in (("block_count", 80), ("context_length", 4096), ("embedding_length", 8192),
             ("attention.head_count", 64), ("attention.head_count_kv", 8)):
    kvs.append(s("llama." + k) + struct.pack("<II", 4, v))
tensors, off = [], 0
for i in range(80):
    tensors.append(s("blk.%d.ffn_up.weight" % i) + struct.pack("<IQQIQ", 2, 8192, 28672, 1, off))
    off += 8192 * 28672 * 2
out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(tensors)
out += b"\0" * (-len(out) % 32)
with open(sys.argv[1], "wb") as f:
    f.write(out)
    f.truncate(len(out) + off)
PY
"$LEMON" pull --file "$T/huge.gguf" huge > /dev/null 2>&1 || { echo "FAIL setup: pull huge"; exit 1; }

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$LEMON" serve --port "$PORT" --backend cpu --mirror "$MIRROR" --api-key "$KEY" \
	--sysroot tests/fixtures/cpu-vm > "$T/lemon.log" 2>&1 &
LPID=$!
i=0
while [ $i -lt 600 ] && ! grep -q "listening on" "$T/lemon.log"; do
	sleep 0.1
	i=$((i + 1))
done
grep -q "listening on" "$T/lemon.log" || { echo "FAIL setup: lemon serve: $(tail -n 3 "$T/lemon.log")"; exit 1; }

# the body, then the status on the last line
req() { # method path [data] [extra curl args...]
	m=$1 p=$2
	shift 2
	if [ $# -ge 1 ]; then
		d=$1
		shift
		curl -s -m 60 -X "$m" -H 'Content-Type: application/json' -H "Authorization: Bearer $KEY" \
			-w '\n%{http_code}' "$@" "$URL$p" -d "$d"
	else
		curl -s -m 60 -X "$m" -H "Authorization: Bearer $KEY" -w '\n%{http_code}' "$URL$p"
	fi
}
code() { tail -n 1 "$1"; }
body() { sed '$d' "$1"; }

CHAT='{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4}'

name=lemonade_prefixes
n=0
for pre in /api/v0 /api/v1 /v0 /v1; do
	req POST "$pre/chat/completions" "$CHAT" > "$T/p"
	req GET "$pre/models" > "$T/m"
	req GET "$pre/health" > "$T/h"
	[ "$(code "$T/p")" = 200 ] && body "$T/p" | jq -e '.choices[0].message.role == "assistant"' > /dev/null &&
		[ "$(code "$T/m")" = 200 ] && body "$T/m" | jq -e '[.data[].id] | index("tiny") != null' > /dev/null &&
		[ "$(code "$T/h")" = 200 ] && n=$((n + 1))
done
if [ $n = 4 ]; then ok $name; else fail $name "$n of 4 prefixes: $(cat "$T/p" "$T/m" | head -c 300)"; fi

name=post_route_under_get_is_405
req GET /api/v1/chat/completions > "$T/g1"
req GET /api/chat > "$T/g2"
if [ "$(code "$T/g1")" = 405 ] && body "$T/g1" | jq -e '.error.code == "method_not_allowed"' > /dev/null &&
   [ "$(code "$T/g2")" = 405 ] && body "$T/g2" | jq -e '.error | type == "string"' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/g1" "$T/g2" | tr '\n' ' ')"
fi

# liveness probes carry no key: /live answers without it and says nothing
# but that the server lives; every other route (the web app's static
# files aside, open as before) still needs the key, /live under a prefix too
name=live_without_key_only
curl -s -D "$T/lh" -w '\n%{http_code}' "$URL/live" > "$T/l"
hl=$(curl -s -o /dev/null -I -w '%{http_code}' "$URL/live")
bad=
for r in "GET /v1/models" "GET /v1/models/tiny" "GET /api/v1/health" "GET /api/v1/system-info" \
	"GET /api/v1/stats" "GET /api/v1/logs" "GET /api/v1/plans" "GET /api/v1/plans/tiny" \
	"GET /api/v1/backends" "GET /metrics" "GET /" "GET /api/version" "GET /api/tags" "GET /api/ps" \
	"GET /api/v1/live" "GET /v1/live" "GET /live/x" \
	"POST /v1/chat/completions" "POST /v1/completions" "POST /v1/embeddings" "POST /v1/responses" \
	"POST /v1/rerank" "POST /v1/reranking" "POST /v1/reranker" "POST /v1/messages" \
	"POST /v1/messages/count_tokens" "POST /api/v1/backends/install" "POST /api/v1/load" \
	"POST /api/v1/unload" "POST /api/v1/shutdown" "POST /api/v1/pull" "POST /api/v1/delete" \
	"POST /api/chat" "POST /api/generate" "POST /api/show" "POST /api/embed" "POST /api/embeddings" \
	"POST /api/pull" "DELETE /api/delete" "POST /live"; do
	set -- $r
	c=$(curl -s -o /dev/null -m 10 -X "$1" -H 'Content-Type: application/json' -d '{}' \
		-w '%{http_code}' "$URL$2")
	[ "$c" = 401 ] || bad="$bad $r=$c"
done
if [ "$(code "$T/l")" = 200 ] && [ "$(body "$T/l")" = '{"status":"ok"}' ] && [ "$hl" = 200 ] &&
   [ -z "$bad" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "$URL/live")" = 200 ]; then
	ok $name
else
	fail $name "/live $(cat "$T/l" | tr '\n' ' '), HEAD $hl; not 401:$bad"
fi

# the key is checked from the request head: a client without it that
# declares a 32 MiB image body (the chat routes' limit) is answered 401 in
# the route's shape at once, before it sends a byte of the body (and never
# gets a 100 Continue), with Connection: close; 16 such clients each
# sending 2 MiB of body anyway do not grow lemon's memory. With the key,
# the same head gets its 100 Continue and a real chat still answers 200.
cat > "$T/head.py" <<'PY'
import json, socket, sys, threading, time
port, pid, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
BIG = 32 << 20
def rss_kib():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
def head(path, extra=b"", length=BIG):
    return (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n" % (path.encode(), length, extra))
def answer(s, timeout):
    """the first response (head and its Content-Length body), or what came"""
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            d = s.recv(65536)
            if not d:
                break
            data += d
        h, _, body = data.partition(b"\r\n\r\n")
        cl = [l for l in h.split(b"\r\n") if l.lower().startswith(b"content-length:")]
        n = int(cl[0].split(b":")[1]) if cl else 0
        while len(body) < n:
            d = s.recv(65536)
            if not d:
                break
            body += d
        return h, body
    except OSError:
        return data.partition(b"\r\n\r\n")[0], b""
def refused(path, extra, shape):
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.time()
    s.sendall(head(path, extra))
    h, body = answer(s, 3)
    dt = time.time() - t0
    s.close()
    try:
        j = json.loads(body)
    except ValueError:
        j = None
    shaped = j is not None and shape(j)
    return (h.startswith(b"HTTP/1.1 401 ") and b"\r\nConnection: close" in h and shaped
            and dt < 2), "%s %.2fs %r" % (h.split(b"\r\n")[0], dt, body[:120])
checks = [
    ("/v1/chat/completions", b"", lambda j: j["error"]["code"] == "invalid_api_key"),
    ("/api/v1/chat/completions", b"Expect: 100-continue\r\n",
     lambda j: j["error"]["code"] == "invalid_api_key"),
    ("/v1/messages", b"Expect: 100-continue\r\n",
     lambda j: j["type"] == "error" and j["error"]["type"] == "authentication_error"),
    ("/api/chat", b"", lambda j: isinstance(j["error"], str)),
]
res = [refused(*c) for c in checks]
print("refused", all(r[0] for r in res), "; ".join(r[1] for r in res))
# many clients without the key, each sending 2 MiB of its declared body
before = rss_kib()
socks = []
def push(s):
    s.settimeout(3)
    try:
        s.sendall(head("/v1/chat/completions"))
        chunk = b"x" * 65536
        for _ in range(32):
            s.sendall(chunk)
    except OSError:
        pass
threads = []
for i in range(16):
    s = socket.create_connection(("127.0.0.1", port))
    socks.append(s)
    t = threading.Thread(target=push, args=(s,))
    t.start()
    threads.append(t)
for t in threads:
    t.join()
time.sleep(0.5)
grew = rss_kib() - before
for s in socks:
    s.close()
print("rss_growth_kib", grew, grew < 8192)
# with the key: the same head gets its 100 Continue (the body is wanted)
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(3)
s.sendall(head("/v1/chat/completions", b"Authorization: Bearer %s\r\nExpect: 100-continue\r\n"
               % key.encode()))
try:
    first = s.recv(4096)
except OSError:
    first = b""
s.close()
print("keyed_continue", first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"))
# and a real chat with the key, its body sent after the 100
body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
                   "max_tokens": 4}).encode()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(head("/v1/chat/completions", b"Authorization: Bearer %s\r\nExpect: 100-continue\r\n"
               b"Connection: close\r\n" % key.encode(), len(body)))
h, _ = answer(s, 5)
ok100 = h.startswith(b"HTTP/1.1 100 Continue")
s.sendall(body)
h, b = answer(s, 60)
s.close()
print("keyed_chat", ok100 and h.startswith(b"HTTP/1.1 200 ") and b'"choices"' in b)
PY
name=key_checked_before_body
python3 "$T/head.py" "$PORT" "$LPID" "$KEY" > "$T/head.out" 2>&1
lc=$(curl -s -o /dev/null -m 10 -w '%{http_code}' "$URL/live")
if grep -q '^refused True ' "$T/head.out" && grep -q '^rss_growth_kib -\?[0-9]* True$' "$T/head.out" &&
   grep -qx 'keyed_continue True' "$T/head.out" && grep -qx 'keyed_chat True' "$T/head.out" &&
   [ "$lc" = 200 ] && kill -0 "$LPID" 2>/dev/null; then
	ok $name
else
	fail $name "$(tr '\n' ' ' < "$T/head.out"); /live $lc"
fi

name=model_by_id
req GET /v1/models/tiny > "$T/m1"
req GET /api/v1/models/nope > "$T/m2"
if [ "$(code "$T/m1")" = 200 ] && body "$T/m1" | jq -e '.id == "tiny" and .object == "model"' > /dev/null &&
   [ "$(code "$T/m2")" = 404 ] && body "$T/m2" | jq -e '.error.code == "model_not_found"' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/m1" "$T/m2" | tr '\n' ' ')"
fi

name=responses_whole_and_streamed
req POST /v1/responses '{"model":"tiny","input":"hi","max_output_tokens":4}' > "$T/r1"
curl -s -N -m 60 -H 'Content-Type: application/json' -H "Authorization: Bearer $KEY" "$URL/v1/responses" \
	-d '{"model":"tiny","input":"hi","max_output_tokens":4,"stream":true}' > "$T/r2"
last=$(grep '^event: ' "$T/r2" | tail -n 1)
if [ "$(code "$T/r1")" = 200 ] && body "$T/r1" | jq -e '.object == "response" and .status == "completed" and (.output | length > 0)' > /dev/null &&
   grep -q '^event: response.created' "$T/r2" && [ "$last" = "event: response.completed" ]; then
	ok $name
else
	fail $name "$(head -c 300 "$T/r1"); last event '$last'"
fi

name=anthropic_messages
# Anthropic's SDK sends its key as x-api-key and an anthropic-version
curl -s -m 60 -H 'Content-Type: application/json' -H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01' \
	-w '\n%{http_code}' "$URL/v1/messages" \
	-d '{"model":"tiny","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}' > "$T/a1"
curl -s -N -m 60 -H 'Content-Type: application/json' -H "x-api-key: $KEY" "$URL/v1/messages" \
	-d '{"model":"tiny","max_tokens":4,"stream":true,"messages":[{"role":"user","content":"hi"}]}' > "$T/a2"
curl -s -m 60 -H 'Content-Type: application/json' -H "x-api-key: $KEY" -w '\n%{http_code}' \
	"$URL/v1/messages/count_tokens" -d '{"model":"tiny","messages":[{"role":"user","content":"hi there"}]}' > "$T/a3"
last=$(grep '^event: ' "$T/a2" | tail -n 1)
if [ "$(code "$T/a1")" = 200 ] && body "$T/a1" | jq -e '.type == "message" and .role == "assistant" and .content[0].type == "text"' > /dev/null &&
   [ "$last" = "event: message_stop" ] && grep -q '^event: message_start' "$T/a2" &&
   [ "$(code "$T/a3")" = 200 ] && body "$T/a3" | jq -e '.input_tokens > 0' > /dev/null; then
	ok $name
else
	fail $name "$(head -c 300 "$T/a1"); last '$last'; $(cat "$T/a3")"
fi

name=anthropic_error_shape
curl -s -m 60 -H 'Content-Type: application/json' -H 'x-api-key: wrong' -w '\n%{http_code}' \
	"$URL/v1/messages" -d '{"model":"tiny","max_tokens":4,"messages":[]}' > "$T/e1"
req POST /v1/messages '{"model":"tiny","max_tokens":4}' > "$T/e2"
req POST /v1/messages '{"model":"nope","max_tokens":4,"messages":[{"role":"user","content":"x"}]}' > "$T/e3"
if [ "$(code "$T/e1")" = 401 ] && body "$T/e1" | jq -e '.type == "error" and .error.type == "authentication_error"' > /dev/null &&
   [ "$(code "$T/e2")" = 400 ] && body "$T/e2" | jq -e '.type == "error" and .error.type == "invalid_request_error" and (.error.message | test("messages"))' > /dev/null &&
   [ "$(code "$T/e3")" = 404 ] && body "$T/e3" | jq -e '.type == "error" and .error.type == "not_found_error"' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/e1" "$T/e2" "$T/e3" | tr '\n' ' ')"
fi

name=rerank_three_documents
req POST /v1/rerank '{"model":"tiny","query":"a cat","documents":["the cat sat","dogs bark","blue sky"]}' > "$T/k1"
req POST /api/v1/reranking '{"model":"tiny","query":"a cat","documents":["the cat sat","dogs bark","blue sky"]}' > "$T/k2"
# the rerank child runs with --reranking, the chat child with --jinja only
pid=$(req GET /api/v1/health | sed '$d' | jq -r '.loaded[] | select(.role == "rerank") | .pid')
cpid=$(req GET /api/v1/health | sed '$d' | jq -r '.loaded[] | select(.role == "chat") | .pid')
if [ "$(code "$T/k1")" = 200 ] &&
   body "$T/k1" | jq -e '(.results | length == 3) and ([.results[].index] | sort == [0,1,2]) and
	([.results[].relevance_score] as $s | $s == ($s | sort | reverse)) and
	(.results | all(.relevance_score | type == "number"))' > /dev/null &&
   [ "$(code "$T/k2")" = 200 ] && [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- " --reranking" &&
   [ -n "$cpid" ] && tr '\0' ' ' < "/proc/$cpid/cmdline" | grep -q -- " --jinja" &&
   ! tr '\0' ' ' < "/proc/$cpid/cmdline" | grep -q -- " --reranking"; then
	ok $name
else
	fail $name "$(cat "$T/k1" "$T/k2" | tr '\n' ' '); pids '$pid' '$cpid'"
fi

name=one_status_per_error_code
req POST /v1/chat/completions '{"model":"huge","messages":[{"role":"user","content":"hi"}]}' > "$T/s1"
req POST /api/chat '{"model":"huge","messages":[{"role":"user","content":"hi"}],"stream":false}' > "$T/s2"
if [ "$(code "$T/s1")" = 503 ] && [ "$(code "$T/s2")" = 503 ] &&
   body "$T/s2" | jq -e '.error | test("needs about")' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/s1" "$T/s2" | tr '\n' ' ')"
fi

[ "$FAILS" -eq 0 ]
