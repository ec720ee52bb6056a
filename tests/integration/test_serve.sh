#!/bin/sh
# Integration tests of `lemon serve` against the real llama-server: the CPU
# bundle from scripts/build-backend.sh (cached) is served by a loopback
# mirror so first-run provisioning runs for real; the tiny model comes from
# tests/tools/make-tiny-gguf.py. Covers the openai npm client (tests/node),
# fallback from a backend that cannot start, a child killed mid-stream, bad
# input, slow clients and clean shutdown. Prints "ok NAME" or
# "FAIL NAME: why"; exits non-zero on any failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
ROOT=$PWD
T=$(mktemp -d /tmp/lemon-serve.XXXXXX)
FAILS=0
MPID=
LPID=
KEY=test-key-123

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
need_node_modules openai

start_bundle_mirror

export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_LLAMA_SERVER_ROCM \
	LEMON_LLAMA_SERVER_VULKAN LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND


# start_lemon LOG ARGS...: starts lemon serve and waits for it to listen
start_lemon() {
	log=$1
	shift
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	"$LEMON" serve --port "$PORT" "$@" > "$log" 2>&1 &
	LPID=$!
	i=0
	while [ $i -lt 600 ]; do
		grep -q "listening on" "$log" && return 0
		kill -0 "$LPID" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

stop_lemon() {
	kill -TERM "$LPID" 2>/dev/null
	wait "$LPID"
	rc=$?
	LPID=
	return $rc
}

# curl with the key; prints the body, the status code on the last line
req() { # method path [data]
	if [ $# -ge 3 ]; then
		curl -s -H 'Content-Type: application/json' -m 60 -X "$1" -H "Authorization: Bearer $KEY" -w '\n%{http_code}' \
			"$URL$2" -d "$3"
	else
		curl -s -m 60 -X "$1" -H "Authorization: Bearer $KEY" -w '\n%{http_code}' "$URL$2"
	fi
}

CHAT='{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":8'

# --- pull and list --------------------------------------------------------
name=pull_list
if "$LEMON" pull --file "$MODEL" tiny > "$T/out" 2>&1 && grep -q "GGUF v3, llama" "$T/out" &&
   "$LEMON" list | grep -q "^tiny " ; then
	ok $name
else
	fail $name "$(cat "$T/out")"
fi

name=pull_rejects_bad_input
head -c 4096 /dev/urandom > "$T/junk.gguf"
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\377' > "$T/trunc.gguf"
if ! "$LEMON" pull --file "$T/junk.gguf" junk > "$T/o1" 2>&1 && grep -q "bad magic" "$T/o1" &&
   ! "$LEMON" pull --file "$T/trunc.gguf" trunc > "$T/o2" 2>&1 && grep -q "gguf" "$T/o2" &&
   ! "$LEMON" pull --file "$MODEL" ../../etc/passwd > "$T/o3" 2>&1 && grep -q "invalid model name" "$T/o3" &&
   ! "$LEMON" list | grep -q -e junk -e trunc; then
	ok $name
else
	fail $name "$(cat "$T/o1" "$T/o2" "$T/o3")"
fi

# --- first run (backend auto, as in the acceptance): nothing installed, so
# detection picks the candidates and CPU is provisioned from the mirror ---
name=first_run_provisions_and_streams
if start_lemon "$T/l1.log" --mirror "$MIRROR" --api-key "$KEY" --timeout 3 --ctx-size 4096 &&
   grep -q '"llamacpp:cpu"' "$XDG_DATA_HOME/lemon/backends/installed.json" &&
   curl -s -H 'Content-Type: application/json' -N -m 60 -H "Authorization: Bearer $KEY" "$URL/v1/chat/completions" \
	-d "$CHAT,\"stream\":true}" > "$T/sse" &&
   [ "$(grep -c '^data: {' "$T/sse")" -ge 2 ] && [ "$(tail -n 2 "$T/sse" | head -n 1)" = "data: [DONE]" ]; then
	ok $name
else
	fail $name "$(tail -n 5 "$T/l1.log"; tail -n 3 "$T/sse" 2>/dev/null)"
	echo "FAIL remaining tests skipped: lemon serve did not come up"
	exit 1
fi

# the clients run on a node they support (tests/node pins Node 22)
name=node_meets_client_engines
if (cd tests/node && timeout 30 node --test engines.test.mjs > "$T/eng.out" 2>&1); then
	ok "$name (node $(cd tests/node && node --version))"
else
	fail $name "$(grep -m 3 'node v\?[0-9]\|wants' "$T/eng.out" | head -c 400)"
fi

name=openai_node_client
if (cd tests/node && LEMON_URL=$URL LEMON_KEY=$KEY LEMON_MODEL=tiny LEMON_EMBD=64 \
	timeout 120 node --test serve.test.mjs > "$T/node.out" 2>&1); then
	ok "$name ($(grep -c '^ok ' "$T/node.out") cases)"
else
	fail $name "$(grep -E '^not ok|Error|error' "$T/node.out" | head -n 8)"
fi

name=health_reports_backend
req GET /api/v1/health > "$T/h"
if [ "$(tail -n 1 "$T/h")" = 200 ] &&
   sed '$d' "$T/h" | jq -e '.model_loaded == "tiny" and .backend == "cpu" and (.fallbacks | type == "array")' > /dev/null &&
   req GET /api/v1/system-info | sed '$d' | jq -e 'type == "object"' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/h")"
fi

# --- bad input ---------------------------------------------------------
expect() { # name expected-status expected-code method path [data]
	n=$1 st=$2 code=$3
	shift 3
	req "$@" > "$T/r"
	if [ "$(tail -n 1 "$T/r")" = "$st" ] &&
	   sed '$d' "$T/r" | jq -e --arg c "$code" '.error.code == $c and (.error.message | length > 0) and has("error") and (.error | has("type") and has("param"))' > /dev/null; then
		ok "$n"
	else
		fail "$n" "$(cat "$T/r")"
	fi
}
expect bad_json 400 invalid_json POST /v1/chat/completions '{"model": "tiny", '
expect body_not_object 400 invalid_json POST /v1/chat/completions '[1,2]'
expect missing_model 400 missing_model POST /v1/chat/completions '{"messages":[]}'
expect unknown_model 404 model_not_found POST /v1/chat/completions '{"model":"nope","messages":[]}'
expect traversal_name 400 invalid_model_name POST /v1/chat/completions '{"model":"../../etc/passwd","messages":[]}'
expect traversal_load 400 invalid_model_name POST /api/v1/load '{"model_name":"../x"}'
expect unknown_route 404 not_found GET /v2/nothing
expect wrong_method 405 method_not_allowed GET /v1/chat/completions
expect unload_not_loaded 404 model_not_found POST /api/v1/unload '{"model_name":"other"}'

name=wrong_api_key
code=$(curl -s -m 10 -o "$T/r" -w '%{http_code}' -H 'Authorization: Bearer nope' "$URL/v1/models")
code2=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$URL/v1/models")
if [ "$code" = 401 ] && [ "$code2" = 401 ] && jq -e '.error.code == "invalid_api_key"' "$T/r" > /dev/null; then
	ok $name
else
	fail $name "$code $code2 $(cat "$T/r")"
fi

# (on a route without images: chat routes take --max-image-body, 32 MiB,
# which test_image_body.sh checks)
name=oversized_body
head -c 1100000 /dev/zero | tr '\0' 'a' > "$T/big"
code=$(curl -s -H 'Content-Type: application/json' -m 20 -o "$T/r" -w '%{http_code}' -H "Authorization: Bearer $KEY" \
	--data-binary @"$T/big" "$URL/v1/embeddings")
code2=$(curl -s -H 'Content-Type: application/json' -m 20 -o "$T/r2" -w '%{http_code}' -H "Authorization: Bearer $KEY" \
	-H 'Transfer-Encoding: chunked' --data-binary @"$T/big" "$URL/v1/embeddings")
if [ "$code" = 413 ] && [ "$code2" = 413 ] && jq -e '.error.code == "request_too_large"' "$T/r" > /dev/null &&
   jq -e '.error.code == "request_too_large"' "$T/r2" > /dev/null; then
	ok $name
else
	fail $name "$code $code2"
fi

# slow-loris: 20 connections trickle header bytes; a normal client still
# gets answers meanwhile, and a client that goes quiet gets 408 and is
# dropped after the --timeout (3 s; it also bounds the head deadline)
name=slow_loris
cat > "$T/loris.py" <<'PY'
import socket, sys, time, threading
port = int(sys.argv[1]); res = {}
def trickle(i):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        for _ in range(4):
            time.sleep(0.5)
            s.sendall(b"X-a: b\r\n")
        res[i] = s
    except OSError as e:
        res[i] = e
ts = [threading.Thread(target=trickle, args=(i,)) for i in range(20)]
[t.start() for t in ts]; [t.join() for t in ts]
# a client that stops sending must be answered 408 and closed by the server
q = socket.create_connection(("127.0.0.1", port)); q.sendall(b"GET /v1/models HTTP/1.1\r\n")
q.settimeout(10); t0 = time.time(); got = b""; closed = False
try:
    while True:
        d = q.recv(4096)
        if not d:
            closed = True
            break
        got += d
except socket.timeout: closed = False
except OSError: closed = True
print("closed" if closed and got.startswith(b"HTTP/1.1 408") and time.time() - t0 < 8 else "open")
# a body trickled in byte by byte is cut off after the timeout too
b = socket.create_connection(("127.0.0.1", port))
b.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
t0, closed = time.time(), False
for _ in range(40):
    try:
        b.sendall(b"a")
        b.setblocking(False)
        closed = b.recv(100) == b""
    except BlockingIOError:
        pass
    except OSError:
        closed = True
    b.setblocking(True)
    if closed:
        break
    time.sleep(0.25)
print("body-closed" if closed and time.time() - t0 < 8 else "body-open")
PY
python3 "$T/loris.py" "$PORT" > "$T/loris.out" 2>&1 &
lp=$!
sleep 0.5
good=0
for i in 1 2 3; do
	req POST /v1/chat/completions "$CHAT}" | tail -n 1 | grep -q 200 && good=$((good + 1))
done
wait $lp
if [ $good = 3 ] && grep -qx closed "$T/loris.out" && grep -qx body-closed "$T/loris.out"; then
	ok $name
else
	fail $name "good=$good $(cat "$T/loris.out")"
fi

# --- crash mid-stream --------------------------------------------------
name=child_killed_mid_stream
curl -s -H 'Content-Type: application/json' -N -m 60 -H "Authorization: Bearer $KEY" "$URL/v1/chat/completions" \
	-d '{"model":"tiny","messages":[{"role":"user","content":"go"}],"max_tokens":2000,"stream":true,"ignore_eos":true}' > "$T/crash" &
cp=$!
i=0
while [ "$(grep -c '^data: {' "$T/crash" 2>/dev/null)" -lt 3 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
pid=$(req GET /api/v1/health | sed '$d' | jq '.loaded[] | select(.role == "chat") | .pid')
kill -9 "$pid"
wait $cp
if grep -q '"code":"backend_failed"' "$T/crash" && ! grep -q '^data: \[DONE\]' "$T/crash" &&
   req POST /v1/chat/completions "$CHAT}" | tail -n 1 | grep -q 200 &&
   kill -0 "$LPID"; then
	ok $name
else
	fail $name "pid=$pid $(tail -c 300 "$T/crash")"
fi

name=load_unload
r1=$(req POST /api/v1/unload '{"model_name":"tiny"}' | tail -n 1)
sleep 0.5
n1=$(req GET /api/v1/health | sed '$d' | jq '.loaded | length')
r2=$(req POST /api/v1/load '{"model_name":"tiny"}' | tail -n 1)
st=$(req GET /api/v1/health | sed '$d' | jq -r '.loaded[0].state')
if [ "$r1" = 200 ] && [ "$n1" = 0 ] && [ "$r2" = 200 ] && [ "$st" = ready ]; then
	ok $name
else
	fail $name "unload=$r1 left=$n1 load=$r2 state=$st"
fi

# the child's log pipe holds 1 MiB, not the default 64 KiB (between two
# 250 ms drains a busy child would otherwise block on its own logging)
name=child_log_pipe_1mib
pid=$(req GET /api/v1/health | sed '$d' | jq '.loaded[0].pid')
psz=$(python3 -c 'import fcntl, os, sys
fd = os.open("/proc/%s/fd/2" % sys.argv[1], os.O_WRONLY | os.O_NONBLOCK)
print(fcntl.fcntl(fd, 1032))' "$pid" 2>&1)  # F_GETPIPE_SZ
if [ "$psz" = 1048576 ]; then
	ok $name
elif [ "$(id -u)" != 0 ] && [ "$(cat /proc/sys/fs/pipe-max-size 2>/dev/null || echo 0)" -lt 1048576 ]; then
	echo "skip $name: pipe-max-size below 1 MiB for a non-root user (best effort there)"
else
	fail $name "pid=$pid pipe size $psz"
fi

name=sigterm_stops_children
pids=$(req GET /api/v1/health | sed '$d' | jq '.loaded[].pid')
if stop_lemon; then
	left=0
	for p in $pids; do kill -0 "$p" 2>/dev/null && left=$((left + 1)); done
	[ $left = 0 ] && ok $name || fail $name "$left children left"
else
	fail $name "lemon exited non-zero"
fi

# --- settings: flags over environment over the config file; CORS -------
name=config_precedence_and_cors
mkdir -p "$XDG_CONFIG_HOME/lemon"
echo '{"api_key": "filekey", "cors_origin": "http://file.example"}' > "$XDG_CONFIG_HOME/lemon/config.json"
code() { curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$URL/v1/models"; }
r=""
if LEMON_API_KEY=envkey start_lemon "$T/l6.log" --backend cpu; then
	r="$r $(code filekey) $(code envkey)"
	r="$r $(curl -s -m 10 -o /dev/null -D - -X OPTIONS -H 'Origin: http://file.example' \
		"$URL/v1/chat/completions" |
		tr -d '\r' | grep -i '^access-control-allow-origin:' | cut -d' ' -f2)"
	stop_lemon > /dev/null 2>&1
fi
if LEMON_API_KEY=envkey start_lemon "$T/l7.log" --backend cpu --api-key flagkey --cors-origin ''; then
	r="$r $(code envkey) $(code flagkey)"
	r="$r $(curl -s -m 10 -D - -o /dev/null -H 'Authorization: Bearer flagkey' "$URL/v1/models" |
		grep -ci '^access-control-allow-origin')"
	stop_lemon > /dev/null 2>&1
fi
rm -f "$XDG_CONFIG_HOME/lemon/config.json"
if [ "$r" = " 401 200 http://file.example 401 200 0" ]; then
	ok $name
else
	fail $name "got '$r'"
fi

# --- fallback: a ROCm build that cannot start here -> CPU -----------------
name=fallback_rocm_to_cpu
mkdir -p "$T/fake-rocm"
cat > "$T/fake-rocm/llama-server" <<'SH'
#!/bin/sh
echo "ggml_cuda_init: failed to initialize ROCm: no ROCm-capable device is detected"
echo "error: failed to load model"
exit 1
SH
chmod +x "$T/fake-rocm/llama-server"
if LEMON_LLAMA_SERVER_ROCM=$T/fake-rocm/llama-server start_lemon "$T/l3.log" --backend rocm --mirror "$MIRROR" &&
   req POST /v1/chat/completions "$CHAT}" > "$T/r" && [ "$(tail -n 1 "$T/r")" = 200 ] &&
   req GET /api/v1/health | sed '$d' > "$T/h" &&
   jq -e '.backend == "cpu" and (.fallbacks | map(select(.from == "rocm")) | length == 1)
	and (.fallbacks[] | select(.from == "rocm") | .reason | test("before becoming healthy"))' "$T/h" > /dev/null &&
   grep -q "falling back to" "$T/l3.log"; then
	ok $name
else
	fail $name "$(cat "$T/h" 2>/dev/null; tail -n 5 "$T/l3.log")"
fi
stop_lemon > /dev/null 2>&1

# --- a backend that never becomes healthy times out and falls back (after
# the start timeout plus the model read at 100 MiB/s: 1549 ms for tiny) ---
name=fallback_on_start_timeout
cat > "$T/fake-rocm/hang" <<'SH'
#!/bin/sh
exec sleep 60
SH
chmod +x "$T/fake-rocm/hang"
if LEMON_LLAMA_SERVER_ROCM=$T/fake-rocm/hang LEMON_START_TIMEOUT_MS=1500 start_lemon "$T/l4.log" --backend rocm --mirror "$MIRROR" &&
   req POST /v1/chat/completions "$CHAT}" | tail -n 1 | grep -q 200 &&
   req GET /api/v1/health | sed '$d' | jq -e '.fallbacks[0].reason | test("not healthy after 15[0-9][0-9] ms")' > /dev/null; then
	ok $name
else
	fail $name "$(tail -n 5 "$T/l4.log")"
fi
stop_lemon > /dev/null 2>&1

# --- children never outlive lemon, even when it is SIGKILLed -------------
name=sigkill_children_follow
if start_lemon "$T/l5.log" --backend cpu --mirror "$MIRROR" &&
   req POST /api/v1/load '{"model_name":"tiny"}' | tail -n 1 | grep -q 200; then
	pid=$(req GET /api/v1/health | sed '$d' | jq '.loaded[0].pid')
	kill -9 "$LPID"
	wait "$LPID" 2>/dev/null
	LPID=
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
		ok $name
	else
		fail $name "llama-server $pid still running after lemon was killed"
		kill -9 "$pid" 2>/dev/null
	fi
else
	fail $name "$(tail -n 5 "$T/l5.log")"
fi

# --- second start needs no network: the mirror is gone -------------------
kill "$MPID" 2>/dev/null
MPID=
name=second_start_offline
if start_lemon "$T/l2.log" --backend cpu &&
   KEY= req POST /v1/completions '{"model":"tiny","prompt":"a","max_tokens":3}' | tail -n 1 | grep -q 200 &&
   stop_lemon; then
	ok $name
else
	fail $name "$(tail -n 5 "$T/l2.log")"
fi

[ $FAILS -eq 0 ]
