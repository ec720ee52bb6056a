#!/bin/sh
# Integration tests of how lemon points a child at its device, with the
# real CPU llama-server over loopback: a GPU candidate's child gets
# --device (CUDA0 / Vulkan0), so a GPU bundle that finds no GPU fails and
# lemon falls back, saying why, instead of silently running on the CPU
# under the GPU's name (here: the CPU build forced as the Vulkan and CUDA
# executables, whose llama-server refuses the device it does not have);
# the child's --parallel slots, chosen per device when not given, are
# reported in /api/v1/health. Prints "ok NAME" or "FAIL NAME: why".
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
T=$(mktemp -d /tmp/lemon-gpusel.XXXXXX)
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
	LEMON_LLAMA_SERVER_VULKAN LEMON_LLAMA_SERVER_CUDA LEMON_API_KEY \
	LEMON_PORT LEMON_HOST LEMON_BACKEND GGML_VK_VISIBLE_DEVICES
"$LEMON" install-backend llamacpp:cpu --mirror "$MIRROR" > /dev/null 2>&1 &&
	"$LEMON" pull --file "$MODEL" tiny > /dev/null ||
	{ echo "FAIL setup: install-backend / pull"; exit 1; }
CPU_EXE=$(find "$XDG_DATA_HOME/lemon/backends" -name llama-server -type f | head -n 1)
[ -x "$CPU_EXE" ] || { echo "FAIL setup: no installed llama-server"; exit 1; }

start_lemon() { # LOG ARGS...
	log=$1
	shift
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	"$LEMON" serve --port "$PORT" --mirror "$MIRROR" "$@" > "$log" 2>&1 &
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
	LPID=
}

chat() { # -> HTTP status
	curl -s -H 'Content-Type: application/json' -m 60 -o "$T/chat" -w '%{http_code}' "$URL/v1/chat/completions" \
		-d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4}'
}

health() { curl -s -m 10 "$URL/api/v1/health" > "$T/h"; }

# the command line of the ready child
child_cmd() {
	p=$(jq -r '[.loaded[] | select(.state == "ready") | .pid][0] // ""' "$T/h")
	[ -n "$p" ] && tr '\0' ' ' < "/proc/$p/cmdline"
}

# --- a Vulkan bundle without a Vulkan GPU: refused by the child, CPU serves
name=vulkan_child_without_gpu_falls_back
if LEMON_LLAMA_SERVER_VULKAN=$CPU_EXE start_lemon "$T/l1.log" --backend vulkan &&
   [ "$(chat)" = 200 ] && health &&
   jq -e '(.loaded[0].backend == "cpu")
	and (.candidates[] | select(.backend == "vulkan") | .device == "Vulkan0" and .failed)
	and (.fallbacks | map(select(.from == "vulkan" and .to == "cpu")) | length == 1)
	and (.fallbacks[0].reason | test("Vulkan0"))' "$T/h" > /dev/null &&
   ! child_cmd | grep -q -- "--device"; then
	ok $name
else
	fail $name "$(cat "$T/h" 2>/dev/null) $(grep -i "device\|falling" "$T/l1.log" | tail -n 3)"
fi
stop_lemon > /dev/null 2>&1

# --- the same for CUDA: CUDA -> Vulkan -> CPU, each failure named ----------
name=cuda_child_without_gpu_falls_back_twice
if LEMON_LLAMA_SERVER_CUDA=$CPU_EXE LEMON_LLAMA_SERVER_VULKAN=$CPU_EXE \
	start_lemon "$T/l2.log" --backend cuda &&
   [ "$(chat)" = 200 ] && health &&
   jq -e '(.loaded[0].backend == "cpu")
	and ([.fallbacks[] | .from + ">" + (.to // "")] == ["cuda>vulkan", "vulkan>cpu"])
	and (.fallbacks[0].reason | test("CUDA0"))
	and (.fallbacks[1].reason | test("Vulkan0"))' "$T/h" > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/h" 2>/dev/null) $(grep -i "falling" "$T/l2.log" | tail -n 3)"
fi
stop_lemon > /dev/null 2>&1

# --- --device: the user's choice reaches the children of its kind --------
name=device_flag_passed_to_its_kind
if LEMON_LLAMA_SERVER_CUDA=$CPU_EXE LEMON_LLAMA_SERVER_VULKAN=$CPU_EXE \
	start_lemon "$T/l5.log" --backend cuda --device CUDA1 &&
   [ "$(chat)" = 200 ] && health &&
   jq -e '(.candidates[] | select(.backend == "cuda") | .device == "CUDA1")
	and (.candidates[] | select(.backend == "vulkan") | .device == "Vulkan0")
	and ([.fallbacks[] | .from + ">" + (.to // "")] == ["cuda>vulkan", "vulkan>cpu"])
	and (.fallbacks[0].reason | test("invalid device: CUDA1"))' "$T/h" > /dev/null; then
	ok $name
else
	fail $name "$(cat "$T/h" 2>/dev/null) $(grep -i "falling" "$T/l5.log" | tail -n 2)"
fi
stop_lemon > /dev/null 2>&1

name=device_flag_several_and_refused
if LEMON_LLAMA_SERVER_VULKAN=$CPU_EXE start_lemon "$T/l6.log" --backend vulkan --device Vulkan1,Vulkan2 &&
   [ "$(chat)" = 200 ] && health &&
   jq -e '(.candidates[] | select(.backend == "vulkan") | .device == "Vulkan1,Vulkan2")
	and (.fallbacks[0].reason | test("Vulkan1"))' "$T/h" > /dev/null; then
	r1=ok
else
	r1="$(cat "$T/h" 2>/dev/null)"
fi
stop_lemon > /dev/null 2>&1
"$LEMON" serve --device CUDA0,Vulkan1 > /dev/null 2> "$T/d1"; c1=$?
"$LEMON" serve --device cuda0 > /dev/null 2> "$T/d2"; c2=$?
"$LEMON" serve --device CUDA0,CUDA1,CUDA2,CUDA3,CUDA4,CUDA5,CUDA6,CUDA7,CUDA8 > /dev/null 2> "$T/d3"; c3=$?
if [ "$r1" = ok ] && [ $c1 = 2 ] && [ $c2 = 2 ] && [ $c3 = 2 ] &&
   grep -q "^lemon: --device 'CUDA0,Vulkan1': expected up to 8 llama.cpp device names of one backend" "$T/d1" &&
   grep -q "^lemon: --device 'cuda0'" "$T/d2" && grep -q "^lemon: --device 'CUDA0,CUDA1" "$T/d3"; then
	ok $name
else
	fail $name "$r1; exits $c1 $c2 $c3: $(head -n 1 "$T/d1" "$T/d2" "$T/d3")"
fi

# --- slots: 4 on the CPU when not given, --parallel when given ------------
name=slots_default_and_flag
s1= s2=
if start_lemon "$T/l3.log" --backend cpu && [ "$(chat)" = 200 ] && health; then
	s1=$(jq -r '.loaded[0].slots' "$T/h")
	c1=$(child_cmd)
fi
stop_lemon > /dev/null 2>&1
if start_lemon "$T/l4.log" --backend cpu --parallel 7 && [ "$(chat)" = 200 ] && health; then
	s2=$(jq -r '.loaded[0].slots' "$T/h")
	c2=$(child_cmd)
fi
stop_lemon > /dev/null 2>&1
case "$s1 $s2|${c1:-}|${c2:-}" in
"4 7|"*"--parallel 4 "*"|"*"--parallel 7 "*)
	if grep -q "on cpu: .* --parallel 4 " "$T/l3.log"; then ok $name; else fail $name "no log line"; fi ;;
*) fail $name "slots '$s1' '$s2' cmd '${c1:-}' '${c2:-}'" ;;
esac

[ $FAILS -eq 0 ]
