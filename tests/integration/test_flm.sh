#!/bin/sh
# test_flm.sh: FastFlowLM (flm) on the NPU, judged by lemon's own NPU
# verdict. The NPU cannot exist here: the NPU comes from recorded trees in
# tests/fixtures and flm from tests/tools/flm-standin (a labelled stand-in
# that implements the CLI surface lemon uses; it is not FastFlowLM).
# Cases (doctor --json --sysroot, and the text report's NPU section):
#   - healthy Strix Point NPU + flm 0.9.44: a usable flm candidate whose
#     reason names the version, and the NPU section ends with it;
#   - protocol mismatch (strix-point-npu-proto): refused with the firmware
#     fix of the NPU verdict, not "no NPU";
#   - flm missing: refused, the reason says how to install it;
#   - flm older than compat/flm.json's minimum: refused, names both;
#   - firmware below flm validate's floor (strix-halo, 1.0.20.31) and an
#     XDNA1 NPU (phoenix-780m): refused with that reason;
#   - compat/flm.json goes through the schema checker: a typo'd key fails.
set -u
. tests/integration/lib.sh

LEMON=${LEMON:-build/lemon}
FIX=tests/fixtures
STANDIN=$(pwd)/tests/tools/flm-standin
unset LEMON_SYSROOT
FAILS=0
need_lemon
command -v jq > /dev/null || { echo "FAIL setup: jq not found"; exit 1; }
command -v python3 > /dev/null || { echo "FAIL setup: python3 not found"; exit 1; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM

# doctor's flm candidate for FIXTURE with LEMON_FLM=ARG (and extra env)
flm_cand() { # FIXTURE LEMON_FLM [VAR=VALUE...]
	fx=$1 flm=$2
	shift 2
	env LEMON_FLM="$flm" "$@" "$LEMON" doctor --json --sysroot "$FIX/$fx" > "$T/doc.json"
	jq -c '[.backend.candidates[] | select(.backend == "flm")]' "$T/doc.json" > "$T/cand.json"
}

check() { # NAME JQ-EXPR
	if jq -e "length == 1 and (.[0] | $2)" "$T/cand.json" > /dev/null; then
		ok "$1"
	else
		fail "$1" "$(cat "$T/cand.json")"
	fi
}

flm_cand strix-point-npu-flm "$STANDIN"
check healthy-npu-flm-usable '.usable and .target == "npu4" and .version == "0.9.44"
	and (.reason | test("^FastFlowLM 0\\.9\\.44 can serve on this NPU"))
	and (.path | endswith("flm-standin"))'
if jq -e '[.checks[] | select(.section == "npu")] | last | .id == "flm" and .status == "ok"' \
	"$T/doc.json" > /dev/null; then
	ok healthy-npu-check-last
else
	fail healthy-npu-check-last "$(jq -c '[.checks[] | select(.section == "npu")]' "$T/doc.json")"
fi
LEMON_FLM=$STANDIN "$LEMON" doctor --sysroot "$FIX/strix-point-npu-flm" > "$T/doc.txt" 2>&1
last=$(sed -n '/^NPUs$/,/^$/p' "$T/doc.txt" | grep -v '^$' | tail -1)
case $last in
*"FastFlowLM 0.9.44 can serve on this NPU"*) ok healthy-npu-text-ends-with-flm ;;
*) fail healthy-npu-text-ends-with-flm "last NPU line: $last" ;;
esac

# the verdict, not flm's "No NPU device found": the firmware fix
flm_cand strix-point-npu-proto "$STANDIN"
check proto-mismatch-refused '(.usable | not) and (.reason | test("7\\.0") and test("amdxdna-dkms")
	and test("npu\\.sbin")) and (.reason | test("No NPU") | not)'

# missing: an empty LEMON_FLM, and a PATH without flm
flm_cand strix-point-npu-flm ""
check flm-missing-says-install '(.usable | not) and (.reason | test("not installed"))
	and (.reason | test("github.com/FastFlowLM/FastFlowLM/releases"))'
env -u LEMON_FLM PATH=/nonexistent "$LEMON" doctor --json --sysroot "$FIX/strix-point-npu-flm" \
	> "$T/doc.json"
jq -c '[.backend.candidates[] | select(.backend == "flm")]' "$T/doc.json" > "$T/cand.json"
check flm-not-on-path '(.usable | not) and (.reason | test("not installed"))'
mkdir -p "$T/bin" && ln -s "$STANDIN" "$T/bin/flm"
env -u LEMON_FLM PATH="$T/bin:/usr/bin:/bin" "$LEMON" doctor --json \
	--sysroot "$FIX/strix-point-npu-flm" > "$T/doc.json"
jq -c '[.backend.candidates[] | select(.backend == "flm")]' "$T/doc.json" > "$T/cand.json"
check flm-found-on-path ".usable and .path == \"$T/bin/flm\""

flm_cand strix-point-npu-flm "$STANDIN" FLM_STANDIN_VERSION=0.9.39
check flm-too-old '(.usable | not) and (.reason | test("0\\.9\\.39") and test("older than 0\\.9\\.44"))'

# a broken flm: no version, no hang
printf '#!/bin/sh\necho no version here\n' > "$T/bin/flm-broken"
chmod +x "$T/bin/flm-broken"
flm_cand strix-point-npu-flm "$T/bin/flm-broken"
check flm-no-version '(.usable | not) and (.reason | test("named no version"))'

flm_cand strix-halo "$STANDIN"
check firmware-below-flm-floor '(.usable | not) and .target == "npu5"
	and (.reason | test("firmware 1\\.1 or newer") and test("1\\.0\\.20\\.31"))'
flm_cand phoenix-780m "$STANDIN"
check xdna1-refused '(.usable | not) and .target == "npu1" and (.reason | test("XDNA2"))'

# no NPU: no flm candidate (and flm is not run)
env LEMON_FLM="$STANDIN" "$LEMON" doctor --json --sysroot "$FIX/rx7900xtx" > "$T/doc.json"
if jq -e '[.backend.candidates[] | select(.backend == "flm")] | length == 0' "$T/doc.json" > /dev/null; then
	ok no-npu-no-candidate
else
	fail no-npu-no-candidate "$(jq -c .backend "$T/doc.json")"
fi

# flm.json is checked like every compat file
mkdir -p "$T/compat"
cp compat/*.json "$T/compat/"
sed 's/"firmware_min"/"firmware_minn"/' compat/flm.json > "$T/compat/flm.json"
if LEMON_COMPAT_DIR=$T/compat LEMON_FLM="$STANDIN" "$LEMON" doctor --json \
	--sysroot "$FIX/strix-point-npu-flm" > "$T/bad.out" 2>&1; then
	fail flm-json-schema "a typo'd key was accepted"
elif grep -q "flm.json" "$T/bad.out" && grep -q "firmware_minn" "$T/bad.out"; then
	ok flm-json-schema
else
	fail flm-json-schema "$(head -c 300 "$T/bad.out")"
fi

[ "$FAILS" -eq 0 ]
