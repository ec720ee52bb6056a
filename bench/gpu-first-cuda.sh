#!/bin/sh
# First CUDA measurement on the H200 machine (issue 10, partial): build the
# CUDA bundle with scripts/build-backend.sh from the carried source tarball,
# generate the Llama-2-7B-shaped Q4_0 model meanwhile, then measure batch-1
# decode through the bundle's own llama-server HTTP API (all layers
# offloaded) and with the bundle's llama-bench. lemon serve is NOT in this
# path yet: bench/gpu.sh is where lemon vs direct is measured.
#
# The machine is bare and the repo folder is replaced on every call, so the
# source, the build and the model live under /tmp, and everything happens in
# one command. Small results (manifest, sha256, logs) go to $OUT.
#
# usage (on the GPU machine, from the repo root, carrying build-H/carry):
#   sh bench/gpu-first-cuda.sh [carry-dir]
set -u
carry=${1:-build-H/carry}
OUT=${OUT:-/tmp/gpu-out}
SM=${SM:-90}
mkdir -p "$OUT"
export LEMON_BUILD_CACHE=/tmp/lb LEMON_LLAMA_SRC=$carry/llama-src.tar.xz
export JOBS=${JOBS:-$(nproc)}
t0=$(date +%s)
log() { echo "[$(($(date +%s) - t0))s] $*" | tee -a "$OUT/decode.txt"; }

log "machine: $(nproc) cores, $(uname -m); $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1)"
log "nvcc: $( (nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>&1 | tail -1)"

# xz compresses the CUDA archive; a bare image may lack it, so fall back to
# Python's lzma (slower, same format).
if ! command -v xz >/dev/null; then
	mkdir -p /tmp/xzbin
	cat > /tmp/xzbin/xz <<'EOF'
#!/bin/sh
mode=wb
[ "${1:-}" = -d ] && mode=rb
exec python3 -c 'import lzma,shutil,sys
if sys.argv[1] == "rb":
    shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer, 1 << 20)
else:
    with lzma.open(sys.stdout.buffer, "wb", preset=1) as f: shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)' $mode
EOF
	chmod +x /tmp/xzbin/xz
	PATH=/tmp/xzbin:$PATH
	log "xz missing: using python lzma"
fi

model=/tmp/models/7b.gguf
(PYTHONUNBUFFERED=1 python3 tests/tools/make-shape-gguf.py --shape 7b \
	--vocab "$carry/ggml-vocab-llama-spm.gguf" --out "$model" > "$OUT/gen.log" 2>&1
 echo "rc=$? at $(($(date +%s) - t0))s" >> "$OUT/gen.log") &
gen=$!

b0=$(date +%s)
scripts/build-backend.sh cuda "$SM" > "$OUT/build.log" 2>&1
brc=$?
log "build-backend.sh cuda $SM: rc=$brc in $(($(date +%s) - b0))s"
dir=$(tail -1 "$OUT/build.log")
if [ $brc -eq 0 ]; then
	cp "$dir/manifest.json" "$OUT/"
	cp "$dir"/*.sha256 "$OUT/"
	asset=$(cat "$dir/asset")
	log "asset $asset $(stat -c %s "$dir/$asset") bytes"
	mkdir -p /tmp/bundle
	tar -xf "$dir/$asset" -C /tmp/bundle
	bin=$(dirname /tmp/bundle/*/llama-server)
	log "bundle files: $(ls "$bin" | tr '\n' ' ')"
else
	bin=/tmp/lb/3.22.1/build-cuda-sm_$SM/bin
	log "packaging failed; measuring from $bin"
fi
wait $gen
log "model: $(cat "$OUT/gen.log" | tr '\n' ' ')"
[ -x "$bin/llama-server" ] && [ -f "$model" ] || { log "nothing to measure"; exit 1; }

# Batch 1 through the HTTP API: one slot, all layers on the GPU.
"$bin/llama-server" -m "$model" -ngl 999 -c 4096 -np 1 -fa on \
	--host 127.0.0.1 --port 8088 > "$OUT/server.log" 2>&1 &
srv=$!
python3 - <<'EOF' 2>&1 | tee -a "$OUT/decode.txt"
import json, statistics, time, urllib.request
base = "http://127.0.0.1:8088"
for _ in range(240):
    try:
        if urllib.request.urlopen(base + "/health", timeout=2).status == 200:
            break
    except Exception:
        pass
    time.sleep(0.5)
else:
    raise SystemExit("llama-server not healthy after 120 s")
def run(n):
    body = json.dumps({"prompt": "The quick brown fox jumps over the lazy dog",
                       "n_predict": n, "ignore_eos": True, "temperature": 0,
                       "cache_prompt": False}).encode()
    req = urllib.request.Request(base + "/completion", body,
                                 {"Content-Type": "application/json"})
    t = time.time()
    r = json.load(urllib.request.urlopen(req, timeout=120))
    wall = time.time() - t
    tm = r["timings"]
    return tm["predicted_n"], tm["predicted_per_second"], tm["predicted_n"] / wall
run(16)  # warm-up
rates, walls = [], []
for i in range(5):
    n, tps, wtps = run(256)
    rates.append(tps); walls.append(wtps)
    print("http decode run %d: %d tokens, %.1f t/s (server timings), %.1f t/s (client wall incl. prompt)" % (i, n, tps, wtps))
print("http decode batch 1, 7B shape Q4_0, n_predict 256: median %.1f t/s (server), %.1f t/s (client wall)"
      % (statistics.median(rates), statistics.median(walls)))
EOF
kill $srv 2>/dev/null
wait $srv 2>/dev/null
grep -E 'CUDA0|offloaded|model size|flash_attn|ggml_cuda_init|Device 0' "$OUT/server.log" |
	head -12 >> "$OUT/decode.txt"

if [ -x "$bin/llama-bench" ]; then
	log "llama-bench -m 7b -ngl 99 -fa 1 -p 512 -n 128 -r 3"
	timeout 120 "$bin/llama-bench" -m "$model" -ngl 99 -fa 1 -p 512 -n 128 -r 3 \
		2>&1 | tee "$OUT/bench.txt" | grep -E '^\|' | tee -a "$OUT/decode.txt"
fi
log "done"
