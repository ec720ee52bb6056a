#!/bin/sh
# The npm clients people point at a local server (tests/node/clients.test.mjs,
# pinned in tests/node/package.json) against two real lemon serves: one over
# the real llama-server CPU bundle and the tiny model (Responses, Anthropic
# Messages and countTokens, LangChain, the AI SDK's streamText, llamaindex),
# and one whose child is tests/tools/llama-server-toolcall-replay.py, which
# is NOT llama-server but a stand-in answering in llama-server's tool-call
# shape (no model the tests can run emits a tool call), for the tool-call
# round trips through openai, LangChain (OpenAI and Ollama), the AI SDK and
# ollama. Prints "ok NAME" or "FAIL NAME: why"; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/lemon-clients.XXXXXX)
FAILS=0
MPID=
LPID=
RPID=
KEY=clients-key

. tests/integration/lib.sh

cleanup() {
	for p in $LPID $RPID; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

need_lemon
need_bundle
need_node_modules @anthropic-ai/sdk
MODEL=$BUILD/models/tiny.gguf
[ -f "$MODEL" ] || python3 tests/tools/make-tiny-gguf.py --out "$MODEL" > /dev/null ||
	{ echo "FAIL setup: make-tiny-gguf.py"; exit 1; }
start_bundle_mirror

unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND
serve() { # DIR LOG -> PORT, PID in SPID
	XDG_DATA_HOME=$1/data XDG_CONFIG_HOME=$1/config "$LEMON" pull --file "$MODEL" tiny > /dev/null ||
		{ echo "FAIL setup: pull tiny"; exit 1; }
	SPORT=$(free_port)
	XDG_DATA_HOME=$1/data XDG_CONFIG_HOME=$1/config "$LEMON" serve --port "$SPORT" --backend cpu \
		--mirror "$MIRROR" --api-key "$KEY" > "$2" 2>&1 &
	SPID=$!
	i=0
	while [ $i -lt 600 ] && ! grep -q "listening on" "$2" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	grep -q "listening on" "$2" || { echo "FAIL setup: lemon serve: $(tail -n 3 "$2")"; exit 1; }
}
serve "$T/real" "$T/real.log"
LPID=$SPID
URL=http://127.0.0.1:$SPORT
LEMON_LLAMA_SERVER_CPU=$PWD/tests/tools/llama-server-toolcall-replay.py serve "$T/replay" "$T/replay.log"
RPID=$SPID
RURL=http://127.0.0.1:$SPORT

name=npm_clients
if (cd tests/node && LEMON_URL=$URL LEMON_REPLAY_URL=$RURL LEMON_KEY=$KEY LEMON_MODEL=tiny \
	timeout 150 node --test clients.test.mjs > "$T/node.out" 2>&1); then
	ok "$name ($(grep -c '^ok ' "$T/node.out") cases)"
else
	fail $name "$(grep -E -A12 '^not ok' "$T/node.out" | head -n 40)"
fi

[ "$FAILS" -eq 0 ]
