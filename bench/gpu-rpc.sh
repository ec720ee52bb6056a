# Issue 15's GPU measurements (item 5), sourced by bench/gpu.sh when RPC=1,
# after its own sections: it uses gpu.sh's functions (log, jline, free_port,
# wait_http, start_lemon, stop_lemon, health, req) and its state (W, R, D,
# MIRROR, the 70B-shaped model in the store, the CUDA bundle on the mirror).
#
# The same model (RPC_MODEL, default 70b), the same slots and context as
# lemon gives its children, measured in one run:
#   1. one H200 alone: llama-server directly, CUDA_VISIBLE_DEVICES=0;
#   2. both H200s: llama-server directly, --split-mode layer;
#   3. through lemon: two `lemon worker`s (rpc-server, one per GPU) on
#      loopback and `lemon serve --workers` on a head whose recorded tree
#      has 16 MiB of RAM (tests/fixtures/cpu-vm, as test_rpc_netns.sh), so
#      the model fits nowhere locally and is placed across the workers;
#      then the head's llama-server started directly with the child's
#      arguments against the same workers (lemon's own cost);
#   4. lemon's local split (issue 15 item 3) on the real GPUs: each GPU
#      held down to less than the model by another process, so `lemon
#      serve --backend cuda` must split it over both; then the same
#      arguments directly (-lv 4: what llama-server says it put where).
# On a machine of one GPU the two workers share it (--mem-limit each) and
# rows 2 and 4 are skipped. Rows: results.jsonl kind "place".
M5=${RPC_MODEL:-70b}
NG=$(nvidia-smi -L 2> /dev/null | grep -c '^GPU')
RPC_LEVELS=${RPC_LEVELS:-1 4 16}
CPID=

place_row() { # WHAT URL
	pw=$1 pu=$2
	r=$(python3 bench/gpu-client.py decode "$pu" "$pu" "$M5" 2 128) &&
		jline "{\"kind\":\"place\",\"what\":\"$pw\",\"model\":\"$M5\",\"mode\":\"decode\",\"tokens\":128,\"r\":$r}" &&
		log "$pw: batch 1 $(echo "$r" | python3 -c 'import json,sys; print("%.1f t/s" % json.load(sys.stdin)["a"]["client_tps_median"])')"
	for n in $RPC_LEVELS; do
		r=$(python3 bench/gpu-client.py concurrent "$pu" "$M5" "$n" 64) &&
			jline "{\"kind\":\"place\",\"what\":\"$pw\",\"model\":\"$M5\",\"mode\":\"concurrent\",\"tokens\":64,\"r\":$r}" &&
			log "$pw: $n streams $(echo "$r" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.1f t/s, %d errors" % (r["tokens_per_s"], r["errors"]))')"
	done
}

direct_up() { # NAME ENV EXE ARGS... : starts llama-server, sets DPID/DU
	dn=$1 de=$2 dx=$3
	shift 3
	DP=$(free_port)
	DU=http://127.0.0.1:$DP
	s=$(date +%s)
	env $de "$dx" "$@" --port "$DP" > "$R/place-$dn.log" 2>&1 &
	DPID=$!
	i=0
	until [ "$(curl -s -o /dev/null -w '%{http_code}' "$DU/health")" = 200 ]; do
		kill -0 "$DPID" 2> /dev/null || { log "$dn: llama-server exited: $(tail -n 3 "$R/place-$dn.log")"; return 1; }
		i=$((i + 1))
		[ $i -lt 3000 ] || { log "$dn: not healthy in 600 s"; kill "$DPID"; return 1; }
		sleep 0.2
	done
	log "$dn: loaded in $(($(date +%s) - s)) s"
}
direct_down() {
	kill "$DPID" 2> /dev/null
	wait "$DPID" 2> /dev/null
}

# the child's arguments, its port dropped (direct_up adds one)
child_args() { # PID -> shell words
	python3 bench/child-args.py "$1"
}
child_pid() {
	health | python3 -c 'import json,sys; h=json.load(sys.stdin); print(next((c["pid"] for c in h["loaded"] if c["model"]==sys.argv[1] and c["state"]=="ready"), ""))' "$M5"
}

# a lemon serve: first request (the load) timed, placement saved, the row,
# the child's arguments kept in CARGS/CEXE/CENV
lemon_row() { # NAME WHAT ARGS...
	ln=$1 lw=$2
	shift 2
	CARGS= CEXE= CENV=
	start_lemon "$ln" "$@" || return 1
	s=$(date +%s)
	code=$(req "http://127.0.0.1:$LP" "$M5" 1)
	health > "$R/health-$ln.json"
	log "$lw: first request $code after $(($(date +%s) - s)) s; $(grep -E 'placed|needs about|split-mode' "$R/lemon-$ln.log" | head -n 2 | tr '\n' ' ')"
	CPID=$(child_pid)
	if [ "$code" = 200 ] && [ -n "$CPID" ]; then
		CEXE=$(readlink "/proc/$CPID/exe")
		CARGS=$(child_args "$CPID")
		CENV=$(tr '\0' '\n' < "/proc/$CPID/environ" | grep -E '^(GGML_VK_VISIBLE_DEVICES|CUDA_VISIBLE_DEVICES)=' | tr '\n' ' ')
		jline "{\"kind\":\"place-args\",\"what\":\"$lw\",\"exe\":\"$CEXE\",\"args\":$(printf '%s' "$CARGS" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))'),\"env\":\"$CENV\",\"placement\":$(python3 -c 'import json,sys; h=json.load(open(sys.argv[1])); print(json.dumps([c.get("placement","") for c in h["loaded"]]))' "$R/health-$ln.json")}"
		place_row "$lw" "http://127.0.0.1:$LP"
		command -v nvidia-smi > /dev/null &&
			log "$lw: GPU memory per process: $(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader | tr '\n' ';')"
	else
		log "$lw: failed: $(head -c 300 "$W/req.json")"
	fi
	stop_lemon
}

log "issue 15 item 5: $NG GPU(s), model $M5"
if [ "$LOCAL" != 1 ]; then
	lemon install-backend llamacpp:cuda:sm_90 --mirror "$MIRROR" > "$R/install-cuda.txt" 2>&1
	log "install-backend llamacpp:cuda:sm_90: rc=$? $(tail -n 1 "$R/install-cuda.txt")"
fi
CX=$(find "$D/backends" -path '*cuda*' -name llama-server -type f | head -n 1)
CSV="-m $D/models/$M5.gguf --host 127.0.0.1 --alias $M5 --no-webui --jinja --metrics -c 4096 --parallel 16 --kv-unified --n-gpu-layers 999"

# 1 and 2: directly, one GPU, then both
if [ -n "$CX" ] && direct_up one-gpu "CUDA_VISIBLE_DEVICES=0" "$CX" $CSV; then
	place_row "one H200, llama-server direct" "$DU"
	direct_down
fi
if [ -n "$CX" ] && [ "$NG" -ge 2 ] && direct_up two-gpu "" "$CX" $CSV --split-mode layer; then
	place_row "two H200s, llama-server direct --split-mode layer" "$DU"
	grep -E 'using device|model buffer size' "$R/place-two-gpu.log" | head -n 6 > "$R/place-two-gpu.grep"
	direct_down
fi

# 3: lemon workers, one per GPU (or two sharing GPU 0)
WBK=${RPC_WORKER_BACKEND:-cuda}
if [ "$LOCAL" = 1 ]; then
	WA= WB= WBK=cpu
elif [ "$NG" -ge 2 ]; then
	WA="--device CUDA0" WB="--device CUDA1"
else
	WA="--device CUDA0 --mem-limit 34359738368" WB="--device CUDA0 --mem-limit 34359738368"
fi
WPIDS=
lemon worker --port 50052 --backend "$WBK" --mirror "$MIRROR" $WA > "$R/worker-a.log" 2>&1 &
WPIDS="$WPIDS $!"
lemon worker --port 50062 --backend "$WBK" --mirror "$MIRROR" $WB > "$R/worker-b.log" 2>&1 &
WPIDS="$WPIDS $!"
PIDS="$PIDS $WPIDS"
for ap in 50053 50063; do
	i=0
	until curl -s -m 2 "http://127.0.0.1:$ap/api/v1/worker" | grep -q '"rpc_running":true'; do
		i=$((i + 1))
		[ $i -lt 300 ] || break
		sleep 0.2
	done
	curl -s -m 2 "http://127.0.0.1:$ap/api/v1/worker" > "$R/worker-$ap.json"
	log "worker :$((ap - 1)): $(head -c 400 "$R/worker-$ap.json")"
done
rm -rf "$W/small"
cp -r tests/fixtures/cpu-vm "$W/small"
sed -i 's/^MemTotal:.*/MemTotal:          16384 kB/; s/^MemAvailable:.*/MemAvailable:      16384 kB/' "$W/small/proc/meminfo"
# --parallel 16: the rows compare the same 16 slots (the measured run's
# lemon gave a model on workers its CPU head's 4 by default; it now takes
# the workers' GPUs' 16 by itself)
if lemon_row rpc "lemon serve --workers (rpc-server per GPU)" --backend cpu --sysroot "$W/small" --parallel 16 \
	--workers 127.0.0.1:50052,127.0.0.1:50062 && [ -n "$CARGS" ]; then
	# shellcheck disable=SC2086
	eval "set -- $CARGS"
	if direct_up rpc-direct "$CENV" "$CEXE" "$@"; then
		place_row "head llama-server direct, same --rpc arguments" "$DU"
		direct_down
	fi
fi
for p in $WPIDS; do kill "$p" 2> /dev/null; done
for p in $WPIDS; do wait "$p" 2> /dev/null; done

# 4: lemon's own split over both GPUs, each held below the model's size
if [ "$NG" -ge 2 ] && [ -n "$CX" ]; then
	HP=
	for g in 0 1; do
		python3 -c 'import sys, torch, time
x = torch.empty(int(sys.argv[2]) << 30, dtype=torch.uint8, device="cuda:%s" % sys.argv[1])
print("held", x.numel() >> 30, "GiB", flush=True)
time.sleep(900)' "$g" "${HOLD_GIB:-112}" > "$R/hold-$g.log" 2>&1 &
		HP="$HP $!"
	done
	PIDS="$PIDS $HP"
	i=0
	until [ "$(cat "$R"/hold-*.log 2> /dev/null | grep -c held)" = 2 ] || [ $i -gt 600 ]; do sleep 0.2; i=$((i + 1)); done
	log "holders: $(cat "$R"/hold-*.log | tr '\n' ' '); $(nvidia-smi --query-gpu=index,memory.free --format=csv,noheader | tr '\n' ' ')"
	if lemon_row mgpu "lemon serve, split over both GPUs (each held)" --backend cuda && [ -n "$CARGS" ]; then
		eval "set -- $CARGS"
		if direct_up mgpu-direct "$CENV" "$CEXE" "$@" -lv 4; then
			log "mgpu: llama-server says: $(grep -E 'offloaded|CUDA[01] model buffer size|CPU_Mapped model buffer' "$R/place-mgpu-direct.log" | tr -s ' ' | tr '\n' ';')"
			place_row "llama-server direct, lemon's split arguments" "$DU"
			direct_down
		fi
	fi
	for p in $HP; do kill "$p" 2> /dev/null; done
fi
log "issue 15 item 5: done"
