#!/bin/sh
# The npm clients people point at a local server (tests/node/clients.test.mjs,
# pinned in tests/node/package.json) against a real lemon serve over the real
# llama-server CPU bundle with two models: the random tiny model (Responses,
# Anthropic Messages and countTokens, chats and streams) and the constructed
# tool-calling model of tests/tools/make-toolcall-gguf.py, on which the real
# child emits the tool calls of the round trips through openai (chat
# completions and Responses), @anthropic-ai/sdk (tool_use), LangChain
# (OpenAI and Ollama), the AI SDK, ollama and llamaindex.
# Prints "ok NAME" or "FAIL NAME: why"; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/lemon-clients.XXXXXX)
FAILS=0
MPID=
LPID=
KEY=clients-key

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
need_node_modules @anthropic-ai/sdk
MODEL=$BUILD/models/tiny.gguf
[ -f "$MODEL" ] || python3 tests/tools/make-tiny-gguf.py --out "$MODEL" > /dev/null ||
	{ echo "FAIL setup: make-tiny-gguf.py"; exit 1; }
python3 tests/tools/make-toolcall-gguf.py --out "$T/toolcall.gguf" > /dev/null ||
	{ echo "FAIL setup: make-toolcall-gguf.py"; exit 1; }
start_bundle_mirror

unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND
serve() { # DIR LOG -> PORT, PID in SPID
	XDG_DATA_HOME=$1/data XDG_CONFIG_HOME=$1/config "$LEMON" pull --file "$MODEL" tiny > /dev/null ||
		{ echo "FAIL setup: pull tiny"; exit 1; }
	XDG_DATA_HOME=$1/data XDG_CONFIG_HOME=$1/config "$LEMON" pull --file "$T/toolcall.gguf" toolcall > /dev/null ||
		{ echo "FAIL setup: pull toolcall"; exit 1; }
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

name=npm_clients
if (cd tests/node && LEMON_URL=$URL LEMON_KEY=$KEY LEMON_MODEL=tiny LEMON_TOOL_MODEL=toolcall \
	timeout 150 node --test clients.test.mjs > "$T/node.out" 2>&1); then
	ok "$name ($(grep -c '^ok ' "$T/node.out") cases)"
else
	fail $name "$(grep -E -A12 '^not ok' "$T/node.out" | head -n 40)"
fi

[ "$FAILS" -eq 0 ]
