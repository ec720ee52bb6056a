#!/bin/sh
# lemon doctor on this machine's real tree (no sysroot): the JSON contract
# holds, the recommendation is cpu (no GPU here), and lavapipe, a CPU Vulkan
# device, is listed under vulkan.devices but never under gpus.
set -u
LEMON=${LEMON:-build/lemon}
fails=0
ok() { echo "ok $1"; }
bad() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$LEMON" doctor --json >"$tmp/live.json"
rc=$?
if jq -e . "$tmp/live.json" >/dev/null 2>&1; then ok "live json parses"; else bad "live json parses" "invalid JSON"; fi
jq -e '.schema == 1 and (.host.kernel | type == "string") and (.host.cpu.cores | type == "number")
	and (.host.ram_bytes | type == "number") and (.gpus | type == "array") and (.npus | type == "array")
	and (.vulkan.loader | type == "boolean") and (.checks | type == "array")
	and (.backend.candidates | length >= 1)' "$tmp/live.json" >/dev/null &&
	ok "live contract fields" || bad "live contract fields" "missing or mistyped field"
rec=$(jq -r '.backend.recommended' "$tmp/live.json")
# this machine has no GPU, only lavapipe, so the only usable path is cpu
gpus=$(jq '[.gpus[] | select(.vendor == "AMD" or .vendor == "NVIDIA" or .vendor == "Intel")] | length' "$tmp/live.json")
if [ "$gpus" -eq 0 ]; then
	[ "$rec" = "cpu" ] && ok "live recommends cpu" || bad "live recommends cpu" "got $rec"
	[ "$rc" -eq 0 ] && ok "live exit 0" || bad "live exit 0" "got $rc"
fi
if jq -e '.vulkan.devices | any(.driver == "lavapipe" and .type == "cpu")' "$tmp/live.json" >/dev/null; then
	ok "lavapipe listed as a cpu vulkan device"
	jq -e '[.gpus[] | select((.name // "") | test("llvmpipe|lavapipe"; "i"))] | length == 0' "$tmp/live.json" >/dev/null &&
		ok "lavapipe not a gpu" || bad "lavapipe not a gpu" "found under gpus"
	jq -e '.backend.candidates | map(select(.backend == "vulkan")) | all(.usable == false)' "$tmp/live.json" >/dev/null &&
		ok "vulkan on lavapipe not usable" || bad "vulkan on lavapipe not usable" "vulkan candidate usable"
else
	bad "lavapipe listed" "$(jq -c .vulkan "$tmp/live.json")"
fi

"$LEMON" doctor --json --no-vulkan >"$tmp/nv.json"
jq -e '.vulkan.probed == false and (.vulkan.devices | length == 0)' "$tmp/nv.json" >/dev/null &&
	ok "--no-vulkan skips the probe" || bad "--no-vulkan skips the probe" "$(jq -c .vulkan "$tmp/nv.json")"

# the CUDA probe: live only, and only with an NVIDIA GPU; --no-cuda skips it
nv=$(jq '[.gpus[] | select(.vendor == "NVIDIA")] | length' "$tmp/live.json")
if [ "$nv" -eq 0 ]; then
	jq -e '.cuda.probed == false and .cuda.skipped == "no NVIDIA GPU" and .cuda.library == false
		and (.cuda.devices | length == 0) and .kernel_modules.nvidia.loaded == false' "$tmp/live.json" >/dev/null &&
		ok "no NVIDIA GPU: CUDA probe skipped" || bad "no NVIDIA GPU: CUDA probe skipped" "$(jq -c .cuda "$tmp/live.json")"
else
	jq -e '.cuda.probed == true and (.gpus | map(select(.vendor == "NVIDIA")) | all(.nvidia | type == "object"))' \
		"$tmp/live.json" >/dev/null && ok "NVIDIA GPU: CUDA probed" || bad "NVIDIA GPU: CUDA probed" "$(jq -c .cuda "$tmp/live.json")"
fi
"$LEMON" doctor --json --no-vulkan --no-cuda >"$tmp/nc.json"
jq -e '.cuda.probed == false and .cuda.skipped == "--no-cuda"' "$tmp/nc.json" >/dev/null &&
	ok "--no-cuda skips the probe" || bad "--no-cuda skips the probe" "$(jq -c .cuda "$tmp/nc.json")"

"$LEMON" system-info --no-vulkan >"$tmp/si.json"
[ $? -eq 0 ] && jq -e '.schema == 1' "$tmp/si.json" >/dev/null && ok "system-info prints the json" ||
	bad "system-info prints the json" "bad output"

"$LEMON" doctor >"$tmp/text.txt"
grep -q '^System' "$tmp/text.txt" && grep -q '^Backend' "$tmp/text.txt" && grep -q 'recommended: cpu' "$tmp/text.txt" &&
	ok "text report sections" || bad "text report sections" "$(head -5 "$tmp/text.txt")"

"$LEMON" doctor --bogus >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "unknown or incomplete option '--bogus'" "$tmp/err" && ok "usage error exits 2" ||
	bad "usage error exits 2" "$(cat "$tmp/err")"
"$LEMON" doctor --sysroot /nonexistent/tree >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -ne 0 ] && grep -q "sysroot /nonexistent/tree is not a directory" "$tmp/err" && ok "missing sysroot is a clear error" ||
	bad "missing sysroot is a clear error" "rc $rc: $(cat "$tmp/err")"
"$LEMON" frobnicate >/dev/null 2>&1
[ $? -eq 2 ] && ok "unknown command exits 2" || bad "unknown command exits 2" "wrong status"

[ "$fails" -eq 0 ]
