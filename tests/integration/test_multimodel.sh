#!/bin/sh
# Integration tests of multi-model serving and memory planning against the
# real llama-server over loopback: --max-loaded with LRU eviction (child
# pids checked), --idle-timeout, a chat and an embedding model together,
# 16 concurrent clients sharing one child with --parallel slots, concurrent
# first requests starting one child only, and models refused before any
# child starts (too large for the RAM of a fixture machine, hostile
# header). Prints "ok NAME" or "FAIL NAME: why"; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
T=$(mktemp -d /tmp/lemon-multi.XXXXXX)
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
for m in tiny:1234 tiny-b:99 tiny-c:7; do
	f=build/models/${m%%:*}.gguf
	[ -f "$f" ] || python3 tests/tools/make-tiny-gguf.py --seed "${m#*:}" --out "$f" > /dev/null ||
		{ echo "FAIL setup: make-tiny-gguf.py"; exit 1; }
done
# a wider model with a 4096 context: long generations take seconds
[ -f build/models/slow.gguf ] ||
	python3 tests/tools/make-tiny-gguf.py --seed 5 --embd 128 --layers 4 --ctx 4096 \
		--out build/models/slow.gguf > /dev/null || { echo "FAIL setup: slow model"; exit 1; }

start_bundle_mirror

export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_LLAMA_SERVER_ROCM \
	LEMON_LLAMA_SERVER_VULKAN LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND
for m in tiny tiny-b tiny-c slow; do
	"$LEMON" pull --file "build/models/$m.gguf" "$m" > /dev/null ||
		{ echo "FAIL setup: pull $m"; exit 1; }
done


start_lemon() { # LOG ARGS...
	log=$1
	shift
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	"$LEMON" serve --port "$PORT" --backend cpu --mirror "$MIRROR" "$@" > "$log" 2>&1 &
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

chat() { # model -> prints the HTTP status
	curl -s -H 'Content-Type: application/json' -m 60 -o "$T/chat.$1" -w '%{http_code}' "$URL/v1/chat/completions" \
		-d "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4}"
}

# pid of the ready child of model (role chat unless given); "" when none
pid_of() {
	curl -s -m 10 "$URL/api/v1/health" |
		jq -r --arg m "$1" --arg r "${2:-chat}" \
			'[.loaded[] | select(.model == $m and .role == $r and .state == "ready") | .pid][0] // ""'
}

# the models with a child holding memory (ready, loading or stopping)
loaded() {
	curl -s -m 10 "$URL/api/v1/health" |
		jq -r '[.loaded[] | select(.state == "ready" or .state == "loading") | .model + "/" + .role] | sort | join(" ")'
}

gone() { # pid: true once the process no longer exists (reaped)
	i=0
	while [ $i -lt 50 ]; do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

name=flag_values_checked
"$LEMON" serve --max-loaded 0 > /dev/null 2> "$T/f1"; r1=$?
"$LEMON" serve --parallel 65 > /dev/null 2> "$T/f2"; r2=$?
"$LEMON" serve --idle-timeout x > /dev/null 2> "$T/f3"; r3=$?
if [ $r1 = 2 ] && [ $r2 = 2 ] && [ $r3 = 2 ] &&
   grep -q "^lemon: --max-loaded '0': expected 1..8" "$T/f1" &&
   grep -q "^lemon: --parallel '65': expected 1..64" "$T/f2" &&
   grep -q "^lemon: --idle-timeout 'x': expected 0..86400" "$T/f3"; then
	ok $name
else
	fail $name "$r1 $r2 $r3 $(head -n 1 "$T/f1" "$T/f2" "$T/f3")"
fi

# --- --max-loaded 1: the second model replaces the first ----------------
name=max_loaded_1_evicts
if ! start_lemon "$T/l1.log" --max-loaded 1; then
	fail $name "lemon did not start: $(tail -n 5 "$T/l1.log")"
	exit 1
fi
s1=$(chat tiny); p1=$(pid_of tiny)
s2=$(chat tiny-b); p2=$(pid_of tiny-b)
if [ "$s1" = 200 ] && [ "$s2" = 200 ] && [ -n "$p1" ] && [ -n "$p2" ] &&
   [ "$p1" != "$p2" ] && gone "$p1" && [ "$(loaded)" = "tiny-b/chat" ] &&
   grep -q "unloading tiny (least recently used) to load tiny-b" "$T/l1.log"; then
	ok $name
else
	fail $name "$s1 $s2 pids '$p1' '$p2' loaded '$(loaded)'"
fi

# an embedding child is counted apart from chat children: both stay
name=chat_and_embedding_together
code=$(curl -s -H 'Content-Type: application/json' -m 60 -o "$T/emb" -w '%{http_code}' "$URL/v1/embeddings" \
	-d '{"model":"tiny-c","input":"hello"}')
if [ "$code" = 200 ] && jq -e '.data[0].embedding | length == 64' "$T/emb" > /dev/null &&
   [ "$(loaded)" = "tiny-b/chat tiny-c/embeddings" ] && kill -0 "$p2" 2>/dev/null &&
   [ "$(chat tiny-b)" = 200 ] && [ "$(pid_of tiny-b)" = "$p2" ]; then
	ok $name
else
	fail $name "$code $(head -c 300 "$T/emb") loaded '$(loaded)'"
fi
stop_lemon

# --- --max-loaded 2, three models: the least recently used one goes -----
name=lru_order
start_lemon "$T/l2.log" --max-loaded 2
chat tiny > /dev/null; pa=$(pid_of tiny)
chat tiny-b > /dev/null; pb=$(pid_of tiny-b)
chat tiny > /dev/null # tiny is now the most recently used
chat tiny-c > /dev/null; pc=$(pid_of tiny-c)
l1=$(loaded)
gone "$pb"; b_gone=$?
kill -0 "$pa" 2>/dev/null; a_alive=$?
chat tiny-b > /dev/null; pb2=$(pid_of tiny-b) # now tiny is the LRU one
l2=$(loaded)
if [ "$l1" = "tiny-c/chat tiny/chat" ] && [ $b_gone = 0 ] && [ $a_alive = 0 ] &&
   [ "$(pid_of tiny)" = "" ] && gone "$pa" && kill -0 "$pc" 2>/dev/null &&
   [ -n "$pb2" ] && [ "$pb2" != "$pb" ] && [ "$l2" = "tiny-b/chat tiny-c/chat" ]; then
	ok $name
else
	fail $name "after c: '$l1' (b gone $b_gone, a alive $a_alive); after b: '$l2'"
fi
stop_lemon

# --- concurrency: first requests race, then 16 clients share one child ---
name=concurrent_first_request_one_child
start_lemon "$T/l3.log" --parallel 4
PIDS=
for i in 1 2 3 4 5 6; do
	{ chat tiny; echo; } > "$T/first.$i" &
	PIDS="$PIDS $!"
done
wait_jobs() { for j in $PIDS; do wait "$j"; done; PIDS=; }
wait_jobs
n200=$(cat "$T"/first.* | grep -c '^200$')
starts=$(grep -c "starting tiny (chat)" "$T/l3.log")
if [ "$n200" = 6 ] && [ "$starts" = 1 ]; then
	ok $name
else
	fail $name "$n200 of 6 answered, $starts children started"
fi

name=sixteen_clients_parallel_slots
pid=$(pid_of tiny)
for i in $(seq 1 16); do
	curl -s -H 'Content-Type: application/json' -m 120 -o "$T/c.$i" -w '%{http_code}\n' "$URL/v1/chat/completions" \
		-d '{"model":"tiny","messages":[{"role":"user","content":"count"}],"max_tokens":16}' > "$T/s.$i" &
	PIDS="$PIDS $!"
done
wait_jobs
n200=$(cat "$T"/s.* | grep -c '^200$')
ncontent=0
for i in $(seq 1 16); do
	jq -e '.choices[0].message.content | type == "string"' "$T/c.$i" > /dev/null 2>&1 &&
		ncontent=$((ncontent + 1))
done
if [ "$n200" = 16 ] && [ "$ncontent" = 16 ] && [ -n "$pid" ] && [ "$(pid_of tiny)" = "$pid" ] &&
   [ "$(grep -c "starting tiny (chat)" "$T/l3.log")" = 1 ] &&
   tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "--parallel 4 "; then
	ok $name
else
	fail $name "$n200 ok, $ncontent with content, pid '$pid' -> '$(pid_of tiny)'"
fi
stop_lemon

# --- idle timeout -------------------------------------------------------
name=idle_timeout_unloads
start_lemon "$T/l4.log" --idle-timeout 2
s=$(chat tiny); p=$(pid_of tiny)
sleep 1
still=$(pid_of tiny)
i=0
while [ -n "$(pid_of tiny)" ] && [ $i -lt 60 ]; do sleep 0.1; i=$((i + 1)); done
if [ "$s" = 200 ] && [ -n "$p" ] && [ "$still" = "$p" ] && [ -z "$(pid_of tiny)" ] &&
   gone "$p" && grep -q "unloading tiny (chat): idle for 2 s" "$T/l4.log" &&
   [ "$(chat tiny)" = 200 ] && [ -n "$(pid_of tiny)" ] && [ "$(pid_of tiny)" != "$p" ]; then
	ok $name
else
	fail $name "$s pid '$p' at 1 s '$still' now '$(pid_of tiny)'"
fi
stop_lemon

# a request still running past the idle timeout keeps its child: it holds
# a lease until its answer is sent, and a leased child is never idle
name=idle_timeout_spares_busy_child
start_lemon "$T/l4b.log" --idle-timeout 1 --ctx-size 16384
chat slow > /dev/null
p=$(pid_of slow)
t0=$(date +%s%N)
# about 3 s on an idle 2-core machine; the client waits up to 120 s so a
# loaded machine (a CI neighbour, a browser test) does not time it out
code=$(curl -s -H 'Content-Type: application/json' -m 120 -o "$T/long" -w '%{http_code}' "$URL/v1/chat/completions" \
	-d '{"model":"slow","messages":[{"role":"user","content":"hi"}],"max_tokens":3000,"ignore_eos":true}')
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$ms" -lt 1600 ]; then
	echo "skip $name: the request took $ms ms, too short to outlast the 1 s timeout"
elif [ "$code" = 200 ] && jq -e '.usage.completion_tokens == 3000' "$T/long" > /dev/null &&
     [ "$(grep -c "unloading slow (chat): idle" "$T/l4b.log")" = 0 ] &&
     [ "$(pid_of slow)" = "$p" ] && gone "$p" &&
     grep -q "unloading slow (chat): idle for 1 s" "$T/l4b.log"; then
	ok "$name ($ms ms request)"
else
	fail $name "$code after $ms ms: $(head -c 200 "$T/long"); $(grep unloading "$T/l4b.log")"
fi
stop_lemon

# --- refused before anything starts --------------------------------------
# a plausible 70B-class f16 header (80 layers of 8192 x 28672, no data):
# the parser accepts it, the memory plan refuses it on a machine whose
# /proc/meminfo (the cpu-vm fixture) says 8131212 kB (7941 MiB). An import
# checks that a file holds its tensors, so the one imported (huge-whole)
# is the same header in a sparse file of the full size
python3 - "$T/huge.gguf" "$T/hostile.gguf" "$T/huge-whole.gguf" <<'PY'
import struct, sys
def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b
def kv_str(k, v): return s(k) + struct.pack("<I", 8) + s(v)
def kv_u32(k, v): return s(k) + struct.pack("<II", 4, v)
def model(path, misalign):
    kvs = [kv_str("general.architecture", "llama"), kv_u32("llama.block_count", 80),
           kv_u32("llama.context_length", 4096), kv_u32("llama.embedding_length", 8192),
           kv_u32("llama.attention.head_count", 64), kv_u32("llama.attention.head_count_kv", 8)]
    tensors, off = [], 0
    for i in range(80):
        tensors.append(s("blk.%d.ffn_up.weight" % i) + struct.pack("<IQQIQ", 2, 8192, 28672, 1, off + (misalign if i == 3 else 0)))
        off += 8192 * 28672 * 2
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(tensors)
    out += b"\0" * (-len(out) % 32)
    open(path, "wb").write(out)
    return len(out) + off
model(sys.argv[1], 0)
model(sys.argv[2], 2)
with open(sys.argv[3], "wb") as f:
    f.truncate(model(sys.argv[3], 0))
PY

name=too_large_refused_before_start
start_lemon "$T/l5.log" --sysroot tests/fixtures/cpu-vm
"$LEMON" pull --file "$T/huge-whole.gguf" huge > "$T/pull.out" 2>&1
code=$(chat huge)
if grep -q "GGUF v3, llama" "$T/pull.out" && [ "$code" = 503 ] &&
   jq -e '.error.message | test("model .huge. needs about [0-9]+ MiB \\(weights 35840 MiB, context [0-9]+ MiB\\) but the machine has 7941 MiB of RAM")' \
	"$T/chat.huge" > /dev/null &&
   ! grep -q "starting huge" "$T/l5.log" &&
   [ "$(curl -s "$URL/api/v1/health" | jq '.loaded | length')" = 0 ]; then
	ok $name
else
	fail $name "$code $(cat "$T/chat.huge") $(cat "$T/pull.out")"
fi

name=hostile_header_refused
cp "$T/hostile.gguf" "$XDG_DATA_HOME/lemon/models/hostile.gguf"
code=$(chat hostile)
if [ "$code" = 400 ] &&
   jq -e '.error.message | test("hostile.gguf.*unaligned offset")' "$T/chat.hostile" > /dev/null &&
   ! grep -q "starting hostile" "$T/l5.log" && kill -0 "$LPID" &&
   [ "$(chat tiny)" = 200 ]; then
	ok $name
else
	fail $name "$code $(cat "$T/chat.hostile")"
fi
stop_lemon

# --- partial offload: a GPU fixture (rx6700xt: 12272 MiB VRAM, 32020 MiB
# RAM) whose Vulkan candidate is the CPU llama-server. tiny is loaded there
# first and holds its planned share of the VRAM. The huge header does not
# fit in what is left but fits in that plus RAM, so it starts with part of
# its layers offloaded (the child gets that --n-gpu-layers); the header is
# not a whole model, so llama-server cannot load it: the model is blamed
# (400), not the backend, so there is no CPU fallback and vulkan stays in use
name=partial_offload_planned
EXE=$(find "$XDG_DATA_HOME/lemon/backends" -name llama-server -type f -perm -u+x | head -n 1)
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
cpu_as_gpu_exe "$EXE" "$T/vulkan-standin"
LEMON_LLAMA_SERVER_VULKAN=$T/vulkan-standin "$LEMON" serve --port "$PORT" --backend vulkan \
	--sysroot tests/fixtures/rx6700xt > "$T/l6.log" 2>&1 &
LPID=$!
i=0
while ! grep -q "listening on" "$T/l6.log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
tcode=$(chat tiny)
tpid=$(pid_of tiny)
code=$(chat huge)
free=$(sed -n 's/.*huge needs about 38976 MiB, more than the \([0-9]*\) MiB of VRAM free: [1-9][0-9]* of its layers on vulkan, the rest in RAM.*/\1/p' "$T/l6.log")
ngl=$(sed -n 's/.*huge needs about 38976 MiB, more than the [0-9]* MiB of VRAM free: \([1-9][0-9]*\) of its layers on vulkan.*/\1/p' "$T/l6.log")
if [ "$tcode" = 200 ] && [ -n "$tpid" ] && [ "$code" = 400 ] &&
   grep -q "starting tiny (chat) on vulkan" "$T/l6.log" &&
   [ -n "$free" ] && [ "$free" -lt 12272 ] && [ "$free" -gt 12100 ] &&
   grep -q "starting huge (chat) on vulkan Vulkan0: .* -c 4096 --parallel 8 --n-gpu-layers $ngl$" "$T/l6.log" &&
   ! grep -q "starting huge (chat) on cpu" "$T/l6.log" &&
   jq -e '.error.message | test("^model .huge. cannot be loaded: error loading model: ")' "$T/chat.huge" > /dev/null &&
   curl -s "$URL/api/v1/health" | jq -e '(.fallbacks | length == 0) and ([.candidates[] | select(.failed)] | length == 0)' > /dev/null; then
	ok "$name ($free MiB of VRAM left by tiny)"
else
	fail $name "$tcode $code free '$free' $(cat "$T/chat.huge"; grep -E "huge|VRAM" "$T/l6.log" | head -n 5)"
fi
stop_lemon

[ $FAILS -eq 0 ]
