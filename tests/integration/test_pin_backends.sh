#!/bin/sh
# Integration tests of scripts/pin-backends.sh against tests/tools/github-api.py
# (a loopback fake of GitHub's release API) serving the real CPU bundle
# (scripts/build-backend.sh cpu, repacked under the pinned tag) as
# llamacpp:cpu's and llamacpp:vulkan's pinned assets: the digests and sizes
# are written with their source and nothing else changes, --check reports
# drift without writing, and lemon installs from the pinned copy.
# Prints "ok NAME" or "FAIL NAME: why" per test; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
T=$(mktemp -d /tmp/lemon-pin.XXXXXX)
FAILS=0
MPID=
. tests/integration/lib.sh

cleanup() {
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

need_lemon
need_bundle
TAG=b10375
CPU=llama-$TAG-bin-ubuntu-x64.tar.gz
VK=llama-$TAG-bin-ubuntu-vulkan-x64.tar.gz
REPO=ggml-org/llama.cpp
S=$T/store
mkdir -p "$S"
python3 tests/tools/repack-bundle.py "$BUNDLE/$(cat "$BUNDLE/asset")" "$S/cpu.tar.gz" "$TAG" ||
	{ echo "FAIL setup: repack-bundle.py"; exit 1; }
cp "$BUNDLE/$(cat "$BUNDLE/asset")" "$S/vk.tar.gz"
SHA=$(sha256sum "$S/cpu.tar.gz" | cut -d' ' -f1)
SIZE=$(wc -c < "$S/cpu.tar.gz" | tr -d ' ')
VSHA=$(sha256sum "$S/vk.tar.gz" | cut -d' ' -f1)

release() { # cpu-digest [extra assets]
	printf '{"releases": {"%s": {"%s": [{"name": "%s", "file": "cpu.tar.gz", "digest": "%s"}, {"name": "%s", "file": "vk.tar.gz"}%s]}}}\n' \
		"$REPO" "$TAG" "$CPU" "$1" "$VK" "${2:-}" > "$T/ctl"
}
release auto
python3 tests/tools/github-api.py --dir "$S" --control "$T/ctl" --log "$T/log" > "$T/ports" &
MPID=$!
i=0
while [ ! -s "$T/ports" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
read -r APORT SPORT < "$T/ports"
API=http://127.0.0.1:$APORT
[ -n "$SPORT" ] || { echo "FAIL setup: github-api.py did not start"; exit 1; }

C=$T/compat
cp -r compat "$C"
F=$C/backends.json
pin() {
	LEMON_GITHUB_API=$API scripts/pin-backends.sh --file "$F" \
		--only llamacpp:cpu --only llamacpp:vulkan "$@"
}
# the manifest without the keys the script may write, to show nothing
# else changed
rest() {
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for t in d["backends"]["llamacpp"]["targets"].values():
    for k in ("sha256", "size", "pin_source"):
        t.pop(k, None)
print(json.dumps(d, sort_keys=True))
' "$1"
}
target() { # key field
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["backends"]["llamacpp"]["targets"][sys.argv[2]].get(sys.argv[3]))' "$F" "$1" "$2"
}

name=check_reports_unpinned
cp "$F" "$T/before"
pin --check > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "llamacpp:cpu: $CPU: sha256 None -> $SHA, size None -> $SIZE" "$T/out" &&
   grep -q "2 targets differ from the publisher" "$T/err" && cmp -s "$T/before" "$F"; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/out" "$T/err")"
fi

name=pin_writes_digest_size_source
if pin > "$T/out" 2> "$T/err" && [ "$(target cpu sha256)" = "$SHA" ] &&
   [ "$(target cpu size)" = "$SIZE" ] && [ "$(target vulkan sha256)" = "$VSHA" ] &&
   [ "$(target cpu pin_source)" = "$API/repos/$REPO/releases/tags/$TAG asset digest, $(date -u +%Y-%m-%d)" ] &&
   [ "$(target rocm-gfx110X sha256)" = None ] &&
   [ "$(rest "$T/before")" = "$(rest "$F")" ] &&
   grep -q "^wrote $F (2 targets)" "$T/out" &&
   grep -q '"X-GitHub-Api-Version": "2022-11-28"\|"api_version": "2022-11-28"' "$T/log"; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err")"
fi

name=check_in_sync
if pin --check > "$T/out" 2> "$T/err" && grep -q "llamacpp:cpu: $CPU in sync" "$T/out"; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err")"
fi

# the pinned copy loads and installs: the pin and the publisher agree
name=install_from_pinned_copy
D=$T/d
if LEMON_GITHUB_API=$API XDG_CACHE_HOME=$D/cache XDG_DATA_HOME=$D "$LEMON" install-backend \
	llamacpp:cpu --compat-dir "$C" --progress none > "$T/out" 2> "$T/err" &&
   grep -q "\"sha256\":[[:space:]]*\"$SHA\"" "$D/lemon/backends/installed.json"; then
	ok $name
else
	fail $name "$(cat "$T/err")"
fi

name=check_reports_drift_writes_nothing
release flip
cp "$F" "$T/before"
pin --check > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "llamacpp:cpu: $CPU: sha256 $SHA -> [0-9a-f]\{64\}, size $SIZE -> $SIZE" "$T/out" &&
   grep -q "1 target differ" "$T/err" && cmp -s "$T/before" "$F"; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/out" "$T/err")"
fi

name=missing_asset_and_digest_reported
printf '{"releases": {"%s": {"%s": [{"name": "%s", "file": "cpu.tar.gz", "digest": "none"}]}}}\n' \
	"$REPO" "$TAG" "$CPU" > "$T/ctl"
pin > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "llamacpp:vulkan: release $TAG of $REPO has no asset $VK (it has: $CPU)" "$T/err" &&
   grep -q "llamacpp:cpu: the publisher lists no sha256 digest for $CPU" "$T/err" &&
   cmp -s "$T/before" "$F"; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/out" "$T/err")"
fi

name=rate_limit_reported
RESET=$(($(date +%s) + 1800))
printf '{"rate_limit": {"status": 403, "reset": %s}}\n' "$RESET" > "$T/ctl"
pin --check > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -eq 2 ] &&
   grep -q "GitHub API rate limit reached (HTTP 403): it resets at $(date -u -d "@$RESET" '+%Y-%m-%d %H:%M:%S UTC')" "$T/err"; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/err")"
fi

[ $FAILS -eq 0 ]
