#!/bin/sh
# Hostile HTTP clients against a real `lemon serve` (issue 9 items 1, 4, 6
# and --api-key-file); no model needs to load, so the backend is /bin/true:
#  browser-*   a page's cross-origin text/plain POST /api/v1/delete (and
#              DELETE /api/delete, a form POST /api/pull) is refused and the
#              model stays listed;
#              a foreign or "null" Origin gets 403 JSON; a rebinding Host
#              gets 403 JSON on /api/v1/system-info; no CORS headers by
#              default, only for a --cors-origin origin (preflight too)
#  trickle     300 connections from 127.0.0.1 trickle header lines: the
#              per-client cap answers 503 JSON with Retry-After, a health
#              probe from 127.0.0.2 answers within 2 s, and a trickled
#              connection gets 408 JSON at the head deadline
#  malformed-* bad Content-Length (-1, +5), an over-long request line, too
#              many headers, HTTP/2.0, NUL or a control byte in
#              Authorization, obs-fold, Content-Length with chunked: exactly
#              one response head each, with a JSON body
#  paths       an error body does not carry the absolute data directory
#  protocol    pipelined requests, a chunked body, Expect: 100-continue
#              and HEAD still work; an error answered after a HEAD on the
#              same connection keeps its body
#  key-file    --api-key-file: the key works and is not in the command line
# Prints "ok NAME" or "FAIL NAME: why"; exits non-zero on any failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
T=$(mktemp -d /tmp/lemon-hhttp.XXXXXX)
FAILS=0
LPID=
. tests/integration/lib.sh

cleanup() {
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
need_lemon

export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
unset LEMON_API_KEY LEMON_API_KEY_FILE LEMON_PORT LEMON_HOST LEMON_BACKEND LEMON_CORS_ORIGIN
export LEMON_LLAMA_SERVER_CPU=/bin/true

python3 tests/tools/make-tiny-gguf.py --out "$T/tiny.gguf" > /dev/null &&
	"$LEMON" pull --file "$T/tiny.gguf" tiny > /dev/null ||
	{ echo "FAIL setup: importing the tiny model"; exit 1; }

# start_lemon LOG ARGS...: lemon serve on a free port, URL and PORT set
start_lemon() {
	log=$1
	shift
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	: > "$log"
	"$LEMON" serve --backend cpu --port "$PORT" "$@" > "$log" 2>&1 &
	LPID=$!
	i=0
	while [ $i -lt 100 ]; do
		grep -q "listening on" "$log" && return 0
		kill -0 "$LPID" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

stop_lemon() {
	kill -TERM "$LPID" 2>/dev/null
	wait "$LPID" 2>/dev/null
	LPID=
}

# hcurl NAME ARGS...: status in $T/NAME.code, body $T/NAME.body, head
# $T/NAME.head
hcurl() {
	n=$1
	shift
	curl -s -m 10 -o "$T/$n.body" -D "$T/$n.head" -w '%{http_code}' "$@" > "$T/$n.code"
}
code_of() { cat "$T/$1.code"; }
listed() { [ "$(curl -s -m 10 "$URL/v1/models" | jq '[.data[].id] | index("tiny") != null')" = true ]; }
openai_err() { jq -e '.error.message | type == "string"' "$T/$1.body" > /dev/null 2>&1; }
ollama_err() { jq -e '.error | type == "string"' "$T/$1.body" > /dev/null 2>&1; }

# the head deadline and the per-client cap through the environment, so that
# an older lemon without the flags still starts and shows what it does
if ! LEMON_HEADER_TIMEOUT=4 LEMON_MAX_CONNS_PER_CLIENT=64 start_lemon "$T/l1.log"; then
	echo "FAIL setup: lemon serve did not start: $(cat "$T/l1.log")"
	exit 1
fi

# --- browser: a page the user visits cannot drive the server -------------
name=browser-cross-origin-delete
hcurl d1 -X POST -H 'Origin: http://evil.example' -H 'Content-Type: text/plain' \
	-d '{"model_name":"tiny"}' "$URL/api/v1/delete"
hcurl d2 -X POST -H 'Content-Type: text/plain' -d '{"model_name":"tiny"}' "$URL/api/v1/delete"
hcurl d3 -X DELETE -H 'Content-Type: text/plain' -d '{"name":"tiny"}' "$URL/api/delete"
hcurl d4 -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
	-d '{"name":"nothing-here"}' "$URL/api/pull"
if [ "$(code_of d1)" = 403 ] && openai_err d1 && [ "$(code_of d2)" = 415 ] && openai_err d2 &&
   [ "$(code_of d3)" = 415 ] && ollama_err d3 && [ "$(code_of d4)" = 415 ] && ollama_err d4 && listed &&
   kill -0 "$LPID" 2>/dev/null; then
	ok $name
else
	fail $name "codes $(code_of d1) $(code_of d2) $(code_of d3) $(code_of d4); listed: $(listed && echo yes || echo no)"
fi

name=browser-foreign-origin
hcurl o1 -H 'Origin: http://evil.example' "$URL/v1/models"
hcurl o2 -H 'Origin: http://evil.example' "$URL/api/tags"
hcurl o3 -H 'Origin: null' "$URL/api/v1/health"
hcurl o4 -H "Origin: http://127.0.0.1:$PORT" "$URL/api/v1/health"
hcurl o5 -H "Origin: http://localhost:$PORT" "$URL/api/v1/health"
if [ "$(code_of o1)" = 403 ] && openai_err o1 && [ "$(code_of o2)" = 403 ] && ollama_err o2 &&
   [ "$(code_of o3)" = 403 ] && openai_err o3 && [ "$(code_of o4)" = 200 ] &&
   [ "$(code_of o5)" = 200 ]; then
	ok $name
else
	fail $name "codes $(code_of o1) $(code_of o2) $(code_of o3) $(code_of o4) $(code_of o5)"
fi

name=browser-rebinding-host
hcurl h1 -H 'Host: evil.example' "$URL/api/v1/system-info"
hcurl h2 -H "Host: evil.example:$PORT" "$URL/api/tags"
hcurl h3 -H "Host: localhost:$PORT" "$URL/api/v1/system-info"
hcurl h4 -H "Host: 127.0.0.5" "$URL/api/v1/health"
hcurl h5 -H "Host: [::1]:$PORT" "$URL/api/v1/health"
hcurl h6 -H "Host: app.localhost:$PORT" "$URL/api/v1/health"
if [ "$(code_of h1)" = 403 ] && openai_err h1 && [ "$(code_of h2)" = 403 ] && ollama_err h2 &&
   [ "$(code_of h3)" = 200 ] && [ "$(code_of h4)" = 200 ] && [ "$(code_of h5)" = 200 ] &&
   [ "$(code_of h6)" = 200 ]; then
	ok $name
else
	fail $name "codes $(code_of h1) $(code_of h2) $(code_of h3) $(code_of h4) $(code_of h5) $(code_of h6)"
fi

name=browser-no-cors-by-default
hcurl c1 "$URL/v1/models"
hcurl c2 -H "Origin: http://127.0.0.1:$PORT" "$URL/v1/models"
hcurl c3 -X OPTIONS -H 'Origin: http://app.example' -H 'Access-Control-Request-Method: POST' \
	"$URL/v1/chat/completions"
if [ "$(code_of c1)" = 200 ] && [ "$(code_of c2)" = 200 ] && [ "$(code_of c3)" = 403 ] &&
   openai_err c3 && ! grep -qi '^access-control-allow-origin' "$T/c1.head" "$T/c2.head" "$T/c3.head"; then
	ok $name
else
	fail $name "codes $(code_of c1) $(code_of c2) $(code_of c3); $(grep -hi '^access-control' "$T"/c?.head)"
fi

# --- error bodies keep the data directory to themselves ------------------
name=paths
hcurl p1 -X POST -H 'Content-Type: application/json' -d '{"model_name":"absent"}' \
	"$URL/api/v1/delete"
if [ "$(code_of p1)" = 404 ] && openai_err p1 && ! grep -q "$T" "$T/p1.body"; then
	ok $name
else
	fail $name "$(code_of p1) $(cat "$T/p1.body")"
fi

# --- malformed requests: one response head, a JSON body ------------------
cat > "$T/raw.py" <<'PY'
import re, socket, sys
port, out = int(sys.argv[1]), sys.argv[2]
H = b"Host: 127.0.0.1\r\n"
cases = {
    "cl-negative": b"POST /v1/completions HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n",
    "cl-plus": b"POST /v1/completions HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello",
    "long-line": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n",
    "many-headers": b"GET /api/v1/health HTTP/1.1\r\n" + H +
        b"".join(b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n",
    "http2": b"GET /api/v1/health HTTP/2.0\r\n" + H + b"\r\n",
    "nul-auth": b"GET /v1/models HTTP/1.1\r\n" + H + b"Authorization: Bearer a\x00b\r\n\r\n",
    "ctl-auth": b"GET /api/tags HTTP/1.1\r\n" + H + b"Authorization: Bearer a\x01b\r\n\r\n",
    "obs-fold": b"GET /api/v1/health HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n",
    "cl-and-te": b"POST /v1/completions HTTP/1.1\r\n" + H +
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}
for name, req in cases.items():
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(8)
    try:
        s.sendall(req)
    except OSError:
        pass
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except OSError:
        pass
    s.close()
    heads = len(re.findall(rb"HTTP/1\.[01] [0-9]{3} ", data))
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ")[1].decode() if head.startswith(b"HTTP/1.") else "none"
    open("%s/%s.body" % (out, name), "wb").write(body)
    print(name, heads, status)
PY
python3 "$T/raw.py" "$PORT" "$T" > "$T/raw.out" 2>&1
for c in cl-negative:400 cl-plus:400 long-line:414 many-headers:431 http2:505 nul-auth:400 \
	ctl-auth:400 obs-fold:400 cl-and-te:400; do
	n=${c%%:*} st=${c#*:}
	line=$(grep "^$n " "$T/raw.out")
	if [ "$line" = "$n 1 $st" ] && jq -e 'has("error")' "$T/$n.body" > /dev/null 2>&1; then
		ok "malformed-$n"
	else
		fail "malformed-$n" "'$line' body: $(head -c 200 "$T/$n.body" 2>/dev/null)"
	fi
done
if jq -e '.error | type == "string"' "$T/ctl-auth.body" > /dev/null 2>&1 &&
   jq -e '.error.code == "uri_too_long"' "$T/long-line.body" > /dev/null 2>&1; then
	ok malformed-shapes
else
	fail malformed-shapes "$(cat "$T/ctl-auth.body" "$T/long-line.body" 2>/dev/null | head -c 300)"
fi

# --- what the rewrite must keep: pipelining, chunked bodies, Expect, HEAD --
cat > "$T/proto.py" <<'PY'
import socket, sys
port = int(sys.argv[1])
def talk(req, expect_continue=None):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(8)
    if expect_continue is None:
        s.sendall(req)
    else:
        s.sendall(req)
        first = s.recv(4096)
        if not first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"):
            return b"no 100: " + first
        s.sendall(expect_continue)
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except OSError as e:
        return b"after %d bytes: %s" % (len(data), repr(e).encode())
    return data
H = b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
r = talk(b"GET /api/v1/health HTTP/1.1\r\n" + H + b"\r\n" +
         b"GET /api/tags HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
print("pipelined", r.count(b"HTTP/1.1 200 OK"), b'"models"' in r and r.index(b'"status"') < r.index(b'"models"'))
r = talk(b"POST /api/show HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
         b"5\r\n{\"mod\r\nA\r\nel\":\"xyz\"}\r\n0\r\n\r\n")
print("chunked", r.split(b" ")[1].decode(), b"'xyz'" in r)
# a chunk one byte longer than declared ends in a bare LF: refused (400),
# as the children's answers are, never read as the next chunk
r = talk(b"POST /api/show HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
         b"5\r\n{\"mod\r\nB\r\nel\":\"xyz\"}\r\n0\r\n\r\n")
print("chunk-miscount", r.split(b" ")[1].decode())
body = b'{"model":"xyz"}'
r = talk(b"POST /api/show HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: %d\r\n"
         b"Connection: close\r\n\r\n" % len(body), body)
print("expect", r.split(b" ")[1].decode(), b"'xyz'" in r)
r = talk(b"HEAD /api/v1/health HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
head, _, rest = r.partition(b"\r\n\r\n")
print("head", head.split(b" ")[1].decode(), b"Content-Length: " in head and rest == b"")
# a HEAD, then on the same connection a request refused before routing (no
# Host): the refusal keeps its body, as its Content-Length says
r = talk(b"HEAD /api/v1/health HTTP/1.1\r\n" + H + b"\r\n" + b"GET /api/v1/health HTTP/1.1\r\n\r\n")
_, _, rest = r.partition(b"\r\n\r\n")
head, _, body = rest.partition(b"\r\n\r\n")
cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
print("head-then-error", head.split(b" ")[1].decode() if head.startswith(b"HTTP/1.1 ") else "none",
      len(cl) == 1 and int(cl[0].split(b":")[1]) == len(body) and b'"error"' in body)
PY
name=protocol
python3 "$T/proto.py" "$PORT" > "$T/proto.out" 2>&1
if [ "$(cat "$T/proto.out" | tr '\n' ' ')" = "pipelined 2 True chunked 404 True chunk-miscount 400 expect 404 True head 200 True head-then-error 400 True " ]; then
	ok $name
else
	fail $name "$(cat "$T/proto.out" | tr '\n' ' ')"
fi

# --- header trickle from one address; a probe from another ---------------
cat > "$T/trickle.py" <<'PY'
import json, socket, sys, threading, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks, refused, timed_out, bodies = [], 0, 0, []
for i in range(n):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(s)
    except OSError:
        pass
print("connected", len(socks), flush=True)
end = time.time() + 9
while time.time() < end and socks:
    time.sleep(1.5)
    for s in list(socks):
        try:
            s.settimeout(0.01)
            d = s.recv(65536)
        except socket.timeout:
            d = None
        except OSError:
            d = b""
        if d is None:
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                pass
            continue
        socks.remove(s)
        head, _, body = d.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 503") and b"Retry-After:" in head:
            refused += 1
        elif head.startswith(b"HTTP/1.1 408"):
            timed_out += 1
            bodies.append(body)
        s.close()
ok408 = all(json.loads(b)["error"]["code"] == "request_timeout" for b in bodies) if bodies else False
print("refused", refused, "timed_out", timed_out, "json408", ok408, "left", len(socks), flush=True)
PY
name=trickle
python3 "$T/trickle.py" "$PORT" 300 > "$T/trickle.out" 2>&1 &
tp=$!
sleep 2
probes=0
for i in 1 2 3; do
	c=$(curl -s -m 2 -o /dev/null -w '%{http_code}' --interface 127.0.0.2 "$URL/api/v1/health")
	[ "$c" = 200 ] && probes=$((probes + 1))
	sleep 0.5
done
wait $tp
set -- $(tail -n 1 "$T/trickle.out")
# the per-client cap (64) refuses the rest at once; the 64 get 408 after
# the 4 s head deadline although they keep sending
if [ $probes = 3 ] && [ "${1:-}" = refused ] && [ "$2" -ge 200 ] && [ "$4" -ge 50 ] &&
   [ "$6" = True ] && [ "$8" = 0 ]; then
	ok $name
else
	fail $name "probes $probes/3; $(cat "$T/trickle.out" | tr '\n' ' ')"
fi
stop_lemon

# --- CORS for a named origin; the key from a file ------------------------
name=browser-cors-origin
printf 'file-key-123\n' > "$T/key"
if start_lemon "$T/l2.log" --cors-origin 'http://app.example, http://other.example' \
	--api-key-file "$T/key"; then
	hcurl k1 -H 'Authorization: Bearer file-key-123' -H 'Origin: http://app.example' "$URL/v1/models"
	hcurl k2 -X OPTIONS -H 'Origin: http://other.example' -H 'Access-Control-Request-Method: POST' \
		"$URL/v1/chat/completions"
	hcurl k3 -H 'Authorization: Bearer file-key-123' -H 'Origin: http://evil.example' "$URL/v1/models"
	if [ "$(code_of k1)" = 200 ] && grep -qi '^access-control-allow-origin: http://app.example' "$T/k1.head" &&
	   [ "$(code_of k2)" = 204 ] && grep -qi '^access-control-allow-origin: http://other.example' "$T/k2.head" &&
	   [ "$(code_of k3)" = 403 ] && ! grep -qi '^access-control' "$T/k3.head"; then
		ok $name
	else
		fail $name "codes $(code_of k1) $(code_of k2) $(code_of k3)"
	fi
	name=key-file
	hcurl k4 "$URL/v1/models"
	hcurl k5 -H 'Authorization: Bearer file-key-12' "$URL/v1/models"
	if [ "$(code_of k1)" = 200 ] && [ "$(code_of k4)" = 401 ] && [ "$(code_of k5)" = 401 ] &&
	   ! tr '\0' ' ' < "/proc/$LPID/cmdline" | grep -q file-key-123; then
		ok $name
	else
		fail $name "codes $(code_of k1) $(code_of k4) $(code_of k5)"
	fi
	stop_lemon
else
	fail $name "lemon serve did not start: $(cat "$T/l2.log")"
fi

[ $FAILS -eq 0 ] || exit 1
