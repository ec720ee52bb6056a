#!/bin/sh
# Integration test of one model split across the GPUs of one machine
# (issue 15 item 3) under `lemon serve --sysroot` of the assembled
# two-GPU fixture rx6700xt-x2 (two RX 6700 XT, 12272 MiB each): the ROCm
# candidate is the real CPU llama-server behind tests/integration/lib.sh's
# cpu_as_gpu_exe stand-in (it drops --device; the CPU build parses
# --split-mode and --tensor-split itself), behind a wrapper that records
# the child's argv. A 40-layer f16 header (about 19 GiB: larger than one
# GPU, smaller than both) gets --split-mode layer --device ROCm0,ROCm1
# --tensor-split 12272,12272 and every layer offloaded, the plan is
# logged and /api/v1/health shows the placement (the header is no whole
# model, so the child then fails to load it: 400, the model is blamed).
# The tiny model, which fits one GPU, is not split; with
# ROCR_VISIBLE_DEVICES set (HIP's numbering unknown) nothing is split;
# the Vulkan candidate spans both GPUs too.
# Prints "ok NAME" or "FAIL NAME: why"; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
T=$(mktemp -d /tmp/lemon-mgpu.XXXXXX)
FAILS=0
MPID=
LPID=
CPID=

. tests/integration/lib.sh

cleanup() {
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	[ -n "$CPID" ] && kill "$CPID" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

need_lemon
need_bundle
need_tiny_model
start_bundle_mirror

export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_LLAMA_SERVER_ROCM \
	LEMON_LLAMA_SERVER_VULKAN LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND \
	ROCR_VISIBLE_DEVICES HIP_VISIBLE_DEVICES CUDA_VISIBLE_DEVICES GGML_VK_VISIBLE_DEVICES
"$LEMON" install-backend llamacpp:cpu --mirror "$MIRROR" --progress none > "$T/install.log" 2>&1 ||
	{ echo "FAIL setup: install-backend $(tail -n 3 "$T/install.log")"; exit 1; }
EXE=$(find "$XDG_DATA_HOME/lemon/backends" -name llama-server -type f -perm -u+x | head -n 1)
cpu_as_gpu_exe "$EXE" "$T/rocm-cpu"
# each start's argv, one line per argument, then a "--" line; while
# $T/slow exists a start waits 3 s first, so that /api/v1/health can be
# read while the child is loading
cat > "$T/rocm-standin" <<SH
#!/bin/sh
for a do printf '%s\n' "\$a"; done >> "$T/argv"
echo -- >> "$T/argv"
[ -f "$T/slow" ] && sleep 3
exec "$T/rocm-cpu" "\$@"
SH
chmod +x "$T/rocm-standin"

# 40 layers of 8192 x 28672 f16 (17920 MiB of weights), no data; an import
# checks that a file holds its tensors: a sparse file of the full size
python3 - "$T/big.gguf" <<'PY'
import struct, sys
def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b
def kv_str(k, v): return s(k) + struct.pack("<I", 8) + s(v)
def kv_u32(k, v): return s(k) + struct.pack("<II", 4, v)
kvs = [kv_str("general.architecture", "llama"), kv_u32("llama.block_count", 40),
       kv_u32("llama.context_length", 4096), kv_u32("llama.embedding_length", 8192),
       kv_u32("llama.attention.head_count", 64), kv_u32("llama.attention.head_count_kv", 8)]
tensors, off = [], 0
for i in range(40):
    tensors.append(s("blk.%d.ffn_up.weight" % i) + struct.pack("<IQQIQ", 2, 8192, 28672, 1, off))
    off += 8192 * 28672 * 2
out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(tensors)
out += b"\0" * (-len(out) % 32)
with open(sys.argv[1], "wb") as f:
    f.write(out)
    f.truncate(len(out) + off)
PY
"$LEMON" pull --file "$T/big.gguf" big > "$T/pull.out" 2>&1 &&
	"$LEMON" pull --file "$MODEL" tiny >> "$T/pull.out" 2>&1 ||
	{ echo "FAIL setup: pull $(cat "$T/pull.out")"; exit 1; }
rm -f "$T/big.gguf"

start_lemon() { # LOG [ENV=VALUE...]; SYSROOT, SERVE_ARGS: other machine, flags
	log=$1
	shift
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	env "$@" LEMON_LLAMA_SERVER_ROCM="$T/rocm-standin" LEMON_LLAMA_SERVER_VULKAN="$T/rocm-standin" \
		"$LEMON" serve --port "$PORT" --backend "${BACKEND:-rocm}" \
		--sysroot "${SYSROOT:-tests/fixtures/rx6700xt-x2}" ${SERVE_ARGS:-} > "$log" 2>&1 &
	LPID=$!
	i=0
	while ! grep -q "listening on" "$log" 2>/dev/null && [ $i -lt 300 ]; do
		kill -0 "$LPID" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
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

# the argv of the last start (one line each, joined by spaces)
last_argv() {
	awk '$0 == "--" { last = cur; cur = ""; next } { cur = cur (cur == "" ? "" : " ") $0 } END { print last }' "$T/argv"
}

# --- tiny fits one GPU: no split -----------------------------------------
name=fits_one_gpu_not_split
start_lemon "$T/l1.log"
code=$(chat tiny)
argv=$(last_argv)
case $argv in
*--split-mode*|*--tensor-split*) split=yes ;;
*) split=no ;;
esac
if [ "$code" = 200 ] && [ $split = no ] && grep -q "rocm may split a model over 2 GPUs" "$T/l1.log" &&
   ! grep -q "tiny needs about" "$T/l1.log"; then
	ok $name
else
	fail $name "$code split=$split argv '$argv' $(grep -E "tiny|split" "$T/l1.log" | head -n 5)"
fi

unload() {
	curl -s -m 30 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		"$URL/api/v1/unload" -d "{\"model_name\":\"$1\"}"
}
plan() { # MODEL -> "plan|devices|tensor_split|summary" from GET /api/v1/plans
	curl -s -m 10 "$URL/api/v1/plans" | jq -r --arg m "$1" \
		'.data[] | select(.id == $m) | "\(.plan)|\(.devices // "")|\(.tensor_split // "")|\(.summary)"'
}
# the GPUs are free again (tiny planned a share of ROCm0) once it is gone
unload tiny > /dev/null
i=0
while curl -s -m 5 "$URL/api/v1/health" | jq -e '.loaded | length > 0' > /dev/null && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done

# --- the plans route shows the placement a load makes: big is split over
# both GPUs (it said "partial" from the first GPU alone before) ----------
name=plans_show_split
p=$(plan big)
case $p in
"split|ROCm0,ROCm1|12272,12272|split over ROCm0,ROCm1 (rocm, tensor split 12272,12272, "*) ok $name ;;
*) fail $name "'$p'" ;;
esac

# --- big: larger than one GPU, fits both: split by layer ------------------
name=split_across_two_gpus
: > "$T/argv"
: > "$T/slow"
chat big > "$T/code.big" &
CPID=$!
i=0
placement=
while [ -z "$placement" ] && [ $i -lt 50 ]; do
	sleep 0.1
	placement=$(curl -s -m 5 "$URL/api/v1/health" |
		jq -r '[.loaded[] | select(.model == "big" and .state == "loading")][0].placement // ""')
	i=$((i + 1))
done
wait $CPID
rm -f "$T/slow"
code=$(cat "$T/code.big")
argv=$(last_argv)
ngl=$(printf '%s\n' "$argv" | sed -n 's/.*--n-gpu-layers \([0-9]*\).*/\1/p')
if [ "$code" = 400 ] &&
   printf '%s\n' "$argv" | grep -q -- "--device ROCm0,ROCm1 " &&
   printf '%s\n' "$argv" | grep -q -- "--split-mode layer --tensor-split 12272,12272$" &&
   [ "$ngl" = 41 ] &&
   grep -q "big needs about [0-9]* MiB, more than the 12272 MiB free on ROCm0: --split-mode layer --device ROCm0,ROCm1 --tensor-split 12272,12272 (MiB free), 41 layers on the GPUs, -c 4096; needs about [0-9]* MiB of 24544 MiB free" "$T/l1.log" &&
   grep -q "starting big (chat) on rocm ROCm0,ROCm1: .* --n-gpu-layers 41$" "$T/l1.log" &&
   ! grep -q "starting big (chat) on cpu" "$T/l1.log" &&
   [ "$placement" = "split-mode layer over ROCm0,ROCm1, tensor split 12272,12272" ]; then
	ok $name
else
	fail $name "$code ngl '$ngl' placement '$placement' argv '$argv' $(grep -E "big|split" "$T/l1.log" | head -n 5)"
fi
stop_lemon

# --- ROCR_VISIBLE_DEVICES: HIP's numbering is not known, no split ----------
name=rocr_visible_devices_no_split
: > "$T/argv"
start_lemon "$T/l2.log" ROCR_VISIBLE_DEVICES=1
code=$(chat big)
argv=$(last_argv)
case $argv in
*--split-mode*|*--tensor-split*|*ROCm1*) split=yes ;;
*) split=no ;;
esac
if [ $split = no ] && ! grep -q "rocm may split a model" "$T/l2.log" &&
   ! grep -q "split-mode" "$T/l2.log"; then
	ok "$name ($code)"
else
	fail $name "$code split=$split argv '$argv' $(grep -E "big|split" "$T/l2.log" | head -n 5)"
fi
stop_lemon

# --- Vulkan: the choice names the first GPU; the second of its vendor is
# spanned too (no loader list under a sysroot: ggml's own numbering) ------
name=vulkan_split_across_two_gpus
: > "$T/argv"
BACKEND=vulkan start_lemon "$T/l3.log"
code=$(chat big)
argv=$(last_argv)
if [ "$code" = 400 ] &&
   printf '%s\n' "$argv" | grep -q -- "--device Vulkan0,Vulkan1 --split-mode layer --tensor-split 12272,12272$" &&
   grep -q "starting big (chat) on vulkan Vulkan0,Vulkan1: " "$T/l3.log"; then
	ok $name
else
	fail $name "$code argv '$argv' $(grep -E "big|split" "$T/l3.log" | head -n 5)"
fi
stop_lemon

# --- two GPUs of 48 MiB and 256 MiB of RAM (a copy of the fixture): the
# real tiny model (about 69 MiB planned) is split over both GPUs; a second
# one gets what that first child leaves of each GPU, not the GPUs' whole
# memory again (which overcommitted them) -----------------------------------
cp -r tests/fixtures/rx6700xt-x2 "$T/x2small"
find "$T/x2small" -name mem_info_vram_total -exec sh -c 'echo 50331648 > "$1"' _ {} \;
sed -i 's/^MemTotal:.*/MemTotal:          262144 kB/' "$T/x2small/proc/meminfo"
"$LEMON" pull --file "$MODEL" tiny2 > /dev/null 2>&1 || fail setup "pull tiny2"
name=second_split_leaves_first_share
: > "$T/argv"
SYSROOT=$T/x2small SERVE_ARGS="--max-loaded 2" start_lemon "$T/l4.log"
code1=$(chat tiny)
argv1=$(last_argv)
code2=$(chat tiny2)
argv2=$(last_argv)
ts1=$(printf '%s\n' "$argv1" | sed -n 's/.*--tensor-split \([0-9,]*\).*/\1/p')
ngl2=$(printf '%s\n' "$argv2" | sed -n 's/.*--n-gpu-layers \([0-9]*\).*/\1/p')
ngl1=$(printf '%s\n' "$argv1" | sed -n 's/.*--n-gpu-layers \([0-9]*\).*/\1/p')
# tiny2 must not get both GPUs' 48 MiB again: what tiny left is less
# than one model, so part of its layers stay in RAM
if [ "$code1" = 200 ] && [ "$code2" = 200 ] && [ "$ts1" = 48,48 ] &&
   [ -n "$ngl2" ] && [ -n "$ngl1" ] && [ "$ngl2" -lt "$ngl1" ] &&
   ! printf '%s\n' "$argv2" | grep -q -- "--tensor-split 48,48" &&
   grep -q "tiny2 needs about [0-9]* MiB, .*partial offload" "$T/l4.log"; then
	ok $name
else
	fail $name "$code1 $code2 ts1 '$ts1' ngl $ngl1/$ngl2 argv2 '$argv2' $(grep -E "tiny2? needs" "$T/l4.log" | head -n 4)"
fi

# --- big (19 GiB) is more than both GPUs and the RAM together: refused up
# front with those sizes, so neither loaded model is unloaded for it (it
# passed the check before and evicted tiny, the least recently used); the
# plan says too large too (with what the loaded two leave of the GPUs) ---
name=too_large_for_all_gpus_refused_up_front
pids=$(curl -s -m 10 "$URL/api/v1/health" | jq -c '[.loaded[] | .pid] | sort')
out=$(curl -s -m 60 -H 'Content-Type: application/json' -w '\n%{http_code}' "$URL/v1/chat/completions" \
	-d '{"model":"big","messages":[{"role":"user","content":"hi"}],"max_tokens":4}')
pids2=$(curl -s -m 10 "$URL/api/v1/health" | jq -c '[.loaded[] | .pid] | sort')
p=$(plan big)
case $out in
*"256 MiB of RAM and 96 MiB of VRAM"*)
	if [ "$(echo "$out" | tail -n 1)" != 200 ] && [ "$pids" = "$pids2" ] &&
	   [ "$(echo "$pids" | jq length)" = 2 ] && ! grep -q "unloading tiny" "$T/l4.log" &&
	   ! grep -q "starting big" "$T/l4.log"; then
		case $p in
		"too_large|||too large: model 'big' needs about "*" MiB of RAM and "*) ok $name ;;
		*) fail $name "plan '$p'" ;;
		esac
	else
		fail $name "pids $pids -> $pids2 $(grep -E "unloading|starting big" "$T/l4.log")"
	fi ;;
*) fail $name "$out" ;;
esac
stop_lemon

[ $FAILS -eq 0 ]
