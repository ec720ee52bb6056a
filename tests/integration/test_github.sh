#!/bin/sh
# Integration tests of installing from the publisher: `lemon install-backend`
# with LEMON_GITHUB_API pointing at tests/tools/github-api.py, a real HTTP
# fake of GitHub's release API on 127.0.0.1 whose download URLs redirect to
# a second loopback host (127.0.0.2) standing for the object store. It
# serves the real llama.cpp CPU bundle (scripts/build-backend.sh cpu, cached)
# repacked under llamacpp:cpu's pinned tag and asset name, with the digest
# GitHub would list, a flipped one, none, drifted names and rate limits.
# Prints "ok NAME" or "FAIL NAME: why" per test; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
ROOT=$PWD
T=$(mktemp -d /tmp/lemon-github.XXXXXX)
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
ASSET=llama-$TAG-bin-ubuntu-x64.tar.gz
REPO=ggml-org/llama.cpp
# the pinned tag and asset name must still be what compat/backends.json says
grep -q "\"version\": \"$TAG\"" compat/backends.json ||
	{ echo "FAIL setup: llamacpp:cpu is no longer pinned to $TAG"; exit 1; }

# the real bundle, its top directory renamed to the pinned tag's (the
# executable's path inside the archive is llama-{version}/llama-server)
S=$T/store
mkdir -p "$S"
python3 tests/tools/repack-bundle.py "$BUNDLE/$(cat "$BUNDLE/asset")" "$S/cpu.tar.gz" "$TAG" ||
	{ echo "FAIL setup: repack-bundle.py"; exit 1; }
SHA=$(sha256sum "$S/cpu.tar.gz" | cut -d' ' -f1)
SIZE=$(wc -c < "$S/cpu.tar.gz" | tr -d ' ')

# control file: what the fake lists for the pinned release
release() { # json list of assets
	printf '{"releases": {"%s": {"%s": %s}}%s}\n' "$REPO" "$TAG" "$1" "${2:-}" > "$T/ctl"
}
one() { # name digest
	echo "{\"name\": \"$1\", \"file\": \"cpu.tar.gz\", \"digest\": \"$2\"}"
}
release "[$(one "$ASSET" auto)]"
python3 tests/tools/github-api.py --dir "$S" --control "$T/ctl" --log "$T/log" > "$T/ports" &
MPID=$!
i=0
while [ ! -s "$T/ports" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
read -r APORT SPORT < "$T/ports"
API=http://127.0.0.1:$APORT
[ -n "$SPORT" ] || { echo "FAIL setup: github-api.py did not start"; exit 1; }

lem() { # data-dir args... (each data dir has its own listing cache)
	d=$1
	shift
	LEMON_GITHUB_API=$API XDG_CACHE_HOME=$d/cache XDG_DATA_HOME=$d "$LEMON" "$@"
}
exe_of() { echo "$1/lemon/backends/llamacpp-cpu-$TAG/llama-$TAG/llama-server"; }
# the log's requests to host $1 as "path status range sent authorization
# if_none_match accept api_version"
reqs() {
	python3 -c '
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["host"] == sys.argv[2]:
        print(e["path"], e["status"], e["range"], e["sent"], e["authorization"],
              e["if_none_match"], e["accept"], e["api_version"])
' "$T/log" "$1" 2>/dev/null
}

# --- the acceptance case: no flag, the publisher's digest verifies ------
name=install_without_flag
D1=$T/d1
: > "$T/log"
if lem "$D1" install-backend llamacpp:cpu --progress none > "$T/out" 2> "$T/err" &&
   grep -q "installed llamacpp:cpu $TAG" "$T/out" &&
   grep -q "\"sha256\":[[:space:]]*\"$SHA\"" "$D1/lemon/backends/installed.json" &&
   "$(exe_of "$D1")" --version > "$T/ver" 2>&1 && grep -q "version:" "$T/ver" &&
   reqs api | grep -q "^/repos/$REPO/releases/tags/$TAG 200 .* application/vnd.github+json 2022-11-28$" &&
   reqs api | grep -q "^/$REPO/releases/download/$TAG/$ASSET 302 " &&
   reqs store | grep -q "^/objects/cpu.tar.gz?sig=fake 200 None $SIZE " &&
   ! grep -q "WARNING" "$T/err"; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err"; reqs api; reqs store)"
fi

# --- the listing is revalidated with its ETag; the token goes to the API
# host only, never to the object store ------------------------------------
name=etag_revalidated_token_api_only
: > "$T/log"
if GITHUB_TOKEN=tok-123 lem "$D1" install-backend llamacpp:cpu --force --progress none \
	> "$T/out" 2> "$T/err" &&
   reqs api | grep -q "^/repos/$REPO/releases/tags/$TAG 304 None 0 Bearer tok-123 \"[0-9a-f]*\" " &&
   reqs store | grep -q "^/objects/cpu.tar.gz?sig=fake 200 None $SIZE None " &&
   [ "$(reqs store | grep -c tok-123)" = 0 ]; then
	ok $name
else
	fail $name "$(cat "$T/err"; reqs api; reqs store)"
fi

# a cached listing that is not one (cut short) is not trusted: the next
# request asks for the whole listing again
name=corrupt_cache_refetched
: > "$T/log"
for f in "$D1"/cache/lemon/github/*.json; do head -c 100 "$f" > "$f.cut" && mv "$f.cut" "$f"; done
if lem "$D1" install-backend llamacpp:cpu --force --progress none > "$T/out" 2> "$T/err" &&
   reqs api | grep -q "^/repos/$REPO/releases/tags/$TAG 200 None [0-9]* None None " &&
   [ "$(wc -c < "$(ls "$D1"/cache/lemon/github/*.json)")" -gt 100 ]; then
	ok $name
else
	fail $name "$(cat "$T/err"; reqs api)"
fi

# --- a flipped digest: refused loudly, the previous install intact ----------
name=flipped_digest_refused_previous_intact
release "[$(one "$ASSET" flip)]"
cp "$D1/lemon/backends/installed.json" "$T/installed.before"
lem "$D1" install-backend llamacpp:cpu --force --progress none > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -ne 0 ] &&
   grep -q "checksum mismatch for $ASSET: expected [0-9a-f]\{64\} (publisher), got $SHA" "$T/err" &&
   ! grep -q "expected $SHA" "$T/err" &&
   cmp -s "$T/installed.before" "$D1/lemon/backends/installed.json" &&
   [ ! -e "$D1/lemon/backends/.downloads/$ASSET.part" ] &&
   lem "$D1" backends > "$T/b" 2>&1 && grep -q "llamacpp:cpu.*$TAG.*ok" "$T/b" &&
   "$(exe_of "$D1")" --version > /dev/null 2>&1; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/err")"
fi

# --- no digest anywhere: refused unless --insecure-skip-verify -------------
name=missing_digest_refused
release "[$(one "$ASSET" none)]"
D=$T/nodigest
lem "$D" install-backend llamacpp:cpu --progress none > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -ne 0 ] &&
   grep -q "no known sha256 for $ASSET (not pinned, and its publisher's release lists no digest)" "$T/err" &&
   grep -q -- "--insecure-skip-verify" "$T/err" &&
   [ ! -d "$D/lemon/backends/llamacpp-cpu-$TAG" ]; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/err")"
fi

name=missing_digest_insecure_flag
if lem "$D" install-backend llamacpp:cpu --insecure-skip-verify --progress none \
	> "$T/out" 2> "$T/err" && grep -q "WARNING: --insecure-skip-verify" "$T/err" &&
   "$(exe_of "$D")" --version > /dev/null 2>&1; then
	ok $name
else
	fail $name "$(cat "$T/err")"
fi

# --- a pinned sha256 must agree with the publisher's ------------------------
release "[$(one "$ASSET" auto)]"
C=$T/compat
cp -r compat "$C"
pin() { # sha size
	python3 - "$C/backends.json" "$1" "$2" <<'EOF'
import json, sys
p, sha, size = sys.argv[1:4]
d = json.load(open(p))
t = d["backends"]["llamacpp"]["targets"]["cpu"]
t["sha256"], t["size"], t["pin_source"] = sha, int(size), "test_github.sh"
json.dump(d, open(p, "w"), indent=2)
EOF
}
name=pinned_disagrees_with_publisher
pin "$(echo "$SHA" | tr '0-9a-f' '1-9a-f0')" "$SIZE"
D=$T/pinbad
: > "$T/log"
lem "$D" install-backend llamacpp:cpu --compat-dir "$C" --progress none > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -ne 0 ] &&
   grep -q "$ASSET: publisher digest $SHA disagrees with pinned [0-9a-f]\{64\} (compat/backends.json)" "$T/err" &&
   [ ! -d "$D/lemon/backends/llamacpp-cpu-$TAG" ] && [ -z "$(reqs store)" ]; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/err")"
fi

name=pinned_agrees_with_publisher
pin "$SHA" "$SIZE"
D=$T/pinok
if lem "$D" install-backend llamacpp:cpu --compat-dir "$C" --progress none \
	> "$T/out" 2> "$T/err" && "$(exe_of "$D")" --version > /dev/null 2>&1; then
	ok $name
else
	fail $name "$(cat "$T/err")"
fi

# --- the publisher renamed the asset: the declared pattern finds it ---------
DRIFT=llama-$TAG-bin-ubuntu-22.04-x64.tar.gz
decoys="$(one "llama-$TAG-bin-ubuntu-vulkan-x64.tar.gz" auto), $(one "llama-$TAG-bin-ubuntu-arm64.tar.gz" auto), $(one "llama-$TAG-bin-win-cpu-x64.zip" auto), $(one "cudart-llama-bin-ubuntu-cuda-12.4-x64.tar.gz" auto)"
name=drifted_name_resolved_by_pattern
release "[$decoys, $(one "$DRIFT" auto)]"
D=$T/drift
if lem "$D" install-backend llamacpp:cpu --progress none > "$T/out" 2> "$T/err" &&
   grep -q "release $TAG of $REPO has no asset $ASSET; taking $DRIFT, the one asset matching os=ubuntu arch=x64 accel=none format=tar.gz" "$T/err" &&
   grep -q "\"asset\":[[:space:]]*\"$DRIFT\"" "$D/lemon/backends/installed.json" &&
   "$(exe_of "$D")" --version > /dev/null 2>&1; then
	ok $name
else
	fail $name "$(cat "$T/err")"
fi

name=ambiguous_pattern_refused_with_list
DRIFT2=llama-$TAG-bin-ubuntu-24.04-x64.tar.gz
release "[$decoys, $(one "$DRIFT" auto), $(one "$DRIFT2" auto)]"
D=$T/ambig
lem "$D" install-backend llamacpp:cpu --progress none > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -eq 1 ] &&
   grep -q "release $TAG of $REPO has no asset $ASSET and 2 match os=ubuntu arch=x64 accel=none format=tar.gz: $DRIFT, $DRIFT2" "$T/err" &&
   grep -q "release $TAG of $REPO holds 6 assets:" "$T/err" &&
   grep -q "^  llama-$TAG-bin-win-cpu-x64.zip$" "$T/err" &&
   [ ! -d "$D/lemon/backends/llamacpp-cpu-$TAG" ]; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/err")"
fi

name=no_match_refused_with_list
release "[$decoys]"
lem "$D" install-backend llamacpp:cpu --progress none > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -eq 1 ] &&
   grep -q "release $TAG of $REPO has no asset $ASSET and none matches os=ubuntu arch=x64 accel=none format=tar.gz; it has: llama-$TAG-bin-ubuntu-vulkan-x64.tar.gz" "$T/err" &&
   grep -q "^  cudart-llama-bin-ubuntu-cuda-12.4-x64.tar.gz$" "$T/err"; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/err")"
fi

# --- rate limited: reported at once, with the time it resets -----------------
name=rate_limit_reports_reset_time
RESET=$(($(date +%s) + 3600))
WHEN=$(date -u -d "@$RESET" '+%Y-%m-%d %H:%M:%S UTC')
release "[$(one "$ASSET" auto)]" ", \"rate_limit\": {\"status\": 403, \"reset\": $RESET}"
D=$T/rate
s=$(date +%s)
lem "$D" install-backend llamacpp:cpu --progress none > "$T/out" 2> "$T/err"
rc=$?
e=$(date +%s)
if [ $rc -eq 1 ] &&
   grep -q "GitHub API rate limit reached (HTTP 403): it resets at $WHEN (in 60 min); set GITHUB_TOKEN for a higher limit" "$T/err" &&
   [ $((e - s)) -lt 5 ] && [ ! -d "$D/lemon/backends/llamacpp-cpu-$TAG" ]; then
	ok $name
else
	fail $name "rc=$rc $((e - s))s $(cat "$T/err")"
fi

# a short Retry-After is waited out, then the request is made again
name=short_retry_after_waited_out
release "[$(one "$ASSET" auto)]" ", \"rate_limit\": {\"status\": 429, \"retry_after\": 1, \"times\": 1}"
D=$T/retry
: > "$T/log"
lem "$D" install-backend llamacpp:cpu --progress none > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -eq 0 ] && [ "$(reqs api | grep -c "releases/tags/$TAG 429")" = 1 ] &&
   [ "$(reqs api | grep -c "releases/tags/$TAG 200")" = 1 ]; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/err"; reqs api)"
fi

# GitHub's occasional 502 is retried; one that persists is reported
name=server_error_retried
release "[$(one "$ASSET" auto)]" ', "server_error": {"status": 502, "times": 1}'
D=$T/e502
: > "$T/log"
if lem "$D" install-backend llamacpp:cpu --progress none > "$T/out" 2> "$T/err" &&
   [ "$(reqs api | grep -c "releases/tags/$TAG 502")" = 1 ] &&
   [ "$(reqs api | grep -c "releases/tags/$TAG 200")" = 1 ]; then
	ok $name
else
	fail $name "$(cat "$T/err"; reqs api)"
fi

name=server_error_persisting_reported
release "[$(one "$ASSET" auto)]" ', "server_error": {"status": 503}'
D=$T/e503
: > "$T/log"
lem "$D" install-backend llamacpp:cpu --progress none > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "HTTP 503 from $API/repos/$REPO/releases/tags/$TAG" "$T/err" &&
   [ "$(reqs api | grep -c "releases/tags/$TAG 503")" = 3 ]; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/err"; reqs api)"
fi

# --- an interrupted download resumes against the redirect target -------------
name=resume_at_redirect_target
release "[$(one "$ASSET" auto)]" ', "drop_once_at": 2000000'
D=$T/resume
: > "$T/log"
if lem "$D" install-backend llamacpp:cpu --progress json > "$T/out" 2> "$T/err" &&
   "$(exe_of "$D")" --version > /dev/null 2>&1 &&
   [ "$(reqs store | sed -n 1p | cut -d' ' -f2-4)" = "200 None 2000000" ] &&
   [ "$(reqs store | sed -n 2p | cut -d' ' -f2-4)" = "206 bytes=2000000- $((SIZE - 2000000))" ] &&
   [ "$(reqs api | grep -c "releases/download/$TAG/$ASSET 302")" = 2 ] &&
   grep -q '"event":"retry"' "$T/err"; then
	ok $name
else
	fail $name "$(reqs api; reqs store; tail -n 3 "$T/err")"
fi

# a killed install resumes its .part on the next run: the request goes to the
# API host's download URL again and reaches the object store with a Range
name=sigkill_then_rerun_resumes_at_redirect_target
release "[$(one "$ASSET" auto)]" ', "rate": 1500000'
D=$T/kill
: > "$T/log"
env LEMON_GITHUB_API="$API" XDG_CACHE_HOME="$D/cache" XDG_DATA_HOME="$D" "$LEMON" \
	install-backend llamacpp:cpu --progress none > /dev/null 2>&1 &
pk=$!
part=$D/lemon/backends/.downloads/$ASSET.part
i=0
while [ $i -lt 100 ]; do
	[ -f "$part" ] && [ "$(wc -c < "$part")" -gt 1000000 ] && break
	sleep 0.1
	i=$((i + 1))
done
kill -9 $pk
wait $pk 2>/dev/null
have=$(wc -c < "$part" 2>/dev/null || echo 0)
release "[$(one "$ASSET" auto)]"
ranged() { # the store saw "bytes=$have-"
	i=0
	while [ $i -lt 30 ]; do
		reqs store | grep -q "^/objects/cpu.tar.gz?sig=fake 206 bytes=$have- " && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
if [ "$have" -gt 0 ] && lem "$D" install-backend llamacpp:cpu --progress none > "$T/out" 2> "$T/err" &&
   ranged && "$(exe_of "$D")" --version > /dev/null 2>&1 && [ ! -e "$part" ]; then
	ok $name
else
	fail $name "have=$have $(cat "$T/err"; reqs store)"
fi

# --- no release of that tag: the backend is unavailable, said so ------------
name=release_missing
printf '{"releases": {}}\n' > "$T/ctl"
lem "$T/norel" install-backend llamacpp:cpu --progress none > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -eq 1 ] &&
   grep -q "release $TAG of $REPO does not exist (HTTP 404 from $API/repos/$REPO/releases/tags/$TAG)" "$T/err"; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/err")"
fi

[ $FAILS -eq 0 ]
