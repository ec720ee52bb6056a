#!/bin/sh
# The web app in headless Chromium (Debian's chromium) driven by
# puppeteer-core (tests/node/ui.browser.mjs, pinned in tests/node/
# package.json) against a real lemon serve over the real llama-server CPU
# bundle, with the tiny model on a loopback Hugging Face mirror
# (tests/tools/hf-mirror.py, as test_pull.sh): the key asked once, a pull
# with its progress bar then the model in the list, a chat streamed into
# the page, the System page with this machine's checks and recommended
# backend, keyboard navigation, no console errors; screenshots of each page
# at desktop and phone widths go to $BUILD/ui/. Prints "ok NAME" or
# "FAIL NAME: why"; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/lemon-browser.XXXXXX)
FAILS=0
MPID=
HPID=
LPID=
KEY=browser-key

. tests/integration/lib.sh

cleanup() {
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	for p in $MPID $HPID; do kill "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

need_lemon
CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
[ -x "$CHROMIUM" ] || { echo "FAIL setup: chromium is not installed (scripts/install-deps.sh)"; exit 1; }
export CHROMIUM
need_bundle
need_node_modules puppeteer-core
MODEL=$BUILD/models/tiny.gguf
[ -f "$MODEL" ] || python3 tests/tools/make-tiny-gguf.py --out "$MODEL" > /dev/null ||
	{ echo "FAIL setup: make-tiny-gguf.py"; exit 1; }
start_bundle_mirror_vulkan
python3 tests/tools/hf-mirror.py make "$T/hub" --tiny "$MODEL" --registry "$T/models.json" >/dev/null ||
	{ echo "FAIL setup: hf-mirror.py make"; exit 1; }
python3 tests/tools/hf-mirror.py serve "$T/hub" >"$T/hport" 2>"$T/hub.err" &
HPID=$!
i=0
while [ ! -s "$T/hport" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$T/hport" ] || { echo "FAIL setup: hf mirror did not start"; exit 1; }

export HF_ENDPOINT=http://127.0.0.1:$(head -n 1 "$T/hport")
export LEMON_MODELS_JSON=$T/models.json
export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
unset HF_TOKEN LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND
PORT=$(free_port)
"$LEMON" serve --port "$PORT" --backend cpu --mirror "$MIRROR" --api-key "$KEY" \
	--sysroot tests/fixtures/cpu-vm > "$T/lemon.log" 2>&1 &
LPID=$!
i=0
while [ $i -lt 300 ] && ! grep -q "listening on" "$T/lemon.log"; do
	sleep 0.1
	i=$((i + 1))
done
grep -q "listening on" "$T/lemon.log" || { echo "FAIL setup: lemon serve: $(tail -n 3 "$T/lemon.log")"; exit 1; }

# the System page's install of llamacpp:vulkan is slowed (~2 s) so its
# progress bar is seen part-way
echo '{"rate": 3000000}' > "$T/mctl"
SHOTS=$PWD/$BUILD/ui
case $BUILD in /*) SHOTS=$BUILD/ui ;; esac
rm -rf "$SHOTS"
(cd tests/node && LEMON_URL=http://127.0.0.1:$PORT LEMON_KEY=$KEY LEMON_MODEL=tiny LEMON_SHOTS=$SHOTS \
	timeout 240 node ui.browser.mjs) > "$T/out" 2>&1
rc=$?
cat "$T/out"
grep -q '^FAIL' "$T/out" && FAILS=$((FAILS + 1))
[ "$rc" -eq 0 ] || { [ "$FAILS" -gt 0 ] || fail "browser run" "node exited $rc"; }
for p in chat models system logs; do
	for w in desktop phone; do
		[ -s "$SHOTS/$p-$w.png" ] && ok "screenshot $p-$w" || fail "screenshot $p-$w" "missing"
	done
done
[ "$FAILS" -eq 0 ] || { echo "lemon log:"; tail -n 20 "$T/lemon.log"; exit 1; }
