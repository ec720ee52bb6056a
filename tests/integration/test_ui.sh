#!/bin/sh
# The web app (server/ui.c, issue 14) against a real lemon serve over
# loopback with curl: every file the page loads is served from the binary
# with its content type and the same-origin headers (CSP default-src
# 'self', nosniff, no framing); the files load without the API key while
# the API still needs it; a browser asking / for HTML is redirected to
# /ui/ and an API client still gets the Ollama answer; unknown files are a
# 404; and the assets name no other origin (no CDN). Prints "ok NAME" or
# "FAIL NAME: why"; exits non-zero on failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/lemon-ui.XXXXXX)
FAILS=0
LPID=
MPID=
KEY=ui-key

. tests/integration/lib.sh

cleanup() {
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	[ -n "${IPID:-}" ] && kill "$IPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

need_lemon
# serve installs its backend before it listens: the real CPU bundle, from
# a loopback mirror
need_bundle
start_bundle_mirror_vulkan
export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
unset LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$LEMON" serve --port "$PORT" --backend cpu --mirror "$MIRROR" --api-key "$KEY" \
	--sysroot tests/fixtures/cpu-vm > "$T/lemon.log" 2>&1 &
LPID=$!
i=0
while [ $i -lt 300 ] && ! grep -q "listening on" "$T/lemon.log"; do
	sleep 0.1
	i=$((i + 1))
done
grep -q "listening on" "$T/lemon.log" || { echo "FAIL setup: lemon serve: $(tail -n 3 "$T/lemon.log")"; exit 1; }

# GET path with extra curl args: headers to $T/h, body to $T/b, status out
get() {
	p=$1
	shift
	curl -s -o "$T/b" -D "$T/h" -w '%{http_code}' "$@" "$URL$p"
}
hdr() { grep -i "^$1:" "$T/h" | head -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }

# every file under server/ui/ is served with its type and the headers
for f in server/ui/*; do
	name=${f#server/ui/}
	case $name in
	*.html) want="text/html; charset=utf-8" ;;
	*.css) want="text/css; charset=utf-8" ;;
	*.js) want="text/javascript; charset=utf-8" ;;
	*.svg) want="image/svg+xml" ;;
	*) want="?" ;;
	esac
	st=$(get "/ui/$name")
	if [ "$st" = 200 ] && [ "$(hdr Content-Type)" = "$want" ] && cmp -s "$T/b" "$f"; then
		ok "served $name"
	else
		fail "served $name" "status $st, type '$(hdr Content-Type)', same bytes: $(cmp -s "$T/b" "$f" && echo yes || echo no)"
	fi
done

st=$(get /ui/)
csp=$(hdr Content-Security-Policy)
[ "$st" = 200 ] && cmp -s "$T/b" server/ui/index.html && ok "/ui/ is index.html" ||
	fail "/ui/ is index.html" "status $st"
case $csp in
"default-src 'self';"*"frame-ancestors 'none'"*) ok "csp default-src self" ;;
*) fail "csp default-src self" "got '$csp'" ;;
esac
[ "$(hdr X-Content-Type-Options)" = nosniff ] && [ "$(hdr X-Frame-Options)" = DENY ] &&
	[ "$(hdr Referrer-Policy)" = no-referrer ] && ok "nosniff, no framing, no referrer" ||
	fail "nosniff, no framing, no referrer" "$(tr -d '\r' < "$T/h" | tr '\n' '|')"
hdr Access-Control-Allow-Origin | grep -q . && fail "no CORS on the app" "$(hdr Access-Control-Allow-Origin)" ||
	ok "no CORS on the app"

# each module the page imports is served (a missing one is a blank page)
for m in $(grep -ho "from '\./[a-z_-]*\.js'" server/ui/*.js | sed "s/from '\.\///; s/'//" | sort -u) \
	$(grep -o 'src="[a-z_-]*\.js"\|href="[a-z_-]*\.css"' server/ui/index.html | sed 's/.*="//; s/"//'); do
	st=$(get "/ui/$m")
	[ "$st" = 200 ] && ok "import $m" || fail "import $m" "status $st"
done

# what the page reads before its first call: whether to ask for a key,
# never the key itself
st=$(get /ui/config.json)
[ "$st" = 200 ] && jq -e '.api_key == true' "$T/b" > /dev/null && ! grep -q "$KEY" "$T/b" &&
	ok "config.json says a key is needed" || fail "config.json says a key is needed" "status $st $(cat "$T/b")"

st=$(get /ui/nope.js)
[ "$st" = 404 ] && ok "unknown file 404" || fail "unknown file 404" "status $st"
st=$(get /ui/../v1/models)
[ "$st" = 401 ] || [ "$st" = 404 ] && ok "no path escape" || fail "no path escape" "status $st"
st=$(get /ui)
[ "$st" = 308 ] && [ "$(hdr Location)" = /ui/ ] && ok "/ui redirects to /ui/" ||
	fail "/ui redirects to /ui/" "status $st location $(hdr Location)"

# the key: the app's files load without it, the API does not
st=$(get /v1/models)
[ "$st" = 401 ] && ok "api needs the key" || fail "api needs the key" "status $st"
st=$(get /v1/models -H "Authorization: Bearer $KEY")
[ "$st" = 200 ] && ok "api with the key" || fail "api with the key" "status $st"
st=$(get /ui/app.js -X POST -H 'Content-Type: application/json' -d '{}')
[ "$st" = 405 ] || [ "$st" = 401 ] && ok "app files are GET only" || fail "app files are GET only" "status $st"

# / : a browser is sent to the app, an API client gets the Ollama answer
st=$(get / -H 'Accept: text/html,application/xhtml+xml,*/*;q=0.8')
[ "$st" = 302 ] && [ "$(hdr Location)" = /ui/ ] && ok "browser / redirects to /ui/" ||
	fail "browser / redirects to /ui/" "status $st location $(hdr Location)"
st=$(get / -H "Authorization: Bearer $KEY")
[ "$st" = 200 ] && [ "$(cat "$T/b")" = '"lemon is running"' ] && ok "api client / unchanged" ||
	fail "api client / unchanged" "status $st body $(head -c 100 "$T/b")"
st=$(get /)
[ "$st" = 401 ] && ok "api client / still needs the key" || fail "api client / still needs the key" "status $st"

# a foreign page cannot load the app's API through the browser's Origin
st=$(get /ui/ -H 'Origin: http://evil.example')
[ "$st" = 403 ] && ok "foreign origin refused" || fail "foreign origin refused" "status $st"

# the memory plans of the stored models (GET /api/v1/plans, the Models
# page's column), as a load would plan them: the tiny model goes on the
# CPU (the only candidate here); a plausible 70B f16 header (80 layers,
# sparse file of its full size) is too large for the fixture's 7941 MiB
# of RAM, named with the planner's own refusal
python3 tests/tools/make-tiny-gguf.py --out "$T/tiny.gguf" > /dev/null &&
python3 - "$T/huge.gguf" <<'PY' || fail "plan setup" "python"
import struct, sys
def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b
def kv_str(k, v): return s(k) + struct.pack("<I", 8) + s(v)
def kv_u32(k, v): return s(k) + struct.pack("<II", 4, v)
kvs = [kv_str("general.architecture", "llama"), kv_u32("llama.block_count", 80),
       kv_u32("llama.context_length", 4096), kv_u32("llama.embedding_length", 8192),
       kv_u32("llama.attention.head_count", 64), kv_u32("llama.attention.head_count_kv", 8)]
tensors, off = [], 0
for i in range(80):
    tensors.append(s("blk.%d.ffn_up.weight" % i) + struct.pack("<IQQIQ", 2, 8192, 28672, 1, off))
    off += 8192 * 28672 * 2
out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(tensors)
out += b"\0" * (-len(out) % 32)
with open(sys.argv[1], "wb") as f:
    f.write(out)
    f.truncate(len(out) + off)
PY
"$LEMON" pull --file "$T/tiny.gguf" tiny > "$T/pull.out" 2>&1 &&
	"$LEMON" pull --file "$T/huge.gguf" huge >> "$T/pull.out" 2>&1 ||
	fail "plan setup" "$(cat "$T/pull.out")"
st=$(get /api/v1/plans)
[ "$st" = 401 ] && ok "plans need the key" || fail "plans need the key" "status $st"
st=$(get /api/v1/plans/tiny -H "Authorization: Bearer $KEY")
[ "$st" = 200 ] && jq -e '.id == "tiny" and .plan == "cpu" and .backend == "cpu" and
	.ram_bytes == 8131212 * 1024 and .need_bytes > 0 and .need_bytes < .ram_bytes and
	(.summary | test("^CPU \\([0-9]+ MiB of RAM\\)$"))' "$T/b" > /dev/null &&
	ok "plan of the tiny model: CPU" || fail "plan of the tiny model: CPU" "status $st $(cat "$T/b")"
st=$(get /api/v1/plans/huge -H "Authorization: Bearer $KEY")
[ "$st" = 200 ] && jq -e '.plan == "too_large" and .layers == 80 and .need_bytes > .ram_bytes and
	(.summary | test("^too large: model .huge. needs about [0-9]+ MiB \\(weights 35840 MiB, context [0-9]+ MiB\\) but the machine has 7941 MiB of RAM$"))' \
	"$T/b" > /dev/null && ok "plan of a 70B header: too large" ||
	fail "plan of a 70B header: too large" "status $st $(cat "$T/b")"
st=$(get /api/v1/plans -H "Authorization: Bearer $KEY")
[ "$st" = 200 ] && [ "$(jq -c '[.data[] | [.id, .plan]]' "$T/b")" = '[["huge","too_large"],["tiny","cpu"]]' ] &&
	ok "plans of every stored model" || fail "plans of every stored model" "status $st $(cat "$T/b")"
st=$(get /api/v1/plans/nosuch -H "Authorization: Bearer $KEY")
[ "$st" = 404 ] && ok "plan of a missing model 404" || fail "plan of a missing model 404" "status $st $(cat "$T/b")"
# the plan reads headers only: nothing was started for it
grep -q "starting huge\|starting tiny" "$T/lemon.log" && fail "plans start nothing" "$(grep starting "$T/lemon.log")" ||
	ok "plans start nothing"

# the System page's backends (GET /api/v1/backends, POST
# /api/v1/backends/install): the serve installed llamacpp:cpu at its start
# from the mirror; llamacpp:vulkan is pinned and not installed; its
# install streams progress events then the installed path; a second
# install while one runs is a 409; names compat does not pin are a 400;
# the key and the JSON content type are needed like every state change
post() { # PATH BODY [curl args]
	p=$1
	d=$2
	shift 2
	curl -s -o "$T/b" -w '%{http_code}' -X POST -d "$d" "$@" "$URL$p"
}
st=$(get /api/v1/backends)
[ "$st" = 401 ] && ok "backends need the key" || fail "backends need the key" "status $st"
st=$(get /api/v1/backends -H "Authorization: Bearer $KEY")
[ "$st" = 200 ] && jq -e '.installing == false and
	(.backends[] | select(.name == "llamacpp:cpu") | .current == "v0.5.0" and .installed[0].works and .pinned != "") and
	(.backends[] | select(.name == "llamacpp:vulkan") | .current == null and .installed == [] and .installable)' \
	"$T/b" > /dev/null && ok "backends list: cpu current, vulkan installable" ||
	fail "backends list: cpu current, vulkan installable" "status $st $(head -c 600 "$T/b")"
st=$(post /api/v1/backends/install '{"name":"llamacpp:vulkan"}' -H 'Content-Type: application/json')
[ "$st" = 401 ] && ok "install needs the key" || fail "install needs the key" "status $st"
st=$(post /api/v1/backends/install '{"name":"llamacpp:vulkan"}' -H "Authorization: Bearer $KEY")
[ "$st" = 415 ] && ok "install needs JSON" || fail "install needs JSON" "status $st"
st=$(post /api/v1/backends/install '{"name":"llamacpp:nosuch"}' -H "Authorization: Bearer $KEY" \
	-H 'Content-Type: application/json')
[ "$st" = 400 ] && jq -e '.error.message | test("nosuch")' "$T/b" > /dev/null &&
	ok "install of an unknown name 400" || fail "install of an unknown name 400" "status $st $(cat "$T/b")"
st=$(post /api/v1/backends/install '{"name":"llamacpp:\u00e9 x"}' -H "Authorization: Bearer $KEY" \
	-H 'Content-Type: application/json')
[ "$st" = 400 ] && jq -e '.error.message | test("^the body must be")' "$T/b" > /dev/null &&
	ok "install of a name that is not plain ASCII 400" ||
	fail "install of a name that is not plain ASCII 400" "status $st $(cat "$T/b")"
# slowed to ~2 s so the second install finds the first one running
echo '{"rate": 3000000}' > "$T/mctl"
curl -s -N -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	-d '{"name":"llamacpp:vulkan"}' -D "$T/ih" "$URL/api/v1/backends/install" > "$T/inst" &
IPID=$!
i=0
while [ $i -lt 50 ] && ! grep -q '"downloading"' "$T/inst"; do sleep 0.1; i=$((i + 1)); done
st=$(post /api/v1/backends/install '{"name":"llamacpp:cpu"}' -H "Authorization: Bearer $KEY" \
	-H 'Content-Type: application/json')
[ "$st" = 409 ] && ok "second install 409" || fail "second install 409" "status $st $(cat "$T/b")"
wait "$IPID"
rm -f "$T/mctl"
SIZE=$(jq '.assets[] | .size' "$T/mirror/manifest.json" | head -n 1)
grep -qi '^content-type: text/event-stream' "$T/ih" &&
	sed -n 's/^data: //p' "$T/inst" | jq -s -e --argjson n "$SIZE" '
	.[0].status == "installing" and
	([.[] | select(.status == "downloading")] | length >= 2 and
		(map(.total == $n) | all) and (.[0].completed < $n) and (.[-1].completed == $n)) and
	(.[-1] | .name == "llamacpp:vulkan" and .status == "success" and .version == "v0.5.0" and
		(.path | test("/lemon/backends/llamacpp-vulkan-v0.5.0/llama-v0.5.0/llama-server$")))' > /dev/null &&
	ok "install streams progress then the path" || fail "install streams progress then the path" "$(head -c 800 "$T/inst")"
st=$(get /api/v1/backends -H "Authorization: Bearer $KEY")
[ "$st" = 200 ] && jq -e '.installing == false and
	(.backends[] | select(.name == "llamacpp:vulkan") | .current == "v0.5.0" and .installed[0].works)' \
	"$T/b" > /dev/null && ok "backends list shows the install" ||
	fail "backends list shows the install" "status $st $(head -c 600 "$T/b")"

# the log stream: needs the key, starts with the kept history (the
# supervisor named its backend), and a client still reading it does not
# hold up the server's shutdown (timed here)
st=$(curl -s -o "$T/b" -w '%{http_code}' --max-time 1 "$URL/api/v1/logs")
[ "$st" = 401 ] && ok "logs need the key" || fail "logs need the key" "status $st"
curl -s -N --max-time 1 -D "$T/h" -H "Authorization: Bearer $KEY" "$URL/api/v1/logs" > "$T/logs"
grep -q '^data: {"line":"lemon: backend cpu' "$T/logs" && [ "$(hdr Content-Type)" = text/event-stream ] &&
	ok "logs stream the history" || fail "logs stream the history" "$(head -c 200 "$T/logs")"
curl -s -N -H "Authorization: Bearer $KEY" "$URL/api/v1/logs" > /dev/null 2>&1 &
CPID=$!
sleep 0.3
t0=$(date +%s)
kill "$LPID"
wait "$LPID"
rc=$?
t1=$(date +%s)
LPID=
kill "$CPID" 2>/dev/null
[ "$rc" -eq 0 ] && [ $((t1 - t0)) -le 5 ] && ok "shutdown with a log reader" ||
	fail "shutdown with a log reader" "exit $rc after $((t1 - t0)) s"


# no other origin in the assets: no CDN, nothing fetched from elsewhere
if grep -n -E "https?://|//cdn|<script>| on[a-z]+=\"" server/ui/* | grep -v "xmlns=\"http://www.w3.org/2000/svg\"" > "$T/ext"; then
	fail "assets are self-contained" "$(head -n 3 "$T/ext")"
else
	ok "assets are self-contained"
fi

[ "$FAILS" -eq 0 ] || exit 1
