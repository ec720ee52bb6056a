#!/bin/sh
# Issue 10's GPU measurements, run on the nvidia-h200 device machine from
# the repository root (started by bench/gpu-run.sh, which detaches it so it
# can outlive one device call). Everything big lives under W (/tmp/gpu);
# results and logs go to W/out, which bench/gpu-wait.sh copies to $OUT.
#
#   1. builds the CUDA (sm_90) and Vulkan bundles with
#      scripts/build-backend.sh from the carried source, while the 7B- and
#      70B-shaped Q4_0 models are generated (tests/tools/make-shape-gguf.py,
#      written straight into the data directory's model store: a 36 GiB
#      copy would not fit the disk twice) and `lemon doctor` runs live;
#   2. serves the bundles (and the CPU bundle built here) from a loopback
#      mirror: `lemon install-backend llamacpp:vulkan`, then a first-run
#      `lemon serve` that provisions CUDA by itself;
#   3. per backend (cuda, vulkan) and shape (7b, 70b): lemon serve vs the
#      same llama-server started directly with the child's exact arguments
#      (from /proc), batch-1 decode alternating, then aggregate tokens/s at
#      1, 4, 16 and 64 concurrent streams (lemon, direct, direct, lemon);
#   4. fallback on the real GPU: CUDA hidden (CUDA_VISIBLE_DEVICES) -> the
#      Vulkan child on the same GPU; Vulkan hidden too
#      (GGML_VK_VISIBLE_DEVICES) -> CPU; /api/v1/health saved;
#   5. memory fit from the driver's free VRAM: with 110 GiB of the GPU held
#      by another process, the 70B shape is planned with partial offload
#      and the plan compared with what llama-server reports it did.
#
# The lemon binary and its Debian libraries come in .dev/ (built here:
# lemon, lib.tar.xz of the .so files of libcurl, libarchive and lemon's own
# link deps, the llama.cpp source tarball, the llama-spm vocabulary, the
# CPU bundle, trixie's glslc/shaderc/Vulkan headers as .debs); the Vulkan
# loader .debs in .gl/ (the device README's recipe).
#
# Knobs for a shorter run: BUILDS (default "cuda vulkan"), BACKENDS, SHAPES,
# LEVELS (stream counts, default "1 4 16 64"), PASSES (per side and level,
# default 2; the "warm" column is the median after each side's first), FIRST_RUN=0 (every backend
# forced with --backend, no first-run provisioning), SCENARIOS=0 (no
# fallback and memory-fit runs; or a list of "fallback fit").
#
# RPC=1 adds issue 15's measurements (bench/gpu-rpc.sh): RPC workers, one
# GPU vs two, lemon's own split over two GPUs.
#
# LOCAL=1 is a dry run on a CPU machine (the CPU bundle, small shapes, no
# builds, fallback and memory scenarios skipped) to test this script.
set -u
REPO=$(pwd)
W=${GPU_WORK:-/tmp/gpu}
R=$W/out
LOCAL=${LOCAL:-0}
mkdir -p "$W/bin" "$R"
t0=$(date +%s)
log() { echo "[$(($(date +%s) - t0))s] $*" | tee -a "$R/log.txt" >&2; }
jline() { echo "$1" >> "$R/results.jsonl"; }
PIDS=
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	pkill -f "$REPO/.dev/lemon" 2>/dev/null
	pkill -f llama-server 2>/dev/null
	touch "$W/done"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # url seconds
	i=0
	until curl -s -o /dev/null -m 2 "$1"; do
		i=$((i + 1))
		[ $i -lt $(($2 * 5)) ] || return 1
		sleep 0.2
	done
}

# --- setup ------------------------------------------------------------------
export XDG_DATA_HOME=$W/xdg XDG_CONFIG_HOME=$W/config XDG_CACHE_HOME=$W/cache
export LEMON_COMPAT_DIR=${LEMON_COMPAT_DIR:-$REPO/compat}
[ -d "$REPO/.dev/compat" ] && LEMON_COMPAT_DIR=$REPO/.dev/compat
D=$XDG_DATA_HOME/lemon
mkdir -p "$D/models"
unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_LLAMA_SERVER_CUDA \
	LEMON_LLAMA_SERVER_VULKAN LEMON_BACKEND LEMON_API_KEY
if [ "$LOCAL" = 1 ]; then
	LEMON_BIN=${LEMON:-$REPO/build/lemon}
	BACKENDS=${BACKENDS:-cpu}
	SHAPES=${SHAPES:-s1 s2}
else
	for f in .gl/*.deb; do dpkg -x "$f" /; done
	ldconfig
	mkdir -p "$W/vk"
	for f in .dev/vk/*.deb; do dpkg -x "$f" "$W/vk"; done
	tar -xJf .dev/lib.tar.xz -C "$W"
	LEMON_BIN=$W/bin/lemon.real
	cp .dev/lemon "$LEMON_BIN"
	BACKENDS=${BACKENDS:-cuda vulkan}
	SHAPES=${SHAPES:-7b 70b}
	# the NVIDIA Vulkan driver's manifest where the loader does not look
	if ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* > /dev/null 2>&1 &&
	   [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
		export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
		export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
	fi
	# xz packs the CUDA bundle; a bare image may lack it: Python's lzma
	if ! command -v xz > /dev/null; then
		cat > "$W/bin/xz" <<'EOF'
#!/bin/sh
mode=wb
[ "${1:-}" = -d ] && mode=rb
exec python3 -c 'import lzma,shutil,sys
if sys.argv[1] == "rb":
    shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer, 1 << 20)
else:
    with lzma.open(sys.stdout.buffer, "wb", preset=1) as f: shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)' $mode
EOF
		chmod +x "$W/bin/xz"
	fi
fi
# lemon with its carried libraries; its children inherit the path, which
# holds no library llama-server links
cat > "$W/bin/lemon" <<EOF
#!/bin/sh
LD_LIBRARY_PATH=$W/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH} exec $LEMON_BIN "\$@"
EOF
chmod +x "$W/bin/lemon"
PATH=$W/bin:$PATH
export PATH
log "machine: $(nproc) cores; $(nvidia-smi --query-gpu=name,memory.total,memory.free,driver_version --format=csv,noheader 2>&1 | head -n 1)"

# --- 1. builds, models, doctor ----------------------------------------------
export LEMON_BUILD_CACHE=$W/lb
B_CUDA= B_VULKAN=
BUILDS=${BUILDS:-cuda vulkan}
LEVELS=${LEVELS:-1 4 16 64}
PC= PV=
if [ "$LOCAL" != 1 ]; then
	src=$W/lb/3.22.1/src
	mkdir -p "$src"
	tar -xf .dev/llama-src.tar.xz -C "$src" && touch "$src/.lemon-ready"
	case $BUILDS in *cuda*)
	(JOBS=${JOBS_CUDA:-16} scripts/build-backend.sh cuda 90 > "$R/build-cuda.log" 2>&1
	 echo "rc=$? at $(($(date +%s) - t0))s" >> "$R/build-cuda.log") &
	PC=$! ;;
	esac
	vk=$W/vk/usr
	case $BUILDS in *vulkan*)
	(export LD_LIBRARY_PATH=$vk/lib/x86_64-linux-gnu JOBS=${JOBS_VULKAN:-$([ -n "$PC" ] && echo 10 || echo 16)}
	 export LEMON_CMAKE_EXTRA="-DVulkan_INCLUDE_DIR=$vk/include -DVulkan_LIBRARY=/usr/lib/x86_64-linux-gnu/libvulkan.so.1 -DVulkan_GLSLC_EXECUTABLE=$vk/bin/glslc -DSPIRV-Headers_DIR=$vk/share/cmake/SPIRV-Headers"
	 scripts/build-backend.sh vulkan > "$R/build-vulkan.log" 2>&1
	 echo "rc=$? at $(($(date +%s) - t0))s" >> "$R/build-vulkan.log") &
	PV=$! ;;
	esac
fi
(for s in $SHAPES; do
	[ -f "$D/models/$s.gguf" ] && { echo "$s kept"; continue; }
	case $s in
	s1) a="--shape custom --embd 256 --layers 2 --heads 4 --heads-kv 4 --ffn 512" ;;
	s2) a="--shape custom --embd 512 --layers 4 --heads 8 --heads-kv 2 --ffn 1024" ;;
	*) a="--shape $s" ;;
	esac
	PYTHONUNBUFFERED=1 python3 tests/tools/make-shape-gguf.py $a \
		--vocab .dev/ggml-vocab-llama-spm.gguf --out "$D/models/$s.gguf.tmp" &&
		mv "$D/models/$s.gguf.tmp" "$D/models/$s.gguf"
	echo "$s rc=$? at $(($(date +%s) - t0))s $(stat -c %s "$D/models/$s.gguf" 2>/dev/null) bytes"
done > "$R/gen.log" 2>&1) &
PG=$!
lemon doctor > "$R/doctor.txt" 2>&1
echo "rc=$?" >> "$R/doctor.txt"
lemon doctor --json > "$R/doctor.json" 2> "$R/doctor-json.err"
log "doctor: $(grep -i -m 3 -E 'recommend|cuda' "$R/doctor.txt" | tr '\n' ' ')"

M=$W/mirror
mkdir -p "$M"
cp .dev/llama-v0.5.0-bin-ubuntu-x64.tar.gz "$M/"
if [ "$LOCAL" != 1 ]; then
	[ -n "$PV" ] && wait $PV && log "vulkan build: $(tail -n 2 "$R/build-vulkan.log" | tr '\n' ' ')"
	[ -n "$PC" ] && wait $PC && log "cuda build: $(tail -n 2 "$R/build-cuda.log" | tr '\n' ' ')"
	for t in cuda-sm_90 vulkan; do
		d=$W/lb/3.22.1/$t
		[ -f "$d/asset" ] && cp "$d/$(cat "$d/asset")" "$M/"
	done
fi
# one manifest for the three assets (same llama.cpp tag)
python3 - "$M" <<'PY'
import hashlib, json, os, sys
m = sys.argv[1]
assets = {}
for f in sorted(os.listdir(m)):
    if f.startswith("llama-"):
        h = hashlib.sha256(open(os.path.join(m, f), "rb").read()).hexdigest()
        assets[f] = {"sha256": h, "size": os.path.getsize(os.path.join(m, f))}
json.dump({"version": "v0.5.0", "assets": assets}, open(os.path.join(m, "manifest.json"), "w"), indent=1)
PY
cp "$M/manifest.json" "$R/mirror-manifest.json"
rm -f "$W/mport"
rm -f "$W/mport"
python3 tests/tools/mirror.py --dir "$M" > "$W/mport" 2> "$W/mirror.log" &
PIDS="$PIDS $!"
while [ ! -s "$W/mport" ]; do sleep 0.1; done
MIRROR=http://127.0.0.1:$(head -n 1 "$W/mport")
wait $PG
log "models: $(tr '\n' ' ' < "$R/gen.log")"

# --- 2. install and first-run provisioning -----------------------------------
s=$(date +%s.%N)
lemon install-backend llamacpp:cpu --mirror "$MIRROR" > "$R/install-cpu.txt" 2>&1
log "install-backend llamacpp:cpu: rc=$? $(tail -n 1 "$R/install-cpu.txt")"
if [ "$LOCAL" != 1 ]; then
	s=$(date +%s.%N)
	lemon install-backend llamacpp:vulkan --mirror "$MIRROR" > "$R/install-vulkan.txt" 2>&1
	rc=$?
	log "install-backend llamacpp:vulkan: rc=$rc in $(echo "$(date +%s.%N) - $s" | bc 2>/dev/null || python3 -c "import time;print(round(time.time()-$s,2))")s: $(tail -n 1 "$R/install-vulkan.txt")"
fi

LP= LPID=
start_lemon() { # NAME ARGS... (env set by the caller)
	n=$1
	shift
	LP=$(free_port)
	lemon serve --port "$LP" --mirror "$MIRROR" "$@" > "$R/lemon-$n.log" 2>&1 &
	LPID=$!
	i=0
	until grep -q "listening on" "$R/lemon-$n.log"; do
		kill -0 "$LPID" 2> /dev/null || { log "lemon ($n) exited: $(tail -n 3 "$R/lemon-$n.log")"; return 1; }
		i=$((i + 1))
		[ $i -lt 3000 ] || { log "lemon ($n) did not listen in 600 s"; return 1; }
		sleep 0.2
	done
}
stop_lemon() {
	[ -n "$LPID" ] && kill -TERM "$LPID" 2> /dev/null && wait "$LPID" 2> /dev/null
	LPID=
}
health() { curl -s -m 30 "http://127.0.0.1:$LP/api/v1/health"; }
req() { # URL MODEL MAXTOK -> prints HTTP code; body in $W/req.json
	curl -s -m 900 -o "$W/req.json" -w '%{http_code}' -H 'Content-Type: application/json' "$1/v1/completions" \
		-d "{\"model\":\"$2\",\"prompt\":\"Hello\",\"max_tokens\":$3,\"ignore_eos\":true}"
}

# --- 3. lemon vs direct --------------------------------------------------------
measure() { # BACKEND SHAPE
	b=$1 m=$2
	s=$(date +%s)
	code=$(req "http://127.0.0.1:$LP" "$m" 1)
	h=$(health)
	echo "$h" > "$R/health-$b-$m.json"
	cpid=$(echo "$h" | python3 -c 'import json,sys; h=json.load(sys.stdin); print(next((c["pid"] for c in h["loaded"] if c["model"]==sys.argv[1] and c["state"]=="ready"), ""))' "$m")
	if [ "$code" != 200 ] || [ -z "$cpid" ]; then
		log "$b $m: lemon's first request answered $code: $(head -c 300 "$W/req.json")"
		return 1
	fi
	log "$b $m: loaded through lemon in $(($(date +%s) - s))s (pid $cpid)"
	DP=$(free_port)
	exe=$(readlink "/proc/$cpid/exe")
	args=$(python3 bench/child-args.py "$cpid" "$DP")
	cenv=$(tr '\0' '\n' < "/proc/$cpid/environ" | grep -E '^(GGML_VK_VISIBLE_DEVICES|CUDA_VISIBLE_DEVICES)=' | tr '\n' ' ')
	jline "{\"kind\":\"args\",\"backend\":\"$b\",\"model\":\"$m\",\"exe\":\"$exe\",\"args\":$(printf '%s' "$args" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))'),\"env\":\"$cenv\"}"
	eval "set -- $args"
	env $cenv "$exe" "$@" > "$R/direct-$b-$m.log" 2>&1 &
	DPID=$!
	if ! wait_http "http://127.0.0.1:$DP/health" 600; then
		log "$b $m: direct llama-server did not come up: $(tail -n 3 "$R/direct-$b-$m.log")"
		kill $DPID
		return 1
	fi
	until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$DP/health")" = 200 ]; do sleep 0.2; done
	case $m in 70b) rounds=4 tok=128 ctok=64 ;; *) rounds=8 tok=256 ctok=128 ;; esac
	r=$(python3 bench/gpu-client.py decode "http://127.0.0.1:$LP" "http://127.0.0.1:$DP" "$m" $rounds $tok) &&
		jline "{\"kind\":\"decode\",\"backend\":\"$b\",\"model\":\"$m\",\"tokens\":$tok,\"r\":$r}"
	log "$b $m decode: $r"
	for n in $LEVELS; do
		# PASSES per side, alternating (lemon, direct, direct, lemon...):
		# the report takes the median of each side's passes after its
		# first (a burst enters the engine in one step or two by chance:
		# bench/burst.sh), so several are needed for a slow engine step
		p=0
		while [ $p -lt "${PASSES:-2}" ]; do
			[ $((p % 2)) = 0 ] && order="lemon direct" || order="direct lemon"
			for who in $order; do
				[ $who = lemon ] && u=http://127.0.0.1:$LP || u=http://127.0.0.1:$DP
				r=$(python3 bench/gpu-client.py concurrent "$u" "$m" $n $ctok) &&
					jline "{\"kind\":\"concurrent\",\"backend\":\"$b\",\"model\":\"$m\",\"who\":\"$who\",\"tokens\":$ctok,\"r\":$r}"
			done
			p=$((p + 1))
		done
		log "$b $m $n streams done"
	done
	grep -E 'offloaded|CUDA0|Vulkan0|flash_attn|n_parallel|n_ctx|model size|using device' "$R/direct-$b-$m.log" | head -n 20 > "$R/direct-$b-$m.grep"
	# what the GPU holds with both servers up: the plan's share twice
	command -v nvidia-smi > /dev/null &&
		log "$b $m GPU memory per process: $(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader | tr '\n' ';')"
	kill $DPID
	wait $DPID 2> /dev/null
}

first=1
for b in $BACKENDS; do
	if [ $first = 1 ] && [ "${FIRST_RUN:-1}" = 1 ]; then
		# first run: the top candidate is not installed, serve provisions it
		start_lemon "$b" || continue
		first=0
	else
		start_lemon "$b" --backend "$b" || continue
	fi
	log "lemon serve ($b): $(grep -E 'install|plans with|provision' "$R/lemon-$b.log" | head -n 4 | tr '\n' ' ')"
	for m in $SHAPES; do
		measure "$b" "$m"
	done
	health > "$R/health-$b.json"
	stop_lemon
done

# --- 4. fallback on the real GPU ---------------------------------------------
SCENARIOS=${SCENARIOS:-fallback fit}
[ "$SCENARIOS" = 1 ] && SCENARIOS="fallback fit"
want() { case " $SCENARIOS " in *" $1 "*) [ "$LOCAL" != 1 ] ;; *) false ;; esac; }
if want fallback; then
	if CUDA_VISIBLE_DEVICES=GPU-00000000-0000-0000-0000-000000000000 start_lemon fb1 --backend cuda; then
		code=$(req "http://127.0.0.1:$LP" 7b 8)
		health > "$R/health-fallback-vulkan.json"
		log "fallback cuda hidden: $code $(head -c 600 "$R/health-fallback-vulkan.json")"
		stop_lemon
	fi
	if CUDA_VISIBLE_DEVICES=GPU-00000000-0000-0000-0000-000000000000 GGML_VK_VISIBLE_DEVICES=9 \
		start_lemon fb2 --backend cuda; then
		code=$(req "http://127.0.0.1:$LP" 7b 4)
		health > "$R/health-fallback-cpu.json"
		log "fallback cuda+vulkan hidden: $code $(head -c 600 "$R/health-fallback-cpu.json")"
		stop_lemon
	fi
fi

# --- 5. memory fit from the driver's free VRAM ---------------------------------
if want fit; then
	python3 -c 'import torch, time
x = torch.empty(110 << 30, dtype=torch.uint8, device="cuda")
print("held", x.numel() >> 30, "GiB", flush=True)
time.sleep(900)' > "$R/hold.log" 2>&1 &
	HPID=$!
	PIDS="$PIDS $HPID"
	i=0
	until grep -q held "$R/hold.log" || [ $i -gt 300 ]; do sleep 0.2; i=$((i + 1)); done
	log "holder: $(cat "$R/hold.log"); $(nvidia-smi --query-gpu=memory.used,memory.free --format=csv,noheader)"
	# one GPU (the held one): on a machine of several, lemon would
	# rightly split the model over the others instead
	if CUDA_VISIBLE_DEVICES=0 start_lemon fit --backend cuda; then
		code=$(req "http://127.0.0.1:$LP" 70b 8)
		health > "$R/health-fit.json"
		log "fit: $code $(grep -E 'plans with|needs about|starting 70b' "$R/lemon-fit.log" | tr '\n' ' ')"
		# what llama-server did with exactly those arguments: its load
		# report is printed from -lv 4 up (llama.cpp logs INFO at trace)
		fpid=$(health | python3 -c 'import json,sys; h=json.load(sys.stdin); print(next((c["pid"] for c in h["loaded"] if c["model"]=="70b"), ""))')
		fexe= fargs=
		if [ -n "$fpid" ]; then
			fexe=$(readlink "/proc/$fpid/exe")
			fargs=$(python3 bench/child-args.py "$fpid" "$(free_port)")
			log "fit: lemon's child: $fargs"
		fi
		stop_lemon
		if [ -n "$fargs" ]; then
			eval "set -- $fargs"
			CUDA_VISIBLE_DEVICES=0 "$fexe" "$@" -lv 4 > "$R/fit-direct.log" 2>&1 &
			FPID=$!
			i=0
			until grep -q "server is listening\|listening on" "$R/fit-direct.log" || [ $i -gt 1500 ]; do
				kill -0 $FPID 2> /dev/null || break
				sleep 0.2
				i=$((i + 1))
			done
			log "fit: the same arguments directly (-lv 4): $(grep -E 'offloaded|CUDA0 model buffer size|CPU_Mapped model buffer size|CUDA0 KV buffer size' "$R/fit-direct.log" | sed 's/^.*: *//' | tr -s ' ' | tr '\n' ';')"
			kill $FPID 2> /dev/null
			wait $FPID 2> /dev/null
		fi
	fi
	kill $HPID
fi

# --- 6. issue 15 item 5: RPC workers and two GPUs -----------------------------
[ "${RPC:-0}" = 1 ] && . bench/gpu-rpc.sh
python3 bench/gpu-report.py "$R" > "$R/results.md" 2> "$R/report.err"
log "finished"
