#!/bin/sh
# Benchmark: `lemon pull big` against `curl -o` (and `curl -o && sha256sum`,
# since lemon verifies the digest as the bytes arrive) for the same
# generated GGUF from the same loopback Hugging Face-style server
# (tests/tools/hf-mirror.py, reached through HF_ENDPOINT), alternating the
# variants, N rounds, each into a fresh directory with the page cache's
# dirty pages written back first (untimed). Prints each median wall time and
# the ratios lemon / curl and lemon / (curl + sha256sum); lower is better.
#
# usage: bench/pull.sh [ROUNDS] [MiB]   (default 9 rounds of a 200 MiB file;
#                                        LEMON=path overrides the binary)
set -eu

ROUNDS=${1:-9}
MB=${2:-200}
LEMON=${LEMON:-build/lemon}
case $LEMON in /*) ;; *) LEMON=$PWD/$LEMON ;; esac
[ -x "$LEMON" ] || { echo "bench: $LEMON is not built (run make)" >&2; exit 1; }
for t in curl sha256sum python3; do
	command -v $t > /dev/null || { echo "bench: needs $t" >&2; exit 1; }
done

T=$(mktemp -d /tmp/lemon-bench-pull.XXXXXX)
MPID=
trap '[ -n "$MPID" ] && kill $MPID 2>/dev/null; rm -rf "$T"' EXIT

python3 tests/tools/hf-mirror.py make "$T/hub" --big-mb "$MB" \
	--registry "$T/models.json" > /dev/null
python3 tests/tools/hf-mirror.py serve "$T/hub" > "$T/port" &
MPID=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
URL=http://127.0.0.1:$(head -n 1 "$T/port")
FILE=$URL/lemon-test/big-GGUF/resolve/main/big.gguf
SHA=$(sha256sum "$T/hub/lemon-test/big-GGUF/big.gguf" | cut -d' ' -f1)
# the mirror hashes a file on its first request: do that before timing
curl -sfI "$FILE" > /dev/null

now() { date +%s.%N; }
elapsed() { echo "$1 $(now)" | awk '{printf "%.4f\n", $2 - $1}'; }

run_lemon() {
	rm -rf "$T/data"
	sync
	s=$(now)
	HF_ENDPOINT=$URL LEMON_MODELS_JSON=$T/models.json XDG_DATA_HOME=$T/data \
		"$LEMON" pull big > /dev/null
	elapsed "$s" >> "$T/lemon.times"
	[ "$(sha256sum "$T/data/lemon/models/big.gguf" | cut -d' ' -f1)" = "$SHA" ]
}

run_curl() {
	rm -f "$T/c.gguf"
	sync
	s=$(now)
	curl -sf -o "$T/c.gguf" "$FILE"
	elapsed "$s" >> "$T/curl.times"
}

run_curl_sha() {
	rm -f "$T/c.gguf"
	sync
	s=$(now)
	curl -sf -o "$T/c.gguf" "$FILE"
	sha256sum "$T/c.gguf" > /dev/null
	elapsed "$s" >> "$T/curlsha.times"
}

median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run_lemon; run_curl; run_curl_sha   # warm-up, not counted
rm -f "$T"/*.times
r=0
while [ $r -lt "$ROUNDS" ]; do
	run_lemon
	run_curl
	run_curl_sha
	r=$((r + 1))
done
L=$(median "$T/lemon.times")
C=$(median "$T/curl.times")
CS=$(median "$T/curlsha.times")
echo "file: $MB MiB GGUF, $ROUNDS rounds, medians"
echo "lemon pull:          ${L}s ($(echo "$MB $L" | awk '{printf "%.0f", $1 / $2}') MiB/s)"
echo "curl -o:             ${C}s ($(echo "$MB $C" | awk '{printf "%.0f", $1 / $2}') MiB/s)"
echo "curl -o + sha256sum: ${CS}s"
echo "ratio lemon / curl:  $(echo "$L $C" | awk '{printf "%.2f", $1 / $2}')"
echo "ratio lemon / (curl + sha256sum): $(echo "$L $CS" | awk '{printf "%.2f", $1 / $2}')"
