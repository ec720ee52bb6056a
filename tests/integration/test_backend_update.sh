#!/bin/sh
# Integration tests of backend updates with rollback: `lemon backends` shows
# the installed version against the pinned one, `lemon install-backend` of a
# newer pin keeps the previous version until the new one has passed its
# smoke test (llama-server --version), `lemon backends rollback NAME` returns
# to the kept one, and two versions at most are kept. The releases come from
# tests/tools/github-api.py (a loopback fake of GitHub's release API and
# object store) serving the real CPU bundle (scripts/build-backend.sh cpu)
# repacked under each tag, plus one bundle whose llama-server cannot start.
# Prints "ok NAME" or "FAIL NAME: why" per test; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
T=$(mktemp -d /tmp/lemon-update.XXXXXX)
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
REPO=ggml-org/llama.cpp
S=$T/store
mkdir -p "$S"
for tag in b10375 b10400 b10500; do
	python3 tests/tools/repack-bundle.py "$BUNDLE/$(cat "$BUNDLE/asset")" \
		"$S/$tag.tar.gz" "$tag" || { echo "FAIL setup: repack-bundle.py"; exit 1; }
done
# a build whose llama-server cannot start (as one linked against a library
# the machine lacks)
python3 - "$S/broken.tar.gz" <<'EOF'
import io, sys, tarfile
body = b"#!/bin/sh\necho 'llama-server: error while loading shared libraries: libggml-fake.so.0' >&2\nexit 127\n"
with tarfile.open(sys.argv[1], "w:gz") as t:
    i = tarfile.TarInfo("llama-b10500/llama-server")
    i.size = len(body)
    i.mode = 0o755
    t.addfile(i, io.BytesIO(body))
EOF
serve() { # b10500's file
	cat > "$T/ctl" <<EOF
{"releases": {"$REPO": {
  "b10375": [{"name": "llama-b10375-bin-ubuntu-x64.tar.gz", "file": "b10375.tar.gz"}],
  "b10400": [{"name": "llama-b10400-bin-ubuntu-x64.tar.gz", "file": "b10400.tar.gz"}],
  "b10500": [{"name": "llama-b10500-bin-ubuntu-x64.tar.gz", "file": "$1"}]}}}
EOF
}
serve broken.tar.gz
python3 tests/tools/github-api.py --dir "$S" --control "$T/ctl" > "$T/ports" &
MPID=$!
i=0
while [ ! -s "$T/ports" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
read -r APORT SPORT < "$T/ports"
[ -n "$SPORT" ] || { echo "FAIL setup: github-api.py did not start"; exit 1; }

C=$T/compat
cp -r compat "$C"
pin() { # tag: llamacpp:cpu's pinned release in the compat copy
	python3 - "$C/backends.json" "$1" <<'EOF'
import json, sys
p, tag = sys.argv[1:3]
d = json.load(open(p))
d["backends"]["llamacpp"]["targets"]["cpu"]["version"] = tag
json.dump(d, open(p, "w"), indent=2)
EOF
}
D=$T/d
B=$D/lemon/backends
lem() {
	LEMON_GITHUB_API=http://127.0.0.1:$APORT XDG_CACHE_HOME=$D/cache XDG_DATA_HOME=$D \
		"$LEMON" "$@"
}
exe() { echo "$B/llamacpp-cpu-$1/llama-$1/llama-server"; }
# installed.json as "version previous" lines
state() {
	python3 -c '
import json, sys
for e in json.load(open(sys.argv[1]))["backends"]:
    print(e["version"], e.get("previous", False))
' "$B/installed.json"
}

name=first_install
pin b10375
if lem install-backend llamacpp:cpu --compat-dir "$C" --progress none > "$T/out" 2> "$T/err" &&
   [ "$(state)" = "b10375 False" ] && ! grep -q "kept" "$T/out"; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err")"
fi

name=backends_shows_update_available
pin b10400
if lem backends --compat-dir "$C" > "$T/out" 2> "$T/err" &&
   grep -q "^  llamacpp:cpu  *b10400  *sha256 from the publisher's release listing, installed: b10375, update available: 'lemon install-backend llamacpp:cpu'$" "$T/out"; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err")"
fi

name=update_keeps_previous
if lem install-backend llamacpp:cpu --compat-dir "$C" --progress none > "$T/out" 2> "$T/err" &&
   grep -q "installed llamacpp:cpu b10400" "$T/out" &&
   grep -q "kept llamacpp:cpu b10375: 'lemon backends rollback llamacpp:cpu' returns to it" "$T/out" &&
   [ "$(state | sort)" = "$(printf 'b10375 True\nb10400 False')" ] &&
   "$(exe b10375)" --version > /dev/null 2>&1 && "$(exe b10400)" --version > /dev/null 2>&1 &&
   lem backends --compat-dir "$C" > "$T/b" 2>&1 &&
   grep -q "^  llamacpp:cpu  *b10400  *ok  *$(exe b10400)$" "$T/b" &&
   grep -q "^  llamacpp:cpu  *b10375  *kept for rollback ('lemon backends rollback llamacpp:cpu')$" "$T/b" &&
   grep -q "installed: b10400, up to date$" "$T/b"; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err" "$T/b" 2>/dev/null; state)"
fi

name=smoke_test_failure_keeps_current
pin b10500
cp "$B/installed.json" "$T/installed.before"
lem install-backend llamacpp:cpu --compat-dir "$C" --progress none > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -eq 1 ] &&
   grep -q "smoke test: llama-b10500/llama-server --version exited with status 127: llama-server: error while loading shared libraries: libggml-fake.so.0" "$T/err" &&
   cmp -s "$T/installed.before" "$B/installed.json" && [ ! -e "$B/llamacpp-cpu-b10500" ] &&
   [ -z "$(ls -A "$B/.staging")" ] && "$(exe b10400)" --version > /dev/null 2>&1; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/err")"
fi

name=rollback_returns_to_kept
if lem backends rollback llamacpp:cpu > "$T/out" 2> "$T/err" &&
   grep -q "^rolled back llamacpp:cpu from b10400 to b10375$" "$T/out" &&
   grep -q "^llama-server: $(exe b10375)$" "$T/out" &&
   [ "$(state | sort)" = "$(printf 'b10375 False\nb10400 True')" ] &&
   lem backends --compat-dir "$C" > "$T/b" 2>&1 &&
   grep -q "^  llamacpp:cpu  *b10375  *ok " "$T/b" &&
   grep -q "^  llamacpp:cpu  *b10400  *kept for rollback" "$T/b"; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err"; state)"
fi

name=rollback_again_toggles
if lem backends rollback llamacpp:cpu > "$T/out" 2> "$T/err" &&
   grep -q "^rolled back llamacpp:cpu from b10375 to b10400$" "$T/out" &&
   [ "$(state | sort)" = "$(printf 'b10375 True\nb10400 False')" ]; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err"; state)"
fi

name=third_version_drops_oldest
serve b10500.tar.gz
if lem install-backend llamacpp:cpu --compat-dir "$C" --progress none > "$T/out" 2> "$T/err" &&
   grep -q "kept llamacpp:cpu b10400" "$T/out" &&
   grep -q "removed llamacpp:cpu b10375 (two versions are kept)" "$T/out" &&
   [ "$(state | sort)" = "$(printf 'b10400 True\nb10500 False')" ] &&
   [ ! -e "$B/llamacpp-cpu-b10375" ] && "$(exe b10500)" --version > /dev/null 2>&1; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err"; state)"
fi

name=reinstall_same_version_keeps_previous
if lem install-backend llamacpp:cpu --compat-dir "$C" --force --progress none > "$T/out" 2> "$T/err" &&
   [ "$(state | sort)" = "$(printf 'b10400 True\nb10500 False')" ] && ! grep -q "removed" "$T/out"; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err"; state)"
fi

name=uninstall_removes_both
if lem uninstall-backend llamacpp:cpu > "$T/out" 2> "$T/err" &&
   [ -z "$(state)" ] && [ ! -e "$B/llamacpp-cpu-b10400" ] && [ ! -e "$B/llamacpp-cpu-b10500" ]; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err"; state)"
fi

name=rollback_without_previous
lem install-backend llamacpp:cpu --compat-dir "$C" --progress none > /dev/null 2>&1
lem backends rollback llamacpp:cpu > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -eq 1 ] &&
   grep -q "llamacpp:cpu has no previous version to roll back to (see lemon backends)" "$T/err" &&
   [ "$(state)" = "b10500 False" ]; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/err")"
fi

# --- lemon serve never switches a loaded model's version ------------------
# b10400 current (b10500 kept), a model loaded on it; a rollback under it
# leaves the running child, its executable and its answers as they were
name=serve_keeps_loaded_version
need_tiny_model
pin b10400
LPID=
cleanup() {
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	rm -rf "$T"
}
lem install-backend llamacpp:cpu --compat-dir "$C" --progress none > /dev/null 2>&1
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
lem pull --file "$MODEL" tiny > /dev/null 2>&1
# not through lem(): a function run with & is a subshell, whose pid is not
# lemon's, so the kill below (and cleanup) would leave lemon running
LEMON_COMPAT_DIR=$C LEMON_GITHUB_API=http://127.0.0.1:$APORT XDG_CACHE_HOME=$D/cache \
	XDG_DATA_HOME=$D "$LEMON" serve --port "$PORT" --backend cpu > "$T/serve.log" 2>&1 &
LPID=$!
i=0
while [ $i -lt 300 ] && ! grep -qs "listening on" "$T/serve.log"; do sleep 0.1; i=$((i + 1)); done
chat() {
	curl -s -H 'Content-Type: application/json' -m 60 -o /dev/null -w '%{http_code}' \
		"$URL/v1/chat/completions" \
		-d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4}'
}
pid_of() {
	curl -s -m 10 "$URL/api/v1/health" |
		jq -r '[.loaded[] | select(.model == "tiny" and .state == "ready") | .pid][0] // ""'
}
c1=$(chat)
p1=$(pid_of)
x1=$(readlink "/proc/$p1/exe" 2>/dev/null)
lem backends rollback llamacpp:cpu > "$T/out" 2> "$T/err"
c2=$(chat)
p2=$(pid_of)
x2=$(readlink "/proc/$p2/exe" 2>/dev/null)
if [ "$c1" = 200 ] && [ -n "$p1" ] && [ "$x1" = "$(exe b10400)" ] &&
   grep -q "rolled back llamacpp:cpu from b10400 to b10500" "$T/out" &&
   [ "$c2" = 200 ] && [ "$p2" = "$p1" ] && [ "$x2" = "$x1" ] &&
   [ "$(state | sort)" = "$(printf 'b10400 True\nb10500 False')" ]; then
	ok $name
else
	fail $name "c1=$c1 p1=$p1 x1=$x1 c2=$c2 p2=$p2 x2=$x2 $(cat "$T/err"; tail -n 3 "$T/serve.log")"
fi

# --- with a small model installed, the new bundle must also serve it --------
# (the serve above still runs its child from b10400, which this install
# drops: its directory stays while that child runs)
name=health_check_with_small_model
pin b10375
if lem install-backend llamacpp:cpu --compat-dir "$C" --progress none > "$T/out" 2> "$T/err" &&
   grep -q "^smoke test: the new llama-server served model tiny (/health 200)$" "$T/out" &&
   grep -q "installed llamacpp:cpu b10375" "$T/out" &&
   [ "$(state | sort)" = "$(printf 'b10375 False\nb10500 True')" ]; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err"; state)"
fi

name=dropped_version_in_use_left_on_disk
c3=$(chat)
if grep -q "^lemon: left $B/llamacpp-cpu-b10400 on disk: process $p1 runs from it; remove it once that process has ended$" "$T/err" &&
   ! grep -q "removed llamacpp:cpu b10400" "$T/out" &&
   [ -x "$(exe b10400)" ] && [ "$c3" = 200 ] && [ "$(pid_of)" = "$p1" ]; then
	ok $name
else
	fail $name "c3=$c3 $(cat "$T/out" "$T/err")"
fi
kill "$LPID" 2>/dev/null
wait "$LPID" 2>/dev/null
LPID=
rm -rf "$B/llamacpp-cpu-b10400"

# a build that answers --version but cannot serve: refused, current intact
name=health_check_failure_keeps_current
python3 - "$S/noserve.tar.gz" <<'EOF'
import io, sys, tarfile
body = b"#!/bin/sh\n[ \"$1\" = --version ] && { echo 'version: 1 (fake)'; exit 0; }\necho 'ggml: illegal instruction' >&2\nexit 3\n"
with tarfile.open(sys.argv[1], "w:gz") as t:
    i = tarfile.TarInfo("llama-b10400/llama-server")
    i.size = len(body)
    i.mode = 0o755
    t.addfile(i, io.BytesIO(body))
EOF
sed 's/"b10400.tar.gz"/"noserve.tar.gz"/' "$T/ctl" > "$T/ctl.new" && mv "$T/ctl.new" "$T/ctl"
pin b10400
cp "$B/installed.json" "$T/installed.before"
lem install-backend llamacpp:cpu --compat-dir "$C" --progress none > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -eq 1 ] &&
   grep -q "smoke test of llama-b10400-bin-ubuntu-x64.tar.gz: llama-server with model tiny ended (status 3) before answering /health" "$T/err" &&
   cmp -s "$T/installed.before" "$B/installed.json" && [ ! -e "$B/llamacpp-cpu-b10400" ] &&
   "$(exe b10375)" --version > /dev/null 2>&1; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/err")"
fi

[ $FAILS -eq 0 ]
