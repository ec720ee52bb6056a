#!/bin/sh
# Integration tests of the client commands (lemon run, ps, status, stop)
# against a real `lemon serve` with the real llama-server (CPU bundle from
# scripts/build-backend.sh, provisioned on first run from
# tests/tools/mirror.py) and the tiny model: a chat driven through stdin,
# /bye, one-shot prompts, a missing model, the API key, the address from
# flags and from LEMON_HOST/LEMON_PORT, stop ending the server, and the
# message and exit status when no server runs. Prints "ok NAME" or
# "FAIL NAME: why"; exits non-zero on any failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
T=$(mktemp -d /tmp/lemon-client.XXXXXX)
FAILS=0
MPID=
LPID=
KEY=client-key-7

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
	LEMON_LLAMA_SERVER_VULKAN LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
NOSERVER="no lemon server is running on 127.0.0.1:$PORT; start one with: lemon serve"

"$LEMON" pull --file "$MODEL" tiny > /dev/null 2>&1 || { echo "FAIL setup: lemon pull --file"; exit 1; }

# --- nothing running yet ----------------------------------------------------
name=no_server_message
okay=1
for cmd in status ps stop "run tiny"; do
	# shellcheck disable=SC2086
	"$LEMON" $cmd --port "$PORT" < /dev/null > "$T/ns.out" 2> "$T/ns.err"
	rc=$?
	if [ $rc -eq 0 ] || [ "$(cat "$T/ns.err")" != "lemon: $NOSERVER" ] || [ -s "$T/ns.out" ]; then
		okay=0
		echo "  $cmd: exit $rc: $(cat "$T/ns.err" "$T/ns.out")"
	fi
done
if [ $okay = 1 ]; then ok $name; else fail $name "see above"; fi

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

stats() { curl -s -m 10 -H "Authorization: Bearer $KEY" "$URL/api/v1/stats"; }

name=key_required
if ! "$LEMON" status --port "$PORT" > "$T/k.out" 2> "$T/k.err" &&
   grep -q "answered 401" "$T/k.err"; then
	ok $name
else
	fail $name "$(cat "$T/k.out" "$T/k.err")"
fi
export LEMON_API_KEY=$KEY

# --- lemon run: prompts from a pipe, /bye ends the chat before the next --
name=run_answers_from_stdin
printf 'hi\n/bye\nnever sent\n' | timeout 120 "$LEMON" run --port "$PORT" --max-tokens 8 tiny \
	> "$T/r.out" 2> "$T/r.err"
rc=$?
stats > "$T/r.stats"
if [ $rc -eq 0 ] && [ -s "$T/r.out" ] && [ "$(tr -d ' \n' < "$T/r.out" | wc -c)" -gt 0 ] &&
   [ ! -s "$T/r.err" ] &&
   jq -e '.model == "tiny" and .ok and .stream and .output_tokens >= 1 and .output_tokens <= 8' \
	"$T/r.stats" > /dev/null &&
   ! grep -q "never sent" "$T/lemon.log"; then
	ok $name
else
	fail $name "exit $rc: $(cat "$T/r.out" "$T/r.err" "$T/r.stats")"
fi

# the conversation goes back with every turn: a stand-in server answers
# each /api/chat with the roles it was sent, in pieces, so the second
# answer shows the first turn's question and answer came along
name=run_keeps_the_conversation
python3 - > "$T/fport" 2> "$T/fake.log" <<'EOF2' &
import json, http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        roles = ",".join(m["role"] for m in req["messages"])
        lines = [{"message": {"role": "assistant", "content": p}, "done": False}
                 for p in ("roles=", roles)] if roles else []
        lines.append({"message": {"role": "assistant", "content": ""}, "done": True})
        body = "".join(json.dumps(l) + "\n" for l in lines).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
EOF2
FPID=$!
i=0
while [ ! -s "$T/fport" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
printf 'first\nsecond\n' | "$LEMON" run --port "$(head -n 1 "$T/fport")" x > "$T/c.out" 2>&1
rc=$?
kill $FPID 2>/dev/null
if [ $rc -eq 0 ] && [ "$(sed -n 1p "$T/c.out")" = "roles=user" ] &&
   [ "$(sed -n 2p "$T/c.out")" = "roles=user,assistant,user" ]; then
	ok $name
else
	fail $name "exit $rc: $(cat "$T/c.out")"
fi

name=run_one_shot_prompt
if LEMON_PORT=$PORT timeout 60 "$LEMON" run --max-tokens 3 tiny say something > "$T/o.out" 2> "$T/o.err" &&
   [ -s "$T/o.out" ] && [ ! -s "$T/o.err" ]; then
	ok $name
else
	fail $name "$(cat "$T/o.out" "$T/o.err")"
fi

name=run_missing_model
if ! "$LEMON" run --port "$PORT" nope < /dev/null > "$T/m.out" 2> "$T/m.err" &&
   grep -q "model 'nope' is not on the server; pull it with: lemon pull nope" "$T/m.err"; then
	ok $name
else
	fail $name "$(cat "$T/m.out" "$T/m.err")"
fi

# --- ps and status -----------------------------------------------------------
name=ps_lists_loaded
"$LEMON" ps --host 127.0.0.1 --port "$PORT" > "$T/ps.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && head -n 1 "$T/ps.out" | grep -q "^MODEL *ROLE *BACKEND *STATE *PID *PORT" &&
   grep -Eq "^tiny +chat +cpu +ready +[0-9]+ +[0-9]+$" "$T/ps.out"; then
	ok $name
else
	fail $name "exit $rc: $(cat "$T/ps.out")"
fi

name=status_reports
LEMON_HOST=127.0.0.1 LEMON_PORT=$PORT "$LEMON" status > "$T/st.out" 2>&1
rc=$?
if [ $rc -eq 0 ] &&
   grep -qx "lemon $(cat VERSION) is running on http://127.0.0.1:$PORT" "$T/st.out" &&
   grep -qx "models loaded: 1: tiny (cpu, ready)" "$T/st.out" &&
   grep -qx "backends: cpu" "$T/st.out"; then
	ok $name
else
	fail $name "exit $rc: $(cat "$T/st.out")"
fi

# --- stop ----------------------------------------------------------------------
name=stop_ends_server
CHILD=$(curl -s -H "Authorization: Bearer $KEY" "$URL/api/v1/health" | jq '.loaded[0].pid')
"$LEMON" stop --port "$PORT" > "$T/stop.out" 2>&1
rc=$?
i=0
while kill -0 "$LPID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$LPID" 2>/dev/null; then
	lrc=running
else
	wait "$LPID"
	lrc=$?
	LPID=
fi
if [ $rc -eq 0 ] && grep -qx "lemon server on 127.0.0.1:$PORT stopped" "$T/stop.out" &&
   [ "$lrc" = 0 ] && grep -q "shutdown requested" "$T/lemon.log" &&
   [ "$CHILD" -gt 0 ] && ! kill -0 "$CHILD" 2>/dev/null; then
	ok $name
else
	fail $name "stop exit $rc, server $lrc, child $CHILD: $(cat "$T/stop.out"; tail -n 3 "$T/lemon.log")"
fi

name=no_server_after_stop
if ! "$LEMON" status --port "$PORT" > /dev/null 2> "$T/a.err" &&
   [ "$(cat "$T/a.err")" = "lemon: $NOSERVER" ]; then
	ok $name
else
	fail $name "$(cat "$T/a.err")"
fi

[ $FAILS -eq 0 ]
