#!/bin/sh
# test_fixtures.sh: replays every recorded machine under tests/fixtures
# through `lemon doctor --json --sysroot DIR` and checks the answer.
#
# For each tests/fixtures/<name>/expected.json:
#   - the output must be JSON carrying the contract's fields (docs/json.md:
#     schema, host, gpus, npus, vulkan, checks, backend.candidates and the
#     per-entry keys), with lower-case hex ids;
#   - expected.json must be a subset of the output: objects match key by key,
#     a non-empty array matches when each expected element matches some
#     element of the output, [] matches only [], {"$regex": "re"} matches a
#     string by regular expression, and "checks" is written as {id: status};
#   - "exit", when present, is doctor's exit status.
# Prints `ok <name>` or `FAIL <name>: <why>` per fixture; exits 1 on any
# failure. LEMON defaults to build/lemon, FIXTURES to tests/fixtures.
set -u

LEMON=${LEMON:-build/lemon}
FIXTURES=${FIXTURES:-tests/fixtures}
unset LEMON_SYSROOT

if [ ! -x "$LEMON" ]; then
	echo "FAIL setup: $LEMON is not an executable (build it with make)" >&2
	exit 1
fi
command -v jq > /dev/null || {
	echo "FAIL setup: jq not found" >&2
	exit 1
}

# jq program: prints one line per contract violation of the document
# (NVIDIA GPUs carry the gpus[].nvidia object, docs/doctor-json.md)
CONTRACT='
def need($o; $keys; $p):
	$keys[] as $k | if ($o | type) == "object" and ($o | has($k)) then empty
		else "\($p) lacks \"\($k)\"" end;
def hex($v; $n; $p):
	if $v == null or (($v | type) == "string" and ($v | test("^[0-9a-f]{\($n)}$"))) then empty
	else "\($p) is \($v | tojson), not \($n) lower-case hex digits" end;
def arr($v; $p): if ($v | type) == "array" then empty else "\($p) is not an array" end;
need(.; ["schema", "host", "gpus", "npus", "vulkan", "cuda", "checks", "backend"]; "document"),
(if .schema != 1 then "schema is \(.schema | tojson), not 1" else empty end),
need(.host; ["kernel", "cmdline", "cpu", "ram_bytes"]; "host"),
need(.host.cpu; ["model", "cores", "flags"]; "host.cpu"),
arr(.gpus; "gpus"), arr(.npus; "npus"), arr(.checks; "checks"),
need(.vulkan; ["loader", "devices"]; "vulkan"),
need(.cuda; ["probed", "library", "driver_version", "devices"]; "cuda"),
need(.backend; ["recommended", "target", "candidates"]; "backend"),
arr(.backend.candidates; "backend.candidates"),
(if (.backend.recommended | tostring | test("^(cuda|rocm|vulkan|cpu)$")) then empty
 else "backend.recommended is \(.backend.recommended | tojson)" end),
(.gpus // [] | to_entries[] | .key as $i | .value as $g |
	need($g; ["pci", "vendor_id", "device_id", "revision", "vendor", "name", "kind", "driver",
		  "gfx", "gfx_source", "rocm_family", "vram_bytes", "nvidia"]; "gpus[\($i)]"),
	(if $g.vendor == "NVIDIA" then need($g.nvidia; ["arch", "compute_capability", "cuda_target",
		"vram_bytes", "vram_free_bytes", "driver_version", "cuda_driver_version", "sources"];
		"gpus[\($i)].nvidia") else empty end),
	hex($g.vendor_id; 4; "gpus[\($i)].vendor_id"), hex($g.device_id; 4; "gpus[\($i)].device_id"),
	hex($g.revision; 2; "gpus[\($i)].revision")),
(.npus // [] | to_entries[] | .key as $i | .value as $n |
	need($n; ["pci", "vendor_id", "device_id", "revision", "generation", "driver", "device_node",
		  "firmware", "firmware_protocol", "driver_protocol", "status"]; "npus[\($i)]"),
	hex($n.vendor_id; 4; "npus[\($i)].vendor_id"), hex($n.device_id; 4; "npus[\($i)].device_id"),
	hex($n.revision; 2; "npus[\($i)].revision"),
	(if ($n.status | tostring | test("^(ok|warn|fail)$")) then empty
	 else "npus[\($i)].status is \($n.status | tojson)" end)),
(.checks // [] | to_entries[] | .key as $i |
	need(.value; ["id", "status", "message", "fix"]; "checks[\($i)]"),
	(if (.value.status | tostring | test("^(ok|warn|fail|skip|unknown)$")) then empty
	 else "checks[\($i)].status is \(.value.status | tojson)" end)),
(.backend.candidates // [] | to_entries[] | .key as $i |
	need(.value; ["backend", "target", "usable", "reason"]; "backend.candidates[\($i)]"))
'

# jq program: $exp (expected.json without "exit") against the document
SUBSET='
def mism($e; $a; $p):
	if ($e | type) == "object" and ($e | has("$regex")) then
		if ($a | type) == "string" and ($a | test($e["$regex"])) then empty
		else "\($p): expected a match of /\($e["$regex"])/, got \($a | tojson)" end
	elif ($e | type) == "object" then
		if ($a | type) != "object" then "\($p): expected an object, got \($a | tojson)"
		else $e | to_entries[] | mism(.value; $a[.key]; "\($p).\(.key)") end
	elif ($e | type) == "array" then
		if ($a | type) != "array" then "\($p): expected an array, got \($a | tojson)"
		elif ($e | length) == 0 then
			(if ($a | length) == 0 then empty else "\($p): expected [], got \($a | tojson)" end)
		else range(0; $e | length) as $i | $e[$i] as $x |
			if any($a[]; [mism($x; .; "")] | length == 0) then empty
			else (["pci", "backend", "id"] | map(select(. as $k | ($x | type) == "object"
				and ($x | has($k)))) | first) as $key |
				if $key == null then
					"\($p)[\($i)]: nothing matches \($x | tojson) in \($a | tojson)"
				else [$a[] | select(type == "object" and .[$key] == $x[$key])] as $same |
					if ($same | length) == 0 then
						"\($p): no element with \($key) \($x[$key] | tojson) in \($a | tojson)"
					else mism($x; $same[0]; "\($p)[\($key)=\($x[$key])]") end
				end
			end
		end
	elif $e == $a then empty
	else "\($p): expected \($e | tojson), got \($a | tojson)" end;
(if (.checks | type) == "array"
 then .checks |= (map({(.id | tostring): .status}) | add // {}) else . end) as $doc |
mism($exp; $doc; "")
'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0
count=0

for exp in "$FIXTURES"/*/expected.json; do
	[ -f "$exp" ] || continue
	dir=$(dirname "$exp")
	name=$(basename "$dir")
	count=$((count + 1))
	"$LEMON" doctor --json --sysroot "$dir" > "$tmp/out" 2> "$tmp/err"
	rc=$?
	why=""
	if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
		why="doctor exited $rc: $(head -c 400 "$tmp/err")"
	elif ! jq -e . "$tmp/out" > /dev/null 2>&1; then
		why="output is not JSON: $(head -c 200 "$tmp/out")"
	elif ! jq -e 'del(.exit) | type == "object"' "$exp" > /dev/null 2>&1; then
		why="$exp is not a JSON object"
	else
		jq -r "$CONTRACT" "$tmp/out" > "$tmp/diff" 2>&1
		jq -r --argjson exp "$(jq -c 'del(.exit)' "$exp")" "$SUBSET" \
			"$tmp/out" >> "$tmp/diff" 2>&1
		want=$(jq -r '.exit // empty' "$exp")
		if [ -n "$want" ] && [ "$want" != "$rc" ]; then
			echo "exit status: expected $want, got $rc" >> "$tmp/diff"
		fi
		if [ -s "$tmp/diff" ]; then
			why=$(sed 's/^/    /' "$tmp/diff")
			why="$(wc -l < "$tmp/diff" | tr -d ' ') mismatch(es)
$why"
		fi
	fi
	if [ -n "$why" ]; then
		echo "FAIL $name: $why"
		fail=1
	else
		echo "ok $name"
	fi
done

if [ $count -eq 0 ]; then
	echo "FAIL setup: no $FIXTURES/*/expected.json found"
	exit 1
fi
exit $fail
