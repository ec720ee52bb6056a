#!/bin/sh
# test_shape_gguf.sh: tests/tools/make-shape-gguf.py writes a GGUF that the
# real llama.cpp CPU bundle loads with the shapes asked for (GQA included),
# as Q4_0 with the llama-spm tokenizer, and generates from. The 7B and 70B
# shapes are the same code with bigger numbers; they are generated on the
# GPU machine only (bench/gpu-first-cuda.sh), never here or in git.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
FAILS=0
MPID=
SPID=
T=$(mktemp -d)
trap '[ -z "$SPID" ] || kill $SPID 2>/dev/null; rm -rf "$T"' EXIT INT TERM
need_bundle

# A small GQA shape: 2 layers, n_embd 256, 4 heads, 2 KV heads, ffn 512.
E=256 L=2 H=4 HKV=2 FF=512 V=32000
M=$T/custom.gguf
if ! out=$(python3 tests/tools/make-shape-gguf.py --shape custom --embd $E \
	--layers $L --heads $H --heads-kv $HKV --ffn $FF --out "$M" 2>&1); then
	fail generate "$out"
fi
size=$(stat -c %s "$M" 2>/dev/null || echo 0)
[ "$out" = "$M $size" ] && ok "generate prints path and size" ||
	fail generate "printed '$out', file has $size bytes"

# Parameters llama.cpp must count: embedding and output (E x V each), the
# final norm, and per layer q, o (E x E), k, v (E x E/H*HKV), gate, up,
# down (E x FF) and two norms. Q4_0 stores 32 weights in 18 bytes.
KVD=$((E / H * HKV))
MAT=$((2 * E * V + L * (2 * E * E + 2 * E * KVD + 3 * E * FF)))
NORM=$((E + L * 2 * E))
PARAMS=$((MAT + NORM))
DATA=$((MAT / 32 * 18 + NORM * 4))

bad=$(python3 tests/tools/make-shape-gguf.py --shape custom --embd 250 \
	--layers 1 --heads 4 --ffn 64 --out "$T/bad.gguf" 2>&1) &&
	fail "reject bad shape" "accepted n_embd 250 with 4 heads" ||
	case $bad in *multiple*) ok "reject bad shape" ;;
	*) fail "reject bad shape" "$bad" ;; esac
[ ! -e "$T/bad.gguf" ] && ok "no file for a bad shape" ||
	fail "no file for a bad shape" "$T/bad.gguf exists"

D=$T/bundle
mkdir -p "$D"
tar -xzf "$BUNDLE/$(cat "$BUNDLE/asset")" -C "$D"
PORT=$(free_port)
"$D"/llama-*/llama-server -m "$M" -c 512 -np 1 --host 127.0.0.1 \
	--port "$PORT" >"$T/server.log" 2>&1 &
SPID=$!
i=0
until curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; do
	i=$((i + 1))
	if [ $i -gt 300 ] || ! kill -0 $SPID 2>/dev/null; then
		fail load "llama-server did not come up: $(tail -n 5 "$T/server.log")"
		echo "$FAILS failure(s)"
		exit 1
	fi
	sleep 0.1
done
ok "llama-server loads it"

meta=$(curl -sf "http://127.0.0.1:$PORT/v1/models" | jq -c '.data[0].meta')
want="{\"vocab_type\":1,\"n_vocab\":$V,\"n_embd\":$E,\"n_params\":$PARAMS,\"size\":$DATA,\"ftype\":\"Q4_0\"}"
got=$(echo "$meta" | jq -c '{vocab_type, n_vocab, n_embd, n_params, size, ftype}')
[ "$got" = "$want" ] && ok "shape, size and type as asked" ||
	fail "shape, size and type" "want $want, got $got"

n=$(curl -sf "http://127.0.0.1:$PORT/completion" -H 'Content-Type: application/json' \
	-d '{"prompt":"Hello world","n_predict":8,"ignore_eos":true,"temperature":0}' |
	jq -r '.tokens_predicted')
[ "$n" = 8 ] && ok "generates 8 tokens" || fail generate-tokens "tokens_predicted=$n"

[ $FAILS -eq 0 ] || { echo "$FAILS failure(s)"; exit 1; }
