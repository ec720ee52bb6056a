#!/bin/sh
# test_umockdev.sh: runs the unmodified live code path (libpci's sysfs
# method, /sys and /dev access, access(2) on the nodes) against a mocked
# Strix Halo under umockdev-run, once with the KFD topology and once without
# it (gfx then comes from amdgpu's ip_discovery).
#
# umockdev's text format cannot describe /sys/bus/pci/drivers/<name>, and
# libpci resolves the `driver` link to its target before taking its last
# component, so the wrapper creates those two directories in the testbed
# (they exist on every machine where the driver is registered).
# Prints `ok <case>` or `FAIL <case>: <why>`; exits 1 on any failure.
set -u

LEMON=${LEMON:-build/lemon}
DEVICE=${DEVICE:-tests/fixtures/umockdev/strix-halo.umockdev}

for tool in umockdev-run jq; do
	command -v "$tool" > /dev/null || {
		echo "FAIL setup: $tool not found (scripts/install-deps.sh installs it)"
		exit 1
	}
done
if [ ! -x "$LEMON" ]; then
	echo "FAIL setup: $LEMON is not an executable (build it with make)"
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0

# run_case NAME DEVICE_FILE GFX_SOURCE RECOMMENDED TARGET ("" for null)
run_case() {
	umockdev-run --device "$2" -- sh -c '
		mkdir -p "$UMOCKDEV_DIR/sys/bus/pci/drivers/amdgpu" \
			"$UMOCKDEV_DIR/sys/bus/pci/drivers/amdxdna" || exit 99
		exec "$0" doctor --json --no-vulkan' "$LEMON" > "$tmp/out" 2> "$tmp/err"
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
		echo "FAIL $1: doctor exited $rc: $(head -c 400 "$tmp/err")"
		fail=1
		return
	fi
	why=$(jq -r --arg src "$3" --arg rec "$4" --arg target "$5" '
		def want($what; $got; $exp):
			if $got == $exp then empty
			else "\($what): expected \($exp | tojson), got \($got | tojson)" end;
		([.gpus[] | select(.vendor_id == "1002" and .device_id == "1586")] | first) as $g |
		([.npus[] | select(.device_id == "17f0")] | first) as $n |
		if $g == null then "no GPU 1002:1586 in \(.gpus | tojson)" else
			want("gpu pci"; $g.pci; "0000:c5:00.0"),
			want("gpu revision"; $g.revision; "c1"),
			want("gpu driver"; $g.driver; "amdgpu"),
			want("gpu kind"; $g.kind; "igpu"),
			want("gpu gfx"; $g.gfx; "gfx1151"),
			want("gpu gfx_source"; $g.gfx_source; $src),
			want("gpu rocm_family"; $g.rocm_family; "gfx1151")
		end,
		if $n == null then "no NPU 1022:17f0 in \(.npus | tojson)" else
			want("npu revision"; $n.revision; "11"),
			want("npu generation"; $n.generation; "npu5"),
			want("npu driver"; $n.driver; "amdxdna"),
			want("npu device_node"; $n.device_node; "/dev/accel/accel0")
		end,
		want("recommended"; .backend.recommended; $rec),
		want("target"; .backend.target; (if $target == "" then null else $target end))
	' "$tmp/out" 2>&1)
	if [ -n "$why" ]; then
		echo "FAIL $1:"
		echo "$why" | sed 's/^/    /'
		fail=1
	else
		echo "ok $1"
	fi
}

run_case umockdev-strix-halo-kfd "$DEVICE" kfd rocm gfx1151

# the same machine without the KFD (no /sys/class/kfd, no /dev/kfd): the gfx
# target comes from ip_discovery and ROCm is not usable, Vulkan is
awk 'BEGIN { RS = ""; ORS = "\n\n" } !/^P: \/devices\/virtual\/kfd\/kfd/' \
	"$DEVICE" > "$tmp/nokfd.umockdev"
run_case umockdev-strix-halo-ip-discovery "$tmp/nokfd.umockdev" ip_discovery vulkan ""

exit $fail
