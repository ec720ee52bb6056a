#!/bin/sh
# A registry entry with a vision projector (compat/models.json "mmproj":
# file, sha256, size) pulled with its model from a loopback Hugging
# Face-style server (tests/tools/hf-mirror.py, reached through
# HF_ENDPOINT): `lemon pull NAME` stores both, progress counts two files,
# a wrong projector digest and a projector the server does not have
# publish nothing (no half-published model), POST /api/v1/pull and
# /api/pull pull both too, and the real CPU llama-server lemon serve then
# starts with --mmproj answers an image. A split model (the tiny model in
# two llama.cpp-style parts, published as the directory NAME/) gets its
# projector the same way: stored as NAME.mmproj.gguf, found by the name,
# so /api/show says vision and its child starts with --mmproj. The model
# is the tiny test model, the projector tests/tools/make-tiny-mmproj.py's
# random one.
# Prints "ok NAME" or "FAIL NAME: why"; exits non-zero on any failure.
set -u

LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/lemon-pullmm.XXXXXX)
FAILS=0
MPID=
HPID=
LPID=

. tests/integration/lib.sh

cleanup() {
	[ -n "${M:-}" ] && chattr -i "$M/eye.gguf" "$M/eye-split" 2>/dev/null
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	[ -n "$HPID" ] && kill "$HPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

need_lemon
need_bundle
MODEL=$BUILD/models/tiny.gguf
[ -f "$MODEL" ] || python3 tests/tools/make-tiny-gguf.py --out "$MODEL" > /dev/null ||
	{ echo "FAIL setup: make-tiny-gguf.py"; exit 1; }
start_bundle_mirror

# the hub: the model and its projector in one repo, as publishers do
REPO=$T/hub/lemon-test/vision-GGUF
mkdir -p "$REPO"
cp "$MODEL" "$REPO/eye.gguf"
python3 tests/tools/make-tiny-mmproj.py --out "$REPO/mmproj-eye-f16.gguf" --png-b64 "$T/img.b64" > /dev/null ||
	{ echo "FAIL setup: make-tiny-mmproj.py"; exit 1; }
# a second projector (another seed): what a re-pull brings
python3 tests/tools/make-tiny-mmproj.py --out "$REPO/mmproj-eye-v2.gguf" --seed 7 > /dev/null ||
	{ echo "FAIL setup: make-tiny-mmproj.py"; exit 1; }
# the same model split in two loadable parts (hf-mirror.py's split_real)
python3 tests/tools/hf-mirror.py make "$T/mk" --tiny "$MODEL" > /dev/null ||
	{ echo "FAIL setup: hf-mirror.py make"; exit 1; }
cp "$T"/mk/lemon-test/tiny-real-split-GGUF/tiny-real-0000?-of-00002.gguf "$REPO/"
sha() { sha256sum "$1" | cut -d' ' -f1; }
MSHA=$(sha "$REPO/eye.gguf")
S1SHA=$(sha "$REPO/tiny-real-00001-of-00002.gguf")
S2SHA=$(sha "$REPO/tiny-real-00002-of-00002.gguf")
PSHA=$(sha "$REPO/mmproj-eye-f16.gguf")
PSIZE=$(stat -c %s "$REPO/mmproj-eye-f16.gguf")
P2SHA=$(sha "$REPO/mmproj-eye-v2.gguf")
BAD=0000000000000000000000000000000000000000000000000000000000000000
entry() { # NAME PROJECTOR-FILE PROJECTOR-SHA
	printf '{"name":"%s","recipe":"llamacpp","repo":"lemon-test/vision-GGUF","files":[{"file":"eye.gguf","sha256":"%s"}],"mmproj":{"file":"%s","sha256":"%s","size":%s},"labels":["llm","vision"],"source":"test"}' \
		"$1" "$MSHA" "$2" "$3" "$PSIZE"
}
split_entry() { # NAME [PROJECTOR-FILE PROJECTOR-SHA]
	printf '{"name":"%s","recipe":"llamacpp","repo":"lemon-test/vision-GGUF","files":[{"file":"tiny-real-00001-of-00002.gguf","sha256":"%s"},{"file":"tiny-real-00002-of-00002.gguf","sha256":"%s"}],"mmproj":{"file":"%s","sha256":"%s"},"labels":["llm","vision"],"source":"test"}' \
		"$1" "$S1SHA" "$S2SHA" "${2:-mmproj-eye-f16.gguf}" "${3:-$PSHA}"
}
printf '{"schema":1,"models":[%s,%s,%s,%s,%s,%s]}\n' \
	"$(entry eye mmproj-eye-f16.gguf "$PSHA")" \
	"$(split_entry eye-split)" \
	"$(entry eye-badsha mmproj-eye-f16.gguf "$BAD")" \
	"$(entry eye-missing mmproj-not-there.gguf "$PSHA")" \
	"$(entry eye-api mmproj-eye-f16.gguf "$PSHA")" \
	"$(entry eye-ollama mmproj-eye-f16.gguf "$PSHA")" > "$T/models.json"
# the registry of a re-pull: eye and eye-split with the second projector
printf '{"schema":1,"models":[%s,%s]}\n' \
	"$(entry eye mmproj-eye-v2.gguf "$P2SHA" | sed 's/,"size":[0-9]*//')" \
	"$(split_entry eye-split mmproj-eye-v2.gguf "$P2SHA")" > "$T/models2.json"
# the registry of a later re-pull: eye names no projector any more
printf '{"schema":1,"models":[%s]}\n' \
	"$(entry eye x x | sed 's/,"mmproj":{[^}]*}//; s/,"vision"//')" > "$T/models3.json"

python3 tests/tools/hf-mirror.py serve "$T/hub" --log "$T/hlog" > "$T/hport" 2> "$T/hub.err" &
HPID=$!
i=0
while [ ! -s "$T/hport" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$T/hport" ] || { echo "FAIL setup: hf-mirror.py did not start"; exit 1; }
export HF_ENDPOINT=http://127.0.0.1:$(head -n 1 "$T/hport")
export LEMON_MODELS_JSON=$T/models.json
export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
unset HF_TOKEN LEMON_LLAMA_SERVER LEMON_LLAMA_SERVER_CPU LEMON_API_KEY LEMON_PORT LEMON_HOST LEMON_BACKEND
M=$XDG_DATA_HOME/lemon/models

# 1. the CLI pulls both; the progress lines count two parts and a total
# of both files
name=cli_pulls_model_and_projector
total=$(( $(stat -c %s "$MODEL") + PSIZE ))
if ! "$LEMON" pull --progress json eye > "$T/p1" 2> "$T/e1"; then
	fail $name "$(cat "$T/e1")"
elif [ "$(sha "$M/eye.gguf" 2>/dev/null)" != "$MSHA" ] ||
     [ "$(sha "$M/eye.mmproj.gguf" 2>/dev/null)" != "$PSHA" ]; then
	fail $name "stored: $(ls -a "$M")"
elif ! jq -se --argjson t "$total" 'any(.[]; .file == "mmproj-eye-f16.gguf" and .part == 2 and .parts == 2 and .all_total == $t and .all_completed == $t) and .[-1].status == "success"' "$T/p1" > /dev/null; then
	fail $name "progress: $(tail -c 600 "$T/p1")"
elif ls -a "$M" | grep -q '^\.pull-eye$'; then
	fail $name "staging left behind: $(ls -a "$M")"
else
	ok $name
fi

# 2. a projector whose bytes are not the registry's: refused (CHECKSUM,
# exit status of a checksum failure), and nothing of the model published
name=wrong_projector_digest_refused
if "$LEMON" pull --progress none eye-badsha > "$T/p2" 2> "$T/e2"; then
	fail $name "pulled: $(ls -a "$M")"
elif ! grep -q "sha256 mismatch: expected $BAD" "$T/e2"; then
	fail $name "$(cat "$T/e2")"
elif [ -e "$M/eye-badsha.gguf" ] || [ -e "$M/eye-badsha.mmproj.gguf" ]; then
	fail $name "half published: $(ls -a "$M")"
elif "$LEMON" list | grep -q '^eye-badsha '; then
	fail $name "listed"
else
	ok $name
fi

# 3. a projector the server does not have: the model's bytes arrived, but
# no model is published without the projector its entry names
name=missing_projector_publishes_nothing
if "$LEMON" pull --progress none eye-missing > "$T/p3" 2> "$T/e3"; then
	fail $name "pulled: $(ls -a "$M")"
elif [ -e "$M/eye-missing.gguf" ] || [ -e "$M/eye-missing.mmproj.gguf" ]; then
	fail $name "half published: $(ls -a "$M") ($(cat "$T/e3"))"
elif ! grep -q 'mmproj-not-there.gguf' "$T/e3"; then
	fail $name "$(cat "$T/e3")"
else
	ok $name
fi

# 3b. a split model with a projector: the parts published as the
# directory eye-split/, the projector as eye-split.mmproj.gguf (by the
# name: there is no single model file to put it beside)
name=split_model_pulls_projector
if ! "$LEMON" pull --progress none eye-split > "$T/p4" 2> "$T/e4"; then
	fail $name "$(cat "$T/e4")"
elif [ "$(sha "$M/eye-split/tiny-real-00001-of-00002.gguf" 2>/dev/null)" != "$S1SHA" ] ||
     [ "$(sha "$M/eye-split/tiny-real-00002-of-00002.gguf" 2>/dev/null)" != "$S2SHA" ] ||
     [ "$(sha "$M/eye-split.mmproj.gguf" 2>/dev/null)" != "$PSHA" ]; then
	fail $name "stored: $(ls -a "$M" "$M/eye-split")"
else
	ok $name
fi

# 3c. a re-pull whose model cannot be published (the old model made
# immutable: its rename, or the split directory's swap, fails after both
# new files were downloaded and verified) leaves the old model with its
# old projector, byte for byte: the store's rule is the old state or the
# complete new one (before: the new projector was renamed over the old
# first and, the model failing, removed, so the old model had none). The
# same re-pull once the model can be replaced publishes the new pair.
name=failed_repull_keeps_old_pair
if [ "$(id -u)" != 0 ] || ! chattr +i "$M/eye.gguf" "$M/eye-split" 2> "$T/chattr"; then
	echo "skip $name: needs root and chattr +i on $M ($(cat "$T/chattr" 2>/dev/null))"
else
	r1=0
	r2=0
	LEMON_MODELS_JSON=$T/models2.json "$LEMON" pull --progress none eye > "$T/p5" 2> "$T/e5" && r1=1
	LEMON_MODELS_JSON=$T/models2.json "$LEMON" pull --progress none eye-split > "$T/p6" 2> "$T/e6" && r2=1
	chattr -i "$M/eye.gguf" "$M/eye-split"
	if [ $r1 = 1 ] || [ $r2 = 1 ]; then
		fail $name "a re-pull over an immutable model succeeded ($r1 $r2)"
	elif [ "$(sha "$M/eye.gguf" 2>/dev/null)" != "$MSHA" ] ||
	     [ "$(sha "$M/eye.mmproj.gguf" 2>/dev/null)" != "$PSHA" ]; then
		fail $name "eye: $(ls -a "$M") ($(cat "$T/e5"))"
	elif [ "$(sha "$M/eye-split/tiny-real-00001-of-00002.gguf" 2>/dev/null)" != "$S1SHA" ] ||
	     [ "$(sha "$M/eye-split/tiny-real-00002-of-00002.gguf" 2>/dev/null)" != "$S2SHA" ] ||
	     [ "$(sha "$M/eye-split.mmproj.gguf" 2>/dev/null)" != "$PSHA" ]; then
		fail $name "eye-split: $(ls -a "$M" "$M/eye-split") ($(cat "$T/e6"))"
	elif ! LEMON_MODELS_JSON=$T/models2.json "$LEMON" pull --progress none eye > "$T/p7" 2> "$T/e7" ||
	     ! LEMON_MODELS_JSON=$T/models2.json "$LEMON" pull --progress none eye-split > "$T/p8" 2> "$T/e8"; then
		fail $name "the re-pull then failed: $(cat "$T/e7" "$T/e8")"
	elif [ "$(sha "$M/eye.mmproj.gguf" 2>/dev/null)" != "$P2SHA" ] ||
	     [ "$(sha "$M/eye-split.mmproj.gguf" 2>/dev/null)" != "$P2SHA" ] ||
	     [ "$(sha "$M/eye.gguf" 2>/dev/null)" != "$MSHA" ] ||
	     [ "$(sha "$M/eye-split/tiny-real-00002-of-00002.gguf" 2>/dev/null)" != "$S2SHA" ]; then
		fail $name "the re-pull published: $(ls -a "$M")"
	elif ls -a "$M" | grep -q 'mmproj[.]new'; then
		fail $name "left behind: $(ls -a "$M")"
	else
		ok $name
	fi
fi

start_lemon() { # LOG ARGS...
	log=$1
	shift
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	"$LEMON" serve --port "$PORT" --backend cpu --mirror "$MIRROR" "$@" > "$log" 2>&1 &
	LPID=$!
	i=0
	while [ $i -lt 600 ] && ! grep -q "listening on" "$log" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	grep -q "listening on" "$log" || { echo "FAIL setup: lemon serve: $(tail -n 3 "$log")"; exit 1; }
}
post() { # path body -> body, status on the last line
	curl -s -m 60 -H 'Content-Type: application/json' -w '\n%{http_code}' "$URL$1" -d "$2"
}
code() { tail -n 1 "$1"; }
body() { sed '$d' "$1"; }

start_lemon "$T/l1.log" --idle-timeout 300

# 4. the pull routes pull both as well
name=api_v1_pull_with_projector
post /api/v1/pull '{"model_name":"eye-api","stream":false}' > "$T/a1"
if [ "$(code "$T/a1")" = 200 ] && [ "$(sha "$M/eye-api.mmproj.gguf" 2>/dev/null)" = "$PSHA" ] &&
   [ "$(sha "$M/eye-api.gguf" 2>/dev/null)" = "$MSHA" ]; then
	ok $name
else
	fail $name "$(head -c 300 "$T/a1"); $(ls -a "$M")"
fi
name=ollama_pull_with_projector
post /api/pull '{"model":"eye-ollama"}' > "$T/a2"
if [ "$(code "$T/a2")" = 200 ] && body "$T/a2" | tail -n 1 | jq -e '.status == "success"' > /dev/null &&
   body "$T/a2" | jq -se 'any(.[]; .digest == "mmproj-eye-f16.gguf" and .completed == '"$PSIZE"')' > /dev/null &&
   [ "$(sha "$M/eye-ollama.mmproj.gguf" 2>/dev/null)" = "$PSHA" ]; then
	ok $name
else
	fail $name "$(tail -c 400 "$T/a2"); $(ls -a "$M")"
fi

# 5. the pulled model answers an image: its child runs with --mmproj and
# counts the image's tokens in the prompt (a child without the projector
# refuses images, and lemon refuses them before it for such a model)
name=pulled_projector_answers_image
IMG=$(cat "$T/img.b64")
PART='{"type":"image_url","image_url":{"url":"data:image/png;base64,'"$IMG"'"}}'
post /v1/chat/completions '{"model":"eye","max_tokens":2,"messages":[{"role":"user","content":"what is this"}]}' > "$T/v0"
post /v1/chat/completions '{"model":"eye","max_tokens":2,"messages":[{"role":"user","content":[{"type":"text","text":"what is this"},'"$PART"']}]}' > "$T/v1"
n0=$(body "$T/v0" | jq '.usage.prompt_tokens' 2>/dev/null)
n1=$(body "$T/v1" | jq '.usage.prompt_tokens' 2>/dev/null)
if [ "$(code "$T/v0")" = 200 ] && [ "$(code "$T/v1")" = 200 ] &&
   [ "${n1:-0}" -gt "${n0:-0}" ] &&
   ps -eo args | grep -F -- "--mmproj $M/eye.mmproj.gguf" | grep -q llama-server; then
	ok $name
else
	fail $name "without $n0, with $n1: $(tail -c 300 "$T/v1")"
fi

# 6. the split model's projector is used: /api/show says vision, its
# child runs with --mmproj NAME.mmproj.gguf and counts an image's tokens
# (before: looked for beside the first part, eye-split/tiny-real-00001-
# of-00002.mmproj.gguf, so no --mmproj, no vision, images refused)
name=split_projector_answers_image
post /api/show '{"model":"eye-split"}' > "$T/s0"
post /v1/chat/completions '{"model":"eye-split","max_tokens":2,"messages":[{"role":"user","content":"what is this"}]}' > "$T/s1"
post /v1/chat/completions '{"model":"eye-split","max_tokens":2,"messages":[{"role":"user","content":[{"type":"text","text":"what is this"},'"$PART"']}]}' > "$T/s2"
n0=$(body "$T/s1" | jq '.usage.prompt_tokens' 2>/dev/null)
n1=$(body "$T/s2" | jq '.usage.prompt_tokens' 2>/dev/null)
if [ "$(code "$T/s0")" != 200 ] || ! body "$T/s0" | jq -e '.capabilities | index("vision")' > /dev/null; then
	fail $name "/api/show: $(body "$T/s0" | jq -c .capabilities 2>/dev/null) ($(code "$T/s0"))"
elif [ "$(code "$T/s1")" != 200 ] || [ "$(code "$T/s2")" != 200 ] ||
     [ "${n1:-0}" -le "${n0:-0}" ]; then
	fail $name "without $n0, with $n1: $(tail -c 300 "$T/s2")"
elif ! ps -eo args | grep -F -- "--mmproj $M/eye-split.mmproj.gguf" | grep -q llama-server; then
	fail $name "no child with --mmproj $M/eye-split.mmproj.gguf: $(ps -eo args | grep llama-server | grep -v grep)"
else
	ok $name
fi

# 7. a re-pull does not publish while a start of the model is loading:
# the child opens the model and its projector some time after lemon chose
# them, and a publication in between could pair the old model with the
# new projector. The real llama-server is started through a wrapper that
# waits 3 s before exec'ing it (a start that loads slowly); a re-pull
# made meanwhile returns only once the child is ready, and the child
# runs on the model that was there when it started (its mapping of
# eye.gguf is of the replaced file). Before: the pull published at once,
# while the child had not opened anything yet.
name=repull_waits_for_loading_start
kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
LPID=
LS=$(find "$XDG_DATA_HOME" -name llama-server -type f | head -n 1)
printf '#!/bin/sh\ncase " $* " in *" --version "*) ;; *) sleep 3 ;; esac\nexec "%s" "$@"\n' "$LS" > "$T/slow-llama-server"
chmod +x "$T/slow-llama-server"
export LEMON_LLAMA_SERVER_CPU=$T/slow-llama-server
start_lemon "$T/l2.log" --idle-timeout 300
unset LEMON_LLAMA_SERVER_CPU
post /v1/chat/completions '{"model":"eye","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}' > "$T/w1" &
CPID=$!
i=0
while [ $i -lt 100 ] && ! grep -q "starting eye (chat)" "$T/l2.log"; do sleep 0.1; i=$((i + 1)); done
t0=$(date +%s%N)
LEMON_MODELS_JSON=$T/models.json "$LEMON" pull --progress none eye > "$T/p9" 2> "$T/e9"
rp=$?
t1=$(date +%s%N)
ready_then=$(grep -c "eye (chat) ready" "$T/l2.log")
wait "$CPID"
cpid=$(ps -eo pid,args | grep -F -- "--mmproj $M/eye.mmproj.gguf" | grep -v grep | grep llama-server | awk '{print $1}' | head -n 1)
if [ $i -ge 100 ]; then
	fail $name "no start: $(tail -n 3 "$T/l2.log")"
elif [ $rp != 0 ] || [ "$(sha "$M/eye.mmproj.gguf" 2>/dev/null)" != "$PSHA" ]; then
	fail $name "the re-pull: $(cat "$T/e9")"
elif [ "$ready_then" = 0 ]; then
	fail $name "published while the start was loading (pull took $(( (t1 - t0) / 1000000 )) ms, the child not ready yet)"
elif [ "$(code "$T/w1")" != 200 ]; then
	fail $name "the chat: $(tail -c 300 "$T/w1")"
elif [ -z "$cpid" ] || ! grep -q "$M/eye.gguf (deleted)" "/proc/$cpid/maps"; then
	fail $name "the child ($cpid) did not load the model of its start: $(grep eye "/proc/$cpid/maps" 2>/dev/null | head -n 2)"
else
	ok $name
fi

# 8. a re-pull whose entry names no projector any more removes the old
# one: the new model must not start with a projector that is not its own
# (before: eye.mmproj.gguf stayed beside the new model)
name=repull_without_projector_removes_old
if ! LEMON_MODELS_JSON=$T/models3.json "$LEMON" pull --progress none eye > "$T/p10" 2> "$T/e10"; then
	fail $name "$(cat "$T/e10")"
elif [ "$(sha "$M/eye.gguf" 2>/dev/null)" != "$MSHA" ]; then
	fail $name "model: $(ls -a "$M")"
elif [ -e "$M/eye.mmproj.gguf" ]; then
	fail $name "the old projector stayed: $(ls -a "$M")"
elif ls -a "$M" | grep -q '^[.]pull-eye[.]mmproj'; then
	fail $name "left behind: $(ls -a "$M")"
else
	ok $name
fi

# 9. a publication interrupted between the model's rename and its
# projector's (SIGKILL, power loss) left the new model, the old projector
# and the new one staged as .pull-NAME.mmproj.ready; the next start puts
# the pair right: the staged projector goes into place when the model in
# place was published after it was staged (change times), and is removed
# when the model is older (the publication stopped before the model's
# rename); a delete removes it too. Made by hand here: the staged
# projector, then (9a) a newly published model. Before: nothing read the
# .ready again, the new model started with the old projector.
name=interrupted_publication_recovered_by_start
cp "$REPO/mmproj-eye-v2.gguf" "$M/.pull-eye-api.mmproj.ready"
cp "$REPO/eye.gguf" "$M/.pull-eye-api.hand" && mv "$M/.pull-eye-api.hand" "$M/eye-api.gguf"
post /v1/chat/completions '{"model":"eye-api","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}' > "$T/r1"
if [ "$(code "$T/r1")" != 200 ]; then
	fail $name "the chat: $(tail -c 300 "$T/r1")"
elif [ -e "$M/.pull-eye-api.mmproj.ready" ] || [ "$(sha "$M/eye-api.mmproj.gguf" 2>/dev/null)" != "$P2SHA" ]; then
	fail $name "the pair: $(ls -a "$M") ($(sha "$M/eye-api.mmproj.gguf" 2>/dev/null))"
elif ! ps -eo args | grep -F -- "--mmproj $M/eye-api.mmproj.gguf" | grep -q llama-server; then
	fail $name "no child with --mmproj $M/eye-api.mmproj.gguf"
else
	ok $name
fi
name=unpublished_leftover_removed_by_start
old=$(sha "$M/eye-split.mmproj.gguf")
if [ "$old" = "$P2SHA" ]; then other=$REPO/mmproj-eye-f16.gguf; else other=$REPO/mmproj-eye-v2.gguf; fi
sleep 0.05
cp "$other" "$M/.pull-eye-split.mmproj.ready"
post /v1/chat/completions '{"model":"eye-split","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}' > "$T/r2"
if [ "$(code "$T/r2")" != 200 ]; then
	fail $name "the chat: $(tail -c 300 "$T/r2")"
elif [ -e "$M/.pull-eye-split.mmproj.ready" ] || [ "$(sha "$M/eye-split.mmproj.gguf" 2>/dev/null)" != "$old" ]; then
	fail $name "the pair: $(ls -a "$M")"
else
	ok $name
fi
name=delete_removes_leftover
cp "$REPO/mmproj-eye-v2.gguf" "$M/.pull-eye-ollama.mmproj.ready"
if ! "$LEMON" rm eye-ollama > "$T/rm" 2>&1; then
	fail $name "$(cat "$T/rm")"
elif ls -a "$M" | grep -q '^[.]pull-eye-ollama[.]mmproj' || [ -e "$M/eye-ollama.mmproj.gguf" ]; then
	fail $name "left behind: $(ls -a "$M")"
else
	ok $name
fi

# 10. an import of a model and its projector (`lemon pull --file PATH
# --mmproj PROJ NAME`) publishes both together, under the pair lock, like
# a registry pull: made while a start of NAME is loading (3 s, the slow
# wrapper), it returns only once the child is ready, and the child runs
# on the model and projector of its start. Before: the import published
# at once, so the loading child could open the new model with the old
# projector.
name=import_waits_for_loading_start
"$LEMON" pull --file "$REPO/eye.gguf" --mmproj "$REPO/mmproj-eye-f16.gguf" eye-imp > "$T/i0" 2>&1 ||
	fail $name "first import: $(cat "$T/i0")"
post /v1/chat/completions '{"model":"eye-imp","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}' > "$T/w2" &
CPID=$!
i=0
while [ $i -lt 100 ] && ! grep -q "starting eye-imp (chat)" "$T/l2.log"; do sleep 0.1; i=$((i + 1)); done
"$LEMON" pull --file "$REPO/eye.gguf" --mmproj "$REPO/mmproj-eye-v2.gguf" eye-imp > "$T/i1" 2>&1
ri=$?
ready_then=$(grep -c "eye-imp (chat) ready" "$T/l2.log")
wait "$CPID"
cpid=$(ps -eo pid,args | grep -F -- "--mmproj $M/eye-imp.mmproj.gguf" | grep -v grep | grep llama-server | awk '{print $1}' | head -n 1)
if [ $i -ge 100 ]; then
	fail $name "no start: $(tail -n 3 "$T/l2.log")"
elif [ $ri != 0 ] || [ "$(sha "$M/eye-imp.mmproj.gguf" 2>/dev/null)" != "$P2SHA" ]; then
	fail $name "the import: $(cat "$T/i1")"
elif [ "$ready_then" = 0 ]; then
	fail $name "published while the start was loading"
elif [ "$(code "$T/w2")" != 200 ]; then
	fail $name "the chat: $(tail -c 300 "$T/w2")"
elif [ -z "$cpid" ] || ! grep -q "$M/eye-imp.gguf (deleted)" "/proc/$cpid/maps"; then
	fail $name "the child ($cpid) did not load the model of its start"
elif ls -a "$M" | grep -q '^[.]pull-eye-imp[.].*import'; then
	fail $name "left behind: $(ls -a "$M")"
else
	ok $name
fi
name=import_refuses_text_model_as_projector
"$LEMON" pull --file "$REPO/eye.gguf" --mmproj "$REPO/eye.gguf" eye-imp2 > "$T/i2" 2>&1
if ! grep -q "not a vision projector" "$T/i2" || [ -e "$M/eye-imp2.gguf" ] || [ -e "$M/eye-imp2.mmproj.gguf" ]; then
	fail $name "$(cat "$T/i2"); $(ls -a "$M")"
else
	ok $name
fi

# 11. a start waiting for the pair lock (a publication holds it: here a
# flock(1) on .pull-NAME.pair) does not hold up a shutdown: lemon serve
# exits promptly on SIGTERM. Before: the supervisor slept through up to
# 5 s of that wait before it could be joined.
name=shutdown_ends_pair_wait
"$LEMON" pull --file "$REPO/eye.gguf" eye-stop > "$T/i3" 2>&1 || fail $name "import: $(cat "$T/i3")"
flock -x "$M/.pull-eye-stop.pair" sleep 30 &
FPID=$!
sleep 0.3
post /v1/chat/completions '{"model":"eye-stop","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}' > "$T/w3" 2>&1 &
CPID=$!
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$LPID"
wait "$LPID"
t1=$(date +%s%N)
LPID=
kill "$FPID" 2>/dev/null
wait "$CPID" 2>/dev/null
ms=$(( (t1 - t0) / 1000000 ))
if [ "$ms" -ge 3000 ]; then
	fail $name "lemon serve took $ms ms to stop"
else
	ok $name
fi

[ $FAILS -eq 0 ] || exit 1
