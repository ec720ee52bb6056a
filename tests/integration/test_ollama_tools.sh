#!/bin/sh
# Integration tests of the Ollama API details clients trip on (issue 13),
# against a real lemon serve over the real llama-server CPU bundle and the
# tiny model: /api/version (an Ollama release number clients compare, and
# lemon's own), prompt_eval_count counting the whole prompt even when the
# child reused it from its cache, /api/ps expires_at from --idle-timeout,
# /api/show's template and capabilities from the GGUF before any load
# and from the loaded child, images refused with a clear 400 for a model
# without a vision projector and passed (OpenAI image_url parts) to the
# real child started with --mmproj for one that has it (a tiny random
# projector from tests/tools/make-tiny-mmproj.py),
# and a replayed conversation's tool_calls and tool_name accepted by the
# child. Then tool calls from the real child (tools in, message.tool_calls
# out, streamed and whole, the call and its result sent back for a final
# answer, format as response_format) over the model of
# tests/tools/make-toolcall-gguf.py, whose constructed weights make the
# real llama-server call a tool.
# Prints "ok NAME" or "FAIL NAME: why"; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/lemon-oltools.XXXXXX)
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
"$LEMON" pull --file "$MODEL" tiny > /dev/null || { echo "FAIL setup: pull tiny"; exit 1; }
# a model whose chat template renders tools, for /api/show before any load
cat > "$T/tools.jinja" <<'EOF'
{%- if tools %}<|im_start|>system
{%- for tool in tools %}{{ tool | tojson }}{% endfor %}<|im_end|>
{%- endif %}{%- for m in messages %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor %}{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}
EOF
python3 tests/tools/make-tiny-gguf.py --out "$T/tooly.gguf" --chat-template "$T/tools.jinja" > /dev/null &&
	"$LEMON" pull --file "$T/tooly.gguf" tooly > /dev/null || { echo "FAIL setup: pull tooly"; exit 1; }

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
post() { # path body -> body, status on the last line
	curl -s -m 60 -H 'Content-Type: application/json' -w '\n%{http_code}' "$URL$1" -d "$2"
}
code() { tail -n 1 "$1"; }
body() { sed '$d' "$1"; }

start_lemon "$T/l1.log" --idle-timeout 300

# nothing is loaded yet: the template and capabilities come from the GGUF
# (tiny's GGUF has no template: llama-server would use its default)
name=show_template_without_loading
post /api/show '{"model":"tooly"}' > "$T/s0"
post /api/show '{"model":"tiny"}' > "$T/s1"
if [ "$(code "$T/s0")" = 200 ] && [ "$(curl -s "$URL/api/ps" | jq '.models | length')" = 0 ] &&
   body "$T/s0" | jq -e --rawfile t "$T/tools.jinja" '.template == $t and (.capabilities | index("tools") != null and index("completion") != null and index("embedding") != null)' > /dev/null &&
   body "$T/s1" | jq -e '.template == "" and (.capabilities | index("tools") == null)' > /dev/null; then
	ok $name
else
	fail $name "$(head -c 300 "$T/s0") / $(head -c 200 "$T/s1")"
fi

name=version_for_ollama_clients
curl -s "$URL/api/version" > "$T/v"
if jq -e --arg v "$(cat VERSION)" '.version == "0.12.0" and .lemon_version == $v' "$T/v" > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/v")"
fi

name=prompt_eval_count_whole_prompt
CHAT='{"model":"tiny","stream":false,"options":{"num_predict":2},"messages":[{"role":"user","content":"the same prompt twice, cached the second time"}]}'
post /api/chat "$CHAT" > "$T/c1"
post /api/chat "$CHAT" > "$T/c2"
n1=$(body "$T/c1" | jq '.prompt_eval_count')
n2=$(body "$T/c2" | jq '.prompt_eval_count')
if [ "$(code "$T/c2")" = 200 ] && [ "$n1" -gt 5 ] && [ "$n1" = "$n2" ]; then
	ok $name
else
	fail $name "first $n1, second $n2: $(cat "$T/c2")"
fi

name=ps_expires_at_from_idle_timeout
now=$(date +%s)
curl -s "$URL/api/ps" > "$T/ps"
exp=$(jq -r '.models[0].expires_at' "$T/ps")
es=$(date -d "$exp" +%s 2>/dev/null || echo 0)
if [ "$es" -ge $((now + 290)) ] && [ "$es" -le $((now + 302)) ]; then
	ok $name
else
	fail $name "now $now, expires_at '$exp' ($es)"
fi

name=show_template_and_capabilities
post /api/show '{"model":"tiny"}' > "$T/s"
if [ "$(code "$T/s")" = 200 ] &&
   body "$T/s" | jq -e '(.template | type == "string" and length > 0) and (.capabilities | index("completion") != null and index("embedding") != null)' > /dev/null; then
	ok $name
else
	fail $name "$(head -c 300 "$T/s")"
fi

name=images_refused_clearly
post /api/chat '{"model":"tiny","messages":[{"role":"user","content":"what is this","images":["iVBORw0KGgo="]}]}' > "$T/i"
if [ "$(code "$T/i")" = 400 ] && body "$T/i" | jq -e '.error | test("vision projector")' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/i")"
fi

name=replayed_tool_turns_accepted_by_child
post /api/chat '{"model":"tiny","stream":false,"options":{"num_predict":2},"messages":[{"role":"user","content":"weather?"},
	{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},
	{"role":"tool","content":"22C","tool_name":"get_weather"}]}' > "$T/r"
if [ "$(code "$T/r")" = 200 ] && body "$T/r" | jq -e '.done == true' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/r")"
fi

# a model with a vision projector (tests/tools/make-tiny-mmproj.py: random
# CLIP + LLaVA mlp weights that llama.cpp's mtmd loader accepts): the real
# child starts with --mmproj and counts the image's tokens in the prompt
python3 tests/tools/make-tiny-mmproj.py --out "$T/proj.gguf" --png-b64 "$T/img.b64" > /dev/null ||
	{ echo "FAIL setup: make-tiny-mmproj.py"; exit 1; }
name=mmproj_import_checked
if "$LEMON" pull --file "$MODEL" --mmproj "$MODEL" eye > "$T/pe" 2>&1; then
	fail $name "a text model was accepted as a projector: $(cat "$T/pe")"
elif ! grep -q "not a vision projector" "$T/pe"; then
	fail $name "$(cat "$T/pe")"
elif ! "$LEMON" pull --file "$MODEL" --mmproj "$T/proj.gguf" eye > "$T/pe" 2>&1 ||
     [ ! -f "$XDG_DATA_HOME/lemon/models/eye.mmproj.gguf" ]; then
	fail $name "$(cat "$T/pe")"
elif curl -s "$URL/api/tags" | jq -e '[.models[].name] | any(test("mmproj"))' > /dev/null; then
	fail $name "the projector is listed as a model"
else
	ok $name
fi

name=vision_capability
post /api/show '{"model":"eye"}' > "$T/sv"
if body "$T/sv" | jq -e '.capabilities | index("vision") != null' > /dev/null &&
   body "$T/s1" | jq -e '.capabilities | index("vision") == null' > /dev/null; then
	ok $name
else
	fail $name "$(head -c 300 "$T/sv")"
fi

name=images_to_vision_child
IMG=$(cat "$T/img.b64")
post /api/chat '{"model":"eye","stream":false,"options":{"num_predict":2},"messages":[{"role":"user","content":"what is this"}]}' > "$T/v0"
post /api/chat '{"model":"eye","stream":false,"options":{"num_predict":2},"messages":[{"role":"user","content":"what is this","images":["'"$IMG"'"]}]}' > "$T/v1"
post /api/generate '{"model":"eye","stream":false,"options":{"num_predict":2},"prompt":"what is this","images":["'"$IMG"'"]}' > "$T/v2"
n0=$(body "$T/v0" | jq '.prompt_eval_count')
n1=$(body "$T/v1" | jq '.prompt_eval_count')
n2=$(body "$T/v2" | jq '.prompt_eval_count')
# (only a child started with the projector turns an image into tokens)
if [ "$(code "$T/v0")" = 200 ] && [ "$(code "$T/v1")" = 200 ] && [ "$(code "$T/v2")" = 200 ] &&
   [ "$n1" -gt "$n0" ] && [ "$n2" -gt "$n0" ]; then
	ok $name
else
	fail $name "without $n0, with $n1 / $n2: $(tail -c 300 "$T/v1") $(tail -c 200 "$T/v2")"
fi

name=openai_image_parts
PART='{"type":"image_url","image_url":{"url":"data:image/png;base64,'"$IMG"'"}}'
post /v1/chat/completions '{"model":"eye","max_tokens":2,"messages":[{"role":"user","content":[{"type":"text","text":"what is this"},'"$PART"']}]}' > "$T/o1"
post /v1/chat/completions '{"model":"tiny","max_tokens":2,"messages":[{"role":"user","content":[{"type":"text","text":"what is this"},'"$PART"']}]}' > "$T/o2"
o1=$(body "$T/o1" | jq '.usage.prompt_tokens')
if [ "$(code "$T/o1")" = 200 ] && [ "$o1" -gt "$n0" ] && [ "$(code "$T/o2")" = 400 ] &&
   body "$T/o2" | jq -e '.error.message | test("vision projector")' > /dev/null; then
	ok $name
else
	fail $name "eye: $(tail -c 200 "$T/o1"); tiny: $(cat "$T/o2")"
fi

name=bad_image_refused
post /api/chat '{"model":"eye","messages":[{"role":"user","content":"x","images":["not base64!"]}]}' > "$T/v3"
if [ "$(code "$T/v3")" = 400 ] && body "$T/v3" | jq -e '.error | test("base64")' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/v3")"
fi
stop_lemon

name=rm_removes_projector
if "$LEMON" rm eye > /dev/null 2>&1 && [ ! -e "$XDG_DATA_HOME/lemon/models/eye.mmproj.gguf" ] &&
   [ ! -e "$XDG_DATA_HOME/lemon/models/eye.gguf" ]; then
	ok $name
else
	fail $name "$(ls "$XDG_DATA_HOME/lemon/models")"
fi

# --- tool calls, from the real llama-server -----------------------------
# tests/tools/make-toolcall-gguf.py: constructed weights, the Qwen2
# vocabulary and the Qwen2.5 tool template; the real child emits
# get_weather {"city":"Paris"} through its lazy <tool_call> grammar, and
# answers "It is sunny." when the tool's result and the replayed call are
# in its prompt ("Unknown call." with the result alone)
python3 tests/tools/make-toolcall-gguf.py --out "$T/toolcall.gguf" > /dev/null &&
	"$LEMON" pull --file "$T/toolcall.gguf" toolcall > /dev/null || { echo "FAIL setup: pull toolcall"; exit 1; }
# (the child's trace level logs the chat format it picked for each request)
export LLAMA_ARG_LOG_VERBOSITY=4
start_lemon "$T/l2.log"
unset LLAMA_ARG_LOG_VERBOSITY
TOOLS='"tools":[{"type":"function","function":{"name":"get_weather","description":"the weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]'
ASK='{"role":"user","content":"What is the weather?"}'

name=tool_call_whole
post /api/chat "{\"model\":\"toolcall\",\"stream\":false,\"messages\":[$ASK],$TOOLS}" > "$T/t1"
if [ "$(code "$T/t1")" = 200 ] &&
   body "$T/t1" | jq -e '.message.tool_calls == [{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}] and .message.content == "" and .done_reason == "stop" and .done == true' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/t1")"
fi

# the child streams the arguments in fragments: one Ollama chunk carries the whole call
name=tool_call_streamed
post /api/chat "{\"model\":\"toolcall\",\"messages\":[$ASK],$TOOLS}" > "$T/t2"
if [ "$(code "$T/t2")" = 200 ] &&
   [ "$(body "$T/t2" | jq -c 'select(.message.tool_calls) | .message.tool_calls' | wc -l)" = 1 ] &&
   body "$T/t2" | jq -s -e '([.[] | select(.message.tool_calls) | .message.tool_calls] == [[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]]) and (last | .done == true)' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/t2")"
fi

# the call as the client got it, replayed with the tool's result: the child
# answers only when both are rendered into its prompt
CALL=$(body "$T/t1" | jq -c '.message')
RESULT='{"role":"tool","content":"22C","tool_name":"get_weather"}'
name=tool_result_round_trip
post /api/chat "{\"model\":\"toolcall\",\"stream\":false,\"messages\":[$ASK,$CALL,$RESULT],$TOOLS}" > "$T/t3"
if [ "$(code "$T/t3")" = 200 ] &&
   body "$T/t3" | jq -e '.message.content == "It is sunny." and (.message.tool_calls == null) and .done_reason == "stop"' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/t3")"
fi

name=tool_result_round_trip_streamed
post /api/chat "{\"model\":\"toolcall\",\"messages\":[$ASK,$CALL,$RESULT],$TOOLS}" > "$T/t4"
if [ "$(code "$T/t4")" = 200 ] &&
   body "$T/t4" | jq -s -e '([.[].message.content] | join("")) == "It is sunny." and (last | .done == true)' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/t4")"
fi

# the model itself tells a result without its call apart (what a dropped
# assistant tool_calls would give), so the round trip above can fail
name=tool_result_without_call_differs
post /api/chat "{\"model\":\"toolcall\",\"stream\":false,\"messages\":[$ASK,$RESULT],$TOOLS}" > "$T/t5"
if [ "$(code "$T/t5")" = 200 ] && body "$T/t5" | jq -e '.message.content == "Unknown call."' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/t5")"
fi

# what an Ollama client reads before it sends tools: the loaded child's template
name=show_tool_model
post /api/show '{"model":"toolcall"}' > "$T/s2"
if [ "$(code "$T/s2")" = 200 ] &&
   body "$T/s2" | jq -e '(.template | contains("<tool_call>")) and (.capabilities | index("tools") != null and index("completion") != null)' > /dev/null; then
	ok $name
else
	fail $name "$(head -c 300 "$T/s2")"
fi

# format as response_format: the child's grammar forces the schema's only value
name=format_schema_to_response_format
post /api/chat '{"model":"toolcall","stream":false,"messages":[{"role":"user","content":"x"}],
	"format":{"type":"object","properties":{"unit":{"type":"string","enum":["celsius"]}},"required":["unit"]}}' > "$T/f"
if [ "$(code "$T/f")" = 200 ] && body "$T/f" | jq -e '.message.content | fromjson == {"unit":"celsius"}' > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/f")"
fi

# the child's own log (lemon copies it): the Jinja template path (--jinja)
# with the template's own tool format (peg-native: the parser and grammar
# llama.cpp's template analysis built from Qwen2.5's template)
name=child_chat_format
if grep -q '^\[llama-server toolcall/chat/cpu\] .*chat format: peg-native' "$T/l2.log"; then
	ok $name
else
	fail $name "$(grep 'llama-server toolcall' "$T/l2.log" | grep -i 'format' | head -n 3)"
fi
stop_lemon

[ "$FAILS" -eq 0 ]
