#!/bin/sh
# Integration tests of `lemon install-backend`, `lemon backends` and
# `lemon uninstall-backend` against a loopback mirror (tests/tools/mirror.py)
# serving the real llama.cpp CPU bundle that scripts/build-backend.sh
# builds (cached), plus archives crafted here to attack the unpacker.
# Prints "ok NAME" or "FAIL NAME: why" per test; exits non-zero on any
# failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
ROOT=$PWD
T=$(mktemp -d /tmp/lemon-provision.XXXXXX)
FAILS=0
MPID=
PORT=

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; FAILS=$((FAILS + 1)); }

cleanup() {
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ ! -x "$LEMON" ]; then
	echo "FAIL setup: $LEMON is not built"
	exit 1
fi
BUNDLE=$(scripts/build-backend.sh cpu | tail -n 1)
if [ ! -f "$BUNDLE/manifest.json" ]; then
	echo "FAIL setup: scripts/build-backend.sh cpu did not produce a bundle"
	exit 1
fi
ASSET=$(cat "$BUNDLE/asset")
SHA=$(cut -d' ' -f1 "$BUNDLE/$ASSET.sha256")
VERSION=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
	"$BUNDLE/manifest.json")

# The mirror directory: the real bundle plus crafted archives, each listed
# with its true sha256 so only the unpacker can stop them.
M=$T/mirror
mkdir -p "$M"
cp "$BUNDLE/$ASSET" "$M/"
python3 - "$M" "$VERSION" "$T" <<'EOF'
import hashlib, io, json, os, sys, tarfile, zipfile
m, version, tmp = sys.argv[1:4]
def tgz(version, members):
    path = os.path.join(m, "llama-%s-bin-ubuntu-x64.tar.gz" % version)
    with tarfile.open(path, "w:gz") as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
def reg(name, data=b"x"):
    i = tarfile.TarInfo(name); i.size = len(data); i.mode = 0o755; return (i, data)
def link(name, target, kind):
    i = tarfile.TarInfo(name); i.type = kind; i.linkname = target; return (i, None)
top = "llama-%s/"
tgz("symlink", [reg(top % "symlink" + "llama-server"),
                link(top % "symlink" + "out", "../../../..", tarfile.SYMTYPE),
                reg(top % "symlink" + "out/evil")])
tgz("abspath", [reg(top % "abspath" + "llama-server"), reg(tmp + "/evil")])
tgz("hardlink", [reg(top % "hardlink" + "llama-server"),
                 link(top % "hardlink" + "passwd", "../../../../../etc/passwd",
                      tarfile.LNKTYPE)])
# the CUDA asset layout (lemonade-sdk/llama.cpp: llama-<tag>/ in a .tar.xz):
# the real CPU bundle's files repacked under the sm_89 name, so the cuda kind
# and the tar.xz format go through the real install path
cpu = os.path.join(m, "llama-%s-bin-ubuntu-x64.tar.gz" % version)
with tarfile.open(cpu, "r:gz") as src, tarfile.open(
        os.path.join(m, "llama-%s-ubuntu-cuda-sm_89-x64.tar.xz" % version), "w:xz") as dst:
    for info in src.getmembers():
        dst.addfile(info, src.extractfile(info) if info.isfile() else None)
with zipfile.ZipFile(os.path.join(m, "llama-zipslip-bin-ubuntu-x64.tar.gz"), "w") as z:
    z.writestr("llama-zipslip/llama-server", "x")
    z.writestr("../../../../evil", "x")
assets = {}
for name in sorted(os.listdir(m)):
    data = open(os.path.join(m, name), "rb").read()
    assets[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
json.dump({"version": version, "assets": assets}, open(os.path.join(m, "manifest.json"), "w"), indent=1)
EOF

start_mirror() { # dir
	rm -f "$T/ctl" "$T/log"
	python3 "$ROOT/tests/tools/mirror.py" --dir "$1" --log "$T/log" \
		--control "$T/ctl" > "$T/port" &
	MPID=$!
	i=0
	while [ ! -s "$T/port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	PORT=$(head -n 1 "$T/port")
	URL=http://127.0.0.1:$PORT
}
knobs() { echo "$1" > "$T/ctl"; }
# the log's asset requests as "start sent t t_end" lines
# the mirror logs a request once its body is sent, which can be just after
# the client has finished, and a killed client's request only once the
# mirror's next write to it fails: poll the log for a request line
# matching $1, wherever it stands, for up to 3 s
a_request_matches() {
	_n=0
	while [ $_n -lt 30 ]; do
		requests | grep -q "$1" && return 0
		sleep 0.1
		_n=$((_n + 1))
	done
	return 1
}

requests() {
	python3 -c '
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["path"] == sys.argv[2]:
        print(e.get("start", 0), e["sent"], e["t"], e.get("t_end", e["t"]), e.get("range"))
' "$T/log" "$ASSET" 2>/dev/null
}
lem() { # data-dir args...
	d=$1
	shift
	XDG_DATA_HOME=$d "$LEMON" "$@"
}
exe_of() { echo "$1/lemon/backends/llamacpp-cpu-$VERSION/llama-$VERSION/llama-server"; }

start_mirror "$M"
D1=$T/d1

# --- install, verify, unpack, run -------------------------------------
name=install_verify_run
if lem "$D1" install-backend llamacpp:cpu --mirror "$URL" > "$T/out" 2> "$T/err" &&
   grep -q "installed llamacpp:cpu $VERSION" "$T/out" &&
   grep -q "\"sha256\":[[:space:]]*\"$SHA\"" "$D1/lemon/backends/installed.json" &&
   "$(exe_of "$D1")" --version > "$T/ver" 2>&1 && grep -q "version:" "$T/ver" &&
   lem "$D1" backends > "$T/b" 2>&1 && grep -q "llamacpp:cpu.*$VERSION.*ok" "$T/b" &&
   [ ! -e "$D1/lemon/backends/.downloads/$ASSET.part" ]; then
	ok $name
else
	fail $name "$(cat "$T/err" "$T/ver" 2>/dev/null | tail -n 3)"
fi

name=already_installed_no_download
before=$(requests | wc -l)
if lem "$D1" install-backend llamacpp:cpu --mirror "$URL" > "$T/out" 2>&1 &&
   grep -q "already installed" "$T/out" && [ "$(requests | wc -l)" = "$before" ]; then
	ok $name
else
	fail $name "$(cat "$T/out")"
fi

name=mirror_from_env
D=$T/env
if LEMON_MIRROR=$URL lem "$D" install-backend llamacpp:cpu > "$T/out" 2>&1 &&
   [ -x "$(exe_of "$D")" ]; then
	ok $name
else
	fail $name "$(cat "$T/out")"
fi

# --- resume after the server drops the connection midway ----------------
name=resume_after_drop
knobs '{"drop_once_at": 2000000}'
D=$T/drop
: > "$T/log"
if lem "$D" install-backend llamacpp:cpu --mirror "$URL" --progress json \
	> "$T/out" 2> "$T/err" && "$(exe_of "$D")" --version > /dev/null 2>&1 &&
   requests | head -n 1 | grep -q "^0 2000000 " &&
   requests | sed -n 2p | grep -q "^2000000 .*bytes=2000000-" &&
   [ "$(requests | wc -l)" = 2 ] &&
   [ "$(requests | awk '{s += $2} END {print s}')" = "$(wc -c < "$M/$ASSET" | tr -d ' ')" ] &&
   grep -q '"event":"retry"' "$T/err"; then
	ok $name
else
	fail $name "$(requests; tail -n 3 "$T/err")"
fi

name=resume_server_ignores_range
knobs '{"drop_once_at": 3000000, "no_range": true}'
D=$T/norange
if lem "$D" install-backend llamacpp:cpu --mirror "$URL" > "$T/out" 2> "$T/err" &&
   "$(exe_of "$D")" --version > /dev/null 2>&1; then
	ok $name
else
	fail $name "$(tail -n 3 "$T/err")"
fi
knobs '{}'

# --- tampered bundle: refused, file deleted, previous install intact ------
name=tampered_rejected_previous_intact
knobs "{\"tamper\": [\"$ASSET\"]}"
cp "$D1/lemon/backends/installed.json" "$T/installed.before"
lem "$D1" install-backend llamacpp:cpu --mirror "$URL" --force > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -ne 0 ] && grep -q "checksum mismatch for $ASSET: expected $SHA (manifest), got [0-9a-f]\{64\}" "$T/err" &&
   [ ! -e "$D1/lemon/backends/.downloads/$ASSET.part" ] &&
   cmp -s "$T/installed.before" "$D1/lemon/backends/installed.json" &&
   lem "$D1" backends > "$T/b" 2>&1 && grep -q "llamacpp:cpu.*$VERSION.*ok" "$T/b" &&
   "$(exe_of "$D1")" --version > /dev/null 2>&1; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/err")"
fi
knobs '{}'

# --- specific errors ------------------------------------------------------
name=http_404_names_url
knobs "{\"not_found\": [\"$ASSET\"]}"
if ! lem "$T/e404" install-backend llamacpp:cpu --mirror "$URL" > "$T/out" 2> "$T/err" &&
   grep -q "HTTP 404: $URL/$ASSET does not exist" "$T/err"; then
	ok $name
else
	fail $name "$(cat "$T/err")"
fi
knobs '{}'

name=network_unreachable
if ! lem "$T/enet" install-backend llamacpp:cpu --mirror http://127.0.0.1:9 > "$T/out" 2> "$T/err" &&
   grep -q "network unreachable: cannot connect to http://127.0.0.1:9/manifest.json" "$T/err"; then
	ok $name
else
	fail $name "$(cat "$T/err")"
fi

name=no_checksum_refused
# (the publisher's digests are test_github.sh's; here none is asked for)
if ! LEMON_GITHUB_API=none lem "$T/esha" install-backend llamacpp:cpu > "$T/out" 2> "$T/err" &&
   grep -q "no known sha256 for llama-b[0-9]*-bin-ubuntu-x64.tar.gz" "$T/err" &&
   [ ! -d "$T/esha/lemon/backends/llamacpp-cpu-b10375" ]; then
	ok $name
else
	fail $name "$(cat "$T/err")"
fi

name=unknown_backend_name
# (llamacpp:cuda was the unknown name before CUDA bundles; metal is unknown)
lem "$T/eunk" install-backend llamacpp:metal > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "unknown backend name 'metal'" "$T/err"; then
	ok $name
else
	fail $name "rc=$rc $(cat "$T/err")"
fi

name=uninstall_unknown
if ! lem "$T/eunk" uninstall-backend llamacpp:cpu > "$T/out" 2> "$T/err" &&
   grep -q "is not installed" "$T/err"; then
	ok $name
else
	fail $name "$(cat "$T/err")"
fi

# disk full and permission denied need root (a private tmpfs mount, a
# user without write access); elsewhere they are reported as skipped
name=disk_full
D=$T/full
mkdir -p "$D"
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	unshare -m sh -c 'mount -t tmpfs -o size=4m tmpfs "$0" &&
		XDG_DATA_HOME=$0 exec "$@"' "$D" "$LEMON" install-backend llamacpp:cpu \
		--mirror "$URL" > "$T/out" 2> "$T/err"
	rc=$?
	if [ $rc -eq 1 ] && grep -q "disk full: " "$T/err" &&
	   [ ! -e "$D/lemon" ]; then
		ok $name
	else
		fail $name "rc=$rc $(cat "$T/err")"
	fi
else
	echo "skip $name: needs root and mount namespaces"
fi

name=permission_denied
D=$T/denied
mkdir -p "$D"
chmod 711 "$T"
chmod 755 "$D"
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
	XDG_DATA_HOME=$D setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$LEMON" install-backend llamacpp:cpu --mirror "$URL" > "$T/out" 2> "$T/err"
	rc=$?
	if [ $rc -eq 1 ] && grep -q "permission denied: creating directory $D/lemon" "$T/err"; then
		ok $name
	else
		fail $name "rc=$rc $(cat "$T/err")"
	fi
else
	echo "skip $name: needs root and setpriv"
fi

# --- crafted archives: refused, nothing outside the data dir -------------
for v in zipslip symlink abspath hardlink; do
	name=crafted_$v
	D=$T/c_$v
	rm -f "$T/evil"
	lem "$D" install-backend llamacpp:cpu --mirror "$URL" --version $v > "$T/out" 2> "$T/err"
	rc=$?
	if [ $rc -ne 0 ] && [ ! -e "$T/evil" ] && [ ! -e "$D/evil" ] &&
	   [ ! -e "$D/lemon/evil" ] && [ ! -e "$D/lemon/backends/evil" ] &&
	   [ ! -d "$D/lemon/backends/llamacpp-cpu-$v" ] &&
	   [ -z "$(ls -A "$D/lemon/backends/.staging")" ] &&
	   grep -q "refused\|outside the bundle\|through a symlink" "$T/err"; then
		ok $name
	else
		fail $name "rc=$rc $(cat "$T/err")"
	fi
done

# --- two concurrent installs serialize --------------------------------------
name=concurrent_installs_serialize
knobs '{"rate": 20000000}'
: > "$T/log"
lem "$D1" install-backend llamacpp:cpu --mirror "$URL" --force > "$T/o1" 2> "$T/e1" &
p1=$!
lem "$D1" install-backend llamacpp:cpu --mirror "$URL" --force > "$T/o2" 2> "$T/e2" &
p2=$!
wait $p1
r1=$?
wait $p2
r2=$?
if [ $r1 -eq 0 ] && [ $r2 -eq 0 ] &&
   [ "$(cat "$T/e1" "$T/e2" | grep -c 'waiting for it to finish')" = 1 ] &&
   requests | sort -n -k3 | awk 'NR == 2 && $3 < end {bad = 1} {end = $4} END {exit bad || NR != 2}' &&
   [ "$(grep -c '"name"' "$D1/lemon/backends/installed.json")" = 1 ] &&
   "$(exe_of "$D1")" --version > /dev/null 2>&1; then
	ok $name
else
	fail $name "r1=$r1 r2=$r2 $(requests) $(cat "$T/e1" "$T/e2")"
fi

# --- SIGKILL midway, then a re-run resumes and succeeds ----------------------
name=sigkill_midway_then_rerun
knobs '{"rate": 1500000}'
D=$T/kill
: > "$T/log"
# env execs lemon, so $! is lemon itself
env XDG_DATA_HOME="$D" "$LEMON" install-backend llamacpp:cpu --mirror "$URL" \
	> /dev/null 2>&1 &
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
partsize=$(wc -c < "$part" 2>/dev/null || echo 0)
visible=$(ls "$D/lemon/backends" | grep -c llamacpp)
knobs '{}'
# step names the check that failed
step=part
if [ "$partsize" -gt 0 ] && [ "$visible" = 0 ] && step=listed-none &&
   lem "$D" backends 2>&1 | grep -q "(none)" && step=rerun &&
   lem "$D" install-backend llamacpp:cpu --mirror "$URL" > "$T/out" 2> "$T/err" &&
   step=resumed-range && a_request_matches "^$partsize .*bytes=$partsize-" &&
   step=runs && "$(exe_of "$D")" --version > /dev/null 2>&1 &&
   step=staging-empty && [ -z "$(ls -A "$D/lemon/backends/.staging")" ]; then
	ok $name
else
	fail $name "at $step: part=$partsize visible=$visible $(requests | tail -n 2) $(cat "$T/err")"
fi

# --- CUDA: the sm_NN bundle (tar.xz), named or chosen by detection --------------
name=cuda_named_tar_xz
D=$T/cuda
CEXE=$D/lemon/backends/llamacpp-cuda-sm_89-$VERSION/llama-$VERSION/llama-server
if lem "$D" install-backend llamacpp:cuda:sm_89 --mirror "$URL" > "$T/out" 2> "$T/err" &&
   grep -q "installed llamacpp:cuda:sm_89 $VERSION" "$T/out" && "$CEXE" --version > /dev/null 2>&1; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err")"
fi

name=cuda_target_from_detection
D=$T/cuda2
if LEMON_SYSROOT=$ROOT/tests/fixtures/nvidia-only lem "$D" install-backend llamacpp:cuda \
	--mirror "$URL" > "$T/out" 2> "$T/err" &&
   grep -q "trying llamacpp:cuda:sm_89 (cuda:sm_89): CUDA sm_89 build for GeForce RTX 4090" "$T/out" &&
   grep -q "installed llamacpp:cuda:sm_89 $VERSION" "$T/out"; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err")"
fi

name=cuda_no_bundle_for_target
if ! lem "$T/cuda3" install-backend llamacpp:cuda:sm_61 --mirror "$URL" > "$T/out" 2> "$T/err" &&
   grep -q "no CUDA llama.cpp build for sm_61" "$T/err"; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err")"
fi

# without nvidia-uvm CUDA is skipped with its fix; auto goes on down the list
name=auto_skips_cuda_without_uvm
D=$T/cuda4
if LEMON_SYSROOT=$ROOT/tests/fixtures/nvidia-no-uvm lem "$D" install-backend auto \
	--mirror "$URL" > "$T/out" 2> "$T/err" &&
   grep -q "skip cuda:sm_89: CUDA skipped: /dev/nvidia-uvm missing (nvidia_uvm not loaded); sudo nvidia-modprobe -u -c=0" "$T/out" &&
   grep -q "skip llamacpp:vulkan: unavailable" "$T/out" &&
   grep -q "installed llamacpp:cpu $VERSION" "$T/out"; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err")"
fi

# --- auto: ROCm asset unavailable -> next candidate ---------------------------
name=auto_falls_back_from_rocm
D=$T/auto
if LEMON_SYSROOT=$ROOT/tests/fixtures/rx7900xtx lem "$D" install-backend auto \
	--mirror "$URL" > "$T/out" 2> "$T/err" &&
   grep -q "skip llamacpp:rocm:gfx110X: unavailable: .*has no llamacpp:rocm:gfx110X" "$T/out" &&
   grep -q "skip llamacpp:vulkan: unavailable" "$T/out" &&
   grep -q "installed llamacpp:cpu $VERSION" "$T/out" &&
   "$(exe_of "$D")" --version > /dev/null 2>&1; then
	ok $name
else
	fail $name "$(cat "$T/out" "$T/err")"
fi

name=uninstall
if lem "$D" uninstall-backend llamacpp:cpu > "$T/out" 2>&1 &&
   [ ! -e "$D/lemon/backends/llamacpp-cpu-$VERSION" ] &&
   lem "$D" backends 2>&1 | grep -q "(none)"; then
	ok $name
else
	fail $name "$(cat "$T/out")"
fi

[ $FAILS -eq 0 ] || { echo "$FAILS provisioning test(s) failed"; exit 1; }
exit 0
