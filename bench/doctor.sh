#!/bin/sh
# Times lemon's detection against the tools people run by hand, in one run:
#   lemon doctor --json --no-vulkan   vs  lspci -nnk
#   lemon doctor --json               vs  vulkaninfo --summary
# and prints each ratio (lemon / peer; below 1 means lemon is faster).
# Usage: bench/doctor.sh [RUNS]   (needs hyperfine, pciutils, vulkan-tools, jq)
set -eu
cd "$(dirname "$0")/.."
RUNS=${1:-40}
LEMON=${LEMON:-build/lemon}
[ -x "$LEMON" ] || make -s
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mean() { jq -r ".results[$2].mean" "$1"; }

hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$tmp/pci.json" \
	"$LEMON doctor --json --no-vulkan" "lspci -nnk" >/dev/null 2>&1
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$tmp/vk.json" \
	"$LEMON doctor --json" "vulkaninfo --summary" >/dev/null 2>&1

l1=$(mean "$tmp/pci.json" 0); p1=$(mean "$tmp/pci.json" 1)
l2=$(mean "$tmp/vk.json" 0); p2=$(mean "$tmp/vk.json" 1)
awk -v l1="$l1" -v p1="$p1" -v l2="$l2" -v p2="$p2" -v runs="$RUNS" 'BEGIN {
	printf "runs per command: %d (hyperfine, mean wall time)\n", runs
	printf "lemon doctor --json --no-vulkan  %8.2f ms\n", l1 * 1000
	printf "lspci -nnk                       %8.2f ms\n", p1 * 1000
	printf "ratio lemon/lspci                %8.3f  (target <= 0.5)\n", l1 / p1
	printf "lemon doctor --json              %8.2f ms\n", l2 * 1000
	printf "vulkaninfo --summary             %8.2f ms\n", p2 * 1000
	printf "ratio lemon/vulkaninfo           %8.3f\n", l2 / p2
}'
