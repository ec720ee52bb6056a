#!/bin/sh
# test_flm.sh: FastFlowLM (flm) on the NPU, judged by lemon's own NPU
# verdict. The NPU cannot exist here: the NPU comes from recorded trees in
# tests/fixtures and flm from tests/tools/flm-standin (a labelled stand-in
# that implements the CLI surface lemon uses; it is not FastFlowLM).
# Cases (doctor --json --sysroot, and the text report's NPU section):
#   - healthy Strix Point NPU + flm 0.9.44: a usable flm candidate whose
#     reason names the version, and the NPU section ends with it; its
#     8 MiB locked-memory limit is named with the fix (unlimited: not);
#   - protocol mismatch (strix-point-npu-proto): refused with the firmware
#     fix of the NPU verdict, not "no NPU";
#   - flm missing: refused, the reason says how to install it;
#   - flm older than compat/flm.json's minimum: refused, names both;
#   - firmware below flm validate's floor (strix-halo, 1.0.20.31) and an
#     XDNA1 NPU (phoenix-780m): refused with that reason;
#   - compat/flm.json goes through the schema checker: a typo'd key fails.
# Serving (lemon serve --sysroot FIXTURE, registry entries of recipe flm):
#   - healthy NPU + flm: the model served through lemon (streamed and not)
#     by a supervised flm serve child; a crash mid-stream gives an error
#     event and the next request respawns it; one NPU child at a time;
#   - protocol mismatch: refused with the firmware fix, and a model whose
#     registry entry names its GGUF is served from that instead;
#   - flm missing: the error says how to install it;
#   - an flm whose child cannot start: the GGUF, recorded as a fallback.
# Lists: the registry's flm models that can be served are in GET /v1/models
# (recipe flm, device npu, or gguf when their GGUF serves them),
# /v1/models/{id}, /api/tags (details.format flm) and, loaded, /api/ps;
# one that cannot be served (refused, no GGUF) is in none of them.
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

flm_cand strix-point-npu-flm "$STANDIN"
# the recorded limit is 8 MiB: usable (the system section only warns),
# the reason names the limit and the fix from compat/flm.json
check healthy-npu-memlock-warns '.usable and (.reason | test("locked-memory limit 8 MiB")
	and test("512 MiB") and test("memlock unlimited") and test("LimitMEMLOCK=infinity"))'
if jq -e '[.checks[] | select(.id == "memlock")][0].status == "warn"' "$T/doc.json" > /dev/null; then
	ok healthy-npu-memlock-system-warns
else
	fail healthy-npu-memlock-system-warns "$(jq -c '[.checks[] | select(.id == "memlock")]' "$T/doc.json")"
fi
cp -a "$FIX/strix-point-npu-flm" "$T/unlimited"
sed -i 's/^Max locked memory .*/Max locked memory         unlimited            unlimited            bytes/' \
	"$T/unlimited/proc/self/limits"
LEMON_FLM="$STANDIN" "$LEMON" doctor --json --sysroot "$T/unlimited" > "$T/doc.json"
jq -c '[.backend.candidates[] | select(.backend == "flm")]' "$T/doc.json" > "$T/cand.json"
check memlock-unlimited-no-warning '.usable and (.reason | test("locked-memory") | not)
	and (.reason | test("^FastFlowLM 0\\.9\\.44 can serve on this NPU \\(npu4, .*flm-standin\\)$"))'

# the verdict, not flm's "No NPU device found": the firmware fix
flm_cand strix-point-npu-proto "$STANDIN"
check proto-mismatch-refused '(.usable | not) and (.reason | test("7\\.0") and test("amdxdna-dkms")
	and test("npu\\.sbin")) and (.reason | test("No NPU") | not)'

# missing: an empty LEMON_FLM, and a PATH without flm
flm_cand strix-point-npu-flm ""
check flm-missing-says-install '(.usable | not) and (.reason | test("not installed"))
	and (.reason | test("github.com/FastFlowLM/FastFlowLM/releases"))
	and (.reason | test("lemon install-backend flm"))'
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

# a node this user cannot open: refused with that check's fix (a copy of
# the healthy tree whose /dev/accel/accel0 is root's alone)
cp -a "$FIX/strix-point-npu-flm" "$T/noaccess"
sed -i 's|^/dev/accel/accel0 .*|/dev/accel/accel0 600 0 0|' "$T/noaccess/dev/.lemon-stat"
LEMON_FLM="$STANDIN" "$LEMON" doctor --json --sysroot "$T/noaccess" > "$T/doc.json"
jq -c '[.backend.candidates[] | select(.backend == "flm")]' "$T/doc.json" > "$T/cand.json"
check accel-node-not-accessible '(.usable | not) and (.reason | test("accel0 is not accessible"))
	and (.reason | test("render|group|udev|chmod|usermod"))'

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

# ---- serving: lemon serve --sysroot FIXTURE with the stand-in as flm ----
# Registry entries of recipe flm come from a user models.json; the NPU
# verdict from the recorded tree; GGUF models run on the real CPU bundle.
need_tiny_model
BUNDLE=$(scripts/build-backend.sh cpu 2>/dev/null | tail -n 1)
ASSET=$(cat "$BUNDLE/asset" 2>/dev/null)
mkdir -p "$T/bundle"
[ -n "$ASSET" ] && tar -xzf "$BUNDLE/$ASSET" -C "$T/bundle" ||
	{ echo "FAIL setup: no llama.cpp CPU bundle from scripts/build-backend.sh"; exit 1; }
LLAMA_SERVER=$(find "$T/bundle" -name llama-server -type f | head -n 1)
mkdir -p "$T/data/lemon/models" "$T/config"
cp "$MODEL" "$T/data/lemon/models/tiny.gguf"
cat > "$T/models.json" <<'JSON'
{ "schema": 1, "models": [
  { "name": "llama3.2:1b", "recipe": "flm", "labels": ["llm"], "gguf": "tiny",
    "source": "test entry: FastFlowLM's Llama 3.2 1B, its GGUF the tiny test model" },
  { "name": "qwen3:0.6b", "recipe": "flm", "labels": ["llm"],
    "source": "test entry: FastFlowLM's Qwen3 0.6B, no GGUF" } ] }
JSON
# an flm model is FastFlowLM's to fetch: pull refuses and stores nothing
if ! XDG_DATA_HOME="$T/pulldata" LEMON_MODELS_JSON="$T/models.json" "$LEMON" pull llama3.2:1b \
	> "$T/pull.out" 2>&1 && grep -q "fetches its own models" "$T/pull.out" &&
   [ -z "$(ls -A "$T/pulldata/lemon/models" 2>/dev/null)" ]; then
	ok flm-model-not-pulled
else
	fail flm-model-not-pulled "$(cat "$T/pull.out"; ls -R "$T/pulldata" 2>/dev/null)"
fi

LPID=
stop_lemon() {
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	LPID=
}
trap 'stop_lemon; rm -rf "$T"' EXIT INT TERM
# start_lemon FIXTURE LOG [VAR=VALUE...]: serve with that NPU tree
start_lemon() {
	fx=$1 log=$2
	shift 2
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	env XDG_DATA_HOME="$T/data" XDG_CONFIG_HOME="$T/config" LEMON_MODELS_JSON="$T/models.json" \
		LEMON_LLAMA_SERVER_CPU="$LLAMA_SERVER" LEMON_FLM="$STANDIN" "$@" \
		"$LEMON" serve --port "$PORT" --backend cpu --sysroot "$FIX/$fx" > "$log" 2>&1 &
	LPID=$!
	i=0
	while [ $i -lt 300 ]; do
		grep -qs "listening on" "$log" && return 0
		kill -0 "$LPID" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
chat() { # MODEL OUT [stream]: the HTTP status
	curl -s -N -m 60 -o "$2" -w '%{http_code}' -H 'Content-Type: application/json' \
		"$URL/v1/chat/completions" \
		-d "{\"model\":\"$1\",\"stream\":${3:-false},\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
}
# the text of a stream's content deltas
deltas() { sed -n 's/^data: \({.*}\)$/\1/p' "$1" | jq -j '.choices[0].delta.content // empty'; }
health() { curl -s -m 10 "$URL/api/v1/health"; }

if start_lemon strix-point-npu-flm "$T/l1.log" FLM_STANDIN_CRASH_AFTER=2 \
	FLM_STANDIN_CRASH_FILE="$T/crashed"; then
	# the first stream: the stand-in dies after two chunks
	code=$(chat llama3.2:1b "$T/s0" true)
	if [ -f "$T/crashed" ] && grep -q '^data: {"error"' "$T/s0"; then
		ok crash-mid-stream-error-event
	else
		fail crash-mid-stream-error-event "status $code: $(head -c 400 "$T/s0")"
	fi
	code=$(chat llama3.2:1b "$T/s1" true)
	if [ "$code" = 200 ] && [ "$(deltas "$T/s1")" = "hello from the flm stand-in" ] &&
	   grep -q '^data: \[DONE\]' "$T/s1"; then
		ok npu-model-served-after-respawn
	else
		fail npu-model-served-after-respawn "status $code: $(head -c 400 "$T/s1")"
	fi
	if health | jq -e '[.loaded[] | select(.model == "llama3.2:1b")] | length == 1 and
		(.[0] | .backend == "flm" and .state == "ready")' > /dev/null &&
	   [ "$(grep -c 'starting llama3.2:1b (chat) on flm' "$T/l1.log")" = 2 ]; then
		ok npu-child-respawned
	else
		fail npu-child-respawned "$(health | jq -c .loaded) $(grep starting "$T/l1.log")"
	fi
	code=$(chat llama3.2:1b "$T/c1")
	if [ "$code" = 200 ] && jq -e '.choices[0].message.content == "hello from the flm stand-in"' \
		"$T/c1" > /dev/null; then
		ok npu-model-non-streamed
	else
		fail npu-model-non-streamed "status $code: $(head -c 300 "$T/c1")"
	fi
	# the lists: both flm models on the NPU beside the stored GGUF
	curl -s -m 10 "$URL/v1/models" > "$T/v1.json"
	if jq -e '.object == "list" and ([.data[].id] | sort) == ["llama3.2:1b", "qwen3:0.6b", "tiny"]
		and ([.data[] | select(.recipe == "flm") | select(.object == "model"
			and .owned_by == "lemon" and .device == "npu" and (.created | type) == "number")]
			| length) == 2' "$T/v1.json" > /dev/null; then
		ok v1-models-lists-flm
	else
		fail v1-models-lists-flm "$(head -c 400 "$T/v1.json")"
	fi
	code=$(curl -s -m 10 -o "$T/v1one.json" -w '%{http_code}' "$URL/v1/models/qwen3:0.6b")
	if [ "$code" = 200 ] && jq -e '.id == "qwen3:0.6b" and .object == "model" and .recipe == "flm"
		and .device == "npu"' "$T/v1one.json" > /dev/null; then
		ok v1-model-flm-by-id
	else
		fail v1-model-flm-by-id "status $code: $(head -c 300 "$T/v1one.json")"
	fi
	curl -s -m 10 "$URL/api/tags" > "$T/tags.json"
	if jq -e '([.models[].name] | sort) == ["llama3.2:1b", "qwen3:0.6b", "tiny"] and
		([.models[] | select(.details.format == "flm") | .model] | sort) == ["llama3.2:1b", "qwen3:0.6b"]
		and ([.models[] | select(.name == "tiny")][0].details.format == "gguf")' \
		"$T/tags.json" > /dev/null; then
		ok ollama-tags-lists-flm
	else
		fail ollama-tags-lists-flm "$(head -c 400 "$T/tags.json")"
	fi
	curl -s -m 10 "$URL/api/ps" > "$T/ps.json"
	if jq -e '[.models[] | select(.name == "llama3.2:1b" and .details.format == "flm")]
		| length == 1' "$T/ps.json" > /dev/null; then
		ok ollama-ps-lists-loaded-flm
	else
		fail ollama-ps-lists-loaded-flm "$(head -c 400 "$T/ps.json")"
	fi
	# one NPU child at a time: the second flm model replaces the first
	code=$(chat qwen3:0.6b "$T/c2")
	sleep 0.5
	if [ "$code" = 200 ] && health | jq -e '[.loaded[] | select(.backend == "flm" and
		(.state == "ready" or .state == "loading" or .state == "stopping")) | .model] == ["qwen3:0.6b"]' \
		> /dev/null; then
		ok one-npu-child-at-a-time
	else
		fail one-npu-child-at-a-time "status $code: $(health | jq -c .loaded)"
	fi
	# GGUF models do not run on the flm candidate
	code=$(chat tiny "$T/c3")
	if [ "$code" = 200 ] && health | jq -e '[.loaded[] | select(.model == "tiny")][0].backend == "cpu"' \
		> /dev/null; then
		ok gguf-model-not-on-npu
	else
		fail gguf-model-not-on-npu "status $code: $(health | jq -c .loaded)"
	fi
else
	fail serve-healthy "lemon serve did not come up: $(tail -5 "$T/l1.log")"
fi
stop_lemon

# protocol mismatch: refused with the firmware fix; its GGUF serves instead
if start_lemon strix-point-npu-proto "$T/l2.log"; then
	code=$(chat qwen3:0.6b "$T/p1")
	if [ "$code" != 200 ] && grep -q "amdxdna-dkms" "$T/p1" && grep -q "npu.sbin" "$T/p1"; then
		ok proto-mismatch-serve-refused-with-fix
	else
		fail proto-mismatch-serve-refused-with-fix "status $code: $(head -c 400 "$T/p1")"
	fi
	code=$(chat llama3.2:1b "$T/p2")
	if [ "$code" = 200 ] && grep -q "serving its GGUF tiny instead" "$T/l2.log" &&
	   health | jq -e '[.loaded[] | select(.model == "tiny")][0].backend == "cpu"' > /dev/null; then
		ok npu-refused-gguf-fallback
	else
		fail npu-refused-gguf-fallback "status $code: $(head -c 300 "$T/p2"); $(grep GGUF "$T/l2.log")"
	fi
	# refused: the model with a GGUF is listed as served by it, the
	# other is not listed (a client would offer it and fail)
	curl -s -m 10 "$URL/v1/models" > "$T/v1.json"
	curl -s -m 10 "$URL/api/tags" > "$T/tags.json"
	code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$URL/v1/models/qwen3:0.6b")
	if jq -e '([.data[].id] | sort) == ["llama3.2:1b", "tiny"] and
		([.data[] | select(.id == "llama3.2:1b")][0] | .recipe == "flm" and .device == "gguf"
			and .gguf == "tiny")' "$T/v1.json" > /dev/null &&
	   jq -e '([.models[].name] | sort) == ["llama3.2:1b", "tiny"]' "$T/tags.json" > /dev/null &&
	   [ "$code" = 404 ]; then
		ok refused-flm-listed-only-with-gguf
	else
		fail refused-flm-listed-only-with-gguf "$code $(head -c 300 "$T/v1.json") $(head -c 300 "$T/tags.json")"
	fi
else
	fail serve-proto "lemon serve did not come up: $(tail -5 "$T/l2.log")"
fi
stop_lemon

# flm missing: the reason says how to install it
if start_lemon strix-point-npu-flm "$T/l3.log" LEMON_FLM=; then
	code=$(chat qwen3:0.6b "$T/m1")
	if [ "$code" != 200 ] && grep -q "not installed" "$T/m1" &&
	   grep -q "github.com/FastFlowLM/FastFlowLM/releases" "$T/m1"; then
		ok flm-missing-serve-says-install
	else
		fail flm-missing-serve-says-install "status $code: $(head -c 400 "$T/m1")"
	fi
	if curl -s -m 10 "$URL/v1/models" | jq -e '([.data[].id] | sort) == ["llama3.2:1b", "tiny"]' \
		> /dev/null; then
		ok flm-missing-not-listed
	else
		fail flm-missing-not-listed "$(curl -s -m 10 "$URL/v1/models" | head -c 300)"
	fi
else
	fail serve-missing "lemon serve did not come up: $(tail -5 "$T/l3.log")"
fi
stop_lemon

# flm installed but its child cannot start: the GGUF, and the fallback
# is recorded
printf '#!/bin/sh\n[ "$1" = version ] && { echo "FLM v0.9.44"; exit 0; }\necho "cannot open NPU" >&2\nexit 1\n' \
	> "$T/bin/flm-fails"
chmod +x "$T/bin/flm-fails"
if start_lemon strix-point-npu-flm "$T/l4.log" LEMON_FLM="$T/bin/flm-fails"; then
	code=$(chat llama3.2:1b "$T/f1")
	if [ "$code" = 200 ] && health | jq -e '[.fallbacks[] | select(.model == "llama3.2:1b"
		and .from == "flm" and .to == "cpu")] | length == 1' > /dev/null &&
	   grep -q "serving its GGUF tiny instead" "$T/l4.log"; then
		ok npu-start-failure-gguf-fallback
	else
		fail npu-start-failure-gguf-fallback "status $code: $(health | jq -c .fallbacks)"
	fi
else
	fail serve-fails "lemon serve did not come up: $(tail -5 "$T/l4.log")"
fi
stop_lemon

[ "$FAILS" -eq 0 ]
