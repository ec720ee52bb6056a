#!/bin/sh
# A bounded soak of a real `lemon serve` with the tiny model on the real
# llama-server bundle (issue 9: "no crash and no leak: keep that"):
#  answers    SOAK_N (1500) mixed requests from 16 clients at once: health,
#             model lists, HEAD, pipelining, OpenAI and Ollama chats and
#             completions, embeddings, streams read to the end, streams the
#             client abandons (close, and reset), clients that leave before
#             the answer, mid-head, mid-body and mid-chunk disconnects,
#             malformed heads and refused bodies; every answer that arrives
#             has the expected status, framing and body
#  alive      afterwards health answers and no request is leased
#  threads    lemon's thread count is back to what it was before the soak
#  fds        and its descriptor count
#  fd-exhausted  lemon out of descriptors (its limit lowered while it
#             runs) when a request opens its socket to the child: 503, the
#             lease handed back, the healthy child neither reported dead nor
#             killed
#  fd-limit   under `ulimit -n 256`, idle connections that fill lemon's
#             descriptor table meet the connection cap (503), not a failed
#             socket to the child that had the healthy child killed
#  exit       SIGTERM ends lemon with status 0 and, under a sanitizer build,
#             no sanitizer report in its log
# Prints "ok NAME" or "FAIL NAME: why"; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
T=$(mktemp -d /tmp/lemon-hsoak.XXXXXX)
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
need_tiny_model
start_bundle_mirror

export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_LLAMA_SERVER_ROCM \
	LEMON_LLAMA_SERVER_VULKAN LEMON_API_KEY LEMON_API_KEY_FILE LEMON_PORT LEMON_HOST \
	LEMON_BACKEND LEMON_CORS_ORIGIN LEMON_MAX_CONNS LEMON_MAX_CONNS_PER_CLIENT
"$LEMON" pull --file "$MODEL" tiny > /dev/null || { echo "FAIL setup: pull tiny"; exit 1; }

# start_lemon LOG ARGS...: lemon serve on a free port (PORT, URL, LPID)
start_lemon() {
	log=$1
	shift
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	# NOFILE: the open file limit of this lemon only
	(if [ -n "${NOFILE:-}" ]; then ulimit -n "$NOFILE" || exit 1; fi
	 exec "$LEMON" serve --port "$PORT" --backend cpu --mirror "$MIRROR" "$@") > "$log" 2>&1 &
	LPID=$!
	i=0
	while ! grep -q "listening on" "$log" && [ $i -lt 600 ]; do
		kill -0 "$LPID" 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
}

# stops lemon: exit status 0 and no sanitizer report (name: the check)
stop_lemon() {
	kill -TERM "$LPID" 2>/dev/null
	wait "$LPID"
	rc=$?
	LPID=
	if [ $rc = 0 ] && ! grep -q -E "ERROR: (Address|Leak|Thread)Sanitizer|runtime error:" "$log"; then
		ok "$1"
	else
		fail "$1" "exit $rc $(grep -m 3 -E "Sanitizer|runtime error:" "$log")"
	fi
}

chat() {
	curl -s -m 60 -o /dev/null -w '%{http_code}' "$URL/v1/chat/completions" \
		-H 'Content-Type: application/json' \
		-d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}'
}
health() { curl -s -m 10 "$URL/api/v1/health"; }
pid_of_tiny() {
	health | jq -r '[.loaded[] | select(.role == "chat" and .state == "ready") | .pid][0] // ""'
}
counts() { echo "$(ls "/proc/$LPID/task" | wc -l) $(ls "/proc/$LPID/fd" | wc -l)"; }
# a closed connection lingers up to a second; at most 10 s
settle() {
	i=0
	while [ "$(counts)" != "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	counts
}

if ! start_lemon "$T/l1.log" || [ "$(chat)" != 200 ] ||
   [ "$(curl -s -m 60 -o /dev/null -w '%{http_code}' "$URL/v1/embeddings" \
	-H 'Content-Type: application/json' -d '{"model":"tiny","input":"hi"}')" != 200 ]; then
	echo "FAIL setup: lemon serve with the tiny model: $(tail -n 5 "$T/l1.log")"
	exit 1
fi
sleep 1.5
BASE=$(counts)

cat > "$T/soak.py" <<'PY'
import json, random, re, socket, struct, sys, threading, time
port, N, P = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

class Reader:
    def __init__(self, s):
        self.s, self.buf = s, b""
    def fill(self):
        try:
            d = self.s.recv(65536)
        except OSError:
            d = b""
        self.buf += d
        return bool(d)
    def need(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise ValueError("closed with %d of %d bytes" % (len(self.buf), n))
    def response(self, head_only=False):
        while b"\r\n\r\n" not in self.buf:
            if not self.fill():
                if self.buf:
                    raise ValueError("partial head %r" % self.buf[:100])
                return None
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", lines[0])
        if not m:
            raise ValueError("bad status line %r" % lines[0][:100])
        hs = {}
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            if k.lower() in hs:
                raise ValueError("header twice %r" % k)
            hs[k.lower()] = v.strip()
        st = int(m.group(1))
        if head_only:
            return st, hs, b""
        if b"content-length" in hs:
            n = int(hs[b"content-length"])
            self.need(n)
            body, self.buf = self.buf[:n], self.buf[n:]
            return st, hs, body
        if hs.get(b"transfer-encoding") == b"chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    if not self.fill():
                        raise ValueError("closed in a chunk size")
                line, _, self.buf = self.buf.partition(b"\r\n")
                n = int(line, 16)
                self.need(n + 2)
                if self.buf[n:n + 2] != b"\r\n":
                    raise ValueError("chunk without CRLF")
                body, self.buf = body + self.buf[:n], self.buf[n + 2:]
                if n == 0:
                    return st, hs, body
        raise ValueError("no framing: %r" % head[:200])

H = b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
def post(path, body, close=True):
    return (b"POST " + path + b" HTTP/1.1\r\n" + H + (b"Connection: close\r\n" if close else b"") +
            b"Content-Length: %d\r\n\r\n" % len(body) + body)
def get(path, m=b"GET", close=True):
    return m + b" " + path + b" HTTP/1.1\r\n" + H + (b"Connection: close\r\n" if close else b"") + b"\r\n"
def chat(stream, n=3):
    return json.dumps({"model": "tiny", "max_tokens": n, "stream": stream,
                       "messages": [{"role": "user", "content": "hi %d" % random.randint(0, 1 << 30)}]}).encode()

lock = threading.Lock()
seen, fails = {}, []

def one(raw, status=200, test=None, n=1, head_only=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        s.sendall(raw)
        r = Reader(s)
        for i in range(n):
            x = r.response(head_only)
            if x is None:
                return "%d answers of %d" % (i, n)
            st, hs, body = x
            if st != status:
                return "status %d %r" % (st, body[:200])
            if test and not test(body):
                return "body %r" % body[-200:]
        if r.fill() or r.buf:
            return "bytes after the answers: %r" % r.buf[:100]
    finally:
        s.close()

def abandon(raw, rst):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(raw)
    r = Reader(s)
    while b"data: " not in r.buf and b'"done":false' not in r.buf and r.fill():
        pass
    if rst:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    if not r.buf.startswith(b"HTTP/1.1 200 OK\r\n"):
        return "no 200: %r" % r.buf[:200]

def leave(raw):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(raw)
    time.sleep(random.random() * 0.05)
    if random.random() < 0.5:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()

def has(k):
    return lambda b: k in json.loads(b)
def sse_done(b):
    return b.rstrip().endswith(b"data: [DONE]") and b"error" not in b
def ndjson_done(b):
    return json.loads(b.strip().split(b"\n")[-1])["done"] is True

kinds = {
    "health": (8, lambda: one(get(b"/api/v1/health"), 200, has("status"))),
    "models": (3, lambda: one(get(b"/v1/models"), 200, has("data"))),
    "tags": (3, lambda: one(get(b"/api/tags"), 200, has("models"))),
    "head": (2, lambda: one(get(b"/api/tags", b"HEAD"), 200, head_only=True)),
    "pipelined": (3, lambda: one(get(b"/api/v1/health", close=False) * 2 + get(b"/api/version"), n=3)),
    "chat": (6, lambda: one(post(b"/v1/chat/completions", chat(False)), 200, has("choices"))),
    "keepalive": (2, lambda: one(post(b"/v1/chat/completions", chat(False), False) +
                               post(b"/v1/chat/completions", chat(True)), n=2)),
    "completions": (2, lambda: one(post(b"/v1/completions",
                                        b'{"model":"tiny","prompt":"once","max_tokens":3}'), 200, has("choices"))),
    "stream": (6, lambda: one(post(b"/v1/chat/completions", chat(True)), 200, sse_done)),
    "ollama-stream": (4, lambda: one(post(b"/api/generate",
                                          b'{"model":"tiny","prompt":"hi","options":{"num_predict":3}}'), 200, ndjson_done)),
    "ollama-chat": (2, lambda: one(post(b"/api/chat", b'{"model":"tiny","stream":false,"messages":'
                                        b'[{"role":"user","content":"x"}],"options":{"num_predict":3}}'), 200, has("message"))),
    "embed": (1, lambda: one(post(b"/v1/embeddings", b'{"model":"tiny","input":"hello"}'), 200, has("data"))),
    "abandon-stream": (5, lambda: abandon(post(b"/v1/chat/completions", chat(True, 64)), False)),
    "reset-stream": (3, lambda: abandon(post(b"/v1/chat/completions", chat(True, 64)), True)),
    "abandon-ollama": (3, lambda: abandon(post(b"/api/chat", b'{"model":"tiny","messages":'
                                               b'[{"role":"user","content":"x"}],"options":{"num_predict":64}}'), False)),
    "leave-early": (3, lambda: leave(post(b"/v1/chat/completions", chat(False, 16)))),
    "mid-head": (3, lambda: leave(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")),
    "mid-body": (3, lambda: leave(b"POST /v1/chat/completions HTTP/1.1\r\n" + H +
                                  b"Content-Length: 1000\r\n\r\n{\"model\":")),
    "mid-chunk": (2, lambda: leave(b"POST /api/chat HTTP/1.1\r\n" + H +
                                   b"Transfer-Encoding: chunked\r\n\r\n10\r\n{\"model\"")),
    "malformed": (3, lambda: one(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX: a\x01\r\n\r\n", 400, has("error"))),
    "bad-body": (3, lambda: one(post(b"/v1/chat/completions", b'{"model":"tiny","messages":[1]}'), 400, has("error"))),
    "no-model": (2, lambda: one(post(b"/api/chat", b'{"model":"nope","messages":[{"role":"user","content":"x"}]}'),
                                404, has("error"))),
}
bag = [k for k, (w, _) in kinds.items() for _ in range(w)]
todo = [random.choice(bag) for _ in range(N)]
def worker():
    while True:
        with lock:
            if not todo:
                return
            k = todo.pop()
        try:
            why = kinds[k][1]()
        except Exception as e:
            why = "exception %r" % e
        with lock:
            seen[k] = seen.get(k, 0) + 1
            if why:
                fails.append("%s: %s" % (k, why))
t0 = time.time()
ts = [threading.Thread(target=worker) for _ in range(P)]
[t.start() for t in ts]
[t.join() for t in ts]
print("%d requests of %d kinds in %.1f s, %d failed" % (N, len(seen), time.time() - t0, len(fails)))
for f in fails[:10]:
    print("  " + f)
PY

name=answers
python3 "$T/soak.py" "$PORT" "${SOAK_N:-1500}" 16 > "$T/soak.out" 2>&1
if head -n 1 "$T/soak.out" | grep -q " 22 kinds in .*, 0 failed$"; then
	ok "$name ($(head -n 1 "$T/soak.out"))"
else
	fail $name "$(head -c 1500 "$T/soak.out")"
fi

name=alive
after=$(settle "$BASE")
h=$(health)
if echo "$h" | jq -e '.status == "ok" and ([.loaded[].requests] | add) == 0' > /dev/null &&
   [ "$(chat)" = 200 ]; then
	ok $name
else
	fail $name "health: $(echo "$h" | head -c 300)"
fi
set -- $BASE $after
if [ "$1" = "$3" ]; then ok threads; else fail threads "$1 before, $3 after"; fi
if [ "$2" = "$4" ]; then ok fds; else fail fds "$2 before, $4 after: $(ls -l "/proc/$LPID/fd" | tail -n 5)"; fi

# lemon itself out of descriptors (its soft limit lowered while it runs)
# right before a request's socket to the child: 503, and the healthy child
# is neither reported dead nor killed
cat > "$T/fdexh.py" <<'PY'
import json, os, resource, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
used = {int(x) for x in os.listdir("/proc/%d/fd" % pid)}
free = [n for n in range(max(used) + 3) if n not in used]
# the request's own socket takes free[0]; the one to the child would be free[1]
old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
resource.prlimit(pid, resource.RLIMIT_NOFILE, (free[1], old[1]))
body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()
def chat():
    c = socket.create_connection(("127.0.0.1", port), timeout=30)
    c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    d = b""
    try:
        while True:
            x = c.recv(65536)
            if not x:
                break
            d += x
    except OSError:
        pass
    c.close()
    return d.split(b" ")[1].decode() if d.startswith(b"HTTP/1.1 ") else "none"
out = chat()
resource.prlimit(pid, resource.RLIMIT_NOFILE, old)
time.sleep(1.2)
print("out-of-fds", out, "after", chat())
PY
name=fd-exhausted
p0=$(pid_of_tiny)
python3 "$T/fdexh.py" "$PORT" "$LPID" > "$T/fdexh.out" 2>&1
p1=$(pid_of_tiny)
if [ -n "$p0" ] && [ "$p0" = "$p1" ] && [ "$(cat "$T/fdexh.out")" = "out-of-fds 503 after 200" ] &&
   ! grep -q "unreachable; restarting" "$log" &&
   health | jq -e '([.loaded[].requests] | add) == 0' > /dev/null; then
	ok $name
else
	fail $name "child $p0 then $p1; $(cat "$T/fdexh.out"); $(grep -m 1 unreachable "$log")"
fi
stop_lemon exit

# --- a full descriptor table meets the connection cap -------------------
cat > "$T/fdlimit.py" <<'PY'
import json, os, select, socket, sys, time
port, pid, limit = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def nfd():
    return len(os.listdir("/proc/%d/fd" % pid))
# idle connections, one at a time, until one descriptor is left or the
# server answers one at once (its cap)
socks, refused = [], False
while nfd() < limit - 1 and len(socks) < limit and not refused:
    before = nfd()
    s = socket.create_connection(("127.0.0.1", port))
    socks.append(s)
    t = time.time()
    while nfd() == before and time.time() - t < 0.3:
        if select.select([s], [], [], 0.005)[0]:
            refused = True
            break
body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()
def chat():
    c = socket.create_connection(("127.0.0.1", port), timeout=30)
    c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    d = b""
    try:
        while True:
            x = c.recv(65536)
            if not x:
                break
            d += x
    except OSError:
        pass
    c.close()
    return d.split(b" ")[1].decode() if d.startswith(b"HTTP/1.1 ") else "none"
full = chat()
n = len(socks)
for s in socks:
    s.close()
time.sleep(1.5)
print("idle", n, "refused", refused, "full", full, "after", chat())
PY
name=fd-limit
if NOFILE=256 start_lemon "$T/l2.log" --header-timeout 30 && [ "$(chat)" = 200 ]; then
	p0=$(pid_of_tiny)
	python3 "$T/fdlimit.py" "$PORT" "$LPID" 256 > "$T/fdlimit.out" 2>&1
	p1=$(pid_of_tiny)
	set -- $(cat "$T/fdlimit.out") - - - - - - - -
	# idle N refused True full 503 after 200
	if [ -n "$p0" ] && [ "$p0" = "$p1" ] && [ "$4" = True ] && [ "$6" = 503 ] && [ "$8" = 200 ] &&
	   ! grep -q "unreachable; restarting" "$log"; then
		ok "$name ($(cat "$T/fdlimit.out"))"
	else
		fail $name "child $p0 then $p1; $(cat "$T/fdlimit.out"); $(grep -m 2 -e unreachable -e 'unavailable' "$log")"
	fi
	stop_lemon fd-limit-exit
else
	fail $name "lemon serve under ulimit -n 256: $(tail -n 3 "$T/l2.log")"
fi

[ $FAILS -eq 0 ] || exit 1
