#!/bin/sh
# Reproductions of issue 9 item 10's smaller defects that need the real
# binary: a bounded flag accepting values above its maximum, a failed
# install's .part poisoning the next install, a corrupt installed.json
# stopping installs and `lemon serve`. Installs come from a loopback mirror
# (tests/tools/mirror.py) serving the real llama.cpp CPU bundle that
# scripts/build-backend.sh builds (cached); every run is bounded by
# `timeout`.
# Prints "ok NAME" or "FAIL NAME: why" per test; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
ROOT=$PWD
T=$(mktemp -d /tmp/lemon-defects.XXXXXX)
FAILS=0
MPID=

. tests/integration/lib.sh

LPID=
cleanup() {
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

need_lemon

# every run is isolated from the user's config, data and cache
lemon_iso() {
	HOME=$T/home XDG_CONFIG_HOME=$T/config XDG_DATA_HOME=$T/data \
		XDG_CACHE_HOME=$T/cache timeout 30 "$LEMON" "$@"
}

# --max-loaded allows 1..8; 99 once passed because lemon_parse_u64's bound
# check wrapped for a digit above the maximum
test_max_loaded_bound() {
	lemon_iso serve --max-loaded 99 --sysroot /nonexistent-lemon \
		--data-dir "$T/d-max" --mirror http://127.0.0.1:9 >"$T/out" 2>"$T/err"
	rc=$?
	if [ $rc -eq 2 ] && grep -q -- "--max-loaded '99': expected 1..8" "$T/err"; then
		ok max_loaded_bound
	else
		fail max_loaded_bound "rc=$rc: $(head -c 300 "$T/err")"
	fi
}

# the mirror: $T/m holds what it serves, changed between runs
serve_mirror() {
	mkdir -p "$T/m"
	python3 "$ROOT/tests/tools/mirror.py" --dir "$T/m" >"$T/mport" 2>"$T/mirror.log" &
	MPID=$!
	i=0
	while [ ! -s "$T/mport" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	MIRROR=http://127.0.0.1:$(head -n 1 "$T/mport")
}
# publish FILE: serves FILE as the bundle's asset, listed with its digest
publish() {
	cp "$1" "$T/m/$ASSET"
	python3 - "$T/m" "$ASSET" "$VERSION" <<'PY'
import hashlib, json, os, sys
m, asset, version = sys.argv[1:4]
data = open(os.path.join(m, asset), "rb").read()
json.dump({"version": version, "assets": {asset: {
    "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}}},
    open(os.path.join(m, "manifest.json"), "w"))
PY
}
install() { # data-dir
	XDG_DATA_HOME=$1 timeout 120 "$LEMON" install-backend llamacpp:cpu --mirror "$MIRROR"
}

# A bundle whose digest matches but which holds no llama-server fails
# after its download completed; its complete .part stayed, and the next
# install (the mirror now serving the right bundle) resumed from it: the
# old bytes plus the new file's tail, reported as a checksum mismatch.
test_failed_install_part() {
	D=$T/d-part
	python3 - "$T/bad.tar.gz" "$VERSION" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz") as t:
    data = b"no server in this bundle\n"
    i = tarfile.TarInfo("llama-%s/README" % sys.argv[2]); i.size = len(data)
    t.addfile(i, io.BytesIO(data))
PY
	publish "$T/bad.tar.gz"
	install "$D" >"$T/out1" 2>"$T/err1"
	rc1=$?
	publish "$BUNDLE/$ASSET"
	install "$D" >"$T/out2" 2>"$T/err2"
	rc2=$?
	if [ $rc1 -ne 0 ] && grep -q "holds no executable" "$T/err1" &&
	   [ $rc2 -eq 0 ] && grep -q "installed llamacpp:cpu $VERSION" "$T/out2" &&
	   [ ! -e "$D/lemon/backends/.downloads/$ASSET.part" ]; then
		ok failed_install_part
	else
		fail failed_install_part "rc=$rc1/$rc2: $(tail -n 2 "$T/err1" "$T/err2")"
	fi
}

# A .part of the asset's full size from another file (an earlier build,
# a mirror that changed the asset): its checksum fails, so it is thrown
# away and fetched again, once, instead of failing the install.
test_stale_part_refetched() {
	D=$T/d-stale
	mkdir -p "$D/lemon/backends/.downloads"
	head -c "$(wc -c <"$BUNDLE/$ASSET")" /dev/urandom >"$D/lemon/backends/.downloads/$ASSET.part"
	publish "$BUNDLE/$ASSET"
	if install "$D" >"$T/out" 2>"$T/err" &&
	   grep -q "installed llamacpp:cpu $VERSION" "$T/out" &&
	   grep -q "downloading it again" "$T/err"; then
		ok stale_part_refetched
	else
		fail stale_part_refetched "$(tail -n 2 "$T/err")"
	fi
}

# A corrupt installed.json once failed every install and `lemon backends`
# (and so `lemon serve`, which installs its backend): it is reported, read
# as empty, and moved aside by the next install with its bytes kept.
test_corrupt_installed_json() {
	D=$T/d-corrupt
	mkdir -p "$D/lemon/backends"
	printf '{"backends": [{"name": ' >"$D/lemon/backends/installed.json"
	publish "$BUNDLE/$ASSET"
	XDG_DATA_HOME=$D timeout 30 "$LEMON" backends >"$T/b" 2>"$T/berr"
	rcb=$?
	install "$D" >"$T/out" 2>"$T/err"
	rci=$?
	aside=$(ls "$D/lemon/backends/" | grep '^installed.json.corrupt-' | head -n 1)
	if [ $rcb -eq 0 ] && grep -q "(none)" "$T/b" &&
	   grep -q "treating it as no backends installed" "$T/berr" &&
	   [ $rci -eq 0 ] && grep -q "moved it to" "$T/err" && [ -n "$aside" ] &&
	   [ "$(cat "$D/lemon/backends/$aside")" = '{"backends": [{"name": ' ] &&
	   grep -q '"llamacpp:cpu"' "$D/lemon/backends/installed.json"; then
		ok corrupt_installed_json
	else
		fail corrupt_installed_json "rc=$rcb/$rci: $(tail -n 2 "$T/berr" "$T/err")"
	fi
}

# the same through `lemon serve`: it installs its backend and listens
test_corrupt_installed_json_serve() {
	D=$T/d-serve
	mkdir -p "$D/lemon/backends"
	echo 'not json' >"$D/lemon/backends/installed.json"
	publish "$BUNDLE/$ASSET"
	PORT=$(free_port)
	XDG_DATA_HOME=$D HOME=$T/home XDG_CONFIG_HOME=$T/config \
		"$LEMON" serve --port "$PORT" --backend cpu --mirror "$MIRROR" >"$T/serve.log" 2>&1 &
	LPID=$!
	i=0
	while [ $i -lt 600 ] && ! grep -q "listening on" "$T/serve.log"; do
		kill -0 "$LPID" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	if grep -q "listening on" "$T/serve.log" &&
	   [ "$(curl -s -o /dev/null -w '%{http_code}' -m 5 "http://127.0.0.1:$PORT/api/v1/health")" = 200 ] &&
	   ls "$D/lemon/backends/" | grep -q '^installed.json.corrupt-'; then
		ok corrupt_installed_json_serve
	else
		fail corrupt_installed_json_serve "$(tail -n 3 "$T/serve.log")"
	fi
	kill "$LPID" 2>/dev/null
	wait "$LPID" 2>/dev/null
	LPID=
}

test_max_loaded_bound
need_bundle
ASSET=$(cat "$BUNDLE/asset")
VERSION=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
	"$BUNDLE/manifest.json")
serve_mirror
test_failed_install_part
test_stale_part_refetched
test_corrupt_installed_json
test_corrupt_installed_json_serve

[ "$FAILS" -eq 0 ]
