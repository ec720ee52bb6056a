#!/bin/sh
# SIGTERM while lemon serve's supervisor installs a fallback's bundle on
# demand (a request for a model whose ROCm and Vulkan children fail, the
# CPU bundle not installed: the supervisor downloads it from a slowed
# loopback mirror). The download is cancelled with the pulls at shutdown:
# lemon exits within a few seconds, not when the download would have ended
# (before: still running 30 s after SIGTERM, the supervisor thread joined
# without a limit), the request is answered, and the .part stays for the
# next install. A second case holds the install lock from another process
# (`lemon install-backend` of the same bundle, slowed): the supervisor's
# wait for that lock ends at shutdown too.
# Prints "ok NAME" or "FAIL NAME: why"; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
BUILD=${BUILD:-build}
FAILS=0
T=$(mktemp -d /tmp/lemon-shutfb.XXXXXX)
MPID= LPID= IPID= CPID=
. tests/integration/lib.sh
cleanup() {
	for p in $LPID $IPID $CPID; do kill -9 "$p" 2> /dev/null; done
	[ -n "$MPID" ] && kill "$MPID" 2> /dev/null
	rm -rf "$T"
}
trap cleanup EXIT

need_bundle
MODEL=$BUILD/models/tiny.gguf
[ -f "$MODEL" ] || python3 tests/tools/make-tiny-gguf.py --out "$MODEL" > /dev/null
start_bundle_mirror_vulkan
export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config XDG_CACHE_HOME=$T/cache
unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND
mkdir -p "$T/fake"
printf '#!/bin/sh\necho "error: no GPU here"\nexit 1\n' > "$T/fake/llama-server"
chmod +x "$T/fake/llama-server"
"$LEMON" pull --file "$MODEL" tiny > /dev/null || { echo "FAIL setup: pull"; exit 1; }
echo '{"rate": 100000}' > "$T/mctl" # 100 kB/s: the 6 MB bundle takes a minute

start_serve() { # LOG
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	LEMON_LLAMA_SERVER_ROCM=$T/fake/llama-server LEMON_LLAMA_SERVER_VULKAN=$T/fake/llama-server \
		"$LEMON" serve --port "$PORT" --backend rocm --mirror "$MIRROR" > "$1" 2>&1 &
	LPID=$!
	i=0
	while [ $i -lt 300 ] && ! grep -q "listening on" "$1" 2> /dev/null; do sleep 0.1; i=$((i + 1)); done
	curl -s -o "$T/chat.out" -w '%{http_code}' -m 120 -H 'Content-Type: application/json' \
		"$URL/v1/chat/completions" \
		-d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4}' > "$T/chat.code" &
	CPID=$!
}

# running, not a zombie this shell has not reaped yet (kill -0 succeeds
# on a zombie)
alive() {
	[ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" 2> /dev/null | grep -q '^Z'
}

# SIGTERM; S: the seconds lemon took to exit (99: still running at 15 s)
term_and_time() {
	t0=$(date +%s)
	kill -TERM "$LPID"
	i=0
	while alive "$LPID" && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
	if alive "$LPID"; then
		S=99
	else
		S=$(($(date +%s) - t0))
		wait "$LPID" 2> /dev/null
		LPID=
	fi
}

# --- 1. the supervisor's own download of the fallback's bundle -------------
name=shutdown_during_fallback_install
start_serve "$T/l1.log"
i=0
part=
while [ $i -lt 200 ] && [ -z "$part" ]; do
	part=$(find "$T/data/lemon/backends" -name '*.part' -size +1k 2> /dev/null | head -n 1)
	sleep 0.1
	i=$((i + 1))
done
term_and_time
wait "$CPID" 2> /dev/null
CPID=
if [ -n "$part" ] && [ "$S" -le 7 ] && [ -f "$part" ] && [ -s "$T/chat.code" ]; then
	ok $name
else
	fail $name "part='$part' exit after ${S}s chat=$(cat "$T/chat.code" 2> /dev/null) $(tail -n 3 "$T/l1.log")"
fi
[ -n "$LPID" ] && kill -9 "$LPID" 2> /dev/null
LPID=

# --- 2. the supervisor waiting for the install lock another install holds ---
name=shutdown_while_install_lock_held
"$LEMON" install-backend llamacpp:cpu --mirror "$MIRROR" --progress none > "$T/inst.log" 2>&1 &
IPID=$!
i=0
while [ $i -lt 100 ] && ! grep -q "waiting\|resume" "$T/inst.log" 2> /dev/null &&
	[ -z "$(find "$T/data/lemon/backends" -name '*.part' -newer "$T/l1.log" 2> /dev/null)" ]; do
	sleep 0.1
	i=$((i + 1))
done
sleep 1 # the CLI install holds the lock and downloads, slowed
start_serve "$T/l2.log"
i=0
while [ $i -lt 100 ] && ! grep -q "another install holds" "$T/l2.log" 2> /dev/null; do sleep 0.1; i=$((i + 1)); done
waited=$(grep -c "another install holds" "$T/l2.log")
term_and_time
wait "$CPID" 2> /dev/null
CPID=
if [ "$waited" -ge 1 ] && [ "$S" -le 7 ] && kill -0 "$IPID" 2> /dev/null; then
	ok $name
else
	fail $name "waited=$waited exit after ${S}s install alive=$(alive "$IPID" && echo yes || echo no) $(tail -n 3 "$T/l2.log")"
fi
kill "$IPID" 2> /dev/null
wait "$IPID" 2> /dev/null
IPID=

[ $FAILS = 0 ] || exit 1
echo "all fallback-install shutdown tests passed"
