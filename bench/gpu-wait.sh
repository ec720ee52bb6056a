#!/bin/sh
# Waits up to WAIT_S seconds for bench/gpu.sh (started by gpu-run.sh) to
# finish, printing its progress, then copies its results to $OUT: the
# report, the progress log and one tarball of every other small file (the
# device call returns at most 8 files). usage: sh bench/gpu-wait.sh [WAIT_S]
W=${GPU_WORK:-/tmp/gpu}
OUT=${OUT:-/tmp/gpu-results}
end=$(($(date +%s) + ${1:-540}))
seen=0
while [ ! -f "$W/done" ] && [ "$(date +%s)" -lt "$end" ]; do
	sleep 5
	n=$(wc -l < "$W/out/log.txt" 2>/dev/null || echo 0)
	[ "$n" -gt "$seen" ] && sed -n "$((seen + 1)),${n}p" "$W/out/log.txt" && seen=$n
done
[ -f "$W/done" ] && echo "gpu.sh: finished" || echo "gpu.sh: still running"
mkdir -p "$OUT"
cp "$W/out/log.txt" "$OUT/" 2>/dev/null
[ -f "$W/out/results.md" ] && cp "$W/out/results.md" "$OUT/"
python3 bench/gpu-report.py "$W/out" > "$OUT/partial.md" 2>/dev/null
tar -czf "$OUT/gpu-out.tgz" -C "$W" --exclude='*.gguf' out run.log 2>/dev/null
ls -la "$OUT"
tail -n 5 "$W/run.log"
