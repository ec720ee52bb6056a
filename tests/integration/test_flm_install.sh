#!/bin/sh
# test_flm_install.sh: `lemon install-backend flm` installs FastFlowLM's
# Linux release asset (fastflowlm_<version>_linux.tar.gz on the release
# tagged v<version>, compat/backends.json) through the verified, atomic
# path of llama.cpp bundles. The asset here is a STAND-IN packed by this
# test: tests/tools/flm-standin as `flm` (the wrapper's name), with the
# other members of the publisher's tarball as labelled placeholders; it
# is not FastFlowLM. It is served by tests/tools/github-api.py (a loopback
# fake of GitHub's release API listing the digest) and tests/tools/mirror.py.
# Cases:
#   - no flags: the publisher's digest verifies, a cut download is resumed,
#     `flm version` (the smoke test; the stand-in refuses --version)
#     passes, installed as "flm";
#   - a wrong publisher digest is refused, the installed flm untouched;
#   - a mirror (manifest.json) installs it, a wrong manifest digest refused;
#   - scripts/pin-backends.sh pins its digest (tag v<version>), which installs;
#   - lemon doctor and lemon serve find the installed flm with no LEMON_FLM
#     and no flm on PATH; LEMON_FLM still overrides it;
#   - install-backend auto on the NPU fixture tries llama.cpp only.
set -u
. tests/integration/lib.sh

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
FIX=$PWD/tests/fixtures
VER=0.9.44
TAG=v$VER
ASSET=fastflowlm_${VER}_linux.tar.gz
REPO=FastFlowLM/FastFlowLM
T=$(mktemp -d /tmp/lemon-flm-install.XXXXXX)
FAILS=0
APID= MPID= LPID=
cleanup() {
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	[ -n "$APID" ] && kill "$APID" 2>/dev/null
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
unset LEMON_SYSROOT LEMON_FLM LEMON_MIRROR
need_lemon
command -v jq > /dev/null || { echo "FAIL setup: jq not found"; exit 1; }
grep -q "\"asset\": \"fastflowlm_{version}_linux.tar.gz\"" compat/backends.json &&
	grep -q "\"version\": \"$VER\"" compat/backends.json ||
	{ echo "FAIL setup: flm is no longer pinned to $VER"; exit 1; }

# the stand-in asset: flat, as debian-portable.yml packs the real one
P=$T/pack
mkdir -p "$P/lib" "$P/xclbins" "$T/store" "$T/mirror"
cp tests/tools/flm-standin "$P/flm"
printf '#!/bin/sh\necho "STAND-IN flm-real: not FastFlowLM" >&2\nexit 1\n' > "$P/flm-real"
chmod +x "$P/flm" "$P/flm-real"
echo "STAND-IN for lemon's tests: not FastFlowLM's libraries" > "$P/lib/STAND-IN"
echo "STAND-IN for lemon's tests: no NPU kernels" > "$P/xclbins/STAND-IN"
echo '{"about": "STAND-IN for lemon tests, not FastFlowLM"}' > "$P/model_list.json"
echo '{"about": "STAND-IN for lemon tests, not FastFlowLM"}' > "$P/model_info.json"
(cd "$P" && tar czf "$T/store/flm.tar.gz" flm flm-real lib xclbins model_list.json model_info.json)
SHA=$(sha256sum "$T/store/flm.tar.gz" | cut -d' ' -f1)
SIZE=$(wc -c < "$T/store/flm.tar.gz" | tr -d ' ')

release() { # DIGEST [EXTRA]: the fake lists the asset on the v-tag with it
	printf '{"releases": {"%s": {"%s": [{"name": "%s", "file": "flm.tar.gz", "digest": "%s"}]}}%s}\n' \
		"$REPO" "$TAG" "$ASSET" "$1" "${2:-}" > "$T/ctl"
}
# the first download is cut after 1000 bytes: the install resumes it
release auto ', "drop_once_at": 1000'
python3 tests/tools/github-api.py --dir "$T/store" --control "$T/ctl" --log "$T/alog" > "$T/aports" &
APID=$!
i=0
while [ ! -s "$T/aports" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
read -r APORT SPORT < "$T/aports"
[ -n "${SPORT:-}" ] || { echo "FAIL setup: github-api.py did not start"; exit 1; }
API=http://127.0.0.1:$APORT

lem() { # DATA-DIR args...: no flm on PATH, none named by LEMON_FLM
	d=$1
	shift
	env -u LEMON_FLM PATH=/usr/bin:/bin LEMON_GITHUB_API="$API" XDG_CACHE_HOME="$d/cache" \
		XDG_DATA_HOME="$d" "$LEMON" "$@"
}
D=$T/d1
EXE=$D/lemon/backends/flm-npu-$VER/flm

# --- no flags: the publisher's digest ------------------------------------
if lem "$D" install-backend flm --progress none > "$T/i1.out" 2>&1 &&
   grep -q "^installed flm $VER in " "$T/i1.out" && grep -q "^flm: $EXE\$" "$T/i1.out" &&
   [ -x "$EXE" ] && [ -f "$D/lemon/backends/flm-npu-$VER/xclbins/STAND-IN" ] &&
   jq -e --arg s "$SHA" '[.. | objects | select(.name? == "flm")] | length == 1 and
	(.[0] | .version == "0.9.44" and .sha256 == $s and .kind == "npu")' \
	"$D/lemon/backends/installed.json" > /dev/null &&
   grep -q "\"path\": \"/repos/$REPO/releases/tags/$TAG\"" "$T/alog" &&
   grep "\"host\": \"store\"" "$T/alog" | grep -q '"range": "bytes=1000-"'; then
	ok install-flm-publisher-digest
else
	fail install-flm-publisher-digest "$(cat "$T/i1.out"; cat "$D/lemon/backends/installed.json" 2>/dev/null)"
fi
if lem "$D" backends > "$T/b.out" 2>&1 && grep -q "flm.*$VER" "$T/b.out"; then
	ok backends-lists-flm
else
	fail backends-lists-flm "$(cat "$T/b.out")"
fi

# --- a wrong publisher digest: refused, the installed one intact ---------
cp "$D/lemon/backends/installed.json" "$T/inst.before"
release flip
if ! lem "$D" install-backend flm --force --progress none > "$T/i2.out" 2>&1 &&
   grep -q "checksum mismatch for $ASSET: expected [0-9a-f]* (publisher), got $SHA" "$T/i2.out" &&
   cmp -s "$T/inst.before" "$D/lemon/backends/installed.json" && [ -x "$EXE" ] &&
   "$EXE" version | grep -q "$VER"; then
	ok wrong-digest-refused-previous-intact
else
	fail wrong-digest-refused-previous-intact "$(cat "$T/i2.out")"
fi
release auto

# --- a mirror's manifest.json ------------------------------------------
cp "$T/store/flm.tar.gz" "$T/mirror/$ASSET"
manifest() { # SHA
	printf '{"version": "%s", "assets": {"%s": {"sha256": "%s", "size": %s}}}\n' \
		"$VER" "$ASSET" "$1" "$SIZE" > "$T/mirror/manifest.json"
}
manifest 0000000000000000000000000000000000000000000000000000000000000000
python3 tests/tools/mirror.py --dir "$T/mirror" > "$T/mport" 2> "$T/mirror.log" &
MPID=$!
i=0
while [ ! -s "$T/mport" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
MIRROR=http://127.0.0.1:$(head -n 1 "$T/mport")
D2=$T/d2
if ! lem "$D2" install-backend flm --mirror "$MIRROR" --progress none > "$T/m1.out" 2>&1 &&
   grep -q "checksum mismatch for $ASSET: expected 0* (manifest), got $SHA" "$T/m1.out" &&
   [ ! -e "$D2/lemon/backends/flm-npu-$VER" ]; then
	ok mirror-wrong-digest-refused
else
	fail mirror-wrong-digest-refused "$(cat "$T/m1.out")"
fi
manifest "$SHA"
if lem "$D2" install-backend flm --mirror "$MIRROR" --progress none > "$T/m2.out" 2>&1 &&
   [ -x "$D2/lemon/backends/flm-npu-$VER/flm" ]; then
	ok mirror-install-flm
else
	fail mirror-install-flm "$(cat "$T/m2.out")"
fi

# --- scripts/pin-backends.sh pins flm's digest from the v-tag's listing ---
cp -r compat "$T/compat"
if LEMON_GITHUB_API=$API scripts/pin-backends.sh --file "$T/compat/backends.json" --only flm \
	> "$T/pin.out" 2>&1 &&
   python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))["backends"]["flm"]["targets"]["npu"]
assert t["sha256"] == sys.argv[2] and t["size"] == int(sys.argv[3]), t
assert "/releases/tags/v0.9.44 " in t["pin_source"], t' "$T/compat/backends.json" "$SHA" "$SIZE" &&
   lem "$T/d3" install-backend flm --compat-dir "$T/compat" --progress none > "$T/p.out" 2>&1 &&
   [ -x "$T/d3/lemon/backends/flm-npu-$VER/flm" ]; then
	ok pin-backends-flm
else
	fail pin-backends-flm "$(cat "$T/pin.out" "$T/p.out" 2>/dev/null)"
fi

# --- doctor finds the installed flm --------------------------------------
lem "$D" doctor --json --sysroot "$FIX/strix-point-npu-flm" > "$T/doc.json" 2> "$T/doc.err"
if jq -e --arg p "$EXE" '[.backend.candidates[] | select(.backend == "flm")] | length == 1 and
	(.[0] | .usable and .path == $p and .version == "0.9.44")' "$T/doc.json" > /dev/null; then
	ok doctor-uses-installed-flm
else
	fail doctor-uses-installed-flm "$(jq -c '.backend.candidates' "$T/doc.json" 2>/dev/null; cat "$T/doc.err")"
fi
# LEMON_FLM set (empty: "not installed") still decides
env PATH=/usr/bin:/bin LEMON_FLM= XDG_DATA_HOME="$D" "$LEMON" doctor --json \
	--sysroot "$FIX/strix-point-npu-flm" > "$T/doc2.json" 2>/dev/null
if jq -e '[.backend.candidates[] | select(.backend == "flm")] | length == 1 and
	(.[0].usable | not)' "$T/doc2.json" > /dev/null; then
	ok lemon-flm-env-overrides-installed
else
	fail lemon-flm-env-overrides-installed "$(jq -c '.backend.candidates' "$T/doc2.json" 2>/dev/null)"
fi

# --- auto installs a llama.cpp bundle, never FastFlowLM (README) ---------
# on the NPU fixture the fake publisher lists flm only: auto tries the
# llama.cpp candidates, each unavailable there, and never flm
lem "$T/d4" install-backend auto --progress none --sysroot "$FIX/strix-point-npu-flm" \
	> "$T/auto.out" 2>&1
if grep -q '^trying llamacpp:' "$T/auto.out" && ! grep -qi 'trying flm\|installed flm' "$T/auto.out" &&
   [ -z "$(ls -d "$T"/d4/lemon/backends/flm* 2>/dev/null)" ]; then
	ok auto-does-not-install-flm
else
	fail auto-does-not-install-flm "$(cat "$T/auto.out"; ls "$T/d4/lemon/backends" 2>/dev/null)"
fi

# --- serve runs the installed flm ----------------------------------------
cat > "$T/models.json" <<'JSON'
{ "schema": 1, "models": [
  { "name": "qwen3:0.6b", "recipe": "flm", "labels": ["llm"],
    "source": "test entry: FastFlowLM's Qwen3 0.6B, no GGUF" } ] }
JSON
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
env -u LEMON_FLM PATH=/usr/bin:/bin XDG_DATA_HOME="$D" XDG_CONFIG_HOME="$T/config" \
	LEMON_MODELS_JSON="$T/models.json" "$LEMON" serve --port "$PORT" --backend cpu \
	--sysroot "$FIX/strix-point-npu-flm" > "$T/serve.log" 2>&1 &
LPID=$!
i=0
while [ $i -lt 300 ] && ! grep -qs "listening on" "$T/serve.log" && kill -0 "$LPID" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
code=$(curl -s -m 60 -o "$T/chat.json" -w '%{http_code}' -H 'Content-Type: application/json' \
	"$URL/v1/chat/completions" \
	-d '{"model":"qwen3:0.6b","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}')
if [ "$code" = 200 ] &&
   jq -e '.choices[0].message.content == "hello from the flm stand-in"' "$T/chat.json" > /dev/null &&
   curl -s -m 10 "$URL/api/v1/health" | jq -e '[.loaded[] | select(.model == "qwen3:0.6b"
	and .backend == "flm")] | length == 1' > /dev/null &&
   pgrep -f "$EXE serve" > /dev/null; then
	ok serve-uses-installed-flm
else
	fail serve-uses-installed-flm "status $code: $(head -c 300 "$T/chat.json"; tail -n 5 "$T/serve.log")"
fi

[ "$FAILS" -eq 0 ] || { echo "$FAILS flm install test(s) failed"; exit 1; }
echo "all flm install tests passed"
