#!/bin/sh
# Reproductions of issue 9 item 5 (and the body parts of item 6) against a
# real `lemon serve` with the tiny model on the real llama-server CPU
# bundle: bodies that lemon's old JSON check let through (invalid UTF-8, a
# raw NUL in a string, trailing garbage, wrong "input" types, a model name
# with \u0000) must be refused with 400 and a JSON body in the route
# family's shape (OpenAI {"error":{...}} or Ollama {"error":"..."}), where
# llama-server's own parse error came back as 500; and an answer the child
# itself refuses with a 4xx (a prompt longer than the context) must reach
# the client as that 4xx in lemon's shape.
# Prints "ok NAME" or "FAIL NAME: why"; exits non-zero on any failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
T=$(mktemp -d /tmp/lemon-hostile-body.XXXXXX)
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

export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config XDG_CACHE_HOME=$T/cache
unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_LLAMA_SERVER_ROCM \
	LEMON_LLAMA_SERVER_VULKAN LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND

"$LEMON" pull --file "$MODEL" tiny > "$T/pull.log" 2>&1 ||
	{ echo "FAIL setup: pull --file: $(cat "$T/pull.log")"; exit 1; }
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
# a small context, so that a long prompt is one the child refuses
"$LEMON" serve --port "$PORT" --mirror "$MIRROR" --ctx-size 256 > "$T/serve.log" 2>&1 &
LPID=$!
i=0
while ! grep -q "listening on" "$T/serve.log" && kill -0 "$LPID" 2>/dev/null && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
grep -q "listening on" "$T/serve.log" || { echo "FAIL setup: $(tail -n 5 "$T/serve.log")"; exit 1; }

# post PATH FILE: the status on the last line, the body before it
post() {
	curl -s -m 60 -H 'Content-Type: application/json' -w '\n%{http_code}' \
		--data-binary @"$2" "$URL$1"
}

# openai NAME PATH FILE STATUS JQ: the status and an OpenAI-shaped error body
openai() {
	post "$2" "$3" > "$T/r"
	if [ "$(tail -n 1 "$T/r")" = "$4" ] &&
	   sed '$d' "$T/r" | jq -e "(.error.message | type == \"string\" and length > 0) and
		(.error.type | type == \"string\") and (.error.code | type == \"string\") and
		(.error | has(\"param\")) and ($5)" > /dev/null; then
		ok "$1"
	else
		fail "$1" "$(tr '\n' ' ' < "$T/r" | head -c 400)"
	fi
}

# ollama NAME PATH FILE STATUS: the status and {"error": "..."}
ollama() {
	post "$2" "$3" > "$T/r"
	if [ "$(tail -n 1 "$T/r")" = "$4" ] &&
	   sed '$d' "$T/r" | jq -e '(.error | type == "string" and length > 0) and (keys == ["error"])' > /dev/null; then
		ok "$1"
	else
		fail "$1" "$(tr '\n' ' ' < "$T/r" | head -c 400)"
	fi
}

M='"model":"tiny"'
B400='.error.type == "invalid_request_error"'

# a valid request still works (so the refusals below are about the bytes)
printf '{%s,"messages":[{"role":"user","content":"hi \303\251 \\u00e9 a\\u0000b"}],"max_tokens":4}' "$M" > "$T/good"
post /v1/chat/completions "$T/good" > "$T/r"
if [ "$(tail -n 1 "$T/r")" = 200 ] && sed '$d' "$T/r" | jq -e '.choices[0].message | has("content")' > /dev/null; then
	ok valid_chat_answers
else
	fail valid_chat_answers "$(tr '\n' ' ' < "$T/r" | head -c 400)"
fi

printf '{%s,"messages":[{"role":"user","content":"bad \377\376 bytes"}],"max_tokens":4}' "$M" > "$T/utf8"
openai invalid_utf8_chat /v1/chat/completions "$T/utf8" 400 "$B400 and .error.code == \"invalid_string\""
# an overlong encoding of '/' and an encoded UTF-16 surrogate
printf '{%s,"messages":[{"role":"user","content":"\300\257 \355\240\200"}]}' "$M" > "$T/overlong"
openai overlong_utf8_chat /v1/chat/completions "$T/overlong" 400 "$B400"

printf '{%s,"messages":[{"role":"user","content":"a\000b"}],"max_tokens":4}' "$M" > "$T/nul"
openai raw_nul_in_string /v1/chat/completions "$T/nul" 400 "$B400 and .error.code == \"invalid_string\""

printf '{%s,"messages":[{"role":"user","content":"hi"}],"max_tokens":4} trailing' "$M" > "$T/trail"
openai trailing_garbage /v1/chat/completions "$T/trail" 400 "$B400 and .error.code == \"invalid_json\""

printf '{%s,"input":{"text":"x"}}' "$M" > "$T/emb1"
openai embeddings_input_object /v1/embeddings "$T/emb1" 400 "$B400 and .error.param == \"input\""
printf '{%s,"input":["a",7]}' "$M" > "$T/emb2"
openai embeddings_input_mixed /v1/embeddings "$T/emb2" 400 "$B400 and .error.param == \"input[1]\""

printf '{"model":"a\\u0000b","messages":[{"role":"user","content":"hi"}]}' > "$T/nulname"
openai nul_in_model_name /v1/chat/completions "$T/nulname" 400 "$B400 and .error.param == \"model\""

# a refused name is echoed as whole UTF-8 characters: "a" and 40 "é" is
# 81 bytes, and a cut at 64 bytes would split a character
name="a$(printf '\303\251%.0s' $(seq 40))"
printf '{"model":"%s","messages":[{"role":"user","content":"hi"}]}' "$name" > "$T/utf8name"
printf '{"model":"%s","prompt":"hi"}' "$name" > "$T/outf8name"
post /v1/chat/completions "$T/utf8name" > "$T/r"
post /api/generate "$T/outf8name" > "$T/r2"
if [ "$(tail -n 1 "$T/r")" = 400 ] && sed '$d' "$T/r" | iconv -f UTF-8 -t UTF-8 > /dev/null 2>&1 &&
   sed '$d' "$T/r" | jq -e '.error.code == "invalid_model_name"' > /dev/null &&
   [ "$(tail -n 1 "$T/r2")" = 400 ] && sed '$d' "$T/r2" | iconv -f UTF-8 -t UTF-8 > /dev/null 2>&1; then
	ok model_name_echo_is_utf8
else
	fail model_name_echo_is_utf8 "$(tr '\n' ' ' < "$T/r" | head -c 400) $(tr '\n' ' ' < "$T/r2" | head -c 400)"
fi

printf '{%s,"messages":[{"role":"user","content":"hi \377"}]}' "$M" > "$T/outf8"
ollama ollama_chat_invalid_utf8 /api/chat "$T/outf8" 400
printf '{%s,"prompt":"a\000b","stream":false}' "$M" > "$T/onul"
ollama ollama_generate_raw_nul /api/generate "$T/onul" 400
printf '{%s,"messages":[{"role":"user","content":"hi"}]}}' "$M" > "$T/otrail"
ollama ollama_chat_trailing_garbage /api/chat "$T/otrail" 400
printf '{"model":"a\\u0000b","prompt":"hi"}' > "$T/onulname"
ollama ollama_generate_nul_in_name /api/generate "$T/onulname" 400
printf '{%s,"messages":[{"role":"user","content":"a\\u0000b"}],"stream":false}' "$M" > "$T/onulc"
ollama ollama_chat_nul_would_truncate /api/chat "$T/onulc" 400
printf '{%s,"input":[1,2]}' "$M" > "$T/oemb"
ollama ollama_embed_input_type /api/embed "$T/oemb" 400

# the child refuses a prompt longer than its context: a 4xx, not 500/502
python3 -c 'import json; print(json.dumps({"model": "tiny", "max_tokens": 4, "messages": [{"role": "user", "content": "once upon a time " * 600}]}))' > "$T/long"
openai child_4xx_chat /v1/chat/completions "$T/long" 400 "$B400"
python3 -c 'import json; print(json.dumps({"model": "tiny", "stream": True, "max_tokens": 4, "messages": [{"role": "user", "content": "once upon a time " * 600}]}))' > "$T/longs"
openai child_4xx_chat_stream /v1/chat/completions "$T/longs" 400 "$B400"
python3 -c 'import json; print(json.dumps({"model": "tiny", "stream": False, "messages": [{"role": "user", "content": "once upon a time " * 600}]}))' > "$T/olong"
ollama child_4xx_ollama_chat /api/chat "$T/olong" 400
python3 -c 'import json; print(json.dumps({"model": "tiny", "prompt": "once upon a time " * 600}))' > "$T/glong"
ollama child_4xx_ollama_generate_stream /api/generate "$T/glong" 400
# a child's own 5xx keeps its status, in lemon's shape too (llama-server
# answers an embedding input over its batch size with a 500)
python3 -c 'import json; print(json.dumps({"model": "tiny", "input": "once upon a time " * 600}))' > "$T/elong"
openai child_5xx_embeddings_shaped /v1/embeddings "$T/elong" 500 '.error.type == "server_error"'

[ "$FAILS" -eq 0 ]
